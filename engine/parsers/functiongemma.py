"""functiongemma: content with calls in `<start_function_call>call:NAME{key:value,…}<end_function_call>`,
strings wrapped in `<escape>`."""

from __future__ import annotations

import re
from typing import Any

from engine.parsers.base import BufferedParser, Parsed, overlap, tool_call
from engine.parsers.values import sscanf_float, sscanf_int

CALL_OPEN = "<start_function_call>"
CALL_CLOSE = "<end_function_call>"
ESCAPE = "<escape>"

_CALL = re.compile(r"call:([^{]+)\{(.*)\}")


class FunctionGemmaParser(BufferedParser):
    has_tool_support = True

    def __init__(self) -> None:
        super().__init__()
        self.in_calls = False

    def init(self, tools, last_message, think):
        self.in_calls = False
        self.call_index = 0
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        content: list[str] = []
        calls: list[dict[str, Any]] = []
        while self.buffer:
            acc = self.buffer
            if not self.in_calls:
                before, found, after = acc.partition(CALL_OPEN)
                if found:
                    content.append(before)
                    self.buffer = after
                    self.in_calls = True
                    continue
                held = overlap(acc, CALL_OPEN)
                content.append(acc[:len(acc) - held])
                self.buffer = acc[len(acc) - held:]
                break
            body, found, after = acc.partition(CALL_CLOSE)
            if not found:
                break
            self.buffer = after
            calls.append(parse_call(body))
            if CALL_OPEN not in after:
                self.in_calls = False
        return Parsed("".join(content), "", self._numbered(calls))


def parse_call(text: str) -> dict[str, Any]:
    """`call:NAME{args}`; text that is not a call gives a call with no name and no arguments, as in Go."""
    match = _CALL.search(text)
    if match is None:
        return tool_call("", {})
    return tool_call(match.group(1), _arguments(match.group(2)))


def _arguments(text: str) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for part in _split(text):
        key, found, value = part.partition(":")
        if found:
            arguments[key] = _value(value)
    return arguments


def _split(text: str) -> list[str]:
    """Split at top-level commas; `<escape>` toggles a quoted run."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    i = 0
    while i < len(text):
        if text.startswith(ESCAPE, i):
            quoted = not quoted
            current.append(ESCAPE)
            i += len(ESCAPE)
            continue
        c = text[i]
        i += 1
        if not quoted:
            if c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
            elif c == "," and depth == 0:
                if current:
                    parts.append("".join(current))
                    current = []
                continue
        current.append(c)
    if current:
        parts.append("".join(current))
    return parts


def _value(value: str) -> Any:
    if value.startswith(ESCAPE) and value.endswith(ESCAPE) and len(value) >= 2 * len(ESCAPE):
        return value[len(ESCAPE):-len(ESCAPE)]
    if value == "true":
        return True
    if value == "false":
        return False
    number = sscanf_int(value)
    if number is not None and str(number) == value:
        return number
    f = sscanf_float(value)
    if f is not None:
        return f
    if value.startswith("[") and value.endswith("]") and len(value) >= 2:
        return [_value(part) for part in _split(value[1:-1])] or None
    if value.startswith("{") and value.endswith("}") and len(value) >= 2:
        result: dict[str, Any] = {}
        for part in _split(value[1:-1]):
            key, found, item = part.partition(":")
            if found:
                result[key] = _value(item)
        return result
    return value
