"""The Go encodings renderers print values with: `encoding/json` (HTML-escaping or not), `fmt`'s `%v`,
`strconv.Quote`, and the "spaces after `:` and `,`" rewrite that makes Go JSON look like Python's.

Values are plain Python: str, bool, None, int (a Go int), float (a Go float64), list, dict (a Go map:
keys sorted when encoded) and the ordered shapes of `engine.renderers.api`, which encode themselves."""

from __future__ import annotations

import base64
import math
import re
from typing import Any, Protocol

from engine.template.gofmt import format_float
from modelstore.gojson import go_quote


class GoJSON(Protocol):
    """A value that writes its own Go JSON (a struct or an ordered map)."""

    def go_json(self, escape_html: bool) -> str: ...


_BASE_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
                 "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}
_PLAIN = re.compile('[\x00-\x1f"\\\\\u2028\u2029\ud800-\udfff]')
_HTML = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')


def _escape(match: re.Match) -> str:
    c = match.group()
    escaped = _BASE_ESCAPES.get(c) or _HTML_ESCAPES.get(c)
    if escaped is not None:
        return escaped
    if "\ud800" <= c <= "\udfff":
        return "\\ufffd"  # invalid UTF-8 (kept as surrogates) becomes U+FFFD
    return f"\\u{ord(c):04x}"


def quote(s: str, escape_html: bool = True) -> str:
    return '"' + (_HTML if escape_html else _PLAIN).sub(_escape, s) + '"'


def json_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"json: unsupported value: {format_float(f)}")
    magnitude = abs(f)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = format_float(f, "e")
        if len(text) >= 4 and text[-4] == "e" and text[-3] == "-" and text[-2] == "0":
            text = text[:-2] + text[-1]  # 1e-07 -> 1e-7, as Go writes it
        return text
    return format_float(f, "f")


def marshal(value: Any, escape_html: bool = True) -> str:
    """json.Marshal (escape_html=True) or an Encoder with SetEscapeHTML(false)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return quote(value, escape_html)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json_float(value)
    if hasattr(value, "go_json"):
        return value.go_json(escape_html)
    if isinstance(value, (bytes, bytearray)):
        return quote(base64.b64encode(value).decode("ascii"))
    if isinstance(value, dict):
        return "{" + ",".join(f"{quote(str(k), escape_html)}:{marshal(value[k], escape_html)}"
                              for k in sorted(value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(marshal(v, escape_html) for v in value) + "]"
    raise ValueError(f"json: unsupported type: {type(value).__name__}")


def marshal_ordered(items: list[tuple[str, Any]], escape_html: bool) -> str:
    return "{" + ",".join(f"{quote(k, escape_html)}:{marshal(v, escape_html)}" for k, v in items) + "}"


def add_spaces(text: str) -> str:
    """A space after every `:` and `,` outside strings (Python's json.dumps separators)."""
    out: list[str] = []
    in_string = escaped = False
    for c in text:
        out.append(c)
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in ":,":
            out.append(" ")
    return "".join(out)


def marshal_spaced(value: Any, escape_html: bool = True) -> str:
    return add_spaces(marshal(value, escape_html))


def hf_tojson(value: Any) -> str:
    """A Hugging Face chat template's `tojson` (json.dumps with its default separators), as the LFM2 and
    Glimmer renderers write it: no HTML escaping, a space after `:` and `,`."""
    return marshal_spaced(value, escape_html=False)


def indent(text: str, prefix: str, step: str) -> str:
    """json.MarshalIndent's layout applied to compact Go JSON."""
    out: list[str] = []
    depth = 0
    in_string = escaped = False
    i = 0
    while i < len(text):
        c = text[i]
        if in_string:
            out.append(c)
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif c in "{[":
            if i + 1 < len(text) and text[i + 1] in "}]":
                out.append(c + text[i + 1])
                i += 2
                continue
            depth += 1
            out.append(c + "\n" + prefix + step * depth)
        elif c in "}]":
            depth -= 1
            out.append("\n" + prefix + step * depth + c)
        elif c == ",":
            out.append(",\n" + prefix + step * depth)
        elif c == ":":
            out.append(": ")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def go_v(value: Any) -> str:
    """fmt's %v for the values a request can carry (int is a Go int, float a float64)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value, "g")
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "map[" + " ".join(f"{go_v(k)}:{go_v(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_v(v) for v in value) + "]"
    return str(value)


def strconv_quote(s: str) -> str:
    return go_quote(s)
