"""Showing a streamed answer as `ollama run` does: word wrap, the thinking block, tool calls, the stats block.

Word wrap follows Ollama's rule: when a character would pass five columns short of the terminal's width, the
word being written is erased and moved to a new line (a word longer than the line minus ten is broken).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, TextIO

from wcwidth import wcwidth

from modelstore import gojson
from server.cli.format import go_duration
from server.cli.progress import terminal_width

GREY = "\x1b[38;5;245m"
BOLD = "\x1b[1m"
DEFAULT = "\x1b[0m"


def _char_width(ch: str) -> int:
    return max(wcwidth(ch), 0)


def _text_width(text: str) -> int:
    return sum(_char_width(ch) for ch in text)


@dataclass
class WrapState:
    line_length: int = 0
    word: str = ""


def display(content: str, word_wrap: bool, state: WrapState, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    width = terminal_width(out)
    if not (word_wrap and width >= 10):
        out.write(state.word + content)
        state.word = ""
        out.flush()
        return
    parts: list[str] = []
    for ch in content:
        if state.line_length + 1 > width - 5:
            if _text_width(state.word) > width - 10:
                parts.append(state.word + ch)
                state.word, state.line_length = "", 0
                continue
            back = _text_width(state.word)
            if back > 0:
                parts.append(f"\x1b[{back}D")
            parts.append("\x1b[K\n" + state.word + ch)
            state.line_length = _text_width(state.word) + _char_width(ch)
            continue
        parts.append(ch)
        state.line_length += _char_width(ch)
        if _char_width(ch) >= 2 or ch in " \t":
            state.word = ""
        elif ch in "\n\r":
            state.line_length, state.word = 0, ""
        else:
            state.word += ch
    out.write("".join(parts))
    out.flush()


def thinking_opening(plain: bool) -> str:
    return "Thinking...\n" if plain else GREY + BOLD + "Thinking...\n" + DEFAULT + GREY


def thinking_closing(plain: bool) -> str:
    return "...done thinking.\n\n" if plain else GREY + BOLD + "...done thinking.\n\n" + DEFAULT


def render_tool_calls(calls: list[dict[str, Any]], plain: bool) -> str:
    explain, values = ("", "") if plain else (GREY + BOLD, DEFAULT)
    lines = []
    for call in calls:
        function = call.get("function") or {}
        arguments = gojson.dumps(function.get("arguments") or {}, sort_keys=True)
        lines.append(f"  Model called a non-existent function '{values}{function.get('name', '')}{explain}()' "
                     f"with arguments: {values}{arguments}{explain}")
    return explain + "\n".join(lines) + ("" if plain else DEFAULT)


def summary(metrics: dict[str, Any], out: TextIO | None = None) -> None:
    """The `--verbose` block, on stderr."""
    out = out or sys.stderr
    total, load = int(metrics.get("total_duration") or 0), int(metrics.get("load_duration") or 0)
    prompt_count = int(metrics.get("prompt_eval_count") or 0)
    prompt_time = int(metrics.get("prompt_eval_duration") or 0)
    count, time = int(metrics.get("eval_count") or 0), int(metrics.get("eval_duration") or 0)
    if total > 0:
        out.write(f"total duration:       {go_duration(total)}\n")
    if load > 0:
        out.write(f"load duration:        {go_duration(load)}\n")
    if prompt_count > 0:
        out.write(f"prompt eval count:    {prompt_count} token(s)\n")
    if prompt_time > 0:
        out.write(f"prompt eval duration: {go_duration(prompt_time)}\n")
        out.write(f"prompt eval rate:     {prompt_count / (prompt_time / 1e9):.2f} tokens/s\n")
    if count > 0:
        out.write(f"eval count:           {count} token(s)\n")
    if time > 0:
        out.write(f"eval duration:        {go_duration(time)}\n")
        out.write(f"eval rate:            {count / (time / 1e9):.2f} tokens/s\n")
    out.flush()


class AnswerView:
    """Prints one streamed answer: its thinking (unless hidden), its content, its tool calls."""

    def __init__(self, word_wrap: bool, hide_thinking: bool, plain: bool) -> None:
        self.word_wrap, self.hide_thinking, self.plain = word_wrap, hide_thinking, plain
        self.state = WrapState()
        self.thinking = ""
        self.content = ""
        self.open = False
        self.closed = False
        self.shown_anything = False

    def show(self, thinking: str, content: str, tool_calls: list[dict[str, Any]] | None,
             tool_calls_first: bool) -> None:
        if thinking and not self.hide_thinking:
            if not self.open:
                sys.stdout.write(thinking_opening(self.plain))
                self.open, self.closed = True, False
            self.thinking += thinking
            display(thinking, self.word_wrap, self.state)
        if self.open and not self.closed and (content or tool_calls):
            if not self.thinking.endswith("\n"):
                sys.stdout.write("\n")
            sys.stdout.write(thinking_closing(self.plain))
            self.open, self.closed = False, True
            self.state = WrapState()
        self.content += content
        if tool_calls and tool_calls_first:
            sys.stdout.write(render_tool_calls(tool_calls, self.plain))
        display(content, self.word_wrap, self.state)
        if tool_calls and not tool_calls_first:
            sys.stdout.write(render_tool_calls(tool_calls, self.plain))
        self.shown_anything = self.shown_anything or bool(thinking or content or tool_calls)
        sys.stdout.flush()
