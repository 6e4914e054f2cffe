"""Go's fmt and strconv formatting for template values: `%v` printing, Printf, Sprint/Sprintln, Quote."""

from __future__ import annotations

import math
from typing import Any

from engine.template.gotypes import ByteSlice, GoStruct, Stringer, go_type_name

_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
                  '"': '\\"', "\\": "\\\\"}


def go_quote(s: str) -> str:
    """strconv.Quote: a double-quoted Go string literal; printable characters stay as they are."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    out = ['"']
    for c in s:
        out.append(_quote_char(c, '"'))
    out.append('"')
    return "".join(out)


def _quote_char(c: str, quote: str) -> str:
    if c == quote or c == "\\":
        return "\\" + c
    if c in _SHORT_ESCAPES and c not in "\"'":
        return _SHORT_ESCAPES[c]
    if c.isprintable() and not "\ud800" <= c <= "\udfff":
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


# --- Printf ---------------------------------------------------------------------------------------

class _Spec:
    __slots__ = ("minus", "plus", "sharp", "space", "zero", "width", "prec")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.width: int | None = None
        self.prec: int | None = None


def sprintf(fmt: str, args: list) -> str:
    """fmt.Sprintf for the verbs templates use: %v %s %q %d %t %f %e %g %x %c %T and friends."""
    out: list[str] = []
    argn = 0
    i, n = 0, len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        spec = _Spec()
        while i < n and fmt[i] in "+-# 0":
            flag = fmt[i]
            if flag == "-":
                spec.minus, spec.zero = True, False
            elif flag == "+":
                spec.plus = True
            elif flag == "#":
                spec.sharp = True
            elif flag == " ":
                spec.space = True
            elif not spec.minus:
                spec.zero = True
            i += 1
        if i < n and fmt[i] == "*":
            i += 1
            if argn < len(args) and isinstance(args[argn], int) and not isinstance(args[argn], bool):
                spec.width = args[argn]
                if spec.width < 0:
                    spec.minus, spec.zero, spec.width = True, False, -spec.width
            else:
                out.append("%!(BADWIDTH)")
            argn += 1
        else:
            start = i
            while i < n and fmt[i].isdigit():
                i += 1
            if i > start:
                spec.width = int(fmt[start:i])
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                i += 1
                if argn < len(args) and isinstance(args[argn], int) and not isinstance(args[argn], bool):
                    spec.prec = args[argn] if args[argn] >= 0 else None
                else:
                    out.append("%!(BADPREC)")
                argn += 1
            else:
                start = i
                while i < n and fmt[i].isdigit():
                    i += 1
                spec.prec = int(fmt[start:i] or "0")
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argn >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_arg(args[argn], verb, spec))
        argn += 1
    if argn < len(args):
        extra = (f"{go_type_name(a)}={format_value(a)}" if a is not None else "<nil>" for a in args[argn:])
        out.append(f"%!(EXTRA {', '.join(extra)})")
    return "".join(out)


def _bad_verb(arg: Any, verb: str) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type_name(arg)}={format_value(arg)})"


def _pad(text: str, spec: _Spec, numeric_sign: bool = False) -> str:
    width = spec.width
    if width is None or len(text) >= width:
        return text
    fill = width - len(text)
    if spec.minus:
        return text + " " * fill
    if spec.zero:
        if numeric_sign and text[:1] in "+- ":
            return text[0] + "0" * fill + text[1:]
        return "0" * fill + text
    return " " * fill + text


def _sign(negative: bool, spec: _Spec) -> str:
    if negative:
        return "-"
    if spec.plus:
        return "+"
    return " " if spec.space else ""


def _format_arg(arg: Any, verb: str, spec: _Spec) -> str:
    if verb == "T":
        return _pad("<nil>" if arg is None else go_type_name(arg), spec)
    if arg is None:
        return _pad("<nil>", spec) if verb == "v" else _bad_verb(arg, verb)
    if isinstance(arg, Stringer) and verb in "vsqxX":
        return _format_string(arg.go_string(), verb, spec, arg)
    if isinstance(arg, bool):
        if verb in "tv":
            return _pad("true" if arg else "false", spec)
        return _bad_verb(arg, verb)
    if isinstance(arg, int):
        return _format_int(arg, verb, spec)
    if isinstance(arg, float):
        return _format_float_verb(arg, verb, spec)
    if isinstance(arg, str):
        return _format_string(arg, verb, spec, arg)
    if isinstance(arg, ByteSlice):
        arg = arg.as_bytes()
    if isinstance(arg, (bytes, bytearray)) and verb in "sqxX":
        return _format_string(arg.decode("utf-8", "replace"), verb, spec, arg)
    if isinstance(arg, GoStruct):
        with_names = spec.plus and verb == "v"
        parts = ((f.name + ":" if with_names else "") + _format_arg(getattr(arg, f.name), verb, spec)
                 for f in arg.FIELDS)
        return "{" + " ".join(parts) + "}"
    if isinstance(arg, dict):
        return "map[" + " ".join(f"{_format_arg(k, verb, spec)}:{_format_arg(arg[k], verb, spec)}"
                                 for k in sorted_keys(arg)) + "]"
    if isinstance(arg, (list, tuple, bytes, bytearray)):
        return "[" + " ".join(_format_arg(v, verb, spec) for v in arg) + "]"
    return _bad_verb(arg, verb)


def _format_string(s: str, verb: str, spec: _Spec, original: Any) -> str:
    if verb in "sv":
        if spec.prec is not None:
            s = s[:spec.prec]
        return _pad(s, spec)
    if verb == "q":
        if spec.prec is not None:
            s = s[:spec.prec]
        return _pad(go_quote(s), spec)
    if verb in "xX":
        data = s.encode("utf-8", "surrogatepass")
        if spec.prec is not None:
            data = data[:spec.prec]
        digits = "%02x" if verb == "x" else "%02X"
        prefix = ("0x" if verb == "x" else "0X") if spec.sharp else ""
        separator = " " if spec.space else ""
        text = separator.join(prefix + digits % b for b in data) if spec.space else prefix + "".join(
            digits % b for b in data)
        return _pad(text, spec)
    return _bad_verb(original, verb)


def _format_int(v: int, verb: str, spec: _Spec) -> str:
    if verb == "c":
        return _pad(chr(v) if 0 <= v <= 0x10FFFF else "\ufffd", spec)
    if verb == "q":
        return _pad(go_quote_rune(v), spec)
    if verb == "U":
        text = f"U+{v:04X}" if v >= 0 else f"U+{v & 0xFFFFFFFFFFFFFFFF:04X}"
        if spec.sharp and 0 <= v <= 0x10FFFF and chr(v).isprintable():
            text += f" '{chr(v)}'"
        return _pad(text, spec)
    bases = {"d": (10, ""), "v": (10, ""), "b": (2, "0b"), "o": (8, "0"), "O": (8, "0o"), "x": (16, "0x"),
             "X": (16, "0X")}
    if verb not in bases:
        return _bad_verb(v, verb)
    base, prefix = bases[verb]
    digits = {10: "%d", 2: "{:b}", 8: "%o", 16: "%x"}[base]
    text = format(abs(v), "b") if base == 2 else digits % abs(v)
    if verb == "X":
        text = text.upper()
    if spec.prec is not None:
        text = "" if spec.prec == 0 and v == 0 else text.rjust(spec.prec, "0")
    if verb == "O" or (spec.sharp and (verb in "bxX" or (verb == "o" and not text.startswith("0")))):
        text = prefix + text
    text = _sign(v < 0, spec) + text
    if spec.prec is not None:
        zero, spec.zero = spec.zero, False
        padded = _pad(text, spec)
        spec.zero = zero
        return padded
    return _pad(text, spec, numeric_sign=True)


def _format_float_verb(v: float, verb: str, spec: _Spec) -> str:
    if verb not in "vgGeEfF":
        return _bad_verb(v, verb)
    fmt = {"v": "g", "F": "f"}.get(verb, verb)
    prec = -1 if spec.prec is None else spec.prec
    if prec < 0 and fmt in "eEfF":
        prec = 6
    text = format_float(v, fmt, prec)
    if math.isnan(v) or math.isinf(v):
        if text == "NaN" and (spec.plus or spec.space):
            text = ("+" if spec.plus else " ") + text
        zero, spec.zero = spec.zero, False
        padded = _pad(text, spec)
        spec.zero = zero
        return padded
    if not text.startswith("-"):
        text = _sign(False, spec) + text
    return _pad(text, spec, numeric_sign=True)
