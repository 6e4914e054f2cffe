"""A request's think setting as Ollama's api.ThinkValue holds it: not set (None), true/false, or a level.
Renderers and output parsers read it the way Go's methods do."""

from __future__ import annotations

Think = bool | str | None

THINK_LEVELS = ("high", "medium", "low", "max")


def think_on(think: Think, default: bool = False) -> bool:
    """ThinkValue.Bool(): true, or any level; `default` when the request did not set think (Go's code asks
    `think == nil` first where a model thinks unless told not to)."""
    if think is None:
        return default
    if isinstance(think, bool):
        return think
    return think in THINK_LEVELS


def think_level(think: Think) -> str:
    """ThinkValue.String(): the level, "medium" for true, "" otherwise."""
    if isinstance(think, str):
        return think
    return "medium" if think is True else ""


def think_valid(think: Think) -> bool:
    return think is None or isinstance(think, bool) or think in THINK_LEVELS
