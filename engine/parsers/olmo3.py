"""olmo3: content with Python-style calls in `<function_calls>NAME(key=value, …)</function_calls>`, one
per line; olmo3-think: thinking up to `</think>` (the prompt opened it), then content, no tools."""

from __future__ import annotations

import logging
import re
from enum import Enum, auto
from typing import Any

from engine.parsers.base import (
    Parsed,
    Parser,
    Step,
    StepParser,
    continues_assistant,
    hold_back,
    overlap,
    tool_call,
    trim,
    trim_left,
    trim_right,
)
from engine.parsers.values import parse_float, parse_int

log = logging.getLogger(__name__)

CALLS_OPEN = "<function_calls>"
CALLS_CLOSE = "</function_calls>"
THINK_CLOSE = "</think>"

_CALL = re.compile(r"(\w+)\((.*)\)", re.ASCII)


class State(Enum):
    CONTENT = auto()
    TOOL_CALLS = auto()
    TOOL_CALLS_DONE = auto()


class Olmo3Parser(StepParser):
    has_tool_support = True

    def __init__(self) -> None:
        super().__init__()
        self.state = State.CONTENT

    def init(self, tools, last_message, think):
        self.state = State.CONTENT
        self.call_index = 0
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        if done:
            rest, self.buffer = self.buffer, ""
            return Parsed(rest if self.state == State.CONTENT else "", "", [])
        return self._parsed(self._events(done))

    def _eat(self, done: bool) -> Step:
        acc = self.buffer
        if self.state == State.CONTENT:
            before, found, after = acc.partition(CALLS_OPEN)
            if found:
                self.buffer = after
                self.state = State.TOOL_CALLS
                return "content", before, True
            held = overlap(acc, CALLS_OPEN)
            self.buffer = acc[len(acc) - held:]
            return "content", acc[:len(acc) - held], False
        if self.state == State.TOOL_CALLS:
            block, found, after = acc.partition(CALLS_CLOSE)
            if not found:
                return "", "", False
            self.buffer = after
            self.state = State.TOOL_CALLS_DONE
            try:
                return "calls", parse_function_calls(block), True
            except ValueError as e:
                log.debug("failed to parse olmo3 function calls: %s", e)
                return "", "", True
        self.buffer = ""
        self.state = State.CONTENT
        return "content", acc, False


def parse_function_calls(text: str) -> list[dict[str, Any]]:
    calls = []
    for line in trim(text).split("\n"):
        line = trim(line)
        if not line:
            continue
        match = _CALL.fullmatch(line)
        try:
            if match is None:
                raise ValueError("invalid function call format")
            try:
                arguments = _arguments(match.group(2))
            except ValueError as e:
                raise ValueError(f"failed to parse arguments: {e}") from None
        except ValueError as e:
            raise ValueError(f"failed to parse function call {line!r}: {e}") from None
        calls.append(tool_call(match.group(1), arguments))
    return calls


def _arguments(text: str) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for part in split_arguments(trim(text)):
        part = trim(part)
        if not part:
            continue
        key, found, value = part.partition("=")
        if not found:
            raise ValueError(f"invalid argument format: {part}")
        key = trim(key)
        try:
            arguments[key] = _value(value)
        except ValueError as e:
            raise ValueError(f"failed to parse value for {key}: {e}") from None
    return arguments


def split_arguments(s: str) -> list[str]:
    """Split at top-level commas, minding quotes (with backslash escapes) and brackets."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quote = ""
    escaped = False
    for c in s:
        if escaped:
            current.append(c)
            escaped = False
            continue
        if c == "\\" and quote:
            current.append(c)
            escaped = True
            continue
        if c in "\"'" and not quote:
            quote = c
        elif quote and c == quote:
            quote = ""
        elif not quote and c in "([{":
            depth += 1
        elif not quote and c in ")]}":
            depth -= 1
        elif not quote and c == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(c)
    if current:
        parts.append("".join(current))
    return parts


def _value(s: str) -> Any:
    s = trim(s)
    if len(s) >= 1 and ((s[0] == '"' and s[-1] == '"') or (s[0] == "'" and s[-1] == "'")):
        return _unescape(s[1:-1]) if len(s) >= 2 else ""
    if s in ("true", "True"):
        return True
    if s in ("false", "False"):
        return False
    if s in ("null", "None", "nil"):
        return None
    number = parse_int(s)
    if number is not None:
        return number
    f = parse_float(s)
    if f is not None:
        return f
    if s.startswith("[") and s.endswith("]") and len(s) >= 2:
        inner = trim(s[1:-1])
        return [_value(part) for part in split_arguments(inner)] if inner else []
    if s.startswith("{") and s.endswith("}") and len(s) >= 2:
        return _object(trim(s[1:-1]))
    return s


def _object(s: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if not s:
        return result
    for part in split_arguments(s):
        part = trim(part)
        if not part:
            continue
        key, found, value = part.partition(":")
        if not found:
            raise ValueError(f"invalid object entry: {part}")
        key = trim(key)
        if len(key) >= 2 and ((key[0] == '"' and key[-1] == '"') or (key[0] == "'" and key[-1] == "'")):
            key = key[1:-1]
        try:
            result[key] = _value(trim(value))
        except ValueError as e:
            raise ValueError(f"failed to parse value for key {key}: {e}") from None
    return result


def _unescape(s: str) -> str:
    return (s.replace("\\\\", "\x00").replace('\\"', '"').replace("\\'", "'").replace("\\n", "\n")
            .replace("\\t", "\t").replace("\\r", "\r").replace("\x00", "\\"))


class Olmo3ThinkParser(Parser):
    has_thinking_support = True

    def __init__(self) -> None:
        self.thinking = True
        self.buffer = ""

    def init(self, tools, last_message, think):
        self.thinking = not continues_assistant(last_message)
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        content: list[str] = []
        thinking: list[str] = []
        while self.buffer:
            acc = self.buffer
            if not self.thinking:
                content.append(acc)
                self.buffer = ""
                break
            thought, found, after = acc.partition(THINK_CLOSE)
            if found:
                thinking.append(trim_right(thought))
                self.buffer = trim_left(after)
                self.thinking = False
                continue
            end = hold_back(acc, THINK_CLOSE)
            thinking.append(acc[:end])
            self.buffer = acc[end:]
            break
        return Parsed("".join(content), "".join(thinking), [])
