"""OLLAMA_NUM_PARALLEL unset: up to four sequences per model, sharing one window's KV cells, so a client's
background request does not hold up its chat and a model takes no more memory than with one sequence."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import httpx

from tests.api.test_bundled_model import OPEN_WEBUI_TOOLS
from tests.conftest import Server

MODEL = "smollm2:135m"
UNSET = {"OLLAMA_NUM_PARALLEL": ""}  # the daemon reads an empty variable as unset
# Greedy SmolLM2 goes on counting for hundreds of tokens: a background request that is surely still running.
COUNTING = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,"


def test_open_webuis_title_request_does_not_hold_up_the_chat(server_factory: Callable[..., Server]) -> None:
    server = server_factory(env=UNSET, bundled=True)
    httpx.post(f"{server.url}/api/generate", json={"model": MODEL}, timeout=120)  # loaded
    # Open WebUI asks for a title (num_predict 1000) just before it sends the chat.
    background = {"model": MODEL, "prompt": COUNTING, "raw": True,
                  "options": {"temperature": 0, "num_predict": 1000}}
    background_tokens: list[float] = []
    background_done = threading.Event()
    stop = threading.Event()

    def run_background() -> None:
        with httpx.stream("POST", f"{server.url}/api/generate", json=background, timeout=600) as r:
            for line in r.iter_lines():
                if json.loads(line)["done"]:
                    background_done.set()
                    return
                background_tokens.append(time.perf_counter())
                if stop.is_set():
                    return  # leaving cancels it

    thread = threading.Thread(target=run_background)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not background_tokens and time.monotonic() < deadline:
            time.sleep(0.05)
        assert background_tokens, "the background request never started"
        chat = {"model": MODEL, "stream": True, "tools": OPEN_WEBUI_TOOLS,
                "options": {"temperature": 0, "num_predict": 8},
                "messages": [{"role": "user", "content": "Why is the sky blue?"}]}
        with httpx.stream("POST", f"{server.url}/api/chat", json=chat, timeout=600) as r:
            assert r.status_code == 200
            first = json.loads(next(r.iter_lines()))
        assert "error" not in first
        assert not background_done.is_set(), "the chat waited for the background request"
    finally:
        stop.set()
        thread.join(timeout=120)


def _loaded(server: Server) -> dict:
    httpx.post(f"{server.url}/api/generate", json={"model": MODEL}, timeout=120)
    [entry] = httpx.get(f"{server.url}/api/ps").json()["models"]
    return entry


def test_shared_sequences_take_the_memory_of_one(server_factory: Callable[..., Server]) -> None:
    shared = _loaded(server_factory(env=UNSET, bundled=True))
    one = _loaded(server_factory(env={"OLLAMA_NUM_PARALLEL": "1"}, bundled=True))
    four = _loaded(server_factory(env={"OLLAMA_NUM_PARALLEL": "4"}, bundled=True))
    assert shared["size"] == one["size"] < four["size"]  # four windows of their own take more
    assert shared["context_length"] == one["context_length"] == four["context_length"] == 4096  # per sequence
