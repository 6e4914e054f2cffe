"""The runner as a process: load failures, the command channel, cancellation and crashes."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.client import RunnerProcess
from engine.protocol import CompletionRequest, Done, LoadSpec, RunnerError, Token
from tests.engine.conftest import CHAT, GREEDY, Aio, complete

LONG = {**GREEDY, "num_predict": 400}
STORY = CHAT.format("Write a very long story about a lighthouse keeper.")


@pytest.fixture(scope="module")
def single(aio: Aio, gguf: Path) -> Iterator[RunnerProcess]:
    """One slot only, so a slot that is not given back would block the next request."""
    process = aio.run(RunnerProcess.start(LoadSpec(str(gguf), num_ctx=256, parallel=1), load_timeout=60))
    yield process
    aio.run(process.close())


def test_not_a_gguf_fails_to_load_with_the_reason(aio: Aio, tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"this is not a gguf file" * 100)
    with pytest.raises(RunnerError) as caught:
        aio.run(RunnerProcess.start(LoadSpec(str(bogus), num_ctx=256, parallel=1), load_timeout=60))
    assert str(caught.value).startswith("llama runner process has terminated: error loading model")
    assert str(bogus) in str(caught.value)


def test_a_load_that_stalls_times_out_and_the_process_is_killed(aio: Aio, tmp_path: Path) -> None:
    never_written = tmp_path / "model.gguf"
    os.mkfifo(never_written)  # opening it for reading blocks: the load makes no progress
    with pytest.raises(RunnerError) as caught:
        aio.run(RunnerProcess.start(LoadSpec(str(never_written), num_ctx=256, parallel=1), load_timeout=1.0))
    assert str(caught.value).startswith("timed out waiting for llama runner to start - progress 0.00")


def test_tokenize_and_detokenize_round_trip(aio: Aio, single: RunnerProcess) -> None:
    tokens = aio.run(single.tokenize("<|im_start|>user\nhello world", parse_special=True))
    assert tokens[0] == 1  # <|im_start|> parsed as one special token
    assert aio.run(single.tokenize("<|im_start|>", parse_special=False)) != [1]
    assert aio.run(single.detokenize(tokens)) == "<|im_start|>user\nhello world"
    assert single.info.num_ctx == 256 and single.info.parallel == 1 and single.info.n_vocab == 49152


def test_cancel_gives_the_slot_back(aio: Aio, single: RunnerProcess) -> None:
    async def abandon_after_two_tokens() -> None:
        stream = single.completion(CompletionRequest(STORY, LONG))
        seen = 0
        async for event in stream:
            assert isinstance(event, Token)
            seen += 1
            if seen == 2:
                break
        await stream.aclose()

    aio.run(abandon_after_two_tokens())
    # With one slot this would wait forever if the slot were still held; its KV stays as prefix cache.
    again = aio.run(complete(single, STORY, options={"num_predict": 1}), timeout=20)
    assert again.done.cached_tokens == again.done.prompt_eval_count - 1


def test_kill_9_mid_stream_fails_the_consumer_and_a_new_runner_works(aio: Aio, gguf: Path) -> None:
    spec = LoadSpec(str(gguf), num_ctx=256, parallel=2)
    victim = aio.run(RunnerProcess.start(spec, load_timeout=60))

    async def consume_and_kill() -> None:
        seen = 0
        async for _ in victim.completion(CompletionRequest(STORY, LONG)):
            seen += 1
            if seen == 3:
                os.kill(victim.pid, signal.SIGKILL)

    async def two_streams() -> list[BaseException | None]:
        return await asyncio.gather(consume_and_kill(), complete(victim, STORY, options={"num_predict": 400}),
                                    return_exceptions=True)

    errors = aio.run(two_streams())
    for error in errors:  # both in-flight requests fail
        assert isinstance(error, RunnerError)
        assert str(error) == "llama runner process has terminated: signal: killed"
    assert not victim.alive
    with pytest.raises(RunnerError):
        aio.run(victim.tokenize("hi"))
    aio.run(victim.wait_closed())

    fresh = aio.run(RunnerProcess.start(spec, load_timeout=60))
    try:
        assert aio.run(complete(fresh, "Once upon a time", options={"num_predict": 2})).done.eval_count == 2
    finally:
        aio.run(fresh.close())
    assert not fresh.alive


def test_close_ends_the_process(aio: Aio, gguf: Path) -> None:
    process = aio.run(RunnerProcess.start(LoadSpec(str(gguf), num_ctx=128, parallel=1), load_timeout=60))
    pid = process.pid
    aio.run(process.close())
    assert process.process.returncode == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_done_is_the_last_event(aio: Aio, single: RunnerProcess) -> None:
    got = aio.run(complete(single, "Once upon a time", options={"num_predict": 2}))
    assert isinstance(got.done, Done) and len(got.tokens) <= 2
