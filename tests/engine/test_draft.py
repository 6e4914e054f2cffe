"""Speculative decoding through a real runner: SmolLM2 as its own draft model. The output is the model's
own, token for token, with the draft and without it, for several sequences at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.client import RunnerProcess
from engine.protocol import LoadSpec
from tests.engine.conftest import CHAT, Aio, Completion, complete

PROMPTS = [CHAT.format("Write a haiku about the sea."), CHAT.format("Name three colours."),
           CHAT.format("What is a lighthouse?")]
SAMPLED = {"temperature": 0.9, "top_k": 40, "top_p": 0.9, "seed": 7}


def _runner(aio: Aio, gguf: Path, **draft: object) -> RunnerProcess:
    spec = LoadSpec(str(gguf), num_ctx=512, parallel=3, num_thread=1, **draft)  # type: ignore[arg-type]
    return aio.run(RunnerProcess.start(spec, load_timeout=60))


@pytest.fixture(scope="module")
def plain(aio: Aio, gguf: Path) -> Iterator[RunnerProcess]:
    runner = _runner(aio, gguf)
    yield runner
    aio.run(runner.close())


@pytest.fixture(scope="module")
def drafted(aio: Aio, gguf: Path) -> Iterator[RunnerProcess]:
    runner = _runner(aio, gguf, draft_path=str(gguf), draft_num_predict=4)
    yield runner
    aio.run(runner.close())


def _together(aio: Aio, runner: RunnerProcess, options: dict) -> list[Completion]:
    async def run() -> list[Completion]:
        return await asyncio.gather(*(complete(runner, p, options=options) for p in PROMPTS))

    return aio.run(run(), timeout=300)


@pytest.mark.parametrize("options", [{"num_predict": 40}, {**SAMPLED, "num_predict": 40}],
                         ids=["greedy", "sampled with a seed"])
def test_the_output_is_the_same_with_and_without_the_draft(aio: Aio, plain: RunnerProcess,
                                                           drafted: RunnerProcess, options: dict) -> None:
    without = _together(aio, plain, options)
    with_draft = _together(aio, drafted, options)
    assert [c.text for c in with_draft] == [c.text for c in without]
    for c, reference in zip(with_draft, without, strict=True):
        assert c.done is not None and reference.done is not None
        assert (c.done.eval_count, c.done.done_reason) == (reference.done.eval_count, reference.done.done_reason)
        assert reference.done.draft_count == 0
    proposed = sum(c.done.draft_count for c in with_draft if c.done)
    accepted = sum(c.done.draft_accepted for c in with_draft if c.done)
    # the model drafting for itself agrees with itself (greedily; sampling accepts what it happens to draw)
    assert proposed > 0 and accepted > (proposed * 0.9 if "seed" not in options else 0)


def test_a_stop_string_inside_accepted_drafts_cuts_the_output(aio: Aio, plain: RunnerProcess,
                                                             drafted: RunnerProcess) -> None:
    options = {"num_predict": 40}
    full = aio.run(complete(plain, PROMPTS[2], options=options)).text
    stop = full.split()[5]
    expected = aio.run(complete(plain, PROMPTS[2], options={**options, "stop": [stop]}))
    got = aio.run(complete(drafted, PROMPTS[2], options={**options, "stop": [stop]}))
    assert got.text == expected.text and got.done is not None and got.done.done_reason == "stop"
    # the cache kept only what the output used: the same prompt again continues from it correctly
    again = aio.run(complete(drafted, PROMPTS[2], options=options))
    assert again.text == full


def test_in_a_shared_pool_drafting_sequences_take_turns_and_each_finishes(aio: Aio, gguf: Path) -> None:
    """OLLAMA_NUM_PARALLEL unset: the model's and the draft's caches are pools of 256 cells that the three
    sequences share, and together they need more (about 3 x 100): the youngest give their cells back and
    wait, drafting goes on for those that fit, and each answer starts as it does alone (batched with others
    and evaluated again after giving its cells back, the sums differ a little, so greedy text may part from
    the single run's later on)."""
    spec = LoadSpec(str(gguf), num_ctx=256, parallel=3, num_thread=1, kv_unified=True, draft_path=str(gguf),
                    draft_num_predict=4)
    runner = aio.run(RunnerProcess.start(spec, load_timeout=60))
    try:
        options = {"num_predict": 80}
        stories = [CHAT.format(f"Write a long story about {topic}.") for topic in ("the sea", "a fox", "a city")]
        alone = [aio.run(complete(runner, p, options=options), timeout=120) for p in stories]

        async def run() -> list[Completion]:
            return await asyncio.gather(*(complete(runner, p, options=options) for p in stories))

        together = aio.run(run(), timeout=300)
    finally:
        aio.run(runner.close())
    assert sum(c.done.eval_count + c.done.prompt_eval_count for c in together if c.done) > 256
    for c, reference in zip(together, alone, strict=True):
        assert c.done is not None and reference.done is not None
        assert (c.done.eval_count, c.done.done_reason) == (reference.done.eval_count, reference.done.done_reason)
        assert c.text[:40] == reference.text[:40]
    assert sum(c.done.draft_accepted for c in together if c.done) > 0
