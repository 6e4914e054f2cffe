"""A loopback TCP proxy that counts bytes, can throttle, and can cut every connection once."""

from __future__ import annotations

import asyncio
import threading
import time


class CountingProxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target_port> in a background event loop.

    `down` counts bytes sent to clients (responses), `up` bytes from clients (requests).
    `cut_after(n)`: once `n` more response bytes have gone through, close every open connection
    (gracefully: what was counted was delivered). `rate`: response bytes per second, all
    connections together (None: unlimited). `connection_rate`: response bytes per second of each
    connection on its own, as a CDN caps them.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.down = 0
        self.up = 0
        self.connections = 0
        self.cuts = 0
        self.rate: float | None = None
        self.connection_rate: float | None = None
        self._cut_at: int | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._budget_time = time.monotonic()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    # --- control (any thread) -------------------------------------------------------------------

    def reset(self) -> None:
        self.down = self.up = self.connections = self.cuts = 0

    def cut_after(self, count: int) -> None:
        self._cut_at = self.down + count

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # --- the loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        self._writers.update((client_writer, upstream_writer))

        own_budget = [time.monotonic()]

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, downstream: bool) -> None:
            try:
                while True:
                    data = await reader.read(64 * 1024)
                    if not data:
                        break
                    if downstream:
                        await self._throttle(len(data))
                        if self.connection_rate:
                            own_budget[0] = _paced(own_budget[0], len(data) / self.connection_rate)
                            await _sleep_until(own_budget[0])
                        if writer.is_closing():  # cut meanwhile: this chunk is never delivered
                            break
                        if self._cut_at is not None and self.down + len(data) >= self._cut_at:
                            data = data[:max(0, self._cut_at - self.down)]
                            self.down += len(data)
                            writer.write(data)
                            self._cut_everything()  # close() still delivers what was written
                            return
                        self.down += len(data)
                    else:
                        if writer.is_closing():
                            break
                        self.up += len(data)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pump(client_reader, upstream_writer, False), pump(upstream_reader, client_writer, True))
        self._writers.discard(client_writer)
        self._writers.discard(upstream_writer)

    def _cut_everything(self) -> None:
        self._cut_at = None
        self.cuts += 1
        for writer in list(self._writers):
            writer.close()

    async def _throttle(self, count: int) -> None:
        if not self.rate:
            return
        self._budget_time = _paced(self._budget_time, count / self.rate)
        await _sleep_until(self._budget_time)


def _paced(budget: float, seconds: float) -> float:
    """When the next chunk may go, `seconds` after the last one's time. Lateness carries over (sleeps
    overshoot by about a millisecond, a lot at 64 KiB a chunk); an idle gap of more than 50 ms does not."""
    return max(budget, time.monotonic() - 0.05) + seconds


async def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
