"""The Anthropic-compatible route: POST /v1/messages, on the native chat pipeline."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from starlette.responses import Response

from engine.capabilities import THINKING
from modelstore.store import ModelStore
from server import anthropic, inference
from server.api import RequestError
from server.api_anthropic import MessagesRequest, MessagesResponse, StreamEvent, parse
from server.http import APIError, collect, read_json
from server.observe import observed
from server.openai import sse_response
from server.openapi import documented
from server.state import get_state

router = APIRouter()


async def _can_think(store: ModelStore, model: str) -> bool:
    """Whether the model thinks; True when it cannot be resolved, so the native pipeline reports why."""
    try:
        resolved = await asyncio.to_thread(inference.resolve_model, store, model, empty_status=400,
                                           empty_message="model is required")
    except APIError:
        return True
    return THINKING in resolved.capabilities


def _error(e: APIError) -> Response:
    return anthropic.error_response(e.message, e.status)


@router.post("/v1/messages")
@documented("Anthropic Messages", request=MessagesRequest, response=MessagesResponse, stream=StreamEvent,
            example={"model": "smollm2:135m", "max_tokens": 8, "messages": [{"role": "user", "content": "Hello!"}]})
async def messages(request: Request) -> Response:
    started = time.perf_counter()
    state = get_state(request)
    try:
        try:
            body = await read_json(request)
        except RequestError as e:
            raise RequestError("EOF" if str(e) == "missing request body" else str(e)) from None
        req: MessagesRequest = parse(body)
        native = anthropic.chat_request(req)
    except RequestError as e:
        return anthropic.error_response(str(e), 400)
    # Claude Code and other clients ask for thinking whatever the model: a model that cannot think ignores it.
    if native.think is not None and not await _can_think(state.store, native.model):
        native.think = None
    chunks = observed(request, inference.chat(state.store, state.scheduler, native, started), started, state.metrics)
    msg_id = anthropic.message_id()
    if req.stream:
        converter = anthropic.StreamConverter(msg_id, native.model, anthropic.estimate_tokens(req))
        return await sse_response(
            chunks, lambda chunk: [anthropic.sse_event(name, data) for name, data in converter.process(chunk)],
            on_error_before=_error,
            on_error_after=lambda e: [anthropic.sse_event("error", anthropic.stream_error(e))],
            headers=anthropic.STREAM_HEADERS)
    try:
        collected = await collect(chunks)
    except APIError as e:
        return _error(e)
    final = inference.join_chunks(collected, chat_request=True, with_tools=bool(native.tools))
    return anthropic.json_response(anthropic.messages_response(msg_id, final))
