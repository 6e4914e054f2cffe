"""glm-4.7 (on GLM-4.6's parser) and glm-ocr: thinking in `<think>…</think>`, then content with calls in
`<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value>…</tool_call>`; tags the model drops are
repaired once before a call is given up."""

from __future__ import annotations

import logging
import re
from typing import Any

from engine.parsers import goxml
from engine.parsers.base import (
    GO_SPACE,
    Parsed,
    ParserError,
    find_tool,
    overlap,
    property_types,
    tool_call,
    trim,
    trim_left,
    trim_right,
)
from engine.parsers.think_tool_tags import TOOL_CLOSE, TOOL_OPEN, State, ThinkToolTagsParser
from engine.parsers.values import newline_trimmed_value
from engine.thinkvalue import think_on

log = logging.getLogger(__name__)

KEY_OPEN = "<arg_key>"
KEY_CLOSE = "</arg_key>"
VALUE_OPEN = "<arg_value>"
VALUE_CLOSE = "</arg_value>"
_ARG_TAGS = (KEY_OPEN, KEY_CLOSE, VALUE_OPEN, VALUE_CLOSE)
_ARG_TAG = re.compile("|".join(re.escape(tag) for tag in _ARG_TAGS))


class GLM46Parser(ThinkToolTagsParser):
    has_tool_support = True
    has_thinking_support = True

    def __init__(self) -> None:
        super().__init__()
        self.tools: list[dict[str, Any]] = []

    def init(self, tools, last_message, think):
        self.tools = tools or []
        self.call_index = 0
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        events = self._events(done)
        if done and self.state in (State.TOOL_STARTED_EATING_SPACE, State.COLLECTING_TOOL):
            try:
                events.append(("call", self._finish_call()))
            except (goxml.XMLError, ValueError) as e:
                raise ParserError(f"incomplete GLM tool call: {e}") from None
        return self._parsed(events, self._parse_call)

    def _parse_call(self, raw: str) -> dict[str, Any]:
        if not raw:
            log.warning("glm46 tool call closing tag found but no content before it")
        return parse_tool_call(raw, self.tools)

    def _finish_call(self) -> str:
        """At the end of the output only the closing `</tool_call>` may be missing, and the call must name
        a declared tool with all its required arguments: half a call must not run."""
        raw = self.buffer
        held = overlap(raw, TOOL_CLOSE)
        if held:
            raw = trim_right(raw[:len(raw) - held])
        parsed = goxml.unmarshal(TOOL_OPEN + escape_content(raw) + TOOL_CLOSE, "tool_call")
        name = trim(parsed.text)
        keys = [k.text for k in parsed.all("arg_key")]
        values = parsed.all("arg_value")
        if not name:
            raise ValueError("empty function name")
        if len(keys) != len(values):
            raise ValueError(f"mismatched arg_key and arg_value counts: {len(keys)} keys, {len(values)} values")
        tool = find_tool(self.tools, name)
        if tool is None:
            raise ValueError(f'tool "{name}" is not declared')
        seen = set()
        for key in keys:
            if not trim(key):
                raise ValueError("empty argument name")
            seen.add(trim(key))
        required = tool.get("function", {}).get("parameters", {}).get("required") or []
        for argument in required:
            if argument not in seen:
                raise ValueError(f'required argument "{argument}" is missing for tool "{name}"')
        self.buffer = ""
        self.state = State.COLLECTING_CONTENT
        return raw


class GLM47Parser(GLM46Parser):
    """GLM-4.7's prompt ends with `<think>` when thinking is on, so output starts inside it."""

    def init(self, tools, last_message, think):
        self.tools = tools or []
        self.call_index = 0
        if think_on(think, default=True):
            self.state = State.COLLECTING_THINKING
        return tools


class GlmOcrParser(GLM46Parser):
    has_thinking_support = False

    def init(self, tools, last_message, think):
        self.tools = tools or []
        return tools


def escape_content(s: str) -> str:
    """Escape the text between the argument tags so that only those tags are markup."""
    return goxml.escape_outside(s, _ARG_TAG)


def repair_xml(s: str) -> str:
    """Put back the argument tags GLM models drop, following the cycle key-open, key-close, value-open,
    value-close: a missing tag is inserted where the next one shows up."""

    def next_tag(text: str) -> tuple[int, str]:
        best, best_tag = -1, ""
        for tag in _ARG_TAGS:
            at = text.find(tag)
            if at != -1 and (best == -1 or at < best):
                best, best_tag = at, tag
        return best, best_tag

    out: list[str] = []
    at, first = next_tag(s)
    if at == -1:
        return s
    prefix, s = s[:at], s[at:]
    phase = 0
    if first != KEY_OPEN:
        space = next((i for i, c in enumerate(prefix) if c in GO_SPACE), -1)
        if space != -1:
            # a function name has no spaces: what follows the first one is a key that lost its open tag
            out += [prefix[:space], KEY_OPEN, trim_left(prefix[space:])]
            phase = 1
        else:
            out.append(prefix)
    else:
        out.append(prefix)
    while s:
        at, found = next_tag(s)
        expected = _ARG_TAGS[phase]
        opening = phase % 2 == 0
        if at == -1:
            if opening:
                break
            out += [s, expected]
            phase = (phase + 1) % 4
            break
        if found == expected:
            out += [s[:at], expected]
            s = s[at + len(expected):]
            phase = (phase + 1) % 4
            continue
        found_phase = _ARG_TAGS.index(found)
        if opening and at > 0:
            out += [expected, s[:at]]
            phase = (phase + 1) % 4
            s = s[at:]
            continue
        while phase != found_phase:
            tag = _ARG_TAGS[phase]
            if phase % 2 == 0:
                out.append(tag)
            else:
                if (phase + 1) % 4 == found_phase and at > 0:
                    out.append(s[:at])
                    s = s[at:]
                    at = 0
                out.append(tag)
            phase = (phase + 1) % 4
    if phase == 1:
        out += [KEY_CLOSE, VALUE_OPEN, VALUE_CLOSE]
    elif phase == 2:
        out += [VALUE_OPEN, VALUE_CLOSE]
    elif phase == 3:
        out.append(VALUE_CLOSE)
    return "".join(out)


def parse_tool_call(raw: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
    escaped = escape_content(raw)
    try:
        parsed = goxml.unmarshal(TOOL_OPEN + escaped + TOOL_CLOSE, "tool_call")
    except goxml.XMLError as first_error:
        try:
            parsed = goxml.unmarshal(TOOL_OPEN + repair_xml(escaped) + TOOL_CLOSE, "tool_call")
        except goxml.XMLError:
            raise ParserError(f"failed to parse XML: {first_error}") from None
    name = trim(parsed.text)
    if not name:
        raise ParserError("empty function name")
    keys = parsed.all("arg_key")
    values = parsed.all("arg_value")
    if len(keys) != len(values):
        raise ParserError(f"mismatched arg_key and arg_value counts: {len(keys)} keys, {len(values)} values")
    tool = find_tool(tools, name)
    arguments: dict[str, Any] = {}
    for key_element, value_element in zip(keys, values, strict=True):
        key = trim(key_element.text)
        arguments[key] = newline_trimmed_value(value_element.text, property_types(tool, key))
    return tool_call(name, arguments)

