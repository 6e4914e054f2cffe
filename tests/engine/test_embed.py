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
    both = aio.run(embedder.embed(texts))
    alone = [aio.run(embedder.embed([text])) for text in texts]
    assert embedder.info.pooling == "mean"
    assert len(both.embeddings) == 2 and len(both.embeddings[0]) == embedder.info.n_embd
    for vector, single in zip(both.embeddings, alone, strict=True):
        assert close(vector, single.embeddings[0])
    assert not close(both.embeddings[0], both.embeddings[1])
    assert both.prompt_eval_count == sum(a.prompt_eval_count for a in alone)
    assert abs(math.hypot(*both.embeddings[0]) - 1.0) > 1e-3  # raw: the daemon normalises


def test_an_input_longer_than_the_window_is_refused(aio: Aio, embedder: RunnerProcess) -> None:
    """The daemon cuts inputs to the window asked for; one that still does not fit is the caller's mistake."""
    with pytest.raises(RunnerError) as caught:
        aio.run(embedder.embed(["short", "word " * 200]))
    assert caught.value.status == 400
    assert str(caught.value) == "the input length exceeds the context length"
    exactly = " ".join(["word"] * NUM_CTX)  # SmolLM2 adds no BOS: one token per word
    assert aio.run(embedder.embed([exactly])).prompt_eval_count == NUM_CTX


@pytest.mark.parametrize("num_ctx", [4, 16, 17, 24, 100])
def test_any_window_loads_and_embeds(aio: Aio, gguf: Path, num_ctx: int) -> None:
    """llama.cpp aborted (GGML_ASSERT ggml_can_mul_mat) loading a pooled context whose batch was not a multiple
    of its sequences."""
    process = aio.run(RunnerProcess.start(LoadSpec(str(gguf), num_ctx=num_ctx, parallel=1, embedding=True),
                                          load_timeout=60))
    try:
        result = aio.run(process.embed(["one", "two words"]))
        assert len(result.embeddings) == 2 and process.alive
    finally:
        aio.run(process.close())


def test_an_embedding_runner_does_not_generate(aio: Aio, embedder: RunnerProcess) -> None:
    async def generate() -> None:
        async for _ in embedder.completion(CompletionRequest("hi", {})):
            pass

    with pytest.raises(RunnerError):
        aio.run(generate())


def test_many_inputs_span_several_decodes(aio: Aio, embedder: RunnerProcess) -> None:
    texts = [f"sentence number {i} about topic {i * 7}" for i in range(40)]
    result = aio.run(embedder.embed(texts))
    assert len(result.embeddings) == 40
    assert close(result.embeddings[33], aio.run(embedder.embed([texts[33]])).embeddings[0])


def test_a_completion_runner_embeds_with_the_same_mean_pooling(aio: Aio, embedder: RunnerProcess,
                                                               runner: RunnerProcess) -> None:
    texts = ["The cat sat on the mat.", "word " * 50]  # both within either runner's window
    pooled = aio.run(embedder.embed(texts))
    in_slot = aio.run(runner.embed(texts))
    assert in_slot.prompt_eval_count == pooled.prompt_eval_count
    for a, b in zip(in_slot.embeddings, pooled.embeddings, strict=True):
        assert close(a, b)


def test_embedding_between_steps_leaves_a_running_completion_alone(aio: Aio, runner: RunnerProcess) -> None:
    prompt = CHAT.format("Name five rivers.")
    alone = aio.run(complete(runner, prompt, options={"num_predict": 24}))

    async def both() -> tuple[Completion, EmbedResult]:
        stream = asyncio.create_task(complete(runner, prompt + " ", options={"num_predict": 24}))
        await asyncio.sleep(0.05)
        return await stream, await runner.embed(["a sentence to embed"] * 3)

    again = aio.run(complete(runner, prompt, options={"num_predict": 24}))
    during, vectors = aio.run(both())
    assert again.text == alone.text
    assert len(vectors.embeddings) == 3 and during.done is not None


def test_an_input_longer_than_a_batch_is_embedded_in_chunks(aio: Aio, embedder: RunnerProcess,
                                                            small_batch_runner: RunnerProcess) -> None:
    text = "word " * 50  # about 51 tokens: four 16-token decodes
    chunked = aio.run(small_batch_runner.embed([text]))
    assert close(chunked.embeddings[0], aio.run(embedder.embed([text])).embeddings[0])
