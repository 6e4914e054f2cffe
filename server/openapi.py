"""The OpenAPI document (`/openapi.json`), built from the wire contract's pydantic models.

Handlers decode their bodies themselves (Go-style errors, `server/api.py`), so FastAPI cannot see their
models; each handler says what it takes and gives with `@documented(...)` instead, and `openapi_document`
walks the routers and writes one operation per route and method from that. Errors are documented per route
family (the models `server/errors.py` answers with), and with API keys on, the security schemes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel
from pydantic.json_schema import CoreModeRef, DefsRef, GenerateJsonSchema, models_json_schema
from starlette.routing import Route

from server import api, api_anthropic, api_openai
from server.errors import Family, route_family

OPENAPI_VERSION = "3.1.0"
NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
JSON = "application/json"
PROBES = frozenset({"/", "/api/version"})
ATTRIBUTE = "openapi_doc"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


class RegistryError(BaseModel):
    """The distribution spec's error body."""

    errors: list[dict[str, Any]]


ERROR_MODELS: dict[Family, type[BaseModel]] = {
    Family.OLLAMA: api.ErrorResponse,
    Family.OPENAI: api_openai.ErrorResponse,
    Family.ANTHROPIC: api_anthropic.ErrorResponse,
    Family.REGISTRY: RegistryError,
}


@dataclass(frozen=True)
class Doc:
    """What one handler takes and answers.

    `response` is the whole JSON answer; `stream` one item of a streamed answer (an NDJSON line on the
    native routes, a server-sent event's data on /v1); `binary_body` an upload of raw bytes; `text` a
    plain-text answer; `statuses` the success statuses with no body; `example` a request body.
    """

    summary: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    stream: type[BaseModel] | None = None
    statuses: tuple[int, ...] = ()
    binary_body: bool = False
    text: bool = False
    example: dict[str, Any] | None = None
    description: str = ""
    parameters: dict[str, dict[str, Any]] | None = None


def documented(summary: str, **fields: Any) -> Callable[[Endpoint], Endpoint]:
    """Mark a handler with its `Doc` (put it under the route decorator)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, ATTRIBUTE, Doc(summary, **fields))
        return endpoint

    return mark


def doc_of(route: Route) -> Doc | None:
    return getattr(route.endpoint, ATTRIBUTE, None)


# The compatible layers reuse names (Message, ErrorResponse, Usage...): their schemas carry the layer's name.
_SCHEMA_PREFIXES = {api_openai.__name__: "OpenAI", api_anthropic.__name__: "Anthropic"}


class _PrefixedNames(GenerateJsonSchema):
    def get_defs_ref(self, core_mode_ref: CoreModeRef) -> DefsRef:
        defs_ref = super().get_defs_ref(core_mode_ref)
        module = core_mode_ref[0].rsplit(":", 1)[0].rpartition(".")[0]
        prefix = _SCHEMA_PREFIXES.get(module)
        if prefix:
            choices = self._prioritized_defsref_choices[defs_ref]
            choices[:2] = [DefsRef(prefix + choice) for choice in choices[:2]]
        return defs_ref


def _models(docs: Iterable[Doc]) -> list[tuple[type[BaseModel], str]]:
    found: dict[tuple[type[BaseModel], str], None] = {}
    for doc in docs:
        if doc.request is not None:
            found[(doc.request, "validation")] = None
        for model in (doc.response, doc.stream):
            if model is not None:
                found[(model, "serialization")] = None
    for model in ERROR_MODELS.values():
        found[(model, "serialization")] = None
    return list(found)


_PATH_PARAMETER = re.compile(r"{([^}:]+)(:[^}]*)?}")


def _path_and_parameters(path: str) -> tuple[str, list[dict[str, Any]]]:
    """Starlette's `{name:path}` as OpenAPI's `{name}`, with the path parameters."""
    names = [match.group(1) for match in _PATH_PARAMETER.finditer(path)]
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in names]
    return _PATH_PARAMETER.sub(lambda m: "{" + m.group(1) + "}", path), parameters


def _content(model_ref: dict[str, Any], media_type: str, example: dict[str, Any] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"schema": model_ref}
    if example is not None:
        entry["example"] = example
    return {media_type: entry}


def _success(doc: Doc, refs: dict[type[BaseModel], dict[str, Any]], family: Family, head: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in doc.statuses:
        responses[str(status)] = {"description": "done; no body"}
    if doc.text or doc.response is not None or doc.stream is not None:
        content: dict[str, Any] = {}
        if doc.text:
            content["text/plain"] = {"schema": {"type": "string"}}
        if doc.response is not None:
            content.update(_content(refs[doc.response], JSON))
        if doc.stream is not None:
            if family is Family.OLLAMA:
                content[NDJSON] = {"schema": refs[doc.stream]}
            else:
                # Server-sent events are text; each event's data is the item model (components list it).
                content[SSE] = {"schema": {"type": "string", "description": f"events whose data is "
                                                                           f"{refs[doc.stream]['$ref']}"}}
        description = "streamed" if doc.stream is not None and doc.response is None else "the answer"
        responses["200"] = {"description": description} if head else {"description": description,
                                                                       "content": content}
    return responses


def _operation(method: str, path: str, doc: Doc, refs: dict[type[BaseModel], dict[str, Any]],
               parameters: list[dict[str, Any]], keys: bool) -> dict[str, Any]:
    family = route_family(path)
    head = method == "head"
    name = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"
    operation: dict[str, Any] = {"tags": [family.value], "summary": doc.summary, "operationId": f"{method}_{name}"}
    if doc.description:
        operation["description"] = doc.description
    if parameters:
        operation["parameters"] = parameters
    if doc.request is not None:
        operation["requestBody"] = {"required": True, "content": _content(refs[doc.request], JSON, doc.example)}
    elif doc.binary_body:
        operation["requestBody"] = {"required": True, "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    responses = _success(doc, refs, family, head)
    error: dict[str, Any] = {"description": "an error, in the route family's shape"}
    if not head:
        error["content"] = _content(refs[ERROR_MODELS[family]], JSON)
    responses["default"] = error
    operation["responses"] = responses
    if keys and path in PROBES and method in ("get", "head"):
        operation["security"] = [{}]
    return operation


def openapi_document(routers: Iterable[APIRouter], *, title: str, version: str, keys: bool) -> dict[str, Any]:
    routes = [(route, doc) for router in routers for route in router.routes
              if isinstance(route, Route) and (doc := doc_of(route)) is not None]
    refs_by_mode, schemas = models_json_schema(_models(doc for _, doc in routes),
                                               ref_template="#/components/schemas/{model}",
                                               schema_generator=_PrefixedNames)
    refs = {model: ref for (model, _), ref in refs_by_mode.items()}
    paths: dict[str, dict[str, Any]] = {}
    for route, doc in routes:
        path, parameters = _path_and_parameters(route.path)
        for parameter in parameters:
            parameter["schema"] = (doc.parameters or {}).get(parameter["name"], parameter["schema"])
        for method in sorted(route.methods or ()):
            paths.setdefault(path, {})[method.lower()] = _operation(method.lower(), path, doc, refs, parameters,
                                                                    keys)
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version,
                 "description": "Ollama's API, its OpenAI- and Anthropic-compatible layers, and pollama's own "
                                "additions."},
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {})},
    }
    if keys:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        }
        document["security"] = [{"bearer": []}, {"apiKey": []}]
    return document
