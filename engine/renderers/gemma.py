"""Gemma renderers: gemma4 (`<|turn>` turns, `<|"|>` strings, typed tool declarations) and functiongemma."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.renderers.api import Message, Properties, Tool, ToolCall, ToolProperty
from engine.renderers.base import tag_images, trim_space
from engine.renderers.gojson import go_v
from engine.thinkvalue import Think, think_on

Q = '<|"|>'  # Gemma 4's string delimiter


def _number(value: Any) -> str | None:
    """Gemma's number text: whole floats without a fraction; None for a non-number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**63:
            return str(int(value))
        return go_v(value)
    if isinstance(value, int):
        return str(value)
    return None


def _value(value: Any, quote: str, quote_keys: bool = False) -> str:
    """A value in Gemma's syntax: strings quoted, objects as `{key:value}` (keys sorted; quoted too in a
    schema), lists as `[a,b]`."""
    if value is None:
        return "null" if quote == Q else go_v(value)
    if isinstance(value, str):
        return quote + value + quote
    if isinstance(value, bool):
        return "true" if value else "false"
    number = _number(value)
    if number is not None:
        return number
    if isinstance(value, dict) and not isinstance(value, Properties):
        key_quote = quote if quote_keys else ""
        return "{" + ",".join(f"{key_quote}{k}{key_quote}:{_value(value[k], quote, quote_keys)}"
                              for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_value(v, quote, quote_keys) for v in value) + "]"
    return go_v(value)


def _type_names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value.upper()]
    if isinstance(value, list):
        return [v.upper() for v in value if isinstance(v, str)]
    return []


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _bare_type_only(prop: ToolProperty) -> bool:
    return (not prop.any_of and bool(prop.type) and prop.items is None and not prop.description and not prop.enum
            and prop.properties is None and not prop.required)


def _simple_any_of(prop: ToolProperty) -> list[str]:
    """The types of an anyOf whose branches are each a bare type; empty when it is not that simple."""
    out: list[str] = []
    for branch in prop.any_of:
        if not _bare_type_only(branch):
            return []
        out += [t for t in branch.type if t not in out]
    return out


def _schema_of(prop: ToolProperty, declared: bool = False) -> dict[str, Any]:
    """A property as a schema map. `declared`: as the tool declaration's template prints it, with type
    unions as the Python repr of the upper-cased list, down through nested properties."""
    out: dict[str, Any] = {}
    types = prop.type or _simple_any_of(prop)
    if types:
        out["type"] = _typed_union(types) if declared else types[0] if len(types) == 1 else list(types)
    if prop.description:
        out["description"] = prop.description
    if prop.enum:
        out["enum"] = prop.enum
    if prop.items is not None:
        out["items"] = prop.items
    if prop.properties is not None:
        out["properties"] = {k: _schema_of(v, True) for k, v in prop.properties.items()} if declared \
            else prop.properties
    if prop.required:
        out["required"] = prop.required
    return out


def _typed_union(types: list[str]) -> str:
    if len(types) == 1:
        return types[0]
    return "[" + ", ".join(f"'{t.upper()}'" for t in types) + "]"


def _as_schema_map(value: Any) -> dict[str, Any] | None:
    if isinstance(value, Properties):
        return {k: _schema_of(v) for k, v in value.items()}
    if isinstance(value, ToolProperty):
        return _schema_of(value)
    if isinstance(value, dict):
        return value
    return None


_STANDARD_KEYS = ("description", "type", "properties", "required", "nullable")


def _quoted_list(items: list[str]) -> str:
    return "[" + ",".join(Q + item + Q for item in items) + "]"


def _items_spec(items: dict[str, Any]) -> str:
    parts = []
    for key in sorted(items):
        value = items[key]
        if value is None:
            continue
        if key == "properties":
            props = _as_schema_map(value)
            parts.append("properties:{" + (_properties(props) if props is not None else "") + "}")
        elif key == "required":
            parts.append("required:" + _quoted_list(_strings(value)))
        elif key == "type":
            names = _type_names(value)
            if len(names) == 1:
                parts.append("type:" + Q + names[0] + Q)
            elif names:
                parts.append("type:" + _quoted_list(names))
            else:
                parts.append("")
        else:
            parts.append(key + ":" + _value(value, Q, quote_keys=True))
    return ",".join(parts)


def _properties(props: dict[str, Any]) -> str:
    entries = []
    for name in sorted(props):
        if name in _STANDARD_KEYS:
            continue
        prop = _as_schema_map(props[name])
        if prop is None:
            continue
        parts = []
        description = prop.get("description")
        if isinstance(description, str) and description:
            parts.append("description:" + Q + description + Q)
        names = _type_names(prop.get("type"))
        kind = names[0] if names else ""
        if kind == "STRING":
            enum = prop.get("enum")
            values = enum if isinstance(enum, list) else []
            if values:
                parts.append("enum:[" + ",".join(Q + go_v(v) + Q for v in values) + "]")
        elif kind == "ARRAY":
            items = _as_schema_map(prop.get("items"))
            if items:
                parts.append("items:{" + _items_spec(items) + "}")
        if prop.get("nullable") is True:
            parts.append("nullable:true")
        if kind == "OBJECT":
            nested = _as_schema_map(prop.get("properties"))
            parts.append("properties:{" + _properties(nested if nested is not None else prop) + "}")
            required = _strings(prop.get("required"))
            if required:
                parts.append("required:" + _quoted_list(required))
        if names:
            parts.append("type:" + (Q + names[0] + Q if len(names) == 1 else _quoted_list(names)))
        entries.append(name + ":{" + ",".join(parts) + "}")
    return ",".join(entries)


def _declaration(tool: Tool, open_tag: str, close_tag: str, quote: str, properties: Any) -> str:
    fn = tool.function
    params = fn.parameters
    out = [f"{open_tag}declaration:{fn.name}{{description:{quote}{fn.description}{quote}"]
    if params.properties is not None or params.type:
        fields = []
        if params.properties:
            fields.append("properties:{" + properties(params.properties) + "}")
        if params.required:
            fields.append("required:[" + ",".join(quote + r + quote for r in params.required) + "]")
        if params.type:
            fields.append(f"type:{quote}{params.type.upper()}{quote}")
        out.append(",parameters:{" + ",".join(fields) + "}")
    out.append("}" + close_tag)
    return "".join(out)


def _call(call: ToolCall, open_tag: str, close_tag: str, quote: str) -> str:
    arguments = ",".join(f"{key}:{_value(call.arguments[key], quote)}" for key in sorted(call.arguments))
    return f"{open_tag}call:{call.name}{{{arguments}}}{close_tag}"


def strip_thinking(text: str) -> str:
    """Content without `<|channel>`…`<channel|>` blocks (an unclosed one runs to the end), trimmed."""
    out = []
    while True:
        start = text.find("<|channel>")
        if start == -1:
            out.append(text)
            break
        out.append(text[:start])
        end = text.find("<channel|>", start)
        if end == -1:
            break
        text = text[end + len("<channel|>"):]
    return trim_space("".join(out))


@dataclass
class Gemma4Renderer:
    img_tags: bool = False
    empty_block_on_no_think: bool = False  # gemma4-large: an empty thought block when not thinking
    leading_bos = "<bos>"

    def _content(self, message: Message, content: str, offset: int, trim: bool) -> tuple[str, int]:
        if trim:
            content = trim_space(content)
        if message.images and self.img_tags:
            content, offset = tag_images(content, len(message.images), offset)
        return content, offset

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        out = ["<bos>"]
        offset = 0
        has_system = bool(messages) and messages[0].role in ("system", "developer")
        system = messages[0].content if has_system else ""
        rest = messages[1:] if has_system else messages
        thinking = think_on(think)
        if has_system or tools or thinking:
            out.append("<|turn>system\n")
            if thinking:
                out.append("<|think|>\n")
            out.append(trim_space(system))
            out += [_declaration(t, "<|tool>", "<tool|>", Q,
                                 lambda props: _properties({k: _schema_of(v, declared=True) for k, v in props.items()}))
                    for t in tools]
            out.append("<turn|>\n")
        last_user = max((i for i, m in enumerate(rest) if m.role == "user"), default=-1)
        previous_kind = ""
        previous_role = ""
        for i, message in enumerate(rest):
            if message.role == "tool":
                continue
            previous_kind = ""
            role = "model" if message.role == "assistant" else message.role
            if not (role == "model" and previous_role == "assistant"):
                out.append("<|turn>" + role + "\n")
            if message.role == "assistant" and message.thinking and i > last_user:
                out.append("<|channel>thought\n" + message.thinking + "\n<channel|>")
            if message.tool_calls:
                out += [_call(c, "<|tool_call>", "<tool_call|>", Q) for c in message.tool_calls]
                previous_kind = "tool_call"
            responses = False
            if message.tool_calls:
                k = i + 1
                while k < len(rest) and rest[k].role == "tool":
                    response, offset = self._content(rest[k], rest[k].content, offset, False)
                    name = self._response_name(rest[k], message.tool_calls)
                    out.append(f"<|tool_response>response:{name}{{value:{_value(response, Q)}}}<tool_response|>")
                    responses = True
                    previous_kind = "tool_response"
                    k += 1
            had_content = False
            if role == "model":
                if message.content or message.images:
                    content = strip_thinking(message.content)
                    text, offset = self._content(message, content, offset, False)
                    out.append(text)
                    had_content = bool(trim_space(content)) or bool(message.images)
            else:
                text, offset = self._content(message, message.content, offset, True)
                out.append(text)
                had_content = bool(trim_space(message.content)) or bool(message.images)
            next_role = next((m.role for m in rest[i + 1:] if m.role != "tool"), "")
            continues = role == "model" and next_role == "assistant" and (not message.tool_calls or responses)
            if previous_kind == "tool_call" and not responses:
                out.append("<|tool_response>")
            elif not continues and not (responses and not had_content and next_role == ""):
                out.append("<turn|>\n")
            previous_role = message.role
        if previous_kind not in ("tool_response", "tool_call"):
            out.append("<|turn>model\n")
            if self.empty_block_on_no_think and not thinking:
                out.append("<|channel>thought\n<channel|>")
        elif previous_kind == "tool_response" and thinking:
            out.append("<|channel>thought\n")
        return "".join(out)

    @staticmethod
    def _response_name(message: Message, calls: list[ToolCall]) -> str:
        name = message.tool_name or "unknown"
        if message.tool_call_id:
            name = next((c.name for c in calls if c.id == message.tool_call_id), name)
        return name


FUNCTIONGEMMA_SYSTEM = "You can do function calling with the following functions:"


def _functiongemma_properties(props: Properties) -> str:
    entries = []
    for name in sorted(props):
        prop = props[name]
        entry = f"{name}:{{description:<escape>{prop.description}<escape>"
        if prop.type:
            entry += f",type:<escape>{prop.type[0].upper()}<escape>"
        entries.append(entry + "}")
    return ",".join(entries)


@dataclass
class FunctionGemmaRenderer:
    leading_bos = "<bos>"

    def render(self, messages: list[Message], tools: list[Tool], think: Think) -> str:
        out = ["<bos>"]
        has_system = bool(messages) and messages[0].role in ("system", "developer")
        system = messages[0].content if has_system else ""
        rest = messages[1:] if has_system else messages
        if system or tools:
            out.append("<start_of_turn>developer\n" + trim_space(system))
            if tools:
                if system:
                    out.append("\n")
                if trim_space(system) != FUNCTIONGEMMA_SYSTEM:
                    out.append(FUNCTIONGEMMA_SYSTEM)
            out += [_declaration(t, "<start_function_declaration>", "<end_function_declaration>", "<escape>",
                                 _functiongemma_properties) for t in tools]
            out.append("<end_of_turn>\n")
        previous = ""
        for i, message in enumerate(rest):
            if message.role == "assistant":
                if previous != "tool_response":
                    out.append("<start_of_turn>model\n")
                previous = ""
                out.append(trim_space(message.content))
                if message.tool_calls:
                    out += [_call(c, "<start_function_call>", "<end_function_call>", "<escape>")
                            for c in message.tool_calls]
                    if i + 1 < len(rest) and rest[i + 1].role == "tool":
                        out.append("<start_function_response>")
                        previous = "tool_call"
                    else:
                        out.append("<end_of_turn>\n")
                else:
                    out.append("<end_of_turn>\n")
            elif message.role == "user":
                if previous != "tool_response":
                    out.append("<start_of_turn>user\n")
                previous = ""
                out.append(trim_space(message.content) + "<end_of_turn>\n")
            elif message.role == "tool":
                name = ""
                for j in range(i - 1, -1, -1):
                    if rest[j].role == "assistant" and rest[j].tool_calls:
                        index = sum(1 for m in rest[j + 1:i] if m.role == "tool")
                        if index < len(rest[j].tool_calls):
                            name = rest[j].tool_calls[index].name
                        break
                if previous != "tool_call":
                    out.append("<start_function_response>")
                out.append(f"response:{name}{{{_value(message.content, '<escape>')}}}<end_function_response>")
                previous = "tool_response"
            else:
                out.append(f"<start_of_turn>{message.role}\n{trim_space(message.content)}<end_of_turn>\n")
        if previous != "tool_response":
            out.append("<start_of_turn>model\n")
        return "".join(out)
