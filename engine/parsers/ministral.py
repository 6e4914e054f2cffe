"""ministral (Mistral 3): `[THINK]…[/THINK]` thinking and `[TOOL_CALLS]NAME[ARGS]{json}` tool calls."""

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
    find_tool,
    overlap,
    tool_call,
    trim_left,
    trim_right,
)

TOOL_CALLS = "[TOOL_CALLS]"
THINK = "[THINK]"
THINK_END = "[/THINK]"
ARGS = "[ARGS]"


class State(Enum):
    COLLECTING_CONTENT = auto()
    COLLECTING_THINKING = auto()
    COLLECTING_TOOL_NAME = auto()
    COLLECTING_TOOL_ARGS = auto()


class MinistralParser(StepParser):
    has_tool_support = True

    def __init__(self, thinking: bool = False) -> None:
        super().__init__()
        self.has_thinking_support = thinking
        self.state = State.COLLECTING_CONTENT
        self.tools: list[dict[str, Any]] = []
        self.pending_name = ""

    def init(self, tools, last_message, think):
        self.tools = tools or []
        self.call_index = 0
        if not self.has_thinking_support or continues_assistant(last_message):
            self.state = State.COLLECTING_CONTENT
        else:
            self.state = State.COLLECTING_THINKING
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        return self._parsed(self._events(done), self._call)

    def _call(self, name_and_arguments: tuple[str, str]) -> dict[str, Any]:
        name, raw_arguments = name_and_arguments
        if find_tool(self.tools, name) is None:
            raise ParserError(f"tool '{name}' not found")
        try:
            arguments = gojson.loads_arguments(raw_arguments)
        except gojson.GoJSONError as e:
            raise ParserError(str(e)) from None
        return tool_call(name, arguments)

    def _eat(self, done: bool) -> Step:
        acc = self.buffer
        if self.state == State.COLLECTING_CONTENT:
            for tag, state in ((TOOL_CALLS, State.COLLECTING_TOOL_NAME), (THINK, State.COLLECTING_THINKING)):
                before, found, after = acc.partition(tag)
                if found:
                    self.buffer = after
                    self.state = state
                    return self._found("content", trim_right(before), True)
            return self._let_out("content", TOOL_CALLS, THINK)
        if self.state == State.COLLECTING_THINKING:
            thought, found, after = acc.partition(THINK_END)
            if found:
                self.buffer = trim_left(after)
                self.state = State.COLLECTING_CONTENT
                return self._found("thinking", thought, True)
            held = overlap(acc, THINK_END)
            out, self.buffer = acc[:len(acc) - held], acc[len(acc) - held:]
            return self._found("thinking", out, False)
        if self.state == State.COLLECTING_TOOL_NAME:
            name, found, after = acc.partition(ARGS)
            if not found:
                return "", "", False
            self.pending_name = name
            self.buffer = after
            self.state = State.COLLECTING_TOOL_ARGS
            return "", "", True
        end = json_end(acc)
        if end == -1:
            return "", "", False
        name, self.pending_name = self.pending_name, ""
        self.buffer = acc[end + 1:]
        self.state = State.COLLECTING_CONTENT
        return "call", (name, acc[:end + 1]), True


def json_end(s: str) -> int:
    """The index of the bracket that closes the JSON value at the start of `s`, or -1 (string aware)."""
    depth = 0
    in_string = escaped = False
    for i, c in enumerate(s):
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
            continue
        if c == '"':
            in_string = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return i
    return -1
