"""Greedy sampling without penalties or a grammar skips llama.cpp's sampler chain (engine/runner/sampling.py):
its pick must be the chain's, in this process on the real SmolLM2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import llama_cpp as lc
import numpy as np
import pytest

from engine.runner.llama import Batch, LlamaContext, LlamaModel, init_backend
from engine.runner.sampling import Sampler, SamplingParams
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
