"""Status lines for `create`: rewritten in place on a terminal, one line per new status otherwise."""

from __future__ import annotations

import sys
import threading
from typing import TextIO


class Progress:
    """Status lines on stderr: rewritten in place on a terminal, one line per new status otherwise."""

    _SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.current = ""
        self.shown: set[str] = set()
        self.lock = threading.Lock()
        self.tick = 0

    def status(self, text: str) -> None:
        with self.lock:
            if self.tty:
                if self.current and text != self.current and not self.current.startswith("copying file"):
                    self.stream.write("\r\x1b[K" + self.current + "\n")
                self.tick += 1
                self.stream.write("\r\x1b[K" + text + " " + self._SPINNER[self.tick % len(self._SPINNER)])
                self.stream.flush()
            elif text not in self.shown:
                self.stream.write(text + "\n")
                self.stream.flush()
            self.current = text
            self.shown.add(text)

    def bar(self, label: str, completed: int, total: int) -> None:
        percent = int(100 * completed / total) if total else 100
        if self.tty:
            width = 25
            filled = width * percent // 100
            self.status(f"{label} {percent:3d}% ▕{'█' * filled}{' ' * (width - filled)}▏ "
                        f"{_human_bytes(completed)}/{_human_bytes(total)}")
        elif completed >= total:
            self.status(f"{label} 100%")

    def stop(self) -> None:
        with self.lock:
            if self.tty and self.current:
                self.stream.write("\r\x1b[K" + self.current + "\n")
                self.stream.flush()
            self.current = ""


def _human_bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
