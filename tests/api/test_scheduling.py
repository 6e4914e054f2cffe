"""The scheduler through the API: keep-alive, /api/ps, eviction, the queue, disconnects, runner crashes,
parallel streams and the prefix cache."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server
from tests.hardening.helpers import wait_idle

FAST = {"temperature": 0, "num_predict": 4}


def create_from_gguf(server: Server, name: str, gguf: Path, padding: int = 0) -> None:
    """Upload a GGUF (optionally padded, so it is a different blob) and create `name` from it."""
    data = gguf.read_bytes() + b"\0" * padding
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert httpx.post(f"{server.url}/api/blobs/{digest}", content=data, timeout=120).status_code in (200, 201)
    r = httpx.post(f"{server.url}/api/create", json={"model": name, "files": {"model.gguf": digest},
                                                      "stream": False}, timeout=120)
    assert r.status_code == 200, r.text


def ps(server: Server) -> dict[str, dict]:
    return {m["name"]: m for m in httpx.get(f"{server.url}/api/ps").json()["models"]}


@pytest.fixture
def server(server_factory, smollm2_gguf: Path) -> Server:
    server = server_factory(env={"OLLAMA_NUM_PARALLEL": "1"})  # one slot: what a request holds, others wait for
    create_from_gguf(server, "smol", smollm2_gguf)
    return server


def test_keep_alive_expiry_and_ps_fields(server: Server) -> None:
    r = httpx.post(f"{server.url}/api/generate", json={"model": "smol", "keep_alive": "2s"}, timeout=120)
    assert r.json()["done_reason"] == "load"
    entry = ps(server)["smol:latest"]
    assert list(entry) == ["name", "model", "size", "digest", "details", "expires_at", "size_vram", "context_length"]
    assert entry["model"] == "smol:latest" and entry["context_length"] == 4096
    assert entry["size"] > 50_000_000 and entry["size_vram"] == 0
    tags = httpx.get(f"{server.url}/api/tags").json()["models"]
    assert entry["digest"] == tags[0]["digest"]
    assert entry["details"]["family"] == "llama" and entry["details"]["parent_model"] == ""
    remaining = datetime.fromisoformat(entry["expires_at"]).timestamp() - time.time()
    assert 0 < remaining <= 2.1
    assert len(server.runner_pids()) == 1
    time.sleep(3.5)
    assert ps(server) == {}
    assert server.runner_pids() == [], "unloading ends the runner process"


def test_keep_alive_forever_number_and_absent(server: Server) -> None:
    httpx.post(f"{server.url}/api/generate", json={"model": "smol", "keep_alive": -1}, timeout=120)
    assert datetime.fromisoformat(ps(server)["smol:latest"]["expires_at"]).year > 2300
    # absent keeps the current value
    httpx.post(f"{server.url}/api/generate", json={"model": "smol", "prompt": "hi", "stream": False,
                                                    "options": FAST}, timeout=120)
    assert datetime.fromisoformat(ps(server)["smol:latest"]["expires_at"]).year > 2300
    # a number is seconds
    httpx.post(f"{server.url}/api/generate", json={"model": "smol", "keep_alive": 30}, timeout=120)
    remaining = datetime.fromisoformat(ps(server)["smol:latest"]["expires_at"]).timestamp() - time.time()
    assert 25 < remaining <= 30.1


def test_keep_alive_zero_on_a_request_unloads_after_it(server: Server) -> None:
    r = httpx.post(f"{server.url}/api/generate", json={"model": "smol", "prompt": "hi", "stream": False,
                                                        "keep_alive": 0, "options": FAST}, timeout=120)
    assert r.json()["done"]
    deadline = time.time() + 5
    while ps(server) and time.time() < deadline:
        time.sleep(0.1)
    assert ps(server) == {}


def test_default_keep_alive_from_env(server_factory, smollm2_gguf: Path) -> None:
    server = server_factory(env={"OLLAMA_KEEP_ALIVE": "90"})
    create_from_gguf(server, "smol", smollm2_gguf)
    httpx.post(f"{server.url}/api/generate", json={"model": "smol"}, timeout=120)
    remaining = datetime.fromisoformat(ps(server)["smol:latest"]["expires_at"]).timestamp() - time.time()
    assert 85 < remaining <= 90.1


def test_reload_when_runner_option_changes(server: Server) -> None:
    httpx.post(f"{server.url}/api/generate", json={"model": "smol"}, timeout=120)
    first = server.runner_pids()
    httpx.post(f"{server.url}/api/generate", json={"model": "smol", "options": {"temperature": 0.1}}, timeout=120)
    assert server.runner_pids() == first, "a predict option never reloads"
    httpx.post(f"{server.url}/api/generate", json={"model": "smol", "options": {"num_ctx": 1024}}, timeout=120)
    assert ps(server)["smol:latest"]["context_length"] == 1024
    assert server.runner_pids() != first


def test_max_loaded_models_evicts(server_factory, smollm2_gguf: Path) -> None:
    server = server_factory(env={"OLLAMA_MAX_LOADED_MODELS": "1"})
    create_from_gguf(server, "first", smollm2_gguf)
    create_from_gguf(server, "second", smollm2_gguf, padding=64)
    httpx.post(f"{server.url}/api/generate", json={"model": "first"}, timeout=120)
    assert set(ps(server)) == {"first:latest"}
    httpx.post(f"{server.url}/api/generate", json={"model": "second"}, timeout=120)
    assert set(ps(server)) == {"second:latest"}
    assert len(server.runner_pids()) == 1


def test_max_queue_overflow_is_503(server_factory, smollm2_gguf: Path) -> None:
    server = server_factory(env={"OLLAMA_MAX_QUEUE": "1", "OLLAMA_MAX_LOADED_MODELS": "1"})
    create_from_gguf(server, "first", smollm2_gguf)
    create_from_gguf(server, "second", smollm2_gguf, padding=64)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            requests = [client.post("/api/generate", json={"model": name, "prompt": "hi", "stream": False,
                                                            "options": FAST})
                        for name in ["first", "second"] * 3]
            return await asyncio.gather(*requests)

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert 503 in statuses and 200 in statuses
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.json() == {"error": "server busy, please try again.  maximum pending requests exceeded"}


def test_disconnect_frees_the_slot(server: Server) -> None:
    httpx.post(f"{server.url}/api/generate", json={"model": "smol"}, timeout=120)
    [runner] = server.runner_pids()
    # SmolLM2 repeats " 1 1 1 …" until num_predict: minutes of work for 20000 tokens.
    endless = {"model": "smol", "prompt": " ".join(["1"] * 12), "raw": True,
               "options": {"num_predict": 20000, "temperature": 0, "repeat_penalty": 1.0}}
    with httpx.stream("POST", f"{server.url}/api/generate", json=endless, timeout=120) as response:
        for index, _ in enumerate(response.iter_lines()):
            if index == 3:
                break
    # Had the abandoned stream kept its sequence, the runner would decode for minutes.
    wait_idle(runner, timeout=120)
    r = httpx.post(f"{server.url}/api/generate", json={"model": "smol", "prompt": "hi", "stream": False,
                                                        "options": FAST}, timeout=120)
    assert r.status_code == 200 and r.json()["done"]  # the only slot (OLLAMA_NUM_PARALLEL=1) is free


def test_runner_killed_mid_stream(server: Server) -> None:
    httpx.post(f"{server.url}/api/generate", json={"model": "smol"}, timeout=120)
    [pid] = server.runner_pids()
    body = {"model": "smol", "prompt": "Write a long story.", "options": {"num_predict": 2000}}
    lines = []
    with httpx.stream("POST", f"{server.url}/api/generate", json=body, timeout=120) as response:
        for line in response.iter_lines():
            lines.append(json.loads(line))
            if len(lines) == 3:
                os.kill(pid, signal.SIGKILL)
    assert "error" in lines[-1] and "llama runner process has terminated" in lines[-1]["error"]
    assert all("error" not in line for line in lines[:-1])
    r = httpx.post(f"{server.url}/api/generate", json={"model": "smol", "prompt": "hi", "stream": False,
                                                        "options": FAST}, timeout=120)
    assert r.status_code == 200 and r.json()["done"]
    assert server.runner_pids() and server.runner_pids() != [pid]


def test_parallel_streams_interleave(server_factory, smollm2_gguf: Path) -> None:
    server = server_factory(env={"OLLAMA_NUM_PARALLEL": "4"})
    create_from_gguf(server, "smol", smollm2_gguf)
    httpx.post(f"{server.url}/api/generate", json={"model": "smol"}, timeout=120)

    async def stream(client: httpx.AsyncClient, index: int) -> tuple[float, float]:
        body = {"model": "smol", "prompt": f"Story number {index}:", "raw": True,
                "options": {"temperature": 0, "num_predict": 48}}
        first = 0.0
        async with client.stream("POST", "/api/generate", json=body) as response:
            async for line in response.aiter_lines():
                chunk = json.loads(line)
                if not chunk["done"] and not first:
                    first = time.perf_counter()
        return first, time.perf_counter()

    async def run() -> list[tuple[float, float]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            return await asyncio.gather(*(stream(client, i) for i in range(4)))

    times = asyncio.run(run())
    assert max(first for first, _ in times) < min(done for _, done in times)


def test_second_chat_turn_evaluates_only_new_tokens(server: Server) -> None:
    history = [{"role": "user", "content": " ".join(f"Fact {i}: the number {i} is {'even' if i % 2 == 0 else 'odd'}."
                                                    for i in range(120))}]
    options = {"temperature": 0, "num_predict": 8}
    first = httpx.post(f"{server.url}/api/chat", json={"model": "smol", "messages": history, "stream": False,
                                                        "options": options}, timeout=300).json()
    history += [first["message"], {"role": "user", "content": "Thanks. Which numbers were even?"}]
    second = httpx.post(f"{server.url}/api/chat", json={"model": "smol", "messages": history, "stream": False,
                                                         "options": options}, timeout=300).json()
    assert second["prompt_eval_count"] > first["prompt_eval_count"] > 1000
    # The first turn evaluated over a thousand tokens; the second only the few dozen that are new.
    assert second["prompt_eval_duration"] * 5 < first["prompt_eval_duration"]
