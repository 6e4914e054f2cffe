"""Issue 13: a fuzz run over every route: wrong types, non-finite numbers, lone surrogates, deep nesting and
huge bodies, in fields and as whole bodies. No 5xx except where Ollama gives one too (a registry that cannot
be reached), never a plain-text error, never a runner's death; bounded in count and time (a fixed seed,
CASES cases, each answered within the client's timeout)."""

from __future__ import annotations

import copy
import json
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import Server, start_server

MODEL = "smollm2:135m"
CASES = 400
BUDGET_SECONDS = 480
REQUEST_TIMEOUT = 120
SHORT = {"temperature": 0, "num_predict": 1}
USER = [{"role": "user", "content": "hi"}]
# A registry nobody listens on: pulls and pushes fail at once, with Ollama's 5xx.
NOWHERE = "127.0.0.1:9/library/none:latest"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    body: dict[str, Any] | None
    fields: tuple[str, ...] = ()  # dotted paths of the values a case replaces
    server_errors: bool = False  # Ollama answers 5xx here too (the registry is unreachable)


ROUTES = [
    Route("POST", "/api/generate", {"model": MODEL, "prompt": "hi", "stream": False, "options": SHORT},
          ("model", "prompt", "system", "template", "suffix", "raw", "context", "images", "format", "keep_alive",
           "think", "options.temperature", "options.top_k", "options.stop", "options.num_ctx", "stream")),
    Route("POST", "/api/chat", {"model": MODEL, "messages": USER, "stream": False, "options": SHORT},
          ("model", "messages", "messages.0", "messages.0.role", "messages.0.content", "messages.0.images",
           "messages.0.tool_calls", "tools", "format", "keep_alive", "think", "options.repeat_last_n",
           "options.seed", "stream")),
    Route("POST", "/api/embed", {"model": MODEL, "input": ["hi", "there"]},
          ("model", "input", "input.0", "truncate", "dimensions", "keep_alive", "options.num_ctx")),
    Route("POST", "/api/embeddings", {"model": MODEL, "prompt": "hi"}, ("model", "prompt", "options")),
    Route("POST", "/api/show", {"model": MODEL}, ("model", "name", "system", "verbose", "options")),
    Route("POST", "/api/create", {"model": "fuzzed", "from": MODEL, "system": "hi", "stream": False},
          ("model", "from", "files", "adapters", "template", "system", "license", "parameters", "messages",
           "quantize", "stream")),
    Route("POST", "/api/copy", {"source": MODEL, "destination": "fuzzcopy"}, ("source", "destination")),
    Route("DELETE", "/api/delete", {"model": "fuzzcopy"}, ("model", "name")),
    Route("POST", "/api/pull", {"model": NOWHERE, "insecure": True, "stream": False},
          ("model", "insecure", "stream"), server_errors=True),
    Route("POST", "/api/push", {"model": NOWHERE, "insecure": True, "stream": False},
          ("model", "insecure", "stream"), server_errors=True),
    Route("POST", "/v1/chat/completions", {"model": MODEL, "messages": USER, "max_tokens": 1},
          ("model", "messages", "messages.0.content", "messages.0.role", "temperature", "top_p", "stop", "seed",
           "response_format", "tools", "stream", "stream_options", "reasoning_effort", "logprobs")),
    Route("POST", "/v1/completions", {"model": MODEL, "prompt": "hi", "max_tokens": 1},
          ("model", "prompt", "suffix", "temperature", "stop", "seed", "logprobs", "stream")),
    Route("POST", "/v1/embeddings", {"model": MODEL, "input": "hi"},
          ("model", "input", "encoding_format", "dimensions")),
    Route("POST", "/v1/messages", {"model": MODEL, "max_tokens": 1, "messages": USER},
          ("model", "messages", "messages.0.content", "messages.0.role", "system", "temperature", "tools",
           "tool_choice", "thinking", "stop_sequences", "stream", "metadata")),
    Route("GET", "/v1/models/{x}", None), Route("GET", "/api/tags", None), Route("GET", "/api/ps", None),
    Route("GET", "/v1/models", None), Route("GET", "/api/version", None),
    Route("HEAD", "/api/blobs/{x}", None), Route("POST", "/api/blobs/{x}", None),
]
# Generation must stay short: these keep their place (only wrong types reach them).
LENGTH_KEYS = {"options", "max_tokens", "max_completion_tokens", "max_output_tokens", "num_predict"}

HOSTILE_VALUES: list[Any] = [
    None, True, 0, -1, 2**63, -(2**63) - 1, 1.5, "", "\ud800", "a\udfffb", "x" * 1_000_000, [], [None], {},
    {"a": {"b": []}}, ["\ud800", 1, None], [[[[[[[[[[]]]]]]]]]], 10**30,
]
# Written into the body's text as they are: what no JSON encoder produces.
RAW_VALUES = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" * 5000, "[" * 300 + "]" * 300,
              '"\\ud800\\udc00\\udbff"', '"\\u0000"']
WHOLE_BODIES = [b"", b"null", b"[]", b"42", b'"text"', b"{", b'{"model":', b"\xff\xfe", b"NaN",
                b"[" * 100_000 + b"]" * 100_000, b'{"model":"' + b"\\ud800" * 1000 + b'"}',
                b'{"a":' * 5000 + b"1" + b"}" * 5000]
PATH_VALUES = ["%ED%A0%80", "x" * 5000, "sha256:" + "0" * 64, "..%2F..%2Fetc%2Fpasswd", "%00", "a:b:c"]
MARKER = "__RAW__"


def with_value(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    result = copy.deepcopy(body)
    *parents, last = dotted.split(".")
    node: Any = result
    for part in parents:
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
        if not isinstance(node, dict | list):
            return result
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return result


def all_routes() -> list[Route]:
    """Every operation of /openapi.json, fuzzed in every top-level field of its request schema; ROUTES gives
    the base bodies (valid requests that stay short) and nested fields of the routes that run the model."""
    from server.app import ROUTERS
    from server.openapi import openapi_document

    document = openapi_document(ROUTERS, title="pollama", version="0", keys=False)
    known = {(route.method, route.path): route for route in ROUTES}
    found = []
    for documented_path, operations in document["paths"].items():
        path = re.sub(r"\{[^}]*\}", "{x}", documented_path)
        for method, operation in operations.items():
            method = method.upper()
            if method == "HEAD" and path != "/api/blobs/{x}" or path == "/":
                continue
            route = known.get((method, path))
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None:
                found.append(route or Route(method, path, None))
                continue
            properties = _schema(document, content["schema"]).get("properties", {})
            base = route.body if route else content.get("example", {"model": MODEL})
            fields = tuple(dict.fromkeys([*(route.fields if route else ()), *properties]))
            found.append(Route(method, path, base, fields, route.server_errors if route else False))
    return found


def _schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def cases(rng: random.Random) -> list[tuple[Route, str, bytes]]:
    """(route, URL path, body) for every whole-body case and a sample of the field cases."""
    found: list[tuple[Route, str, bytes]] = []
    field_cases: list[tuple[Route, str, bytes]] = []
    for route in all_routes():
        if "{x}" in route.path:
            for value in PATH_VALUES:
                found.append((route, route.path.replace("{x}", value), b"x" if route.method == "POST" else b""))
            continue
        if route.body is None:
            found.append((route, route.path, b""))
            continue
        for body in WHOLE_BODIES:
            found.append((route, route.path, body))
        for field in route.fields:
            for value in HOSTILE_VALUES:
                if field.split(".")[0] in LENGTH_KEYS and not isinstance(value, str | list):
                    continue
                text = json.dumps(with_value(route.body, field, value))  # \u escapes for surrogates
                field_cases.append((route, route.path, text.encode()))
            for raw in RAW_VALUES:
                if field.split(".")[0] in LENGTH_KEYS:
                    continue
                text = json.dumps(with_value(route.body, field, MARKER)).replace(f'"{MARKER}"', raw)
                field_cases.append((route, route.path, text.encode()))
    rng.shuffle(field_cases)
    return found + field_cases[: max(0, CASES - len(found))]


def family_error(path: str, response: httpx.Response) -> str:
    """The error message, checking the body is JSON in the shape of the route's family."""
    assert response.headers.get("content-type", "").startswith("application/json"), \
        f"{path}: not JSON: {response.status_code} {response.text[:300]!r}"
    body = response.json()
    if path.startswith("/v1/messages"):
        assert body["type"] == "error", body
        return body["error"]["message"]
    if path.startswith("/v1/"):
        return body["error"]["message"]
    return body["error"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("fuzz")
    # A small window keeps the work of each case small (a 1 MB prompt is still cut to it), so the count of
    # cases bounds the time.
    server = start_server(directory / "models", directory / "server.log",
                          {"OLLAMA_NUM_PARALLEL": "2", "OLLAMA_CONTEXT_LENGTH": "512"}, bundled=True)
    yield server
    server.stop()


def test_no_route_answers_hostile_input_with_a_server_error(server: Server) -> None:
    rng = random.Random(13)
    chosen = cases(rng)
    assert len(chosen) >= CASES
    failures: list[str] = []
    started = time.monotonic()
    sent = 0
    with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT) as http:
        assert http.post("/api/generate", json={"model": MODEL}).status_code == 200
        for route, path, body in chosen:
            if time.monotonic() - started > BUDGET_SECONDS:
                break
            sent += 1
            where = f"{route.method} {path} {body[:120]!r}"
            try:
                response = http.request(route.method, path, content=body or None)
            except httpx.TimeoutException:
                failures.append(f"{where}: no answer in {REQUEST_TIMEOUT} s")
                continue
            status = response.status_code
            where += f" -> {status}"
            if status >= 500 and not route.server_errors:
                failures.append(f"{where}: {response.text[:200]}")
            elif status >= 400 and route.method != "HEAD" and not (status in (404, 405) and
                                                                   response.text.endswith("not found")):
                try:
                    family_error(path, response)
                except (AssertionError, KeyError, TypeError, ValueError) as e:
                    failures.append(f"{where}: {e}")
        assert not failures, f"{len(failures)} of {sent} cases:\n" + "\n".join(failures[:30])
        assert sent >= CASES // 2, f"only {sent} cases in {BUDGET_SECONDS} s"
        r = http.post("/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False, "options": SHORT})
        assert r.status_code == 200
    assert "llama runner process has terminated" not in server.output()
    assert len(server.runner_pids()) == 1


def test_the_fuzz_cases_are_fixed_by_the_seed() -> None:
    first = [(r.path, p, b) for r, p, b in cases(random.Random(13))]
    assert first == [(r.path, p, b) for r, p, b in cases(random.Random(13))]
    assert len({path for _, path, _ in first}) >= len(ROUTES)


def test_every_documented_operation_is_fuzzed() -> None:
    from server.app import ROUTERS
    from server.openapi import openapi_document

    operations = {(method.upper(), re.sub(r"\{[^}]*\}", "{x}", path))
                  for path, methods in openapi_document(ROUTERS, title="p", version="0", keys=False)["paths"].items()
                  for method in methods if method != "head"} - {("GET", "/")}
    fuzzed = {(route.method, route.path) for route, _, _ in cases(random.Random(13))}
    assert operations <= fuzzed, operations - fuzzed
