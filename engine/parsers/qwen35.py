"""qwen3.5 (and ornith): thinking up to `</think>` (the prompt opened it), then content whose XML tool
calls are qwen3-coder's."""

from __future__ import annotations

import logging
from enum import Enum, auto
from typing import Any

from engine.parsers.base import Parsed, Parser, hold_back, overlap, split_at_tag, think_on, trim_left
from engine.parsers.qwen3coder import Qwen3CoderParser

log = logging.getLogger(__name__)

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
TOOL_OPEN = "<tool_call>"


class State(Enum):
    COLLECTING_THINKING = auto()
    THINKING_DONE_EATING_SPACE = auto()
    COLLECTING_CONTENT = auto()


class Qwen35Parser(Parser):
    has_tool_support = True
    has_thinking_support = True

    def __init__(self) -> None:
        self.tools = Qwen3CoderParser()
        self.state = State.COLLECTING_THINKING
        self.buffer = ""
        self.allow_open_tag = False  # some checkpoints repeat the prompt's <think>; strip one
        self.trim_thinking_start = False

    def init(self, tools, last_message, think):
        self.buffer = ""
        self.tools = Qwen3CoderParser()
        self.tools.init(tools, None, None)
        thinking = True if think is None else think_on(think)
        prefill = bool(last_message) and last_message.get("role") == "assistant" and bool(last_message.get("content"))
        self.state = State.COLLECTING_THINKING if thinking and not prefill else State.COLLECTING_CONTENT
        self.allow_open_tag = thinking and not prefill
        self.trim_thinking_start = False
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        content: list[str] = []
        thinking: list[str] = []
        calls: list[dict[str, Any]] = []
        more = True
        while more:
            kind, value, more = self._eat()
            if kind == "content":
                parsed = self.tools.add(value, done)
                content.append(parsed.content)
                calls += parsed.calls
            elif kind == "thinking":
                thinking.append(value)
        return Parsed("".join(content), "".join(thinking), calls)

    def _open_tag(self, acc: str) -> tuple[bool, bool]:
        """(handled, go on now) for a leading `<think>` the model may repeat."""
        if not self.allow_open_tag:
            return False, False
        trimmed = trim_left(acc)
        if trimmed.startswith(THINK_OPEN):
            self.buffer = trim_left(trimmed[len(THINK_OPEN):])
            self.allow_open_tag = False
            self.trim_thinking_start = not self.buffer
            return True, bool(self.buffer)
        if THINK_OPEN.startswith(trimmed):
            return True, False
        self.allow_open_tag = False
        return False, False

    def _eat(self) -> tuple[str, str, bool]:
        if self.state == State.COLLECTING_THINKING:
            acc = self.buffer
            handled, go_on = self._open_tag(acc)
            if handled:
                return "", "", go_on
            if self.trim_thinking_start:
                acc = self.buffer = trim_left(acc)
                if not acc:
                    return "", "", False
                self.trim_thinking_start = False
            if THINK_CLOSE in acc:
                thinking, self.buffer = split_at_tag(acc, THINK_CLOSE, True)
                self.state = State.COLLECTING_CONTENT if self.buffer else State.THINKING_DONE_EATING_SPACE
                return ("thinking", thinking, True) if thinking else ("", "", True)
            if TOOL_OPEN in acc and not (overlap(acc, THINK_CLOSE) or overlap(acc, TOOL_OPEN)):
                # the model sometimes opens a tool call without closing its thinking first
                thinking, tooling = split_at_tag(acc, TOOL_OPEN, True)
                self.buffer = thinking + THINK_CLOSE + TOOL_OPEN + tooling
                return "", "", True
            end = hold_back(acc, THINK_CLOSE, TOOL_OPEN)
            out, self.buffer = acc[:end], acc[end:]
            return ("thinking", out, False) if out else ("", "", False)
        if self.state == State.THINKING_DONE_EATING_SPACE:
            self.buffer = trim_left(self.buffer)
            if not self.buffer:
                return "", "", False
            self.state = State.COLLECTING_CONTENT
            return "", "", True
        if self.state == State.COLLECTING_CONTENT:
            content, self.buffer = self.buffer, ""
            return ("content", content, False) if content else ("", "", False)
        log.warning("qwen3.5 parser entered unknown state; resetting to content mode")
        self.state = State.COLLECTING_CONTENT
        return "", "", False

