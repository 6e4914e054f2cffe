"""Ollama's model options: defaults, layering and type checks (api/types.go: Options, FromMap)."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

log = logging.getLogger(__name__)

# Keys that Ollama removed but old clients still send: ignored, like any unknown key.
REMOVED_KEYS = frozenset({
    "mirostat", "mirostat_tau", "mirostat_eta", "low_vram", "f16_kv", "logits_all", "vocab_only",
    "use_mlock", "penalize_newline", "tfs_z", "numa", "num_gqa", "rope_frequency_base",
    "rope_frequency_scale",
})


class OptionError(ValueError):
    """A request option of the wrong JSON type; Ollama's text, e.g. `option "x" must be of type integer`."""


@dataclass
class Options:
    # Predict options: per request, never cause a reload.
    num_keep: int = 4
    seed: int = -1
    num_predict: int = -1
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    typical_p: float = 1.0
    repeat_last_n: int = 64
    temperature: float = 0.8
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    stop: list[str] = field(default_factory=list)
    # Runner options: fixed at load time; a change reloads the model.
    num_ctx: int | None = None  # None: the server's default (OLLAMA_CONTEXT_LENGTH); 0 counts as set
    num_batch: int = 512
    num_gpu: int = -1
    main_gpu: int | None = None
    use_mmap: bool | None = None
    num_thread: int = 0
    draft_num_predict: int = 4  # used only by models with a draft model

    def predict_options(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k in PREDICT_KEYS}

    def runner_key(self) -> tuple:
        """What must match for a loaded runner to serve a request without reloading."""
        return tuple(getattr(self, k) for k in RUNNER_KEYS)


PREDICT_KEYS = (
    "num_keep", "seed", "num_predict", "top_k", "top_p", "min_p", "typical_p", "repeat_last_n",
    "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty", "stop",
)
RUNNER_KEYS = ("num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread", "draft_num_predict")
_TYPES = {f.name: f.type for f in fields(Options)}


def _coerce(key: str, value: Any) -> Any:
    kind = _TYPES[key]
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("int", "int | None"):
        if not is_number:
            raise OptionError(f'option "{key}" must be of type integer')
        return int(value)  # Go truncates floats toward zero
    if kind == "float":
        if not is_number or not math.isfinite(value):  # NaN would make every later comparison false
            raise OptionError(f'option "{key}" must be of type float32')
        return float(value)
    if kind == "bool | None":
        if not isinstance(value, bool):
            raise OptionError(f'option "{key}" must be of type boolean')
        return value
    # list[str]
    if not isinstance(value, list):
        raise OptionError(f'option "{key}" must be of type array')
    if not all(isinstance(v, str) for v in value):
        raise OptionError(f'option "{key}" must be of an array of strings')
    return list(value)


def apply_options(base: Options, values: dict[str, Any] | None) -> Options:
    """A copy of `base` with `values` applied; unknown keys are logged and ignored, `null`s skipped."""
    merged = Options(**asdict(base))
    for key, value in (values or {}).items():
        if value is None:
            continue
        if key not in _TYPES:
            log.warning("invalid option provided: %s", key)
            continue
        setattr(merged, key, _coerce(key, value))
    return merged


def layered_options(model_params: dict[str, Any], request_options: dict[str, Any] | None) -> Options:
    """Defaults, then the model's PARAMETERs, then the request's options: later layers win."""
    return apply_options(apply_options(Options(), model_params), request_options)
