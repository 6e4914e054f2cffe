"""gemma4 (and gemma4-no-thinking): thinking in `<|channel>thought\\n…<channel|>`, calls in
`<|tool_call>call:NAME{key:value,…}<tool_call|>` with strings in `<|"|>`; a call is read as JSON after
its keys are quoted, and repaired (unclosed strings, single quotes, raw text for a string parameter)
when that fails."""

from __future__ import annotations

import logging
import re
from enum import Enum, auto
from typing import Any

from engine.parsers import gojson
from engine.parsers.base import (
    GO_SPACE,
    Parsed,
    Step,
    StepParser,
    overlap,
    tool_call,
    tool_properties,
    trim,
    trim_left,
    trim_right,
)
from engine.thinkvalue import think_on
from modelstore import gojson as go_json

log = logging.getLogger(__name__)

THINK_OPEN = "<|channel>"
THINK_CLOSE = "<channel|>"
CALL_OPEN = "<|tool_call>"
CALL_CLOSE = "<tool_call|>"
TOOL_RESPONSE = "<|tool_response>"
QUOTE = '<|"|>'
CHANNEL_NAME = "thought\n"

_QUOTED = re.compile(r'<\|"\|>(.*?)<\|"\|>', re.DOTALL)


class State(Enum):
    COLLECTING_CONTENT = auto()
    COLLECTING_THINKING = auto()
    COLLECTING_CALL = auto()
    IGNORING_AFTER_CALL = auto()  # stray `<tool_call|>` / `<|tool_response>` after a call are dropped


class Gemma4Parser(StepParser):
    has_tool_support = True

    def __init__(self, thinking: bool = True) -> None:
        super().__init__()
        self.has_thinking_support = thinking
        self.state = State.COLLECTING_CONTENT
        self.tools: list[dict[str, Any]] = []
        self.thinking_enabled = False
        self.strip_channel_name = False

    def init(self, tools, last_message, think):
        self.tools = tools or []
        self.call_index = 0
        self.thinking_enabled = self.has_thinking_support and think_on(think)
        self.state = State.COLLECTING_CONTENT
        if self.thinking_enabled and last_message is not None and last_message.get("role") == "tool":
            self.state = State.COLLECTING_THINKING
            self.strip_channel_name = False
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        events = self._events(done)
        if not self.thinking_enabled:  # with thinking off, a channel is dropped
            events = [(kind, value) for kind, value in events if kind != "thinking"]
        return self._parsed(events)

    def _eat(self, done: bool) -> Step:
        acc = self.buffer
        if self.state == State.COLLECTING_CONTENT:
            for tag, state in ((THINK_OPEN, State.COLLECTING_THINKING), (CALL_OPEN, State.COLLECTING_CALL)):
                at = acc.find(tag)
                if at != -1:
                    self.buffer = acc[at + len(tag):]
                    self.state = state
                    if state == State.COLLECTING_THINKING:
                        self.strip_channel_name = True
                    return self._found("content", trim_right(acc[:at]), True)
            if not done and max(overlap(acc, THINK_OPEN), overlap(acc, CALL_OPEN)) > 0:
                return self._let_out("content", THINK_OPEN, CALL_OPEN)
            self.buffer = ""
            return "content", acc, False
        if self.state == State.COLLECTING_THINKING:
            if self.strip_channel_name:
                if acc.startswith(CHANNEL_NAME):
                    acc = self.buffer = acc[len(CHANNEL_NAME):]
                    self.strip_channel_name = False
                elif not done and CHANNEL_NAME.startswith(acc):
                    return "", "", False
                else:
                    self.strip_channel_name = False
            if THINK_CLOSE in acc:
                thought, _, after = acc.partition(THINK_CLOSE)
                self.buffer = trim_left(after)
                self.state = State.COLLECTING_CONTENT
                return self._found("thinking", trim_right(thought), True)
            if done:
                self.buffer = ""
                return self._found("thinking", acc, False)
            return self._let_out("thinking", THINK_CLOSE)
        if self.state == State.COLLECTING_CALL:
            at = acc.find(CALL_CLOSE)
            if at != -1:
                self.buffer = trim_left(acc[at + len(CALL_CLOSE):])
                self.state = State.IGNORING_AFTER_CALL
                return *self._call(acc[:at], "gemma4 tool call parsing failed"), True
            if done and acc:
                # the model may stop before closing its call
                self.buffer = ""
                self.state = State.COLLECTING_CONTENT
                return *self._call(acc, "gemma4 tool call flush on done failed"), False
            return "", "", False
        acc = trim_left(acc)
        while True:
            if acc.startswith(CALL_CLOSE):
                acc = trim_left(acc[len(CALL_CLOSE):])
            elif acc.startswith(TOOL_RESPONSE):
                acc = trim_left(acc[len(TOOL_RESPONSE):])
            else:
                break
        self.buffer = acc
        if not acc:
            return "", "", False
        if CALL_CLOSE.startswith(acc) or TOOL_RESPONSE.startswith(acc):
            if done:
                self.buffer = ""
                self.state = State.COLLECTING_CONTENT
            return "", "", False
        self.state = State.COLLECTING_CONTENT
        return "", "", True

    def _call(self, text: str, failure: str) -> tuple[str, Any]:
        try:
            return "call", parse_tool_call(text, self.tools)
        except ValueError as e:
            log.warning("%s: %s", failure, e)
            return "", ""


def parse_tool_call(content: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
    """`call:NAME{args}`; raises ValueError."""
    if not content.startswith("call:"):
        raise ValueError("expected 'call:' prefix")
    content = content[len("call:"):]
    brace = content.find("{")
    if brace == -1:
        raise ValueError("expected '{' in tool call")
    name = trim(content[:brace])
    args_text = content[brace:]
    try:
        arguments = gojson.loads_arguments(args_to_json(args_text))
    except gojson.GoJSONError as first_error:
        arguments = _repair(args_text, name, tools, first_error)
    return tool_call(name, arguments)


def args_to_json(s: str) -> str:
    """Gemma's argument syntax as JSON: `<|"|>` strings become JSON strings, bare keys get quotes."""
    quoted: list[str] = []

    def stash(match: re.Match[str]) -> str:
        quoted.append(match.group(1))
        return "\x00" + _placeholder(len(quoted) - 1) + "\x00"

    text = _quote_bare_keys(_QUOTED.sub(stash, s))
    for i, value in enumerate(quoted):
        text = text.replace("\x00" + _placeholder(i) + "\x00", _json_string(value))
    return text


def _placeholder(i: int) -> str:
    return chr(i) if not 0xD800 <= i <= 0xDFFF else "\ufffd"


def _json_string(value: str) -> str:
    return go_json.dumps(value)


def _quote_bare_keys(s: str) -> str:
    out: list[str] = []
    i = 0
    n = len(s)
    while i < n:
        if s[i] == '"':
            end = _json_string_end(s, i)
            if end != -1:
                out.append(s[i:end])
                i = end
                continue
        if s[i] not in "{,":
            out.append(s[i])
            i += 1
            continue
        out.append(s[i])
        i += 1
        space_start = i
        i = _skip_space(s, i)
        out.append(s[space_start:i])
        key_end = _bare_key_end(s, i)
        if i < key_end < n and s[key_end] == ":":
            out.append('"' + s[i:key_end] + '":')
            i = key_end + 1
    return "".join(out)


def _is_key_char(c: str) -> bool:
    return c == "_" or c.isalpha() or c.isdecimal()


def _bare_key_end(s: str, start: int) -> int:
    i = start
    while i < len(s) and _is_key_char(s[i]):
        i += 1
    return i


def _json_string_end(s: str, start: int) -> int:
    escaped = False
    for i in range(start + 1, len(s)):
        if s[i] == '"' and not escaped:
            return i + 1
        escaped = s[i] == "\\" and not escaped
    return -1


def _skip_space(s: str, i: int) -> int:
    while i < len(s) and s[i] in GO_SPACE:
        i += 1
    return i


def _trim_right_index(s: str) -> int:
    return len(s.rstrip(GO_SPACE))


# --- repairs ------------------------------------------------------------------------------------------


def _repair(args_text: str, name: str, tools: list[dict[str, Any]], first_error: Exception) -> dict[str, Any] | None:
    for candidate in _repair_candidates(args_text, name, tools):
        try:
            return gojson.loads_arguments(args_to_json(candidate))
        except gojson.GoJSONError:
            continue
    raise ValueError(f"{first_error}\nrepair failed to produce valid JSON arguments")


def _repair_candidates(args_text: str, name: str, tools: list[dict[str, Any]]) -> list[str]:
    candidates: list[str] = []

    def add(candidate: str, allow_missing_close: bool) -> None:
        original = candidate
        candidate = _repair_single_quotes(candidate)
        candidate = _repair_missing_quote(candidate)
        if allow_missing_close or candidate != original:
            candidate = _repair_missing_close(candidate)
        if candidate not in candidates:
            candidates.append(candidate)

    add(args_text, False)
    raw = _repair_raw_string_value(args_text, name, tools)
    if raw is not None:
        add(raw, True)
    return candidates


def _repair_missing_quote(s: str) -> str:
    """Close an odd `<|"|>`, before a final `}` or `]` if the value ends the object or list."""
    if s.count(QUOTE) % 2 == 0:
        return s
    at = _trim_right_index(s)
    if at > 0 and s[at - 1] in "}]":
        at -= 1
    return s[:at] + QUOTE + s[at:]


def _repair_missing_close(s: str) -> str:
    if not trim_left(s).startswith("{"):
        return s
    end = _trim_right_index(s)
    if end > 0 and s[end - 1] == "}":
        return s
    return s[:end] + "}" + s[end:]


def _repair_single_quotes(s: str) -> str:
    """`key:'value'` becomes `key:<|"|>value<|"|>` (a stray `<|"|>` after the closing quote is dropped)."""
    out: list[str] = []
    i = 0
    n = len(s)
    while i < n:
        if s.startswith(QUOTE, i):
            end = s.find(QUOTE, i + len(QUOTE))
            if end == -1:
                out.append(s[i:])
                break
            end += len(QUOTE)
            out.append(s[i:end])
            i = end
            continue
        if s[i] == '"':
            end = _json_string_end(s, i)
            if end != -1:
                out.append(s[i:end])
                i = end
                continue
        if s[i] != ":":
            out.append(s[i])
            i += 1
            continue
        out.append(s[i])
        i += 1
        space_end = _skip_space(s, i)
        out.append(s[i:space_end])
        i = space_end
        if i >= n or s[i] != "'":
            continue
        value, end = _single_quoted(s, i)
        if end is None:
            continue
        out.append(QUOTE + value + QUOTE)
        i = end
        if s.startswith(QUOTE, i):
            i += len(QUOTE)
    return "".join(out)


def _single_quoted(s: str, start: int) -> tuple[str, int | None]:
    out: list[str] = []
    escaped = False
    for i in range(start + 1, len(s)):
        if s[i] == "'" and not escaped:
            return "".join(out), i + 1
        out.append(s[i])
        escaped = s[i] == "\\" and not escaped
    return "", None


def _repair_raw_string_value(args_text: str, name: str, tools: list[dict[str, Any]]) -> str | None:
    """Wrap an unquoted value in `<|"|>`, only for a parameter the tool declares as a string."""
    tool = next((t for t in tools if isinstance(t, dict) and (t.get("function") or {}).get("name") == name), None)
    if tool is None:
        return None
    props = tool_properties(tool)
    for key, prop in props.items():
        if not _accepts_string(prop):
            continue
        repaired = _repair_raw_value_for_key(args_text, key, props)
        if repaired is not None:
            return repaired
    return None


def _repair_raw_value_for_key(s: str, key: str, props: dict[str, Any]) -> str | None:
    search = 0
    while search < len(s):
        start = _value_start(s, key, search)
        if start is None:
            return None
        check = _skip_space(s, start)
        if check < len(s) and _starts_structured(s, check):
            search = start
            continue
        end = _raw_value_end(s, start, props)
        return s[:start] + QUOTE + s[start:end] + QUOTE + s[end:]
    return None


def _value_start(s: str, key: str, search: int) -> int | None:
    i = search
    while i < len(s):
        if s.startswith(QUOTE, i):
            end = s.find(QUOTE, i + len(QUOTE))
            if end == -1:
                return None
            i = end + len(QUOTE)
            continue
        if s[i] == '"':
            end = _json_string_end(s, i)
            if end != -1:
                i = end
                continue
        if s[i] not in "{,":
            i += 1
            continue
        key_start = _skip_space(s, i + 1)
        if s.startswith(key, key_start):
            colon = _skip_space(s, key_start + len(key))
            if colon < len(s) and s[colon] == ":":
                return colon + 1
        i += 1
    return None


def _raw_value_end(s: str, start: int, props: dict[str, Any]) -> int:
    for i in range(start, len(s)):
        if s[i] != ",":
            continue
        key_start = _skip_space(s, i + 1)
        key_end = _bare_key_end(s, key_start)
        if key_end == key_start:
            continue
        colon = _skip_space(s, key_end)
        if colon < len(s) and s[colon] == ":" and s[key_start:key_end] in props:
            return i
    end = _trim_right_index(s)
    if end > start and s[end - 1] == "}":
        return end - 1
    return len(s)


def _starts_structured(s: str, pos: int) -> bool:
    if s.startswith(QUOTE, pos):
        return True
    c = s[pos]
    return c in "'\"{[" or c == "-" or "0" <= c <= "9" or c in "tfn"


def _accepts_string(prop: Any) -> bool:
    if not isinstance(prop, dict):
        return False
    types = prop.get("type")
    types = [types] if isinstance(types, str) else types if isinstance(types, list) else []
    if any(isinstance(t, str) and t.lower() == "string" for t in types):
        return True
    any_of = prop.get("anyOf")
    return isinstance(any_of, list) and any(_accepts_string(option) for option in any_of)

