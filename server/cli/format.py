"""Ollama's human-readable sizes, times and durations (its `format` package and Go's Duration.String)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from modelstore.gguf import human_number

__all__ = ["go_duration", "human_bytes", "human_number", "human_time", "parse_time"]

_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


def human_bytes(n: int) -> str:
    """`999 B`, `1.5 KB`, `98 MB`, `2.0 TB`: decimal units, a decimal only below 10 and when not whole."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= size:
            value = n / size
            if value >= 10 or value == math.trunc(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{n} B"


def _human_duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def parse_time(text: str | None) -> datetime:
    """An RFC 3339 time from the API (nanoseconds allowed); Go's zero time when absent."""
    if not text:
        return _ZERO_TIME
    text = text.replace("Z", "+00:00")
    if "." in text:  # Python reads at most microseconds
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)].ljust(6, '0')}{rest[digits:]}"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def human_time(moment: datetime, zero: str, now: datetime | None = None) -> str:
    """`2 minutes ago`, `4 minutes from now`, `Forever` (over 20 years ahead), `zero` for Go's zero time."""
    if moment == _ZERO_TIME:
        return zero
    delta = ((now or datetime.now(UTC)) - moment).total_seconds()
    hours = int(delta / 3600)  # Go's integer division truncates toward zero
    if int(int(hours / 24) / 365) < -20:
        return "Forever"
    if delta < 0:
        return _human_duration(-delta) + " from now"
    return _human_duration(delta) + " ago"


def go_duration(nanoseconds: int) -> str:
    """Go's time.Duration.String: `1.5s`, `2m3.000000001s`, `512.3ms`, `48µs`, `0s`."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    n = abs(nanoseconds)
    if n < 1_000:
        return f"{sign}{n}ns"
    if n < 1_000_000_000:
        unit, scale = ("µs", 1_000) if n < 1_000_000 else ("ms", 1_000_000)
        return f"{sign}{_fraction(n, scale)}{unit}"
    hours, n = divmod(n, 3_600_000_000_000)
    minutes, n = divmod(n, 60_000_000_000)
    text = f"{_fraction(n, 1_000_000_000)}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return f"{sign}{text}"


def _fraction(value: int, scale: int) -> str:
    whole, rest = divmod(value, scale)
    if not rest:
        return str(whole)
    digits = str(rest).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"
