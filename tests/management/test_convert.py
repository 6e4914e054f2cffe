"""Safetensors import: a small Llama written by the test converts, quantizes, loads and generates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelstore.gguf import read_gguf
from tests.conftest import Server, start_server
from tests.management.conftest import create, referenced_blobs, statuses, store_snapshot, upload_dir
from tests.management.tiny import write_tiny_llama

ZERO_DIGEST = "0" * 19


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("convert")
    server = start_server(directory / "models", directory / "server.log")
    yield server
    server.stop()


def _generate(server: Server, model: str) -> dict:
    r = httpx.post(f"{server.url}/api/generate", json={
        "model": model, "prompt": "the", "raw": True, "stream": False,
        "options": {"num_predict": 6, "temperature": 0, "seed": 1}}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_llama_converts_quantizes_loads_and_generates(server: Server, tmp_path: Path) -> None:
    files = upload_dir(server, write_tiny_llama(tmp_path / "tiny"))
    events = create(server, {"model": "tiny-llama", "files": files, "quantize": "q4_K_M"})
    seen = statuses(events)
    assert seen[0] == "converting model", events
    quantizing = [e for e in events if e.get("status") == "quantizing F16 model to Q4_K_M"]
    assert quantizing and all(e["digest"] == ZERO_DIGEST for e in quantizing)
    assert quantizing[-1]["completed"] == quantizing[-1]["total"] > 0
    after = seen[seen.index("verifying conversion") + 1:]
    assert after[0].startswith("creating new layer sha256:")
    assert "using autodetected template chatml" in after  # from tokenizer_config.json's chat_template
    assert after[-2:] == ["writing manifest", "success"]

    shown = httpx.post(f"{server.url}/api/show", json={"model": "tiny-llama"}).json()
    assert shown["details"]["format"] == "gguf"
    assert shown["details"]["family"] == "llama"
    assert shown["details"]["quantization_level"] == "Q4_K_M"
    assert shown["model_info"]["general.file_type"] == 15
    assert shown["model_info"]["llama.attention.head_count_kv"] == 2
    types = {t["name"]: t["type"] for t in shown["tensors"]}
    assert types["blk.0.attn_q.weight"] == "Q4_K" and types["blk.0.attn_norm.weight"] == "F32"
    assert shown["capabilities"] == ["completion"]

    reply = _generate(server, "tiny-llama")
    assert reply["done"] is True and reply["eval_count"] > 0

    # Only what manifests reference (plus the uploads) is left: the F16 conversion was not kept.
    blobs, _ = store_snapshot(server)
    uploads = {d.replace(":", "-") for d in files.values()}
    assert blobs == referenced_blobs(server) | uploads


def test_bf16_weights_stay_bf16_and_run(server: Server, tmp_path: Path) -> None:
    files = upload_dir(server, write_tiny_llama(tmp_path / "tiny-bf16", seed=3, bf16=True))
    events = create(server, {"model": "tiny-bf16", "files": files, "stream": True})
    assert statuses(events)[-1] == "success", events
    model_layer = json.loads((server.models / "manifests/registry.ollama.ai/library/tiny-bf16/latest").read_bytes())
    blob = server.models / "blobs" / model_layer["layers"][0]["digest"].replace(":", "-")
    info = read_gguf(blob)
    assert info.kv["general.file_type"] == 1  # Ollama labels every conversion F16
    types = {t.name: t.type_name for t in info.tensors}
    assert types["blk.1.ffn_up.weight"] == "BF16" and types["output_norm.weight"] == "F32"
    assert _generate(server, "tiny-bf16")["eval_count"] > 0


def test_unsupported_architecture_is_a_clear_400(server: Server, tmp_path: Path) -> None:
    directory = write_tiny_llama(tmp_path / "gpt2")
    config = json.loads((directory / "config.json").read_text())
    config["architectures"] = ["GPT2LMHeadModel"]
    (directory / "config.json").write_text(json.dumps(config))
    files = upload_dir(server, directory)
    before = store_snapshot(server)
    r = httpx.post(f"{server.url}/api/create", json={"model": "gpt2", "files": files, "stream": False}, timeout=60)
    assert (r.status_code, r.json()) == (400, {"error": 'unsupported architecture "GPT2LMHeadModel"'})
    assert store_snapshot(server) == before
    assert not any(p.name.startswith("ollama-safetensors") for p in server.models.iterdir())
