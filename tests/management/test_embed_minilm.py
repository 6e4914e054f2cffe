"""Ollama's all-minilm embed tests (integration/embed_test.go), ported to all-MiniLM-L6-v2 imported here.

Ollama's expected vectors for its library all-minilm, inputs cut to the `num_ctx` the request asks for
(less room for [CLS] and [SEP]), its error texts, and every `num_ctx` from 1 to 64: a vector or one of
Ollama's errors, never a crashed runner.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import Server, start_server
from tests.management.conftest import create, statuses, upload_dir

MODEL = "all-minilm"
SKY = "why is the sky blue?"
# Its WordPiece tokens are its words and the "?": a cut to k tokens is the first k of these.
SKY_PREFIXES = ["why", "why is", "why is the", "why is the sky", "why is the sky blue", SKY]
EXPECTED = json.loads((Path(__file__).parent / "data" / "all_minilm_vectors.json").read_text())["inputs"]
AFTER_TRUNCATION = "input after truncation exceeds maximum context length"
CANNOT_TRUNCATE = "input exceeds maximum context length and cannot be truncated further"
TOO_LONG = "the input length exceeds the context length"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("minilm-embed")
    server = start_server(directory / "models", directory / "server.log")
    try:
        events = create(server, {"model": MODEL, "files": upload_dir(server, minilm_dir)})
        assert statuses(events)[-1] == "success", events
        yield server
    finally:
        server.stop()


def embed(server: Server, text: str | list[str], **fields: Any) -> httpx.Response:
    body: dict[str, Any] = {"model": MODEL, "input": text}
    if "num_ctx" in fields:
        body["options"] = {"num_ctx": fields.pop("num_ctx")}
    return httpx.post(f"{server.url}/api/embed", json={**body, **fields}, timeout=120)


def vectors(response: httpx.Response) -> list[np.ndarray]:
    assert response.status_code == 200, response.text
    return [np.asarray(v, dtype=np.float64) for v in response.json()["embeddings"]]


def cosine(a: np.ndarray | list[float], b: np.ndarray | list[float]) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_embed_gives_ollamas_vector(server: Server) -> None:
    r = embed(server, SKY)
    [vector] = vectors(r)
    assert len(vector) == 384
    assert cosine(vector, EXPECTED[SKY]["api_embed"]) >= 0.99
    assert r.json()["prompt_eval_count"] == 8


def test_batch_embed_gives_ollamas_vectors(server: Server) -> None:
    grass = "why is the grass green?"
    r = embed(server, [SKY, grass])
    sky_vector, grass_vector = vectors(r)
    assert cosine(sky_vector, EXPECTED[SKY]["api_embed"]) >= 0.99
    assert cosine(grass_vector, EXPECTED[grass]["api_embed"]) >= 0.99
    assert r.json()["prompt_eval_count"] == 16


def test_legacy_embeddings_give_ollamas_vector(server: Server) -> None:
    r = httpx.post(f"{server.url}/api/embeddings", json={"model": MODEL, "prompt": SKY}, timeout=120)
    assert r.status_code == 200, r.text
    assert len(r.json()["embedding"]) == 384
    assert cosine(r.json()["embedding"], EXPECTED[SKY]["api_embeddings"]) >= 0.99


@pytest.mark.parametrize("truncate", [None, True])
def test_an_input_is_cut_to_the_window_asked_for(server: Server, truncate: bool | None) -> None:
    [want] = vectors(embed(server, "why"))
    fields = {} if truncate is None else {"truncate": truncate}
    r = embed(server, SKY, num_ctx=3, **fields)
    [got] = vectors(r)
    assert r.json()["prompt_eval_count"] == 3  # [CLS] why [SEP]
    assert cosine(got, want) >= 0.999


def test_no_truncation_refuses_an_input_longer_than_the_window(server: Server) -> None:
    r = embed(server, SKY, num_ctx=3, truncate=False)
    assert r.status_code == 400 and r.json() == {"error": TOO_LONG}


@pytest.mark.parametrize("num_ctx", [1, 0])
def test_a_window_too_small_to_cut_to_is_an_error(server: Server, num_ctx: int) -> None:
    r = embed(server, SKY, num_ctx=num_ctx, truncate=True)
    assert r.status_code == 400, r.text
    assert r.json()["error"] in (AFTER_TRUNCATION, CANNOT_TRUNCATE)


def test_boundary_truncation(server: Server) -> None:
    vectors(embed(server, "why is the sky blue? Why is the sky blue? hi there my", num_ctx=16))


def test_a_batch_is_cut_input_by_input(server: Server) -> None:
    r = embed(server, ["short", "long " * 100, "medium text"], num_ctx=30, truncate=True)
    assert len(vectors(r)) == 3
    assert r.json()["prompt_eval_count"] == 3 + 30 + 4


def test_token_counts_add_up(server: Server) -> None:
    one = embed(server, "test").json()["prompt_eval_count"]
    assert embed(server, ["test"] * 3).json()["prompt_eval_count"] == 3 * one


@pytest.mark.parametrize("text", ["very long input " * 100, ["short input", "very long input " * 100, "another"]])
def test_refusals_are_client_errors(server: Server, text: str | list[str]) -> None:
    r = embed(server, text, num_ctx=10, truncate=False)
    assert r.status_code == 400 and "context length" in r.json()["error"]


@pytest.mark.parametrize("words", [256, 512, 800])
def test_large_inputs_are_cut_to_the_models_window(server: Server, words: int) -> None:
    r = embed(server, " ".join(["word"] * words))
    assert len(vectors(r)[0]) == 384
    assert r.json()["prompt_eval_count"] == min(words + 2, 512)


def test_every_window_from_1_to_64_gives_a_vector_or_ollamas_error(server: Server) -> None:
    *references, short_reference = vectors(embed(server, [*SKY_PREFIXES, "short"]))
    for num_ctx in range(1, 65):
        cut = embed(server, [SKY, "short"], num_ctx=num_ctx)
        whole = embed(server, SKY, num_ctx=num_ctx, truncate=False)
        if num_ctx < 3:  # no room for one token between [CLS] and [SEP]
            assert cut.status_code == whole.status_code == 400, (num_ctx, cut.text, whole.text)
            assert cut.json()["error"] == whole.json()["error"] == AFTER_TRUNCATION, num_ctx
            continue
        kept = min(num_ctx - 2, 6)
        sky, short = vectors(cut)
        assert cut.json()["prompt_eval_count"] == kept + 2 + 3, num_ctx
        assert cosine(sky, references[kept - 1]) >= 0.999, num_ctx
        assert cosine(short, short_reference) >= 0.999, num_ctx
        if num_ctx < 8:
            assert whole.status_code == 400 and whole.json()["error"] == TOO_LONG, (num_ctx, whole.text)
        else:
            assert cosine(vectors(whole)[0], EXPECTED[SKY]["api_embed"]) >= 0.99, num_ctx
    assert "terminated" not in server.output()
