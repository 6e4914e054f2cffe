"""Ollama's template.Named: pick the shipped Go template whose Hugging Face chat template is closest
(Levenshtein distance on code points) to a GGUF's `tokenizer.chat_template`."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources

MAX_DISTANCE = 100  # a match must be closer than this


@dataclass
class NamedTemplate:
    name: str
    template: str  # the Go template (<name>.gotmpl), CRLF normalised to LF
    parameters: dict = field(default_factory=dict)  # {"stop": [...]} from <name>.json, or {}


def levenshtein(a: str, b: str) -> int:
    """Edit distance on code points (Hyyrö's bit-parallel algorithm with Python integers as bit vectors)."""
    if len(a) < len(b):
        a, b = b, a
    m = len(b)
    if m == 0:
        return len(a)
    match_masks: dict[str, int] = {}
    for i, c in enumerate(b):
        match_masks[c] = match_masks.get(c, 0) | (1 << i)
    mask = (1 << m) - 1
    last = 1 << (m - 1)
    positive, negative, score = mask, 0, m
    for c in a:
        eq = match_masks.get(c, 0)
        xv = eq | negative
        xh = (((eq & positive) + positive) ^ positive) | eq
        horizontal_positive = negative | ~(xh | positive)
        horizontal_negative = positive & xh
        if horizontal_positive & last:
            score += 1
        elif horizontal_negative & last:
            score -= 1
        horizontal_positive = (horizontal_positive << 1) | 1
        horizontal_negative <<= 1
        positive = (horizontal_negative | ~(xv | horizontal_positive)) & mask
        negative = horizontal_positive & xv & mask
    return score


def _read(name: str) -> str | None:
    path = resources.files("engine.template").joinpath("templates", name)
    return path.read_text(encoding="utf-8") if path.is_file() else None


@functools.cache
def _index() -> tuple[tuple[str, str], ...]:
    """(jinja template, name) pairs of the packaged index.json, in file order."""
    entries = json.loads(_read("index.json") or "[]")
    return tuple((e["template"], e["name"]) for e in entries)


@functools.cache
def _load(name: str) -> NamedTemplate:
    template = (_read(f"{name}.gotmpl") or "").replace("\r\n", "\n")
    params_text = _read(f"{name}.json")
    parameters: dict = {}
    if params_text is not None:
        stop = json.loads(params_text).get("stop")
        if stop is not None:
            parameters["stop"] = list(stop)
    return NamedTemplate(name, template, parameters)


def named_template(jinja_chat_template: str) -> NamedTemplate | None:
    """The closest named template, or None when none is within MAX_DISTANCE edits.
    Ties go to the first entry of index.json, as in Ollama."""
    best_name, best_score = None, MAX_DISTANCE
    for candidate, name in _index():
        # The length difference bounds the distance from below: skip hopeless candidates cheaply.
        if abs(len(candidate) - len(jinja_chat_template)) >= best_score:
            continue
        score = levenshtein(jinja_chat_template, candidate)
        if score < best_score:
            best_name, best_score = name, score
    if best_name is None:
        return None
    loaded = _load(best_name)
    return NamedTemplate(loaded.name, loaded.template, {k: list(v) for k, v in loaded.parameters.items()})
