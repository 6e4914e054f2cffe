"""Template functions: Go's text/template builtins plus the ones Ollama registers (json, currentDate,
yesterdayDate, toTypeScriptType). `and` / `or` short-circuit, so the executor evaluates them itself."""

from __future__ import annotations

import datetime
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.template.apitypes import ToolProperty
from engine.template.errors import FuncError
from engine.template.gofmt import format_value, sprint, sprintln
from engine.template.gojson import UnsupportedValueError, marshal
from engine.template.gotypes import ByteSlice, GoMap, GoStruct, go_type_name, is_nil, is_true
from engine.template.printf import sprintf


@dataclass(frozen=True)
class Function:
    call: Callable[..., Any]
    params: tuple[str, ...] = ()  # kinds of the fixed parameters: "any" or "string"
    variadic: str | None = None  # kind of the variadic parameters, None when not variadic


# --- comparison -------------------------------------------------------------------------------------

def _basic_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return None


def _reflect_kind(value: Any) -> str:
    if value is None:
        return "invalid"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, GoStruct):
        return "struct"
    return "slice"


def eq(arg1: Any, *others: Any) -> bool:
    if not others:
        raise FuncError("missing argument for comparison")
    kind1 = _basic_kind(arg1)
    for arg in others:
        kind2 = _basic_kind(arg)
        if kind1 != kind2:
            if arg1 is not None and arg is not None:
                raise FuncError(f"incompatible types for comparison: {go_type_name(arg1)} and "
                                f"{go_type_name(arg)}")
            continue
        if kind1 is not None:
            if arg1 == arg:
                return True
            continue
        if _reflect_kind(arg1) != _reflect_kind(arg) and arg1 is not None and arg is not None:
            raise FuncError(f"non-comparable types {sprintf('%s', [arg1])}: {go_type_name(arg1)}, "
                            f"{go_type_name(arg)}: {format_value(arg)}")
        if is_nil(arg1) or is_nil(arg):
            if is_nil(arg1) == is_nil(arg):
                return True
            continue
        if not isinstance(arg, GoStruct):
            raise FuncError(f"non-comparable type {sprintf('%s', [arg])}: {go_type_name(arg)}")
        if arg1 == arg:
            return True
    return False


def ne(arg1: Any, arg2: Any) -> bool:
    return not eq(arg1, arg2)


def lt(arg1: Any, arg2: Any) -> bool:
    kind1, kind2 = _basic_kind(arg1), _basic_kind(arg2)
    if kind1 is None or kind2 is None:
        raise FuncError("invalid type for comparison")
    if kind1 != kind2:
        raise FuncError(f"incompatible types for comparison: {go_type_name(arg1)} and {go_type_name(arg2)}")
    if kind1 == "bool":
        raise FuncError("invalid type for comparison")
    return arg1 < arg2


def le(arg1: Any, arg2: Any) -> bool:
    return lt(arg1, arg2) or eq(arg1, arg2)


def gt(arg1: Any, arg2: Any) -> bool:
    return not le(arg1, arg2)


def ge(arg1: Any, arg2: Any) -> bool:
    return not lt(arg1, arg2)


# --- collections --------------------------------------------------------------------------------------

def length(item: Any) -> int:
    if item is None:
        raise FuncError("len of nil pointer")
    if isinstance(item, str):
        return len(item) if item.isascii() else len(item.encode("utf-8", "surrogatepass"))
    if isinstance(item, (list, tuple, dict, bytes, bytearray, ByteSlice)):
        return len(item)
    raise FuncError(f"len of type {go_type_name(item)}")


def _index_arg(index: Any, cap: int) -> int:
    if index is None:
        raise FuncError("cannot index slice/array with nil")
    if not isinstance(index, int) or isinstance(index, bool):
        raise FuncError(f"cannot index slice/array with type {go_type_name(index)}")
    if index < 0 or index > cap:
        raise FuncError(f"index out of range: {index}")
    return index


def _sequence(item: Any) -> Any:
    """Strings index and slice by UTF-8 bytes in Go."""
    if isinstance(item, str):
        return item if item.isascii() else item.encode("utf-8", "surrogatepass")
    if isinstance(item, ByteSlice):
        return item.as_bytes()
    return item


def index(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise FuncError("index of untyped nil")
    for key in indexes:
        if item is None:
            raise FuncError("index of nil pointer")
        if isinstance(item, (str, list, tuple, bytes, bytearray, ByteSlice)):
            sequence = _sequence(item)
            position = _index_arg(key, len(sequence))
            if position == len(sequence):
                kind = "string" if isinstance(item, str) else "slice"
                raise FuncError(f"reflect: {kind} index out of range")
            element = sequence[position]
            item = ord(element) if isinstance(item, str) and isinstance(element, str) else element
        elif isinstance(item, dict):
            if key is None:
                raise FuncError("value is nil; should be of type string")
            if not isinstance(key, str):
                raise FuncError(f"value has type {go_type_name(key)}; should be string")
            item = item[key] if key in item else (item.zero() if isinstance(item, GoMap) else None)
        else:
            raise FuncError(f"can't index item of type {go_type_name(item)}")
    return item


def slice_(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
    elif not isinstance(item, (list, tuple, bytes, bytearray, ByteSlice)):
        raise FuncError(f"can't slice item of type {go_type_name(item)}")
    sequence = _sequence(item)
    bounds = [0, len(sequence), len(sequence)]
    for i, key in enumerate(indexes):
        bounds[i] = _index_arg(key, len(sequence))
    if bounds[0] > bounds[1]:
        raise FuncError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    if len(indexes) == 3 and bounds[1] > bounds[2]:
        raise FuncError(f"invalid slice index: {bounds[1]} > {bounds[2]}")
    part = sequence[bounds[0]:bounds[1]]
    if isinstance(item, str):
        return part if isinstance(part, str) else part.decode("utf-8", "replace")
    if type(item) in (list, tuple, bytes, bytearray) or isinstance(item, ByteSlice):
        return part
    return type(item)(part)  # named slice types keep their type (and String method)


# --- printing and escaping ----------------------------------------------------------------------------

def _printable_args(args: tuple) -> str:
    """Go's evalArgs: Sprint of the arguments, a missing value printing as <no value>."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(["<no value>" if a is None else a for a in args])


_HTML_ESCAPES = {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}


def html_escape(*args: Any) -> str:
    return "".join(_HTML_ESCAPES.get(c, c) for c in _printable_args(args))


_JS_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
               "=": "\\u003D"}


def js_escape(*args: Any) -> str:
    out = []
    for c in _printable_args(args):
        if c in _JS_ESCAPES:
            out.append(_JS_ESCAPES[c])
        elif c < " ":
            out.append(f"\\u00{ord(c):02X}")
        elif c >= "\x80" and not c.isprintable():
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def urlquery_escape(*args: Any) -> str:
    return urllib.parse.quote_plus(_printable_args(args), safe="-_.~")


def call(function: Any, *args: Any) -> Any:
    # Template data never holds Go func values.
    if function is None:
        raise FuncError("call of nil")
    raise FuncError(f"non-function of type {go_type_name(function)}")


# --- Ollama's functions ---------------------------------------------------------------------------

def to_json(value: Any) -> str:
    try:
        return marshal(value)
    except UnsupportedValueError:
        return ""  # Ollama ignores the Marshal error and prints the empty result


def current_date(*_format: str) -> str:
    return datetime.date.today().isoformat()  # the format argument is accepted and ignored, as in Ollama


def yesterday_date(*_format: str) -> str:
    return (datetime.date.today() - datetime.timedelta(days=1)).isoformat()


def to_typescript_type(value: Any) -> str:
    return value.to_typescript_type() if isinstance(value, ToolProperty) else "any"


def _not(value: Any) -> bool:
    return not is_true(value)


FUNCTIONS: dict[str, Function] = {
    "call": Function(call, ("any",), "any"),
    "html": Function(html_escape, (), "any"),
    "index": Function(index, ("any",), "any"),
    "slice": Function(slice_, ("any",), "any"),
    "js": Function(js_escape, (), "any"),
    "len": Function(length, ("any",)),
    "not": Function(_not, ("any",)),
    "print": Function(lambda *a: sprint(list(a)), (), "any"),
    "printf": Function(lambda f, *a: sprintf(f, list(a)), ("string",), "any"),
    "println": Function(lambda *a: sprintln(list(a)), (), "any"),
    "urlquery": Function(urlquery_escape, (), "any"),
    "eq": Function(eq, ("any",), "any"),
    "ne": Function(ne, ("any", "any")),
    "lt": Function(lt, ("any", "any")),
    "le": Function(le, ("any", "any")),
    "gt": Function(gt, ("any", "any")),
    "ge": Function(ge, ("any", "any")),
    "json": Function(to_json, ("any",)),
    "currentDate": Function(current_date, (), "string"),
    "yesterdayDate": Function(yesterday_date, (), "string"),
    "toTypeScriptType": Function(to_typescript_type, ("any",)),
}

SHORT_CIRCUIT = frozenset({"and", "or"})

FUNCTION_NAMES = frozenset(FUNCTIONS) | SHORT_CIRCUIT
