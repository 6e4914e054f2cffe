"""qwen3.5 (and ornith): thinking up to `</think>` (the prompt opened it), then content whose XML tool
calls are qwen3-coder's."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

from engine.parsers.base import Parsed, Step, StepParser, continues_assistant, overlap, split_at_tag, trim_left
from engine.parsers.qwen3coder import Qwen3CoderParser
from engine.thinkvalue import think_on

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
TOOL_OPEN = "<tool_call>"


class State(Enum):
    COLLECTING_THINKING = auto()
    THINKING_DONE_EATING_SPACE = auto()
    COLLECTING_CONTENT = auto()


class Qwen35Parser(StepParser):
    has_tool_support = True
    has_thinking_support = True

    def __init__(self) -> None:
        super().__init__()
        self.tools = Qwen3CoderParser()
        self.state = State.COLLECTING_THINKING
        self.allow_open_tag = False  # some checkpoints repeat the prompt's <think>; strip one
        self.trim_thinking_start = False

    def init(self, tools, last_message, think):
        self.buffer = ""
        self.tools = Qwen3CoderParser()
        self.tools.init(tools, None, None)
        thinking = think_on(think, default=True) and not continues_assistant(last_message)
        self.state = State.COLLECTING_THINKING if thinking else State.COLLECTING_CONTENT
        self.allow_open_tag = thinking
        self.trim_thinking_start = False
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        content: list[str] = []
        thinking: list[str] = []
        calls: list[dict[str, Any]] = []
        for kind, value in self._events(done):
            if kind == "content":  # the tool calls in it are qwen3-coder's, numbered there
                parsed = self.tools.add(value, done)
                content.append(parsed.content)
                calls += parsed.calls
            else:
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

    def _eat(self, done: bool) -> Step:
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
                return self._found("thinking", thinking, True)
            if TOOL_OPEN in acc and not (overlap(acc, THINK_CLOSE) or overlap(acc, TOOL_OPEN)):
                # the model sometimes opens a tool call without closing its thinking first
                thinking, tooling = split_at_tag(acc, TOOL_OPEN, True)
                self.buffer = thinking + THINK_CLOSE + TOOL_OPEN + tooling
                return "", "", True
            return self._let_out("thinking", THINK_CLOSE, TOOL_OPEN)
        if self.state == State.THINKING_DONE_EATING_SPACE:
            return self._skip_space_then(State.COLLECTING_CONTENT)
        content, self.buffer = self.buffer, ""
        return self._found("content", content, False)
