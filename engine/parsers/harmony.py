"""The harmony format of gpt-oss: messages `<|start|>ROLE<|channel|>CHANNEL to=RECIPIENT<|message|>…<|end|>`.
The `analysis` channel is thinking, `final` (or no channel) is content, and a message to a recipient
(`to=functions.NAME`) is a tool call whose body is the JSON arguments. Tool names are mapped to
identifiers the model can write, and back."""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any

from engine.parsers import gojson
from engine.parsers.base import GO_SPACE, Parsed, Parser, ParserError, overlap, tool_call, tool_name

log = logging.getLogger(__name__)

MESSAGE_START = "<|start|>"
MESSAGE_END = "<|end|>"
HEADER_END = "<|message|>"
CHANNEL = "<|channel|>"
CONSTRAIN = "<|constrain|>"

# What a prompt ends with when the format is forced after thinking: the thinking message is closed and
# the final answer opened, so the grammar applies to the answer only.
FINAL_ANSWER_PREFIX = "<|end|><|start|>assistant<|channel|>final<|message|>"

BUILTIN_TOOLS = ("browser.open", "browser.search", "browser.find", "python")


@dataclass(frozen=True)
class Header:
    role: str = ""
    channel: str = ""
    recipient: str = ""


@dataclass(frozen=True)
class MessageStart:
    pass


@dataclass(frozen=True)
class HeaderComplete:
    header: Header


@dataclass(frozen=True)
class ContentEmitted:
    content: str


@dataclass(frozen=True)
class MessageEnd:
    pass


Event = MessageStart | HeaderComplete | ContentEmitted | MessageEnd


class _State(Enum):
    LOOKING_FOR_MESSAGE_START = auto()
    PARSING_HEADER = auto()
    PARSING_CONTENT = auto()


class HarmonyParser:
    """The token-level stream: message starts, headers, content and message ends as events."""

    def __init__(self) -> None:
        self.state = _State.LOOKING_FOR_MESSAGE_START
        self.buffer = ""

    def add_implicit_start(self) -> None:
        self.buffer += MESSAGE_START + "assistant"

    def add_implicit_start_or_prefill(self, last_message: dict[str, Any] | None) -> None:
        """The prompt has opened the assistant's message; when the last message is an assistant prefill,
        it has opened the final (content) or analysis (thinking) channel too."""
        if last_message is not None and last_message.get("role") == "assistant":
            if last_message.get("content"):
                self.buffer += MESSAGE_START + "assistant" + CHANNEL + "final" + HEADER_END
                return
            if last_message.get("thinking"):
                self.buffer += MESSAGE_START + "assistant" + CHANNEL + "analysis" + HEADER_END
                return
        self.add_implicit_start()

    def add(self, text: str) -> list[Event]:
        self.buffer += text
        events: list[Event] = []
        more = True
        while more:
            new, more = self._eat()
            events += new
        return events

    def _eat(self) -> tuple[list[Event], bool]:
        if self.state == _State.LOOKING_FOR_MESSAGE_START:
            before, found, after = self.buffer.partition(MESSAGE_START)
            if not found:
                return [], False
            if before:
                log.warning("harmony parser: found message start tag in the middle of the content")
            self.buffer = after
            self.state = _State.PARSING_HEADER
            return [MessageStart()], True
        if self.state == _State.PARSING_HEADER:
            header, found, after = self.buffer.partition(HEADER_END)
            if not found:
                return [], False
            self.buffer = after
            self.state = _State.PARSING_CONTENT
            return [HeaderComplete(parse_header(header))], True
        content, found, after = self.buffer.partition(MESSAGE_END)
        if found:
            self.buffer = after
            self.state = _State.LOOKING_FOR_MESSAGE_START
            events: list[Event] = [ContentEmitted(content)] if content else []
            return events + [MessageEnd()], True
        held = overlap(self.buffer, MESSAGE_END)
        content, self.buffer = self.buffer[:len(self.buffer) - held], self.buffer[len(self.buffer) - held:]
        return ([ContentEmitted(content)] if content else []), False


def parse_header(raw: str) -> Header:
    """`ROLE<|channel|>CHANNEL to=RECIPIENT <|constrain|>json`, the recipient before or after the channel;
    a role of `to=X` makes the message a tool's."""
    if CONSTRAIN in raw:
        raw = raw.replace(CONSTRAIN, " " + CONSTRAIN, 1).strip(GO_SPACE)
    channel = ""
    at = raw.find(CHANNEL)
    if at != -1:
        before, after = raw[:at], raw[at + len(CHANNEL):]
        end = next((i for i, c in enumerate(after) if c in GO_SPACE), len(after))
        channel = after[:end]
        raw = (before + after[end:]).strip(GO_SPACE)
    tokens = _fields(raw)
    if not tokens:
        log.error("harmony parser: missing role in header %r", raw)
        return Header(channel=channel)
    role, rest = tokens[0], tokens[1:]
    if role.startswith("to="):
        return Header("tool", channel, role[3:])
    recipient = rest[0][3:] if rest and rest[0].startswith("to=") else ""
    return Header(role, channel, recipient)


def _fields(text: str) -> list[str]:
    """strings.Fields: split on runs of Go whitespace."""
    out: list[str] = []
    current: list[str] = []
    for c in text:
        if c in GO_SPACE:
            if current:
                out.append("".join(current))
                current = []
        else:
            current.append(c)
    if current:
        out.append("".join(current))
    return out


class FunctionNameMap:
    """Tool names as harmony identifiers (TypeScript-like) and back again."""

    def __init__(self) -> None:
        self.user_to_harmony: dict[str, str] = {}
        self.harmony_to_user: dict[str, str] = {}

    def convert_and_add(self, user_name: str) -> str:
        harmony_name = user_name if user_name in BUILTIN_TOOLS else self._derive(user_name)
        self.user_to_harmony[user_name] = harmony_name
        self.harmony_to_user[harmony_name] = user_name
        return harmony_name

    def original(self, harmony_name: str) -> str:
        if harmony_name in self.harmony_to_user:
            return self.harmony_to_user[harmony_name]
        log.warning("harmony parser: no reverse mapping found for function name %r", harmony_name)
        return harmony_name

    def _derive(self, user_name: str) -> str:
        base = valid_identifier(user_name)
        candidate, count = base, 2
        while candidate in self.harmony_to_user:
            candidate = f"{base}_{count}"
            count += 1
        return candidate


def valid_identifier(name: str) -> str:
    """Spaces, hyphens and dots become underscores; letters, digits, `_` and `$` stay; the rest goes.
    Empty becomes `unnamed`; a leading digit gets an underscore in front."""
    out: list[str] = []
    for c in name:
        if c in " -.":
            out.append("_")
        elif c in "_$" or unicodedata.category(c).startswith("L") or unicodedata.category(c) == "Nd":
            out.append(c)
    candidate = "".join(out)
    if not candidate:
        return "unnamed"
    if candidate[0] in "0123456789":  # Go looks at the first byte only, so only ASCII digits count
        candidate = "_" + candidate
    return candidate


class _Message(Enum):
    NORMAL = auto()
    THINKING = auto()
    TOOL_CALLING = auto()


class HarmonyMessageHandler(Parser):
    """The harmony parser as a built-in output parser: the model's text as content, thinking and (at the
    end of the output) the tool call."""

    has_tool_support = True
    has_thinking_support = True

    def __init__(self) -> None:
        self.state = _Message.NORMAL
        self.parser = HarmonyParser()
        self.names = FunctionNameMap()
        self.tool_name: str | None = None
        self.tool_text = ""

    def init(self, tools, last_message, think):
        if last_message is not None:
            self.parser.add_implicit_start_or_prefill(last_message)
        else:
            self.parser.add_implicit_start()
        if not tools:
            return tools
        renamed = []
        for tool in tools:
            name = tool_name(tool)
            if name:
                tool = {**tool, "function": {**tool["function"], "name": self.names.convert_and_add(name)}}
            renamed.append(tool)
        return renamed

    def add(self, text: str, done: bool) -> Parsed:
        content, thinking, tool_text = self._split(text)
        self.tool_text += tool_text
        calls: list[dict[str, Any]] = []
        # one call at most, always at the end of the output: parse it when the output is over
        if done:
            name, raw = self.tool_name, self.tool_text
            self.tool_text = ""
            if name is not None:
                name = self.names.original(name.removeprefix("functions."))
                try:
                    arguments = gojson.loads_arguments(raw)
                except gojson.GoJSONError as e:
                    raise ParserError(f"error parsing tool call: raw='{raw}', err={e}") from None
                calls.append(tool_call(name, arguments))
        return Parsed(content, thinking, calls)

    def _split(self, text: str) -> tuple[str, str, str]:
        content: list[str] = []
        thinking: list[str] = []
        tool: list[str] = []
        for event in self.parser.add(text):
            if isinstance(event, HeaderComplete):
                header = event.header
                if header.channel in ("analysis", "commentary") and header.recipient:
                    self.state = _Message.TOOL_CALLING
                    self.tool_name = header.recipient
                elif header.channel == "analysis":
                    self.state = _Message.THINKING
                elif header.channel in ("commentary", "final"):
                    self.state = _Message.NORMAL
            elif isinstance(event, ContentEmitted):
                {_Message.NORMAL: content, _Message.THINKING: thinking,
                 _Message.TOOL_CALLING: tool}[self.state].append(event.content)
            elif isinstance(event, MessageEnd):
                self.state = _Message.NORMAL
        return "".join(content), "".join(thinking), "".join(tool)
