"""Ollama's loop guard (runtime.md §7.1, llm/llama_server.go Completion): a completion whose
whitespace-trimmed chunk is the same more than 30 times in a row is cancelled silently, with no `done`."""

from __future__ import annotations

import json
import time

import httpx

from tests.conftest import Server

# SmolLM2 continues this with "7" for as long as it is allowed to (greedy, no repeat penalty).
LOOPING = "The number is " + "7" * 60
GREEDY = {"temperature": 0, "seed": 0, "repeat_penalty": 1.0}
LONG = 2000  # far more tokens than the guard lets through


def _stream(server: Server, body: dict) -> list[dict]:
    with httpx.stream("POST", f"{server.url}/api/generate", json=body, timeout=300) as response:
        assert response.status_code == 200
        return [json.loads(line) for line in response.iter_lines() if line]


def _trailing_run(chunks: list[str]) -> int:
    """How many chunks at the end trim to the same text."""
    last = chunks[-1].strip()
    run = 0
    for chunk in reversed(chunks):
        if chunk.strip() != last:
            break
        run += 1
    return run


def test_a_looping_stream_ends_without_done(one_slot_server: Server) -> None:
    body = {"model": "smollm2:135m", "prompt": LOOPING, "raw": True, "options": {**GREEDY, "num_predict": LONG}}
    lines = _stream(one_slot_server, body)
    assert lines and not any(line.get("done") for line in lines)
    assert all("error" not in line for line in lines)
    texts = [line["response"] for line in lines]
    assert texts[-1] == "7"
    # the first of the run, then 30 repeats; the 31st repeat is not sent
    assert _trailing_run(texts) == 31 and len(texts) < 40


def test_a_looping_whole_response_is_the_last_chunk(one_slot_server: Server) -> None:
    # Ollama's non-streamed answer is the last chunk it got, with the text joined: done false, no metrics.
    body = {"model": "smollm2:135m", "prompt": LOOPING, "raw": True, "stream": False,
            "options": {**GREEDY, "num_predict": LONG}}
    r = httpx.post(f"{one_slot_server.url}/api/generate", json=body, timeout=120)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["done"] is False and "done_reason" not in answer and "eval_count" not in answer
    assert answer["response"] == "7" * 31


def test_the_aborted_sequence_frees_its_slot(one_slot_server: Server) -> None:
    # One slot (OLLAMA_NUM_PARALLEL=1): had the runner gone on with the ~20000 tokens left
    # after the guard (minutes, even on a fast machine), the next request would wait for them.
    body = {"model": "smollm2:135m", "prompt": LOOPING, "raw": True, "options": {**GREEDY, "num_predict": 20000}}
    lines = _stream(one_slot_server, body)
    assert len(lines) < 40 and not any(line.get("done") for line in lines)
    started = time.perf_counter()
    r = httpx.post(f"{one_slot_server.url}/api/generate", json={
        "model": "smollm2:135m", "prompt": "hi", "stream": False, "options": {"temperature": 0, "num_predict": 2}},
        timeout=60)
    assert r.status_code == 200 and r.json()["done"] is True
    assert time.perf_counter() - started < 30


def test_whitespace_chunks_break_a_run(one_slot_server: Server) -> None:
    # "1 1 1 …" is continued as " ", "1", " ", "1", …: trimmed, the chunks alternate between "" and "1",
    # so no chunk repeats and the completion runs to its num_predict.
    body = {"model": "smollm2:135m", "prompt": " ".join(["1"] * 12), "raw": True,
            "options": {**GREEDY, "num_predict": 80}}
    lines = _stream(one_slot_server, body)
    assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "length"
    assert lines[-1]["eval_count"] == 80
    texts = [line["response"] for line in lines[:-1]]
    assert texts.count("1") > 31 and texts.count(" ") > 31
