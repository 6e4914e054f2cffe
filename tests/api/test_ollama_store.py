"""A models directory written exactly as Ollama writes one is listed, shown and served as it is."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import httpx

from tests.conftest import start_server

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "ollama-templates"


def _blob(models: Path, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (models / "blobs").mkdir(parents=True, exist_ok=True)
    (models / "blobs" / digest.replace(":", "-")).write_bytes(data)
    return digest, len(data)


def _layer(media_type: str, digest: str, size: int) -> str:
    return f'{{"mediaType":"{media_type}","digest":"{digest}","size":{size}}}'


def write_ollama_store(models: Path, gguf: Path) -> bytes:
    """The bytes Ollama's create writes for `ollama create smollm2 -f Modelfile` (FROM <gguf>)."""
    (models / "blobs").mkdir(parents=True)
    model_digest = "sha256:" + hashlib.sha256(gguf.read_bytes()).hexdigest()
    shutil.copyfile(gguf, models / "blobs" / model_digest.replace(":", "-"))
    template = (SHARED / "chatml.gotmpl").read_bytes()
    template_digest, template_size = _blob(models, template)
    # Go's encoder: sorted keys, HTML escapes, trailing newline (store-registry.md §6.8, probe 18)
    params = b'{"stop":["\\u003c|im_start|\\u003e","\\u003c|im_end|\\u003e"]}\n'
    params_digest, params_size = _blob(models, params)
    config = (b'{"model_format":"gguf","model_family":"llama","model_families":["llama"],"model_type":"134.52M",'
              b'"file_type":"Q4_1","architecture":"amd64","os":"linux",'
              b'"rootfs":{"type":"layers","diff_ids":["' + model_digest.encode() + b'"]}}\n')
    config_digest, config_size = _blob(models, config)
    manifest = (
        '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        f'"config":{_layer("application/vnd.docker.container.image.v1+json", config_digest, config_size)},'
        '"layers":['
        + ",".join([
            _layer("application/vnd.ollama.image.model", model_digest, gguf.stat().st_size),
            _layer("application/vnd.ollama.image.template", template_digest, template_size),
            _layer("application/vnd.ollama.image.params", params_digest, params_size),
        ])
        + "]}\n"
    ).encode()
    path = models / "manifests" / "registry.ollama.ai" / "library" / "smollm2" / "135m"
    path.parent.mkdir(parents=True)
    path.write_bytes(manifest)
    return manifest


def test_params_blob_matches_ollama_digest() -> None:
    params = b'{"stop":["\\u003c|im_start|\\u003e","\\u003c|im_end|\\u003e"]}\n'
    assert hashlib.sha256(params).hexdigest() == "f02dd72bb2423204352eabc5637b44d79d17f109fdb510a7c51455892aa2d216"


def test_ollama_store_is_listed_shown_and_served(tmp_path: Path, smollm2_gguf: Path) -> None:
    models = tmp_path / "models"
    manifest = write_ollama_store(models, smollm2_gguf)
    before = {p: p.read_bytes() for p in models.rglob("*") if p.is_file()}
    server = start_server(models, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            tags = http.get("/api/tags").json()["models"]
            assert [t["name"] for t in tags] == ["smollm2:135m"]
            assert tags[0]["digest"] == hashlib.sha256(manifest).hexdigest()
            assert tags[0]["details"]["parameter_size"] == "134.52M"
            assert tags[0]["details"]["quantization_level"] == "Q4_1"
            assert tags[0]["size"] == sum(len(b) for p, b in before.items() if "blobs" in p.parts)

            shown = http.post("/api/show", json={"model": "smollm2:135m"}).json()
            assert shown["template"] == (SHARED / "chatml.gotmpl").read_text()
            assert shown["details"]["family"] == "llama"

            reply = http.post("/api/chat", json={
                "model": "smollm2:135m", "stream": False, "options": {"temperature": 0, "num_predict": 16},
                "messages": [{"role": "user", "content": "What is the capital of France?"}],
            }).json()
            assert "Paris" in reply["message"]["content"]
    finally:
        server.stop()
    after = {p: p.read_bytes() for p in models.rglob("*") if p.is_file()}
    assert after == before, "serving must not rewrite anything in Ollama's store"
    json.loads(manifest)
