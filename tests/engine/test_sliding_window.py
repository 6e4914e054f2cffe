"""A sliding-window model (Gemma 3's layout, tiny and random, window of 8 positions) in a real runner.

Its sliding-window layers keep only the last window plus a batch of positions (llama.cpp's small SWA
cache, 256 cells here), so a slot that ran past that cannot go back to an early position: the positions
before it are gone from those layers. The runner must then evaluate the prompt again; a prefix whose
window is still held is reused. Random weights make any difference in the cache show in the text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gguf import GGUFValueType

from engine.client import RunnerProcess
from engine.protocol import LoadSpec
from tests.engine.conftest import Aio, complete
from tests.layouts.tiny import GEMMA3_OPTIONAL, hyperparameters, tiny_model, tokenizer_values

WINDOW = 8
LONG = "why is the sky blue hello world " * 50  # 350 tokens: past the 256 cells of the window cache


@pytest.fixture(scope="module")
def runner(aio: Aio, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunnerProcess]:
    values = {**hyperparameters("gemma3", layers=6), **tokenizer_values(),
              "gemma3.attention.sliding_window": (WINDOW, GGUFValueType.UINT32)}
    gguf = tiny_model("gemma3", tmp_path_factory.mktemp("swa") / "swa.gguf", values,
                      drop=GEMMA3_OPTIONAL)
    process = aio.run(RunnerProcess.start(LoadSpec(str(gguf), num_ctx=512, parallel=1, num_batch=32),
                                          load_timeout=60))
    yield process
    aio.run(process.close())


def _fresh(aio: Aio, runner: RunnerProcess, prompt: str, **options: int) -> str:
    aio.run(complete(runner, "the", options={"num_predict": 1}))  # the slot now shares only <s> with prompt
    first = aio.run(complete(runner, prompt, options=options))
    assert first.done is not None and first.done.cached_tokens <= 1
    return first.text


def test_a_prefix_whose_window_has_moved_on_is_evaluated_again(aio: Aio, runner: RunnerProcess) -> None:
    aio.run(complete(runner, LONG, options={"num_predict": 4}))
    prompt = LONG[:100] + "hello"  # shares some 20 tokens with what the slot holds
    again = aio.run(complete(runner, prompt, options={"num_predict": 16}))
    assert again.done is not None and again.done.cached_tokens == 0  # the runner started again from position 0
    assert again.text == _fresh(aio, runner, prompt, num_predict=16)


def test_a_prefix_whose_window_is_still_held_is_reused(aio: Aio, runner: RunnerProcess) -> None:
    aio.run(complete(runner, LONG, options={"num_predict": 4}))
    prompt = LONG + "the sky"
    continued = aio.run(complete(runner, prompt, options={"num_predict": 16}))
    assert continued.done is not None and continued.done.cached_tokens > 300
    assert continued.text == _fresh(aio, runner, prompt, num_predict=16)


def test_generation_goes_on_past_the_context_window(aio: Aio, runner: RunnerProcess) -> None:
    # 512 positions per slot, a window cache of 256: the context shift re-evaluates what it keeps. Sampled
    # (greedily a random model repeats itself, and the client stops a repeating stream) under a grammar
    # that never ends, so the model cannot stop before num_predict.
    options = {"num_predict": 700, "temperature": 1.0, "seed": 3}
    endless = "root ::= word\nword ::= [a-z ] word"
    result = aio.run(complete(runner, "why is the sky blue", options=options, grammar=endless), timeout=300)
    assert result.done is not None and result.done.done_reason == "length" and result.done.eval_count == 700

