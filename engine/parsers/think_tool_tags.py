"""The state machine qwen3 and GLM-4.6 share (Ollama wrote it twice): thinking in `<think>…</think>` (the
model writes the open tag, or starts inside it when the prompt opened it), then content with calls in
`<tool_call>…</tool_call>`; whitespace next to each tag is dropped. Each parser reads its calls itself."""

from __future__ import annotations

from enum import Enum, auto

from engine.parsers.base import Step, StepParser, split_at_tag, trim_left

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
TOOL_OPEN = "<tool_call>"
TOOL_CLOSE = "</tool_call>"


class State(Enum):
    LOOKING_FOR_THINKING_OPEN = auto()
    THINKING_STARTED_EATING_SPACE = auto()
    COLLECTING_THINKING = auto()
    THINKING_DONE_EATING_SPACE = auto()
    COLLECTING_CONTENT = auto()
    TOOL_STARTED_EATING_SPACE = auto()
    COLLECTING_TOOL = auto()


class ThinkToolTagsParser(StepParser):
    """Steps give "thinking", "content" and "call" events; a call's value is the raw text between its
    tags."""

    def __init__(self) -> None:
        super().__init__()
        self.state = State.LOOKING_FOR_THINKING_OPEN

    def _eat(self, done: bool) -> Step:
        acc = self.buffer
        if self.state == State.LOOKING_FOR_THINKING_OPEN:
            trimmed = trim_left(acc)
            if trimmed.startswith(THINK_OPEN):
                self.buffer = trim_left(trimmed[len(THINK_OPEN):])
                self.state = State.COLLECTING_THINKING if self.buffer else State.THINKING_STARTED_EATING_SPACE
                return "", "", True
            if THINK_OPEN.startswith(trimmed):
                return "", "", False
            self.state = State.COLLECTING_CONTENT
            return "", "", True
        if self.state == State.THINKING_STARTED_EATING_SPACE:
            return self._skip_space_then(State.COLLECTING_THINKING)
        if self.state == State.COLLECTING_THINKING:
            return self._thinking(acc)
        if self.state == State.THINKING_DONE_EATING_SPACE:
            return self._skip_space_then(State.COLLECTING_CONTENT)
        if self.state == State.COLLECTING_CONTENT:
            if TOOL_OPEN in acc:
                return self._up_to(TOOL_OPEN, "content", State.COLLECTING_TOOL, State.TOOL_STARTED_EATING_SPACE)
            return self._let_out("content", TOOL_OPEN)
        if self.state == State.TOOL_STARTED_EATING_SPACE:
            return self._skip_space_then(State.COLLECTING_TOOL)
        if TOOL_CLOSE in acc:
            raw, self.buffer = split_at_tag(acc, TOOL_CLOSE, True)
            self.state = State.COLLECTING_CONTENT
            return "call", raw, True
        return "", "", False

    def _thinking(self, acc: str) -> Step:
        if THINK_CLOSE in acc:
            return self._up_to(THINK_CLOSE, "thinking", State.COLLECTING_CONTENT, State.THINKING_DONE_EATING_SPACE)
        return self._let_out("thinking", THINK_CLOSE)

    def _up_to(self, tag: str, kind: str, after: State, after_space: State) -> Step:
        """The buffer before `tag` as `kind`; then `after`, by way of `after_space` while nothing but
        whitespace has come after the tag."""
        before, self.buffer = split_at_tag(self.buffer, tag, True)
        self.state = after if self.buffer else after_space
        return self._found(kind, before, True)
