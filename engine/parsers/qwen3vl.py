"""qwen3-vl-instruct and qwen3-vl-thinking: (thinking up to `</think>`,) content, and JSON tool calls in
`<tool_call>…</tool_call>` read as a whole function object."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

from engine.parsers import gojson
from engine.parsers.base import (
    Parsed,
    ParserError,
    Step,
    StepParser,
    continues_assistant,
    split_at_tag,
    tool_call,
)

THINK_CLOSE = "</think>"
TOOL_OPEN = "<tool_call>"
TOOL_CLOSE = "</tool_call>"


class State(Enum):
    COLLECTING_THINKING = auto()
    COLLECTING_CONTENT = auto()
    COLLECTING_TOOL = auto()
    THINKING_DONE_EATING_SPACE = auto()
    TOOL_DONE_EATING_SPACE = auto()


class Qwen3VLParser(StepParser):
    has_tool_support = True

    def __init__(self, thinking: bool) -> None:
        super().__init__()
        self.has_thinking_support = thinking
        self.state = State.COLLECTING_THINKING

    def init(self, tools, last_message, think):
        self.call_index = 0
        if not self.has_thinking_support or continues_assistant(last_message):
            self.state = State.COLLECTING_CONTENT
        else:
            self.state = State.COLLECTING_THINKING
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        return self._parsed(self._events(done), parse_json_function)

    def _eat(self, done: bool) -> Step:
        acc = self.buffer
        if self.state == State.COLLECTING_CONTENT:
            if TOOL_OPEN in acc:
                before, self.buffer = split_at_tag(acc, TOOL_OPEN, False)
                self.state = State.COLLECTING_TOOL
                return self._found("content", before, True)
            return self._let_out("content", TOOL_OPEN)
        if self.state == State.COLLECTING_TOOL:
            raw, found, after = acc.partition(TOOL_CLOSE)
            if not found:
                return "", "", False
            self.buffer = after
            self.state = State.TOOL_DONE_EATING_SPACE
            return "call", raw, True
        if self.state == State.COLLECTING_THINKING:
            close_at = acc.find(THINK_CLOSE)
            tool_at = acc.find(TOOL_OPEN)
            if tool_at != -1 and (close_at == -1 or tool_at < close_at):
                before, self.buffer = split_at_tag(acc, TOOL_OPEN, False)
                self.state = State.COLLECTING_TOOL
                return self._found("thinking", before, True)
            if close_at != -1:
                thinking, self.buffer = split_at_tag(acc, THINK_CLOSE, True)
                self.state = State.COLLECTING_CONTENT if self.buffer else State.THINKING_DONE_EATING_SPACE
                return self._found("thinking", thinking, True)
            return self._let_out("thinking", THINK_CLOSE, TOOL_OPEN)
        # after </think> or a tool call: skip whitespace, then content
        return self._skip_space_then(State.COLLECTING_CONTENT)


def parse_json_function(raw: str) -> dict[str, Any]:
    """The JSON object of a `{"name", "arguments"}` function (Go's ToolCallFunction, keys matched
    case-insensitively)."""
    try:
        fields = gojson.struct(gojson.loads(raw), {"index": int, "name": str, "arguments": dict},
                               "api.ToolCallFunction")
    except gojson.GoJSONError as e:
        raise ParserError(str(e)) from None
    return tool_call(fields.get("name", ""), fields.get("arguments", {}))
