"""qwen3-coder: content with XML-style tool calls, `<tool_call><function=NAME><parameter=KEY>value
</parameter></function></tool_call>`; values typed by the tool's declared parameter types."""

from __future__ import annotations

import re
from typing import Any

from engine.parsers import goxml
from engine.parsers.base import (
    BufferedParser,
    Parsed,
    ParserError,
    find_tool,
    hold_back,
    property_types,
    tool_call,
    trim_left,
    trim_right,
)
from engine.parsers.values import newline_trimmed_value

TOOL_OPEN = "<tool_call>"
TOOL_CLOSE = "</tool_call>"

_TAG = re.compile(r"<(\w+)=([^>]+)>", re.ASCII)
_XML_TAG = re.compile(r"</?(?:function|parameter)(?:[\t\n\f\r ]+name=\"[^\"]*\")?>")


class Qwen3CoderParser(BufferedParser):
    has_tool_support = True

    def __init__(self) -> None:
        super().__init__()
        self.in_call = False
        self.tools: list[dict[str, Any]] = []

    def init(self, tools, last_message, think):
        self.tools = tools or []
        self.call_index = 0
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        content: list[str] = []
        calls: list[dict[str, Any]] = []
        for is_call, value in self._events():
            if is_call:
                calls.append(self._number(parse_tool_call(value, self.tools)))
            else:
                content.append(value)
        return Parsed("".join(content), "", calls)

    def _events(self) -> list[tuple[bool, str]]:
        events: list[tuple[bool, str]] = []
        while True:
            if not self.in_call:
                before, found, after = self.buffer.partition(TOOL_OPEN)
                if found:
                    if trim_right(before):
                        events.append((False, trim_right(before)))
                    self.buffer = after
                    self.in_call = True
                    continue
                end = hold_back(self.buffer, TOOL_OPEN)
                if end > 0:
                    events.append((False, self.buffer[:end]))
                self.buffer = self.buffer[end:]
                return events
            raw, found, after = self.buffer.partition(TOOL_CLOSE)
            if not found:
                return events
            self.buffer = trim_left(after)
            events.append((True, raw))
            self.in_call = False


def parse_tool_call(raw: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
    """A raw `<function=…>` block as a call; parameter values are typed from the matching tool."""
    try:
        function = goxml.unmarshal(_to_xml(raw), "function")
    except goxml.XMLError as e:
        raise ParserError(str(e)) from None
    name = function.attrs.get("name", "")
    tool = find_tool(tools, name)
    arguments: dict[str, Any] = {}
    for parameter in function.all("parameter"):
        key = parameter.attrs.get("name", "")
        arguments[key] = newline_trimmed_value(parameter.text, property_types(tool, key))
    return tool_call(name, arguments)


def _to_xml(raw: str) -> str:
    """`<tag=value>` becomes `<tag name="value">`; all other text is escaped so that only function and
    parameter tags are markup."""
    transformed = _TAG.sub(lambda m: f'<{m.group(1)} name="{goxml.escape_text(m.group(2))}">', raw)
    return goxml.escape_outside(transformed, _XML_TAG)
