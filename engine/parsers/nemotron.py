"""nemotron-3-nano (and nemotron-3.5-nano): thinking up to `</think>` or to the first `<tool_call>`, then
content with qwen3-coder's XML tool calls."""

from __future__ import annotations

from enum import Enum, auto

from engine.parsers.base import Parsed, Parser, continues_assistant, hold_back, overlap, trim_left, trim_right
from engine.parsers.qwen3coder import Qwen3CoderParser
from engine.thinkvalue import think_on

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
TOOL_OPEN = "<tool_call>"


class State(Enum):
    COLLECTING_THINKING = auto()
    SKIP_SPACE_AFTER_THINKING = auto()
    COLLECTING_CONTENT = auto()


class Nemotron3NanoParser(Parser):
    has_tool_support = True
    has_thinking_support = True

    def __init__(self) -> None:
        self.state = State.COLLECTING_THINKING
        self.buffer = ""
        self.tools = Qwen3CoderParser()
        self.maybe_open_tag = False  # the prompt opened <think>; the model may repeat it
        self.skip_thinking_space = False

    def init(self, tools, last_message, think):
        self.tools = Qwen3CoderParser()
        self.tools.init(tools, None, None)
        self.buffer = ""
        self.maybe_open_tag = False
        self.skip_thinking_space = False
        thinking = think_on(think, default=True)
        if not thinking or continues_assistant(last_message):
            self.state = State.COLLECTING_CONTENT
        else:
            self.state = State.COLLECTING_THINKING
            self.maybe_open_tag = True
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        if self.state == State.COLLECTING_CONTENT:
            return self.tools.add(text, done)
        if self.state == State.SKIP_SPACE_AFTER_THINKING:
            text = trim_left(text)
            if not text:
                return Parsed("", "", [])
            self.state = State.COLLECTING_CONTENT
            return self.tools.add(text, done)
        self.buffer += text
        if self.skip_thinking_space:
            self.buffer = trim_left(self.buffer)
            if not self.buffer:
                return Parsed("", "", [])
            self.skip_thinking_space = False
        if self._strip_open_tag():
            return self.add("", done)
        if self.maybe_open_tag:
            trimmed = trim_left(self.buffer)
            if not trimmed or overlap(trimmed, THINK_OPEN) == len(trimmed):
                self.buffer = trimmed
                return Parsed("", "", [])
        acc = self.buffer
        close_at = acc.find(THINK_CLOSE)
        tool_at = acc.find(TOOL_OPEN)
        if close_at != -1 and (tool_at == -1 or close_at < tool_at):
            end, rest = close_at, trim_left(acc[close_at + len(THINK_CLOSE):])
        elif tool_at != -1:
            end, rest = tool_at, acc[tool_at:]  # the tag stays: it opens the call
        else:
            end = hold_back(acc, THINK_CLOSE, TOOL_OPEN)
            self.buffer = acc[end:]
            return Parsed("", acc[:end], [])
        thinking = trim_right(acc[:end])
        self.buffer = ""
        if not rest:
            self.state = State.SKIP_SPACE_AFTER_THINKING
            return Parsed("", thinking, [])
        self.state = State.COLLECTING_CONTENT
        parsed = self.tools.add(rest, done)
        return Parsed(parsed.content, thinking, parsed.calls)

    def _strip_open_tag(self) -> bool:
        if not self.maybe_open_tag:
            return False
        trimmed = trim_left(self.buffer)
        if not trimmed:
            self.buffer = ""
            return False
        if trimmed.startswith(THINK_OPEN):
            self.buffer = trim_left(trimmed[len(THINK_OPEN):])
            self.maybe_open_tag = False
            self.skip_thinking_space = True
            return True
        if overlap(trimmed, THINK_OPEN) == len(trimmed):
            self.buffer = trimmed
            return False
        self.maybe_open_tag = False
        return False
