"""Go's fmt.Sprintf for the verbs templates use: %v %s %q %d %t %f %e %g %x %c %U %T and friends, with
Go's flags, widths, precisions and its inline error forms (%!d(string=x), %!s(MISSING), %!(EXTRA ...))."""

from __future__ import annotations

import math
from typing import Any

from engine.template.gofmt import (
    can_backquote,
    format_float,
    format_value,
    go_quote,
    go_quote_rune,
    sorted_keys,
)
from engine.template.gotypes import ByteSlice, GoStruct, Stringer, go_type_name


class _Spec:
    __slots__ = ("minus", "plus", "plus_v", "sharp", "space", "zero", "width", "prec")

    def __init__(self) -> None:
        self.minus = self.plus = self.plus_v = self.sharp = self.space = self.zero = False
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
        if verb == "v":
            # %+v names struct fields (it does not sign numbers); %#v (Go syntax) prints as plain %v here
            spec.plus_v, spec.plus, spec.sharp = spec.plus, False, False
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
        parts = ((f.name + ":" if spec.plus_v else "") + _format_arg(getattr(arg, f.name), verb, spec)
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
        if spec.sharp and can_backquote(s):
            return _pad("`" + s + "`", spec)
        return _pad(go_quote(s, ascii_only=spec.plus), spec)
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


def _hex_float(v: float, upper: bool) -> str:
    """%x on a float: shortest hexadecimal mantissa, binary exponent with at least two digits."""
    mantissa, _, exponent = float.hex(abs(v)).partition("p")
    mantissa = mantissa.rstrip("0").rstrip(".")
    text = f"{mantissa}p{int(exponent):+03d}"
    return text.upper() if upper else text


def _format_float_verb(v: float, verb: str, spec: _Spec) -> str:
    if verb in "xX" and spec.prec is None and math.isfinite(v):
        return _pad(_sign(math.copysign(1.0, v) < 0, spec) + _hex_float(v, verb == "X"), spec, numeric_sign=True)
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
