"""Embeddings: one raw (un-normalised) vector per input; the daemon normalises.

Two ways, depending on how the runner was loaded:

* `PooledEmbedder`, for an `embedding=True` load: the context pools per sequence, with the GGUF's
  pooling type, or mean pooling for a generative model that has none. All inputs of a request go through
  as few decodes as fit, one sequence id per input.
* `SlotEmbedder`, for a completion load (Ollama accepts /api/embed for any model): each input is decoded
  in a borrowed idle slot with embeddings switched on for that decode, and its token vectors are averaged
  — the same mean pooling. Ollama's Go runner returned the last token's state there; the mean is the
  more useful sentence vector and what llama.cpp's own embedding tools default to.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.protocol import EmbedResult
from engine.runner.llama import Batch, LlamaContext, LlamaModel
from engine.runner.loop import INPUT_TOO_LONG, PromptError


def embedding_tokens(model: LlamaModel, text: str, num_ctx: int) -> list[int]:
    """The input's tokens, specials included; refused when they do not fit the window.

    The daemon cuts inputs to the window the request asked for (Ollama's embed handler does), so an input
    that is still too long here is the request's mistake, not something to cut silently."""
    tokens = model.tokenize(text, add_special=True, parse_special=True)
    if not tokens:
        raise PromptError("cannot embed an empty input", 400)
    if len(tokens) > num_ctx:
        raise PromptError(INPUT_TOO_LONG, 400)
    return tokens


class PooledEmbedder:
    def __init__(self, model: LlamaModel, ctx: LlamaContext, *, num_ctx: int, max_sequences: int) -> None:
        self.model = model
        self.ctx = ctx
        self.num_ctx = num_ctx
        self.max_sequences = max_sequences
        self.batch = Batch(ctx.n_batch)

    def embed(self, inputs: list[str]) -> EmbedResult:
        token_lists = [embedding_tokens(self.model, text, self.num_ctx) for text in inputs]
        return EmbedResult(embeddings=self.pooled(token_lists), prompt_eval_count=sum(len(t) for t in token_lists))

    def pooled(self, token_lists: list[list[int]]) -> list[list[float]]:
        """The pooled output of each token list (each fits the window), as few decodes as fit."""
        vectors: list[list[float]] = []
        start = 0
        while start < len(token_lists):
            group = self._next_group(token_lists, start)
            vectors.extend(self._decode_group(group))
            start += len(group)
        return vectors

    def _next_group(self, token_lists: list[list[int]], start: int) -> list[list[int]]:
        group, total = [token_lists[start]], len(token_lists[start])
        for tokens in token_lists[start + 1:]:
            if len(group) == self.max_sequences or total + len(tokens) > self.batch.capacity:
                break
            group.append(tokens)
            total += len(tokens)
        return group

    def _decode_group(self, group: list[list[int]]) -> list[list[float]]:
        self.batch.clear()
        for seq_id, tokens in enumerate(group):
            for position, token in enumerate(tokens):
                self.batch.add(token, position, seq_id, True)
        self.ctx.clear_memory()
        self.ctx.decode(self.batch)
        vectors = [self.ctx.sequence_embedding(seq_id) for seq_id in range(len(group))]
        self.ctx.clear_memory()
        return vectors

    def close(self) -> None:
        self.batch.close()


class SlotEmbedder:
    def __init__(self, model: LlamaModel, ctx: LlamaContext, batch: Batch, *, num_ctx: int,
                 make_room: Callable[[int], None]) -> None:
        self.model = model
        self.ctx = ctx
        self.batch = batch  # shared with the step loop: embeddings run between its steps
        self.num_ctx = num_ctx
        self.make_room = make_room  # cells of a shared KV cache, before an input is decoded

    def embed(self, inputs: list[str], seq_id: int) -> EmbedResult:
        """Embed in sequence `seq_id`, whose KV cache the caller has emptied and gets back empty."""
        token_lists = [embedding_tokens(self.model, text, self.num_ctx) for text in inputs]
        self.ctx.set_embeddings(True)
        try:
            vectors = [self._mean_state(tokens, seq_id) for tokens in token_lists]
        finally:
            self.ctx.set_embeddings(False)
        return EmbedResult(embeddings=vectors, prompt_eval_count=sum(len(t) for t in token_lists))

    def _mean_state(self, tokens: list[int], seq_id: int) -> list[float]:
        total = np.zeros(self.model.n_embd_out, dtype=np.float64)
        self.make_room(len(tokens))
        try:
            for start in range(0, len(tokens), self.batch.capacity):  # causal: chunks see the earlier ones
                chunk = tokens[start: start + self.batch.capacity]
                self.batch.clear()
                for offset, token in enumerate(chunk):
                    self.batch.add(token, start + offset, seq_id, True)
                self.ctx.decode(self.batch)
                total += self.ctx.token_embeddings(len(chunk)).sum(axis=0)
        finally:
            self.ctx.seq_rm(seq_id, -1, -1)
        return (total / len(tokens)).tolist()
