"""LFM2 renderers (Liquid): lfm2 and lfm2-thinking, ChatML with `<|tool_call_start|>[f(a=1)]` calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.renderers.api import Message, Tool, ToolCall
from engine.renderers.base import tag_images, trim_space
from engine.renderers.gojson import hf_tojson
from engine.thinkvalue import Think, think_on

BOS = "<|startoftext|>"
CALL_START = "<|tool_call_start|>"
CALL_END = "<|tool_call_end|>"
RESPONSE_START = "<|tool_response_start|>"
RESPONSE_END = "<|tool_response_end|>"


def _tool_schema(tool: Tool) -> Any:
    return tool.function if tool.function.name else tool


def _calls(calls: list[ToolCall]) -> str:
    rendered = []
    for call in calls:
        arguments = ",".join(f"{key}={hf_tojson(call.arguments[key])}" for key in sorted(call.arguments))
        rendered.append(f"{call.name}({arguments})")
    return CALL_START + "[" + ",".join(rendered) + "]" + CALL_END


@dataclass
class LFM2Renderer:
    thinking: bool = False
    img_tags: bool = False
    leading_bos = BOS

    def _content(self, message: Message, offset: int) -> str:
        content = message.content
        if not message.images:
            return content
        if self.img_tags:
            return tag_images(content, len(message.images), offset)[0]
        if "<image>" in content:
            return content
        return "<image>" * len(message.images) + content

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        out = [BOS]
        start = 1 if messages and messages[0].role == "system" else 0
        system = messages[0].content if start else ""
        if tools:
            if system:
                system += "\n"
            system += "List of tools: <|tool_list_start|>[" + ", ".join(hf_tojson(_tool_schema(t)) for t in tools)
            system += "]<|tool_list_end|>"
        if system:
            out.append("<|im_start|>system\n" + system + "<|im_end|>\n")
        keep_past_thinking = self.thinking and think_on(think)
        last_assistant = max((i for i in range(start, len(messages)) if messages[i].role == "assistant"), default=-1)
        offset = sum(len(m.images) for m in messages[:start])
        for i in range(start, len(messages)):
            message = messages[i]
            prefill = i == len(messages) - 1 and message.role == "assistant"
            out.append("<|im_start|>" + message.role + "\n")
            content = self._content(message, offset)
            offset += len(message.images)
            if message.role == "assistant" and message.tool_calls and CALL_START not in content:
                content = _calls(message.tool_calls) + ("" if not trim_space(content) else "\n") + content
            if self.thinking and message.role == "assistant" and message.thinking and "</think>" not in content:
                content = "<think>" + message.thinking + "</think>" + content
            if message.role == "assistant" and not keep_past_thinking and i != last_assistant:
                idx = content.rfind("</think>")
                if idx >= 0:
                    content = trim_space(content[idx + len("</think>"):])
            if message.role == "tool" and RESPONSE_START not in content:
                content = RESPONSE_START + content + RESPONSE_END
            out.append(content)
            if not prefill:
                out.append("<|im_end|>\n")
        if not (messages and messages[-1].role == "assistant"):
            out.append("<|im_start|>assistant\n")
        return "".join(out)
