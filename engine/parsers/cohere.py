"""cohere (North / Command A 2026): thinking up to `<|END_THINKING|>` (the prompt opened it), then blocks:
`<|START_TEXT|>content<|END_TEXT|>` or `<|START_ACTION|>[{"tool_name", "parameters"}, …]<|END_ACTION|>`."""

from __future__ import annotations

import logging
from enum import Enum, auto
from typing import Any

from engine.parsers import gojson
from engine.parsers.base import (
    Parsed,
    Step,
    StepParser,
    continues_assistant,
    overlap,
    tool_call,
    trim,
    trim_left,
    trim_right,
)
from engine.thinkvalue import think_on

log = logging.getLogger(__name__)

END_THINKING = "<|END_THINKING|>"
START_TEXT = "<|START_TEXT|>"
END_TEXT = "<|END_TEXT|>"
START_ACTION = "<|START_ACTION|>"
END_ACTION = "<|END_ACTION|>"
END_OF_TURN = "<|END_OF_TURN_TOKEN|>"
# the older Command A markers, which these models also produce
START_RESPONSE = "<|START_RESPONSE|>"
END_RESPONSE = "<|END_RESPONSE|>"


class State(Enum):
    COLLECTING_THINKING = auto()
    AWAITING_BLOCK = auto()
    COLLECTING_CONTENT = auto()
    COLLECTING_ACTION = auto()


class CohereParser(StepParser):
    has_tool_support = True
    has_thinking_support = True

    def __init__(self) -> None:
        super().__init__()
        self.state = State.COLLECTING_THINKING

    def init(self, tools, last_message, think):
        self.buffer = ""
        self.call_index = 0
        if continues_assistant(last_message):
            self.state = State.COLLECTING_CONTENT  # the prompt left <|START_TEXT|> open
        elif think_on(think, default=True):
            self.state = State.COLLECTING_THINKING
        else:
            self.state = State.AWAITING_BLOCK
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        return self._parsed(self._events(done))

    def _eat(self, done: bool) -> Step:
        buf = self.buffer
        if self.state == State.COLLECTING_THINKING:
            at = buf.find(END_THINKING)
            if at != -1:
                self.buffer = buf[at + len(END_THINKING):]
                self.state = State.AWAITING_BLOCK
                return "thinking", trim_right(buf[:at]), True
            return self._let_out("thinking", END_THINKING)
        if self.state == State.AWAITING_BLOCK:
            for opening in (START_TEXT, START_RESPONSE):
                at = buf.find(opening)
                if at != -1:
                    self.buffer = buf[at + len(opening):]
                    self.state = State.COLLECTING_CONTENT
                    return "", "", True
            at = buf.find(START_ACTION)
            if at != -1:
                self.buffer = buf[at + len(START_ACTION):]
                self.state = State.COLLECTING_ACTION
                return "", "", True
            trimmed = trim_left(buf)
            if trimmed.startswith(END_OF_TURN):
                self.buffer = trimmed[len(END_OF_TURN):]
                return "", "", True
            if not trimmed:
                if done:
                    self.buffer = ""
                return "", "", False
            if not done and _maybe_partial_tag(trimmed):
                return "", "", False
            # anything else (bare text, an unknown tag) is content rather than held forever
            self.buffer = trimmed
            self.state = State.COLLECTING_CONTENT
            return "", "", True
        if self.state == State.COLLECTING_CONTENT:
            for closing in (END_TEXT, END_RESPONSE, END_OF_TURN):
                at = buf.find(closing)
                if at != -1:
                    self.buffer = buf[at + len(closing):]
                    self.state = State.AWAITING_BLOCK
                    return "content", buf[:at], True
            keep = max(overlap(buf, END_TEXT), overlap(buf, END_RESPONSE), overlap(buf, END_OF_TURN))
            end = len(buf) - keep
            content = ""
            if end > 0:
                content, self.buffer = buf[:end], buf[end:]
            if done and self.buffer:
                content += self.buffer
                self.buffer = ""
            return "content", content, False
        at = buf.find(END_ACTION)
        if at != -1:
            self.buffer = buf[at + len(END_ACTION):]
            self.state = State.AWAITING_BLOCK
            return "calls", parse_actions(buf[:at]), True
        if done:  # cut-off output: take what can be read
            self.buffer = ""
            return "calls", parse_actions(buf), False
        return "", "", False


def _maybe_partial_tag(s: str) -> bool:
    return any(len(s) < len(tag) and tag.startswith(s) for tag in (START_TEXT, START_RESPONSE, START_ACTION,
                                                                      END_OF_TURN))


_ACTION_FIELDS = {"tool_call_id": str, "tool_name": str, "parameters": dict}


def _action_call(fields: dict[str, Any]) -> dict[str, Any]:
    return tool_call(fields.get("tool_name", ""), fields.get("parameters", {}), call_id=fields.get("tool_call_id", ""))


def parse_actions(payload: str) -> list[dict[str, Any]]:
    """The JSON array of an action block; when it does not parse as a whole, each balanced top-level
    object is tried on its own so that one bad call does not lose the others."""
    payload = trim(payload)
    if not payload:
        return []
    try:
        decoded = gojson.loads(payload)
        if decoded is not None and not isinstance(decoded, list):
            raise gojson.GoJSONError("json: cannot unmarshal into Go value of type []parsers.cohereToolCall")
        return [_action_call(gojson.struct(item, _ACTION_FIELDS, "parsers.cohereToolCall")) for item in decoded or []]
    except gojson.GoJSONError:
        pass
    calls = []
    for text in _json_objects(payload):
        try:
            calls.append(_action_call(gojson.struct(gojson.loads(text), _ACTION_FIELDS, "parsers.cohereToolCall")))
        except gojson.GoJSONError as e:
            log.warning("cohere action parsing failed: %s (%s)", e, text[:200])
    return calls


def _json_objects(s: str) -> list[str]:
    objects = []
    depth, start = 0, -1
    in_string = escaped = False
    for i, c in enumerate(s):
        if escaped:
            escaped = False
        elif c == "\\" and in_string:
            escaped = True
        elif c == '"':
            in_string = not in_string
        elif in_string:
            pass
        elif c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth > 0:
            depth -= 1
            if depth == 0 and start >= 0:
                objects.append(s[start:i + 1])
                start = -1
    return objects
