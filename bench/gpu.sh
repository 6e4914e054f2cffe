#!/usr/bin/env bash
# bench/servers.py on an NVIDIA GPU, in one command: pollama, llama-server, llama_cpp.server and
# llama-cpp-python in process, all with the whole model on the GPU and all on ONE build of llama.cpp (the
# sources inside the sdist of the llama-cpp-python version pyproject.toml pins, compiled once with CUDA),
# then the comparison table.
#
#   bench/gpu.sh [--cpu] [bench/servers.py options, e.g. --quick]
#
# Needs the NVIDIA driver (nvidia-smi, NVML), the CUDA toolkit (nvcc on PATH or in /usr/local/cuda), cmake,
# a C++ compiler and python3 with venv. What it does:
#   1. builds llama.cpp from that sdist as shared libraries with llama-server (CUDA for this machine's GPU,
#      native CPU code, RPC as `make install` has it), in ~/.cache/pollama-bench (POLLAMA_BENCH_CACHE);
#   2. makes a venv of its own (POLLAMA_GPU_VENV, default .venv-cuda) with llama-cpp-python's Python part
#      from the same sdist, its `lib/` filled from that build, the project with its bench extras, SmolLM2;
#   3. runs tests/test_gpu.py (the bundled model wholly on the GPU by default, as /api/ps and NVML show), then
#      bench/servers.py --gpu with that build's llama-server.
# The build and the venv are made once; later runs go straight to the comparison (a few minutes).
#
# CUDA_ARCHITECTURES: CMAKE_CUDA_ARCHITECTURES; default the GPU's own compute capability (90 on an
# H100/H200), or 80-virtual with a CUDA toolkit older than 12 on a GPU of compute 9.0 or newer (this
# llama.cpp's Hopper code needs CUDA 12). CUDAHOSTCXX: nvcc's host compiler, if the default one is too new
# for the toolkit.
#
# --cpu: the same steps without CUDA (and servers.py without --gpu): how this script is checked on a
# machine without a GPU.
set -euo pipefail

cd "$(dirname "$0")/.."
started=$(date +%s)
device=cuda
if [ "${1:-}" = --cpu ]; then
    device=cpu
    shift
fi
venv=${POLLAMA_GPU_VENV:-.venv-$device}
cache=${POLLAMA_BENCH_CACHE:-$HOME/.cache/pollama-bench}
version=$(sed -n 's/^ *"llama-cpp-python==\([0-9.]*\)",*$/\1/p' pyproject.toml | head -n 1)
smollm2=$(sed -n 's/^SMOLLM2 := //p' Makefile)
[ -n "$version" ] && [ -n "$smollm2" ] || { echo "gpu.sh: cannot read the pinned versions" >&2; exit 2; }

flags=(-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=ON -DGGML_RPC=ON -DLLAMA_CURL=OFF
       -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON
       -DLLAMA_BUILD_SERVER=ON)
variant=cpu
if [ "$device" = cuda ]; then
    if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
        echo "gpu.sh: no NVIDIA GPU here (nvidia-smi fails); bench/gpu.sh --cpu runs the same steps on the CPU" >&2
        exit 2
    fi
    if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
        export PATH="/usr/local/cuda/bin:$PATH"
    fi
    command -v nvcc >/dev/null || { echo "gpu.sh: nvcc not found: install the CUDA toolkit" >&2; exit 2; }
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    nvcc --version | tail -n 2
    if [ -z "${CUDA_ARCHITECTURES:-}" ]; then
        capability=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
        cuda_major=$(nvcc --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
        if ! [[ "$capability" =~ ^[0-9]+$ ]]; then  # a driver too old to say: nvcc finds out
            CUDA_ARCHITECTURES=native
        elif [ "$capability" -ge 90 ] && [ "${cuda_major:-0}" -lt 12 ]; then
            CUDA_ARCHITECTURES=80-virtual
        else
            CUDA_ARCHITECTURES=$capability
        fi
    fi
    flags+=(-DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHITECTURES")
    variant="cuda-${CUDA_ARCHITECTURES//;/_}"
fi

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py="$venv/bin/python"

# 1. llama.cpp, once per version and variant
mkdir -p "$cache"
sources="$cache/src-$version"
sdist="$sources/llama_cpp_python-$version.tar.gz"
build="$cache/llama.cpp-$version-$variant"
if [ ! -f "$sdist" ]; then
    mkdir -p "$sources"
    "$py" -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$sources"
fi
[ -d "$sources/llama_cpp_python-$version" ] || tar -xzf "$sdist" -C "$sources"
if [ ! -x "$build/bin/llama-server" ] || [ ! -e "$build/bin/libmtmd.so" ]; then
    echo "building llama.cpp $variant from the llama-cpp-python $version sdist (once)"
    generator=()
    command -v ninja >/dev/null && generator=(-G Ninja)
    cmake -S "$sources/llama_cpp_python-$version/vendor/llama.cpp" -B "$build" "${generator[@]}" "${flags[@]}" \
        >"$build.log" 2>&1 || { tail -n 30 "$build.log" >&2; exit 1; }
    cmake --build "$build" --target llama-server mtmd -j "$(nproc)" >>"$build.log" 2>&1 \
        || { tail -n 30 "$build.log" >&2; exit 1; }
fi

# 2. the venv: llama-cpp-python without its own build, given this one's libraries
stamp="$venv/.pollama-bench-$version"
if [ ! -f "$stamp" ]; then
    "$py" -m pip install -q --upgrade pip
    # no cache: pip would otherwise hand this library-less wheel to other venvs
    CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" "$py" -m pip install -q --no-cache-dir "$sdist"
    "$py" -m pip install -q -e '.[test,bench]'
    "$py" -m pip install -q --no-deps "$smollm2"
    touch "$stamp"
fi
lib=$("$py" -c 'import importlib.util, pathlib; print(pathlib.Path(importlib.util.find_spec("llama_cpp").origin).parent / "lib")')
rm -rf "$lib" && mkdir -p "$lib" && cp -P "$build"/bin/lib*.so* "$lib"/
echo "llama.cpp: $build (${flags[*]})"
echo "set-up took $(( $(date +%s) - started )) s"

# 3. the GPU test, then the comparison
status=0
if [ "$device" = cuda ]; then
    "$py" -m pytest -q -p no:cacheprovider tests/test_gpu.py || status=$?
    "$py" bench/servers.py --gpu --llama-server "$build/bin/llama-server" "$@" || status=$?
else
    "$py" bench/servers.py --llama-server "$build/bin/llama-server" "$@" || status=$?
fi
echo "bench/gpu.sh took $(( $(date +%s) - started )) s in all"
exit "$status"
