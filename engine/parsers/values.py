"""Typed tool-call values: the text of an argument turned into the JSON type its tool declares, and Go's
number syntax (strconv.ParseInt / ParseFloat, fmt.Sscanf) that several parsers read numbers with."""

from __future__ import annotations

import math
import re
from typing import Any

from engine.parsers import gojson

_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_HEX = re.compile(r"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+")
_INT64_MIN = -(1 << 63)
_INT32 = range(-(1 << 31), 1 << 31)


def parse_int(s: str) -> int | None:
    """strconv.ParseInt(s, 10, 64); None where Go gives an error."""
    if not _INT.fullmatch(s):
        return None
    value = int(s)
    return value if _INT64_MIN <= value < (1 << 63) else None


def parse_float(s: str) -> float | None:
    """strconv.ParseFloat(s, 64); None where Go gives an error (bad syntax, or out of range)."""
    lower = s.lower()
    if lower in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    if lower in ("-inf", "-infinity"):
        return -math.inf
    if lower == "nan":
        return math.nan
    if _DECIMAL.fullmatch(s):
        value = float(s)
    elif _HEX.fullmatch(s):
        value = _hex_float(s)
    else:
        return None
    return None if math.isinf(value) else value


def _hex_float(s: str) -> float:
    sign = -1.0 if s.startswith("-") else 1.0
    body = s.lstrip("+-")[2:]
    mantissa, _, exponent = body.lower().partition("p")
    whole, _, fraction = mantissa.partition(".")
    digits = int(whole or "0", 16) + (int(fraction, 16) / 16 ** len(fraction) if fraction else 0.0)
    try:
        return sign * math.ldexp(digits, int(exponent))
    except OverflowError:
        return math.inf


def go_int64(f: float) -> int:
    """int64(f) as Go computes it on amd64: out of range (or infinite) gives the smallest int64."""
    if math.isinf(f) or not _INT64_MIN <= f < (1 << 63):
        return _INT64_MIN
    return int(f)


def typed_value(raw: str, types: list[str]) -> Any:
    """The value of an argument given as text, as the declared types allow: null first, then boolean,
    integer, number, array, object, and string when nothing else fits."""
    if raw.lower() == "null":
        return None
    if not types:
        return raw
    declared = set(types)
    only = len(types) == 1
    if "boolean" in declared:
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        if only:
            return False
    if "integer" in declared:
        value = parse_int(raw)
        if value is not None:
            return value
        if only:
            return raw
    if "number" in declared:
        f = parse_float(raw)
        if f is not None:
            return go_int64(f) if f == math.trunc(f) else f
        if only:
            return raw
    for kind, python_type in (("array", list), ("object", dict)):
        if kind in declared:
            try:
                decoded = gojson.loads(raw)
            except gojson.GoJSONError:
                decoded = None
            if isinstance(decoded, python_type) or (decoded is None and raw.strip() == "null"):
                return decoded
            if only:
                return raw
    return raw


def newline_trimmed_value(raw: str, types: list[str]) -> Any:
    """typed_value after dropping one leading and one trailing newline (the XML-style formats put the
    value on lines of its own)."""
    raw = raw.removeprefix("\n").removesuffix("\n")
    return typed_value(raw, types)


# --- fmt.Sscanf ---------------------------------------------------------------------------------------

_FMT_SPACE = " \t\r\v\f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
    "\u2028\u2029\u202f\u205f\u3000"


def _scan_start(s: str) -> str | None:
    """The input after the spaces a Sscanf verb skips; None where Sscanf fails first (a newline, or
    nothing left)."""
    i = 0
    while i < len(s):
        if s[i] == "\n":
            return None
        if s[i] not in _FMT_SPACE:
            break
        i += 1
    return s[i:] or None


def _accept(s: str, i: int, chars: str) -> int:
    return i + 1 if i < len(s) and s[i] in chars else i


def sscanf_int(s: str) -> int | None:
    """fmt.Sscanf(s, "%d", &v) into an int64: a signed run of digits at the start; trailing text ignored."""
    rest = _scan_start(s)
    if rest is None:
        return None
    i = _accept(rest, 0, "+-")
    start = i
    while i < len(rest) and rest[i] in "0123456789_":
        i += 1
    if i == start:
        return None
    return parse_int(rest[:i])


def sscanf_float(s: str) -> float | None:
    """fmt.Sscanf(s, "%f", &v) into a float64: the longest float-looking run at the start (Go's scanner
    takes `1.5.3` as 1.5 and `12abc` as 12); trailing text ignored."""
    rest = _scan_start(s)
    if rest is None:
        return None
    token = _float_token(rest)
    p = token.find("p")  # Go's own decimal-mantissa, binary-exponent form; only a lower-case p
    if p >= 0:
        mantissa = parse_float(token[:p])
        exponent = parse_int(token[p + 1:])
        if mantissa is None or exponent is None:
            return None
        try:
            return math.ldexp(mantissa, exponent)
        except OverflowError:
            return None
    return parse_float(token)


def _float_token(s: str) -> str:
    i = 0
    if s[:3].lower() == "nan":
        return s[:3]
    i = _accept(s, i, "+-")
    if s[i:i + 3].lower() == "inf":
        return s[:i + 3]
    digits, exponent = "0123456789_", "eEpP"
    if i < len(s) and s[i] == "0":
        i += 1
        if i < len(s) and s[i] in "xX":
            i += 1
            digits, exponent = "0123456789aAbBcCdDeEfF_", "pP"
    while i < len(s) and s[i] in digits:
        i += 1
    if i < len(s) and s[i] == ".":
        i += 1
        while i < len(s) and s[i] in digits:
            i += 1
    if i < len(s) and s[i] in exponent:
        i += 1
        i = _accept(s, i, "+-")
        while i < len(s) and s[i] in "0123456789_":
            i += 1
    return s[:i]
