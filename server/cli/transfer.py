"""`pollama pull` and `pollama push`: a spinner per status and a bar per layer, as Ollama shows them.

On a terminal the lines are redrawn in place; in a pipe each status is printed once, and each layer once it
is complete (see server/cli/progress.py).
"""

from __future__ import annotations

from typing import Any

from modelstore.names import parse_name
from server.cli.client import Client, CLIError
from server.cli.flags import Parsed
from server.cli.progress import Bar, Progress, Spinner


class _Display:
    """Ollama's progress callback: one bar per digest, one spinner per new status."""

    def __init__(self, progress: Progress, bar_label: str) -> None:
        self.progress = progress
        self.bar_label = bar_label
        self.bars: dict[str, Bar] = {}
        self.status = ""
        self.spinner: Spinner | None = None

    def __call__(self, event: dict[str, Any], skip_empty: bool = False) -> None:
        digest = event.get("digest") or ""
        completed, total = int(event.get("completed") or 0), int(event.get("total") or 0)
        if digest:
            if skip_empty and completed == 0:
                return  # the announcement before a layer starts: no 0% bar
            if self.spinner:
                self.spinner.stop()
            bar = self.bars.get(digest)
            if bar is None:
                bar = self.bars[digest] = Bar(self.label(event), total, completed)
                self.progress.add(bar)
            bar.set(completed)
            self.progress.update()
        elif event.get("status", "") != self.status:
            if self.spinner:
                self.spinner.stop()
            self.status = event.get("status", "")
            self.spinner = Spinner(self.status)
            self.progress.add(self.spinner)

    def label(self, event: dict[str, Any]) -> str:
        digest = event["digest"]
        if self.bar_label == "pulling":
            short = digest.removeprefix("sha256:").strip()
            return f"pulling {short[:12] if digest.startswith('sha256:') else short}:"
        return event.get("status") or f"{self.bar_label} {digest[7:19]}..."


def pull_model(client: Client, name: str, insecure: bool) -> None:
    progress = Progress()
    display = _Display(progress, "pulling")
    try:
        for event in client.stream("/api/pull", {"model": name, "insecure": insecure}):
            display(event, skip_empty=True)
    finally:
        progress.stop()


def pull(client: Client, parsed: Parsed) -> None:
    pull_model(client, parsed.args[0], parsed["insecure"])


def push(client: Client, parsed: Parsed) -> None:
    name = parsed.args[0]
    progress = Progress()
    display = _Display(progress, "pushing")
    try:
        for event in client.stream("/api/push", {"model": name, "insecure": parsed["insecure"]}):
            display(event)
    except CLIError as e:
        text = str(e).lower()
        if "access denied" in text or "unauthorized" in text:
            raise CLIError("you are not authorized to push to this namespace, "
                           "create the model under a namespace you own") from None
        raise
    finally:
        progress.stop()
    parts = parse_name(name)
    destination = str(parts)
    if parts.host.endswith((".ollama.ai", ".ollama.com")):
        destination = "https://ollama.com/" + parts.display_shortest().removesuffix(":latest")
    print(f"\nYou can find your model at:\n\n\t{destination}")
