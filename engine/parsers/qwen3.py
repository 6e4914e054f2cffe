"""qwen3 and qwen3-thinking: thinking (the prompt already opened `<think>`, so output starts inside it)
up to `</think>`, then content with JSON tool calls in `<tool_call>{"name", "arguments"}</tool_call>`."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

from engine.parsers import gojson
from engine.parsers.base import Parsed, Parser, ParserError, hold_back, split_at_tag, think_on, tool_call, trim_left

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
TOOL_OPEN = "<tool_call>"
TOOL_CLOSE = "</tool_call>"


class State(Enum):
    LOOKING_FOR_THINKING_OPEN = auto()
    THINKING_STARTED_EATING_SPACE = auto()
    COLLECTING_THINKING = auto()
    THINKING_DONE_EATING_SPACE = auto()
    COLLECTING_CONTENT = auto()
    TOOL_STARTED_EATING_SPACE = auto()
    COLLECTING_TOOL = auto()


class Qwen3Parser(Parser):
    has_tool_support = True

    def __init__(self, thinking: bool) -> None:
        self.has_thinking_support = thinking
        self.default_thinking = thinking
        self.state = State.LOOKING_FOR_THINKING_OPEN
        self.buffer = ""
        self.call_index = 0
        self.maybe_open_tag = False  # some checkpoints repeat the prompt's <think>; strip one

    def init(self, tools, last_message, think):
        self.buffer = ""
        self.call_index = 0
        thinking = self.default_thinking if think is None else think_on(think)
        if self.has_thinking_support and thinking:
            self.state = State.COLLECTING_THINKING
            self.maybe_open_tag = True
        else:
            self.state = State.COLLECTING_CONTENT
            self.maybe_open_tag = False
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
                call = _parse_call(value)
                call["function"]["index"] = self.call_index
                self.call_index += 1
                calls.append(call)
            elif kind == "thinking":
                thinking.append(value)
            elif kind == "content":
                content.append(value)
        return Parsed("".join(content), "".join(thinking), calls)

    def _eat_space_then(self, state: State) -> tuple[str, str, bool]:
        trimmed = trim_left(self.buffer)
        self.buffer = trimmed
        if not trimmed:
            return "", "", False
        self.state = state
        return "", "", True

    def _let_out(self, kind: str, *tags: str) -> tuple[str, str, bool]:
        end = hold_back(self.buffer, *tags)
        out, self.buffer = self.buffer[:end], self.buffer[end:]
        return (kind, out, False) if out else ("", "", False)

    def _eat(self) -> tuple[str, str, bool]:
        acc = self.buffer
        if self.state == State.LOOKING_FOR_THINKING_OPEN:
            trimmed = trim_left(acc)
            if trimmed.startswith(THINK_OPEN):
                self.buffer = trim_left(trimmed[len(THINK_OPEN):])
                self.state = State.COLLECTING_THINKING if self.buffer else State.THINKING_STARTED_EATING_SPACE
                return "", "", True
            if THINK_OPEN.startswith(trimmed):
                return "", "", False
            self.state = State.COLLECTING_CONTENT
            return "", "", True
        if self.state == State.THINKING_STARTED_EATING_SPACE:
            return self._eat_space_then(State.COLLECTING_THINKING)
        if self.state == State.COLLECTING_THINKING:
            if self.maybe_open_tag:
                trimmed = trim_left(acc)
                if trimmed.startswith(THINK_OPEN):
                    self.buffer = trim_left(trimmed[len(THINK_OPEN):])
                    if not self.buffer:
                        return "", "", False
                    self.maybe_open_tag = False
                    return "", "", True
                if THINK_OPEN.startswith(trimmed):
                    return "", "", False
                self.maybe_open_tag = False
            close_at = acc.find(THINK_CLOSE)
            tool_at = acc.find(TOOL_OPEN)
            if tool_at != -1 and (close_at == -1 or tool_at < close_at):
                before, self.buffer = split_at_tag(acc, TOOL_OPEN, True)
                self.state = State.COLLECTING_TOOL if self.buffer else State.TOOL_STARTED_EATING_SPACE
                return ("thinking", before, True) if before else ("", "", True)
            if close_at != -1:
                before, self.buffer = split_at_tag(acc, THINK_CLOSE, True)
                self.state = State.COLLECTING_CONTENT if self.buffer else State.THINKING_DONE_EATING_SPACE
                return ("thinking", before, True) if before else ("", "", True)
            return self._let_out("thinking", THINK_CLOSE, TOOL_OPEN)
        if self.state == State.THINKING_DONE_EATING_SPACE:
            return self._eat_space_then(State.COLLECTING_CONTENT)
        if self.state == State.COLLECTING_CONTENT:
            if TOOL_OPEN in acc:
                before, self.buffer = split_at_tag(acc, TOOL_OPEN, True)
                self.state = State.COLLECTING_TOOL if self.buffer else State.TOOL_STARTED_EATING_SPACE
                return ("content", before, True) if before else ("", "", True)
            return self._let_out("content", TOOL_OPEN)
        if self.state == State.TOOL_STARTED_EATING_SPACE:
            return self._eat_space_then(State.COLLECTING_TOOL)
        if TOOL_CLOSE in acc:
            raw, self.buffer = split_at_tag(acc, TOOL_CLOSE, True)
            self.state = State.COLLECTING_CONTENT
            return "call", raw, True
        return "", "", False


def _parse_call(raw: str) -> dict[str, Any]:
    try:
        parsed = gojson.struct(gojson.loads(raw), {"name": str, "arguments": dict}, "struct")
    except gojson.GoJSONError as e:
        raise ParserError(f"failed to parse JSON: {e}") from None
    if not parsed.get("name"):
        raise ParserError("empty function name")
    return tool_call(parsed["name"], parsed.get("arguments", {}))
