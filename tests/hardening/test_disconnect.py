"""Issue 13 item 3: a client that leaves stops its work, from the moment its request is accepted: waiting
for a slot, or running, on every route that runs a model. "Stopped" is seen from outside: the runner
process uses no CPU once the clients are gone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, start_server
from tests.hardening.helpers import abandon, open_request, wait_idle

MODEL = "smollm2:135m"
# SmolLM2 repeats " 1 1 1 …" until num_predict: minutes of work for 20000 tokens.
ENDLESS = " ".join(["1"] * 12)
LONG = {"temperature": 0, "seed": 0, "repeat_penalty": 1.0, "num_predict": 20000}
# One decode per input in a completion runner: far longer than any test waits.
MANY_INPUTS = [f"sentence number {i} about the weather in town {i % 17}" for i in range(20000)]
LONG_WORK = {
    "/api/generate": {"prompt": ENDLESS, "raw": True, "options": LONG},
    "/api/chat": {"messages": [{"role": "user", "content": "Count from 1 to 10000."}], "options": LONG},
    "/api/embed": {"input": MANY_INPUTS},
    "/api/embeddings": {"prompt": "a sentence to embed " * 50},
    "/v1/chat/completions": {"messages": [{"role": "user", "content": "Count from 1 to 10000."}],
                             "temperature": 0, "max_tokens": 20000, "stream": True},
    "/v1/completions": {"prompt": ENDLESS, "temperature": 0, "max_tokens": 20000},
    "/v1/embeddings": {"input": MANY_INPUTS},
    "/v1/messages": {"messages": [{"role": "user", "content": "Count from 1 to 10000."}], "max_tokens": 20000,
                     "temperature": 0, "stream": True},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("disconnect")
    server = start_server(directory / "models", directory / "server.log", {"OLLAMA_NUM_PARALLEL": "1"},
                          bundled=True)
    yield server
    server.stop()


def loaded_runner(server: Server) -> int:
    r = httpx.post(f"{server.url}/api/generate", json={"model": MODEL}, timeout=120)
    assert r.json()["done_reason"] == "load"
    (pid,) = server.runner_pids()
    return pid


def wait_for_log(server: Server, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.output():
        assert time.monotonic() < deadline, f"not in the log: {text}"
        time.sleep(0.1)


@pytest.mark.parametrize("path", list(LONG_WORK))
def test_a_request_waiting_for_a_slot_is_dropped_when_its_client_leaves(server: Server, path: str) -> None:
    runner = loaded_runner(server)
    holder = open_request(server, "/api/generate", {"model": MODEL, "prompt": ENDLESS, "raw": True,
                                                    "options": LONG})  # streams: takes the only slot
    try:
        assert holder.recv(1)  # its first bytes: it runs
        abandon(server, path, {"model": MODEL, **LONG_WORK[path]}, after=1.0)  # waits for the slot, leaves
        wait_for_log(server, f"client disconnected, cancelled POST {path}")
    finally:
        holder.close()
    # Had the waiting request stayed queued, it would take the slot now and run for minutes.
    wait_idle(runner, timeout=120)  # at most one step after the cancel, however slow the box
    r = httpx.post(f"{server.url}/api/generate", json={
        "model": MODEL, "prompt": "hi", "stream": False, "options": {"temperature": 0, "num_predict": 2}}, timeout=60)
    assert r.status_code == 200 and r.json()["done"] is True
    assert server.runner_pids() == [runner]


@pytest.mark.parametrize("path", ["/api/embed", "/v1/embeddings"])
def test_a_running_embedding_batch_stops_between_decodes(server: Server, path: str) -> None:
    runner = loaded_runner(server)
    abandon(server, path, {"model": MODEL, **LONG_WORK[path]}, after=2.0)
    wait_for_log(server, f"client disconnected, cancelled POST {path}")
    assert wait_idle(runner, timeout=120) < 60  # all 20000 inputs would take many minutes


def test_a_stream_is_dropped_before_its_first_byte(server: Server) -> None:
    """The prompt takes a while to evaluate; the client leaves before the first token."""
    runner = loaded_runner(server)
    long_prompt = "The quick brown fox jumps over the lazy dog. " * 300
    received = abandon(server, "/api/generate", {"model": MODEL, "prompt": long_prompt, "raw": True,
                                                 "options": LONG}, after=0.3)
    assert received == b""
    wait_for_log(server, "client disconnected, cancelled POST /api/generate")
    wait_idle(runner, timeout=120)  # at most one step after the cancel, however slow the box


def test_an_embedding_runner_stops_a_cancelled_batch(tmp_path: Path) -> None:
    """The pooled path (a model loaded for embeddings only) stops between decodes too."""
    import asyncio

    from engine.client import RunnerProcess
    from engine.protocol import LoadSpec
    from server.bundled import bundled_gguf

    async def scenario() -> float:
        runner = await RunnerProcess.start(LoadSpec(str(bundled_gguf()), num_ctx=256, parallel=1, embedding=True),
                                           load_timeout=120)
        try:
            batch = asyncio.ensure_future(runner.embed(MANY_INPUTS * 5))
            await asyncio.sleep(1.0)
            batch.cancel()
            started = time.monotonic()
            result = await asyncio.wait_for(runner.embed(["one more"]), 60)
            assert len(result.embeddings) == 1
            return time.monotonic() - started
        finally:
            await runner.close()

    # The whole batch takes many minutes; after the cancel, the next request waits for one decode at most.
    assert asyncio.run(scenario()) < 60
