"""Issue 13 items 2, 4 and 10: inputs that broke a runner or a loaded model for everyone (lone surrogates,
token ids outside the vocabulary, NaN and Infinity) are replaced or refused at the edge; `null` in a
string or bool field is accepted as absent, as Go does."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server

MODEL = "smollm2:135m"
SHORT = {"temperature": 0, "num_predict": 2}
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def http(shared_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.url, timeout=120) as client:
        assert client.post("/api/generate", json={"model": MODEL}).status_code == 200  # loaded
        yield client


def post_raw(http: httpx.Client, path: str, text: str) -> httpx.Response:
    """`text` as the body, byte for byte: escapes such as \\ud800 and literals such as NaN reach the server."""
    return http.post(path, content=text.encode(), headers={"content-type": "application/json"})


def still_serving(http: httpx.Client, server: Server, runner: list[int]) -> None:
    """The model answers and its runner is the one from before: nothing killed it."""
    r = http.post("/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False, "options": SHORT})
    assert r.status_code == 200, r.text
    assert server.runner_pids() == runner
    assert http.get("/api/ps").status_code == 200


SURROGATES = [
    ("/api/generate", {"model": MODEL, "prompt": "\ud800", "stream": False, "options": SHORT}),
    ("/api/generate", {"model": MODEL, "prompt": "a\udfffb", "system": "\udc00", "stream": False, "options": SHORT}),
    ("/api/chat", {"model": MODEL, "messages": [{"role": "user", "content": "\ud800"}], "stream": False,
                   "options": SHORT}),
    ("/api/chat", {"model": MODEL, "messages": [{"role": "\ud800", "content": "hi"}], "stream": False,
                   "options": SHORT}),
    ("/api/embed", {"model": MODEL, "input": ["\ud800", "fine"]}),
    ("/api/embeddings", {"model": MODEL, "prompt": "\udbff"}),
    ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "\ud800"}], "max_tokens": 2}),
    ("/v1/completions", {"model": MODEL, "prompt": "\ud800", "max_tokens": 2}),
    ("/v1/embeddings", {"model": MODEL, "input": "\ud800"}),
    ("/v1/messages", {"model": MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": "\ud800"}]}),
    ("/api/show", {"model": "smollm2\ud800"}),
    ("/api/generate", {"model": "\ud800", "prompt": "hi"}),
    ("/v1/chat/completions", {"model": "\ud800", "messages": USER}),
    ("/api/create", {"model": "x\ud800", "from": MODEL}),
]


@pytest.mark.parametrize(("path", "body"), SURROGATES)
def test_a_lone_surrogate_is_replaced_at_the_edge(http: httpx.Client, shared_server: Server, path: str,
                                                  body: dict) -> None:
    runner = shared_server.runner_pids()
    r = post_raw(http, path, json.dumps(body))  # json.dumps writes the surrogate as its \u escape
    assert r.status_code < 500, r.text
    assert r.headers["content-type"].startswith("application/")
    if r.status_code == 200 and path == "/api/generate":
        assert r.json()["done"] is True
    still_serving(http, shared_server, runner)


@pytest.mark.parametrize("token", [49152, -5, 999999999, 2**40])
def test_context_ids_outside_the_vocabulary_are_refused(http: httpx.Client, shared_server: Server,
                                                         token: int) -> None:
    runner = shared_server.runner_pids()
    r = http.post("/api/generate", json={"model": MODEL, "prompt": "hi", "context": [1, token], "stream": False,
                                         "options": SHORT})
    assert r.status_code == 400
    assert r.json() == {"error": f"invalid token id {token}: the vocabulary has ids 0 to 49151"}
    still_serving(http, shared_server, runner)


NON_FINITE = [
    ("/api/generate", '{"model":"%s","prompt":"hi","options":{"temperature":NaN}}', "invalid character 'N'"),
    ("/api/generate", '{"model":"%s","prompt":"hi","options":{"top_p":Infinity}}', "invalid character 'I'"),
    ("/api/generate", '{"model":"%s","prompt":"hi","options":{"seed":-Infinity}}', "invalid character 'I'"),
    ("/api/generate", '{"model":"%s","prompt":"hi","keep_alive":NaN}', "invalid character 'N'"),
    ("/api/generate", '{"model":"%s","prompt":"hi","options":{"temperature":1e400}}', "cannot unmarshal number"),
    ("/api/chat", '{"model":"%s","messages":[],"keep_alive":Infinity}', "invalid character 'I'"),
    ("/api/embed", '{"model":"%s","input":"hi","options":{"temperature":NaN}}', "invalid character 'N'"),
    ("/v1/chat/completions", '{"model":"%s","messages":[{"role":"user","content":"hi"}],"temperature":NaN}',
     "invalid character 'N'"),
    ("/v1/messages", '{"model":"%s","max_tokens":1,"messages":[{"role":"user","content":"hi"}],"top_p":Infinity}',
     "invalid character 'I'"),
    ("/api/show", '{"model":"%s","options":{"x":NaN}}', "invalid character 'N'"),
]


@pytest.mark.parametrize(("path", "template", "message"), NON_FINITE)
def test_non_finite_numbers_are_refused(http: httpx.Client, shared_server: Server, path: str, template: str,
                                        message: str) -> None:
    runner = shared_server.runner_pids()
    r = post_raw(http, path, template % MODEL)
    assert r.status_code == 400, r.text
    assert message in r.text
    still_serving(http, shared_server, runner)


@pytest.mark.parametrize(("keep_alive", "message"), [("", 'time: invalid duration ""'),
                                                     ("-", 'time: invalid duration "-"'),
                                                     ("99999999999999999999h", "time: invalid duration")])
def test_a_keep_alive_that_is_no_duration_is_refused(http: httpx.Client, shared_server: Server, keep_alive: str,
                                                     message: str) -> None:
    runner = shared_server.runner_pids()
    r = http.post("/api/generate", json={"model": MODEL, "prompt": "hi", "keep_alive": keep_alive})
    assert r.status_code == 400 and message in r.json()["error"]
    still_serving(http, shared_server, runner)


def test_a_huge_keep_alive_is_forever_and_poisons_nothing(http: httpx.Client, shared_server: Server) -> None:
    runner = shared_server.runner_pids()
    r = http.post("/api/generate", json={"model": MODEL, "keep_alive": 1e300})
    assert r.status_code == 200
    (entry,) = http.get("/api/ps").json()["models"]
    assert int(entry["expires_at"][:4]) > 2300  # Go's forever: about 292 years on
    still_serving(http, shared_server, runner)
    assert http.post("/api/generate", json={"model": MODEL, "keep_alive": "5m"}).status_code == 200


def test_null_in_string_and_bool_fields_is_absent(http: httpx.Client) -> None:
    r = post_raw(http, "/api/generate", json.dumps({
        "model": MODEL, "prompt": "hi", "system": None, "raw": None, "template": None, "suffix": None,
        "stream": False, "options": SHORT}))
    assert r.status_code == 200 and r.json()["done"] is True
    r = post_raw(http, "/api/generate", json.dumps({"model": MODEL, "prompt": None, "stream": None}))
    assert r.status_code == 200 and r.json()["done_reason"] == "load"
    r = post_raw(http, "/api/chat", json.dumps({
        "model": MODEL, "stream": False, "options": SHORT,
        "messages": [{"role": "system", "content": None}, {"role": "user", "content": "hi", "images": None}]}))
    assert r.status_code == 200 and r.json()["done"] is True
