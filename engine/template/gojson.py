"""Go's encoding/json Marshal for template values: compact, map keys sorted, HTML characters escaped."""

from __future__ import annotations

import base64
import math
import re
from typing import Any

from engine.template.gofmt import format_float, sorted_keys
from engine.template.gotypes import ByteSlice, GoMap, GoSlice, GoStruct, JSONMarshaler, NilSlice


class UnsupportedValueError(ValueError):
    """json.Marshal fails (NaN or infinity); Ollama's callers then print an empty string."""


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
            "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')


def _escape(match: re.Match) -> str:
    c = match.group()
    escaped = _ESCAPES.get(c)
    if escaped is not None:
        return escaped
    if "\ud800" <= c <= "\udfff":
        return "\\ufffd"  # Go replaces invalid UTF-8 with an escaped U+FFFD
    return f"\\u{ord(c):04x}"


def quote(s: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape, s) + '"'


def _float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise UnsupportedValueError(f"json: unsupported value: {format_float(f)}")
    magnitude = abs(f)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = format_float(f, "e")
        # Go shortens a two-digit negative exponent: 1e-07 -> 1e-7
        if len(text) >= 4 and text[-4] == "e" and text[-3] == "-" and text[-2] == "0":
            text = text[:-2] + text[-1]
        return text
    return format_float(f, "f")


def _omitted(value: Any, rule: str) -> bool:
    if rule == "nil":
        return value is None
    if rule == "empty":
        return value is None or len(value) == 0
    return False


def marshal(value: Any) -> str:
    """json.Marshal(value); raises UnsupportedValueError where Go returns an error."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, JSONMarshaler):
        return value.marshal_json()
    if isinstance(value, GoStruct):
        members = (f"{quote(f.json)}:{marshal(getattr(value, f.name))}" for f in value.FIELDS
                   if not _omitted(getattr(value, f.name), f.omit))
        return "{" + ",".join(members) + "}"
    if isinstance(value, ByteSlice):
        value = value.as_bytes()
    if isinstance(value, (bytes, bytearray)):
        return quote(base64.b64encode(value).decode("ascii"))
    if isinstance(value, NilSlice) or (isinstance(value, (GoMap, GoSlice)) and value.nil):
        return "null"
    if isinstance(value, dict):
        return "{" + ",".join(f"{quote(str(k))}:{marshal(value[k])}" for k in sorted_keys(value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(marshal(v) for v in value) + "]"
    raise UnsupportedValueError(f"json: unsupported type: {type(value).__name__}")


def marshal_ordered(mapping: dict) -> str:
    """A JSON object in the mapping's insertion order (Ollama's ordered maps)."""
    return "{" + ",".join(f"{quote(str(k))}:{marshal(v)}" for k, v in mapping.items()) + "}"
