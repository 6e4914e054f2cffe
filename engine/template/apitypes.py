"""The data shapes Ollama hands its templates (template.go's templateMessage, templateTool, ...), built
from Ollama API JSON (dicts) with the same field names, JSON tags and printing behaviour as in Go."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, ClassVar

from engine.template.gojson import marshal, marshal_ordered, quote
from engine.template.gotypes import (
    NIL_SLICE,
    ByteSlice,
    Field,
    GoMap,
    GoSlice,
    GoStruct,
    JSONMarshaler,
    Stringer,
)


def json_value(value: Any) -> Any:
    """A JSON value as Go decodes it into interface{}: every number becomes a float64."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _strings(value: Any) -> Any:
    """A []string: nil when absent."""
    return [str(v) for v in value] if isinstance(value, list) else NIL_SLICE


# --- tool definitions -----------------------------------------------------------------------------

class PropertyType(GoSlice, Stringer, JSONMarshaler):
    """api.PropertyType: one JSON type name or several; prints `string` or `[string null]`."""

    __slots__ = ()
    GO_TYPE = "api.PropertyType"
    METHODS: ClassVar[dict[str, str]] = {"String": "go_string"}

    def go_string(self) -> str:
        if not self:
            return ""
        return self[0] if len(self) == 1 else "[" + " ".join(self) + "]"

    def marshal_json(self) -> str:
        return quote(self[0]) if len(self) == 1 else marshal(list(self))


class OrderedProperties(GoMap, JSONMarshaler):
    """A nested *api.ToolPropertiesMap: marshals in the order the properties were given."""

    __slots__ = ()
    GO_TYPE = "*api.ToolPropertiesMap"

    def zero(self) -> Any:
        return ToolProperty.from_api({})

    def marshal_json(self) -> str:
        return marshal_ordered(self)


_TYPESCRIPT_TYPES = {"string": "string", "number": "number", "integer": "number", "boolean": "boolean",
                     "array": "any[]", "object": "Record<string, any>", "null": "null"}


class ToolProperty(GoStruct):
    """api.ToolProperty: the fields Ollama keeps of a JSON-schema property (others are dropped)."""

    __slots__ = ("AnyOf", "Type", "Items", "Description", "Enum", "Properties", "Required")
    GO_TYPE = "api.ToolProperty"
    FIELDS = (Field("AnyOf", "anyOf", "empty"), Field("Type", "type", "empty"),
              Field("Items", "items", "nil"), Field("Description", "description", "empty"),
              Field("Enum", "enum", "empty"), Field("Properties", "properties", "nil"),
              Field("Required", "required", "empty"))
    METHODS: ClassVar[dict[str, str]] = {"ToTypeScriptType": "to_typescript_type"}

    @classmethod
    def from_api(cls, schema: Any) -> ToolProperty:
        schema = schema if isinstance(schema, dict) else {}
        prop = cls()
        any_of = schema.get("anyOf")
        prop.AnyOf = [cls.from_api(s) for s in any_of] if isinstance(any_of, list) else NIL_SLICE
        if "type" not in schema:
            prop.Type = PropertyType(nil=True)
        elif isinstance(schema["type"], list):
            prop.Type = PropertyType(str(t) for t in schema["type"])
        else:
            prop.Type = PropertyType([_string(schema["type"])])
        prop.Items = json_value(schema.get("items"))
        prop.Description = _string(schema.get("description"))
        enum = schema.get("enum")
        prop.Enum = [json_value(v) for v in enum] if isinstance(enum, list) else NIL_SLICE
        nested = schema.get("properties")
        prop.Properties = (OrderedProperties({str(k): cls.from_api(v) for k, v in nested.items()})
                           if isinstance(nested, dict) else None)
        prop.Required = _strings(schema.get("required"))
        return prop

    def to_typescript_type(self) -> str:
        if self.AnyOf:
            return " | ".join(p.to_typescript_type() for p in self.AnyOf)
        if not self.Type:
            return "any"
        return " | ".join(_TYPESCRIPT_TYPES.get(t, "any") for t in self.Type)


class TemplateProperties(GoMap, Stringer):
    """templateProperties: map[string]api.ToolProperty that prints as JSON (keys sorted)."""

    __slots__ = ()
    GO_TYPE = "template.templateProperties"
    METHODS: ClassVar[dict[str, str]] = {"String": "go_string"}

    def zero(self) -> Any:
        return ToolProperty.from_api({})

    def go_string(self) -> str:
        return "{}" if self.nil else marshal(self)


class TemplateToolFunctionParameters(GoStruct):
    __slots__ = ("Type", "Defs", "Items", "Required", "Properties")
    GO_TYPE = "template.templateToolFunctionParameters"
    FIELDS = (Field("Type", "type"), Field("Defs", "$defs", "nil"), Field("Items", "items", "nil"),
              Field("Required", "required", "empty"), Field("Properties", "properties"))


class TemplateToolFunction(GoStruct):
    __slots__ = ("Name", "Description", "Parameters")
    GO_TYPE = "template.templateToolFunction"
    FIELDS = (Field("Name", "name"), Field("Description", "description"), Field("Parameters", "parameters"))


class TemplateTool(GoStruct, Stringer):
    """templateTool: prints as its JSON, fields in the order type, items, function."""

    __slots__ = ("Type", "Items", "Function")
    GO_TYPE = "template.templateTool"
    FIELDS = (Field("Type", "type"), Field("Items", "items", "nil"), Field("Function", "function"))
    METHODS: ClassVar[dict[str, str]] = {"String": "go_string"}

    @classmethod
    def from_api(cls, tool: dict) -> TemplateTool:
        function = tool.get("function") if isinstance(tool.get("function"), dict) else {}
        params = function.get("parameters") if isinstance(function.get("parameters"), dict) else {}
        properties = params.get("properties")
        parameters = TemplateToolFunctionParameters()
        parameters.Type = _string(params.get("type"))
        parameters.Defs = json_value(params.get("$defs"))
        parameters.Items = json_value(params.get("items"))
        parameters.Required = _strings(params.get("required"))
        parameters.Properties = (
            TemplateProperties({str(k): ToolProperty.from_api(v) for k, v in properties.items()})
            if isinstance(properties, dict) else TemplateProperties(nil=True))
        template_function = TemplateToolFunction()
        template_function.Name = _string(function.get("name"))
        template_function.Description = _string(function.get("description"))
        template_function.Parameters = parameters
        template_tool = cls()
        template_tool.Type = _string(tool.get("type"))
        template_tool.Items = json_value(tool.get("items"))
        template_tool.Function = template_function
        return template_tool

    def go_string(self) -> str:
        return marshal(self)


class TemplateTools(GoSlice, Stringer):
    """templateTools: the tool list, printing as a JSON array (`null` when there are no tools)."""

    __slots__ = ()
    GO_TYPE = "template.templateTools"
    METHODS: ClassVar[dict[str, str]] = {"String": "go_string"}

    @classmethod
    def from_api(cls, tools: list[dict]) -> TemplateTools:
        if not tools:
            return cls(nil=True)
        return cls(TemplateTool.from_api(t) for t in tools)

    def go_string(self) -> str:
        return marshal(self)


# --- messages -------------------------------------------------------------------------------------

class TemplateArgs(GoMap, Stringer):
    """templateArgs: tool-call arguments, printing as compact JSON with sorted keys (`{}` when nil)."""

    __slots__ = ()
    GO_TYPE = "template.templateArgs"
    METHODS: ClassVar[dict[str, str]] = {"String": "go_string"}

    def go_string(self) -> str:
        return "{}" if self.nil else marshal(self)


class TemplateToolCallFunction(GoStruct):
    __slots__ = ("Index", "Name", "Arguments")
    GO_TYPE = "template.templateToolCallFunction"
    FIELDS = (Field("Index", "Index"), Field("Name", "Name"), Field("Arguments", "Arguments"))


class TemplateToolCall(GoStruct):
    __slots__ = ("ID", "Function")
    GO_TYPE = "template.templateToolCall"
    FIELDS = (Field("ID", "ID"), Field("Function", "Function"))

    @classmethod
    def from_api(cls, call: dict) -> TemplateToolCall:
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        arguments = function.get("arguments")
        if isinstance(arguments, str):  # tolerate arguments sent as a JSON string
            try:
                arguments = json.loads(arguments)
            except ValueError:
                arguments = None
        call_function = TemplateToolCallFunction()
        index = function.get("index")
        call_function.Index = index if isinstance(index, int) and not isinstance(index, bool) else 0
        call_function.Name = _string(function.get("name"))
        call_function.Arguments = (TemplateArgs({str(k): json_value(v) for k, v in arguments.items()})
                                   if isinstance(arguments, dict) else TemplateArgs(nil=True))
        template_call = cls()
        template_call.ID = _string(call.get("id"))
        template_call.Function = call_function
        return template_call


class ImageData(ByteSlice):
    """api.ImageData ([]byte), kept as the base64 text (or bytes) it arrived as and decoded on demand."""

    __slots__ = ("raw",)

    def __init__(self, raw: str | bytes):
        self.raw = raw

    def as_bytes(self) -> bytes:
        if isinstance(self.raw, bytes):
            return self.raw
        try:
            return base64.b64decode(self.raw)
        except (binascii.Error, ValueError):
            return self.raw.encode("utf-8")


class TemplateMessage(GoStruct):
    __slots__ = ("Role", "Content", "Thinking", "Images", "ToolCalls", "ToolName", "ToolCallID")
    GO_TYPE = "*template.templateMessage"
    FIELDS = (Field("Role", "Role"), Field("Content", "Content"), Field("Thinking", "Thinking"),
              Field("Images", "Images"), Field("ToolCalls", "ToolCalls"), Field("ToolName", "ToolName"),
              Field("ToolCallID", "ToolCallID"))

    @classmethod
    def from_api(cls, message: dict) -> TemplateMessage:
        images = message.get("images")
        calls = message.get("tool_calls") if isinstance(message.get("tool_calls"), list) else []
        template_message = cls()
        template_message.Role = _string(message.get("role"))
        template_message.Content = _string(message.get("content"))
        template_message.Thinking = _string(message.get("thinking"))
        template_message.Images = [ImageData(i) for i in images] if isinstance(images, list) else NIL_SLICE
        # Ollama builds this list by appending, so it is nil (JSON null) when there are no calls
        tool_calls = [TemplateToolCall.from_api(c) for c in calls if isinstance(c, dict)]
        template_message.ToolCalls = tool_calls or NIL_SLICE
        template_message.ToolName = _string(message.get("tool_name"))
        template_message.ToolCallID = _string(message.get("tool_call_id"))
        return template_message
