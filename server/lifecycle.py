"""The server's life for load balancers: starting (preloading models), ready, draining; and the requests in flight.

Liveness is `GET /` (Ollama's); readiness is `GET /api/ready`, which fails while models load at start and while
the server drains after SIGTERM. While draining, new work is answered 503 with `Retry-After`, so a balancer
sends it to another replica, and the requests in flight run to their end (up to POLLAMA_SHUTDOWN_TIMEOUT).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import family_error_response

log = logging.getLogger(__name__)

READY_PATH = "/api/ready"
# Probes and cheap facts stay answered while draining; everything else is work.
UNCOUNTED_PATHS = frozenset({"/", "/api/version", READY_PATH, "/metrics"})


class Phase(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"


class Lifecycle:
    def __init__(self) -> None:
        self.phase = Phase.STARTING
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def request_started(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def request_ended(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Refuse new work and wait for the requests in flight; False when some were still running at `timeout`."""
        self.phase = Phase.DRAINING
        log.info("draining: %d request(s) in flight, waiting up to %.0f s", self.in_flight, timeout)
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            log.warning("drain timed out with %d request(s) in flight; they will be cut", self.in_flight)
            return False
        log.info("drained")
        return True


class DrainMiddleware:
    """Counts the requests in flight (until their last byte is sent) and turns new work away while draining."""

    def __init__(self, app: ASGIApp, lifecycle: Lifecycle) -> None:
        self.app = app
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.lifecycle.phase is Phase.DRAINING:
            response = family_error_response(scope["path"], "server is shutting down", 503,
                                             {"Retry-After": "1", "Connection": "close"})
            await response(scope, receive, send)
            return
        self.lifecycle.request_started()
        ended = False

        async def counted_send(message: Message) -> None:
            nonlocal ended
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False) and not ended:
                ended = True
                self.lifecycle.request_ended()

        try:
            await self.app(scope, receive, counted_send)
        finally:
            if not ended:
                ended = True
                self.lifecycle.request_ended()


async def preload(lifecycle: Lifecycle, load: Callable[[str], Awaitable[None]], models: Sequence[str]) -> None:
    """Load the models named in POLLAMA_PRELOAD, then report ready; a model that fails is logged, not fatal."""
    for name in models:
        try:
            await load(name)
            log.info("preloaded %s", name)
        except Exception as e:  # a replica with one bad model still serves the others
            log.error("could not preload %s: %s", name, e)
    if lifecycle.phase is Phase.STARTING:
        lifecycle.phase = Phase.READY
