"""Bounds on how long a client may take to send a request, so that slow clients cannot hold sockets forever.

uvicorn closes idle keep-alive connections (timeout_keep_alive) but waits without end for the headers of a
request (a "slowloris" client sends one byte now and then) and for the rest of a body; so does Ollama (Go's
http.Server without timeouts). Here a request's headers must be complete within `read_timeout` seconds of
its first byte (or of the connection), and its body may not stall longer than that: the connection is
closed. The body clock stops while the server itself has paused reading (the app is slow to take the body).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.envconfig import Settings


class ReadTimeoutProtocol(HttpToolsProtocol):
    read_timeout = 60.0

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_body = False

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._reading_body and self.flow.read_paused:  # the app has not taken the body yet: not the client
            self._arm()
            return
        self.logger.info("closing a connection whose client sent no request bytes for %.0f s", self.read_timeout)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._reading_body and self._deadline is not None:
            self._arm()  # the body moves: its clock starts again

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_body = False
        if self._deadline is None:
            self._arm()  # the headers' clock, from their first byte

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._reading_body = True
        self._arm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_body = False
        self._disarm()


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.run's options for these bounds (POLLAMA_READ_TIMEOUT)."""
    if settings.read_timeout is None:
        return {}
    return {"http": type("ReadTimeoutProtocol", (ReadTimeoutProtocol,), {"read_timeout": settings.read_timeout})}
