"""Images in the step loop, through a real runner (SmolLM2 plus the tiny test projector, 4 embeddings an
image, batches of 2): an image is evaluated a batch per step while other sequences decode, and an image
already in a slot's cache at the same place is not evaluated again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.client import RunnerProcess
from engine.protocol import CompletionRequest, Done, LoadSpec, Token
from tests.engine.conftest import CHAT, GREEDY, Aio, Completion, complete
from tests.features.projector import IMAGE_TOKENS, png, write_projector

BATCH = 2  # an image takes IMAGE_TOKENS / BATCH steps
BLACK, WHITE = png(8, 8, (0, 0, 0)), png(8, 8, (255, 255, 255))
TURN_1 = CHAT.format("[img-0] What is in this picture?")


@pytest.fixture(scope="module")
def runner(aio: Aio, gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunnerProcess]:
    projector = write_projector(tmp_path_factory.mktemp("projector") / "mmproj.gguf")
    spec = LoadSpec(str(gguf), num_ctx=256, parallel=2, num_batch=BATCH, num_thread=1, projectors=[str(projector)])
    process = aio.run(RunnerProcess.start(spec, load_timeout=60))
    yield process
    aio.run(process.close())


def _with_image(aio: Aio, runner: RunnerProcess, prompt: str, image: bytes, num_predict: int = 6) -> Completion:
    return aio.run(complete(runner, prompt, images=[image], options={"num_predict": num_predict}))


def test_the_same_image_in_the_same_place_is_not_evaluated_again(aio: Aio, runner: RunnerProcess) -> None:
    first = _with_image(aio, runner, TURN_1, BLACK)
    turn_2 = TURN_1 + first.text + "<|im_end|>\n" + CHAT.format("And its colour?")
    second = _with_image(aio, runner, turn_2, BLACK)
    assert first.done is not None and second.done is not None
    assert second.done.cached_tokens >= first.done.prompt_eval_count  # the image's positions among them
    # the same prompt evaluated from scratch (both slots taken meanwhile by another image) answers the same
    async def fill_both_slots() -> None:
        await asyncio.gather(*(complete(runner, CHAT.format(f"[img-0] Hello {n}"), images=[WHITE],
                                        options={"num_predict": 1}) for n in range(2)))

    aio.run(fill_both_slots())
    fresh = _with_image(aio, runner, turn_2, BLACK)
    assert fresh.done is not None and fresh.done.cached_tokens < first.done.prompt_eval_count - IMAGE_TOKENS
    assert fresh.text == second.text
    # another image in the same place is evaluated: its positions do not match the cached ones
    other = _with_image(aio, runner, turn_2, WHITE)
    assert other.done is not None and other.done.cached_tokens < first.done.prompt_eval_count - IMAGE_TOKENS


def test_other_sequences_decode_while_an_image_is_evaluated(aio: Aio, runner: RunnerProcess) -> None:
    events: list[str] = []

    async def text_stream() -> None:
        request = CompletionRequest(CHAT.format("Tell me a long story."), {**GREEDY, "num_predict": 40})
        async for event in runner.completion(request):
            events.append("text" if isinstance(event, Token) else "text done")

    async def image_request() -> None:
        while events.count("text") < 3:  # the text sequence is generating
            await asyncio.sleep(0.01)
        events.append("image sent")
        request = CompletionRequest(CHAT.format("[img-0] Describe it."), {**GREEDY, "num_predict": 2},
                                    images=[png(8, 8, (0, 0, 255))])
        async for event in runner.completion(request):
            events.append("image token" if isinstance(event, Token) else "image done")
            if isinstance(event, Done):  # the image was evaluated, not found in a cache
                assert event.cached_tokens <= event.prompt_eval_count - IMAGE_TOKENS

    async def both() -> None:
        await asyncio.gather(text_stream(), image_request())

    aio.run(both(), timeout=300)
    sent, first = events.index("image sent"), events.index("image token")
    # the image's prompt takes several steps (its text, then IMAGE_TOKENS / BATCH embedding batches, then the
    # text after it); the text sequence produced a token in each of them
    assert events[sent:first].count("text") >= IMAGE_TOKENS // BATCH


@pytest.fixture(scope="module")
def pool_runner(aio: Aio, gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunnerProcess]:
    """Two sequences sharing one pool of 256 KV cells (OLLAMA_NUM_PARALLEL unset), batches of 8."""
    projector = write_projector(tmp_path_factory.mktemp("projector") / "mmproj.gguf")
    spec = LoadSpec(str(gguf), num_ctx=256, parallel=2, num_batch=8, num_thread=1, projectors=[str(projector)],
                    kv_unified=True)
    process = aio.run(RunnerProcess.start(spec, load_timeout=60))
    yield process
    aio.run(process.close())


def test_in_a_shared_pool_a_prompt_with_an_image_gives_its_cells_back_and_is_evaluated_again(
        aio: Aio, pool_runner: RunnerProcess) -> None:
    """An older text sequence outgrows the pool beside a younger one with an image: the image's sequence
    gives its cells back, waits, then evaluates its prompt with the image again and its answer so far, and
    goes on as if nothing happened."""
    long_text = CHAT.format("Tell me a long story about a lighthouse. " * 22)  # about 200 tokens
    image_prompt = CHAT.format("[img-0] Describe it.")
    options = {**GREEDY, "num_predict": 40}
    alone = aio.run(complete(pool_runner, image_prompt, images=[BLACK], options=options), timeout=120)
    events: list[str] = []
    image_tokens: list[str] = []

    async def text_stream() -> None:
        request = CompletionRequest(long_text, {**GREEDY, "num_predict": 30})
        async for event in pool_runner.completion(request):
            events.append("text" if isinstance(event, Token) else "text done")

    async def image_request() -> Done:
        while "text" not in events:  # the text sequence holds its prompt's cells
            await asyncio.sleep(0.01)
        request = CompletionRequest(image_prompt, options, images=[BLACK])
        async for event in pool_runner.completion(request):
            assert isinstance(event, (Token, Done)), event
            if isinstance(event, Done):
                return event
            events.append("image")
            image_tokens.append(event.text)
        raise AssertionError("no Done")

    async def both() -> Done:
        return (await asyncio.gather(text_stream(), image_request()))[1]

    done = aio.run(both(), timeout=600)
    assert "".join(image_tokens) == alone.text and done.eval_count == 40
    # the two need more cells than the pool has (about 230 + 60): the image's sequence waited for the text's
    ended = events.index("text done")
    assert "image" in events[:ended] and "image" in events[ended:]
    assert "text" not in events[events.index("image", ended):]
