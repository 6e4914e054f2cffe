"""Issue 13, the load test: 100 clients at once against OLLAMA_NUM_PARALLEL=2, half of them leaving at a
random point (before their first byte, or after some tokens). Once they are gone no work is left running
(the runner is idle) and the next request gets its slot at once; over a few rounds resident memory stays
flat.

The suite runs ROUNDS rounds (POLLAMA_SOAK_ROUNDS, default 3: the first warms caches and pools, the others
must not grow); the issue's 5-minute soak is bench/soak.py, which runs the same rounds for a set time."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server, start_server
from tests.hardening.crowd import CLIENTS, MODEL, one_round
from tests.hardening.helpers import cpu_seconds, memory_kib, wait_idle

ROUNDS = int(os.environ.get("POLLAMA_SOAK_ROUNDS", "3"))
GROWTH_KIB = 64 * 1024  # what "flat" allows between the second round and the last


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("load")
    server = start_server(directory / "models", directory / "server.log", {"OLLAMA_NUM_PARALLEL": "2"},
                          bundled=True)
    yield server
    server.stop()


def test_a_hundred_clients_half_leaving_leave_no_work_and_no_growth(server: Server) -> None:
    assert httpx.post(f"{server.url}/api/generate", json={"model": MODEL}, timeout=120).status_code == 200
    (runner,) = server.runner_pids()
    daemon = server.process.pid
    samples: list[tuple[int, int]] = []
    for round_number in range(max(ROUNDS, 2)):
        started, cpu = time.monotonic(), (cpu_seconds(daemon), cpu_seconds(runner))
        counts = one_round(server, round_number)
        assert counts["completed"] == CLIENTS // 2, counts
        wait_idle(runner, timeout=30)  # nothing runs for the clients that left
        samples.append((memory_kib(daemon, "VmRSS"), memory_kib(runner, "VmRSS")))
        print(f"round {round_number + 1}: {counts} in {time.monotonic() - started:.0f} s (CPU: daemon "
              f"{cpu_seconds(daemon) - cpu[0]:.0f} s, runner {cpu_seconds(runner) - cpu[1]:.0f} s), "
              f"RSS daemon {samples[-1][0] // 1024} MiB, runner {samples[-1][1] // 1024} MiB")
    assert server.runner_pids() == [runner]
    first, last = samples[1], samples[-1]
    assert last[0] - first[0] < GROWTH_KIB and last[1] - first[1] < GROWTH_KIB, samples

    # The next request has a free slot at once: both of them are, nothing waits in the queue.
    metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
    assert "pollama_queue_depth 0.0" in metrics
    r = httpx.post(f"{server.url}/api/generate", json={
        "model": MODEL, "prompt": "hi", "stream": False, "options": {"temperature": 0, "num_predict": 2}}, timeout=60)
    assert r.status_code == 200 and r.json()["done"] is True
