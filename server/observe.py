"""One record per HTTP request, filled as it is answered and handed to observers (metrics, the request
log) when it ends. Handlers add what only they know (the model, token counts) through `record_of`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A key of the ASGI scope (scope keys are open to extensions); the scope travels to the handler unchanged.
RECORD_KEY = "pollama.record"


@dataclass
class RequestRecord:
    method: str
    path: str
    client: str
    route: str = ""  # the route's template (`/api/blobs/{digest}`), "" when no route has the path
    status: int = 0
    duration: float = 0.0
    model: str = ""
    prompt_tokens: int | None = None
    generated_tokens: int | None = None


Observer = Callable[[RequestRecord], None]


def record_of(request: Request) -> RequestRecord:
    """The request's record; a detached one when the middleware is not there (a bare app in a test)."""
    record = request.scope.get(RECORD_KEY)
    if record is None:
        record = request.scope[RECORD_KEY] = RequestRecord(request.method, request.url.path, "")
    return record


def _client(scope: Scope) -> str:
    client = scope.get("client")
    if not client:
        return ""
    host, port = client[0], client[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def route_template(scope: Scope, routes: Iterable[BaseRoute]) -> str:
    """The template of the route that answered, or that has the path when a middleware answered first
    (a refused key) or the method was wrong."""
    answered = scope.get("route")
    if answered is not None:
        return getattr(answered, "path", "")
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return getattr(route, "path", "")
    return ""


class ObserveMiddleware:
    """Outermost, so that refusals by the other middleware (CORS, keys) are observed too."""

    def __init__(self, app: ASGIApp, *, observers: Iterable[Observer], routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.observers = list(observers)
        self.routes = list(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = RequestRecord(scope["method"], scope["path"], _client(scope))
        scope[RECORD_KEY] = record
        started = time.perf_counter()

        async def send_observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except BaseException:
            record.status = record.status or 500
            raise
        finally:
            record.duration = time.perf_counter() - started
            record.route = route_template(scope, self.routes)
            for observer in self.observers:
                observer(record)


def _has_output(chunk: dict[str, Any]) -> bool:
    message = chunk.get("message") or {}
    return bool(chunk.get("response") or chunk.get("thinking") or chunk.get("tool_calls") or message.get("content")
                or message.get("thinking") or message.get("tool_calls"))


class InferenceObserver(Protocol):
    """What the metrics want from one generation: the first token's time and the final counts."""

    def first_token(self, model: str, seconds: float) -> None: ...

    def finished(self, model: str, final: dict[str, Any]) -> None: ...


async def observed(request: Request, chunks: AsyncIterator[dict], started: float,
                   observer: InferenceObserver) -> AsyncGenerator[dict]:
    """The native chunks of a generation, unchanged, noting the time to the first token (from `started`,
    so a load and a wait in the queue count) and the counts of the final chunk in the request's record."""
    record = record_of(request)
    waiting = True
    try:
        async for chunk in chunks:
            model = chunk.get("model") or ""
            record.model = record.model or model
            if waiting and _has_output(chunk):
                waiting = False
                observer.first_token(model, time.perf_counter() - started)
            if chunk.get("done"):
                note_counts(record, chunk)
                observer.finished(model, chunk)
            yield chunk
    finally:
        with contextlib.suppress(AttributeError):
            await chunks.aclose()  # type: ignore[attr-defined]


def embedded(request: Request, observer: InferenceObserver, model: str, result: dict[str, Any]) -> None:
    """An embedding's model and prompt tokens, in the record and the metrics."""
    record = record_of(request)
    record.model = model
    note_counts(record, result)
    observer.finished(model, {"prompt_eval_count": result.get("prompt_eval_count")})


def note_counts(record: RequestRecord, final: dict[str, Any]) -> None:
    if final.get("prompt_eval_count") is not None:
        record.prompt_tokens = (record.prompt_tokens or 0) + final["prompt_eval_count"]
    if final.get("eval_count") is not None:
        record.generated_tokens = (record.generated_tokens or 0) + final["eval_count"]
