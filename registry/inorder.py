"""The SHA-256 of a blob while it downloads, computed in order as the bytes before each point arrive.

Parallel streams fill the file out of order; a hash thread follows the contiguous prefix and reads it
back from the file (page cache). A stream can instead hand the hash the buffer it has just written
(`offer`) when those bytes come next or soon: on a fast link, reading them back costs a fifth of what
hashing them does. At most `POOL` buffers wait in the hash's hands; past that, or further ahead than
it can hold, the bytes are read back as before.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable

from registry.rangeget import BUFFER_SIZE  # the receive buffers' size, also the hash's reads (stays in L2)

POOL = 16


class InOrderHash:
    """`run()` (on its own thread) hashes `total` bytes of `fd` from offset 0, never past `contiguous()`;
    `result` is `sha256:<hex>` when it is done, None when stopped first."""

    def __init__(self, fd: int, total: int, contiguous: Callable[[], int]) -> None:
        self.fd = fd
        self.total = total
        self.contiguous = contiguous
        self.position = 0  # bytes hashed so far
        self.result: str | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._spare: list[bytearray] = []
        self._held = 0  # buffers the hash has taken in all, up to POOL
        self._handed: list[tuple[int, bytearray, int]] = []  # (offset, buffer, length)
        self._restart = False

    # --- from the streams ---------------------------------------------------------------------------

    def offer(self, offset: int, data: memoryview) -> bytearray | None:
        """`data`, just written at `offset`, is a receive buffer's start: keep that buffer and return an
        empty one in its place, or None when the hash does not want it."""
        buffer = data.obj
        if type(buffer) is not bytearray or len(buffer) != BUFFER_SIZE:
            return None
        with self._lock:
            if not self.position <= offset < self.position + POOL * BUFFER_SIZE:
                return None
            if self._spare:
                spare = self._spare.pop()
            elif self._held < POOL:
                spare, self._held = bytearray(BUFFER_SIZE), self._held + 1
            else:
                return None
            self._handed.append((offset, buffer, len(data)))
        self._wake.set()
        return spare

    def wake(self) -> None:
        """More of the file is contiguous."""
        self._wake.set()

    def restart(self) -> None:
        """The file is being written again from the start (a server that ignores Range, retried)."""
        with self._lock:
            self._restart = True
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    # --- the hash thread ----------------------------------------------------------------------------

    def run(self) -> None:
        digest = hashlib.sha256()
        own = memoryview(bytearray(BUFFER_SIZE))
        while not self._stopped.is_set():
            with self._lock:
                if self._restart:
                    digest, self.position, self._restart = hashlib.sha256(), 0, False
                    self._spare.extend(buffer for _, buffer, _ in self._handed)
                    self._handed.clear()
                if self.position >= self.total:
                    self.result = "sha256:" + digest.hexdigest()
                    return
                entry, ahead = self._take_handed()
            if entry is not None:
                offset, buffer, length = entry
                digest.update(memoryview(buffer)[self.position - offset:length])
                with self._lock:
                    self.position = offset + length
                    self._spare.append(buffer)
                continue
            end = min(self.contiguous(), ahead)
            count = min(end - self.position, BUFFER_SIZE)
            n = os.preadv(self.fd, [own[:count]], self.position) if count > 0 else 0
            if n <= 0:
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            digest.update(own[:n])
            with self._lock:
                self.position += n

    def _take_handed(self) -> tuple[tuple[int, bytearray, int] | None, int]:
        """(a handed buffer that covers the position, or None; where the next handed buffer starts).
        Buffers wholly behind the position (read back meanwhile) go back to the spares."""
        ahead = self.total
        for index in range(len(self._handed) - 1, -1, -1):
            offset, buffer, length = self._handed[index]
            if offset + length <= self.position:
                del self._handed[index]
                self._spare.append(buffer)
            elif offset <= self.position:
                return self._handed.pop(index), ahead
            else:
                ahead = min(ahead, offset)
        return None, ahead
