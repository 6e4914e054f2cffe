"""What a runner loads for a stored model: its GGUFs as they are, or the derived ones llama.cpp reads."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from engine.layouts import (
    RECIPE,
    LayoutError,
    build_projector,
    build_text,
    build_vision,
    plan,
    projector_plan,
    unsupported_reason,
)
from engine.protocol import RunnerError
from modelstore.derived import DerivedError, DerivedStore


class _Spec(Protocol):
    model_path: str
    projectors: tuple[str, ...]
    embedding: bool


def runnable_paths(derived: DerivedStore, model_path: str, projectors: tuple[str, ...], *,
                   embedding: bool = False) -> tuple[str, tuple[str, ...]]:
    """(model GGUF, projector GGUFs) for llama.cpp: derived files where the blobs are in Ollama's layout.

    Raises LayoutError for an architecture llama.cpp cannot run."""
    source = Path(model_path)
    layout = plan(source)
    reason = unsupported_reason(layout.arch)
    if reason is not None:
        raise LayoutError(reason)
    text = derived.ensure(source, "text", RECIPE, build_text) if layout.text else source
    if embedding:
        return str(text), ()
    usable: list[str] = []
    for projector in projectors:
        if projector_plan(projector).needs_copy:
            usable.append(str(derived.ensure(Path(projector), "projector", RECIPE, build_projector)))
        else:
            usable.append(projector)
    if not usable and layout.vision:
        usable.append(str(derived.ensure(source, "vision", RECIPE, build_vision)))
    return str(text), tuple(usable)


def sees_images(model_path: str | Path | None, projectors: list[Path]) -> bool:
    """Whether a model takes images: a projector layer, or a vision tower inside its GGUF that becomes one."""
    if projectors:
        return True
    if model_path is None:
        return False
    try:
        return plan(model_path).vision
    except (OSError, LayoutError, ValueError):
        return False


def preparer(derived: DerivedStore) -> Callable[[_Spec], Awaitable[_Spec]]:
    """For the scheduler: the spec with the paths a runner should load, derived files made (in a thread)
    before the first load and checked before each later one."""

    async def prepare(spec: _Spec) -> _Spec:
        try:
            model_path, projectors = await asyncio.to_thread(
                runnable_paths, derived, spec.model_path, spec.projectors, embedding=spec.embedding)
        except (LayoutError, DerivedError) as err:
            raise RunnerError(str(err), 500) from None
        except OSError as err:
            raise RunnerError(f"preparing the model for llama.cpp failed: {err}", 500) from None
        return dataclasses.replace(spec, model_path=model_path, projectors=projectors)  # type: ignore[type-var]

    return prepare
