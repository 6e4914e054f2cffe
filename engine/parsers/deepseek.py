"""deepseek3 and cogito: thinking up to `</think>`, then content with DeepSeek's tool-call blocks
(`<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>…<｜tool▁call▁end｜><｜tool▁calls▁end｜>`); the two differ in
the call's inner format and in how they treat tool outputs echoed by the model."""

from __future__ import annotations

import logging
from enum import Enum, auto
from typing import Any

from engine.parsers import gojson
from engine.parsers.base import Parsed, Step, StepParser, continues_assistant, tool_call, trim, trim_left, trim_right
from engine.thinkvalue import think_on

log = logging.getLogger(__name__)

THINK_CLOSE = "</think>"
CALLS_BEGIN = "<｜tool▁calls▁begin｜>"
CALLS_END = "<｜tool▁calls▁end｜>"
CALL_BEGIN = "<｜tool▁call▁begin｜>"
CALL_END = "<｜tool▁call▁end｜>"
SEP = "<｜tool▁sep｜>"
OUTPUT_BEGIN = "<｜tool▁output▁begin｜>"
OUTPUT_END = "<｜tool▁output▁end｜>"
OUTPUTS_BEGIN = "<｜tool▁outputs▁begin｜>"
OUTPUTS_END = "<｜tool▁outputs▁end｜>"


class State(Enum):
    COLLECTING_THINKING = auto()
    COLLECTING_CONTENT = auto()
    COLLECTING_TOOL_CALLS = auto()
    COLLECTING_TOOL_OUTPUT = auto()


class _DeepSeekFamily(StepParser):
    has_tool_support = True
    has_thinking_support = True
    family = ""  # what its warnings call it

    def __init__(self) -> None:
        super().__init__()
        self.state = State.COLLECTING_THINKING

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        return self._parsed(self._events(done))

    def _eat(self, done: bool) -> Step:
        acc = self.buffer
        if self.state == State.COLLECTING_THINKING:
            thought, found, after = acc.partition(THINK_CLOSE)
            if found:
                self.buffer = trim_left(after)
                self.state = State.COLLECTING_CONTENT
                return self._found("thinking", trim_right(thought), True)
            return self._let_out("thinking", THINK_CLOSE)
        if self.state == State.COLLECTING_CONTENT:
            return self._content(acc)
        if self.state == State.COLLECTING_TOOL_CALLS:
            begin = acc.find(CALL_BEGIN)
            if begin != -1:
                start = begin + len(CALL_BEGIN)
                end = acc.find(CALL_END, start)
                if end != -1:
                    try:
                        call = self._parse_call(acc[start:end])
                    except (ValueError, gojson.GoJSONError) as e:
                        log.warning("%s tool call parsing failed: %s", self.family, e)
                    else:
                        self.buffer = trim_left(acc[end + len(CALL_END):])
                        return "call", call, True
            at = acc.find(CALLS_END)
            if at != -1:
                self.buffer = trim_left(acc[at + len(CALLS_END):])
                self.state = State.COLLECTING_CONTENT
                return "", "", True
            return "", "", False
        return self._tool_output(acc)

    def _content(self, acc: str) -> Step:
        raise NotImplementedError

    def _tool_output(self, acc: str) -> Step:
        raise NotImplementedError

    def _parse_call(self, text: str) -> dict[str, Any]:
        raise NotImplementedError


class DeepSeek3Parser(_DeepSeekFamily):
    """`NAME<｜tool▁sep｜>{json}` calls; echoed tool output is kept as content."""

    family = "deepseek"

    def __init__(self, thinking: bool = True) -> None:
        super().__init__()
        self.has_thinking_support = thinking

    def init(self, tools, last_message, think):
        self.call_index = 0
        thinking = self.has_thinking_support and think_on(think)
        if not thinking or continues_assistant(last_message):
            self.state = State.COLLECTING_CONTENT
        else:
            self.state = State.COLLECTING_THINKING
        return tools

    def _content(self, acc: str) -> Step:
        if CALLS_BEGIN in acc:
            before, _, self.buffer = acc.partition(CALLS_BEGIN)
            self.state = State.COLLECTING_TOOL_CALLS
            return self._found("content", trim_right(before), True)
        if OUTPUT_BEGIN in acc:
            before, _, self.buffer = acc.partition(OUTPUT_BEGIN)  # spaces kept
            self.state = State.COLLECTING_TOOL_OUTPUT
            return self._found("content", before, True)
        self.buffer = ""
        return "content", acc, False

    def _tool_output(self, acc: str) -> Step:
        output, found, after = acc.partition(OUTPUT_END)
        if not found:
            return "", "", False
        self.buffer = after
        self.state = State.COLLECTING_CONTENT
        return self._found("content", output, True)

    def _parse_call(self, text: str) -> dict[str, Any]:
        name, found, args = text.partition(SEP)
        if not found:
            raise ValueError("invalid format")
        return tool_call(trim(name), gojson.loads_arguments(trim(args)))


class CogitoParser(_DeepSeekFamily):
    """`function<｜tool▁sep｜>NAME` and a ```json block of arguments; echoed tool outputs are dropped.
    No thinking when the request has tools."""

    family = "cogito"

    def init(self, tools, last_message, think):
        self.call_index = 0
        if not think_on(think) or continues_assistant(last_message) or tools:
            self.state = State.COLLECTING_CONTENT
        else:
            self.state = State.COLLECTING_THINKING
        return tools

    def _content(self, acc: str) -> Step:
        for tag, state in ((CALLS_BEGIN, State.COLLECTING_TOOL_CALLS), (OUTPUTS_BEGIN, State.COLLECTING_TOOL_OUTPUT)):
            if tag in acc:
                before, _, self.buffer = acc.partition(tag)
                self.state = state
                return self._found("content", trim_right(before), True)
        self.buffer = ""
        return "content", acc, False

    def _tool_output(self, acc: str) -> Step:
        begin = acc.find(OUTPUT_BEGIN)
        if begin != -1:
            end = acc.find(OUTPUT_END, begin + len(OUTPUT_BEGIN))
            if end != -1:
                self.buffer = trim_left(acc[end + len(OUTPUT_END):])
                return "", "", True
        at = acc.find(OUTPUTS_END)
        if at != -1:
            self.buffer = trim_left(acc[at + len(OUTPUTS_END):])
            self.state = State.COLLECTING_CONTENT
            return "", "", True
        return "", "", False

    def _parse_call(self, text: str) -> dict[str, Any]:
        _, found, name_and_args = text.partition(SEP)
        if not found:
            raise ValueError("invalid format")
        name, found, json_part = name_and_args.partition("\n```json\n")
        if not found:
            raise ValueError("invalid format")
        args, found, _ = json_part.partition("\n```")
        if not found:
            raise ValueError("invalid format")
        return tool_call(trim(name), gojson.loads_arguments(args))
