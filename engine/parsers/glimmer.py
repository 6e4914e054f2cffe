"""glimmer: messages `<|start|>assistant to=RECIPIENT<|message|>…<|eom|>` (or `<|eot|>`). A message to
`self` is thinking, to a declared tool is a call in ATEM XML (`<atem:function_calls><atem:invoke
name="…"><atem:parameter name="…">value</atem:parameter></atem:invoke></atem:function_calls>`), anything
else is content."""

from __future__ import annotations

import logging
from enum import Enum, auto
from typing import Any

from engine.parsers.base import BufferedParser, Parsed, ParserError, overlap, property_types, tool_call, tool_name, trim
from engine.parsers.values import typed_value
from engine.thinkvalue import think_on
from modelstore.gojson import go_quote

log = logging.getLogger(__name__)

START = "<|start|>"
MESSAGE = "<|message|>"
END_MESSAGE = "<|eom|>"
END_TURN = "<|eot|>"
ASSISTANT_HEADER = START + "assistant"

CALLS_OPEN = "<atem:function_calls>"
CALLS_CLOSE = "</atem:function_calls>"
INVOKE_OPEN = '<atem:invoke name="'
INVOKE_CLOSE = "</atem:invoke>"
PARAM_OPEN = '<atem:parameter name="'
PARAM_CLOSE = "</atem:parameter>"

_HEADER_SPACE = " \t\r\n"


class State(Enum):
    HEADER = auto()
    CONTENT = auto()
    THINKING = auto()
    TOOL = auto()


class _Header(Enum):
    INVALID = auto()
    PENDING = auto()
    VALID = auto()


class GlimmerParser(BufferedParser):
    has_tool_support = True
    has_thinking_support = True

    def __init__(self) -> None:
        super().__init__()
        self.state = State.HEADER
        self.recipient = ""
        self.tools: dict[str, dict[str, Any]] = {}
        self.emit_thinking = False
        # once part of a message has gone out as content, it cannot become a tool call any more
        self.content_streamed = False

    def init(self, tools, last_message, think):
        self.state = State.HEADER
        self.buffer = ""
        self.recipient = ""
        self.tools = {}
        for tool in tools or []:
            name = trim(tool_name(tool))
            if name:
                self.tools[name] = tool
        self.call_index = 0
        self.emit_thinking = think_on(think, default=True)
        self.content_streamed = False
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        content: list[str] = []
        thinking: list[str] = []
        calls: list[dict[str, Any]] = []
        while True:
            if self.state == State.HEADER:
                progress, fallback = self._header(done)
                content.append(fallback)
                if not progress:
                    break
                continue
            progress, body, complete = self._body(done)
            if self.state == State.CONTENT:
                call = self._content_call(body, complete)
                if call is not None:
                    calls.append(call)
                elif body:
                    content.append(body)
                    self.content_streamed = True
            elif self.state == State.THINKING:
                if self.emit_thinking:
                    thinking.append(body)
            elif complete:
                calls.append(self._tool_call(body))
            if complete:
                self.state = State.HEADER
                self.recipient = ""
                self.content_streamed = False
            if not progress:
                break
        return Parsed("".join(content), "".join(thinking), calls)

    def _resolve(self, name: str) -> tuple[str, bool]:
        """A recipient or invoke name as a declared tool: exactly, or `ns.fn` where ns is fn's own namespace
        (the template advertises an undotted tool `read` as `read.read`)."""
        if tool_name(self.tools.get(name)):
            return name, True
        ns, dot, fn = name.partition(".")
        if dot and tool_name(self.tools.get(fn)) and ns == fn.partition(".")[0]:
            return fn, True
        return name, False

    def _header(self, done: bool) -> tuple[bool, str]:
        acc = self.buffer
        if acc.startswith(ASSISTANT_HEADER):
            acc = self.buffer = acc[len(ASSISTANT_HEADER):]
        elif ASSISTANT_HEADER.startswith(acc) and acc.startswith("<") and not done:
            return False, ""
        at = acc.find(MESSAGE)
        if at < 0:
            if not done:
                return False, ""
            self.buffer = ""
            return acc != "", acc
        header = trim(acc[:at])
        self.buffer = acc[at + len(MESSAGE):]
        self.recipient = trim(header.removeprefix("to="))
        _, is_tool = self._resolve(self.recipient)
        if self.recipient == "self":
            self.state = State.THINKING
        elif is_tool:
            self.state = State.TOOL
        else:
            self.state = State.CONTENT
        return True, ""

    def _body(self, done: bool) -> tuple[bool, str, bool]:
        """(progress, body, complete) of the current message."""
        acc = self.buffer
        hold = self.state == State.TOOL or self._hold_content(acc)
        control_start = 0
        if hold:
            close = acc.find(CALLS_CLOSE)
            control_start = close + len(CALLS_CLOSE) if close >= 0 else len(acc)
        at, marker_len = _terminator(acc[control_start:])
        if at >= 0:
            at += control_start
        implicit, wait = self._implicit_header(acc, control_start, done)
        if implicit >= 0 and not wait and (at < 0 or implicit < at):
            self.buffer = acc[implicit:]
            return True, acc[:implicit], True
        if at >= 0:
            self.buffer = acc[at + marker_len:]
            return True, acc[:at], True
        if done:
            self.buffer = ""
            return acc != "" or self.state == State.TOOL, acc, True
        if hold:
            return False, "", False
        if wait:
            self.buffer = acc[implicit:]
            return acc[:implicit] != "", acc[:implicit], False
        keep = max(overlap(acc, END_MESSAGE), overlap(acc, END_TURN))
        if len(acc) == keep:
            return False, "", False
        self.buffer = acc[len(acc) - keep:]
        body = acc[:len(acc) - keep]
        return body != "", body, False

    def _implicit_header(self, s: str, search: int, done: bool) -> tuple[int, bool]:
        """Where a new assistant header starts without the previous message's end marker, and whether
        more output is needed to be sure."""
        while True:
            i = s.find(START, search)
            if i < 0:
                break
            status = self._header_status(s[i:], done)
            if status == _Header.VALID:
                return i, False
            if status == _Header.PENDING:
                return i, True
            search = i + len(START)
        if done:
            return -1, False
        keep = overlap(s[search:], ASSISTANT_HEADER)
        if keep > 0:
            return len(s) - keep, True
        return -1, False

    def _header_status(self, s: str, done: bool) -> _Header:
        if len(s) < len(ASSISTANT_HEADER):
            return _Header.PENDING if not done and ASSISTANT_HEADER.startswith(s) else _Header.INVALID
        if not s.startswith(ASSISTANT_HEADER):
            return _Header.INVALID
        rest = s[len(ASSISTANT_HEADER):]
        if rest.startswith(MESSAGE):
            return _Header.VALID
        if not done and MESSAGE.startswith(rest):
            return _Header.PENDING
        if rest == "":
            return _Header.INVALID if done else _Header.PENDING
        prefix = " to="
        if len(rest) < len(prefix):
            return _Header.PENDING if not done and prefix.startswith(rest) else _Header.INVALID
        if not rest.startswith(prefix):
            return _Header.INVALID
        recipient_and_after = rest[len(prefix):]
        at = recipient_and_after.find(MESSAGE)
        if at >= 0:
            return _Header.VALID if self._valid_recipient(recipient_and_after[:at]) else _Header.INVALID
        if done:
            return _Header.INVALID
        if recipient_and_after == "":
            return _Header.PENDING
        if any(c in _HEADER_SPACE for c in recipient_and_after):
            return _Header.INVALID
        lt = recipient_and_after.find("<")
        if lt >= 0:
            return _Header.PENDING if MESSAGE.startswith(recipient_and_after[lt:]) else _Header.INVALID
        return _Header.PENDING

    def _valid_recipient(self, recipient: str) -> bool:
        return recipient in ("self", "user") or bool(tool_name(self.tools.get(recipient)))

    def _hold_content(self, acc: str) -> bool:
        """Content that opens with the ATEM wrapper may be a tool call with a fumbled header: it is held
        until the message ends, so that it goes out as one or the other."""
        if self.state != State.CONTENT or self.content_streamed or not self.tools:
            return False
        trimmed = acc.lstrip(_HEADER_SPACE)
        return CALLS_OPEN.startswith(trimmed) or trimmed.startswith(CALLS_OPEN)

    def _content_call(self, body: str, complete: bool) -> dict[str, Any] | None:
        """A whole content message that is only a well-formed ATEM call of a declared tool, as a call."""
        if not complete or self.content_streamed or not self.tools:
            return None
        trimmed = trim(body)
        if not (trimmed.startswith(CALLS_OPEN) and trimmed.endswith(CALLS_CLOSE)):
            return None
        resolved, ok = self._resolve(_invoke_name(trimmed))
        if not ok:
            return None
        try:
            _, arguments = parse_atem(trimmed, self.tools[resolved])
        except ValueError:
            return None
        return self._number(tool_call(resolved, arguments))

    def _tool_call(self, body: str) -> dict[str, Any]:
        if not self.recipient:
            raise ParserError("empty Glimmer function name")
        recipient, ok = self._resolve(self.recipient)
        if not ok:
            raise ParserError(f"undeclared Glimmer function {go_quote(self.recipient)}")
        try:
            name, arguments = parse_atem(body, self.tools[recipient])
        except ValueError as e:
            raise ParserError(f"parse Glimmer call to {self.recipient}: {e}") from None
        resolved, ok = self._resolve(name)
        if not ok or resolved != recipient:
            raise ParserError(f"Glimmer recipient {go_quote(self.recipient)} does not match ATEM invoke "
                              f"{go_quote(name)}")
        return self._number(tool_call(recipient, arguments))


def _terminator(s: str) -> tuple[int, int]:
    at, length = -1, 0
    for marker in (END_MESSAGE, END_TURN):
        i = s.find(marker)
        if i >= 0 and (at < 0 or i < at):
            at, length = i, len(marker)
    return at, length


def _invoke_name(body: str) -> str:
    inner = trim(body[len(CALLS_OPEN):len(body) - len(CALLS_CLOSE)])
    if not inner.startswith(INVOKE_OPEN):
        return ""
    cut = _cut_invoke_name(inner[len(INVOKE_OPEN):])
    return cut[0] if cut is not None else ""


def _cut_invoke_name(s: str) -> tuple[str, str] | None:
    """(name, rest) of an invoke's name attribute; a `<|message|>` the model slipped into the name (or in
    place of the `">` that ends it) is dropped."""
    name: list[str] = []
    rest = s
    fumbled = False
    while True:
        term = rest.find('">')
        tag = rest.find(MESSAGE)
        if tag >= 0 and (term < 0 or tag < term):
            fumbled = True
            name.append(rest[:tag])
            rest = rest[tag + len(MESSAGE):]
            if rest.startswith(PARAM_OPEN):
                break
            continue
        if term < 0:
            return None
        name.append(rest[:term])
        rest = rest[term + 2:]
        break
    if fumbled:
        log.warning("glimmer parser recovered stray message boundary token in ATEM invoke name %r", "".join(name))
    return "".join(name), rest


def parse_atem(body: str, tool: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(invoke name, typed arguments) of an ATEM block; raises ValueError."""
    body = trim(body)
    if not (body.startswith(CALLS_OPEN) and body.endswith(CALLS_CLOSE)):
        raise ValueError("missing ATEM function_calls wrapper")
    invoke = trim(body[len(CALLS_OPEN):len(body) - len(CALLS_CLOSE)])
    if not (invoke.startswith(INVOKE_OPEN) and invoke.endswith(INVOKE_CLOSE)):
        raise ValueError("missing ATEM invoke wrapper")
    cut = _cut_invoke_name(invoke[len(INVOKE_OPEN):])
    if cut is None or len(cut[1]) < len(INVOKE_CLOSE):
        raise ValueError("malformed ATEM invoke name")
    name, rest = cut
    params = rest[:len(rest) - len(INVOKE_CLOSE)].removeprefix("\n").removesuffix("\n")
    arguments: dict[str, Any] = {}
    while params:
        if not params.startswith(PARAM_OPEN):
            raise ValueError("malformed ATEM parameter")
        params = params[len(PARAM_OPEN):]
        end = params.find('">')
        if end < 0:
            raise ValueError("malformed ATEM parameter name")
        key, params = params[:end], params[end + 2:]
        end = params.find(PARAM_CLOSE)
        if end < 0:
            raise ValueError(f"unterminated ATEM parameter {go_quote(key)}")
        value, params = params[:end], params[end + len(PARAM_CLOSE):].removeprefix("\n")
        arguments[key] = typed_value(value, property_types(tool, key))
    return name, arguments
