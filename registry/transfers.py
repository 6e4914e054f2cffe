"""Bytes moved over the network by pulls and pushes since the process started (the server exports them as
metrics). Download and upload threads add to them, so the totals are kept under a lock."""

from __future__ import annotations

import threading


class TransferTotals:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pulled = 0
        self._pushed = 0

    def add_pulled(self, count: int) -> None:
        with self._lock:
            self._pulled += count

    def add_pushed(self, count: int) -> None:
        with self._lock:
            self._pushed += count

    @property
    def pulled(self) -> int:
        return self._pulled

    @property
    def pushed(self) -> int:
        return self._pushed


TRANSFERS = TransferTotals()
