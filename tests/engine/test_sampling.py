"""Where engine/runner/sampling.py does llama.cpp's sampling work itself (greedy picks by argmax, repeat and
presence penalties on the window's tokens), its picks and penalized logits must be llama.cpp's chain's, in
this process on the real SmolLM2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import llama_cpp as lc
import numpy as np
import pytest

from engine.runner.llama import Batch, LlamaContext, LlamaModel, init_backend
from engine.runner.sampling import Sampler, SamplingParams, TokenArray, WindowPenalties
from tests.engine.conftest import CHAT

NUM_CTX = 256
PROMPTS = ["Tell me a story about a lighthouse.", "List three colors.", "What is 2 + 2?"]


@pytest.fixture(scope="module")
def model(gguf: Path) -> LlamaModel:
    init_backend()
    return LlamaModel(str(gguf), n_gpu_layers=0, main_gpu=0, use_mmap=None)


@pytest.fixture(scope="module")
def ctx(model: LlamaModel) -> Iterator[LlamaContext]:
    context = LlamaContext(model, n_ctx=NUM_CTX, n_batch=NUM_CTX, n_ubatch=NUM_CTX, n_seq_max=1, n_threads=1,
                           flash_attn=None, kv_cache_type="f16", embeddings=False)
    yield context
    context.close()


def rows(model: LlamaModel, ctx: LlamaContext, prompt: str) -> int:
    """Decode the prompt with logits for every position; how many rows there are."""
    tokens = model.tokenize(CHAT.format(prompt), add_special=True, parse_special=True)
    ctx.seq_rm(0, -1, -1)
    batch = Batch(NUM_CTX)
    try:
        for position, token in enumerate(tokens):
            batch.add(token, position, 0, True)
        ctx.decode(batch)
    finally:
        batch.close()
    return len(tokens)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_the_greedy_pick_is_llama_cpps(model: LlamaModel, ctx: LlamaContext, prompt: str) -> None:
    greedy = lc.llama_sampler_init_greedy()
    sampler = Sampler(model, SamplingParams(temperature=0, repeat_penalty=1.0), num_ctx=NUM_CTX, grammar=None)
    try:
        count = rows(model, ctx, prompt)
        picks = [sampler.sample(ctx, index) for index in range(count)]
        assert picks == [lc.llama_sampler_sample(greedy, ctx.ctx, index) for index in range(count)]
    finally:
        lc.llama_sampler_free(greedy)
        sampler.close()


def test_ties_go_to_the_lowest_id_as_in_llama_cpp(model: LlamaModel, ctx: LlamaContext) -> None:
    """Both take the first of equal best logits: a row with its best value written at two places."""
    greedy = lc.llama_sampler_init_greedy()
    sampler = Sampler(model, SamplingParams(temperature=0, repeat_penalty=1.0), num_ctx=NUM_CTX, grammar=None)
    try:
        rows(model, ctx, PROMPTS[0])
        row = ctx.logits(0)
        best = float(row.max())
        low, high = int(np.argsort(row)[-2]), int(row.argmax())  # the runner-up, raised to the best value
        row[low] = best
        assert sampler.sample(ctx, 0) == min(low, high) == lc.llama_sampler_sample(greedy, ctx.ctx, 0)
    finally:
        lc.llama_sampler_free(greedy)
        sampler.close()


def test_repeat_penalties_still_go_through_the_chain(model: LlamaModel, ctx: LlamaContext) -> None:
    """With a penalty the pick is no longer the raw argmax once the best token has been seen."""
    count = rows(model, ctx, PROMPTS[1])
    top = int(ctx.logits(count - 1).argmax())
    sampler = Sampler(model, SamplingParams(temperature=0, repeat_penalty=1e6, repeat_last_n=64), num_ctx=NUM_CTX,
                      grammar=None)
    try:
        sampler.accept_prompt([top])
        assert sampler.sample(ctx, count - 1) != top
    finally:
        sampler.close()


def llama_chain(model: LlamaModel, params: SamplingParams, window: int) -> object:
    """llama.cpp's own chain for the options, penalties included: the reference."""
    chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
    lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_penalties(
        model.n_vocab, window, params.repeat_penalty, params.frequency_penalty, params.presence_penalty))
    if params.temperature <= 0:
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
    else:
        for sampler in (lc.llama_sampler_init_top_k(params.top_k), lc.llama_sampler_init_typical(params.typical_p, 1),
                        lc.llama_sampler_init_top_p(params.top_p, 1), lc.llama_sampler_init_min_p(params.min_p, 1),
                        lc.llama_sampler_init_temp(params.temperature), lc.llama_sampler_init_dist(params.seed)):
            lc.llama_sampler_chain_add(chain, sampler)
    return chain


def generated(model: LlamaModel, ctx: LlamaContext, prompt: str, pick: object, accept_prompt: object,
              count: int = 64) -> list[int]:
    """`count` tokens after the prompt, each picked by `pick(index)` and fed back."""
    tokens = model.tokenize(CHAT.format(prompt), add_special=True, parse_special=True)
    accept_prompt(tokens)
    ctx.seq_rm(0, -1, -1)
    batch = Batch(NUM_CTX)
    out: list[int] = []
    try:
        for position, token in enumerate(tokens):
            batch.add(token, position, 0, position == len(tokens) - 1)
        for _ in range(count):
            ctx.decode(batch)
            token = pick(batch.n_tokens - 1)
            out.append(token)
            batch.clear()
            batch.add(token, len(tokens) + len(out) - 1, 0, True)
    finally:
        batch.close()
    return out


PENALIZED = {
    "greedy, repeat 1.1 (Ollama's default penalty)": SamplingParams(temperature=0, repeat_penalty=1.1),
    "Ollama's defaults, seeded": SamplingParams(repeat_penalty=1.1, seed=42),
    "repeat 1.3 and presence 0.5 over 8 tokens": SamplingParams(temperature=0, repeat_penalty=1.3,
                                                                presence_penalty=0.5, repeat_last_n=8),
    "sampled, repeat 0.7 over the whole window": SamplingParams(temperature=1.0, top_k=0, top_p=1.0,
                                                                repeat_penalty=0.7, repeat_last_n=-1, seed=7),
    "frequency penalty (left to llama.cpp)": SamplingParams(temperature=0, repeat_penalty=1.1, frequency_penalty=0.4),
}


@pytest.mark.parametrize("params", PENALIZED.values(), ids=PENALIZED.keys())
def test_penalized_output_is_llama_cpps_token_for_token(model: LlamaModel, ctx: LlamaContext,
                                                        params: SamplingParams) -> None:
    window = NUM_CTX if params.repeat_last_n < 0 else params.repeat_last_n
    chain = llama_chain(model, params, window)
    sampler = Sampler(model, params, num_ctx=NUM_CTX, grammar=None)

    def accept_into_chain(tokens: list[int]) -> None:
        for token in tokens:
            lc.llama_sampler_accept(chain, token)

    try:
        for prompt in PROMPTS:
            reference = generated(model, ctx, prompt, lambda index: lc.llama_sampler_sample(chain, ctx.ctx, index),
                                  accept_into_chain)
            assert generated(model, ctx, prompt, lambda index: sampler.sample(ctx, index),
                             sampler.accept_prompt) == reference
    finally:
        lc.llama_sampler_free(chain)
        sampler.close()


@pytest.mark.parametrize("params", [SamplingParams(repeat_penalty=1.1), SamplingParams(repeat_penalty=0.7),
                                    SamplingParams(repeat_penalty=1.3, presence_penalty=0.5),
                                    SamplingParams(repeat_penalty=1.0, presence_penalty=-2.0)], ids=repr)
def test_penalized_logits_are_llama_cpps_bit_for_bit(model: LlamaModel, ctx: LlamaContext,
                                                     params: SamplingParams) -> None:
    """Every logit of a real row, after llama.cpp's penalties sampler and after WindowPenalties, with a window
    that holds tokens of high and of negative logits, some of them more than once, and has dropped older ones."""
    rows(model, ctx, PROMPTS[2])
    row = ctx.logits(0).copy()
    order = np.argsort(row)
    assert row[order[0]] < 0 < row[order[-1]]
    history = [int(t) for t in [*order[:5], *order[-5:], order[-1], order[0], order[-2], *order[100:110]]]
    window = 16
    penalties = WindowPenalties(window, params)
    reference = lc.llama_sampler_init_penalties(model.n_vocab, window, params.repeat_penalty,
                                                params.frequency_penalty, params.presence_penalty)
    try:
        for token in history:
            penalties.accept(token)
            lc.llama_sampler_accept(reference, token)
        candidates = np.zeros(model.n_vocab, dtype=[("id", np.int32), ("logit", np.float32), ("p", np.float32)])
        candidates["id"] = np.arange(model.n_vocab)
        candidates["logit"] = row
        array = TokenArray(candidates)
        array.apply(reference)
        assert np.array_equal(penalties.apply(row).view(np.uint32), candidates["logit"].view(np.uint32))
        assert not np.array_equal(candidates["logit"], row)  # the window did change something
    finally:
        lc.llama_sampler_free(reference)
