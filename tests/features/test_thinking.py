"""`think` and separated thinking against the real SmolLM2 under a template that thinks between `<think>`
tags and opens the tag in the prompt (api-contract.md §3.3, runtime.md §5.2)."""

from __future__ import annotations

import json

import httpx

from tests.features.conftest import GREEDY, stream

# One example turn teaches the tiny model to close its thinking and then answer.
HISTORY = [{"role": "system", "content": "You think inside <think></think> tags first, then answer."},
           {"role": "user", "content": "What is 1+1?"},
           {"role": "assistant", "content": "2", "thinking": "One plus one is two."},
           {"role": "user", "content": "What is 2+2?"}]


def test_capability_from_the_template(http: httpx.Client) -> None:
    assert http.post("/api/show", json={"model": "think"}).json()["capabilities"] == ["completion", "thinking"]


def test_primed_prompt_and_split_whole(http: httpx.Client) -> None:
    body = {"model": "think", "messages": HISTORY, "options": GREEDY}
    prompt = http.post("/api/chat", json={**body, "_debug_render_only": True}).json()["_debug_info"]
    assert prompt["rendered_template"].endswith("<|im_start|>assistant\n<think>")  # think defaults to on
    message = http.post("/api/chat", json={**body, "stream": False}).json()["message"]
    assert message == {"role": "assistant", "content": "4", "thinking": "Two plus two is four."}


def test_split_streamed(http: httpx.Client) -> None:
    chunks = stream(http, "/api/chat", {"model": "think", "messages": HISTORY, "think": True, "options": GREEDY})
    thinking = "".join(c["message"].get("thinking", "") for c in chunks)
    content = "".join(c["message"]["content"] for c in chunks)
    assert (thinking, content) == ("Two plus two is four.", "4")
    # thinking comes first and no chunk mixes the two or shows a tag
    firsts = [i for i, c in enumerate(chunks) if c["message"]["content"]]
    assert all("thinking" not in c["message"] for c in chunks[firsts[0]:])
    assert all("<" not in c["message"].get("thinking", "") + c["message"]["content"] for c in chunks)
    assert all(c["message"].get("thinking") or c["message"]["content"] or c["done"] for c in chunks)


def test_think_false_turns_it_off(http: httpx.Client) -> None:
    body = {"model": "think", "messages": HISTORY, "think": False, "options": GREEDY}
    prompt = http.post("/api/chat", json={**body, "_debug_render_only": True}).json()["_debug_info"]
    assert prompt["rendered_template"].endswith("<|im_start|>assistant\n")
    message = http.post("/api/chat", json={**body, "stream": False}).json()["message"]
    assert "thinking" not in message and "</think>" in message["content"]


def test_think_level(http: httpx.Client) -> None:
    body = {"model": "think", "messages": HISTORY, "think": "high", "options": GREEDY, "stream": False}
    assert http.post("/api/chat", json=body).json()["message"]["thinking"] == "Two plus two is four."


def test_generate_splits_thinking(http: httpx.Client) -> None:
    body = {"model": "think", "prompt": "What is 2+2?", "system": HISTORY[0]["content"],
            "options": {**GREEDY, "num_predict": 12}, "stream": False}
    whole = http.post("/api/generate", json=body).json()
    assert whole["thinking"] and "<think>" not in whole["thinking"] + whole["response"]
    chunks = stream(http, "/api/generate", {**body, "stream": True})
    assert "".join(c.get("thinking", "") for c in chunks) == whole["thinking"]
    assert "".join(c["response"] for c in chunks) == whole["response"]


def test_format_applies_after_thinking(http: httpx.Client) -> None:
    """The model thinks without the grammar, then answers again under it (runtime.md §5.3)."""
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    body = {"model": "think", "messages": HISTORY, "format": schema, "options": GREEDY}
    message = http.post("/api/chat", json={**body, "stream": False}).json()["message"]
    assert message["thinking"] == "Two plus two is four."
    assert isinstance(json.loads(message["content"])["answer"], int)
    chunks = stream(http, "/api/chat", body)
    assert "".join(c["message"].get("thinking", "") for c in chunks) == message["thinking"]
    assert "".join(c["message"]["content"] for c in chunks) == message["content"]
    # with thinking off the grammar applies from the first token
    off = http.post("/api/chat", json={**body, "think": False, "stream": False}).json()["message"]
    assert isinstance(json.loads(off["content"])["answer"], int) and "thinking" not in off


def test_models_that_cannot_think(http: httpx.Client) -> None:
    for path, body in (("/api/chat", {"messages": [{"role": "user", "content": "hi"}]}), ("/api/generate",
                                                                                          {"prompt": "hi"})):
        for think in (True, "low"):
            r = http.post(path, json={"model": "m", "think": think, **body})
            assert (r.status_code, r.json()) == (400, {"error": '"m" does not support thinking'})
    r = http.post("/api/generate", json={"model": "m", "prompt": "hi", "think": False, "stream": False,
                                         "options": {"num_predict": 2}})
    assert r.status_code == 200 and "thinking" not in r.json()


def test_raw_prompt_that_opens_the_tag(http: httpx.Client) -> None:
    """A raw prompt skips the template, not the thinking parser (as Ollama's generate)."""
    turn = "<|im_start|>{}\n{}<|im_end|>\n"
    prompt = (turn.format("system", HISTORY[0]["content"]) + turn.format("user", "What is 1+1?")
              + turn.format("assistant", "<think>One plus one is two.</think>2") + turn.format("user", "What is 2+2?")
              + "<|im_start|>assistant\n<think>")
    body = {"model": "think", "prompt": prompt, "raw": True, "stream": False, "options": GREEDY}
    answer = http.post("/api/generate", json=body).json()
    assert (answer["thinking"], answer["response"]) == ("Two plus two is four.", "4")
    assert "context" not in answer
    off = http.post("/api/generate", json={**body, "think": False}).json()
    assert "thinking" not in off and off["response"] == "Two plus two is four.</think>4"
