"""The models a list shows (`/api/tags`, `/v1/models`): every one that loads, newest first. A broken one
is left out with a warning, as Ollama does, so that it never hides the rest."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from modelstore.model import BrokenModel, Model, load_model
from modelstore.store import ModelStore

log = logging.getLogger(__name__)
T = TypeVar("T")


def listed_models(store: ModelStore, describe: Callable[[Model], T]) -> list[T]:
    """`describe` of each model that loads, newest first (by the second, as Ollama sorts)."""
    models = []
    for name in store.manifest_names():
        try:
            model = load_model(store, name)
        except BrokenModel as e:
            log.warning("skipping %s", e)
            continue
        if model is not None:
            models.append(model)
    models.sort(key=lambda m: m.modified_at_ns // 1_000_000_000, reverse=True)
    return [describe(model) for model in models]
