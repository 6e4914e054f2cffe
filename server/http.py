"""Request decoding and response writing with Ollama's bytes: Go JSON, NDJSON streams, error envelope."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from starlette.responses import Response, StreamingResponse

from modelstore import gojson
from server.api import RequestError

log = logging.getLogger(__name__)
JSON_UTF8 = "application/json; charset=utf-8"


class ClientGone(Exception):
    """The client closed the connection while its whole (non-streamed) answer was being made."""


class APIError(Exception):
    """An error answered as `{"error": message}` with `status`."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def json_response(obj: Any, status: int = 200, media_type: str = JSON_UTF8) -> Response:
    return Response(gojson.dumps(obj).encode(), status_code=status, media_type=media_type)


def error_response(message: str, status: int, media_type: str = JSON_UTF8) -> Response:
    return json_response({"error": message}, status, media_type)


def _go_decode_error(text: str, error: json.JSONDecodeError) -> str:
    """Python's decoder message in the words of Go's encoding/json."""
    rest = text[error.pos:]
    if not rest.strip():
        return "unexpected EOF"
    char = rest[0]
    if error.msg.startswith("Expecting property name"):
        return f"invalid character '{char}' looking for beginning of object key string"
    if error.msg.startswith("Expecting value"):
        return f"invalid character '{char}' looking for beginning of value"
    if error.msg.startswith("Expecting ',' delimiter"):
        return f"invalid character '{char}' after object key:value pair"
    if error.msg.startswith("Expecting ':' delimiter"):
        return f"invalid character '{char}' after object key"
    return f"invalid character '{char}' looking for beginning of value"


async def read_json(request: Request) -> Any:
    """The first JSON value of the body (Go's json.Decoder); the Content-Type is not looked at."""
    text = (await request.body()).decode("utf-8", errors="replace")
    stripped = text.lstrip()
    if not stripped:
        raise RequestError("missing request body")
    try:
        value, _ = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError as e:
        raise RequestError(_go_decode_error(stripped, e)) from None
    return value


async def collect_unless_gone(request: Request, items: AsyncIterator[dict]) -> list[dict]:
    """Every item of a whole answer, watching the connection meanwhile: a client that goes away cancels
    the work (a completion's sequence leaves its runner slot at the next step) and ClientGone is raised.
    A streamed answer needs none of this: Starlette stops a StreamingResponse when the client goes."""

    async def collect() -> list[dict]:
        try:
            return [item async for item in items]
        finally:
            await _close(items)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    work = asyncio.ensure_future(collect())
    watch = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    if work.cancelled():
        log.info("client disconnected, cancelled %s %s", request.method, request.url.path)
        raise ClientGone()
    return work.result()


def gone_response() -> Response:
    """What is "sent" to a client that is gone: nothing reaches it."""
    return Response(status_code=499)


def _ndjson_line(item: dict) -> bytes:
    return (gojson.dumps(item) + "\n").encode()


async def stream_response(items: AsyncIterator[dict]) -> Response:
    """Ollama's streamResponse: an error before the first line becomes the HTTP status and body;
    an error after it becomes one last `{"error": …}` line."""
    try:
        first = await anext(items)
    except StopAsyncIteration:
        return Response(b"", media_type="application/x-ndjson")
    except APIError as e:
        await _close(items)
        return error_response(e.message, e.status, "application/json")

    async def body() -> AsyncIterator[bytes]:
        yield _ndjson_line(first)
        try:
            async for item in items:
                yield _ndjson_line(item)
        except APIError as e:
            yield _ndjson_line({"error": e.message})
        finally:
            await _close(items)

    return StreamingResponse(body(), media_type="application/x-ndjson")


async def collect_progress(items: AsyncIterator[dict]) -> Response:
    """Non-streamed progress (create, pull, push): the last item, or the error with its status."""
    last: dict = {}
    try:
        async for item in items:
            last = item
    except APIError as e:
        return error_response(e.message, e.status, "application/json")
    return json_response(last, media_type="application/json")


async def _close(items: AsyncIterator[dict]) -> None:
    aclose = getattr(items, "aclose", None)
    if aclose is not None:
        await aclose()
