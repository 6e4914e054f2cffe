"""Text formats that must match Go byte for byte: `encoding/json`, `time.Time`, and `fmt` verbs.

Digests of config, params and messages blobs depend on these bytes, so they are produced here
rather than with `json.dumps`, whose escaping and float formatting differ from Go's.
"""

from __future__ import annotations

import base64
import functools
import math
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring

import numpy as np


class Float32(float):
    """A float that Go holds as float32 (GGUF metadata): JSON prints its shortest float32 form."""

    __slots__ = ()


# Escapes json.dumps does not do but Go's HTML-safe encoder does; lone surrogates stand for
# invalid UTF-8, which Go writes as the replacement character.
_GO_EXTRA_ESCAPES = re.compile("[<>&\u2028\u2029\ud800-\udfff]")
_GO_EXTRA_TABLE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _escape_extra(match: re.Match[str]) -> str:
    return _GO_EXTRA_TABLE.get(match.group(), "\\ufffd")


def _string(s: str) -> str:
    # json's encoder (what json.dumps(s, ensure_ascii=False) calls, without building an encoder per string)
    # already escapes `"`, `\`, \b \f \n \r \t and other controls as \u00xx (lowercase), exactly as Go
    # does; only the HTML-safe set and invalid text need adding. Every streamed chunk goes through here.
    return _GO_EXTRA_ESCAPES.sub(_escape_extra, encode_basestring(s))


def _scientific_parts(text: str) -> tuple[str, int]:
    """Split a shortest repr (`1.5e-07`, `123.25`, `1e+16`) into digits and decimal exponent.

    The value is `d[0].d[1:] × 10**exponent`; digits carry no leading or trailing zeros.
    """
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    leading_zeros = len(whole + frac) - len(digits)
    exponent += len(whole) - 1 - leading_zeros
    return digits.rstrip("0") or "0", exponent


def _shortest_parts(x: float, bits: int) -> tuple[str, int]:
    if bits == 64:
        return _scientific_parts(repr(float(x)))
    return _scientific_parts(np.format_float_scientific(np.float32(x), unique=True, trim="-"))


def _fixed(digits: str, exponent: int) -> str:
    if exponent < 0:
        return "0." + "0" * (-exponent - 1) + digits
    whole = digits[: exponent + 1].ljust(exponent + 1, "0")
    frac = digits[exponent + 1 :]
    return whole + ("." + frac if frac else "")


def _exponential(digits: str, exponent: int, *, min_exp_digits: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    sign = "-" if exponent < 0 else "+"
    return f"{mantissa}e{sign}{abs(exponent):0{min_exp_digits}d}"


def _check_finite(x: float) -> None:
    if not math.isfinite(x):
        raise ValueError(f"json: unsupported value: {x!r}")


def _json_float(x: float, bits: int) -> str:
    """Go encoding/json float: 'f' form for 1e-6 <= |x| < 1e21, else 'e' with a short exponent."""
    _check_finite(x)
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    magnitude = abs(x)
    if magnitude == 0:
        return sign + "0"
    digits, exponent = _shortest_parts(magnitude, bits)
    threshold_value = float(np.float32(magnitude)) if bits == 32 else magnitude
    if 1e-6 <= threshold_value < 1e21:
        return sign + _fixed(digits, exponent)
    return sign + _exponential(digits, exponent, min_exp_digits=1)


def float32_repr(x: float) -> str:
    """Shortest round-trip float32 text as Go's JSON encoder writes a float32 (embeddings)."""
    return _json_float(float(x), 32)


def dumps_float32_list(values: Iterable[float]) -> str:
    return "[" + ",".join(_json_float(float(v), 32) for v in values) + "]"


def _encode(obj: object, sort_keys: bool, out: list[str]) -> None:
    if obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, str):
        out.append(_string(obj))
    elif isinstance(obj, int):
        out.append(str(int(obj)))
    elif isinstance(obj, float):
        out.append(_json_float(obj, 32 if isinstance(obj, Float32) else 64))
    elif isinstance(obj, dict):
        items = sorted(obj.items(), key=lambda kv: str(kv[0])) if sort_keys else obj.items()
        out.append("{")
        for index, (key, value) in enumerate(items):
            if index:
                out.append(",")
            out.append(_string(str(key)))
            out.append(":")
            _encode(value, sort_keys, out)
        out.append("}")
    elif isinstance(obj, list | tuple):
        out.append("[")
        for index, value in enumerate(obj):
            if index:
                out.append(",")
            _encode(value, sort_keys, out)
        out.append("]")
    elif isinstance(obj, bytes | bytearray):
        # Go encodes []byte as standard base64.
        out.append('"' + base64.b64encode(bytes(obj)).decode("ascii") + '"')
    elif isinstance(obj, np.generic | np.ndarray):
        # numpy values (embeddings, GGUF arrays) print as the Go type of the same width would.
        if isinstance(obj, np.float32) or (isinstance(obj, np.ndarray) and obj.dtype == np.float32):
            _encode(Float32(obj) if obj.ndim == 0 else [Float32(v) for v in obj.tolist()], sort_keys, out)
        else:
            _encode(obj.tolist(), sort_keys, out)
    else:
        raise TypeError(f"json: unsupported type: {type(obj).__name__}")


def dumps(obj: object, *, sort_keys: bool = False) -> str:
    """Compact Go `json.Marshal` text. Dicts keep insertion order (structs) unless sort_keys (maps)."""
    out: list[str] = []
    _encode(obj, sort_keys, out)
    return "".join(out)


def encoder_bytes(obj: object, *, sort_keys: bool = False) -> bytes:
    """Go `json.NewEncoder(w).Encode(obj)`: the Marshal text plus one newline."""
    return (dumps(obj, sort_keys=sort_keys) + "\n").encode("utf-8", "surrogateescape")


# --- time.Time -------------------------------------------------------------------------------


def local_time_from_timestamp(ts: float) -> datetime:
    """A POSIX timestamp as an aware datetime in the server's local zone."""
    return datetime.fromtimestamp(ts).astimezone()


def _offset_text(dt: datetime) -> str:
    offset = dt.utcoffset()
    if offset is None or offset == timedelta(0):
        return "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_time(dt: datetime, nanosecond: int | None = None) -> str:
    """Go `time.Time` JSON text (RFC 3339, fraction trimmed of zeros, `Z` for a zero offset).

    `nanosecond` replaces the sub-second part when the caller has nanosecond precision
    (file mtimes); otherwise the datetime's microseconds are used. Naive datetimes count as UTC.
    """
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    nanos = dt.microsecond * 1000 if nanosecond is None else nanosecond
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    clock = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    return clock + fraction + _offset_text(dt)


@functools.lru_cache(maxsize=1)
def _utc_clock(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def format_utc_ns(timestamp_ns: int) -> str:
    """Go `time.Time` JSON text of a POSIX time in nanoseconds, in UTC (`time.Now().UTC()`). Every streamed
    chunk carries one, so the text up to the second is made once a second."""
    second, nanos = divmod(timestamp_ns, 1_000_000_000)
    return _utc_clock(second) + (f".{nanos:09d}".rstrip("0") if nanos else "") + "Z"


def format_mtime_ns(mtime_ns: int) -> str:
    """Go JSON text of a file mtime given in nanoseconds, in the server's local zone."""
    seconds, nanos = divmod(mtime_ns, 1_000_000_000)
    return format_time(local_time_from_timestamp(seconds), nanos)


# --- fmt verbs -------------------------------------------------------------------------------


def _go_g_float(x: float) -> str:
    """Go `%v` of a float64: shortest digits, exponent form when the exponent is < -4 or >= 6."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    magnitude = abs(x)
    if magnitude == 0:
        return sign + "0"
    digits, exponent = _shortest_parts(magnitude, 64)
    if exponent < -4 or exponent >= 6:
        return sign + _exponential(digits, exponent, min_exp_digits=2)
    return sign + _fixed(digits, exponent)


def go_value(value: object) -> str:
    """Go `%v` of a value decoded from JSON (numbers are float64 there, so ints print as floats)."""
    if value is None:
        return "<nil>"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return _go_g_float(float(value))
    return dumps(value)


def go_sharp_value(value: object) -> str:
    """Go `%#v` as `/api/show` uses it: strings quoted, numbers and bools as with `%v`."""
    if isinstance(value, str):
        return go_quote(value)
    return go_value(value)


_QUOTE_SHORT_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
    '"': '\\"', "\\": "\\\\",
}


def _quote_char(ch: str) -> str:
    if ch in _QUOTE_SHORT_ESCAPES:
        return _QUOTE_SHORT_ESCAPES[ch]
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a raw byte kept by surrogateescape: Go prints the byte
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return "\\ufffd"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def go_quote(s: str) -> str:
    """Go `strconv.Quote` (`%q`): printable runes kept, others escaped."""
    return '"' + "".join(ch if ch.isprintable() and ch not in '"\\' else _quote_char(ch) for ch in s) + '"'
