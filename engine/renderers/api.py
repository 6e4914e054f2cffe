"""The request shapes renderers read (Ollama's api.Message, api.Tool, api.ToolCall; api.ThinkValue is
engine.thinkvalue), decoded from API JSON the way Go decodes them, and encoding back to the same JSON bytes
as Go's encoding/json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.renderers.gojson import marshal, marshal_ordered, quote


def go_value(value: Any) -> Any:
    """A JSON value as Go decodes it into `any`: numbers become float64."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {str(k): go_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [go_value(v) for v in value]
    return value


class Arguments(dict):
    """api.ToolCallFunctionArguments: kept and encoded in the order given."""

    def go_json(self, escape_html: bool) -> str:
        return marshal_ordered(list(self.items()), escape_html)


class Properties(dict):
    """*api.ToolPropertiesMap: property name -> ToolProperty, in the order given."""

    def go_json(self, escape_html: bool) -> str:
        return marshal_ordered(list(self.items()), escape_html)


def _strings(value: Any) -> list[str] | None:
    return [str(v) for v in value] if isinstance(value, list) else None


@dataclass
class ToolProperty:
    any_of: list[ToolProperty] = field(default_factory=list)
    type: list[str] = field(default_factory=list)  # api.PropertyType
    items: Any = None
    description: str = ""
    enum: list[Any] = field(default_factory=list)
    properties: Properties | None = None
    required: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, obj: Any, numbers: Any) -> ToolProperty:
        if not isinstance(obj, dict):
            return cls()
        kind = obj.get("type")
        any_of = obj.get("anyOf")
        enum = obj.get("enum")
        props = obj.get("properties")
        return cls(
            any_of=[cls.from_json(x, numbers) for x in any_of] if isinstance(any_of, list) else [],
            type=[kind] if isinstance(kind, str) else [str(t) for t in kind] if isinstance(kind, list) else [],
            items=numbers(obj.get("items")),
            description=obj.get("description") if isinstance(obj.get("description"), str) else "",
            enum=[numbers(v) for v in enum] if isinstance(enum, list) else [],
            properties=Properties((str(k), cls.from_json(v, numbers)) for k, v in props.items())
            if isinstance(props, dict) else None,
            required=_strings(obj.get("required")) or [],
        )

    def type_json(self) -> Any:
        return self.type[0] if len(self.type) == 1 else list(self.type)

    def go_json(self, escape_html: bool) -> str:
        members: list[tuple[str, Any]] = []
        if self.any_of:
            members.append(("anyOf", self.any_of))
        if self.type:
            members.append(("type", self.type_json()))
        if self.items is not None:
            members.append(("items", self.items))
        if self.description:
            members.append(("description", self.description))
        if self.enum:
            members.append(("enum", self.enum))
        if self.properties is not None:
            members.append(("properties", self.properties))
        if self.required:
            members.append(("required", self.required))
        return marshal_ordered(members, escape_html)


@dataclass
class ToolParameters:
    type: str = ""
    defs: Any = None
    items: Any = None
    required: list[str] | None = None
    properties: Properties | None = None

    def go_json(self, escape_html: bool) -> str:
        members: list[tuple[str, Any]] = [("type", self.type)]
        if self.defs is not None:
            members.append(("$defs", self.defs))
        if self.items is not None:
            members.append(("items", self.items))
        if self.required:
            members.append(("required", self.required))
        members.append(("properties", self.properties))
        return marshal_ordered(members, escape_html)


@dataclass
class ToolFunction:
    name: str = ""
    description: str = ""
    parameters: ToolParameters = field(default_factory=ToolParameters)

    def go_json(self, escape_html: bool) -> str:
        members: list[tuple[str, Any]] = [("name", self.name)]
        if self.description:
            members.append(("description", self.description))
        members.append(("parameters", self.parameters))
        return marshal_ordered(members, escape_html)


@dataclass
class Tool:
    type: str = ""
    items: Any = None
    function: ToolFunction = field(default_factory=ToolFunction)

    @classmethod
    def from_json(cls, obj: Any, numbers: Any = go_value) -> Tool:
        obj = obj if isinstance(obj, dict) else {}
        fn = obj.get("function") if isinstance(obj.get("function"), dict) else {}
        params = fn.get("parameters") if isinstance(fn.get("parameters"), dict) else {}
        props = params.get("properties")
        return cls(
            type=obj.get("type") if isinstance(obj.get("type"), str) else "",
            items=numbers(obj.get("items")),
            function=ToolFunction(
                name=fn.get("name") if isinstance(fn.get("name"), str) else "",
                description=fn.get("description") if isinstance(fn.get("description"), str) else "",
                parameters=ToolParameters(
                    type=params.get("type") if isinstance(params.get("type"), str) else "",
                    defs=numbers(params.get("$defs")),
                    items=numbers(params.get("items")),
                    required=_strings(params.get("required")),
                    properties=Properties((str(k), ToolProperty.from_json(v, numbers)) for k, v in props.items())
                    if isinstance(props, dict) else None,
                ),
            ),
        )

    def go_json(self, escape_html: bool) -> str:
        members: list[tuple[str, Any]] = [("type", self.type)]
        if self.items is not None:
            members.append(("items", self.items))
        members.append(("function", self.function))
        return marshal_ordered(members, escape_html)


@dataclass
class ToolCall:
    id: str = ""
    index: int = 0
    name: str = ""
    arguments: Arguments = field(default_factory=Arguments)

    @classmethod
    def from_json(cls, obj: Any, numbers: Any = go_value) -> ToolCall:
        obj = obj if isinstance(obj, dict) else {}
        fn = obj.get("function") if isinstance(obj.get("function"), dict) else {}
        args = fn.get("arguments")
        index = fn.get("index")
        return cls(
            id=obj.get("id") if isinstance(obj.get("id"), str) else "",
            index=index if isinstance(index, int) and not isinstance(index, bool) else 0,
            name=fn.get("name") if isinstance(fn.get("name"), str) else "",
            arguments=Arguments((str(k), numbers(v)) for k, v in args.items()) if isinstance(args, dict)
            else Arguments(),
        )


@dataclass
class Message:
    role: str = ""
    content: str = ""
    thinking: str = ""
    images: list[Any] = field(default_factory=list)  # renderers only count them: kept as they came
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_name: str = ""
    tool_call_id: str = ""

    @classmethod
    def from_json(cls, obj: dict, numbers: Any = go_value) -> Message:
        def text(key: str) -> str:
            value = obj.get(key)
            return value if isinstance(value, str) else ""

        images = obj.get("images")
        calls = obj.get("tool_calls")
        return cls(
            role=text("role"),
            content=text("content"),
            thinking=text("thinking"),
            images=list(images) if isinstance(images, list) else [],
            tool_calls=[ToolCall.from_json(c, numbers) for c in calls if isinstance(c, dict)]
            if isinstance(calls, list) else [],
            tool_name=text("tool_name"),
            tool_call_id=text("tool_call_id"),
        )


def messages_from_json(messages: list[dict], numbers: Any = go_value) -> list[Message]:
    return [Message.from_json(m, numbers) for m in messages]


def tools_from_json(tools: list[dict] | None, numbers: Any = go_value) -> list[Tool]:
    return [Tool.from_json(t, numbers) for t in tools or []]


__all__ = ["Arguments", "Message", "Properties", "Tool", "ToolCall", "ToolFunction", "ToolParameters", "ToolProperty",
           "marshal", "messages_from_json", "quote", "tools_from_json"]
