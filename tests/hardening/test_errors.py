"""Issue 13 item 7: every error is JSON in its route family's shape (Ollama's `{"error": …}`, OpenAI's
envelope on /v1, Anthropic's on /v1/messages), never a plain-text traceback, and a client's mistake is a
4xx: deep nesting is Go's `exceeded max depth`, not a RecursionError."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server

MODEL = "smollm2:135m"
DEEP = "[" * 100_000 + "]" * 100_000
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def http(shared_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.url, timeout=120) as client:
        yield client


def error_text(path: str, r: httpx.Response) -> str:
    """The message of an error in the shape of `path`'s family (and that it is that shape)."""
    assert r.headers["content-type"].startswith("application/json"), r.text
    body = r.json()
    if path == "/v1/messages":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
        return body["error"]["message"]
    if path.startswith("/v1/"):
        assert set(body["error"]) == {"message", "type", "param", "code"}
        return body["error"]["message"]
    assert set(body) == {"error"}
    return body["error"]


@pytest.mark.parametrize("path", ["/api/show", "/api/generate", "/api/chat", "/api/embed", "/api/create",
                                  "/api/pull", "/v1/chat/completions", "/v1/completions", "/v1/embeddings",
                                  "/v1/messages"])
def test_deep_nesting_is_a_400_in_the_route_family_shape(http: httpx.Client, path: str) -> None:
    r = http.post(path, content=DEEP.encode())
    assert r.status_code == 400
    assert error_text(path, r) == "exceeded max depth"


@pytest.mark.parametrize(("path", "field"), [("/api/generate", "format"), ("/api/chat", "tools"),
                                             ("/v1/chat/completions", "response_format"),
                                             ("/v1/messages", "tools")])
def test_nesting_within_the_bound_is_no_server_error(http: httpx.Client, path: str, field: str) -> None:
    """Just under the bound, every step that walks the value (validation, schemas, templates) copes."""
    nested: object = "leaf"
    for _ in range(60):  # two levels each: 121 in all, under the bound of 128
        nested = {"type": "object", "properties": {"x": nested}}
    body = {"model": MODEL, "prompt": "hi", "messages": USER, "max_tokens": 1, "stream": False, field: nested}
    r = http.post(path, json=body)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        error_text(path, r)


@pytest.fixture(scope="module")
def broken_template(http: httpx.Client) -> str:
    r = http.post("/api/create", json={"model": "badtemplate", "from": MODEL, "template": "{{ index .Messages 5 }}",
                                       "stream": False})
    assert r.status_code == 200, r.text
    return "badtemplate:latest"


@pytest.mark.parametrize(("path", "body"), [
    ("/api/generate", {"prompt": "hi", "stream": False}),
    ("/api/chat", {"messages": USER}),
    ("/v1/chat/completions", {"messages": USER}),
    ("/v1/messages", {"messages": USER, "max_tokens": 1}),
])
def test_a_template_that_fails_to_execute_is_a_clear_json_error(http: httpx.Client, broken_template: str,
                                                                path: str, body: dict) -> None:
    r = http.post(path, json={"model": broken_template, **body})
    assert r.status_code == 500  # as in Ollama: the model is broken, not the request
    assert "error calling index: index out of range: 5" in error_text(path, r)


def test_an_unknown_path_keeps_gins_plain_text(http: httpx.Client) -> None:
    """The one plain-text answer Ollama gives too."""
    r = http.get("/api/nothing-here")
    assert r.status_code == 404 and r.text == "404 page not found"
