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

from collections.abc import Callable, Generator, Iterable, Iterator

import numpy as np

from engine.protocol import EmbedResult
from engine.runner.llama import Batch, LlamaContext, LlamaModel
from engine.runner.slots import Slot
from engine.runner.window import INPUT_TOO_LONG, PromptError, beyond


def embedding_tokens(model: LlamaModel, text: str, num_ctx: int) -> list[int]:
    """The input's tokens, specials included; refused when they do not fit the window.

    The daemon cuts inputs to the window the request asked for (Ollama's embed handler does), so an input
    that is still too long here is the request's mistake, not something to cut silently. A text surely too
    long is refused before it is tokenized (engine/runner/window.py)."""
    if beyond(model, text, num_ctx):
        raise PromptError(INPUT_TOO_LONG, 400)
    tokens = model.tokenize(text, add_special=True, parse_special=True)
    if not tokens:
        raise PromptError("cannot embed an empty input", 400)
    if len(tokens) > num_ctx:
        raise PromptError(INPUT_TOO_LONG, 400)
    return tokens


EmbedSteps = Generator[None, None, EmbedResult]


class PooledEmbedder:
    def __init__(self, model: LlamaModel, ctx: LlamaContext, *, num_ctx: int, max_sequences: int) -> None:
        self.model = model
        self.ctx = ctx
        self.num_ctx = num_ctx
        self.max_sequences = max_sequences
        self.batch = Batch(ctx.n_batch)

    def embed(self, inputs: list[str]) -> EmbedSteps:
        """Pauses (yields) after each decode, so that the runner can hear of a cancel between them; an input
        is tokenized only when its group is next."""
        counts: list[int] = []

        def token_lists() -> Iterator[list[int]]:
            for text in inputs:
                tokens = embedding_tokens(self.model, text, self.num_ctx)
                counts.append(len(tokens))
                yield tokens

        vectors = yield from self.pooled(token_lists())
        return EmbedResult(embeddings=vectors, prompt_eval_count=sum(counts))

    def pooled(self, token_lists: Iterable[list[int]]) -> Generator[None, None, list[list[float]]]:
        """The pooled output of each token list (each fits the window), as few decodes as fit; pauses after
        each decode but the last."""
        vectors: list[list[float]] = []
        group: list[list[int]] = []
        total = 0
        for tokens in token_lists:
            if group and (len(group) == self.max_sequences or total + len(tokens) > self.batch.capacity):
                vectors.extend(self._decode_group(group))
                group, total = [], 0
                yield
            group.append(tokens)
            total += len(tokens)
        if group:
            vectors.extend(self._decode_group(group))
        return vectors

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

    def embed(self, inputs: list[str], slot: Slot) -> EmbedSteps:
        """Embed in the borrowed `slot`, whose KV cache the caller has emptied and gets back empty (also when
        the steps are closed early). Pauses after each decode: the step loop runs in between, and while an
        input is decoded its cells count as the slot's (`surplus`), so that a shared pool keeps them."""
        vectors = []
        evaluated = 0
        for text in inputs:
            tokens = embedding_tokens(self.model, text, self.num_ctx)
            total = np.zeros(self.model.n_embd_out, dtype=np.float64)
            self.make_room(len(tokens))
            slot.surplus = len(tokens)
            try:
                for start in range(0, len(tokens), self.batch.capacity):  # causal: chunks see the earlier ones
                    total += self._decode_chunk(tokens[start: start + self.batch.capacity], start, slot.seq_id)
                    yield
            finally:
                self.ctx.seq_rm(slot.seq_id, -1, -1)
                slot.surplus = 0
            vectors.append((total / len(tokens)).tolist())
            evaluated += len(tokens)
        return EmbedResult(embeddings=vectors, prompt_eval_count=evaluated)

    def _decode_chunk(self, chunk: list[int], start: int, seq_id: int) -> np.ndarray:
        """The sum of the chunk's token vectors; embeddings are on for this decode only."""
        self.batch.clear()
        for offset, token in enumerate(chunk):
            self.batch.add(token, start + offset, seq_id, True)
        self.ctx.set_embeddings(True)
        try:
            self.ctx.decode(self.batch)
            return self.ctx.token_embeddings(len(chunk)).sum(axis=0)
        finally:
            self.ctx.set_embeddings(False)
