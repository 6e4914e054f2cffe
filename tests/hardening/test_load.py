"""Issue 13, the load test: 100 clients at once against OLLAMA_NUM_PARALLEL=2, half of them leaving at a
random point (before their first byte, or after some tokens). Once they are gone no work is left running
(the runner is idle) and the next request gets its slot at once; over rounds repeated for a bounded soak,
resident memory stays flat.

The soak lasts SOAK_SECONDS (POLLAMA_SOAK_SECONDS, default 60): the issue asks for 5 minutes, which would
be a third of the whole suite's time on a 2-core machine; a minute runs several rounds of 100 clients, and
memory that grows per round shows within them. Set POLLAMA_SOAK_SECONDS=300 for the full soak."""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import Server, start_server
from tests.hardening.helpers import memory_kib, open_request, runners, wait_idle

MODEL = "smollm2:135m"
CLIENTS = 100
SOAK_SECONDS = float(os.environ.get("POLLAMA_SOAK_SECONDS", "60"))
GROWTH_KIB = 64 * 1024  # what "flat" allows between the first and the last round


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("load")
    server = start_server(directory / "models", directory / "server.log", {"OLLAMA_NUM_PARALLEL": "2"},
                          bundled=True)
    yield server
    server.stop()


def body(rng: random.Random) -> dict:
    return {"model": MODEL, "prompt": f"Tell me a story about the number {rng.randrange(1000)}.",
            "options": {"temperature": 0.7, "seed": rng.randrange(1 << 30), "num_predict": rng.randrange(8, 40)}}


def completes(server: Server, request: dict) -> str:
    with httpx.stream("POST", f"{server.url}/api/generate", json=request, timeout=600) as r:
        lines = [json.loads(line) for line in r.iter_lines()]
    assert r.status_code == 200 and lines[-1]["done"] is True, lines[-1:]
    return "completed"


def leaves(server: Server, request: dict, rng: random.Random) -> str:
    """Leave before the first byte (while queued, or while the prompt is read) or after a few lines."""
    sock = open_request(server, "/api/generate", request)
    with sock:
        if rng.random() < 0.5:
            time.sleep(rng.uniform(0, 2))
            return "left early"
        lines_wanted = rng.randrange(1, 10)
        received = b""
        sock.settimeout(600)
        while received.count(b"\n") < lines_wanted + 6:  # the status line and headers, then NDJSON lines
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    return "left late"


def one_round(server: Server, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    plans = [(body(rng), i % 2 == 0, random.Random(seed * 1000 + i)) for i in range(CLIENTS)]
    with ThreadPoolExecutor(CLIENTS) as pool:
        outcomes = list(pool.map(
            lambda plan: leaves(server, plan[0], plan[2]) if plan[1] else completes(server, plan[0]), plans))
    return {outcome: outcomes.count(outcome) for outcome in set(outcomes)}


def test_a_hundred_clients_half_leaving_leave_no_work_and_no_growth(server: Server) -> None:
    assert httpx.post(f"{server.url}/api/generate", json={"model": MODEL}, timeout=120).status_code == 200
    (runner,) = runners(server)
    daemon = server.process.pid
    samples: list[tuple[int, int]] = []
    started = time.monotonic()
    rounds = 0
    while rounds < 2 or time.monotonic() - started < SOAK_SECONDS:
        counts = one_round(server, rounds)
        rounds += 1
        assert counts["completed"] == CLIENTS // 2, counts
        wait_idle(runner, timeout=30)  # nothing runs for the clients that left
        samples.append((memory_kib(daemon, "VmRSS"), memory_kib(runner, "VmRSS")))
        print(f"round {rounds}: {counts}, RSS daemon {samples[-1][0] // 1024} MiB, "
              f"runner {samples[-1][1] // 1024} MiB")
    assert runners(server) == [runner]
    # The first round warms caches and pools; from the second on, memory stays where it was.
    first, last = samples[1], samples[-1]
    assert last[0] - first[0] < GROWTH_KIB and last[1] - first[1] < GROWTH_KIB, samples

    # The next request has a free slot at once: both of them are, nothing waits in the queue.
    r = httpx.post(f"{server.url}/api/generate", json={
        "model": MODEL, "prompt": "hi", "stream": False, "options": {"temperature": 0, "num_predict": 2}}, timeout=60)
    assert r.status_code == 200 and r.json()["done"] is True
