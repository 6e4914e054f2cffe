"""Embeddings for a runner loaded with `embedding=True`.

The context pools per sequence: with the GGUF's pooling type, or mean pooling for a generative model that
has none (Ollama's Go runner returned the last token's state there; a mean over all tokens is the more
useful sentence vector and what llama.cpp's own embedding tools default to). All inputs of a request go
through as few decodes as fit, one sequence id per input. Vectors are returned raw: the daemon normalises.
"""

from __future__ import annotations

from engine.protocol import EmbedResult
from engine.runner.llama import Batch, LlamaContext, LlamaModel
from engine.runner.loop import INPUT_TOO_LONG, PromptError


class Embedder:
    def __init__(self, model: LlamaModel, ctx: LlamaContext, *, num_ctx: int, max_sequences: int) -> None:
        self.model = model
        self.ctx = ctx
        self.num_ctx = num_ctx
        self.max_sequences = max_sequences
        self.batch = Batch(ctx.n_batch)

    def embed(self, inputs: list[str], truncate: bool) -> EmbedResult:
        token_lists = [self._tokens(text, truncate) for text in inputs]
        vectors: list[list[float]] = []
        start = 0
        while start < len(token_lists):
            group = self._next_group(token_lists, start)
            vectors.extend(self._decode_group(group))
            start += len(group)
        return EmbedResult(embeddings=vectors, prompt_eval_count=sum(len(t) for t in token_lists))

    def _tokens(self, text: str, truncate: bool) -> list[int]:
        tokens = self.model.tokenize(text, add_special=True, parse_special=True)
        if len(tokens) <= self.num_ctx:
            return tokens
        if not truncate:
            raise PromptError(INPUT_TOO_LONG, 400)
        # Cut the text, not the special tokens around it (BOS/CLS in front, EOS/SEP at the end).
        plain = self.model.tokenize(text, add_special=False, parse_special=True)
        specials = len(tokens) - len(plain)
        head = next((n for n in range(specials + 1) if tokens[n: n + len(plain)] == plain), 0)
        tail = specials - head
        body = tokens[head: len(tokens) - tail][: self.num_ctx - head - tail]
        return tokens[:head] + body + tokens[len(tokens) - tail:]

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
