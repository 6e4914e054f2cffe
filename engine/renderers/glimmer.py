"""The glimmer renderer: `<|start|>header<|message|>…<|eot|>` turns, ATEM function calls, reasoning strength."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from engine.renderers.api import Message, Tool
from engine.renderers.base import image_content
from engine.renderers.gojson import go_v, hf_tojson
from engine.thinkvalue import Think, think_level, think_on

BOS = "<|begin_of_text|>"
START = "<|start|>"
MESSAGE = "<|message|>"
END_MESSAGE = "<|eom|>"
END_TURN = "<|eot|>"
DEFAULT_SYSTEM = "You are a helpful AI assistant."
KNOWLEDGE_CUTOFF = "2026-01-04"

_TOOLS_PREFIX = """In this environment you have access to a set of tools you can use to answer the user's question.

You can invoke a function by writing a "<atem:function_calls>" block like the following:
<atem:function_calls>
<atem:invoke name="$FUNCTION_NAME">
<atem:parameter name="$PARAMETER_NAME">$PARAMETER_VALUE</atem:parameter>
...
</atem:invoke>
</atem:function_calls>

String and scalar parameters should be specified as is, while lists and objects should use JSON format. \
Note that spaces for string values are not stripped. The output is not expected to be valid XML and is parsed \
with regular expressions.
Here are the functions available in JSONSchema format:
// Tool metadata
"""

_TOOLS_SUFFIX = """

Here's an example of how to call a function in the tool set:
(If the tool namespace is not specified, invoke the function directly as `example_function_name` rather than \
`example_tool_name.example_function_name`)

to=example_tool_name.example_function_name

<atem:function_calls>
<atem:invoke name="example_tool_name.example_function_name">
<atem:parameter name="example_parameter_1">value_1</atem:parameter>
<atem:parameter name="example_parameter_2">This is the value for the second parameter
that can span
"multiple" lines
</atem:parameter>
</atem:invoke>
</atem:function_calls>"""

_REASONING_WORDS = (("Reasoning effort", "Reasoning strength"), ("Reasoning Effort", "Reasoning Strength"),
                    ("reasoning effort", "reasoning strength"), ("REASONING EFFORT", "REASONING STRENGTH"))


def _strength(think: Think) -> str:
    if think is None:
        return "high"
    if not think_on(think):
        return "none"
    return think_level(think) if isinstance(think, str) else "high"


def _normalize_reasoning(content: str) -> str:
    out = []
    i = 0
    while i < len(content):  # one left-to-right pass, as strings.Replacer does
        for old, new in _REASONING_WORDS:
            if content.startswith(old, i):
                out.append(new)
                i += len(old)
                break
        else:
            out.append(content[i])
            i += 1
    return "".join(out)


def _namespaces(tools: list[Tool]) -> list[str]:
    seen: list[str] = []
    for tool in tools:
        namespace = tool.function.name.split(".", 1)[0]
        if namespace not in seen:
            seen.append(namespace)
    return seen


def _system(content: str, tools: list[Tool], strength: str, date: str, default: bool) -> str:
    if not default:
        content = _normalize_reasoning(content)
    out = [START + "system" + MESSAGE + content]
    if default:
        out.append(f"\nKnowledge cutoff: {KNOWLEDGE_CUTOFF}.\nCurrent date: {date}.")
    if default or "reasoning strength" not in content.lower():
        out.append(f"\n\nReasoning strength: {strength}.")
    if tools:
        out.append("\n\n" + _TOOLS_PREFIX)
        out += [f'{{"name": {hf_tojson(ns)}, "description": {hf_tojson("")}}}\n' for ns in _namespaces(tools)]
        out.append("// Function schemas")
        for tool in tools:
            fn = tool.function
            out.append(f'\n{{"name": {hf_tojson(fn.name)}, "description": {hf_tojson(fn.description)}, '
                       f'"parameters": {hf_tojson(fn.parameters)}}}')
        out.append(_TOOLS_SUFFIX)
    out.append('\n\n# Valid recipients: "self"' + "".join(f', "{ns}.*"' for ns in _namespaces(tools)) + ', "user".')
    return "".join(out) + END_TURN


def _result_name(message: Message, messages: list[Message]) -> str:
    if message.tool_name:
        return message.tool_name
    name = message.tool_call_id
    if not name:
        return name
    for candidate in messages:
        for call in candidate.tool_calls:
            if call.id == message.tool_call_id:
                name = call.name
    return name


def _parameter(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return hf_tojson(value)
    return go_v(value)


@dataclass
class GlimmerRenderer:
    img_tags: bool = False
    current_date: str = ""  # the date the prompt states; today when empty
    leading_bos = BOS

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        out = [BOS]
        strength = _strength(think)
        if not any(m.role == "system" for m in messages):
            out.append(_system(DEFAULT_SYSTEM, tools, strength, self.current_date or time.strftime("%Y-%m-%d"),
                               True))
        offset = 0
        for i, message in enumerate(messages):
            content, offset = image_content(message, offset, self.img_tags, "<|patch|>")
            end = END_MESSAGE if i + 1 < len(messages) and messages[i + 1].role == message.role else END_TURN
            if message.role == "system":
                out.append(_system(content, tools, strength, "", False))
            elif message.role == "user":
                out.append(START + "user" + MESSAGE + content + END_TURN)
            elif message.role == "tool":
                name = _result_name(message, messages)
                out.append(f'{START}tool {name}{MESSAGE}<tool_output name="{name}">\n{content}\n</tool_output>'
                           + END_TURN)
            elif message.role == "assistant":
                if message.thinking:
                    out.append(START + "assistant to=self" + MESSAGE + message.thinking + END_MESSAGE)
                if message.tool_calls:
                    for j, call in enumerate(message.tool_calls):
                        last_call = j + 1 == len(message.tool_calls)
                        parameters = "".join(f'<atem:parameter name="{k}">{_parameter(v)}</atem:parameter>\n'
                                             for k, v in call.arguments.items())
                        out.append(f'{START}assistant to={call.name}{MESSAGE}<atem:function_calls>\n'
                                   f'<atem:invoke name="{call.name}">\n{parameters}</atem:invoke>\n'
                                   f'</atem:function_calls>' + (end if last_call else END_MESSAGE))
                elif content or not message.thinking:
                    out.append(START + "assistant to=user" + MESSAGE + content + END_TURN)
        out.append(START + "assistant")
        return "".join(out)
