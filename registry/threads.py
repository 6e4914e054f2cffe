"""Running blocking registry work from asyncio without borrowing the default executor.

Pulls and pushes block for minutes; running them on `asyncio.to_thread` would starve the small
default pool that the rest of the server uses, so each call gets its own daemon thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _resolve(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def run_blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def target() -> None:
        result, error = None, None
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            error = exc
        try:
            loop.call_soon_threadsafe(_resolve, future, result, error)
        except RuntimeError:  # the loop is gone
            pass

    threading.Thread(target=target, name=f"registry-{getattr(fn, '__name__', 'call')}", daemon=True).start()
    return await future
