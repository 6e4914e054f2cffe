"""DeepSeek-style renderers: deepseek3.1 and cogito (full-width `<｜User｜>` markers)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.renderers.api import Message, Tool
from engine.renderers.gojson import indent, marshal
from engine.thinkvalue import Think, think_on

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
CALLS_BEGIN = "<｜tool▁calls▁begin｜>"
CALLS_END = "<｜tool▁calls▁end｜>"
CALL_BEGIN = "<｜tool▁call▁begin｜>"
CALL_END = "<｜tool▁call▁end｜>"
SEP = "<｜tool▁sep｜>"
OUTPUT_BEGIN = "<｜tool▁output▁begin｜>"
OUTPUT_END = "<｜tool▁output▁end｜>"

COGITO_PROMPT = ("You are Cogito, an AI assistant created by Deep Cogito, which is an AI research lab based in "
                 "San Francisco.")


@dataclass
class CogitoRenderer:
    thinking: bool = True
    leading_bos = BOS

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        thinking = self.thinking and think_on(think)
        system = ""
        rest = messages
        if messages and messages[0].role == "system":
            system, rest = messages[0].content, messages[1:]
        if thinking:
            prompt = "Enable deep thinking subroutine.\n\n" + COGITO_PROMPT
            if system:
                prompt += "\n\n" + system + "\n\n"
        else:
            prompt = COGITO_PROMPT + ("\n\n" + system if system else "")
        if tools:
            prompt += "\nYou have the following functions available:\n"
            for tool in tools:
                prompt += "```json\n" + indent(marshal(tool), "", "    ") + "\n```\n"
        out = [BOS + prompt]
        outputs_open = False
        last_user = False
        for i, message in enumerate(rest):
            if message.role == "user":
                last_user = True
                out.append(USER + message.content + ASSISTANT)
            elif message.role == "assistant":
                last_user = False
                if message.tool_calls:
                    out.append(message.content + CALLS_BEGIN)
                    for j, call in enumerate(message.tool_calls):
                        out.append(CALL_BEGIN + "function" + SEP + call.name + "\n```json\n"
                                   + marshal(call.arguments) + "\n```" + CALL_END)
                        if j < len(message.tool_calls) - 1:
                            out.append("\n")
                    out.append(CALLS_END + EOS)
                else:
                    out.append(message.content + EOS)
            elif message.role == "tool":
                last_user = False
                if not outputs_open:
                    out.append("<｜tool▁outputs▁begin｜>")
                    outputs_open = True
                out.append(OUTPUT_BEGIN + message.content + OUTPUT_END)
                if i + 1 < len(rest) and rest[i + 1].role == "tool":
                    out.append("\n")
                else:
                    out.append("<｜tool▁outputs▁end｜>")
                    outputs_open = False
        if outputs_open:
            out.append("<｜tool▁outputs▁end｜>")
        if not last_user:
            out.append(ASSISTANT)
        if thinking:
            out.append("<think>\n")
        return "".join(out)


@dataclass
class DeepSeek3Renderer:
    thinking: bool = True
    leading_bos = BOS

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        thinking = self.thinking and think_on(think)
        out = [BOS, "\n\n".join(m.content for m in messages if m.role == "system")]
        if tools:
            out.append("\n\n## Tools\nYou have access to the following tools:\n")
            for tool in tools:
                out.append("\n### " + tool.function.name + "\nDescription: " + tool.function.description)
                out.append("\n\nParameters: " + marshal(tool.function.parameters) + "\n")
            out.append("\nIMPORTANT: ALWAYS adhere to this exact format for tool use:\n"
                       + CALLS_BEGIN + CALL_BEGIN + "tool_call_name" + SEP + "tool_call_arguments" + CALL_END
                       + "{{additional_tool_calls}}" + CALLS_END + "\n\n"
                       "Where:\n\n"
                       "- `tool_call_name` must be an exact match to one of the available tools\n"
                       "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters "
                       "Schema\n"
                       "- For multiple tool calls, chain them directly without separators or spaces\n")
        after_tool = False
        last_user = False
        last_user_index = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
        for i, message in enumerate(messages):
            if message.role == "user":
                after_tool = False
                last_user = True
                out.append(USER + message.content)
            elif message.role == "assistant":
                if message.tool_calls:
                    if last_user:
                        out.append(ASSISTANT + "</think>")
                    last_user = after_tool = False
                    out.append(message.content + CALLS_BEGIN)
                    for call in message.tool_calls:
                        out.append(CALL_BEGIN + call.name + SEP + marshal(call.arguments) + CALL_END)
                    out.append(CALLS_END + EOS)
                    continue
                if last_user:
                    current = i > last_user_index
                    out.append(ASSISTANT + ("<think>" if message.thinking and thinking and current else "</think>"))
                last_user = False
                content = message.content
                if after_tool:
                    after_tool = False
                elif "</think>" in content:
                    content = content.split("</think>", 1)[1]
                out.append(content + EOS)
            elif message.role == "tool":
                last_user = False
                after_tool = True
                out.append(OUTPUT_BEGIN + message.content + OUTPUT_END)
        if last_user and not after_tool:
            out.append(ASSISTANT + ("<think>" if thinking else "</think>"))
        return "".join(out)
