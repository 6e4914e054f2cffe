"""A LoRA adapter (GGUF, written by the test) is stored as an adapter layer and applied when the model loads."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import Server
from tests.management.conftest import create, statuses, upload
from tests.management.tiny import write_lora_gguf

GREEDY = {"temperature": 0, "seed": 7, "num_predict": 8}


def _complete(server: Server, model: str) -> str:
    r = httpx.post(f"{server.url}/api/generate", json={
        "model": model, "prompt": "The capital of France is", "raw": True, "stream": False, "options": GREEDY,
    }, timeout=180)
    assert r.status_code == 200, r.text
    assert r.json()["eval_count"] > 0
    return r.json()["response"]


def test_lora_adapter_changes_the_output(shared_server: Server, tmp_path: Path) -> None:
    # SmolLM2-135M: 576-wide, 30 blocks; large random A and B make the q projections very different.
    lora = write_lora_gguf(tmp_path / "lora.gguf", arch="llama", n_embd=576, layers=list(range(0, 30, 3)),
                           rank=8, alpha=32.0, scale=1.0)
    digest = upload(shared_server, lora)
    events = create(shared_server, {"model": "smol-lora", "from": "smollm2:135m",
                                    "adapters": {"lora.gguf": digest}})
    seen = statuses(events)
    assert seen[0] == "parsing GGUF", events
    assert f"using existing layer {digest}" in seen and seen[-1] == "success"

    shown = httpx.post(f"{shared_server.url}/api/show", json={"model": "smol-lora"}).json()
    adapter_lines = [line for line in shown["modelfile"].splitlines() if line.startswith("ADAPTER ")]
    assert adapter_lines == [f"ADAPTER {shared_server.models / 'blobs' / digest.replace(':', '-')}"]
    assert shown["details"]["parent_model"] == "smollm2:135m"

    base = _complete(shared_server, "smollm2:135m")
    adapted = _complete(shared_server, "smol-lora")
    assert base != adapted, (base, adapted)


def test_adapter_must_be_one_gguf(shared_server: Server, tmp_path: Path) -> None:
    text = tmp_path / "adapter.gguf"
    text.write_text("not a gguf")
    digest = upload(shared_server, text)
    r = httpx.post(f"{shared_server.url}/api/create", json={
        "model": "smol-bad-lora", "from": "smollm2:135m", "adapters": {"adapter.gguf": digest}, "stream": False})
    assert (r.status_code, r.json()) == (400, {"error": "supplied file was not in GGUF format"})
    r = httpx.post(f"{shared_server.url}/api/create", json={
        "model": "smol-bad-lora", "from": "smollm2:135m", "stream": False,
        "adapters": {"a.gguf": digest, "b.gguf": digest}})
    assert (r.status_code, r.json()) == (400, {"error": "only one adapter is currently supported"})
