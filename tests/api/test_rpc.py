"""llama.cpp RPC: a model's layers on two `pollama rpc` workers on loopback, and a worker that goes away."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.rpc import reachable
from tests.conftest import REPO, Server, free_port

REQUEST = {"model": "smollm2:135m", "prompt": "Name three colours.", "stream": False,
           "options": {"num_predict": 16, "temperature": 0, "seed": 1}}


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[tuple[str, subprocess.Popen]]]:
    started = []
    for index in range(2):
        port = free_port()
        log = (tmp_path / f"worker{index}.log").open("ab")
        process = subprocess.Popen([sys.executable, "-m", "server.cli", "rpc", "--host", "127.0.0.1",
                                    "--port", str(port), "--threads", "1"], cwd=REPO, stdout=log,
                                   stderr=subprocess.STDOUT)
        started.append((f"127.0.0.1:{port}", process))
    deadline = time.monotonic() + 60
    while not all(reachable(endpoint) for endpoint, _ in started):
        assert time.monotonic() < deadline, "the rpc workers did not start"
        assert all(p.poll() is None for _, p in started), "an rpc worker exited"
        time.sleep(0.1)
    yield started
    for _, process in started:
        process.kill()
        process.wait()


def generate(server: Server) -> httpx.Response:
    return httpx.post(server.url + "/api/generate", json=REQUEST, timeout=300)


def placement(server: Server) -> list[dict]:
    return httpx.get(server.url + "/api/ps").json()["models"][0]["devices"]


def test_layers_on_two_workers_give_the_local_tokens(server_factory, workers) -> None:
    local = server_factory(bundled=True)
    expected = generate(local).json()["context"]
    local.stop()

    endpoints = [endpoint for endpoint, _ in workers]
    split = server_factory(env={"POLLAMA_RPC_SERVERS": ",".join(endpoints)}, bundled=True)
    answer = generate(split)
    assert answer.status_code == 200, answer.text
    assert answer.json()["context"] == expected
    devices = placement(split)
    assert [d["name"] for d in devices] == [f"RPC[{e}]" for e in endpoints]
    assert all(d["layers"] >= 10 and d["size"] > 0 for d in devices)
    assert sum(d["layers"] for d in devices) == 31  # SmolLM2's 30 blocks and its output layer
    assert httpx.get(split.url + "/api/ps").json()["models"][0]["size_vram"] == 0  # no local GPU memory

    # A worker that goes away fails the model's request, naming it; the next request loads on what is left.
    gone, process = workers[1]
    process.send_signal(signal.SIGKILL)
    process.wait()
    failed = generate(split)
    assert failed.status_code == 500
    assert f"rpc worker {gone} is unreachable" in failed.json()["error"]
    again = generate(split)
    assert again.status_code == 200, again.text
    assert again.json()["context"] == expected
    assert [d["name"] for d in placement(split)] == [f"RPC[{endpoints[0]}]"]
