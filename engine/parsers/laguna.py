"""laguna and poolside-v1: thinking (the prompt primed `<think>` or `</think>`), content, and calls in
`<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value></tool_call>` or as JSON; with tools, a call
the model wraps in `<user>…</user>` or writes as a bare JSON object is taken too."""

from __future__ import annotations

import re
from enum import Enum, auto
from typing import Any

from engine.parsers import gojson
from engine.parsers.base import (
    BufferedParser,
    Parsed,
    ParserError,
    find_tool,
    overlap,
    property_types,
    tool_call,
    trailing_space_len,
    trim,
    trim_left,
    trim_right,
)
from engine.parsers.values import newline_trimmed_value
from engine.thinkvalue import think_on

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
USER_OPEN = "<user>"
USER_CLOSE = "</user>"

_ARG = re.compile(r"<arg_key>(.*?)</arg_key>[\t\n\f\r ]*<arg_value>(.*?)</arg_value>", re.DOTALL)
_ALIASES = {"read_file": "read", "write_file": "write", "edit_file": "edit", "web_fetch": "webfetch"}


class State(Enum):
    THINKING = auto()
    CONTENT = auto()
    TOOL = auto()


class LagunaParser(BufferedParser):
    has_tool_support = True
    has_thinking_support = True

    def __init__(self) -> None:
        super().__init__()
        self.state = State.THINKING
        self.tools: list[dict[str, Any]] = []
        self.thinking_enabled = False
        self.thinking_suppressed = False
        self.allow_open_tag = False
        self.at_content_start = False

    def init(self, tools, last_message, think):
        self.tools = tools or []
        self.call_index = 0
        self.buffer = ""
        self.thinking_enabled = think_on(think)
        self.thinking_suppressed = not self.thinking_enabled
        self.at_content_start = True
        # after an assistant prefill the prompt has closed the thinking already: the model continues content
        prefill = last_message is not None and last_message.get("role") == "assistant"
        thinking = self.thinking_enabled and not prefill
        self.state = State.THINKING if thinking else State.CONTENT
        self.allow_open_tag = thinking
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        content: list[str] = []
        thinking: list[str] = []
        calls: list[dict[str, Any]] = []
        while True:
            if self.state == State.THINKING:
                progress, thought = self._thinking(done)
                if self.thinking_enabled:
                    thinking.append(thought)
            elif self.state == State.CONTENT:
                progress, out, found = self._content(done)
                content.append(out)
                calls += found
            else:
                progress, call = self._tool(done)
                if progress:
                    calls.append(call)
            if not progress:
                break
        return Parsed("".join(content), "".join(thinking), calls)

    def _thinking(self, done: bool) -> tuple[bool, str]:
        acc = self.buffer
        if self.allow_open_tag:
            trimmed = trim_left(acc)
            if trimmed.startswith(THINK_OPEN):  # the model repeated the primed <think>
                self.buffer = trim_left(trimmed[len(THINK_OPEN):])
                self.allow_open_tag = False
                return True, ""
            if THINK_OPEN.startswith(trimmed) and not done:
                self.buffer = trimmed
                return False, ""
            acc = self.buffer = trimmed
            self.allow_open_tag = False
        at = acc.find(THINK_CLOSE)
        if at != -1:
            self.buffer = trim_left(acc[at + len(THINK_CLOSE):])
            self.state = State.CONTENT
            return True, trim_right(acc[:at])
        at = acc.find(CALL_OPEN)
        if at != -1:
            self.buffer = acc[at + len(CALL_OPEN):]
            self.state = State.TOOL
            return True, trim_right(acc[:at])
        if done:
            self.buffer = ""
            self.state = State.CONTENT
            acc = trim_right(acc)
            return bool(acc), acc
        keep = max(overlap(acc, THINK_CLOSE), overlap(acc, CALL_OPEN), trailing_space_len(acc))
        if 0 < keep < len(acc):
            self.buffer = acc[len(acc) - keep:]
            return True, acc[:len(acc) - keep]
        return False, ""

    def _content(self, done: bool) -> tuple[bool, str, list[dict[str, Any]]]:
        if self.at_content_start:
            self.buffer = trim_left(self.buffer)
            if not self.buffer:
                return False, "", []
            self.at_content_start = False
        acc = self.buffer
        if self.thinking_enabled or self.thinking_suppressed:
            at = acc.find(THINK_OPEN)
            if at != -1:
                self.buffer = trim_left(acc[at + len(THINK_OPEN):])
                self.state = State.THINKING
                self.allow_open_tag = False
                return True, acc[:at], []
            if not done:
                held = overlap(acc, THINK_OPEN)
                if 0 < held < len(acc):
                    self.buffer = acc[len(acc) - held:]
                    out = acc[:len(acc) - held]
                    return bool(out), out, []
        if self.thinking_enabled or self.thinking_suppressed:
            trimmed = trim_left(acc)
            if trimmed.startswith(THINK_CLOSE):
                self.buffer = trim_left(trimmed[len(THINK_CLOSE):])
                return True, "", []
            if THINK_CLOSE.startswith(trimmed) and not done:
                return False, "", []
        at = acc.find(CALL_OPEN)
        if at != -1:
            self.buffer = acc[at + len(CALL_OPEN):]
            self.state = State.TOOL
            return True, trim_right(acc[:at]), []
        at = acc.find(USER_OPEN)
        if at != -1 and self.tools:
            before = trim_right(acc[:at])
            after_open = acc[at + len(USER_OPEN):]
            close = after_open.find(USER_CLOSE)
            if close != -1:
                call = self._alias_call(after_open[:close])
                if call is not None:
                    self.buffer = trim_left(after_open[close + len(USER_CLOSE):])
                    return True, before, [call]
            elif not done:
                if at > 0:
                    self.buffer = acc[at:]
                    return True, before, []
                return False, "", []
        if self.tools:
            handled = self._standalone_json_call(done)
            if handled is not None:
                return handled
        if done:
            self.buffer = ""
            acc = trim_right(acc)
            return bool(acc), acc, []
        held = max(overlap(acc, CALL_OPEN), overlap(acc, USER_OPEN))
        if self.thinking_enabled or self.thinking_suppressed:
            held = max(held, overlap(acc, THINK_OPEN))
        if self.thinking_suppressed:
            held = max(held, overlap(acc, THINK_CLOSE))
        keep = max(held, trailing_space_len(acc))
        if 0 < keep < len(acc):
            self.buffer = acc[len(acc) - keep:]
            out = acc[:len(acc) - keep]
            return bool(out), out, []
        if keep == 0 and acc:
            self.buffer = ""
            return True, acc, []
        return False, "", []

    def _standalone_json_call(self, done: bool) -> tuple[bool, str, list[dict[str, Any]]] | None:
        """A JSON call written straight into the content; None when the content is not one."""
        acc = self.buffer
        at = acc.find("{")
        if at == -1:
            return None
        before = trim_right(acc[:at])
        raw = trim_left(acc[at:])
        if not _looks_like_json_call(raw, done):
            return None
        if not done and not gojson.valid(trim(raw)):
            if before:
                self.buffer = acc[at:]
                # Ollama hands on an empty call with the text before an unfinished JSON call
                return True, before, [tool_call("", {})]
            return False, "", []
        call = self._number(parse_tool_call(raw, self.tools))
        self.buffer = ""
        self.state = State.CONTENT
        return True, before, [call]

    def _alias_call(self, raw: str) -> dict[str, Any] | None:
        raw = _clean(raw)
        name = _call_name(raw)
        if not name or _resolve(name, self.tools)[1] is False:
            return None
        try:
            call = parse_tool_call(raw, self.tools)
        except ParserError:
            return None
        return self._number(call)

    def _tool(self, done: bool) -> tuple[bool, dict[str, Any]]:
        acc = self.buffer
        at = acc.find(CALL_CLOSE)
        if at != -1:
            self.buffer = trim_left(acc[at + len(CALL_CLOSE):])
            self.state = State.CONTENT
            return True, self._number(parse_tool_call(acc[:at], self.tools))
        if done and trim(acc):
            self.buffer = ""
            self.state = State.CONTENT
            return True, self._number(parse_tool_call(acc, self.tools))
        return False, {}


class LagunaV8Parser(LagunaParser):
    """poolside-v1: its renderer closes a prefilled assistant turn and opens a fresh one, so a prefill
    does not mean the model continues content."""

    def init(self, tools, last_message, think):
        return super().init(tools, None, think)


def _looks_like_json_call(raw: str, done: bool) -> bool:
    trimmed = trim_left(raw)
    if not trimmed.startswith("{"):
        return False
    if '"name"' in trimmed or '"arguments"' in trimmed:
        return True
    if done:
        return False
    return trimmed.startswith(('{"', "{\n", "{\r\n"))


def _resolve(name: str, tools: list[dict[str, Any]]) -> tuple[str, bool]:
    if find_tool(tools, name) is not None:
        return name, True
    alias = _ALIASES.get(name)
    if alias is not None and find_tool(tools, alias) is not None:
        return alias, True
    return name, False


def _clean(raw: str) -> str:
    raw = trim(raw)
    while raw.startswith(CALL_OPEN):
        raw = trim(raw[len(CALL_OPEN):])
    at = raw.find(CALL_CLOSE)
    if at != -1:
        raw = trim(raw[:at])
    at = raw.find(CALL_OPEN)
    if at != -1:
        before = trim(raw[:at])
        if before:
            return before
        raw = trim(raw[at + len(CALL_OPEN):])
    return raw


def _call_name(raw: str) -> str:
    raw = _clean(raw)
    if raw.startswith("{"):
        try:
            fields = gojson.struct(gojson.loads(raw), {"name": str}, "struct")
        except gojson.GoJSONError:
            return ""
        return trim(fields.get("name", ""))
    end = raw.find("<arg_key>")
    if end < 0:
        end = raw.find("{")
    if end < 0:
        end = next((i for i, c in enumerate(raw) if c in "\r\n"), -1)
    if end < 0:
        end = len(raw)
    return trim(raw[:end])


def parse_tool_call(raw: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
    raw = _clean(raw)
    if raw.startswith("{"):
        try:
            fields = gojson.struct(gojson.loads(raw), {"name": str, "arguments": dict}, "struct")
        except gojson.GoJSONError as e:
            raise ParserError(f"failed to parse Laguna JSON tool call: {e}") from None
        name = fields.get("name", "")
        if not name:
            raise ParserError("empty Laguna tool call name")
        return tool_call(_resolve(name, tools)[0], fields.get("arguments", {}))
    name, args_text = raw, ""
    at = raw.find("<arg_key>")
    if at >= 0:
        name, args_text = raw[:at], raw[at:]
    else:
        at = raw.find("{")
        if at >= 0:
            name, args_text = raw[:at], raw[at:]
    name = _resolve(trim(name), tools)[0]
    tool = find_tool(tools, name)
    if trim(args_text).startswith("{"):
        try:
            arguments = gojson.loads_arguments(trim(args_text))
        except gojson.GoJSONError as e:
            raise ParserError(f"failed to parse Laguna JSON tool call arguments: {e}") from None
        return tool_call(name, arguments)
    arguments: dict[str, Any] = {}
    for match in _ARG.finditer(args_text):
        key = trim(match.group(1))
        arguments[key] = newline_trimmed_value(match.group(2), property_types(tool, key))
    return tool_call(name, arguments)

