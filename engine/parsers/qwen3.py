"""qwen3 and qwen3-thinking: thinking (the prompt already opened `<think>`, so output starts inside it)
up to `</think>`, then content with JSON tool calls in `<tool_call>{"name", "arguments"}</tool_call>`."""

from __future__ import annotations

from typing import Any

from engine.parsers import gojson
from engine.parsers.base import Parsed, ParserError, Step, tool_call, trim_left
from engine.parsers.think_tool_tags import THINK_CLOSE, THINK_OPEN, TOOL_OPEN, State, ThinkToolTagsParser
from engine.thinkvalue import think_on


class Qwen3Parser(ThinkToolTagsParser):
    has_tool_support = True

    def __init__(self, thinking: bool) -> None:
        super().__init__()
        self.has_thinking_support = thinking
        self.default_thinking = thinking
        self.maybe_open_tag = False  # some checkpoints repeat the prompt's <think>; strip one

    def init(self, tools, last_message, think):
        self.buffer = ""
        self.call_index = 0
        thinking = think_on(think, default=self.default_thinking)
        if self.has_thinking_support and thinking:
            self.state = State.COLLECTING_THINKING
            self.maybe_open_tag = True
        else:
            self.state = State.COLLECTING_CONTENT
            self.maybe_open_tag = False
        return tools

    def add(self, text: str, done: bool) -> Parsed:
        self.buffer += text
        return self._parsed(self._events(done), _parse_call)

    def _thinking(self, acc: str) -> Step:
        """Thinking also ends where a tool call opens before `</think>`."""
        if self.maybe_open_tag:
            trimmed = trim_left(acc)
            if trimmed.startswith(THINK_OPEN):
                self.buffer = trim_left(trimmed[len(THINK_OPEN):])
                if not self.buffer:
                    return "", "", False
                self.maybe_open_tag = False
                return "", "", True
            if THINK_OPEN.startswith(trimmed):
                return "", "", False
            self.maybe_open_tag = False
        close_at = acc.find(THINK_CLOSE)
        tool_at = acc.find(TOOL_OPEN)
        if tool_at != -1 and (close_at == -1 or tool_at < close_at):
            return self._up_to(TOOL_OPEN, "thinking", State.COLLECTING_TOOL, State.TOOL_STARTED_EATING_SPACE)
        if close_at != -1:
            return self._up_to(THINK_CLOSE, "thinking", State.COLLECTING_CONTENT, State.THINKING_DONE_EATING_SPACE)
        return self._let_out("thinking", THINK_CLOSE, TOOL_OPEN)


def _parse_call(raw: str) -> dict[str, Any]:
    try:
        parsed = gojson.struct(gojson.loads(raw), {"name": str, "arguments": dict}, "struct")
    except gojson.GoJSONError as e:
        raise ParserError(f"failed to parse JSON: {e}") from None
    if not parsed.get("name"):
        raise ParserError("empty function name")
    return tool_call(parsed["name"], parsed.get("arguments", {}))
