"""api-contract.md §9 group A: probes that need no model, against a real server with an empty store."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, start_server

Z64 = "0" * 64
H = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"  # sha256("hello")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory: Path = tmp_path_factory.mktemp("empty")
    server = start_server(directory / "models", directory / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_a1_a2_root(http: httpx.Client) -> None:
    r = http.get("/")
    assert (r.status_code, r.headers["content-type"], r.content) == (200, "text/plain; charset=utf-8",
                                                                      b"Ollama is running")
    r = http.head("/")
    assert (r.status_code, r.content) == (200, b"")


def test_a3_version(http: httpx.Client) -> None:
    r = http.get("/api/version")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert re.fullmatch(rb'\{"version":"\d+\.\d+\.\d+"\}', r.content)


def test_a4_method_not_allowed(http: httpx.Client) -> None:
    r = http.get("/api/show")
    assert (r.status_code, r.text, r.headers["allow"]) == (405, "405 method not allowed", "POST")


def test_a5_unknown_path(http: httpx.Client) -> None:
    r = http.get("/api/nope")
    assert (r.status_code, r.text) == (404, "404 page not found")
    assert r.headers["content-type"].startswith("text/plain")


def test_a6_a8_empty_lists(http: httpx.Client) -> None:
    assert http.get("/api/tags").content == b'{"models":[]}'
    assert http.get("/api/ps").content == b'{"models":[]}'


@pytest.mark.parametrize(("method", "path", "body", "status", "expected"), [
    ("POST", "/api/generate", b"", 400, {"error": "missing request body"}),  # A9
    ("POST", "/api/chat", b"{", 400, {"error": "unexpected EOF"}),  # A10
    ("POST", "/api/generate", b"{}", 404, {"error": "model '' not found"}),  # A11
    ("POST", "/api/generate", b"null", 404, {"error": "model '' not found"}),  # A11
    ("POST", "/api/chat", b"{}", 400, {"error": "model is required"}),  # A12
    ("POST", "/api/chat", b"null", 400, {"error": "model is required"}),  # A12
    ("POST", "/api/generate", b'{"top_logprobs":21}', 400, {"error": "top_logprobs must be between 0 and 20"}),
    ("POST", "/api/chat", b'{"model":"m","top_logprobs":-1}', 400,
     {"error": "top_logprobs must be between 0 and 20"}),  # A14
    ("POST", "/api/generate", b'{"model":"nope-x"}', 404, {"error": "model 'nope-x' not found"}),  # A15
    ("POST", "/api/chat", b'{"model":"nope-x","messages":[{"role":"user","content":"hi"}]}', 404,
     {"error": "model 'nope-x' not found"}),  # A16
    ("POST", "/api/generate", b'{"model":"bad name!"}', 400, {"error": "invalid model name"}),  # A17
    ("POST", "/api/chat", b'{"model":"x","think":"extreme"}', 400,
     {"error": 'invalid think value: "extreme" (must be "high", "medium", "low", "max", true, or false)'}),
    ("POST", "/api/generate", b'{"model":"x","think":1}', 400,
     {"error": 'think must be a boolean or string ("high", "medium", "low", "max", true, or false)'}),
    ("POST", "/api/generate", b'{"model":"x","keep_alive":"10"}', 400,
     {"error": 'time: missing unit in duration "10"'}),  # A20
    ("POST", "/api/generate", b'{"model":"x","keep_alive":true}', 400, {"error": "Unsupported type: 'bool'"}),
    ("POST", "/api/generate", b'{"model":"x","images":["data:image/png;base64,AAAA"]}', 400,
     {"error": "illegal base64 data at input byte 4"}),  # A22
    ("POST", "/api/show", b"{}", 400, {"error": "model is required"}),  # A29
    ("POST", "/api/show", b'{"model":"nope-x"}', 404, {"error": "model 'nope-x:latest' not found"}),  # A30
    ("DELETE", "/api/delete", b'{"model":"nope-x"}', 404, {"error": "model 'nope-x' not found"}),  # A31
    ("DELETE", "/api/delete", b"{}", 400, {"error": "model is required"}),  # A32
    ("POST", "/api/copy", b'{"source":"","destination":"b"}', 400, {"error": 'source "" is invalid'}),  # A33
    ("POST", "/api/copy", b'{"source":"nope-x","destination":"b"}', 404, {"error": 'model "nope-x" not found'}),
    ("POST", "/api/create", b'{"model":"x"}', 400, {"error": "neither 'from' or 'files' was specified"}),  # A37
    ("POST", "/api/create", b'{"model":"x","files":{"a.gguf":""}}', 400, {"error": "invalid digest format"}),
    ("POST", "/api/create", json.dumps({"model": "x", "files": {"../a.gguf": f"sha256:{Z64}"}}).encode(), 400,
     {"error": "file path must be relative"}),  # A39
    ("POST", "/api/create", b'{"model":"bad name!","from":"m"}', 400, {"error": "invalid model name"}),  # A40
    ("POST", "/api/blobs/foo", b"", 400, {"error": "invalid digest format"}),  # A43
    ("POST", f"/api/blobs/sha256:{Z64}", b"hello", 400,
     {"error": f'digest mismatch, expected "sha256:{Z64}", got "sha256:{H}"'}),  # A44
])
def test_error_probes(http: httpx.Client, method: str, path: str, body: bytes, status: int, expected: dict) -> None:
    r = http.request(method, path, content=body)
    assert r.status_code == status, r.text
    assert r.json() == expected
    assert not r.content.endswith(b"\n")


def test_a23_wrong_field_type(http: httpx.Client) -> None:
    r = http.post("/api/generate", content=b'{"model":"x","stream":"yes"}')
    assert r.status_code == 400
    assert r.json()["error"].startswith("json: cannot unmarshal string into Go struct field")


def test_a37_content_type(http: httpx.Client) -> None:
    r = http.post("/api/create", content=b'{"model":"x"}')
    assert r.headers["content-type"] == "application/json"


def test_a41_a42_head_blob(http: httpx.Client) -> None:
    assert (http.head(f"/api/blobs/sha256:{Z64}").status_code, http.head(f"/api/blobs/sha256:{Z64}").content) == \
        (404, b"")
    assert http.head("/api/blobs/foo").status_code == 400


def test_a45_blob_upload_then_present(http: httpx.Client, server: Server) -> None:
    # A44 already kept "hello" under its real digest (Ollama does too), so this uses other bytes.
    data = b"hello, blobs"
    digest = hashlib.sha256(data).hexdigest()
    first = http.post(f"/api/blobs/sha256:{digest}", content=data)
    assert (first.status_code, first.content) == (201, b"")
    assert http.post(f"/api/blobs/sha256:{digest}", content=data).status_code == 200
    assert http.head(f"/api/blobs/sha256:{digest}").status_code == 200
    assert (server.models / "blobs" / f"sha256-{digest}").read_bytes() == data
    # the dash form names the same blob
    assert http.head(f"/api/blobs/sha256-{digest}").status_code == 200


def test_a44_mismatched_data_is_kept_under_its_digest(http: httpx.Client, server: Server) -> None:
    http.post(f"/api/blobs/sha256:{Z64}", content=b"hello")
    assert (server.models / "blobs" / f"sha256-{H}").read_bytes() == b"hello"
    assert not (server.models / "blobs" / f"sha256-{Z64}").exists()


def test_a46_disallowed_origin(http: httpx.Client) -> None:
    r = http.get("/api/version", headers={"Origin": "http://evil.example"})
    assert (r.status_code, r.content) == (403, b"")


def test_a47_preflight(http: httpx.Client) -> None:
    r = http.options("/api/chat", headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert r.headers["access-control-allow-methods"] == "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
    assert r.headers["access-control-max-age"] == "43200"
    allowed = r.headers["access-control-allow-headers"].split(",")
    assert "Authorization" in allowed and "Content-Type" in allowed


def test_a48_allowed_origin(http: httpx.Client) -> None:
    r = http.get("/api/version", headers={"Origin": "http://127.0.0.1:5173"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://127.0.0.1:5173"
    assert "Origin" in r.headers.get_list("vary")


def test_a49_foreign_host(http: httpx.Client) -> None:
    r = http.get("/api/version", headers={"Host": "example.com"})
    assert (r.status_code, r.content) == (403, b"")


@pytest.mark.parametrize("host", ["foo.localhost", "192.168.1.10"])
def test_a50_local_hosts(http: httpx.Client, host: str) -> None:
    assert http.get("/api/version", headers={"Host": host}).status_code == 200


def test_a51_options_local_name(http: httpx.Client) -> None:
    assert http.options("/api/version", headers={"Host": "localhost:11434"}).status_code == 204


def test_origins_env_extends_list(server_factory) -> None:
    server = server_factory(env={"OLLAMA_ORIGINS": "https://app.example.com,https://*.trusted.dev"})
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/api/version", headers={"Origin": "https://app.example.com"}).status_code == 200
        assert http.get("/api/version", headers={"Origin": "https://x.trusted.dev"}).status_code == 200
        assert http.get("/api/version", headers={"Origin": "https://x.untrusted.dev"}).status_code == 403
        star = server_factory(env={"OLLAMA_ORIGINS": "*"})
        r = httpx.get(star.url + "/api/version", headers={"Origin": "https://anything.example"})
        assert r.headers["access-control-allow-origin"] == "*"


def test_json_is_compact_and_html_escaped(http: httpx.Client) -> None:
    r = http.post("/api/chat", content=json.dumps({"model": "x", "think": "<b>&"}).encode())
    assert r.content.startswith(b'{"error":"invalid think value: \\"\\u003cb\\u003e\\u0026\\" (must be')
