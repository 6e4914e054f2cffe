"""Go's fmt and strconv formatting for template values: `%v` printing, Sprint/Sprintln, Quote, floats."""

from __future__ import annotations

import math
from typing import Any

from engine.template.gotypes import ByteSlice, GoStruct, Stringer

_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
                  '"': '\\"', "\\": "\\\\"}


def go_quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote: a double-quoted Go string literal; printable characters stay as they are
    (unless ascii_only, strconv.QuoteToASCII)."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    return '"' + "".join(_quote_char(c, '"', ascii_only) for c in s) + '"'


def can_backquote(s: str) -> bool:
    """strconv.CanBackquote: s fits in a `raw` literal."""
    return not any((c < " " and c != "\t") or c in "`\x7f\ufeff" or "\ud800" <= c <= "\udfff" for c in s)


def _quote_char(c: str, quote: str, ascii_only: bool = False) -> str:
    if c == quote or c == "\\":
        return "\\" + c
    if c in _SHORT_ESCAPES and c not in "\"'":
        return _SHORT_ESCAPES[c]
    if c.isprintable() and not "\ud800" <= c <= "\udfff" and not (ascii_only and c > "\x7f"):
        return c
    cp = ord(c)
    if cp < 0x80:
        return f"\\x{cp:02x}"
    if 0xD800 <= cp <= 0xDFFF:
        return "\\ufffd"
    return f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"


def go_quote_rune(cp: int) -> str:
    """strconv.QuoteRune, for %q on an integer."""
    if cp < 0 or cp > 0x10FFFF:
        cp = 0xFFFD
    return "'" + _quote_char(chr(cp), "'") + "'"


def go_rune_repr(c: str) -> str:
    """%#U: `U+0029 ')'`, without the character when it is not printable."""
    cp = ord(c) if c else 0xFFFD
    return f"U+{cp:04X} '{c}'" if c.isprintable() else f"U+{cp:04X}"


# --- floats: strconv.FormatFloat ------------------------------------------------------------------

def _shortest_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of |f| and the decimal point position: |f| = 0.DIGITS x 10^dp."""
    mantissa, _, exponent = repr(abs(f)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).rstrip("0")
    dp = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    dp -= len(digits) - len(stripped)
    return stripped, (dp if stripped else 0)


def _rounded_digits(f: float, significant: int) -> tuple[str, int]:
    """|f| rounded to `significant` digits, trailing zeros dropped (Go's decimal after Round)."""
    mantissa, _, exponent = f"{abs(f):.{significant - 1}e}".partition("e")
    digits = mantissa.replace(".", "").rstrip("0")
    return digits, (int(exponent) + 1 if digits else 0)


def _fmt_e(digits: str, dp: int, prec: int, upper: bool) -> str:
    first = digits[:1] or "0"
    rest = digits[1:1 + prec].ljust(prec, "0") if prec > 0 else ""
    exp = dp - 1 if digits else 0
    sign = "-" if exp < 0 else "+"
    return first + ("." + rest if prec > 0 else "") + ("E" if upper else "e") + sign + f"{abs(exp):02d}"


def _fmt_f(digits: str, dp: int, prec: int) -> str:
    whole = digits[:dp].ljust(dp, "0") if dp > 0 else "0"
    if prec <= 0:
        return whole
    fraction = "".join(digits[i] if 0 <= i < len(digits) else "0" for i in range(dp, dp + prec))
    return whole + "." + fraction


def format_float(f: float, fmt: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat(f, fmt, prec, 64) for fmt in e/E/f/g/G; prec -1 means shortest."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    lower = fmt.lower()
    upper = fmt in "EG"
    shortest = prec < 0
    if lower == "f" and not shortest:
        return sign + f"{abs(f):.{prec}f}"
    if lower == "e" and not shortest:
        return sign + _fmt_e(*_rounded_digits(f, prec + 1), prec, upper)
    if shortest:
        digits, dp = _shortest_digits(f)
        prec = {"e": max(len(digits) - 1, 0), "f": max(len(digits) - dp, 0), "g": len(digits)}[lower]
        if lower == "e":
            return sign + _fmt_e(digits, dp, prec, upper)
        if lower == "f":
            return sign + _fmt_f(digits, dp, prec)
    else:
        prec = max(prec, 1)
        digits, dp = _rounded_digits(f, prec)
    # %g: %e when the exponent is < -4 or >= the precision (6 when printing the shortest form)
    eprec = prec
    if eprec > len(digits) >= dp:
        eprec = len(digits)
    if shortest:
        eprec = 6
    exp = dp - 1
    if exp < -4 or exp >= eprec:
        return sign + _fmt_e(digits, dp, min(prec, len(digits)) - 1, upper)
    if prec > dp:
        prec = len(digits)
    return sign + _fmt_f(digits, dp, max(prec - dp, 0))


# --- %v -------------------------------------------------------------------------------------------

def sorted_keys(mapping: dict) -> list:
    """Map keys in Go's fmtsort order (numbers numerically, strings bytewise)."""
    try:
        return sorted(mapping)
    except TypeError:
        return sorted(mapping, key=lambda k: (type(k).__name__, str(k)))


def format_value(value: Any, plus: bool = False) -> str:
    """fmt's %v (%+v with plus) of a value nested anywhere; a nil prints as `<nil>`."""
    if value is None:
        return "<nil>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, Stringer):
        return value.go_string()
    if isinstance(value, GoStruct):
        return "{" + " ".join((f.name + ":" if plus else "") + format_value(getattr(value, f.name), plus)
                              for f in value.FIELDS) + "}"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{format_value(k, plus)}:{format_value(value[k], plus)}"
                                 for k in sorted_keys(value)) + "]"
    if isinstance(value, ByteSlice):
        value = value.as_bytes()
    if isinstance(value, (bytes, bytearray)):
        return "[" + " ".join(str(b) for b in value) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(format_value(v, plus) for v in value) + "]"
    return str(value)


def sprint(args: list) -> str:
    """fmt.Sprint: operands separated by a space when neither side is a string."""
    out = []
    previous_is_string = False
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i > 0 and not is_string and not previous_is_string:
            out.append(" ")
        out.append(format_value(arg))
        previous_is_string = is_string
    return "".join(out)


def sprintln(args: list) -> str:
    return " ".join(format_value(a) for a in args) + "\n"
