"""Reading JSON the way the Go parsers read it with encoding/json, where that differs from Python's json:
NaN/Infinity are not JSON, a struct's keys match case-insensitively, and tool-call arguments are an
object (or null)."""

from __future__ import annotations

import json
import math
from typing import Any


class GoJSONError(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise GoJSONError(f"invalid character '{name[0]}' looking for beginning of value")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise GoJSONError(f"json: cannot unmarshal number {text} into Go value of type float64")
    return value


def loads(text: str) -> Any:
    """json.Unmarshal into `any`; raises GoJSONError for text Go rejects."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_float)
    except GoJSONError:
        raise
    except json.JSONDecodeError as e:
        if not text.strip():
            raise GoJSONError("unexpected end of JSON input") from None
        if e.pos >= len(text):
            raise GoJSONError("unexpected end of JSON input") from None
        raise GoJSONError(f"invalid character {text[e.pos]!r} looking for beginning of value") from None
    except (ValueError, RecursionError) as e:
        raise GoJSONError(str(e)) from None


def valid(text: str) -> bool:
    """json.Valid."""
    try:
        loads(text)
    except GoJSONError:
        return False
    return True


def arguments(value: Any) -> dict[str, Any] | None:
    """A decoded value as tool-call arguments: an object, or None for JSON null (Go keeps a nil map,
    written back as `null`); anything else is an error."""
    if value is None or isinstance(value, dict):
        return value
    raise GoJSONError(f"json: cannot unmarshal {_kind(value)} into Go value of type map[string]any")


def loads_arguments(text: str) -> dict[str, Any] | None:
    return arguments(loads(text))


def struct(value: Any, fields: dict[str, type | tuple[type, ...]], type_name: str) -> dict[str, Any]:
    """json.Unmarshal of a decoded value into a Go struct with these fields (name → accepted Python
    types; `dict` for tool-call arguments): keys match exactly or else case-insensitively, later keys
    win, unknown keys are ignored, a JSON null leaves a field as it was (arguments become None). Returns
    only the fields that were set."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GoJSONError(f"json: cannot unmarshal {_kind(value)} into Go value of type {type_name}")
    result: dict[str, Any] = {}
    for key, item in value.items():
        field = key if key in fields else next((f for f in fields if f.lower() == key.lower()), None)
        if field is None:
            continue
        expected = fields[field]
        if item is None and expected is not dict:
            continue
        if expected is dict:
            result[field] = arguments(item)
        elif isinstance(item, expected) and not (expected is int and isinstance(item, bool)):
            result[field] = item
        else:
            raise GoJSONError(f"json: cannot unmarshal {_kind(item)} into Go struct field {type_name}.{field}")
    return result


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"
