"""`POST /api/pull` and `POST /api/push`: thin handlers over `registry`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.responses import Response

from modelstore.names import parse_name
from registry.pull import pull_model
from registry.push import push_model
from registry.transport import RegistryError
from server.api import ProgressResponse, PullRequest, PushRequest, parse_request
from server.http import APIError, collect_progress, read_json, stream_response
from server.openapi import documented
from server.state import get_state

router = APIRouter()


async def api_errors(items: AsyncIterator[dict]) -> AsyncIterator[dict]:
    """Registry failures as the APIError that stream_response and collect_progress deliver."""
    try:
        async for item in items:
            yield item
    except RegistryError as e:
        raise APIError(e.message, e.status) from None
    finally:
        await items.aclose()


async def _respond(progress: AsyncIterator[dict], stream: bool | None) -> Response:
    if stream is False:
        return await collect_progress(progress)
    return await stream_response(progress)


@router.post("/api/pull")
@documented("Download a model from a registry", request=PullRequest, response=ProgressResponse,
            stream=ProgressResponse)
async def pull(request: Request) -> Response:
    state = get_state(request)
    req: PullRequest = parse_request(PullRequest, await read_json(request))
    raw = req.model or req.name
    name = parse_name(raw)
    if not raw or not name.is_valid():
        raise APIError("invalid model name", 400)
    name = state.store.canonical_name(name)
    progress = pull_model(state.store, name, insecure=req.insecure, noprune=state.settings.noprune)
    return await _respond(api_errors(progress), req.stream)


@router.post("/api/push")
@documented("Upload a model to a registry", request=PushRequest, response=ProgressResponse, stream=ProgressResponse)
async def push(request: Request) -> Response:
    state = get_state(request)
    req: PushRequest = parse_request(PushRequest, await read_json(request))
    raw = req.model or req.name
    if not raw:
        raise APIError("model is required", 400)
    name = state.store.canonical_name(parse_name(raw))
    progress = push_model(state.store, name, insecure=req.insecure)
    return await _respond(api_errors(progress), req.stream)
