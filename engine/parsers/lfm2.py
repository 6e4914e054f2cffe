"""lfm2 and lfm2-thinking: an optional `<think>…</think>` (the model decides per turn), then content with
Python-style calls in `<|tool_call_start|>[name(key='value'), …]<|tool_call_end|>`; at the end, content
that is only such a call list becomes calls when the request has tools."""

from __future__ import annotations

import logging
from enum import Enum, auto
from typing import Any

from engine.parsers import gojson
from engine.parsers.base import (
    ASCII_SPACE,
    Parsed,
    Step,
    StepParser,
    continues_assistant,
    tool_call,
    tool_name,
    trim,
    trim_left,
    trim_right,
)
from engine.parsers.values import parse_float, parse_int
from engine.thinkvalue import think_on

log = logging.getLogger(__name__)

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
CALL_START = "<|tool_call_start|>"
CALL_END = "<|tool_call_end|>"


class State(Enum):
    LOOKING_FOR_THINKING = auto()
    COLLECTING_THINKING = auto()
    COLLECTING_CONTENT = auto()
    COLLECTING_TOOL_CALLS = auto()


class LFM2Parser(StepParser):
    has_tool_support = True

    def __init__(self, thinking: bool) -> None:
        super().__init__()
        self.has_thinking_support = thinking
        self.state = State.LOOKING_FOR_THINKING
        self.trim_thinking_start = False
        self.trim_content_start = False
        self.tool_names: set[str] = set()
        self.has_tools = False

    def init(self, tools, last_message, think):
        self.tool_names = {tool_name(tool) for tool in tools or [] if tool_name(tool)}
        self.call_index = 0
        self.has_tools = bool(tools)
        if not (self.has_thinking_support and think_on(think)) or continues_assistant(last_message):
            self.state = State.COLLECTING_CONTENT
        else:
            self.state = State.LOOKING_FOR_THINKING
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        if done and self.state == State.LOOKING_FOR_THINKING:
            trimmed = trim_left(self.buffer)
            if not trimmed.startswith(THINK_OPEN):  # a partial <think> can no longer complete
                self.buffer = trimmed
                self.state = State.COLLECTING_CONTENT
        parsed = self._parsed(self._events(done))
        if done and not parsed.calls and self.has_tools:
            # some outputs carry a bare call list without the wrapper tags
            try:
                fallback = parse_tool_calls(trim(parsed.content))
            except ValueError:
                fallback = []
            if fallback and (not self.tool_names or all(c["function"]["name"] in self.tool_names for c in fallback)):
                return Parsed("", parsed.thinking, self._numbered(fallback))
        return parsed

    def _eat(self, done: bool) -> Step:
        acc = self.buffer
        if self.state == State.LOOKING_FOR_THINKING:
            trimmed = trim_left(acc)
            if trimmed.startswith(THINK_OPEN):
                self.buffer = trimmed[len(THINK_OPEN):]
                self.state = State.COLLECTING_THINKING
                self.trim_thinking_start = True
                return "", "", True
            if not trimmed or THINK_OPEN.startswith(trimmed):
                return "", "", False
            self.buffer = trimmed
            self.state = State.COLLECTING_CONTENT
            return "", "", True
        if self.state == State.COLLECTING_THINKING:
            if acc.startswith(THINK_OPEN):
                acc = self.buffer = acc[len(THINK_OPEN):]
                self.trim_thinking_start = True
            if self.trim_thinking_start:
                acc = self.buffer = trim_left(acc)
                if acc:
                    self.trim_thinking_start = False
            if THINK_CLOSE in acc:
                thought, _, after = acc.partition(THINK_CLOSE)
                self.buffer = trim_left(after)
                self.state = State.COLLECTING_CONTENT
                self.trim_thinking_start = False
                self.trim_content_start = not self.buffer
                return self._found("thinking", trim_right(thought), True)
            return self._let_out("thinking", THINK_CLOSE)
        if self.state == State.COLLECTING_CONTENT:
            if self.trim_content_start:
                acc = self.buffer = trim_left(acc)
                if acc:
                    self.trim_content_start = False
            if CALL_START in acc:
                before, _, self.buffer = acc.partition(CALL_START)
                self.state = State.COLLECTING_TOOL_CALLS
                return self._found("content", trim_right(before), True)
            self.buffer = ""
            return self._found("content", acc, False)
        at = acc.find(CALL_END)
        if at == -1:
            return "", "", False
        try:
            calls = parse_tool_calls(acc[:at])
        except ValueError as e:
            log.warning("lfm2 tool call parsing failed: %s", e)
            return "", "", False
        rest = acc[at + len(CALL_END):]
        if rest.startswith(CALL_START):
            rest = rest[len(CALL_START):]
        else:
            rest = trim_left(rest)
            self.state = State.COLLECTING_CONTENT
        self.buffer = rest
        return "calls", calls, True


def parse_tool_calls(content: str) -> list[dict[str, Any]]:
    """`[name(key=value, …), …]` or a single `name(…)`; raises ValueError."""
    content = trim(trim(content).removeprefix(CALL_START))
    content = trim(content.removesuffix(CALL_END))
    content = trim(content)
    if content.startswith("[") and content.endswith("]") and len(content) >= 2:
        content = content[1:-1]
    calls = []
    while content:
        content = trim(content)
        if not content:
            break
        if content.startswith(","):
            content = trim(content[1:])
            if not content:
                break
        paren = content.find("(")
        if paren == -1:
            raise ValueError("invalid tool call: no opening parenthesis")
        name = trim(content[:paren])
        if not name:
            raise ValueError("invalid tool call: empty function name")
        close = _matching_paren(content, paren)
        if close == -1:
            raise ValueError("invalid tool call: no matching closing parenthesis")
        args_text = content[paren + 1:close]
        calls.append(tool_call(name, _arguments(args_text) if args_text else {}))
        content = content[close + 1:]
    if not calls:
        raise ValueError("no tool calls found")
    return calls


def _matching_paren(s: str, open_at: int) -> int:
    depth = 1
    i = open_at + 1
    while i < len(s) and depth > 0:
        c = s[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        elif c in "'\"":
            i += 1
            while i < len(s) and s[i] != c:
                if s[i] == "\\" and i + 1 < len(s):
                    i += 1
                i += 1
        i += 1
    return -1


def _arguments(text: str) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    i = 0
    n = len(text)
    while i < n:
        while i < n and (text[i] == "," or text[i] in ASCII_SPACE):
            i += 1
        if i >= n:
            break
        key_start = i
        while i < n and text[i] not in "=,":
            i += 1
        if i >= n or text[i] != "=":
            raise ValueError("invalid argument: expected '='")
        key = trim(text[key_start:i])
        if not key:
            raise ValueError("invalid argument: empty key")
        i += 1
        while i < n and text[i] in ASCII_SPACE:
            i += 1
        if i >= n:
            raise ValueError("invalid argument: missing value")
        arguments[key], i = _argument_value(text, i)
        if i < n and text[i] == ",":
            i += 1
    return arguments


def _argument_value(s: str, i: int) -> tuple[Any, int]:
    if s[i] in "'\"":
        quote = s[i]
        i += 1
        start = i
        while i < len(s):
            if s[i] == "\\" and i + 1 < len(s):
                i += 2
                continue
            if s[i] == quote:
                return s[start:i], i + 1
            i += 1
        raise ValueError("invalid argument: unterminated string")
    start = i
    depth = {"(": 0, "[": 0, "{": 0}
    closing = {")": "(", "]": "[", "}": "{"}
    quote = ""
    escaped = False
    while i < len(s):
        c = s[i]
        if quote:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == quote:
                quote = ""
            i += 1
            continue
        if c in "'\"":
            quote = c
        elif c in depth:
            depth[c] += 1
        elif c in closing:
            depth[closing[c]] = max(0, depth[closing[c]] - 1)
        elif c == "," and not any(depth.values()):
            return _literal(trim(s[start:i])), i
        i += 1
    return _literal(trim(s[start:i])), i


def _literal(token: str) -> Any:
    if token == "":
        return ""
    if token in ("true", "True"):
        return True
    if token in ("false", "False"):
        return False
    if token in ("null", "None"):
        return None
    number = parse_int(token)
    if number is not None:
        return number
    f = parse_float(token)
    if f is not None:
        return f
    if token.startswith(("[", "{")):
        try:
            return gojson.loads(token)
        except gojson.GoJSONError:
            pass
        converted = _python_to_json(token)
        if converted is not None:
            try:
                return gojson.loads(converted)
            except gojson.GoJSONError:
                pass
    return token


def _python_to_json(s: str) -> str | None:
    """Python literal syntax as JSON: single-quoted strings, True/False/None; None if a string is open."""
    out: list[str] = []
    quote = ""
    escaped = False
    i = 0
    while i < len(s):
        c = s[i]
        if quote:
            if escaped:
                out.append(c)
                escaped = False
            elif c == "\\":
                out.append(c)
                escaped = True
            elif c == quote:
                out.append('"')
                quote = ""
            elif quote == "'" and c == '"':
                out.append('\\"')
            else:
                out.append(c)
            i += 1
            continue
        if c in "'\"":
            quote = c
            escaped = False
            out.append('"')
            i += 1
            continue
        if c.isascii() and (c.isalpha() or c == "_"):
            j = i + 1
            while j < len(s) and s[j].isascii() and (s[j].isalnum() or s[j] == "_"):
                j += 1
            ident = s[i:j]
            out.append({"True": "true", "False": "false", "None": "null"}.get(ident, ident))
            i = j
            continue
        out.append(c)
        i += 1
    return None if quote else "".join(out)
