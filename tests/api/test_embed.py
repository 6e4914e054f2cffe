"""/api/embed and /api/embeddings on a generative model and on an embedding-only GGUF (probes C1–C6)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import Server, start_server
from tests.ggufs import embedding_gguf


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("embed")
    server = start_server(directory / "models", directory / "server.log", bundled=True)
    gguf = embedding_gguf(smollm2_gguf, directory / "embedding.gguf")
    data = gguf.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    httpx.post(f"{server.url}/api/blobs/{digest}", content=data, timeout=120).raise_for_status()
    r = httpx.post(f"{server.url}/api/create", json={"model": "e", "files": {"e.gguf": digest}, "stream": False},
                   timeout=120)
    assert r.status_code == 200, r.text
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=300) as client:
        yield client


def test_c1_load_only(http: httpx.Client) -> None:
    assert http.post("/api/embed", json={"model": "e"}).content == b'{"model":"e","embeddings":[]}'


@pytest.mark.parametrize("model", ["e", "smollm2:135m"])
def test_c2_two_inputs_in_order_and_normalised(http: httpx.Client, model: str) -> None:
    body = http.post("/api/embed", json={"model": model, "input": ["a cat sat on the mat", "stock markets fell"]})
    assert body.status_code == 200, body.text
    data = body.json()
    assert list(data) == ["model", "embeddings", "total_duration", "load_duration", "prompt_eval_count"]
    vectors = np.array(data["embeddings"])
    assert vectors.shape == (2, 576)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
    assert data["prompt_eval_count"] > 0 and isinstance(data["total_duration"], int)
    # one call with both inputs equals each input alone, in order
    alone = [http.post("/api/embed", json={"model": model, "input": text}).json()["embeddings"][0]
             for text in ["a cat sat on the mat", "stock markets fell"]]
    assert np.allclose(vectors, np.array(alone), atol=1e-4)
    assert not np.allclose(vectors[0], vectors[1], atol=1e-2)


def test_c3_dimensions(http: httpx.Client) -> None:
    data = http.post("/api/embed", json={"model": "e", "input": ["a", "b"], "dimensions": 8}).json()
    vectors = np.array(data["embeddings"])
    assert vectors.shape == (2, 8)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)


def test_c4_too_long_without_truncate(http: httpx.Client) -> None:
    r = http.post("/api/embed", json={"model": "e", "input": "word " * 64, "truncate": False,
                                      "options": {"num_ctx": 8}})
    assert (r.status_code, r.json()) == (400, {"error": "the input length exceeds the context length"})
    truncated = http.post("/api/embed", json={"model": "e", "input": "word " * 64, "options": {"num_ctx": 8}})
    assert truncated.status_code == 200 and truncated.json()["prompt_eval_count"] <= 8


def test_c5_embedding_model_refuses_generate_and_chat(http: httpx.Client) -> None:
    r = http.post("/api/generate", json={"model": "e"})
    assert (r.status_code, r.json()) == (400, {"error": '"e" does not support generate'})
    r = http.post("/api/chat", json={"model": "e"})
    assert (r.status_code, r.json()) == (400, {"error": '"e" does not support chat'})
    shown = http.post("/api/show", json={"model": "e"}).json()
    assert "embedding" in shown["capabilities"] and "completion" not in shown["capabilities"]


def test_c6_legacy_load_and_embedding(http: httpx.Client) -> None:
    assert http.post("/api/embeddings", json={"model": "e"}).json() == {"embedding": []}
    vector = http.post("/api/embeddings", json={"model": "e", "prompt": "hello"}).json()["embedding"]
    assert len(vector) == 576 and abs(np.linalg.norm(vector) - 1) > 1e-3  # legacy: not normalised


def test_embed_errors(http: httpx.Client) -> None:
    assert http.post("/api/embed", json={}).json() == {"error": "model '' not found"}
    r = http.post("/api/embed", json={"model": "nope-x", "input": "hi"})
    assert (r.status_code, r.json()) == (404, {"error": 'model "nope-x" not found, try pulling it first'})
    assert http.post("/api/embed", json={"model": "e", "input": ["a", 1]}).json() == {"error": "invalid input type"}
    assert http.post("/api/embeddings", json={}).json() == {"error": "model is required"}
