"""Nemotron 3 Nano renderers: nemotron-3-nano (`/think` and `/no_think` toggles) and nemotron-3.5-nano."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.renderers.api import Message, Properties, Tool, ToolCall, ToolParameters, ToolProperty
from engine.renderers.base import tag_images, trim_space
from engine.renderers.gojson import go_v, json_float, marshal, strconv_quote
from engine.renderers.qwen import CALL_FORMAT_REMINDER
from engine.thinkvalue import Think, think_level, think_on


def python_json(value: Any) -> str:
    """JSON the way the template's tojson prints it: `", "` and `": "` separators, Go-quoted strings,
    plain maps with sorted keys, property maps and schemas in their own order."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return strconv_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(python_json(v) for v in value) + "]"
    if isinstance(value, Properties):
        return "{" + ", ".join(f"{strconv_quote(k)}: {python_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{strconv_quote(str(k))}: {python_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, ToolProperty):
        parts = []
        if value.any_of:
            parts.append('"anyOf": ' + python_json(value.any_of))
        if value.type:
            parts.append('"type": ' + python_json(value.type_json()))
        if value.items is not None:
            parts.append('"items": ' + python_json(value.items))
        if value.description:
            parts.append('"description": ' + python_json(value.description))
        if value.enum:
            parts.append('"enum": ' + python_json(value.enum))
        if value.properties is not None:
            parts.append('"properties": ' + python_json(value.properties))
        if value.required:
            parts.append('"required": ' + python_json(value.required))
        return "{" + ", ".join(parts) + "}"
    return marshal(value)


def template_value(value: Any) -> str:
    """A value as the template prints it: containers as JSON, scalars as Python's str()."""
    if value is None:
        return "None"
    encoded = marshal(value)
    if encoded[:1] in ("{", "["):
        return python_json(value)
    return {"null": "None", "true": "True", "false": "False"}.get(encoded) or go_v(value)


def strip_think_toggles(text: str) -> str:
    """`/think` and `/no_think` removed, a real `</think>` kept."""
    text = text.replace("</think>", "<_end_think>").replace("/think", "").replace("/no_think", "")
    return text.replace("<_end_think>", "</think>")


def _property_type(types: list[str]) -> str:
    if len(types) == 1:
        return types[0]
    return "[" + ", ".join(f"'{t}'" for t in types) + "]"


def _tools(tools: list[Tool]) -> str:
    out = ["# Tools\n\nYou have access to the following functions:\n\n<tools>"]
    for tool in tools:
        fn = tool.function
        out.append("\n<function>\n<name>" + fn.name + "</name>")
        if fn.description:
            out.append("\n<description>" + trim_space(fn.description) + "</description>")
        out.append("\n<parameters>")
        for name, prop in (fn.parameters.properties or {}).items():
            out.append("\n<parameter>\n<name>" + name + "</name>")
            if prop.type:
                out.append("\n<type>" + _property_type(prop.type) + "</type>")
            if prop.description:
                out.append("\n<description>" + trim_space(prop.description) + "</description>")
            if prop.enum:
                out.append("\n<enum>" + python_json(prop.enum) + "</enum>")
            if prop.any_of:
                out.append("\n<anyOf>" + python_json(prop.any_of) + "</anyOf>")
            if prop.items is not None:
                out.append("\n<items>" + python_json(prop.items) + "</items>")
            if prop.properties is not None:
                out.append("\n<properties>" + python_json(prop.properties) + "</properties>")
            if prop.required:
                out.append("\n<required>" + python_json(prop.required) + "</required>")
            out.append("\n</parameter>")
        out.append(_parameter_extras(fn.parameters))
        if fn.parameters.required:
            out.append("\n<required>" + python_json(fn.parameters.required) + "</required>")
        out.append("\n</parameters>\n</function>")
    out.append("\n</tools>\n\n" + CALL_FORMAT_REMINDER)
    return "".join(out)


def _parameter_extras(params: ToolParameters) -> str:
    out = ""
    if params.defs is not None:
        out += "\n<$defs>" + template_value(params.defs) + "</$defs>"
    if params.items is not None:
        out += "\n<items>" + template_value(params.items) + "</items>"
    return out


def _calls(calls: list[ToolCall]) -> str:
    out = []
    for call in calls:
        out.append("<tool_call>\n<function=" + call.name + ">\n")
        out += [f"<parameter={k}>\n{template_value(v)}\n</parameter>\n" for k, v in call.arguments.items()]
        out.append("</function>\n</tool_call>\n")
    return "".join(out)


@dataclass
class Nemotron3NanoRenderer:
    v35: bool = False  # Nemotron 3.5's layout
    leading_bos = ""

    def _thinking(self, messages: list[Message], think: Think) -> bool:
        thinking = think_on(think, default=True)
        if self.v35:
            return thinking
        for message in messages:
            if message.role not in ("user", "system"):
                continue
            if "/think" in message.content.replace("</think>", ""):
                thinking = True
            elif "/no_think" in message.content:
                thinking = False
        return thinking

    def _with_thinking(self, message: Message) -> str:
        content = message.content
        if message.thinking:
            if self.v35:
                return "<think>\n" + message.thinking + "</think>" + content
            return "<think>\n" + message.thinking + "\n</think>\n" + content
        if "<think>" not in content and "</think>" not in content:
            return "<think></think>" + content
        return content

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        thinking = self._thinking(messages, think)
        medium = self.v35 and isinstance(think, str) and think_level(think) == "medium"
        system = ""
        rest = messages
        if messages and messages[0].role == "system":
            system = messages[0].content if self.v35 else strip_think_toggles(messages[0].content)
            rest = messages[1:]
        last_user = max((i for i, m in enumerate(rest) if m.role == "user"), default=-1)
        out = ["<|im_start|>system\n" + system]
        if tools:
            if system:
                out.append("\n\n")
            out.append(_tools(tools))
        out.append("<|im_end|>\n")
        offset = 0
        for i, message in enumerate(rest):
            if message.role == "assistant":
                content = self._with_thinking(message)
                truncate = i < last_user
                out.append("<|im_start|>assistant\n")
                if message.tool_calls:
                    out.append(_tool_call_content(content, truncate) + _calls(message.tool_calls))
                else:
                    out.append(_assistant_content(content, truncate))
                out.append("<|im_end|>\n")
            elif message.role in ("user", "system"):
                content, offset = tag_images(message.content, len(message.images), offset)
                if not self.v35:
                    content = trim_space(strip_think_toggles(content))
                elif message.role == "user" and i == last_user and medium:
                    content += "\n\n{reasoning effort: efficient}"
                out.append("<|im_start|>" + message.role + "\n" + content + "<|im_end|>\n")
            elif message.role == "tool":
                content, offset = tag_images(message.content, len(message.images), offset)
                if i > 0 and rest[i - 1].role != "tool":
                    out.append("<|im_start|>user\n")
                out.append("<tool_response>\n" + content + "\n</tool_response>\n")
                if not (i + 1 < len(rest) and rest[i + 1].role == "tool"):
                    out.append("<|im_end|>\n")
            else:
                out.append("<|im_start|>" + message.role + "\n" + message.content + "<|im_end|>\n")
        out.append("<|im_start|>assistant\n<think>\n" if thinking else "<|im_start|>assistant\n<think></think>")
        return "".join(out)


def _assistant_content(content: str, truncate: bool) -> str:
    if truncate and "<think>" in content and "</think>" in content:
        content = "<think></think>" + content.split("</think>")[-1]
    return trim_space(content)


def _tool_call_content(content: str, truncate: bool) -> str:
    if not trim_space(content):
        return "<think></think>"
    if not truncate:
        return trim_space(content) + "\n"
    if "</think>" in content:
        content = content.split("</think>")[-1]
    elif "<think>" in content:
        content = content.split("<think>")[0]
    return trim_space("<think></think>" + trim_space(content)) + "\n"
