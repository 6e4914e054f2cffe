"""Embeddings from a runner loaded with embedding=True (SmolLM2 has no pooling type: mean pooling)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.client import RunnerProcess
from engine.protocol import CompletionRequest, EmbedResult, LoadSpec, RunnerError
from tests.engine.conftest import CHAT, Aio, Completion, complete

NUM_CTX = 64


@pytest.fixture(scope="module")
def embedder(aio: Aio, gguf: Path) -> Iterator[RunnerProcess]:
    process = aio.run(RunnerProcess.start(LoadSpec(str(gguf), num_ctx=NUM_CTX, parallel=1, embedding=True),
                                          load_timeout=60))
    yield process
    aio.run(process.close())


def close(a: list[float], b: list[float]) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-3, abs_tol=1e-4) for x, y in zip(a, b, strict=True))


def test_two_inputs_in_one_call_equal_each_alone(aio: Aio, embedder: RunnerProcess) -> None:
    texts = ["The cat sat on the mat.", "Quantum chromodynamics describes the strong force."]
    both = aio.run(embedder.embed(texts, truncate=True))
    alone = [aio.run(embedder.embed([text], truncate=True)) for text in texts]
    assert embedder.info.pooling == "mean"
    assert len(both.embeddings) == 2 and len(both.embeddings[0]) == embedder.info.n_embd
    for vector, single in zip(both.embeddings, alone, strict=True):
        assert close(vector, single.embeddings[0])
    assert not close(both.embeddings[0], both.embeddings[1])
    assert both.prompt_eval_count == sum(a.prompt_eval_count for a in alone)
    assert abs(math.hypot(*both.embeddings[0]) - 1.0) > 1e-3  # raw: the daemon normalises


def test_long_input_is_truncated_or_refused(aio: Aio, embedder: RunnerProcess) -> None:
    long_text = "word " * 200
    cut = aio.run(embedder.embed([long_text, "short"], truncate=True))
    assert len(cut.embeddings) == 2
    assert cut.prompt_eval_count == NUM_CTX + len(aio.run(embedder.tokenize("short", add_special=True)))
    with pytest.raises(RunnerError) as caught:
        aio.run(embedder.embed([long_text], truncate=False))
    assert caught.value.status == 400
    assert str(caught.value) == "the input length exceeds the context length"


def test_an_embedding_runner_does_not_generate(aio: Aio, embedder: RunnerProcess) -> None:
    async def generate() -> None:
        async for _ in embedder.completion(CompletionRequest("hi", {})):
            pass

    with pytest.raises(RunnerError):
        aio.run(generate())


def test_many_inputs_span_several_decodes(aio: Aio, embedder: RunnerProcess) -> None:
    texts = [f"sentence number {i} about topic {i * 7}" for i in range(40)]
    result = aio.run(embedder.embed(texts, truncate=True))
    assert len(result.embeddings) == 40
    assert close(result.embeddings[33], aio.run(embedder.embed([texts[33]], truncate=True)).embeddings[0])


def test_a_completion_runner_embeds_with_the_same_mean_pooling(aio: Aio, embedder: RunnerProcess,
                                                               runner: RunnerProcess) -> None:
    texts = ["The cat sat on the mat.", "word " * 50]  # both within either runner's window
    pooled = aio.run(embedder.embed(texts, truncate=True))
    in_slot = aio.run(runner.embed(texts, truncate=True))
    assert in_slot.prompt_eval_count == pooled.prompt_eval_count
    for a, b in zip(in_slot.embeddings, pooled.embeddings, strict=True):
        assert close(a, b)


def test_embedding_between_steps_leaves_a_running_completion_alone(aio: Aio, runner: RunnerProcess) -> None:
    prompt = CHAT.format("Name five rivers.")
    alone = aio.run(complete(runner, prompt, options={"num_predict": 24}))

    async def both() -> tuple[Completion, EmbedResult]:
        stream = asyncio.create_task(complete(runner, prompt + " ", options={"num_predict": 24}))
        await asyncio.sleep(0.05)
        return await stream, await runner.embed(["a sentence to embed"] * 3, truncate=True)

    again = aio.run(complete(runner, prompt, options={"num_predict": 24}))
    during, vectors = aio.run(both())
    assert again.text == alone.text
    assert len(vectors.embeddings) == 3 and during.done is not None


def test_an_input_longer_than_a_batch_is_embedded_in_chunks(aio: Aio, embedder: RunnerProcess,
                                                            small_batch_runner: RunnerProcess) -> None:
    text = "word " * 50  # about 51 tokens: four 16-token decodes
    chunked = aio.run(small_batch_runner.embed([text], truncate=True))
    assert close(chunked.embeddings[0], aio.run(embedder.embed([text], truncate=True)).embeddings[0])
