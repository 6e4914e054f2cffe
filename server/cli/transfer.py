"""`pollama pull` and `pollama push`: HTTP clients of a running server, with a progress bar per layer.

Like `ollama pull`: each blob gets its own line (`pulling 2af3b81862c6: 45% ▕███      ▏ 44 MB/98 MB
 21 MB/s 2s`), other statuses get a line each, and the lines are redrawn in place on a terminal.
Without a terminal every status is printed once, and a layer once it is complete.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

import httpx

from server.cli.client import CLIError, error_text, server_url


def human_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}" if n < 10 * size else f"{n / size:.0f} {unit}"
    return f"{n:.0f} B"


def human_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60}s"
    return f"{seconds}s"


@dataclass
class Line:
    label: str
    total: int = 0
    completed: int = 0
    started: float = field(default_factory=time.monotonic)
    first_completed: int = -1
    printed: bool = False

    def render(self, width: int = 25) -> str:
        if not self.total:
            return self.label
        if self.first_completed < 0:
            self.first_completed = self.completed
        percent = min(100, 100 * self.completed // self.total)
        filled = width * percent // 100
        text = (f"{self.label}: {percent:3d}% ▕{'█' * filled}{' ' * (width - filled)}▏ "
                f"{human_bytes(self.completed)}/{human_bytes(self.total)}")
        elapsed = time.monotonic() - self.started
        moved = self.completed - self.first_completed
        if self.completed < self.total and elapsed > 0.5 and moved > 0:
            rate = moved / elapsed
            text += f"  {human_bytes(rate)}/s  {human_duration((self.total - self.completed) / rate)}"
        return text


class ProgressView:
    """One line per status or digest, in the order they first appear."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.lines: dict[str, Line] = {}
        self.drawn = 0
        self.last_draw = 0.0

    def update(self, item: dict) -> None:
        status = item.get("status", "")
        digest = item.get("digest")
        key = digest or status
        line = self.lines.get(key)
        if line is None:
            line = self.lines[key] = Line(status)
        line.label = status
        if digest:
            line.total = int(item.get("total") or 0)
            line.completed = int(item.get("completed") or 0)
        if self.tty:
            now = time.monotonic()
            if now - self.last_draw >= 0.1 or not digest or line.completed >= line.total:
                self.draw()
                self.last_draw = now
        elif not line.printed and (not digest or (line.total and line.completed >= line.total)):
            self.stream.write(line.render() + "\n")
            self.stream.flush()
            line.printed = True

    def draw(self) -> None:
        out = ["\x1b[A" * self.drawn] if self.drawn else []
        for line in self.lines.values():
            out.append("\r\x1b[K" + line.render() + "\n")
        self.stream.write("".join(out))
        self.stream.flush()
        self.drawn = len(self.lines)

    def finish(self) -> None:
        if self.tty:
            self.draw()


def stream_progress(path: str, body: dict, view: ProgressView) -> None:
    with httpx.Client(base_url=server_url(), timeout=httpx.Timeout(None, connect=10)) as client:
        with client.stream("POST", path, json=body) as response:
            if response.status_code >= 400:
                response.read()
                raise CLIError(error_text(response))
            for raw in response.iter_lines():
                if not raw.strip():
                    continue
                item = json.loads(raw)
                if "error" in item:
                    view.finish()
                    raise CLIError(item["error"])
                view.update(item)
    view.finish()


def pull(args: argparse.Namespace) -> int:
    stream_progress("/api/pull", {"model": args.model, "insecure": args.insecure}, ProgressView())
    return 0


def push(args: argparse.Namespace) -> int:
    stream_progress("/api/push", {"model": args.model, "insecure": args.insecure}, ProgressView())
    return 0


def _run(command):
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except CLIError as e:
            print(f"Error: {e}", file=sys.stderr)
        except httpx.HTTPError as e:
            print(f"Error: could not connect to the pollama server at {server_url()}: {e}", file=sys.stderr)
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 130
        return 1

    return run


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `pull` and `push` on the CLI's subcommand parser."""
    for verb, command, help_text in (("pull", pull, "pull a model from a registry"),
                                     ("push", push, "push a model to a registry")):
        parser = commands.add_parser(verb, help=help_text)
        parser.add_argument("model", metavar="MODEL")
        parser.add_argument("--insecure", action="store_true", help="use an insecure registry (plain HTTP)")
        parser.set_defaults(run=_run(command))
