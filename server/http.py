"""Request decoding and response writing with Ollama's bytes: Go JSON, NDJSON streams, error envelope."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from modelstore import gojson
from server.body import BodyTooLarge, decode_json, read_body
from server.disconnect import watched

log = logging.getLogger(__name__)
JSON_UTF8 = "application/json; charset=utf-8"
# A 503 (the queue is full) asks clients to come back after this many seconds instead of hammering a busy
# server at once: the OpenAI and Anthropic SDKs honour retry-after (up to 60 s) within their max_retries.
RETRY_AFTER_SECONDS = 2


class APIError(Exception):
    """An error answered as `{"error": message}` with `status`."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def unexpected_error(exc: BaseException) -> tuple[str, int]:
    """(text, status) for an error nobody expected: its own text, as Go handlers answer with err.Error().
    Python only runs out of stack on input nested too deep, which is the client's mistake."""
    if isinstance(exc, RecursionError):
        return "exceeded max depth", 400
    return str(exc) or type(exc).__name__, 500


def json_response(obj: Any, status: int = 200, media_type: str = JSON_UTF8) -> Response:
    return Response(gojson.dumps(obj).encode(), status_code=status, media_type=media_type)


def busy_headers(status: int) -> dict[str, str]:
    return {"retry-after": str(RETRY_AFTER_SECONDS)} if status == 503 else {}


def error_response(message: str, status: int, media_type: str = JSON_UTF8) -> Response:
    response = json_response({"error": message}, status, media_type)
    response.headers.update(busy_headers(status))
    return response


async def read_json(request: Request) -> Any:
    """The first JSON value of the body (Go's json.Decoder), within the bounds of server/body.py; the
    Content-Type is not looked at."""
    limit = request.app.state.pollama.settings.max_body
    try:
        return decode_json(await read_body(request, limit))
    except BodyTooLarge as e:
        raise APIError(str(e), 413) from None


async def collect(items: AsyncIterator[dict], first: dict | None = None) -> list[dict]:
    """Every item of a whole (non-streamed) answer (`first`: the first, when the caller has taken it
    already). A client that leaves meanwhile cancels the request (server/disconnect.py), and with it the
    work behind `items`."""
    try:
        return ([] if first is None else [first]) + [item async for item in items]
    finally:
        await _close(items)


class Lines(StreamingResponse):
    """A streamed answer, sent as its parts come. Starlette runs a second task per stream that listens for the
    client leaving; on the routes that DisconnectMiddleware watches, the middleware already cancels the request
    then, so the parts go straight out (one task fewer, and nothing between a token and its write)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if watched(scope["path"]):
            await self.stream_response(send)
        else:
            await super().__call__(scope, receive, send)


def _ndjson_line(item: dict) -> bytes:
    return (gojson.dumps(item) + "\n").encode()


def _same(item: dict) -> dict:
    return item


async def stream_response(items: AsyncIterator[dict], first: dict | None = None,
                          wire: Callable[[dict], dict] = _same) -> Response:
    """Ollama's streamResponse: an error before the first line becomes the HTTP status and body;
    an error after it becomes one last `{"error": …}` line. `first`: the first item, when the caller has
    taken it already; `wire`: what each item becomes on the wire."""
    if first is None:
        try:
            first = await anext(items)
        except StopAsyncIteration:
            return Response(b"", media_type="application/x-ndjson")
        except APIError as e:
            await _close(items)
            return error_response(e.message, e.status, "application/json")

    async def body() -> AsyncIterator[bytes]:
        try:
            yield _ndjson_line(wire(first))
            async for item in items:
                yield _ndjson_line(wire(item))
        except APIError as e:
            yield _ndjson_line({"error": e.message})
        except Exception as e:  # noqa: BLE001 - the stream has begun: the error is its last line
            log.exception("a stream failed")
            yield _ndjson_line({"error": unexpected_error(e)[0]})
        finally:
            await _close(items)

    return Lines(body(), media_type="application/x-ndjson")


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
