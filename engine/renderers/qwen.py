"""Qwen's ChatML renderers: qwen3-coder (XML tool definitions), qwen3-vl (JSON tool definitions, images),
qwen3.5 / qwen3.8 / ornith (XML tool calls, reasoning effort for 3.8)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from engine.renderers.api import Message, Tool
from engine.renderers.base import RenderError, image_content, trim_space
from engine.renderers.gojson import go_v, marshal, marshal_spaced
from engine.thinkvalue import Think, think_level, think_on, think_valid

log = logging.getLogger(__name__)

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
VISION_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"

CALL_FORMAT_REMINDER = (
    "If you choose to call a function ONLY reply in the following format with NO suffix:\n\n<tool_call>\n"
    "<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
    "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\n"
    "multiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n"
    "- Function calls MUST follow the specified format: an inner <function=...></function> block must be "
    "nested within <tool_call></tool_call> XML tags\n"
    "- Required parameters MUST be specified\n"
    "- You may provide optional reasoning for your function call in natural language BEFORE the function "
    "call, but NOT after\n"
    "- If there is no function call available, answer the question like normal with your current knowledge "
    "and do not tell the user about function calls\n</IMPORTANT>"
)


def format_call_argument(value: Any) -> str:
    """A tool-call argument as text: strings as they are, containers as JSON, null as `null`."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    if isinstance(value, (dict, list, tuple)) or hasattr(value, "go_json"):
        return marshal(value)
    return go_v(value)


def format_definition_type(types: list[str]) -> str:
    if not types:
        return "[]"
    if len(types) == 1:
        return types[0]
    return marshal(types)


def _extra_keys(encoded: str, handled: set[str]) -> str:
    """Every JSON member of an encoded object not in `handled`, as `<key>value</key>` lines; containers as
    JSON, scalars as Go prints them. Ollama walks a Go map here, so several such keys come in no set
    order; they are written in the object's own order."""
    obj = json.loads(encoded, parse_int=float)
    out = []
    for key, value in obj.items():
        if key in handled or value is None:
            continue
        text = marshal(value) if isinstance(value, (dict, list)) else go_v(value)
        out.append(f"\n<{key}>{text}</{key}>")
    return "".join(out)


@dataclass
class Qwen3CoderRenderer:
    leading_bos = ""

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        out: list[str] = []
        system = ""
        rest: list[Message] = []
        for message in messages:
            if message.role != "system":
                rest.append(message)
            elif not system:
                system = message.content
        if system or tools:
            out.append(IM_START + "system\n")
            out.append(system or "You are Qwen, a helpful AI assistant that can interact with a computer to "
                                 "solve tasks.")
            if tools:
                out.append("\n\n# Tools\n\nYou have access to the following functions:\n\n<tools>")
                for tool in tools:
                    fn = tool.function
                    out.append("\n<function>\n<name>" + fn.name + "</name>")
                    if fn.description:
                        out.append("\n<description>" + fn.description + "</description>")
                    out.append("\n<parameters>")
                    for name, prop in (fn.parameters.properties or {}).items():
                        out.append("\n<parameter>\n<name>" + name + "</name>")
                        if prop.type:
                            out.append("\n<type>" + format_definition_type(prop.type) + "</type>")
                        if prop.description:
                            out.append("\n<description>" + prop.description + "</description>")
                        out.append(_extra_keys(marshal(prop), {"type", "description"}))
                        out.append("\n</parameter>")
                    out.append(_extra_keys(marshal(fn.parameters), {"type", "properties"}))
                    out.append("\n</parameters>\n</function>")
                out.append("\n</tools>\n\n" + CALL_FORMAT_REMINDER)
            out.append(IM_END + "\n")
        for i, message in enumerate(rest):
            last = i == len(rest) - 1
            prefill = last and message.role == "assistant"
            if message.role == "assistant":
                out.append(IM_START + "assistant\n")
                if message.tool_calls:
                    if message.content:
                        out.append(message.content + "\n")
                    for call in message.tool_calls:
                        out.append("\n<tool_call>\n<function=" + call.name + ">")
                        for name, value in call.arguments.items():
                            out.append("\n<parameter=" + name + ">\n" + format_call_argument(value) + "\n</parameter>")
                        out.append("\n</function>\n</tool_call>")
                    out.append(IM_END + "\n")
                else:
                    out.append(message.content)
                    if not prefill:
                        out.append(IM_END + "\n")
            elif message.role == "tool":
                out.append(_tool_response(rest, i, message.content))
            else:
                out.append(IM_START + message.role + "\n" + message.content + IM_END + "\n")
            if last and not prefill:
                out.append(IM_START + "assistant\n")
        return "".join(out)


def _tool_response(messages: list[Message], i: int, content: str) -> str:
    """A tool result; a run of them shares one user turn."""
    opening = IM_START + "user" if i == 0 or messages[i - 1].role != "tool" else ""
    closing = IM_END + "\n" if i == len(messages) - 1 or messages[i + 1].role != "tool" else ""
    return opening + "\n<tool_response>\n" + content + "\n</tool_response>" + closing


def _answer_turn(thinking: bool, empty_think_block: bool) -> str:
    """The assistant turn the model answers in: opened inside `<think>` when it thinks, else (for the
    renderers that do) with an empty think block."""
    if thinking:
        return IM_START + "assistant\n<think>\n"
    return IM_START + "assistant\n" + ("<think>\n\n</think>\n\n" if empty_think_block else "")


def _is_tool_response(content: str) -> bool:
    return content.startswith("<tool_response>") and content.endswith("</tool_response>")


@dataclass
class Qwen3VLRenderer:
    thinking: bool = False
    empty_think_on_no_think: bool = False
    img_tags: bool = False
    leading_bos = ""

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        out: list[str] = []
        thinking = think_on(think, default=self.thinking)
        first_system = bool(messages) and messages[0].role == "system"
        if tools:
            out.append(IM_START + "system\n")
            if first_system:
                out.append(messages[0].content + "\n\n")
            out.append("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                       "You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
            for tool in tools:
                out.append("\n" + marshal_spaced(tool))
            out.append("\n</tools>\n\nFor each function call, return a json object with function name and "
                       "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": "
                       "<function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n")
        elif first_system:
            out.append(IM_START + "system\n" + messages[0].content + IM_END + "\n")
        last_query = len(messages) - 1
        for i in range(len(messages) - 1, -1, -1):
            if messages[i].role == "user":
                content, _ = image_content(messages[i], 0, self.img_tags, VISION_PLACEHOLDER)
                if not _is_tool_response(content):
                    last_query = i
                    break
        offset = 0
        for i, message in enumerate(messages):
            content, offset = image_content(message, offset, self.img_tags, VISION_PLACEHOLDER)
            last = i == len(messages) - 1
            prefill = last and message.role == "assistant"
            if message.role == "user" or (message.role == "system" and i != 0):
                out.append(IM_START + message.role + "\n" + content + IM_END + "\n")
            elif message.role == "assistant":
                reasoning = message.thinking if thinking else ""
                if thinking and i > last_query and (last or reasoning):
                    out.append(IM_START + "assistant\n<think>\n" + reasoning.strip("\n"))
                    if content:
                        out.append("\n</think>\n\n" + content.lstrip("\n"))
                else:
                    out.append(IM_START + "assistant\n" + content)
                for j, call in enumerate(message.tool_calls):
                    if j > 0 or content:
                        out.append("\n")
                    out.append("<tool_call>\n{\"name\": \"" + call.name + "\", \"arguments\": "
                               + marshal_spaced(call.arguments) + "}\n</tool_call>")
                if not prefill:
                    out.append(IM_END + "\n")
            elif message.role == "tool":
                out.append(_tool_response(messages, i, content))
            if last and not prefill:
                out.append(_answer_turn(thinking, self.empty_think_on_no_think))
        return "".join(out)


QWEN38_XHIGH = ("Reasoning effort is set to xhigh. Please think carefully through the task, validate key "
                "assumptions, consider plausible alternatives, and prioritize correctness, consistency, and "
                "clarity in the final answer.")
QWEN38_LOW = ("Reasoning effort is set to low. Keep your thinking brief and focused, moving directly to the "
              "conclusion without unnecessary elaboration.")


def qwen38_reasoning_instructions(think: Think) -> str:
    """The system guidance for a think setting: xhigh when unset, high or max; low for low; none otherwise."""
    if think is None:
        return QWEN38_XHIGH
    if not think_valid(think):
        raise RenderError(f"invalid thinking value {go_v(think)}")
    if not think_on(think):
        return ""
    level = think_level(think)
    if level == "low":
        return QWEN38_LOW
    if level == "medium":
        return ""
    return QWEN38_XHIGH


def _split_reasoning(content: str, thinking: str, use_thinking: bool, from_tags: bool) -> tuple[str, str]:
    """(reasoning, content): the message's thinking when used, else (if allowed) the text before `</think>`."""
    if use_thinking and thinking:
        return trim_space(thinking), content
    if not from_tags:
        return "", content
    reasoning = ""
    idx = content.find("</think>")
    if idx != -1:
        before = content[:idx]
        opening = before.rfind("<think>")
        reasoning = before[opening + len("<think>"):] if opening != -1 else before
        content = content[idx + len("</think>"):].lstrip("\n")
    return trim_space(reasoning), content


def _fold_qwen38_instructions(messages: list[Message]) -> list[Message]:
    """Qwen 3.8 takes one leading system turn: every system/developer message is folded into it."""
    count = 0
    texts: list[str] = []
    for message in messages:
        if message.role not in ("system", "developer"):
            continue
        if message.images:
            raise RenderError(f"{message.role} message cannot contain images")
        count += 1
        text = trim_space(message.content)
        if text:
            texts.append(text)
    if count == 0 or (count == 1 and messages[0].role == "system"):
        return messages
    folded = [Message(role="system", content="\n\n".join(texts))]
    return folded + [m for m in messages if m.role not in ("system", "developer")]


@dataclass
class Qwen35Renderer:
    thinking: bool = False
    qwen38: bool = False
    always_think_block: bool = False  # every assistant turn carries a <think> block
    empty_think_on_no_think: bool = False
    img_tags: bool = False
    leading_bos = ""

    def _content(self, message: Message, offset: int) -> tuple[str, int]:
        return image_content(message, offset, self.img_tags, VISION_PLACEHOLDER)

    def _validate(self, messages: list[Message]) -> None:
        if not messages:
            raise RenderError("no messages provided")
        if messages[0].role == "system" and messages[0].images:
            raise RenderError("system message cannot contain images")
        for message in messages:
            if message.role == "user" and not _is_tool_response(trim_space(self._content(message, 0)[0])):
                return
        raise RenderError("no user query found in messages")

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        if self.qwen38:
            messages = _fold_qwen38_instructions(messages)
            self._validate(messages)
        out: list[str] = []
        thinking = think_on(think, default=self.thinking)
        guidance = qwen38_reasoning_instructions(think) if self.qwen38 else ""
        first_system = bool(messages) and messages[0].role == "system"
        if tools:
            out.append(IM_START + "system\n")
            if guidance:
                out.append(guidance + "\n\n")
            out.append("# Tools\n\nYou have access to the following functions:\n\n<tools>")
            for tool in tools:
                out.append("\n" + marshal_spaced(tool))
            out.append("\n</tools>\n\n" + CALL_FORMAT_REMINDER)
            if first_system:
                system = trim_space(self._content(messages[0], 0)[0])
                if system:
                    out.append("\n\n" + system)
            out.append(IM_END + "\n")
        elif first_system:
            system = trim_space(self._content(messages[0], 0)[0])
            if not self.qwen38 or system or guidance:
                out.append(IM_START + "system\n")
                if guidance:
                    out.append(guidance + ("\n\n" if system else ""))
                out.append(system + IM_END + "\n")
        elif guidance:
            out.append(IM_START + "system\n" + guidance + IM_END + "\n")

        last_query = len(messages) - 1
        for i in range(len(messages) - 1, -1, -1):
            if messages[i].role == "user" and not _is_tool_response(trim_space(self._content(messages[i], 0)[0])):
                last_query = i
                break
        offset = 0
        for i, message in enumerate(messages):
            content, offset = self._content(message, offset)
            content = trim_space(content)
            last = i == len(messages) - 1
            prefill = last and message.role == "assistant"
            if message.role == "user" or (message.role == "system" and i != 0):
                if self.qwen38 and message.role == "system":
                    log.warning("non-leading system message (renderer qwen3.8)")
                out.append(IM_START + message.role + "\n" + content + IM_END + "\n")
            elif message.role == "assistant":
                block = self.always_think_block or (thinking and i > last_query)
                reasoning, content = _split_reasoning(content, message.thinking, block, not self.qwen38)
                if block:
                    out.append(IM_START + "assistant\n<think>\n" + reasoning + "\n</think>\n\n" + content)
                else:
                    out.append(IM_START + "assistant\n" + content)
                for j, call in enumerate(message.tool_calls):
                    if j == 0:
                        if trim_space(content):
                            out.append("\n\n")
                    else:
                        out.append("\n")
                    out.append("<tool_call>\n<function=" + call.name + ">\n")
                    for name, value in call.arguments.items():
                        out.append("<parameter=" + name + ">\n" + format_call_argument(value) + "\n</parameter>\n")
                    out.append("</function>\n</tool_call>")
                if not prefill:
                    out.append(IM_END + "\n")
            elif message.role == "tool":
                out.append(_tool_response(messages, i, content))
            elif self.qwen38 and message.role != "system":
                log.warning("unexpected message role %r (renderer qwen3.8)", message.role)
                out.append(IM_START + message.role + "\n" + content + IM_END + "\n")
            if last and not prefill:
                out.append(_answer_turn(thinking, self.empty_think_on_no_think))
        return "".join(out)
