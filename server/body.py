"""Reading a JSON request body within bounds, the way Go's encoding/json reads it.

* The body is refused (413) beyond `POLLAMA_MAX_BODY` bytes, from its Content-Length when it has one, else
  as it arrives; and when it could hold more JSON values than MAX_JSON_VALUES (a decoded value costs up
  to ~25 times its text: `{}` is 3 bytes of JSON and a 64-byte dict).
* NaN and Infinity literals, and numbers beyond float64, are refused with Go's texts.
* Lone UTF-16 surrogates (`"\\ud800"`) become U+FFFD, as in Go: a surrogate cannot be encoded to UTF-8,
  so one would break every later step that does (tokenizing, logging, writing JSON).
* Nesting deeper than MAX_JSON_DEPTH is refused with Go's `exceeded max depth` (Go allows 10,000 levels;
  the code that walks values here is recursive, so the bound is lower).
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from server.api import RequestError

MAX_JSON_VALUES = 4_000_000
MAX_JSON_DEPTH = 128
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_INT64 = range(-(2**63), 2**63)


class BodyTooLarge(ValueError):
    """Answered with 413."""


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused as soon as it is known to be larger than `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"request body too large: the limit is {limit} bytes (POLLAMA_MAX_BODY)")


def _number_error(text: str) -> RequestError:
    shown = text if len(text) <= 40 else text[:37] + "..."
    return RequestError(f"json: cannot unmarshal number {shown} into Go value of type float64")


def _refuse_constant(name: str) -> Any:
    if name.startswith("-"):
        raise RequestError("invalid character 'I' in numeric literal")
    raise RequestError(f"invalid character '{name[0]}' looking for beginning of value")


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _number_error(text)
    return value


def _int(text: str) -> int | float:
    """An int64 stays an int; a longer integer is a float64, as Go decodes it into an interface."""
    if len(text) <= 20:
        value = int(text)
        if value in _INT64:
            return value
    return _float(text)


_DECODER = json.JSONDecoder(parse_float=_float, parse_int=_int, parse_constant=_refuse_constant)


def _go_decode_error(text: str, error: json.JSONDecodeError) -> str:
    """Python's decoder message in the words of Go's encoding/json."""
    rest = text[error.pos:]
    if not rest.strip():
        return "unexpected EOF"
    char = rest[0]
    if error.msg.startswith("Expecting property name"):
        return f"invalid character '{char}' looking for beginning of object key string"
    if error.msg.startswith("Expecting value"):
        return f"invalid character '{char}' looking for beginning of value"
    if error.msg.startswith("Expecting ',' delimiter"):
        return f"invalid character '{char}' after object key:value pair"
    if error.msg.startswith("Expecting ':' delimiter"):
        return f"invalid character '{char}' after object key"
    return f"invalid character '{char}' looking for beginning of value"


def _replace_surrogates(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def _checked(value: Any, fix_surrogates: bool) -> Any:
    """`value` with lone surrogates replaced (when asked), after checking its depth; iterative, so that
    its own depth is no danger."""
    if fix_surrogates and isinstance(value, str):
        return _replace_surrogates(value)
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise RequestError("exceeded max depth")
        if isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, str):
                    if fix_surrogates:
                        node[index] = _replace_surrogates(item)
                elif isinstance(item, list | dict):
                    stack.append((item, depth + 1))
        elif isinstance(node, dict):
            if fix_surrogates and any(_SURROGATE.search(key) for key in node):
                fixed = {_replace_surrogates(key): item for key, item in node.items()}
                node.clear()
                node.update(fixed)
            for key, item in node.items():
                if isinstance(item, str):
                    if fix_surrogates:
                        node[key] = _replace_surrogates(item)
                elif isinstance(item, list | dict):
                    stack.append((item, depth + 1))
    return value


def decode_json(body: bytes) -> Any:
    """The first JSON value of `body` (Go's json.Decoder: what follows it is not read)."""
    # Every value but the first follows a ',', a ':' or a '[' (strings may hold some too: an upper bound).
    if body.count(b",") + body.count(b":") + body.count(b"[") >= MAX_JSON_VALUES:
        raise BodyTooLarge(f"request body too large: more than {MAX_JSON_VALUES} JSON values")
    nested = body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH
    fix_surrogates = _SURROGATE_ESCAPE.search(body) is not None
    text = body.decode("utf-8", errors="replace").lstrip()
    if not text:
        raise RequestError("missing request body")
    try:
        value, _ = _DECODER.raw_decode(text)
    except json.JSONDecodeError as e:
        raise RequestError(_go_decode_error(text, e)) from None
    except RecursionError:
        raise RequestError("exceeded max depth") from None
    if nested or fix_surrogates:
        value = _checked(value, fix_surrogates)
    return value
