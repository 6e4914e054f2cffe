"""`/openapi.json` and `/docs`: every route described from the wire contract, and schemathesis over the served
document against a real server: no 5xx, and no answer that breaks the document's own schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import response_schema_conformance
from starlette.routing import Route

from server.app import ROUTERS
from server.openapi import doc_of, openapi_document
from server.version import VERSION
from tests.conftest import Server, start_server
from tests.reranker import create_reranker, write_reranker_gguf

# Pull and push go to registries named in the body: a fuzzer would send them to the internet.
NOT_FUZZED = ("/api/pull", "/api/push")
REQUEST_TIMEOUT = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory: Path = tmp_path_factory.mktemp("openapi")
    server = start_server(directory / "models", directory / "server.log", bundled=True)
    # the examples of /api/rerank and /v1/rerank name a reranker
    create_reranker(server.url, "reranker", write_reranker_gguf(directory / "reranker.gguf").path)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def document(server: Server) -> dict:
    answer = httpx.get(server.url + "/openapi.json")
    assert answer.status_code == 200
    return answer.json()


def test_every_route_is_described(document: dict) -> None:
    assert document["openapi"].startswith("3.1")
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, Route)
            if route.path in ("/openapi.json", "/docs"):
                continue
            assert doc_of(route) is not None, f"{route.path} has no @documented"
            operations = document["paths"][route.path]
            for method in route.methods or ():
                assert "default" in operations[method.lower()]["responses"], (method, route.path)


def test_models_come_from_the_contract(document: dict) -> None:
    schemas = document["components"]["schemas"]
    generate = document["paths"]["/api/generate"]["post"]
    assert generate["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/GenerateRequest"}
    assert set(generate["responses"]["200"]["content"]) == {"application/json", "application/x-ndjson"}
    fields = set(schemas["GenerateRequest"]["properties"])
    assert {"model", "prompt", "options", "keep_alive", "think", "images"} <= fields
    assert schemas["GenerateResponse"]["required"] == ["model", "created_at"]
    assert "blocks" not in schemas["AnthropicMessageParam"]["properties"]  # decoded, not sent
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert chat["responses"]["default"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/OpenAIErrorResponse")
    assert document["paths"]["/v1/messages"]["post"]["tags"] == ["Anthropic"]
    assert "securitySchemes" not in document["components"]


def test_docs_page(server: Server) -> None:
    page = httpx.get(server.url + "/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/openapi.json" in page.text


def test_with_keys_the_document_names_its_schemes() -> None:
    document = openapi_document(ROUTERS, title="pollama", version="0", keys=True)
    assert document["security"] == [{"bearer": []}, {"apiKey": []}]
    assert document["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "in": "header",
                                                                   "name": "x-api-key"}
    assert document["paths"]["/api/version"]["get"]["security"] == [{}]
    assert "security" not in document["paths"]["/api/tags"]["get"]


def test_the_served_document_is_the_one_fuzzed(document: dict) -> None:
    assert document == json.loads(json.dumps(DOCUMENT))


# Built in-process so that pytest can make one test per operation at collection; the test above shows it is
# the document the server serves.
DOCUMENT = openapi_document(ROUTERS, title="pollama", version=VERSION, keys=False)
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path=list(NOT_FUZZED))


EXAMPLES = [(path, method.upper(), operation["requestBody"]["content"]["application/json"]["example"])
            for path, operations in DOCUMENT["paths"].items() for method, operation in operations.items()
            if "example" in operation.get("requestBody", {}).get("content", {}).get("application/json", {})]


@pytest.mark.parametrize(("path", "method", "body"), EXAMPLES, ids=[f"{m} {p}" for p, m, _ in EXAMPLES])
def test_documented_examples(server: Server, path: str, method: str, body: dict) -> None:
    """Each documented example works on the real model, and its answer is what the document says."""
    case = schema[path][method].Case(body=body)
    response = case.call(base_url=server.url, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text
    case.validate_response(response, checks=[response_schema_conformance])


@schema.parametrize()
@settings(max_examples=6, deadline=None, phases=[Phase.generate], derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_fuzz(case: schemathesis.Case, server: Server) -> None:
    """Generated bodies (their model names are mostly ones that do not exist), against decoding and the error
    paths; the examples above cover the answers of the real model."""
    response = case.call(base_url=server.url, timeout=REQUEST_TIMEOUT)
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:500]}"
    case.validate_response(response, checks=[response_schema_conformance])
