"""Running the app under uvicorn, with a drain on SIGTERM/SIGINT before uvicorn's own shutdown.

uvicorn alone stops listening at once and gives requests in flight a few seconds; a replica behind a balancer
should instead keep answering (503 to new work, so the balancer retries elsewhere), let every request in flight
finish up to POLLAMA_SHUTDOWN_TIMEOUT, then end its runners and exit 0. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI

from server.envconfig import Settings
from server.slowclients import server_options
from server.state import ServerState

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self.state = state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_task is not None or self._loop is None:
            super().handle_exit(sig, frame)
            return
        log.info("received %s: draining", signal.Signals(sig).name)
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._drain_task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        await self.state.lifecycle.drain(self.state.settings.shutdown_timeout)
        self.should_exit = True


def serve(app: FastAPI, settings: Settings) -> int:
    config = uvicorn.Config(app, host=settings.host.host, port=settings.host.port,
                            log_level=settings.log_level,
                            # uvicorn's loggers go through the root handler (text or JSON); the request
                            # log replaces its access log
                            log_config=None, access_log=False,
                            # the drain has already waited for the requests in flight
                            timeout_graceful_shutdown=1, **server_options(settings))
    DrainingServer(config, app.state.pollama).run()
    return 0
