"""Ollama's own GGUF layouts, made loadable by llama.cpp.

Ollama's converter writes some architectures differently from llama.cpp's: the vision tower inside the
model GGUF, other architecture names and keys. `plan()` says what a model GGUF needs; `build_text()` and
`build_projector()` write the derived GGUFs (the text model in llama.cpp's layout, the vision tower as a
clip projector). The blobs themselves are never changed; `modelstore.derived` keeps the results.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from engine.layouts.clip import clip_translation, finish_projector, projector_type_default
from engine.layouts.edit import GGUFEdit, LayoutError
from engine.layouts.text import text_translation
from engine.layouts.write import write_gguf
from modelstore.gguf import read_gguf

# Bumped whenever a translation changes what it writes, so older derived files are rebuilt.
RECIPE = "1"

# Architectures Ollama stores that llama.cpp has no implementation of, and why.
UNSUPPORTED = {
    "mllama": "llama.cpp has no implementation of Llama 3.2 Vision's cross-attention image layers",
}


@dataclass(frozen=True)
class Plan:
    arch: str
    text: bool  # the model GGUF needs a translated copy for llama.cpp
    vision: bool  # its embedded vision tower can become a clip projector


@dataclass(frozen=True)
class ProjectorPlan:
    needs_copy: bool  # a projector GGUF that clip.cpp reads only with a fixed header


_plans: OrderedDict[tuple[str, int, int], Plan] = OrderedDict()
_plans_lock = threading.Lock()


def unsupported_reason(arch: str) -> str | None:
    reason = UNSUPPORTED.get(arch)
    return f"model architecture {arch!r} cannot run on llama.cpp: {reason}" if reason else None


def plan(path: str | os.PathLike[str]) -> Plan:
    """What the model GGUF at `path` needs (cached per file version)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _plans_lock:
        if key in _plans:
            return _plans[key]
    info = read_gguf(path)
    try:
        edit = GGUFEdit(path, info)
    except LayoutError:  # a file this module does not rewrite (big-endian, GGUF v1): llama.cpp decides
        edit = None
    if info.architecture in UNSUPPORTED or edit is None:
        result = Plan(info.architecture, False, False)
    else:
        result = Plan(info.architecture, text_translation(edit) is not None, clip_translation(edit) is not None)
    with _plans_lock:
        _plans[key] = result
        while len(_plans) > 64:
            _plans.popitem(last=False)
    return result


def build_text(source: Path, destination: Path) -> int:
    """Write the llama.cpp text GGUF of an Ollama-layout model; returns its size."""
    edit = GGUFEdit(source)
    translation = text_translation(edit)
    if translation is None:
        raise LayoutError(f"{source.name}: nothing to translate")
    translation.apply(edit)
    return write_gguf(edit, destination)


def build_vision(source: Path, destination: Path) -> int:
    """Write the clip projector GGUF made from the vision tower inside an Ollama-layout model."""
    edit = GGUFEdit(source)
    translation = clip_translation(edit)
    if translation is None:
        raise LayoutError(f"{source.name}: no vision tower llama.cpp can run")
    translation.apply(edit)
    finish_projector(edit)
    return write_gguf(edit, destination)


def projector_plan(path: str | os.PathLike[str]) -> ProjectorPlan:
    try:
        edit = GGUFEdit(Path(path))
    except (LayoutError, ValueError):  # not a GGUF this module rewrites: llama.cpp's clip loader decides
        return ProjectorPlan(needs_copy=False)
    return ProjectorPlan(needs_copy=projector_type_default(edit))


def build_projector(source: Path, destination: Path) -> int:
    """A separate projector blob with the header clip.cpp needs (LLaVA's without a projector type)."""
    edit = GGUFEdit(source)
    if not projector_type_default(edit):
        raise LayoutError(f"{source.name}: nothing to translate")
    return write_gguf(edit, destination)


__all__ = ["RECIPE", "LayoutError", "Plan", "build_projector", "build_text", "build_vision", "plan",
           "projector_plan", "unsupported_reason"]
