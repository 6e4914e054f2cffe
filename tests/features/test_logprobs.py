"""`logprobs` and `top_logprobs` on generate and chat, streamed and whole (api-contract.md §3.8)."""

from __future__ import annotations

import math

import httpx
import pytest

from tests.features.conftest import stream

PROMPT = "The capital of France is"


def _check_entries(entries: list[dict], top: int) -> None:
    for entry in entries:
        assert entry["logprob"] <= 0 and entry["bytes"] == list(entry["token"].encode())
        if top == 0:
            assert list(entry) == ["token", "logprob", "bytes"]
            continue
        alternatives = entry["top_logprobs"]
        assert len(alternatives) == top
        values = [a["logprob"] for a in alternatives]
        assert values == sorted(values, reverse=True) and all(v <= 0 for v in values)
        assert sum(math.exp(v) for v in values) <= 1 + 1e-6  # a share of one distribution
        # greedy decoding picks the most likely token
        assert (alternatives[0]["token"], alternatives[0]["logprob"]) == (entry["token"], entry["logprob"])


@pytest.mark.parametrize("top", [0, 3, 20])
def test_generate_streamed_and_whole(http: httpx.Client, top: int) -> None:
    body = {"model": "m", "prompt": PROMPT, "raw": True, "logprobs": True, "top_logprobs": top,
            "options": {"temperature": 0, "num_predict": 6}}
    chunks = stream(http, "/api/generate", body)
    text = "".join(c["response"] for c in chunks)
    entries = [e for c in chunks for e in c.get("logprobs", [])]
    assert len(entries) == chunks[-1]["eval_count"] == 6
    # the tokens' bytes join to the text, chunk by chunk
    assert b"".join(bytes(e["bytes"]) for e in entries) == text.encode()
    for chunk in chunks[:-1]:
        assert b"".join(bytes(e["bytes"]) for e in chunk["logprobs"]) == chunk["response"].encode()
    _check_entries(entries, top)
    whole = http.post("/api/generate", json={**body, "stream": False}).json()
    assert whole["response"] == text and whole["logprobs"] == entries
    assert entries[0]["token"] == " Paris" and -1 < entries[0]["logprob"] < 0


def test_not_asked_for(http: httpx.Client) -> None:
    body = {"model": "m", "prompt": PROMPT, "raw": True, "top_logprobs": 5, "stream": False,
            "options": {"temperature": 0, "num_predict": 2}}
    assert "logprobs" not in http.post("/api/generate", json=body).json()


def test_chat_keeps_logprobs_of_held_back_text(http: httpx.Client) -> None:
    """The thinking parser holds `</think>` back; its tokens' logprobs still arrive, in order."""
    history = [{"role": "user", "content": "What is 1+1?"},
               {"role": "assistant", "content": "2", "thinking": "One plus one is two."},
               {"role": "user", "content": "What is 2+2?"}]
    body = {"model": "think", "messages": history, "logprobs": True, "top_logprobs": 1,
            "options": {"temperature": 0, "num_predict": 16}}
    chunks = stream(http, "/api/chat", body)
    entries = [e for c in chunks for e in c.get("logprobs", [])]
    thinking = "".join(c["message"].get("thinking", "") for c in chunks)
    content = "".join(c["message"]["content"] for c in chunks)
    raw = b"".join(bytes(e["bytes"]) for e in entries).decode()
    assert thinking and content and raw == f"{thinking}</think>{content}"
    _check_entries(entries, 1)
    whole = http.post("/api/chat", json={**body, "stream": False}).json()
    assert whole["logprobs"] == entries and whole["message"]["thinking"] == thinking


@pytest.mark.parametrize("top", [-1, 21])
@pytest.mark.parametrize("path", ["/api/generate", "/api/chat"])
def test_top_logprobs_range_is_checked_first(http: httpx.Client, path: str, top: int) -> None:
    r = http.post(path, json={"model": "no-such-model", "top_logprobs": top})
    assert (r.status_code, r.json()) == (400, {"error": "top_logprobs must be between 0 and 20"})
