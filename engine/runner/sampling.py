"""One llama.cpp sampler chain per sequence, built from Ollama's predict options.

Order (llama.cpp's common chain, as Ollama's llama runner used it): penalties → grammar → top_k → typical_p →
top_p → min_p → temperature → dist(seed). Temperature 0 is greedy (after penalties and grammar).

A grammar (`format`, schemas, forced tool calls) is kept beside the chain rather than in it, because
checking every token of the vocabulary against it costs more than the decode of a small model:

* As llama.cpp's common sampler does, the chain first picks from the unconstrained logits and the grammar
  checks that one token. Most picks are allowed.
* When the pick is rejected, the constrained pass runs on the best candidates only: the grammar checks the
  highest-scoring tokens (penalties applied) until it has allowed as many as the chain can use (one when
  greedy, `top_k` when sampling), and the chain picks among those. Every token left out scores lower than
  all of them, so they are exactly the candidates the full pass would keep. When fewer are allowed near the
  top, sampling also stops looking once the tokens below that top_k could still let in would not weigh a
  thousandth of the best allowed one; otherwise the grammar checks the whole vocabulary.

Greedy output is therefore the same as the full constrained pass's, token for token, and sampled output
never leaves the grammar.
"""

from __future__ import annotations

import ctypes
import math
from collections import Counter, deque
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


# llama_token_data as numpy sees it: candidates are filled from a logits row without a Python loop.
_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
assert _TOKEN_DATA.itemsize == ctypes.sizeof(lc.llama_token_data)
# The first constrained look at the best candidates covers this many times what the chain needs (at least
# FIRST_LOOK); each further look is LOOK_GROWTH times wider, until it would be most of the vocabulary.
FIRST_LOOK = 64
LOOK_GROWTH = 8
# Sampling may leave out tokens below the constrained pass's look when all of them that could be picked would
# weigh less than this next to the best allowed token: no probability moves by more than this fraction.
REST_WEIGHT = 1e-3


class TokenArray:
    """A llama_token_data_array over a numpy array of llama_token_data, for llama_sampler_apply."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data  # kept alive: the struct points into it
        self.struct = lc.llama_token_data_array(
            data=data.ctypes.data_as(lc.llama_token_data_p), size=len(data), selected=-1, sorted=False)
        self.pointer = ctypes.pointer(self.struct)

    def apply(self, sampler: Any) -> None:
        lc.llama_sampler_apply(sampler, self.pointer)

    @property
    def size(self) -> int:
        return self.struct.size  # samplers such as top_k shrink the array in place

    def selected(self) -> int:
        return int(self.data["id"][self.struct.selected])


class WindowPenalties:
    """llama.cpp's penalties sampler (repeat, presence) applied to the logits of the window's tokens only.

    llama.cpp's looks every token of the vocabulary up in its counts (230 µs per token for SmolLM2's 49152;
    here about 20). The arithmetic is its own, in float32 and in the same order, so the penalized logits are
    bit for bit the same. A frequency penalty is left to llama.cpp: its count × penalty + presence may be
    fused into one rounding there (an FMA), which numpy would not reproduce."""

    def __init__(self, window: int, params: SamplingParams) -> None:
        self._recent: deque[int] = deque(maxlen=window)
        self._counts: Counter[int] = Counter()
        self._repeat = np.float32(params.repeat_penalty)
        self._presence = np.float32(params.presence_penalty)

    @staticmethod
    def exact_for(params: SamplingParams) -> bool:
        return params.frequency_penalty == 0 and params.repeat_penalty > 0

    def accept(self, token: int) -> None:
        if len(self._recent) == self._recent.maxlen:
            oldest = self._recent[0]
            self._counts[oldest] -= 1
            if not self._counts[oldest]:
                del self._counts[oldest]
        self._recent.append(token)
        self._counts[token] += 1

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """A penalized copy of a logits row."""
        row = logits.copy()
        if self._counts:
            ids = np.fromiter(self._counts, dtype=np.intp, count=len(self._counts))
            seen = row[ids]
            row[ids] = np.where(seen <= 0, seen * self._repeat, seen / self._repeat) - self._presence
        return row


class Sampler:
    def __init__(self, model: LlamaModel, params: SamplingParams, *, num_ctx: int,
                 grammar: str | None, grammar_first: bool = False) -> None:
        """`grammar_first` runs the full constrained pass for every token: the reference the fast path is
        measured and tested against."""
        self.chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        self.grammar = None
        self.grammar_first = grammar_first
        self.fallbacks = 0  # picks the grammar rejected, made again by the constrained pass
        self._penalties = None
        # The penalty window is a ring buffer of this many tokens: at most the context (llama.cpp's -1), not
        # whatever a request asks for (repeat_last_n 5e8 cost 2 GB).
        self._window = num_ctx if params.repeat_last_n < 0 else min(params.repeat_last_n, num_ctx)
        # Without a grammar, penalties are applied here to the window's tokens only; the constrained pass needs
        # llama.cpp's sampler.
        self._window_penalties = (WindowPenalties(self._window, params)
                                  if params.penalizes and not grammar and WindowPenalties.exact_for(params) else None)
        if params.penalizes and self._window_penalties is None:
            self._penalties = lc.llama_sampler_init_penalties(
                model.n_vocab, self._window, params.repeat_penalty, params.frequency_penalty,
                params.presence_penalty)
            self._add(self.chain, self._penalties)
        # What follows the penalties, a chain of its own so that the constrained pass can run it alone.
        self._pick = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        self._add(self.chain, self._pick)
        if params.temperature <= 0:
            self._add(self._pick, lc.llama_sampler_init_greedy())
            self._needed = 1  # allowed candidates the constrained pass must find
            self._temperature = 0.0
        else:
            self._add(self._pick, lc.llama_sampler_init_top_k(params.top_k))
            self._add(self._pick, lc.llama_sampler_init_typical(params.typical_p, 1))
            self._add(self._pick, lc.llama_sampler_init_top_p(params.top_p, 1))
            self._add(self._pick, lc.llama_sampler_init_min_p(params.min_p, 1))
            self._add(self._pick, lc.llama_sampler_init_temp(params.temperature))
            seed = lc.LLAMA_DEFAULT_SEED if params.seed == -1 else params.seed & 0xFFFFFFFF
            self._add(self._pick, lc.llama_sampler_init_dist(seed))
            self._needed = params.top_k if 0 < params.top_k < model.n_vocab else model.n_vocab
            self._temperature = params.temperature
        if grammar:
            self.grammar = lc.llama_sampler_init_grammar(model.vocab, grammar.encode(), b"root")
            if not self.grammar:
                self.close()
                raise LlamaError("failed to parse the grammar")
            self._single = TokenArray(np.zeros(1, dtype=_TOKEN_DATA))
        if grammar or self._penalties is not None or (self._window_penalties is not None and self._temperature > 0):
            self._ids = np.arange(model.n_vocab, dtype=np.int32)
            self._vocab = TokenArray(np.zeros(model.n_vocab, dtype=_TOKEN_DATA))

    @staticmethod
    def _add(chain: Any, sampler: Any) -> None:
        lc.llama_sampler_chain_add(chain, sampler)  # the chain owns it from here

    def accept_prompt(self, tokens: list[int]) -> None:
        """The prompt counts for repeat penalties (as in Ollama), but must not advance a grammar."""
        if self._window_penalties is not None:
            for token in tokens[-self._window:]:
                self._window_penalties.accept(token)
        if self._penalties is not None:
            for token in tokens[-self._window:]:  # older tokens would fall out of the window anyway
                lc.llama_sampler_accept(self._penalties, token)

    def sample(self, ctx: LlamaContext, index: int) -> int:
        """Pick and accept the next token from the logits of batch token `index`."""
        if self.grammar is not None and self.grammar_first:
            token = self._constrained_pick(ctx.logits(index), whole_vocabulary=True)
        else:
            token = self._free_pick(ctx, index)
            if self.grammar is not None and not self._allows(token):
                self.fallbacks += 1
                token = self._constrained_pick(ctx.logits(index))
        if self.grammar is not None:
            lc.llama_sampler_accept(self.grammar, token)
        lc.llama_sampler_accept(self.chain, token)
        if self._window_penalties is not None:
            self._window_penalties.accept(token)
        return token

    def _fill_vocabulary(self, logits: np.ndarray) -> TokenArray:
        """Every token with its logit, in id order (samplers reorder and shrink the array, so all is reset)."""
        vocab = self._vocab
        vocab.data["id"] = self._ids
        vocab.data["logit"] = logits
        vocab.data["p"] = 0.0
        vocab.struct.size = len(vocab.data)
        vocab.struct.selected = -1
        vocab.struct.sorted = False
        return vocab

    def _free_pick(self, ctx: LlamaContext, index: int) -> int:
        """The chain's pick from the unconstrained logits, accepted by nothing yet. Greedy picks the first highest
        logit with numpy, as llama.cpp's greedy sampler does: llama_sampler_sample first copies the whole
        vocabulary into a candidates array (7 µs instead of 127 per token for SmolLM2's 49152 tokens)."""
        logits = ctx.logits(index)
        if self._window_penalties is not None:
            logits = self._window_penalties.apply(logits)
        elif self._penalties is not None:
            vocab = self._fill_vocabulary(logits)
            vocab.apply(self.chain)
            return vocab.selected()
        if self._temperature == 0:
            return int(logits.argmax())
        if self._window_penalties is None:
            # llama.cpp fills the candidates itself; accepting into the pick chain changes nothing.
            return lc.llama_sampler_sample(self._pick, ctx.ctx, index)
        vocab = self._fill_vocabulary(logits)
        vocab.apply(self._pick)
        return vocab.selected()

    def _allows(self, token: int) -> bool:
        single = self._single
        single.data[0] = (token, 1.0, 0.0)
        single.struct.size = 1
        single.apply(self.grammar)
        return bool(single.data["logit"][0] != -np.inf)

    def _constrained_pick(self, logits: np.ndarray, *, whole_vocabulary: bool = False) -> int:
        vocab = self._fill_vocabulary(logits)
        if self._penalties is not None:
            vocab.apply(self._penalties)  # in place, in id order
        scores = vocab.data["logit"]
        n_vocab = len(scores)
        allowed = vocab.data[:0]
        checked, look = 0, max(FIRST_LOOK, 4 * self._needed)
        while not whole_vocabulary and look < n_vocab // 2:
            best = np.argpartition(scores, n_vocab - look)[n_vocab - look:]
            best = best[np.lexsort((best, -scores[best]))]  # best first; ties by id, as the full pass has them
            candidates = TokenArray(vocab.data[best[checked:]])  # the better ones were checked already
            candidates.apply(self.grammar)
            allowed = np.concatenate([allowed, candidates.data[candidates.data["logit"] != -np.inf]])
            checked = look
            if len(allowed) >= self._needed or self._rest_is_negligible(allowed, scores[best[-1]], n_vocab - look):
                chosen = TokenArray(allowed)
                chosen.apply(self._pick)
                return chosen.selected()
            look *= LOOK_GROWTH
        vocab.apply(self.grammar)
        vocab.apply(self._pick)
        return vocab.selected()

    def _rest_is_negligible(self, allowed: np.ndarray, boundary: float, unchecked: int) -> bool:
        """Whether the allowed tokens the full pass could still add would weigh less than REST_WEIGHT of the
        best allowed one found: at most `top_k` minus those found (or every unchecked token, without a
        top_k), each scoring at most `boundary`. Sampling may then leave them out."""
        if not len(allowed):
            return False
        could_join = min(unchecked, self._needed - len(allowed))
        temperature = max(self._temperature, 1.0)  # top_p weighs the logits before the temperature does
        gap = (float(allowed["logit"][0]) - boundary) / temperature
        return could_join * math.exp(-gap) < REST_WEIGHT

    def close(self) -> None:
        if self.chain:
            lc.llama_sampler_free(self.chain)
            self.chain = None
        if self.grammar:
            lc.llama_sampler_free(self.grammar)
            self.grammar = None


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
