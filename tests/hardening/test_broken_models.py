"""Issue 13 item 5: one broken model (a corrupt GGUF header, a missing layer or config blob) never empties
/api/tags or /v1/models; the lists skip what cannot be read, as Ollama does, and the broken model's own
routes answer with an error that names what is wrong."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, start_server

MODEL = "smollm2:135m"
MISSING = "sha256:" + "0" * 64
CORRUPT_GGUF = b"GGUF\x03\x00\x00\x00" + b"\xff" * 40  # the magic, then a header that ends too soon
CORRUPT_BLOB = "sha256-" + hashlib.sha256(CORRUPT_GGUF).hexdigest()


def manifest_path(models: Path, name: str) -> Path:
    return models / "manifests" / "registry.ollama.ai" / "library" / name / "latest"


def write_blob(models: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (models / "blobs" / digest.replace(":", "-")).write_bytes(data)
    return digest


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("broken")
    models = directory / "models"
    server = start_server(models, directory / "server.log", bundled=True)
    good = json.loads((models / "manifests/registry.ollama.ai/library/smollm2/135m").read_bytes())

    def variant(name: str, change: dict) -> None:
        manifest = json.loads(json.dumps(good))
        for layer in manifest["layers"]:
            if layer["mediaType"] in change:
                layer["digest"] = change[layer["mediaType"]]
        if "config" in change:
            manifest["config"]["digest"] = change["config"]
        path = manifest_path(models, name)
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(manifest))

    variant("badheader", {"application/vnd.ollama.image.model": write_blob(models, CORRUPT_GGUF)})
    variant("nolayer", {"application/vnd.ollama.image.template": MISSING})
    variant("noconfig", {"config": MISSING})
    yield server
    server.stop()


def test_the_lists_show_every_model_that_can_be_read(server: Server) -> None:
    tags = httpx.get(server.url + "/api/tags", timeout=30)
    assert tags.status_code == 200
    names = sorted(m["name"] for m in tags.json()["models"])
    # The corrupt GGUF is listed (Ollama lists from the manifest and config), the unreadable ones are not.
    assert names == ["badheader:latest", MODEL]
    entry = next(m for m in tags.json()["models"] if m["name"] == "badheader:latest")
    assert "capabilities" not in entry
    models = httpx.get(server.url + "/v1/models", timeout=30)
    assert models.status_code == 200
    assert sorted(m["id"] for m in models.json()["data"]) == ["badheader:latest", MODEL]
    assert "skipping model 'nolayer:latest' is broken" in server.output()


@pytest.mark.parametrize(("name", "problem"), [
    ("badheader", f"model file {CORRUPT_BLOB}: GGUF header counts exceed the file size"),
    ("nolayer", f"blob sha256-{'0' * 64} is missing"),
    ("noconfig", f"blob sha256-{'0' * 64} is missing"),
])
@pytest.mark.parametrize(("path", "body"), [
    ("/api/show", {}),
    ("/api/generate", {"prompt": "hi"}),
    ("/api/chat", {"messages": [{"role": "user", "content": "hi"}]}),
    ("/api/embed", {"input": "hi"}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
])
def test_a_broken_models_own_routes_say_what_is_wrong(server: Server, name: str, problem: str, path: str,
                                                      body: dict) -> None:
    r = httpx.post(server.url + path, json={"model": name, **body}, timeout=30)
    assert r.status_code == 500
    error = r.json()["error"]
    message = error["message"] if isinstance(error, dict) else error
    assert message == f"model '{name}:latest' is broken: {problem}"
    assert httpx.get(server.url + "/api/tags", timeout=30).status_code == 200
