"""Cohere's renderer (North / Command A 2026): `<|START_TEXT|>` bodies, `<|START_ACTION|>` tool calls,
`<|START_TOOL_RESULT|>` results, tool call ids renumbered in order."""

from __future__ import annotations

from dataclasses import dataclass

from engine.renderers.api import Message, Tool
from engine.renderers.gojson import marshal, marshal_spaced
from engine.thinkvalue import Think, think_on

TURN = "<|START_OF_TURN_TOKEN|>"
END_TURN = "<|END_OF_TURN_TOKEN|>"
SYSTEM = TURN + "<|SYSTEM_TOKEN|>"
CHATBOT = TURN + "<|CHATBOT_TOKEN|>"


def _tools_section(tools: list[Tool]) -> str:
    out = ["# Available Tools\n```json\n[\n"]
    if not tools:
        out.append("\n\n")
    for i, tool in enumerate(tools):
        fn = tool.function
        out.append(f'\n    {{"name": {marshal(fn.name)}, "description": {marshal(fn.description)}, '
                   f'"parameters": {marshal_spaced(fn.parameters)}, "responses": null}}')
        out.append("," if i < len(tools) - 1 else "")
        out.append("\n\n")
    out.append("\n]\n```")
    return "".join(out)


def _result(call_id: str, content: str) -> str:
    return (f'\n    {{\n        "tool_call_id": "{call_id}",\n        "results": {{\n\n            \n            '
            f'"0": {marshal_spaced({"content": content})}\n\n        }},\n        "is_error": null\n    }}')


@dataclass
class CohereRenderer:
    leading_bos = "<BOS_TOKEN>"

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        reasoning = think_on(think, default=True)
        system = ""
        rest = messages
        if messages and messages[0].role.lower() == "system":
            system, rest = messages[0].content, messages[1:]
        out = [SYSTEM + "<|START_TEXT|>"]
        if system:
            out.append(system + "\n\n\n\n")
        out.append(_tools_section(tools) + "<|END_TEXT|>" + END_TURN)
        next_index = 0
        index_of_id: dict[str, str] = {}
        prefill = False
        i = 0
        while i < len(rest):
            message = rest[i]
            role = message.role.lower()
            if role == "system":
                out.append(SYSTEM + "<|START_TEXT|>" + message.content + "<|END_TEXT|>" + END_TURN)
            elif role == "user":
                out.append(TURN + "<|USER_TOKEN|><|START_TEXT|>" + message.content + "<|END_TEXT|>" + END_TURN)
            elif role in ("assistant", "chatbot"):
                out.append(CHATBOT)
                thought = f"<|START_THINKING|>{message.thinking}<|END_THINKING|>" if message.thinking else ""
                if message.tool_calls:
                    out.append("\n            \n                " + thought + "<|START_ACTION|>[")
                    for j, call in enumerate(message.tool_calls):
                        index = str(next_index)
                        next_index += 1
                        if call.id and call.id not in index_of_id:
                            index_of_id[call.id] = index
                        out.append(f'\n\n    {{"tool_call_id": "{index}", "tool_name": "{call.name}", '
                                   f'"parameters": {marshal_spaced(call.arguments)}}}')
                        if j < len(message.tool_calls) - 1:
                            out.append(",")
                    out.append("\n\n]<|END_ACTION|>" + END_TURN)
                else:
                    out.append(thought + "<|START_TEXT|>" + message.content)
                    if i == len(rest) - 1:
                        prefill = True
                    else:
                        out.append("<|END_TEXT|>" + END_TURN)
            elif role == "tool":
                results = [_result(index_of_id.get(message.tool_call_id, message.tool_call_id), message.content)]
                while i + 1 < len(rest) and rest[i + 1].role.lower() == "tool":
                    i += 1
                    results.append(_result(index_of_id.get(rest[i].tool_call_id, rest[i].tool_call_id),
                                           rest[i].content))
                out.append(SYSTEM + "<|START_TOOL_RESULT|>[" + ",".join(results) + "\n\n]<|END_TOOL_RESULT|>"
                           + END_TURN)
            i += 1
        if not prefill:
            out.append(CHATBOT + ("<|START_THINKING|>" if reasoning else "<|START_THINKING|><|END_THINKING|>"))
        return "".join(out)
