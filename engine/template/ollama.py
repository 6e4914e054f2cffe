"""Ollama's prompt templates (template/template.go): parsing with the appended `{{ .Response }}`, Vars,
message collation, and the three execution modes (suffix, messages, legacy turns)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from engine.template.apitypes import TemplateMessage, TemplateTools
from engine.template.exec import execute
from engine.template.funcs import FUNCTION_NAMES
from engine.template.gotypes import NIL_SLICE
from engine.template.lexer import LineIndex
from engine.template.nodes import ActionNode, CommandNode, FieldNode, ListNode, PipeNode
from engine.template.parser import parse
from engine.template.tree import cut_after_response, identifiers

DEFAULT_TEMPLATE = "{{ .Prompt }}"

_THINK_LEVELS = frozenset({"low", "medium", "high", "max"})


@dataclass
class Values:
    """What a prompt is rendered from (Ollama's template.Values), in Ollama API JSON shapes."""

    messages: list[dict] = field(default_factory=list)
    tools: list[dict] = field(default_factory=list)
    prompt: str = ""
    suffix: str = ""
    think: bool | None = None
    think_level: str = ""  # "", "low", "medium", "high" or "max"
    force_legacy: bool = False  # render with .System/.Prompt/.Response even if the template uses .Messages

    def think_data(self) -> dict[str, Any]:
        """.Think, .ThinkLevel and .IsThinkSet: a bare `think: true` reads as level "medium"."""
        level = self.think_level or ("medium" if self.think else "")
        return {
            "Think": bool(self.think) or self.think_level in _THINK_LEVELS,
            "ThinkLevel": level,
            "IsThinkSet": self.think is not None or bool(self.think_level),
        }


def collate(messages: list[dict]) -> tuple[str, list[dict]]:
    """Ollama's collate: all system contents joined by blank lines, and the messages with consecutive
    same-role messages merged (contents joined by a blank line; tool messages are never merged).
    The caller's dicts are left untouched."""
    system: list[str] = []
    collated: list[dict] = []
    for message in messages:
        role = message.get("role") or ""
        content = message.get("content") or ""
        if role != role.lower():  # Ollama lower-cases roles when decoding a request
            role = role.lower()
            message = {**message, "role": role}
        if role == "system":
            system.append(content)
        if collated and collated[-1].get("role") == role and role != "tool":
            last = collated[-1]
            collated[-1] = {**last, "content": (last.get("content") or "") + "\n\n" + content}
        else:
            collated.append(message)
    return "\n\n".join(system), collated


def _response_action() -> ActionNode:
    return ActionNode(0, PipeNode(0, cmds=[CommandNode(0, [FieldNode(0, ("Response",))])]))


class Template:
    """A parsed Ollama prompt template. `root` is the Go-style parse tree (see nodes.py)."""

    text: str
    root: ListNode
    defines: dict[str, ListNode]

    def __init__(self, text: str):
        parsed = parse(text, FUNCTION_NAMES)
        self.text = text
        self.root = parsed.root
        self.defines = parsed.defines
        self._lines = LineIndex(text)
        names = self._identifiers()
        if "messages" not in names and "response" not in names:
            self.root.nodes.append(_response_action())  # the model's reply follows the prompt
            names.add("response")
        self._vars = sorted(names)
        self._final_turn: ListNode | None = None

    @classmethod
    def parse(cls, text: str) -> Template:
        """Parse like Ollama's template.Parse; raises TemplateError. Results are cached by source text."""
        return _parse_cached(text)

    def _identifiers(self) -> set[str]:
        trees = [self.root, *self.defines.values()]
        return {name.lower() for tree in trees for name in identifiers(tree)}

    def vars(self) -> list[str]:
        """The lower-cased identifiers the template references, sorted (Ollama's Vars)."""
        return list(self._vars)

    def uses(self, name: str) -> bool:
        """Does the template reference `.<name>` (case-insensitive)?"""
        return name.lower() in self._vars

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Template({self.text!r})"

    def _run(self, root: ListNode, data: dict[str, Any], zero_missing_keys: bool = True) -> str:
        return execute(root, data, defines=self.defines, lines=self._lines,
                       zero_missing_keys=zero_missing_keys)

    def execute(self, values: Values) -> str:
        """Render a prompt, choosing the suffix, messages or legacy mode as Ollama's Template.Execute does."""
        think = values.think_data()
        if values.prompt and values.suffix:
            data = {"Prompt": values.prompt, "Suffix": values.suffix, "Response": "", **think}
            return self._run(self.root, data)
        system, messages = collate(values.messages)
        if not values.force_legacy and "messages" in self._vars:
            return self._run(self.root, {
                "System": system,
                "Messages": [TemplateMessage.from_api(m) for m in messages] or NIL_SLICE,
                "Tools": TemplateTools.from_api(values.tools),
                "Response": "",
                **think,
            })
        return self._execute_legacy(messages, think)

    def _execute_legacy(self, messages: list[dict], think: dict[str, Any]) -> str:
        """One full rendering per completed turn, then the open turn rendered only up to `.Response`."""
        out: list[str] = []
        turn = {"System": "", "Prompt": "", "Response": ""}

        def flush() -> None:
            out.append(self._run(self.root, {**turn, **think}))
            turn.update(System="", Prompt="", Response="")

        for message in messages:
            role, content = message.get("role"), message.get("content") or ""
            if role == "system":
                if turn["Prompt"] or turn["Response"]:
                    flush()
                turn["System"] = content
            elif role == "user":
                if turn["Response"]:
                    flush()
                turn["Prompt"] = content
            elif role == "assistant":
                turn["Response"] = content
        if self._final_turn is None:
            self._final_turn = cut_after_response(self.root)
        # Ollama runs the cut tree as a fresh template, without the missingkey=zero option
        out.append(self._run(self._final_turn, {**turn, **think}, zero_missing_keys=False))
        return "".join(out)


@functools.lru_cache(maxsize=256)
def _parse_cached(text: str) -> Template:
    return Template(text)
