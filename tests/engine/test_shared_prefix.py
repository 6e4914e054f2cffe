"""Prompts that share a long prefix, through a real runner on SmolLM2: the prefix is evaluated once and copied
into the other slots (llama_memory_seq_cp), and the copies answer exactly as an evaluation would."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from llama_cpp import Llama

from engine.client import RunnerProcess
from engine.protocol import CompletionRequest, LoadSpec
from tests.engine.conftest import GREEDY, Aio, Completion, complete

MUSEUM = ("You are the guide of a small museum of clocks. " + "The museum opens at nine, closes at five, and shows "
          "water clocks, pendulum clocks and a clock that runs backwards. " * 6)
GARDEN = ("You look after a botanical garden. " + "It has a glasshouse of ferns, a pond with water lilies and a "
          "maze of yew hedges, and it is open every day. " * 6)
QUESTIONS = ["When does it open?", "What is the oldest thing here?", "Is there a cafe?", "Can I take photos?"]
OPTIONS = {"num_predict": 12}


def prompt(system: str, question: str) -> str:
    return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def runner(aio: Aio, gguf: Path) -> Iterator[RunnerProcess]:
    spec = LoadSpec(str(gguf), num_ctx=512, parallel=4, num_thread=1)
    process = aio.run(RunnerProcess.start(spec, load_timeout=60))
    yield process
    aio.run(process.close())


@pytest.fixture(scope="module")
def expected(gguf: Path) -> dict[str, str]:
    """Each prompt evaluated whole by llama-cpp-python, greedy (flash attention on, as the runner's auto)."""
    llm = Llama(str(gguf), n_ctx=512, n_threads=1, flash_attn=True, verbose=False)
    try:
        return {prompt(system, q): llm.create_completion(prompt(system, q), max_tokens=OPTIONS["num_predict"],
                                                         temperature=0, repeat_penalty=1.0)["choices"][0]["text"]
                for system in (MUSEUM, GARDEN) for q in QUESTIONS}
    finally:
        llm.close()


def _system_tokens(aio: Aio, runner: RunnerProcess, system: str) -> int:
    return len(aio.run(runner.tokenize(f"<|im_start|>system\n{system}<|im_end|>\n", add_special=True)))


@pytest.fixture(scope="module")
def pool_runner(aio: Aio, gguf: Path) -> Iterator[RunnerProcess]:
    """Four sequences sharing one pool of 512 KV cells (OLLAMA_NUM_PARALLEL unset)."""
    spec = LoadSpec(str(gguf), num_ctx=512, parallel=4, num_thread=1, kv_unified=True)
    process = aio.run(RunnerProcess.start(spec, load_timeout=60))
    yield process
    aio.run(process.close())


def test_requests_arriving_together_evaluate_the_shared_prefix_once(aio: Aio, runner: RunnerProcess,
                                                                    expected: dict[str, str]) -> None:
    _evaluate_the_shared_prefix_once(aio, runner, expected)


def test_in_a_shared_pool_a_copied_prefix_is_counted_once(aio: Aio, pool_runner: RunnerProcess,
                                                         expected: dict[str, str]) -> None:
    """The four prompts hold more tokens (4 x 186) than the pool has cells, but far fewer cells: a copied prefix
    is the same cells for every sequence that holds it. So none gives its cells back to evaluate them again
    later (which would change the greedy answers: batched differently, the sums differ a little)."""
    _evaluate_the_shared_prefix_once(aio, pool_runner, expected)


def _evaluate_the_shared_prefix_once(aio: Aio, runner: RunnerProcess, expected: dict[str, str]) -> None:
    prompts = [prompt(MUSEUM, q) for q in QUESTIONS]

    async def run() -> list[Completion]:
        return await asyncio.gather(*(complete(runner, p, options=OPTIONS) for p in prompts))

    results = aio.run(run(), timeout=300)
    assert [r.text for r in results] == [expected[p] for p in prompts]
    cached = sorted(r.done.cached_tokens for r in results if r.done)
    shared = _system_tokens(aio, runner, MUSEUM)
    assert len(cached) == 4 and cached[0] < 10 and all(n >= shared for n in cached[1:]), cached


def test_a_prefix_held_by_a_busy_slot_is_copied(aio: Aio, runner: RunnerProcess, expected: dict[str, str]) -> None:
    prompts = [prompt(GARDEN, q) for q in QUESTIONS]

    async def run() -> list[Completion]:
        first = runner.completion(CompletionRequest(prompts[0], {**GREEDY, "num_predict": 40}))
        await anext(first)  # generating: its slot holds its prompt
        later = await asyncio.gather(*(complete(runner, p, options=OPTIONS) for p in prompts[1:]))
        async for _ in first:
            pass
        return later

    later = aio.run(run(), timeout=300)
    assert [r.text for r in later] == [expected[p] for p in prompts[1:]]
    shared = _system_tokens(aio, runner, GARDEN)
    assert all(r.done is not None and r.done.cached_tokens >= shared for r in later)
