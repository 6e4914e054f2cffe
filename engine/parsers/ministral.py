"""ministral (Mistral 3): `[THINK]…[/THINK]` thinking and `[TOOL_CALLS]NAME[ARGS]{json}` tool calls."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

from engine.parsers import gojson
from engine.parsers.base import (
    Parsed,
    Parser,
    ParserError,
    find_tool,
    hold_back,
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


class MinistralParser(Parser):
    has_tool_support = True

    def __init__(self, thinking: bool = False) -> None:
        self.has_thinking_support = thinking
        self.state = State.COLLECTING_CONTENT
        self.buffer = ""
        self.tools: list[dict[str, Any]] = []
        self.call_index = 0
        self.pending_name = ""

    def init(self, tools, last_message, think):
        self.tools = tools or []
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
            events, more = self._eat()
            for kind, value, args in events:
                if kind == "content":
                    content.append(value)
                elif kind == "thinking":
                    thinking.append(value)
                else:
                    tool = find_tool(self.tools, value)
                    if tool is None:
                        raise ParserError(f"tool '{value}' not found")
                    try:
                        arguments = gojson.loads_arguments(args)
                    except gojson.GoJSONError as e:
                        raise ParserError(str(e)) from None
                    calls.append(tool_call(value, arguments))
        for call in calls:
            call["function"]["index"] = self.call_index
            self.call_index += 1
        return Parsed("".join(content), "".join(thinking), calls)

    def _eat(self) -> tuple[list[tuple[str, str, str]], bool]:
        acc = self.buffer
        if self.state == State.COLLECTING_CONTENT:
            for tag, state in ((TOOL_CALLS, State.COLLECTING_TOOL_NAME), (THINK, State.COLLECTING_THINKING)):
                before, found, after = acc.partition(tag)
                if found:
                    self.buffer = after
                    self.state = state
                    before = trim_right(before)
                    return ([("content", before, "")] if before else []), True
            end = hold_back(acc, TOOL_CALLS, THINK)
            self.buffer = acc[end:]
            return ([("content", acc[:end], "")] if end else []), False
        if self.state == State.COLLECTING_THINKING:
            thought, found, after = acc.partition(THINK_END)
            if found:
                self.buffer = trim_left(after)
                self.state = State.COLLECTING_CONTENT
                return ([("thinking", thought, "")] if thought else []), True
            held = overlap(acc, THINK_END)
            out, self.buffer = acc[:len(acc) - held], acc[len(acc) - held:]
            return ([("thinking", out, "")] if out else []), False
        if self.state == State.COLLECTING_TOOL_NAME:
            name, found, after = acc.partition(ARGS)
            if not found:
                return [], False
            self.pending_name = name
            self.buffer = after
            self.state = State.COLLECTING_TOOL_ARGS
            return [], True
        end = json_end(acc)
        if end == -1:
            return [], False
        name, self.pending_name = self.pending_name, ""
        self.buffer = acc[end + 1:]
        self.state = State.COLLECTING_CONTENT
        return [("call", name, acc[:end + 1])], True


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
