"""Work for a client that has gone stops: a request that runs a model is cancelled as soon as its client
disconnects, whether it waits in the queue, for a load or a slot, renders its prompt, or streams.

Go's net/http cancels a request's context when the connection closes; Ollama's handlers stop on that. An
ASGI app only hears of it when it asks for the next message, so this middleware asks on the app's behalf
once the body has been read, and cancels the app's task when the answer is `http.disconnect` before the
response is complete. The cancellation unwinds everything the request holds: its place in the queue, its
slot, and (through the runner client) its sequence or embedding batch in the runner.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# The routes that run a model (every /v1/ route does, or is cheap to watch).
WATCHED_PATHS = ("/api/generate", "/api/chat", "/api/embed", "/api/embeddings", "/api/rerank")
WATCHED_PREFIXES = ("/v1/",)


def watched(path: str) -> bool:
    return path in WATCHED_PATHS or path.startswith(WATCHED_PREFIXES)


class DisconnectMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not watched(scope["path"]):
            await self.app(scope, receive, send)
            return
        body_read = asyncio.Event()
        gone = asyncio.Event()
        response_complete = False

        async def app_receive() -> Message:
            if body_read.is_set():  # from here on the watcher reads; the app only hears of a disconnect
                await gone.wait()
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
            elif not message.get("more_body", False):
                body_read.set()
            return message

        async def app_send(message: Message) -> None:
            nonlocal response_complete
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                response_complete = True
            await send(message)

        async def watch() -> None:
            await body_read.wait()
            while (await receive())["type"] != "http.disconnect":
                pass
            # The server also says "disconnect" once the response is complete: only before that is it one.
            if not response_complete:
                gone.set()

        work = asyncio.ensure_future(self.app(scope, app_receive, app_send))
        watcher = asyncio.ensure_future(watch())
        client_left = asyncio.ensure_future(gone.wait())
        try:
            await asyncio.wait({work, client_left}, return_when=asyncio.FIRST_COMPLETED)
            if work.done():
                work.result()  # the app's own exception, if any, goes on to the error handlers
                return
            log.info("client disconnected, cancelled %s %s", scope["method"], scope["path"])
            work.cancel()
            await asyncio.wait({work})
        finally:
            for task in (work, watcher, client_left):
                task.cancel()
            await asyncio.gather(work, watcher, client_left, return_exceptions=True)
