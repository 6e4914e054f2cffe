"""Cutting embedding inputs to the window a request asked for, as Ollama's embed handler does.

The runner's window is at least 4 tokens (the scheduler raises a smaller `num_ctx`), so the cut happens
here, against the window the request asked for, leaving room for the special tokens (BOS/CLS, EOS/SEP)
the runner adds around the text. The runner refuses an input that still does not fit; then each input is
tried alone and, if refused, cut once more to the batch size before giving up, as Ollama retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.capabilities import EMBEDDING
from engine.client import RunnerError, RunnerProcess
from engine.options import Options
from engine.protocol import EmbedResult
from server.http import APIError

AFTER_TRUNCATION = "input after truncation exceeds maximum context length"
CANNOT_TRUNCATE = "input exceeds maximum context length and cannot be truncated further"
INPUT_TOO_LONG = "the input length exceeds the context length"
# Ollama's num_batch for a model that embeds, unless the model or the request sets one.
EMBEDDING_NUM_BATCH = 2048


@dataclass(frozen=True)
class EmbedWindow:
    limit: int  # the window asked for, capped at the model's training context
    retry_limit: int  # the batch size: the second cut when the runner refuses an input
    bos: int
    eos: int

    def room(self, tokens: list[int], limit: int) -> int:
        """`limit` less one token for each special token the text's own tokens lack at either end."""
        if tokens and tokens[0] != self.bos:
            limit -= 1
        if tokens and tokens[-1] != self.eos:
            limit -= 1
        return limit


def embed_window(kv: dict[str, Any], capabilities: list[str], opts: Options, default_num_ctx: int,
                 explicit_options: tuple[dict[str, Any], ...]) -> EmbedWindow:
    """The window from the GGUF's metadata and the request's options (`num_ctx` 0 means the model's)."""
    train = kv.get(f"{kv.get('general.architecture')}.context_length")
    train = train if isinstance(train, int) and train > 0 else 0
    requested = default_num_ctx if opts.num_ctx is None else opts.num_ctx
    if requested > 0:
        limit = min(requested, train) if train else requested
    else:
        limit = train
    num_batch = opts.num_batch
    if EMBEDDING in capabilities and not any("num_batch" in layer for layer in explicit_options):
        num_batch = min(EMBEDDING_NUM_BATCH, requested) if requested > 0 else EMBEDDING_NUM_BATCH

    def token_id(key: str) -> int:
        value = kv.get(key)
        return value if isinstance(value, int) else 0

    return EmbedWindow(limit, num_batch, token_id("tokenizer.ggml.bos_token_id"),
                       token_id("tokenizer.ggml.eos_token_id"))


async def fit_input(runner: RunnerProcess, text: str, window: EmbedWindow, truncate: bool) -> str:
    """The text, or its head cut to the window; a 400 when it cannot fit (or must not be cut)."""
    tokens = await runner.tokenize(text, head=window.limit)
    limit = window.room(tokens, window.limit)
    if limit <= 0:
        raise APIError(AFTER_TRUNCATION, 400)
    if len(tokens) <= limit:
        return text
    if not truncate:
        raise APIError(INPUT_TOO_LONG, 400)
    return await runner.detokenize(tokens[:limit])


async def _fit_to_batch(runner: RunnerProcess, text: str, window: EmbedWindow) -> str:
    tokens = await runner.tokenize(text, head=window.limit)
    limit = min(window.room(tokens, window.limit), window.room(tokens, window.retry_limit))
    if limit <= 0:
        raise APIError(AFTER_TRUNCATION, 400)
    if len(tokens) <= limit:
        raise APIError(CANNOT_TRUNCATE, 400)
    return await runner.detokenize(tokens[:limit])


async def embed_inputs(runner: RunnerProcess, inputs: list[str], window: EmbedWindow,
                       truncate: bool) -> EmbedResult:
    texts = [await fit_input(runner, text, window, truncate) for text in inputs]
    try:
        return await runner.embed(texts)
    except RunnerError as e:
        if e.status != 400 or not truncate:
            raise
    vectors: list[list[float]] = []
    count = 0
    for text in texts:
        try:
            result = await runner.embed([text])
        except RunnerError as e:
            if e.status != 400:
                raise
            result = await runner.embed([await _fit_to_batch(runner, text, window)])
        vectors += result.embeddings
        count += result.prompt_eval_count
    return EmbedResult(embeddings=vectors, prompt_eval_count=count)
