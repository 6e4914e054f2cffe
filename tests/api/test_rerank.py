"""Reranking (/api/rerank, /v1/rerank): a tiny BERT cross-encoder GGUF, created and served like any model,
orders and scores documents as its numpy forward pass does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, start_server
from tests.reranker import TinyReranker, create_reranker, write_reranker_gguf

QUERY = "what is the capital of france"
DOCUMENTS = ["cats sleep a lot", "paris is the capital of france", "berlin is the capital of germany",
             "bread needs flour and water", "rivers flow to the sea"]


@pytest.fixture(scope="module")
def reranker(tmp_path_factory: pytest.TempPathFactory) -> TinyReranker:
    return write_reranker_gguf(tmp_path_factory.mktemp("reranker") / "rr.gguf")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, reranker: TinyReranker) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("rerank")
    server = start_server(directory / "models", directory / "server.log", bundled=True)
    create_reranker(server.url, "rr", reranker.path)
    yield server
    server.stop()


def _expected(reranker: TinyReranker, query: str, documents: list[str]) -> list[tuple[int, float]]:
    scores = [reranker.score(query, document) for document in documents]
    return sorted(enumerate(scores), key=lambda pair: -pair[1])


def _assert_matches(results: list[dict], expected: list[tuple[int, float]]) -> None:
    assert [r["index"] for r in results] == [index for index, _ in expected]
    for result, (_, score) in zip(results, expected, strict=True):
        assert result["relevance_score"] == pytest.approx(score, rel=1e-2, abs=2e-2)


def test_created_like_any_model_with_a_rerank_capability(server: Server) -> None:
    shown = httpx.post(server.url + "/api/show", json={"model": "rr"}).json()
    assert shown["capabilities"] == ["rerank"]
    assert shown["model_info"]["bert.pooling_type"] == 4
    listed = {m["name"]: m for m in httpx.get(server.url + "/api/tags").json()["models"]}
    assert listed["rr:latest"]["capabilities"] == ["rerank"]


def test_order_and_scores_match_numpy(server: Server, reranker: TinyReranker) -> None:
    answer = httpx.post(server.url + "/api/rerank", timeout=120,
                        json={"model": "rr", "query": QUERY, "documents": DOCUMENTS})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = _expected(reranker, QUERY, DOCUMENTS)
    _assert_matches(body["results"], expected)
    gaps = [earlier - later for (_, later), (_, earlier) in zip(expected[1:], expected[:-1], strict=True)]
    assert min(gaps) > 0.5  # far apart: the order is no accident
    assert body["model"] == "rr"
    assert body["prompt_eval_count"] == sum(len(reranker.pair(QUERY, d)) for d in DOCUMENTS)
    assert body["total_duration"] >= body["load_duration"] > 0
    assert "document" not in body["results"][0]


def test_a_rerank_template_lays_the_pair_out(server: Server, tmp_path: Path) -> None:
    templated = write_reranker_gguf(tmp_path / "rrt.gguf", templated=True)
    create_reranker(server.url, "rrt", templated.path)
    body = httpx.post(server.url + "/api/rerank", timeout=120,
                      json={"model": "rrt", "query": QUERY, "documents": DOCUMENTS}).json()
    assert body["prompt_eval_count"] == sum(len(templated.pair(QUERY, d)) for d in DOCUMENTS)
    _assert_matches(body["results"], _expected(templated, QUERY, DOCUMENTS))


def test_top_n_and_documents_as_objects(server: Server, reranker: TinyReranker) -> None:
    answer = httpx.post(server.url + "/api/rerank", timeout=120, json={
        "model": "rr", "query": QUERY, "documents": [{"text": d} for d in DOCUMENTS], "top_n": 2,
        "return_documents": True}).json()
    expected = _expected(reranker, QUERY, DOCUMENTS)[:2]
    _assert_matches(answer["results"], expected)
    assert [r["document"]["text"] for r in answer["results"]] == [DOCUMENTS[i] for i, _ in expected]


def test_v1_rerank_in_llama_servers_shape(server: Server, reranker: TinyReranker) -> None:
    answer = httpx.post(server.url + "/v1/rerank", timeout=120,
                        json={"model": "rr", "query": QUERY, "documents": DOCUMENTS, "top_n": 3})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "list" and body["model"] == "rr"
    tokens = sum(len(reranker.pair(QUERY, d)) for d in DOCUMENTS)
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    _assert_matches(body["results"], _expected(reranker, QUERY, DOCUMENTS)[:3])


def test_a_long_document_is_cut_to_the_window(server: Server, reranker: TinyReranker) -> None:
    long_document = " ".join(["rivers flow to the sea"] * 10)  # 50 words
    window = 24
    body = {"model": "rr", "query": QUERY, "documents": [long_document], "options": {"num_ctx": window}}
    answer = httpx.post(server.url + "/api/rerank", timeout=120, json=body).json()
    room = window - len(reranker.pair(QUERY, ""))
    cut = " ".join(long_document.split()[:room])
    assert answer["prompt_eval_count"] == window
    _assert_matches(answer["results"], _expected(reranker, QUERY, [cut]))
    refused = httpx.post(server.url + "/api/rerank", timeout=120, json={**body, "truncate": False})
    assert refused.status_code == 400
    assert refused.json() == {"error": "the input length exceeds the context length"}


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    ("/api/rerank", {"model": "rr", "documents": ["a"]}, 400, '"query" must be provided'),
    ("/api/rerank", {"model": "rr", "query": "q", "documents": []}, 400,
     '"documents" must be a non-empty string array'),
    ("/api/rerank", {"model": "rr", "query": "q", "documents": [1]}, 400,
     '"documents" must be a non-empty string array'),
    ("/api/rerank", {"model": "rr", "query": "q", "documents": ["a"], "top_n": 0}, 400,
     '"top_n" must be at least 1'),
    ("/api/rerank", {"model": "absent", "query": "q", "documents": ["a"]}, 404, "model 'absent' not found"),
    ("/api/rerank", {"model": "smollm2:135m", "query": "q", "documents": ["a"]}, 400,
     "registry.ollama.ai/library/smollm2:135m does not support reranking"),
    ("/api/embed", {"model": "rr", "input": "a"}, 400, "registry.ollama.ai/library/rr:latest does not support "
                                                       "embeddings"),
    ("/api/generate", {"model": "rr", "prompt": "a"}, 400, '"rr" does not support generate'),
])
def test_errors(server: Server, path: str, body: dict, status: int, message: str) -> None:
    answer = httpx.post(server.url + path, json=body, timeout=120)
    assert answer.status_code == status, answer.text
    assert answer.json() == {"error": message}


def test_v1_errors_are_openai_envelopes(server: Server) -> None:
    answer = httpx.post(server.url + "/v1/rerank", json={"model": "rr", "documents": ["a"]})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == '"query" must be provided'
    assert answer.json()["error"]["type"] == "invalid_request_error"
