"""Issue 13 item 1: bounded memory. JSON bodies have a size limit (POLLAMA_MAX_BODY; blob uploads still
stream), prompts beyond what a window could use are cut before they are tokenized, and options are clamped
to what the model can use (repeat_last_n 5e8 cost a runner 1.9 GB)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from engine.runner.llama import LlamaModel
from engine.runner.loop import fit_prompt
from engine.runner.window import bounded_tokens, prompt_tokens
from tests.conftest import Server, start_server
from tests.hardening.helpers import memory_kib

MODEL = "smollm2:135m"
LIMIT = 1_000_000


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("limited")
    server = start_server(directory / "models", directory / "server.log", {"POLLAMA_MAX_BODY": str(LIMIT)},
                          bundled=True)
    yield server
    server.stop()


TOO_LARGE = f"request body too large: the limit is {LIMIT} bytes (POLLAMA_MAX_BODY)"


@pytest.mark.parametrize("path", ["/api/show", "/api/generate", "/v1/chat/completions", "/v1/messages"])
def test_a_body_over_the_limit_is_refused(limited: Server, path: str) -> None:
    body = json.dumps({"model": MODEL, "prompt": "x" * LIMIT}).encode()
    r = httpx.post(limited.url + path, content=body, timeout=60)
    assert r.status_code == 413
    message = r.json()["error"]
    assert (message["message"] if isinstance(message, dict) else message) == TOO_LARGE


def test_a_chunked_body_is_counted_as_it_arrives(limited: Server) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model":"smollm2:135m","prompt":"'
        for _ in range(2 * LIMIT // 65536):
            yield b"x" * 65536
        yield b'"}'

    r = httpx.post(limited.url + "/api/generate", content=chunks(), timeout=60)  # no Content-Length
    assert r.status_code == 413 and r.json() == {"error": TOO_LARGE}


def test_blob_uploads_are_not_json_bodies(limited: Server) -> None:
    import hashlib

    data = b"\1" * (3 * LIMIT)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert httpx.post(f"{limited.url}/api/blobs/{digest}", content=data, timeout=60).status_code == 201


def test_a_body_of_too_many_json_values_is_refused(shared_server: Server) -> None:
    """Decoded, `[0,0,…]` costs 4 times its text and `[{},…]` 25 times: the number of values is bounded."""
    body = b'{"model":"smollm2:135m","context":[' + b"0," * 4_000_000 + b"0]}"
    r = httpx.post(shared_server.url + "/api/generate", content=body, timeout=60)
    assert r.status_code == 413
    assert r.json() == {"error": "request body too large: more than 4000000 JSON values"}


def test_repeat_last_n_is_clamped_to_the_context(limited: Server) -> None:
    with httpx.Client(base_url=limited.url, timeout=120) as http:
        assert http.post("/api/generate", json={"model": MODEL}).status_code == 200
        (runner,) = limited.runner_pids()
        before = memory_kib(runner)
        r = http.post("/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False, "options": {
            "repeat_last_n": 500_000_000, "repeat_penalty": 1.1, "num_predict": 4}})
        assert r.status_code == 200 and r.json()["done"] is True
        assert memory_kib(runner) - before < 100_000  # unclamped, the penalty window alone is 2 GB


def test_num_thread_is_clamped_to_the_cpus(limited: Server) -> None:
    with httpx.Client(base_url=limited.url, timeout=120) as http:
        r = http.post("/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False, "options": {
            "num_thread": 1_000_000, "num_predict": 2}})
        assert r.status_code == 200 and r.json()["done"] is True
        assert http.post("/api/generate", json={"model": MODEL}).status_code == 200  # back to the default


@pytest.mark.parametrize("num_keep", [-1, 0, 4, 100])
def test_a_prompt_cut_before_tokenizing_keeps_the_tokens_truncation_keeps(model: LlamaModel, num_keep: int) -> None:
    prompt = "".join(f"Line {i}: the quick brown fox, <|im_start|> jumps ünïcödé 😀 over {i * 7}.\n"
                     for i in range(5000))
    num_ctx = 256
    full = model.tokenize(prompt, add_special=True, parse_special=True)
    keep = min((len(full) if num_keep < 0 else num_keep) + model.add_bos, num_ctx - 1)
    assert prompt_tokens(model, prompt, num_ctx, num_keep, True) == fit_prompt(full, num_ctx, keep, True)
    short = prompt[:200]
    assert prompt_tokens(model, short, num_ctx, num_keep, True) == model.tokenize(short, add_special=True,
                                                                                  parse_special=True)


def test_a_text_is_tokenized_only_as_far_as_the_caller_looks(model: LlamaModel) -> None:
    """Embedding inputs are cut to their head, fitting a chat counts from the tail: the same tokens there."""
    text = "words and more words, " * 50000
    full = model.tokenize(text, add_special=True, parse_special=True)
    head = bounded_tokens(model, text, head=256, add_special=True, parse_special=True)
    assert head == full[:257]
    tail = bounded_tokens(model, text, tail=256, add_special=True, parse_special=True)
    assert tail == full[-256:]
    short = "a few words"
    assert bounded_tokens(model, short, head=256, add_special=True, parse_special=True) == \
        model.tokenize(short, add_special=True, parse_special=True)
