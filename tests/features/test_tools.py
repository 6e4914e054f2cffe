"""Tool calls through /api/chat against the real SmolLM2 (api-contract.md §3.4, runtime.md §5.1)."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.features.conftest import TIME, WEATHER, stream

CALL_SCHEMA = {"type": "object", "required": ["name", "arguments"], "properties": {
    "name": {"type": "string", "enum": ["get_weather"]},
    "arguments": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}}
OPTIONS = {"temperature": 0, "num_predict": 40}


def _joined(chunks: list[dict]) -> tuple[str, list[dict]]:
    content = "".join(c["message"]["content"] for c in chunks)
    calls = [call for c in chunks for call in c["message"].get("tool_calls", [])]
    return content, calls


def _without_ids(calls: list[dict]) -> list[dict]:
    return [{k: v for k, v in call.items() if k != "id"} for call in calls]


def _check_call(call: dict, index: int, name: str, arguments: dict) -> None:
    assert list(call) == ["id", "function"]
    assert re.fullmatch(r"call_[a-z0-9]{8}", call["id"])
    assert call["function"] == {"index": index, "name": name, "arguments": arguments}
    assert isinstance(call["function"]["arguments"], dict)


def test_schema_forced_call_whole_and_streamed(http: httpx.Client) -> None:
    """The schema makes the model write the call's JSON; the parser (tag `{`) turns it into tool_calls."""
    body = {"model": "tools", "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": [WEATHER], "format": CALL_SCHEMA, "options": OPTIONS}
    whole = http.post("/api/chat", json={**body, "stream": False}).json()
    assert whole["message"]["content"] == "" and whole["done_reason"] == "stop"
    [call] = whole["message"]["tool_calls"]
    _check_call(call, 0, "get_weather", {"city": "Paris"})

    chunks = stream(http, "/api/chat", body)
    content, calls = _joined(chunks)
    assert (content, _without_ids(calls)) == (whole["message"]["content"], _without_ids(whole["message"]["tool_calls"]))
    [with_call] = [c for c in chunks if c["message"].get("tool_calls")]
    assert not with_call["done"] and with_call["message"]["content"] == ""
    _check_call(with_call["message"]["tool_calls"][0], 0, "get_weather", {"city": "Paris"})
    # nothing of the call's JSON leaked out as content while it was being written
    assert all(c["message"]["content"] == "" for c in chunks)
    assert chunks[-1]["done"] and "tool_calls" not in chunks[-1]["message"]


def _tagged_history() -> list[dict]:
    def call(city: str) -> dict:
        return {"role": "assistant", "content": "Let me check. ",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": city}}}]}

    return [{"role": "user", "content": "Weather in Paris?"}, call("Paris"),
            {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
            {"role": "user", "content": "Weather in Rome?"}, call("Rome"),
            {"role": "tool", "content": "rainy", "tool_name": "get_weather"},
            {"role": "user", "content": "Weather in London?"}]


def test_history_with_calls_and_results_is_rendered(http: httpx.Client) -> None:
    body = {"model": "tagged", "messages": _tagged_history(), "tools": [WEATHER, TIME], "_debug_render_only": True}
    prompt = http.post("/api/chat", json=body).json()["_debug_info"]["rendered_template"]
    assert prompt.startswith("<|im_start|>system\nTools: get_weather get_time <|im_end|>\n")
    assert ('<|im_start|>assistant\nLet me check. <tool_call>{"name": "get_weather", "arguments": {"city":"Rome"}}'
            "</tool_call><|im_end|>\n<|im_start|>tool\n<tool_response>rainy</tool_response><|im_end|>\n") in prompt
    assert prompt.endswith("<|im_start|>user\nWeather in London?<|im_end|>\n<|im_start|>assistant\n")


def test_tagged_call_after_text_streamed(http: httpx.Client) -> None:
    """`<tool_call>` tag: text before it is content; the call itself is never sent in pieces."""
    body = {"model": "tagged", "messages": _tagged_history(), "tools": [WEATHER, TIME], "options": OPTIONS}
    whole = http.post("/api/chat", json={**body, "stream": False}).json()
    assert whole["message"]["content"] == "Let me check. "
    [call] = whole["message"]["tool_calls"]
    _check_call(call, 0, "get_weather", {"city": "London"})

    chunks = stream(http, "/api/chat", body)
    content, calls = _joined(chunks)
    assert content == whole["message"]["content"]
    assert _without_ids(calls) == _without_ids(whole["message"]["tool_calls"])
    for chunk in chunks:
        assert "<tool" not in chunk["message"]["content"] and "{" not in chunk["message"]["content"]


def test_without_tools_the_call_is_plain_text(http: httpx.Client) -> None:
    """No `tools` in the request: no parser runs, the model's text is all content."""
    messages = _tagged_history()
    body = {"model": "tagged", "messages": messages, "options": OPTIONS, "stream": False}
    message = http.post("/api/chat", json=body).json()["message"]
    assert "tool_calls" not in message
    assert message["content"].startswith('Let me check. <tool_call>{"name": "get_weather"')


def test_tools_needs_a_template_that_renders_them(http: httpx.Client) -> None:
    r = http.post("/api/chat", json={"model": "m", "messages": [{"role": "user", "content": "x"}],
                                     "tools": [WEATHER]})
    assert (r.status_code, r.json()) == (400, {"error": "registry.ollama.ai/library/m:latest does not support tools"})
    caps = http.post("/api/show", json={"model": "tools"}).json()["capabilities"]
    assert caps == ["completion", "tools"]


@pytest.mark.parametrize("arguments", ['"{\\"city\\": \\"Paris\\"}"', "[]"])
def test_history_arguments_must_be_an_object(http: httpx.Client, arguments: str) -> None:
    messages = [{"role": "assistant", "content": "", "tool_calls": [{"function": {
        "name": "get_weather", "arguments": json.loads(arguments)}}]}, {"role": "user", "content": "x"}]
    r = http.post("/api/chat", json={"model": "tools", "messages": messages, "tools": [WEATHER]})
    assert r.status_code == 400
