"""Reranking (pollama's own; Ollama has none): `/api/rerank` and llama-server's `/v1/rerank`. A reranker GGUF
(pooling type rank) scores each document against the query in its runner; the answer lists the documents
most relevant first, with llama-server's raw scores."""

from __future__ import annotations

import math
import time
from typing import Any

from engine.capabilities import RERANK
from engine.client import RunnerError
from engine.protocol import RerankResult
from engine.scheduler import QueueFull, Scheduler
from modelstore import gojson
from modelstore.store import ModelStore
from server.api import RerankRequest
from server.http import APIError
from server.inference import model_spec, request_options, resolve_model

# llama-server's texts.
QUERY_REQUIRED = '"query" must be provided'
DOCUMENTS_REQUIRED = '"documents" must be a non-empty string array'


def _documents(value: Any) -> list[str]:
    """Strings, or objects with a `text` (Cohere's and Jina's documents)."""
    if not isinstance(value, list) or not value:
        raise APIError(DOCUMENTS_REQUIRED, 400)
    texts = []
    for document in value:
        if isinstance(document, dict):
            document = document.get("text")
        if not isinstance(document, str):
            raise APIError(DOCUMENTS_REQUIRED, 400)
        texts.append(document)
    return texts


async def rerank(store: ModelStore, scheduler: Scheduler, req: RerankRequest) -> dict[str, Any]:
    started = time.perf_counter()
    if req.query is None:
        raise APIError(QUERY_REQUIRED, 400)
    documents = _documents(req.documents)
    if req.top_n is not None and req.top_n < 1:
        raise APIError('"top_n" must be at least 1', 400)
    resolved = resolve_model(store, req.model, empty_status=400, empty_message="model is required")
    if RERANK not in resolved.capabilities:
        raise APIError(f"{resolved.name} does not support reranking", 400)
    opts = request_options(resolved.model, req.options)
    try:
        async with scheduler.use(model_spec(resolved), opts, req.keep_alive) as loaded:
            loaded_at = time.perf_counter()
            async with loaded.slot():
                result: RerankResult = await loaded.runner.rerank(req.query, documents, req.truncate is not False)
    except QueueFull as e:
        raise APIError(str(e), 503) from None
    except RunnerError as e:
        raise APIError(e.message, e.status if e.status != 500 else 400) from None
    if not all(math.isfinite(score) for score in result.scores):
        raise APIError("the model's scores contain NaN or Inf values", 500)
    ranked = sorted(range(len(documents)), key=lambda i: -result.scores[i])  # stable: ties keep their order
    results = []
    for index in ranked[: req.top_n]:
        entry: dict[str, Any] = {"index": index, "relevance_score": gojson.Float32(result.scores[index])}
        if req.return_documents:
            entry["document"] = {"text": documents[index]}
        results.append(entry)
    return {
        "model": req.model,
        "results": results,
        "total_duration": int((time.perf_counter() - started) * 1e9),
        "load_duration": int((loaded_at - started) * 1e9),
        "prompt_eval_count": result.prompt_eval_count,
    }
