"""What every built-in output parser shares: the interface the pipelines call, the bases most parsers build
on (a buffer with calls numbered across the request; a state machine read one step at a time), and the
text helpers their states are built from (Go's whitespace, partial-tag overlap, splitting at a tag)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from engine.thinkvalue import Think

# unicode.IsSpace: Go's whitespace. Python's str.isspace() also takes \x1c-\x1f, which Go does not.
GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
    "\u2028\u2029\u202f\u205f\u3000"
# What Go sees as space when it tests the bytes of a string one at a time (unicode.IsSpace(rune(b))): a
# multi-byte character starts with a byte that is never a space, so only ASCII whitespace counts.
ASCII_SPACE = " \t\n\v\f\r"


class ParserError(Exception):
    """Model output a parser cannot turn into a tool call; the request ends with this text as its error."""


class Parsed(NamedTuple):
    content: str
    thinking: str
    calls: list[dict[str, Any]]


class Parser:
    """A model-specific parser: feed it the model's text as it streams; it splits the text into content,
    thinking and tool calls. `init` is called once per request before the first `add`."""

    has_tool_support = False
    has_thinking_support = False

    def init(self, tools: list[dict[str, Any]] | None, last_message: dict[str, Any] | None,
             think: Think) -> list[dict[str, Any]] | None:
        """Set the parser up for a request; returns the tools the prompt should be rendered with."""
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        """The content, thinking and complete tool calls in this piece of output. `done` is True on the
        last call, so held-back text can be let out. Raises ParserError."""
        raise NotImplementedError


def continues_assistant(last_message: dict[str, Any] | None) -> bool:
    """The request ends with an assistant message that has content: the model continues that answer, so
    its output starts as content."""
    return last_message is not None and last_message.get("role") == "assistant" and bool(last_message.get("content"))


def tool_call(name: str, arguments: dict[str, Any] | None, call_id: str = "") -> dict[str, Any]:
    call: dict[str, Any] = {"function": {"index": 0, "name": name, "arguments": {} if arguments is None else arguments}}
    if call_id:
        call["id"] = call_id
    return call


class BufferedParser(Parser):
    """A parser that keeps the output it cannot place yet (a tag may be half written) in `buffer`, and
    numbers its tool calls across the request."""

    def __init__(self) -> None:
        self.buffer = ""
        self.call_index = 0

    def _number(self, call: dict[str, Any]) -> dict[str, Any]:
        """The call, numbered on from the last call of this request."""
        call["function"]["index"] = self.call_index
        self.call_index += 1
        return call

    def _numbered(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self._number(call) for call in calls]


# One step of a parser's state machine: the kind of what it found ("content", "thinking", "call" for one
# call, "calls" for a list of them; "" for nothing), that piece, and whether to take another step at once.
Step = tuple[str, Any, bool]
Event = tuple[str, Any]


class StepParser(BufferedParser):
    """A state machine that reads its buffer one step at a time: `_eat` looks at the buffer in the
    current state, takes what it can place off it and says what that was."""

    def _eat(self, done: bool) -> Step:
        raise NotImplementedError

    def _events(self, done: bool) -> list[Event]:
        """What the steps found until the buffer is spent or a step waits for more output."""
        events: list[Event] = []
        while self.buffer:
            kind, value, more = self._eat(done)
            if kind:
                events.append((kind, value))
            if not more:
                break
        return events

    def _parsed(self, events: list[Event], parse_call: Callable[[Any], dict[str, Any]] | None = None) -> Parsed:
        """The events as one result; a "call" event's value goes through `parse_call` when it is raw text."""
        content: list[str] = []
        thinking: list[str] = []
        calls: list[dict[str, Any]] = []
        for kind, value in events:
            if kind == "content":
                content.append(value)
            elif kind == "thinking":
                thinking.append(value)
            elif kind == "calls":
                calls += value
            else:
                calls.append(parse_call(value) if parse_call is not None else value)
        return Parsed("".join(content), "".join(thinking), self._numbered(calls))

    @staticmethod
    def _found(kind: str, text: str, more: bool) -> Step:
        """A step that found `text` (nothing when it is empty)."""
        return (kind, text, more) if text else ("", "", more)

    def _let_out(self, kind: str, *tags: str) -> Step:
        """The buffer up to a partial tag or trailing whitespace at its end, which wait for more output."""
        end = hold_back(self.buffer, *tags)
        out, self.buffer = self.buffer[:end], self.buffer[end:]
        return self._found(kind, out, False)

    def _skip_space_then(self, state: Any) -> Step:
        """Drop leading whitespace; once something else comes, go on in `state`."""
        self.buffer = trim_left(self.buffer)
        if not self.buffer:
            return "", "", False
        self.state = state
        return "", "", True


# --- text -----------------------------------------------------------------------------------------


def trim_left(s: str) -> str:
    return s.lstrip(GO_SPACE)


def trim_right(s: str) -> str:
    return s.rstrip(GO_SPACE)


def trim(s: str) -> str:
    return s.strip(GO_SPACE)


def overlap(s: str, delim: str) -> int:
    """The length of the longest end of `s` that is a start of `delim`."""
    for k in range(min(len(delim), len(s)), 0, -1):
        if s.endswith(delim[:k]):
            return k
    return 0


def trailing_space_len(s: str) -> int:
    return len(s) - len(s.rstrip(GO_SPACE))


def split_at_tag(buffer: str, tag: str, trim_after: bool) -> tuple[str, str]:
    """(before, after) around the first `tag` in `buffer`: before loses its trailing whitespace, after its
    leading whitespace if asked. The caller keeps `after` as its new buffer. Without the tag: (buffer, "")
    and the buffer is spent."""
    before, found, after = buffer.partition(tag)
    if not found:
        return before, ""
    return trim_right(before), trim_left(after) if trim_after else after


def hold_back(text: str, *tags: str) -> int:
    """Where the text that may still change ends: before a partial tag at the end and the whitespace in
    front of it, or before trailing whitespace. Everything before the returned index can be let out."""
    partial = max((overlap(text, tag) for tag in tags), default=0)
    end = len(text) - partial
    return end - trailing_space_len(text[:end])


def property_types(tool: dict[str, Any] | None, name: str) -> list[str]:
    """The declared JSON types of one parameter of a tool (an `anyOf` contributes all of its types)."""
    prop = tool_properties(tool).get(name)
    if not isinstance(prop, dict):
        return []
    any_of = prop.get("anyOf")
    if isinstance(any_of, list) and any_of:
        return [t for option in any_of if isinstance(option, dict) for t in _types(option.get("type"))]
    return _types(prop.get("type"))


def _types(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for t in value if isinstance(t, str)]
    return []


def tool_name(tool: Any) -> str:
    function = tool.get("function") if isinstance(tool, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else ""


def tool_properties(tool: dict[str, Any] | None) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    params = function.get("parameters") if isinstance(function, dict) else None
    props = params.get("properties") if isinstance(params, dict) else None
    return props if isinstance(props, dict) else {}


def find_tool(tools: list[dict[str, Any]] | None, name: str) -> dict[str, Any] | None:
    return next((tool for tool in tools or [] if tool_name(tool) == name), None)
