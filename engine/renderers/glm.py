"""GLM renderers: glm-4.7 and glm-ocr (`[gMASK]<sop>`, `<arg_key>`/`<arg_value>` tool calls)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.renderers.api import Arguments, Message, Tool
from engine.renderers.base import image_content, trim_space
from engine.renderers.gojson import add_spaces, go_v, marshal
from engine.thinkvalue import Think, think_on

_TOOLS_INTRO = ("<|system|>\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n")
_TOOLS_OUTRO = ("</tools>\n\nFor each function call, output the function name and arguments within the following "
                "XML format:\n<tool_call>{function-name}<arg_key>{arg-key-1}</arg_key><arg_value>{arg-value-1}"
                "</arg_value><arg_key>{arg-key-2}</arg_key><arg_value>{arg-value-2}</arg_value>...</tool_call>")


def _tools_section(tools: list[Tool]) -> str:
    return _TOOLS_INTRO + "".join(add_spaces(marshal(tool)) + "\n" for tool in tools) + _TOOLS_OUTRO


def _argument(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return marshal(value)
    except ValueError:
        return go_v(value)


def _arguments(arguments: Arguments) -> str:
    return "".join(f"<arg_key>{key}</arg_key><arg_value>{_argument(value)}</arg_value>"
                   for key, value in arguments.items())


@dataclass
class GLM47Renderer:
    leading_bos = ""

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        out = ["[gMASK]<sop>"]
        if tools:
            out.append(_tools_section(tools))
        thinking = think_on(think, default=True)
        for i, message in enumerate(messages):
            if message.role == "user":
                out.append("<|user|>" + message.content)
            elif message.role == "assistant":
                out.append("<|assistant|>")
                out.append(f"<think>{message.thinking}</think>" if message.thinking else "</think>")
                out.append(message.content)
                for call in message.tool_calls:
                    out.append("<tool_call>" + call.name + _arguments(call.arguments) + "</tool_call>")
            elif message.role == "tool":
                if i == 0 or messages[i - 1].role != "tool":
                    out.append("<|observation|>")
                out.append("<tool_response>" + message.content + "</tool_response>")
            elif message.role == "system":
                out.append("<|system|>" + message.content)
        out.append("<|assistant|>" + ("<think>" if thinking else "</think>"))
        return "".join(out)


@dataclass
class GlmOcrRenderer:
    img_tags: bool = False
    leading_bos = ""

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        out = ["[gMASK]<sop>"]
        if tools:
            out.append(_tools_section(tools))
        no_think = not think_on(think, default=True)
        offset = 0
        for i, message in enumerate(messages):
            if message.role == "user":
                content, offset = image_content(message, offset, self.img_tags)
                out.append("<|user|>\n" + content)
                if no_think and not message.content.endswith("/nothink"):
                    out.append("/nothink")
            elif message.role == "assistant":
                out.append("<|assistant|>\n")
                out.append(f"<think>{trim_space(message.thinking)}</think>" if message.thinking else "<think></think>")
                if message.content:
                    out.append("\n" + trim_space(message.content))
                for call in message.tool_calls:
                    out.append("\n<tool_call>" + call.name + _arguments(call.arguments) + "</tool_call>")
                out.append("\n")
            elif message.role == "tool":
                if i == 0 or messages[i - 1].role != "tool":
                    out.append("<|observation|>")
                content, offset = image_content(message, offset, self.img_tags)
                out.append("\n<tool_response>\n" + content + "\n</tool_response>\n")
            elif message.role == "system":
                out.append("<|system|>\n" + message.content + "\n")
        out.append("<|assistant|>\n" + ("<think></think>\n" if no_think else ""))
        return "".join(out)
