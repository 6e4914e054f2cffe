"""Model management: blobs, create, tags, show, copy, delete."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from engine.capabilities import model_capabilities
from modelstore import gojson
from modelstore.blobs import DigestMismatch, InvalidDigest
from modelstore.gguf import is_gguf, read_gguf
from modelstore.model import BrokenModel, Model, load_model
from modelstore.modelfile import format_show_parameters, render_show_modelfile
from modelstore.names import parse_name
from server.api import (
    CopyRequest,
    CreateRequest,
    DeleteRequest,
    ListResponse,
    ProgressResponse,
    ShowRequest,
    ShowResponse,
    parse_request,
)
from server.create import check_create_request, create_model
from server.http import APIError, collect_progress, json_response, read_json, stream_response
from server.listing import listed_models
from server.openapi import documented
from server.state import get_state

log = logging.getLogger(__name__)
router = APIRouter()
DIGEST = {"digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}}


@router.head("/api/blobs/{digest}")
@documented("Whether a blob exists (200) or not (404)", statuses=(200, 404, 400), parameters=DIGEST)
async def head_blob(digest: str, request: Request) -> Response:
    blobs = get_state(request).store.blobs
    try:
        exists = blobs.exists(digest)
    except InvalidDigest:
        return Response(status_code=400)
    return Response(status_code=200 if exists else 404)


@router.post("/api/blobs/{digest}")
@documented("Upload a blob; kept only if its SHA-256 is the digest", binary_body=True, statuses=(200, 201),
            parameters=DIGEST)
async def create_blob(digest: str, request: Request) -> Response:
    blobs = get_state(request).store.blobs
    try:
        if blobs.exists(digest):
            return Response(status_code=200)
    except InvalidDigest as e:
        raise APIError(str(e), 400) from None
    with blobs.writer() as writer:
        async for chunk in request.stream():
            writer.write(chunk)
        try:
            await asyncio.to_thread(writer.commit, digest)
        except DigestMismatch as e:
            raise APIError(str(e), 400) from None
    return Response(status_code=201)


@router.post("/api/create")
@documented("Create a model", request=CreateRequest, response=ProgressResponse, stream=ProgressResponse,
            example={"model": "mine", "from": "smollm2:135m", "system": "Answer briefly.", "stream": False})
async def create(request: Request) -> Response:
    state = get_state(request)
    req: CreateRequest = parse_request(CreateRequest, await read_json(request))
    name = check_create_request(req)
    progress = create_model(state.store, req, name, noprune=state.settings.noprune)
    if req.stream is False:
        return await collect_progress(progress)
    return await stream_response(progress)


def _summary(model: Model) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": model.name.display_shortest(),
        "model": model.name.display_shortest(),
        "modified_at": gojson.format_mtime_ns(model.modified_at_ns),
        "size": model.size,
        "digest": model.digest,
        "details": model.details(),
    }
    try:
        capabilities = model_capabilities(model)
    except BrokenModel as e:  # listed all the same, as Ollama lists without reading the model file
        log.warning("%s", e)
        capabilities = []
    if capabilities:
        entry["capabilities"] = capabilities
    return entry


@router.api_route("/api/tags", methods=["GET", "HEAD"])
@documented("Installed models", response=ListResponse)
async def tags(request: Request) -> Response:
    store = get_state(request).store

    return json_response({"models": await asyncio.to_thread(listed_models, store, _summary)})


@router.post("/api/show")
@documented("A model's details, template, parameters and capabilities", request=ShowRequest,
            response=ShowResponse, example={"model": "smollm2:135m"})
async def show(request: Request) -> Response:
    state = get_state(request)
    req: ShowRequest = parse_request(ShowRequest, await read_json(request))
    raw = req.model or req.name
    if not raw:
        raise APIError("model is required", 400)
    name = parse_name(raw)
    if not name.is_valid():
        raise APIError("invalid model name", 400)
    model = load_model(state.store, state.store.canonical_name(name))
    if model is None:
        raise APIError(f"model '{name.display_shortest()}' not found", 404)
    return json_response(await asyncio.to_thread(_show_body, model, req, state.store.root))


def _show_body(model: Model, req: ShowRequest, root: Any) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if model.license:
        body["license"] = "\n".join(model.license)
    shown = dataclasses.replace(model, system=req.system or model.system,
                                params={**model.params, **(req.options or {})})
    body["modelfile"] = render_show_modelfile(shown, root)
    parameters = format_show_parameters(model.params)
    if parameters:
        body["parameters"] = parameters
    body["template"] = model.template if model.template is not None else "{{ .Prompt }}"
    system = req.system or model.system
    if system:
        body["system"] = system
    body["details"] = model.details(show=True)
    if model.messages:
        body["messages"] = [{"role": m.get("role", ""), "content": m.get("content", "")} for m in model.messages]
    info = model.gguf()
    body["model_info"] = info.show_model_info(verbose=req.verbose) if info is not None else {}
    if model.projector_paths and is_gguf(model.projector_paths[0]):
        projector = read_gguf(model.projector_paths[0])
        # Ollama keeps general.name and the chat template here (it deletes them for model_info only).
        projector_info = {**projector.kv, "general.parameter_count": projector.parameter_count}
        if not req.verbose:
            projector_info = {k: None if isinstance(v, list) and v else v for k, v in projector_info.items()}
        body["projector_info"] = projector_info
    if info is not None and info.tensors:
        body["tensors"] = [{"name": t.name, "type": t.type_name, "shape": list(t.shape)} for t in info.tensors]
    capabilities = model_capabilities(model)
    if capabilities:
        body["capabilities"] = capabilities
    body["modified_at"] = gojson.format_mtime_ns(model.modified_at_ns)
    if model.config.requires:
        body["requires"] = model.config.requires
    return body


@router.post("/api/copy")
@documented("Copy a model under a new name", request=CopyRequest, statuses=(200,),
            example={"source": "smollm2:135m", "destination": "copy"})
async def copy(request: Request) -> Response:
    store = get_state(request).store
    req: CopyRequest = parse_request(CopyRequest, await read_json(request))
    source, destination = parse_name(req.source), parse_name(req.destination)
    if not req.source or not source.is_valid():
        raise APIError(f"source {gojson.go_quote(req.source)} is invalid", 400)
    if not req.destination or not destination.is_valid():
        raise APIError(f"destination {gojson.go_quote(req.destination)} is invalid", 400)
    source, destination = store.canonical_name(source), store.canonical_name(destination)
    if store.manifest_path(source) == store.manifest_path(destination):
        return Response(status_code=200)
    if store.read_manifest(source) is None:
        raise APIError(f"model {gojson.go_quote(req.source)} not found", 404)
    await asyncio.to_thread(store.copy_manifest, source, destination)
    return Response(status_code=200)


@router.delete("/api/delete")
@documented("Delete a model", request=DeleteRequest, statuses=(200,), example={"model": "copy"})
async def delete(request: Request) -> Response:
    store = get_state(request).store
    req: DeleteRequest = parse_request(DeleteRequest, await read_json(request))
    raw = req.model or req.name
    if not raw:
        raise APIError("model is required", 400)
    name = parse_name(raw)
    if not name.is_valid():
        raise APIError(f"name {gojson.go_quote(raw)} is invalid", 400)
    name = store.canonical_name(name)
    manifest = store.read_manifest(name)
    if manifest is None:
        raise APIError(f"model '{raw}' not found", 404)
    await asyncio.to_thread(store.delete_manifest, name)
    digests = [layer.digest for layer in manifest.layers] + [manifest.config.digest]
    await asyncio.to_thread(store.remove_unreferenced, digests)
    return Response(status_code=200)
