"""Poolside's Laguna renderers: laguna (v2 template) and poolside-v1 (v8 template)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.renderers.api import Message, Tool
from engine.renderers.base import GO_SPACE, trim_space
from engine.renderers.gojson import marshal_spaced
from engine.renderers.qwen import format_call_argument
from engine.thinkvalue import Think, think_on

BOS = "〈|EOS|〉"
DEFAULT_SYSTEM = ("You are a helpful, conversationally-fluent assistant made by Poolside. You are here to be "
                  "helpful to users through natural language conversations.")
_TOOLS_INTRO = ("You may call functions to assist with the user query.\nAll available function signatures are "
                "listed below:\n<available_tools>\n")


def _argument(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    try:
        return marshal_spaced(value)
    except ValueError:
        return format_call_argument(value)


def _v2_assistant_content(content: str, reasoning: str) -> tuple[str, str]:
    """(content, reasoning): reasoning taken from a `…</think>` prefix when the message has none."""
    parts = content.split("</think>")
    if len(parts) == 1:
        return content, reasoning
    if not reasoning:
        before = parts[0].rstrip("\n")
        opening = before.rfind("<think>")
        if opening >= 0:
            before = before[opening + len("<think>"):]
        reasoning = before.lstrip("\n")
    return parts[-1].lstrip("\n"), reasoning


def _system(messages: list[Message]) -> tuple[str, bool]:
    if messages and messages[0].role == "system":
        return messages[0].content, True
    return DEFAULT_SYSTEM, False


@dataclass
class LagunaRenderer:
    leading_bos = BOS

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        out = [BOS]
        thinking = think_on(think)
        system, first_is_system = _system(messages)
        if trim_space(system) or tools:
            out.append("<system>\n")
            if trim_space(system):
                out.append("\n" + system.rstrip(GO_SPACE))
            if tools:
                out.append("\n\n### Tools\n\n" + _TOOLS_INTRO)
                out += [marshal_spaced(t) + "\n" for t in tools]
                out.append("</available_tools>\n\n")
                if thinking:
                    out.append("Wrap your thinking in '<think>', '</think>' tags, followed by a function call. For "
                               "each function call, return an unescaped XML-like object with function name and "
                               "arguments within '<tool_call>' and '</tool_call>' tags, like here:\n"
                               "<think> your thoughts here </think>\n")
                else:
                    out.append("For each function call, return an unescaped XML-like object with function name and "
                               "arguments within '<tool_call>' and '</tool_call>' tags, like here:\n")
                out.append("<tool_call>function-name\n<arg_key>argument-key</arg_key>\n"
                           "<arg_value>value-of-argument-key</arg_value>\n</tool_call>")
            out.append("\n</system>\n")
        for i, message in enumerate(messages):
            if i == 0 and first_is_system:
                continue
            if message.role == "user":
                out.append("<user>\n" + message.content + "\n</user>\n")
            elif message.role == "assistant":
                content, reasoning = _v2_assistant_content(message.content, message.thinking)
                prefill = i == len(messages) - 1 and bool(trim_space(content) or trim_space(reasoning)
                                                          or message.tool_calls)
                out.append("<assistant>\n")
                reasoning = trim_space(reasoning)
                out.append("<think>\n" + reasoning + "\n</think>\n" if reasoning else "</think>\n")
                if trim_space(content):
                    out.append(trim_space(content) + "\n")
                for call in message.tool_calls:
                    out.append("<tool_call>" + call.name + "\n")
                    out += [f"<arg_key>{k}</arg_key>\n<arg_value>{_argument(v)}</arg_value>\n"
                            for k, v in call.arguments.items()]
                    out.append("</tool_call>\n")
                if not prefill:
                    out.append("</assistant>\n")
            elif message.role == "tool":
                out.append("<tool_response>\n" + message.content + "\n</tool_response>\n")
            elif message.role == "system":
                out.append("<system>\n" + message.content + "\n</system>\n")
        if not messages or messages[-1].role != "assistant":
            out.append("<assistant>\n" + ("<think>" if thinking else "</think>"))
        return "".join(out)


@dataclass
class LagunaV8Renderer:
    leading_bos = BOS

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        out = [BOS]
        thinking = think_on(think)
        system, first_is_system = _system(messages)
        has_system = bool(trim_space(system))
        if has_system or tools or thinking:
            out.append("<system>")
            if has_system:
                out.append(system.rstrip(GO_SPACE))
                if tools:
                    out.append("\n\n")
            if tools:
                out.append("### Tools\n\n" + _TOOLS_INTRO)
                out += [marshal_spaced(t) + "\n" for t in tools]
                out.append("</available_tools>")
            out.append("</system>\n")
        for i, message in enumerate(messages):
            if i == 0 and first_is_system:
                continue
            if message.role == "user":
                out.append("<user>" + message.content + "</user>\n")
            elif message.role == "assistant":
                out.append("<assistant>" + ("<think>" + message.thinking + "</think>" if thinking else "</think>"))
                out.append(message.content)
                for call in message.tool_calls:
                    out.append("<tool_call>" + call.name)
                    out += [f"<arg_key>{k}</arg_key><arg_value>{_argument(v)}</arg_value>"
                            for k, v in call.arguments.items()]
                    out.append("</tool_call>")
                out.append("</assistant>\n")
            elif message.role == "tool":
                out.append("<tool_response>" + message.content + "</tool_response>\n")
            elif message.role == "system":
                out.append("<system>" + message.content + "</system>\n")
        out.append("<assistant>" + ("<think>" if thinking else "</think>"))
        return "".join(out)
