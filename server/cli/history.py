"""`~/.ollama/history` for prompt_toolkit, in Ollama's format: one entry a line, the last 100 kept.

The file is shared with Ollama's own CLI, so it keeps that format rather than prompt_toolkit's. Each write
replaces the file whole (a temporary file renamed over it), as Ollama does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from prompt_toolkit.history import History

LIMIT = 100


def default_path() -> Path:
    return Path.home() / ".ollama" / "history"


class OllamaHistory(History):
    def __init__(self, path: Path | None = None, enabled: bool = True) -> None:
        super().__init__()
        self.path = path or default_path()
        self.enabled = enabled
        self.entries: list[str] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            text = self.path.read_text(encoding="utf-8", errors="replace") if self.path.exists() else ""
        except OSError:
            text = ""
        self.entries = [line.strip() for line in text.splitlines() if line.strip()][-LIMIT:]

    def load_history_strings(self) -> Iterable[str]:
        return list(reversed(self.entries))

    def store_string(self, string: str) -> None:
        # A pasted message is several lines; Ollama's reader records each one.
        self.entries = (self.entries + [line.strip() for line in string.splitlines() if line.strip()])[-LIMIT:]
        if not self.enabled:
            return
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            fd = os.open(temporary, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("".join(entry + "\n" for entry in self.entries))
            os.replace(temporary, self.path)
        except OSError:
            pass  # history is a convenience; a read-only home must not stop the chat
