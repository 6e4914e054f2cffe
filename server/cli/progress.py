"""Progress as Ollama's CLI shows it: spinners and per-layer bars, redrawn in place on a terminal.

On a terminal a thread redraws every line ten times a second (`pulling 2af3b81862c6:  45% ▕███   ▏ 44 MB/98 MB
 21 MB/s   2s`), as Ollama does. Anywhere else (a pipe, a file) the same events become plain lines: each
status once, and each bar once, when it completes. The formats are Ollama's own, so they are written here
rather than through a general progress library, which would lay them out its own way.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from server.cli.format import go_duration, human_bytes

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def terminal_width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return shutil.get_terminal_size((80, 24)).columns if stream.isatty() else 80


class Spinner:
    def __init__(self, message: str = "") -> None:
        self.message = message
        self.started = time.monotonic()
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True

    def render(self, _width: int) -> str:
        text = f"{self.message.strip()} " if self.message else ""
        if not self.stopped:
            text += _FRAMES[int((time.monotonic() - self.started) * 10) % len(_FRAMES)] + " "
        return text

    def plain(self) -> str | None:
        return self.message.strip() or None


def _pad6(text: str) -> str:
    return " " * (6 - len(text)) + text


def _round_seconds(seconds: float) -> float:
    return float(math.floor(seconds + 0.5))


def _short_duration(seconds: int) -> str:
    if seconds >= 100 * 3600:
        return "99h+"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    return go_duration(seconds * 1_000_000_000)


@dataclass
class _Bucket:
    updated: float
    value: int


@dataclass
class Bar:
    message: str
    total: int
    initial: int = 0
    current: int = field(init=False)
    started: float = field(default_factory=time.monotonic)
    stopped: float | None = None
    buckets: list[_Bucket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.current = self.initial
        if self.initial >= self.total:
            self.stopped = time.monotonic()

    def set(self, value: int) -> None:
        value = min(value, self.total)
        self.current = value
        now = time.monotonic()
        if value >= self.total:
            self.stopped = now
        if not self.buckets or now - self.buckets[-1].updated > 1.0:
            self.buckets = [*self.buckets, _Bucket(now, value)][-10:]

    def percent(self) -> float:
        return self.current / self.total * 100 if self.total > 0 else 0.0

    def rate(self) -> float:
        if self.stopped is not None:
            moved, seconds = self.current - self.initial, _round_seconds(self.stopped - self.started)
        elif not self.buckets:
            return 0.0
        elif len(self.buckets) == 1:
            moved = self.buckets[0].value - self.initial
            seconds = _round_seconds(self.buckets[0].updated - self.started)
        else:
            first, last = self.buckets[0], self.buckets[-1]
            moved, seconds = last.value - first.value, _round_seconds(last.updated - first.updated)
        return moved / seconds if seconds else 0.0

    def render(self, width: int) -> str:
        pre = (f"{self.message.strip()} " if self.message else "") + f"{self.percent():3.0f}%"
        running = self.stopped is None
        if running:
            suffix = _pad6(human_bytes(self.current)) + "/" + _pad6(human_bytes(self.total))
        else:
            suffix = _pad6(human_bytes(self.total)) + " " * 7
        rate = self.rate()
        if running and rate > 0:
            remaining = int((self.total - self.current) / rate)
            suffix += "  " + _pad6(human_bytes(int(rate))) + "/s" + "  " + _pad6(_short_duration(remaining))
        else:
            suffix += " " * 18
        room = width - len(pre) - len(suffix) - 5
        filled = int(room * self.percent() / 100)
        return f"{pre} ▕{'█' * max(filled, 0)}{' ' * max(room - filled, 0)}▏ {suffix}"

    def plain(self) -> str | None:
        if self.stopped is None:
            return None
        size = human_bytes(self.total)
        return f"{self.message.strip()} {self.percent():3.0f}% ▕{'█' * 25}▏ {size}/{size}"


class Progress:
    """The lines of one command's progress, drawn on `stream` (stderr)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.states: list[Spinner | Bar] = []
        self.printed: dict[int, str | None] = {}
        self.lines_drawn = 0
        self.lock = threading.RLock()
        self.done = threading.Event()
        self.stopped = False
        if self.tty:
            threading.Thread(target=self._loop, daemon=True).start()

    def add(self, state: Spinner | Bar) -> None:
        with self.lock:
            self.states.append(state)
        self.update()

    def update(self) -> None:
        """Plain output: a status when it is new or changes, a bar once, when it completes."""
        if self.tty:
            return
        with self.lock:
            for i, state in enumerate(self.states):
                text = state.plain()
                if (text is None and isinstance(state, Bar)) or (i in self.printed and self.printed[i] == text):
                    continue  # a bar not complete yet, or a line already printed
                if isinstance(state, Bar) and i in self.printed:
                    continue
                self.printed[i] = text
                if text is not None:
                    self.stream.write(text + "\n")
            self.stream.flush()

    def _loop(self) -> None:
        while not self.done.wait(0.1):
            self._draw()

    def _draw(self) -> None:
        with self.lock:
            if not self.states:
                return
            width = terminal_width(self.stream)
            height = shutil.get_terminal_size((80, 24)).lines
            out = ["\x1b[?2026h\x1b[?25l", "\x1b[A" * max(self.lines_drawn - 1, 0), "\x1b[1G"]
            shown = self.states[-height:]
            out.append("\n".join(state.render(width) + "\x1b[K" for state in shown))
            out.append("\x1b[?25h\x1b[?2026l")
            self.stream.write("".join(out))
            self.stream.flush()
            self.lines_drawn = len(self.states)

    def _halt(self) -> bool:
        with self.lock:
            if self.stopped:
                return False
            self.stopped = True
            self.done.set()
            for state in self.states:
                if isinstance(state, Spinner):
                    state.stop()
            return True

    def stop(self) -> None:
        """Leave the final lines on screen."""
        if not self._halt():
            return
        if self.tty:
            self._draw()
            if self.states:
                self.stream.write("\n")
                self.stream.flush()
        else:
            self.update()

    def stop_and_clear(self) -> None:
        """Erase the lines (the spinner before an answer)."""
        if not self._halt():
            return
        if self.tty:
            with self.lock:
                erase = ["\x1b[?25l"]
                for i in range(self.lines_drawn):
                    erase.append(("\x1b[A" if i else "") + "\x1b[2K\x1b[1G")
                erase.append("\x1b[?25h")
                self.stream.write("".join(erase))
                self.stream.flush()


class EventDisplay:
    """Ollama's progress callback for pull, push and create: one bar per digest, one spinner per new status."""

    def __init__(self, progress: Progress, verb: str, status: str = "", spinner: Spinner | None = None) -> None:
        self.progress, self.verb = progress, verb
        self.bars: dict[str, Bar] = {}
        self.status, self.spinner = status, spinner

    def __call__(self, event: dict[str, Any]) -> None:
        digest = event.get("digest") or ""
        completed, total = int(event.get("completed") or 0), int(event.get("total") or 0)
        if digest:
            if self.verb == "pulling" and completed == 0:
                return  # a pull announces each layer before it starts: no 0% bar
            if self.spinner and self.verb != "creating":
                self.spinner.stop()
            bar = self.bars.get(digest)
            if bar is None:
                bar = self.bars[digest] = Bar(self._label(event), total, completed)
                self.progress.add(bar)
            bar.set(completed)
            self.progress.update()
        elif event.get("status", "") != self.status:
            if self.spinner:
                self.spinner.stop()
            self.status = event.get("status", "")
            self.spinner = Spinner(self.status)
            self.progress.add(self.spinner)

    def _label(self, event: dict[str, Any]) -> str:
        digest = event["digest"]
        if self.verb == "pulling":
            short = digest.removeprefix("sha256:").strip()
            return f"pulling {short[:12] if digest.startswith('sha256:') else short}:"
        verb = "pulling" if self.verb == "creating" else self.verb
        return event.get("status") or f"{verb} {digest[7:19]}..."
