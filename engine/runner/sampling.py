"""One llama.cpp sampler chain per sequence, built from Ollama's predict options.

Order (llama.cpp's common chain, as Ollama's llama runner used it): penalties → grammar → top_k → typical_p →
top_p → min_p → temperature → dist(seed). Temperature 0 is greedy (after penalties and grammar).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import llama_cpp as lc
import numpy as np

from engine.runner.llama import LlamaContext, LlamaError, LlamaModel


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    typical_p: float = 1.0
    repeat_last_n: int = 64
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int = -1

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> SamplingParams:
        defaults = cls()
        return cls(**{name: options.get(name, getattr(defaults, name)) for name in cls.__dataclass_fields__})

    @property
    def penalizes(self) -> bool:
        neutral = (self.repeat_penalty, self.presence_penalty, self.frequency_penalty) == (1.0, 0.0, 0.0)
        return self.repeat_last_n != 0 and not neutral


class Sampler:
    def __init__(self, model: LlamaModel, params: SamplingParams, *, num_ctx: int,
                 grammar: str | None) -> None:
        self.chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        self._penalties = None
        self._window = num_ctx if params.repeat_last_n < 0 else params.repeat_last_n
        if params.penalizes:
            self._penalties = lc.llama_sampler_init_penalties(
                model.n_vocab, self._window, params.repeat_penalty, params.frequency_penalty,
                params.presence_penalty)
            self._add(self._penalties)
        if grammar:
            constraint = lc.llama_sampler_init_grammar(model.vocab, grammar.encode(), b"root")
            if not constraint:
                self.close()
                raise LlamaError("failed to parse the grammar")
            self._add(constraint)
        if params.temperature <= 0:
            self._add(lc.llama_sampler_init_greedy())
            return
        self._add(lc.llama_sampler_init_top_k(params.top_k))
        self._add(lc.llama_sampler_init_typical(params.typical_p, 1))
        self._add(lc.llama_sampler_init_top_p(params.top_p, 1))
        self._add(lc.llama_sampler_init_min_p(params.min_p, 1))
        self._add(lc.llama_sampler_init_temp(params.temperature))
        seed = lc.LLAMA_DEFAULT_SEED if params.seed == -1 else params.seed & 0xFFFFFFFF
        self._add(lc.llama_sampler_init_dist(seed))

    def _add(self, sampler: Any) -> None:
        lc.llama_sampler_chain_add(self.chain, sampler)  # the chain owns it from here

    def accept_prompt(self, tokens: list[int]) -> None:
        """The prompt counts for repeat penalties (as in Ollama), but must not advance a grammar."""
        if self._penalties is not None:
            for token in tokens[-self._window:]:  # older tokens would fall out of the window anyway
                lc.llama_sampler_accept(self._penalties, token)

    def sample(self, ctx: LlamaContext, index: int) -> int:
        """Pick and accept the next token from the logits of batch token `index`."""
        return lc.llama_sampler_sample(self.chain, ctx.ctx, index)

    def close(self) -> None:
        if self.chain:
            lc.llama_sampler_free(self.chain)
            self.chain = None


def token_logprobs(model: LlamaModel, logits: np.ndarray, token: int, top: int) -> dict[str, Any]:
    """Ollama's logprob entry for a sampled token: log-softmax of the raw logits row."""
    shifted = logits.astype(np.float64) - float(logits.max())
    logprobs = shifted - math.log(float(np.exp(shifted).sum()))
    entry = _describe(model, token, float(logprobs[token]))
    if top > 0:
        best = np.argpartition(-logprobs, top)[:top]
        best = best[np.argsort(-logprobs[best])]
        entry["top_logprobs"] = [_describe(model, int(t), float(logprobs[t])) for t in best]
    return entry


def _describe(model: LlamaModel, token: int, logprob: float) -> dict[str, Any]:
    data = model.piece(token)
    return {"token": data.decode("utf-8", errors="replace"), "logprob": logprob, "bytes": list(data)}
