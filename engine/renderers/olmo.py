"""Olmo 3 renderers: olmo3 / olmo3.1 (functions in the system turn) and the Think variants."""

from __future__ import annotations

from dataclasses import dataclass

from engine.renderers.api import Message, Tool
from engine.renderers.gojson import marshal, marshal_spaced
from engine.thinkvalue import Think

OLMO3_SYSTEM = "You are a helpful function-calling AI assistant. "
OLMO31_SYSTEM = ("You are Olmo, a helpful AI assistant built by Ai2. Your date cutoff is December 2024, and your "
                 "model weights are available at https://huggingface.co/allenai. ")
NO_FUNCTIONS = "You do not currently have access to any functions. "
WITH_FUNCTIONS = ("You are provided with function signatures within <functions></functions> XML tags. You may "
                  "call one or more functions to assist with the user query. Output any function calls within "
                  "<function_calls></function_calls> XML tags. Do not make assumptions about what values to "
                  "plug into functions.")


def _first_system(messages: list[Message]) -> Message | None:
    return next((m for m in messages if m.role == "system"), None)


@dataclass
class Olmo3Renderer:
    extended_system: bool = False  # olmo3.1's default system message
    leading_bos = ""

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        system = _first_system(messages)
        rest = [m for m in messages if m.role != "system"]
        out = ["<|im_start|>system\n"]
        if system is not None:
            out.append(system.content)
            if tools:
                out.append("<functions>" + marshal_spaced(tools) + "</functions>")
        else:
            out.append(OLMO31_SYSTEM if self.extended_system else OLMO3_SYSTEM)
            if tools:
                out.append(WITH_FUNCTIONS + "<functions>" + marshal_spaced(tools) + "</functions>")
            else:
                out.append(NO_FUNCTIONS + "<functions></functions>")
        out.append("<|im_end|>\n")
        for i, message in enumerate(rest):
            last = i == len(rest) - 1
            if message.role == "user":
                out.append("<|im_start|>user\n" + message.content + "<|im_end|>\n")
            elif message.role == "assistant":
                out.append("<|im_start|>assistant\n" + message.content)
                if message.tool_calls:
                    out.append("<function_calls>")
                    calls = []
                    for call in message.tool_calls:
                        arguments = ", ".join(f"{key}={marshal(call.arguments[key])}" for key in sorted(call.arguments))
                        calls.append(f"{call.name}({arguments})")
                    out.append("\n".join(calls) + "</function_calls>")
                if not last or message.tool_calls:
                    out.append("<|im_end|>\n")
            elif message.role == "tool":
                out.append("<|im_start|>environment\n" + message.content + "<|im_end|>\n")
        final = rest[-1] if rest else None
        if not (final is not None and final.role == "assistant" and not final.tool_calls and final.content):
            out.append("<|im_start|>assistant\n")
        return "".join(out)


THINK_32B_SYSTEM = "You are a helpful AI assistant."
THINK_SYSTEM = ("You are Olmo, a helpful AI assistant built by Ai2. Your date cutoff is December 2024, and your "
                "model weights are available at https://huggingface.co/allenai.")


@dataclass
class Olmo3ThinkRenderer:
    model_32b: bool = False  # Olmo-3-32B-Think's default system message
    leading_bos = ""

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        system = _first_system(messages)
        out = ["<|im_start|>system\n"]
        if system is not None:
            out.append(system.content + " You do not currently have access to any functions. <functions></functions>")
        else:
            out.append(THINK_32B_SYSTEM if self.model_32b else THINK_SYSTEM)
        out.append("<|im_end|>\n")
        for message in messages:
            if message.role in ("user", "assistant"):
                out.append(f"<|im_start|>{message.role}\n{message.content}<|im_end|>\n")
        out.append("<|im_start|>assistant\n<think>")
        return "".join(out)
