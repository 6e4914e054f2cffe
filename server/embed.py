"""The embedding pipelines behind /api/embed and the legacy /api/embeddings."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from engine.capabilities import RERANK, model_capabilities
from engine.client import RunnerError
from engine.options import Options
from engine.protocol import EmbedResult
from engine.scheduler import QueueFull, Scheduler
from modelstore import gojson
from modelstore.model import load_model
from modelstore.names import parse_name
from modelstore.store import ModelStore
from server.api import EmbeddingRequest, EmbedRequest
from server.embed_window import embed_inputs, embed_window
from server.http import APIError
from server.inference import Resolved, model_spec, request_options


def _inputs(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise APIError("invalid input type", 400)


def _resolve(store: ModelStore, raw: str) -> Resolved:
    name = parse_name(raw)
    if not name.is_valid():
        raise APIError("invalid model name", 400)
    model = load_model(store, store.canonical_name(name))
    if model is None or model.gguf() is None:
        raise APIError(f"model {gojson.go_quote(raw)} not found, try pulling it first", 404)
    capabilities = model_capabilities(model)
    if RERANK in capabilities:  # its pooled output is a score, not a vector
        raise APIError(f"{name} does not support embeddings", 400)
    return Resolved(name, model, capabilities)


def normalize(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


async def _run(scheduler: Scheduler, resolved: Resolved, opts: Options, keep_alive: float | None,
               work: Callable[[Any], Awaitable[EmbedResult | None]]) -> EmbedResult | None:
    try:
        async with scheduler.use(model_spec(resolved), opts, keep_alive) as loaded:
            return await work(loaded)
    except QueueFull as e:
        raise APIError(str(e), 503) from None
    except RunnerError as e:
        # Ollama answers embedding failures without their own status as 400.
        raise APIError(e.message, e.status if e.status != 500 else 400) from None


async def embed(store: ModelStore, scheduler: Scheduler, req: EmbedRequest) -> dict[str, Any]:
    started = time.perf_counter()
    if not req.model.strip():
        raise APIError(f"model '{req.model}' not found", 404)
    if not parse_name(req.model).is_valid():
        raise APIError("invalid model name", 400)
    inputs = _inputs(req.input)
    resolved = _resolve(store, req.model)
    opts = request_options(resolved.model, req.options)
    loaded_at = started

    window = embed_window(resolved.model.gguf().kv, resolved.capabilities, opts, scheduler.default_num_ctx,
                          (resolved.model.params, req.options or {}))

    async def work(loaded: Any) -> EmbedResult | None:
        nonlocal loaded_at
        loaded_at = time.perf_counter()
        if not inputs:
            return None
        async with loaded.slot():
            return await embed_inputs(loaded.runner, inputs, window, req.truncate is not False)

    result = await _run(scheduler, resolved, opts, req.keep_alive, work)
    if result is None:
        return {"model": req.model, "embeddings": []}
    vectors = []
    for raw in result.embeddings:
        vector = np.asarray(raw, dtype=np.float64)
        if not np.all(np.isfinite(vector)):
            raise APIError("embedding contains NaN or Inf values", 400)
        vector = normalize(vector)
        if 0 < req.dimensions < len(vector):
            vector = normalize(vector[: req.dimensions])
        vectors.append([gojson.Float32(x) for x in vector.astype(np.float32).tolist()])
    return {
        "model": req.model,
        "embeddings": vectors,
        "total_duration": int((time.perf_counter() - started) * 1e9),
        "load_duration": int((loaded_at - started) * 1e9),
        "prompt_eval_count": result.prompt_eval_count,
    }


async def embeddings(store: ModelStore, scheduler: Scheduler, req: EmbeddingRequest) -> dict[str, Any]:
    if not req.model:
        raise APIError("model is required", 400)
    resolved = _resolve(store, req.model)
    opts = request_options(resolved.model, req.options)

    async def work(loaded: Any) -> EmbedResult | None:
        if not req.prompt:
            return None
        async with loaded.slot():  # no truncation here, as in Ollama: a prompt too long is refused
            return await loaded.runner.embed([req.prompt])

    result = await _run(scheduler, resolved, opts, req.keep_alive, work)
    return {"embedding": [] if result is None else list(result.embeddings[0])}
