"""Token bytes → text the client may see: whole UTF-8 characters only, stop strings held back and cut."""

from __future__ import annotations

import codecs


class TextStream:
    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.stopped = False
        # Tokens (at the end of the output) whose text lies wholly after a matched stop string.
        self.tokens_after_stop = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""  # decoded, not yet emitted
        self._held_starts: list[int] = []  # where each token that is still (partly) held starts in _held

    def push(self, piece: bytes) -> str:
        """Add one token's bytes; returns the text that can be emitted now ("" while holding back)."""
        self._held_starts.append(len(self._held))
        self._held += self._decoder.decode(piece)
        if not self.stops:
            return self._emit(len(self._held))
        for stop in self.stops:  # in the order given: the first hit wins
            at = self._held.find(stop)
            if at >= 0:
                self.stopped = True
                self.tokens_after_stop = sum(1 for start in self._held_starts if start >= at)
                text = self._held[:at]
                self._held, self._held_starts = "", []
                return text
        return self._emit(len(self._held) - self._stop_prefix_len())

    def flush(self) -> str:
        """The held text at the end of the stream; an incomplete trailing character is dropped."""
        return self._emit(len(self._held))

    def _stop_prefix_len(self) -> int:
        """Length of the longest end of the held text that could still grow into a stop string."""
        held = self._held
        for k in range(min(max(len(s) for s in self.stops) - 1, len(held)), 0, -1):
            tail = held[-k:]
            if any(s.startswith(tail) for s in self.stops):
                return k
        return 0

    def _emit(self, n: int) -> str:
        text, self._held = self._held[:n], self._held[n:]
        starts = self._held_starts
        ends = starts[1:] + [n + len(self._held)] if starts else []
        # A token stays tracked while any of its text (or its undecoded bytes) is still held.
        self._held_starts = [max(s - n, 0) for s, e in zip(starts, ends, strict=True) if e > n or s >= n]
        return text
