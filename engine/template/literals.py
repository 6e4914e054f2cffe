"""Go literal syntax inside actions: strconv.Unquote / UnquoteChar and the template number rules."""

from __future__ import annotations

import re

from engine.template.gofmt import go_quote

_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}
_HEX = "0123456789abcdefABCDEF"
_OCTAL_INT = re.compile(r"[+-]?0[0-7_]+")
_HEX_INT = re.compile(r"[+-]?0[xX][0-9a-fA-F_]+")


class LiteralError(ValueError):
    pass


def _unquote_char(s: str, i: int, quote: str) -> tuple[int, bool, int]:
    """Decode one (possibly escaped) character at s[i]: (value, value is a raw byte, next index)."""
    c = s[i]
    if c == quote and quote in "'\"":
        raise LiteralError("invalid syntax")
    if c != "\\":
        return ord(c), False, i + 1
    if i + 1 >= len(s):
        raise LiteralError("invalid syntax")
    e = s[i + 1]
    if e in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[e], False, i + 2
    if e in "'\"":
        if e != quote:
            raise LiteralError("invalid syntax")
        return ord(e), False, i + 2
    if e in "xuU":
        width = {"x": 2, "u": 4, "U": 8}[e]
        digits = s[i + 2:i + 2 + width]
        if len(digits) != width or any(d not in _HEX for d in digits):
            raise LiteralError("invalid syntax")
        value = int(digits, 16)
        if e == "x":
            return value, quote != "'", i + 2 + width
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise LiteralError("invalid syntax")
        return value, False, i + 2 + width
    if "0" <= e <= "7":
        digits = s[i + 1:i + 4]
        if len(digits) != 3 or any(not "0" <= d <= "7" for d in digits) or int(digits, 8) > 255:
            raise LiteralError("invalid syntax")
        return int(digits, 8), quote != "'", i + 4
    raise LiteralError("invalid syntax")


def unquote(literal: str) -> str:
    """strconv.Unquote for "..." and `...` literals. Byte escapes that are not valid UTF-8 become U+FFFD."""
    if len(literal) < 2 or literal[0] != literal[-1] or literal[0] not in "\"`":
        raise LiteralError("invalid syntax")
    body = literal[1:-1]
    if literal[0] == "`":
        if "`" in body:
            raise LiteralError("invalid syntax")
        return body.replace("\r", "")  # Go drops carriage returns from raw strings
    if "\\" not in body and '"' not in body:
        return body
    out = bytearray()
    i = 0
    while i < len(body):
        value, is_byte, i = _unquote_char(body, i, '"')
        out += bytes([value]) if is_byte else chr(value).encode("utf-8")
    return out.decode("utf-8", "replace")


def char_constant(literal: str) -> int:
    """The rune value of a 'x' character constant."""
    if len(literal) < 3 or literal[0] != "'":
        raise LiteralError("invalid syntax")
    value, _, end = _unquote_char(literal, 1, "'")
    if literal[end:] != "'":
        raise LiteralError(f"malformed character constant: {literal}")
    return value


def _parse_int(text: str) -> int:
    """strconv.ParseInt(text, 0, 64)."""
    if _OCTAL_INT.fullmatch(text):
        value = int(text.replace("_", ""), 8)
    else:
        value = int(text, 0)
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError("out of range")
    return value


def _parse_float(text: str) -> float:
    body = text.lstrip("+-")
    if body[:2] in ("0x", "0X"):
        value = float.fromhex(body.replace("_", ""))
        return -value if text.startswith("-") else value
    return float(text)


def number_value(text: str) -> int | float:
    """A number literal's value as Go's template engine types it: float if written with . e E p P
    (hex integers aside), int otherwise."""
    if text.endswith("i"):
        raise LiteralError("complex numbers are not supported")
    looks_float = any(c in text for c in ".eEpP") and not _HEX_INT.fullmatch(text)
    if not looks_float:
        try:
            return _parse_int(text)
        except ValueError:
            pass
    try:
        value = _parse_float(text)
    except ValueError:
        raise LiteralError(f"illegal number syntax: {go_quote(text)}") from None
    if not looks_float:
        raise LiteralError(f"integer overflow: {go_quote(text)}")
    return value
