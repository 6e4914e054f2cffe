"""qwen3-vl-instruct and qwen3-vl-thinking: (thinking up to `</think>`,) content, and JSON tool calls in
`<tool_call>…</tool_call>` read as a whole function object."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

from engine.parsers import gojson
from engine.parsers.base import Parsed, Parser, ParserError, hold_back, split_at_tag, tool_call, trim_left

THINK_CLOSE = "</think>"
TOOL_OPEN = "<tool_call>"
TOOL_CLOSE = "</tool_call>"


class State(Enum):
    COLLECTING_THINKING = auto()
    COLLECTING_CONTENT = auto()
    COLLECTING_TOOL = auto()
    THINKING_DONE_EATING_SPACE = auto()
    TOOL_DONE_EATING_SPACE = auto()


class Qwen3VLParser(Parser):
    has_tool_support = True

    def __init__(self, thinking: bool) -> None:
        self.has_thinking_support = thinking
        self.state = State.COLLECTING_THINKING
        self.buffer = ""
        self.call_index = 0

    def init(self, tools, last_message, think):
        self.call_index = 0
        prefill = last_message is not None and last_message.get("role") == "assistant"
        if not self.has_thinking_support or (prefill and last_message.get("content")):
            self.state = State.COLLECTING_CONTENT
        else:
            self.state = State.COLLECTING_THINKING
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        content: list[str] = []
        thinking: list[str] = []
        calls: list[dict[str, Any]] = []
        more = True
        while more:
            kind, value, more = self._eat()
            if kind == "call":
                calls.append(parse_json_function(value))
            elif kind == "thinking":
                thinking.append(value)
            elif kind == "content":
                content.append(value)
        for call in calls:
            call["function"]["index"] = self.call_index
            self.call_index += 1
        return Parsed("".join(content), "".join(thinking), calls)

    def _let_out(self, kind: str, *tags: str) -> tuple[str, str, bool]:
        end = hold_back(self.buffer, *tags)
        out, self.buffer = self.buffer[:end], self.buffer[end:]
        return (kind, out, False) if out else ("", "", False)

    def _eat(self) -> tuple[str, str, bool]:
        acc = self.buffer
        if self.state == State.COLLECTING_CONTENT:
            if TOOL_OPEN in acc:
                before, self.buffer = split_at_tag(acc, TOOL_OPEN, False)
                self.state = State.COLLECTING_TOOL
                return ("content", before, True) if before else ("", "", True)
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
                return ("thinking", before, True) if before else ("", "", True)
            if close_at != -1:
                thinking, self.buffer = split_at_tag(acc, THINK_CLOSE, True)
                self.state = State.COLLECTING_CONTENT if self.buffer else State.THINKING_DONE_EATING_SPACE
                return ("thinking", thinking, True) if thinking else ("", "", True)
            return self._let_out("thinking", THINK_CLOSE, TOOL_OPEN)
        # after </think> or a tool call: skip whitespace, then content
        self.buffer = trim_left(acc)
        if not self.buffer:
            return "", "", False
        self.state = State.COLLECTING_CONTENT
        return "", "", True


def parse_json_function(raw: str) -> dict[str, Any]:
    """The JSON object of a `{"name", "arguments"}` function (Go's ToolCallFunction, keys matched
    case-insensitively)."""
    try:
        fields = gojson.struct(gojson.loads(raw), {"index": int, "name": str, "arguments": dict},
                               "api.ToolCallFunction")
    except gojson.GoJSONError as e:
        raise ParserError(str(e)) from None
    return tool_call(fields.get("name", ""), fields.get("arguments", {}))
