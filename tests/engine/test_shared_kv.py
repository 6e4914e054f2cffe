"""Sequences sharing one KV pool (llama.cpp's kv_unified): each keeps its whole window; when together they
need more cells than the pool has, the youngest wait and evaluate their tokens again later."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.client import RunnerProcess
from engine.protocol import EmbedResult, LoadSpec
from tests.engine.conftest import CHAT, Aio, Completion, complete

POOL = 256  # llama.cpp's smallest context: the four sequences share these cells
TOPICS = ["a lighthouse keeper", "a mountain village", "a clockmaker's shop", "a river ferry"]


def prompt(topic: str) -> str:
    # about 60 tokens each: four of them and their answers need far more than the pool holds
    return CHAT.format(f"Write a short story about {topic}. " + "Use plain words and short sentences. " * 5)


@pytest.fixture(scope="module")
def shared(aio: Aio, gguf: Path) -> Iterator[RunnerProcess]:
    # A step's batch (4 × 32 tokens) is smaller than a long prompt: one that needs more cells than a batch
    # holds still starts, in chunks.
    spec = LoadSpec(str(gguf), num_ctx=POOL, parallel=4, num_batch=32, kv_unified=True)
    process = aio.run(RunnerProcess.start(spec, load_timeout=60))
    yield process
    aio.run(process.close())


def test_the_pool_is_one_window_shared_by_the_sequences(shared: RunnerProcess) -> None:
    info = shared.info
    assert info.kv_unified and info.parallel == 4
    assert info.n_ctx == POOL and info.num_ctx == POOL  # every sequence may use the whole window


def test_sequences_that_outgrow_the_pool_take_turns_and_each_finishes(aio: Aio, shared: RunnerProcess) -> None:
    options = {"num_predict": 40}
    alone = [aio.run(complete(shared, prompt(topic), options=options), timeout=300) for topic in TOPICS]

    async def together() -> list[Completion]:
        return await asyncio.gather(*(complete(shared, prompt(topic), options=options) for topic in TOPICS))

    for _ in range(2):  # the second time, the idle slots' cached prompts must give way as well
        results = aio.run(together(), timeout=600)
        for result, single in zip(results, alone, strict=True):
            assert result.done is not None, result
            assert (result.done.done_reason, result.done.eval_count) == ("length", 40)
            assert result.done.prompt_eval_count == single.done.prompt_eval_count
            # Batched with others (and evaluated again after giving its cells back) the floating-point sums
            # differ a little, so greedy text may part from the single run's, but not from its start.
            assert result.text[:20] == single.text[:20]


def test_a_long_sequence_still_gets_its_whole_window(aio: Aio, shared: RunnerProcess) -> None:
    """Idle slots' cached prefixes give way: one sequence alone can fill the pool, then shift."""
    long_prompt = CHAT.format("Tell a very long story about the sea. " * 20)
    result = aio.run(complete(shared, long_prompt, options={"num_predict": 200}), timeout=600)
    assert result.done is not None and result.done.eval_count == 200  # past the window: shifted, not cut


def test_an_embedding_decoded_between_steps_keeps_its_cells(aio: Aio, shared: RunnerProcess) -> None:
    """An input is decoded a batch per step (a cancel stops it between decodes), while sequences that
    outgrow the pool go on: its cells count as held, so the step loop neither decodes into them nor fails
    a sequence that cannot fit beside them (even a lone one: it waits for the embedding to end)."""
    text = "The tide came in over the stones of the old harbour. " * 16  # about 200 of the pool's 256 cells
    alone = aio.run(shared.embed([text]), timeout=300)
    options = {"num_predict": 40}

    async def together(topics: list[str]) -> tuple[list[Completion], EmbedResult]:
        streams = [asyncio.create_task(complete(shared, prompt(topic), options=options)) for topic in topics]
        await asyncio.sleep(0.2)
        vectors = await shared.embed([text])
        return await asyncio.gather(*streams), vectors

    for topics in (TOPICS[:1], TOPICS):
        results, during = aio.run(together(topics), timeout=600)
        assert all(r.done is not None and r.done.eval_count == 40 for r in results), results
        assert during.prompt_eval_count == alone.prompt_eval_count
        difference = max(abs(a - b) for a, b in zip(during.embeddings[0], alone.embeddings[0], strict=True))
        assert difference < 1e-3 * max(abs(a) for a in alone.embeddings[0])
