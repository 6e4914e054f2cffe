"""The bundled smollm2:135m as Ollama's library model has it: a ChatML template that takes tools, calls in
`<tool_call>` tags, ChatML's stops; Open WebUI's requests work on it; older installs are brought up to date."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.template import Template
from engine.tools import ToolParser
from server.bundled import BUNDLED_TEMPLATE
from tests.conftest import Server, create_plain_smollm2

MODEL = "smollm2:135m"
GREEDY = {"temperature": 0, "num_predict": 12}


def _function(name: str, description: str, **properties: str) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": {k: {"type": "string", "description": v}
                                                        for k, v in properties.items()},
                       "required": list(properties)}}}


# Open WebUI (0.12) attaches its built-in tools to every chat with native function calling, the default:
# time, chat history, notes and memory tools, in OpenAI's function format, passed through to /api/chat.
OPEN_WEBUI_TOOLS = [
    _function("get_current_timestamp", "Get the current Unix timestamp in seconds."),
    _function("calculate_timestamp", "Get the Unix timestamp some days, weeks, months or years ago.",
              days_ago="Days to subtract", weeks_ago="Weeks to subtract"),
    _function("search_chats", "Search the user's earlier conversations.", query="What to look for"),
    _function("view_chat", "Read one earlier conversation.", chat_id="The conversation's id"),
    _function("search_notes", "Search the user's notes.", query="What to look for"),
    _function("view_note", "Read one of the user's notes.", note_id="The note's id"),
    _function("search_memories", "Search what the user asked to be remembered.", query="What to look for"),
    _function("add_memory", "Remember something about the user.", content="What to remember"),
]


@pytest.fixture(scope="module")
def http(shared_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.url, timeout=180) as client:
        yield client


def _streamed_chat(http: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    with http.stream("POST", "/api/chat", json=body) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in r.iter_lines() if line.strip()]


def test_the_bundled_model_takes_tools(http: httpx.Client) -> None:
    shown = http.post("/api/show", json={"model": MODEL}).json()
    assert shown["capabilities"] == ["completion", "tools"]
    assert "<tool_call>" in shown["template"] and "<tools>" in shown["template"]
    assert shown["parameters"].split("\n") == ['stop                           "<|im_start|>"',
                                               'stop                           "<|im_end|>"']


def test_open_webuis_chat_with_its_built_in_tools_streams_an_answer(http: httpx.Client) -> None:
    lines = _streamed_chat(http, {"model": MODEL, "stream": True, "tools": OPEN_WEBUI_TOOLS, "options": GREEDY,
                                  "messages": [{"role": "user", "content": "Why is the sky blue?"}]})
    assert not any("error" in line for line in lines), lines
    assert len(lines) >= 2 and lines[-1]["done"] is True and not any(line["done"] for line in lines[:-1])
    said = "".join(line["message"]["content"] for line in lines)
    calls = [call for line in lines for call in line["message"].get("tool_calls", [])]
    assert said.strip() or calls


def test_the_tools_and_a_tool_round_trip_are_rendered(http: httpx.Client) -> None:
    call = {"function": {"name": "get_current_timestamp", "arguments": {}}}
    r = http.post("/api/chat", json={"model": MODEL, "tools": OPEN_WEBUI_TOOLS[:1], "_debug_render_only": True,
                                     "messages": [{"role": "user", "content": "What time is it?"},
                                                  {"role": "assistant", "content": "", "tool_calls": [call]},
                                                  {"role": "tool", "content": "1700000000"}]})
    rendered = r.json()["_debug_info"]["rendered_template"]
    assert rendered.startswith("<|im_start|>system\n\n# Tools\n")
    assert '<tools>\n{"type":"function","function":{"name":"get_current_timestamp",' in rendered
    assert rendered.endswith(
        "<|im_start|>user\nWhat time is it?<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_current_timestamp", "arguments": {}}\n'
        "</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\n1700000000\n</tool_response><|im_end|>\n<|im_start|>assistant\n")


def test_calls_are_parsed_from_tool_call_tags() -> None:
    parser = ToolParser.for_template(OPEN_WEBUI_TOOLS, Template.parse(BUNDLED_TEMPLATE).root)
    calls, content = parser.add('<tool_call>\n{"name": "add_memory", "arguments": {"content": "Ada"}}\n</tool_call>')
    assert calls == [{"function": {"index": 0, "name": "add_memory", "arguments": {"content": "Ada"}}}]
    assert content == ""


def test_continue_response_continues_the_text(http: httpx.Client) -> None:
    """Open WebUI's "continue response" sends the partial answer as the last message: the template leaves it
    open, so the model goes on from its last word instead of starting again."""
    partial = "The sky looks blue because"
    messages = [{"role": "user", "content": "Why is the sky blue?"}, {"role": "assistant", "content": partial}]
    rendered = http.post("/api/chat", json={"model": MODEL, "messages": messages, "_debug_render_only": True}
                         ).json()["_debug_info"]["rendered_template"]
    assert rendered == ("<|im_start|>user\nWhy is the sky blue?<|im_end|>\n"
                        f"<|im_start|>assistant\n{partial}")
    lines = _streamed_chat(http, {"model": MODEL, "messages": messages, "options": GREEDY, "stream": True})
    continued = "".join(line["message"]["content"] for line in lines)
    raw = http.post("/api/generate", json={"model": MODEL, "prompt": rendered, "raw": True, "stream": False,
                                           "options": GREEDY}).json()
    assert continued == raw["response"] and continued


# --- a store an older pollama made ---------------------------------------------------------------


def _show(server: Server, name: str = MODEL) -> dict[str, Any]:
    return httpx.post(f"{server.url}/api/show", json={"model": name}, timeout=60).json()


def test_serve_bundled_brings_an_older_pollamas_model_up_to_date(server_factory: Callable[..., Server],
                                                                tmp_path: Path) -> None:
    models = tmp_path / "store"
    older = server_factory(models=models)
    create_plain_smollm2(older.url, MODEL)  # what `serve --bundled` used to create: ChatML autodetected
    assert _show(older)["capabilities"] == ["completion"]
    older.stop()

    current = server_factory(models=models, bundled=True)
    shown = _show(current)
    assert shown["capabilities"] == ["completion", "tools"]
    r = httpx.post(f"{current.url}/api/chat", timeout=180, json={
        "model": MODEL, "tools": OPEN_WEBUI_TOOLS, "stream": False, "options": GREEDY,
        "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text


def test_serve_bundled_leaves_a_users_own_model_alone(server_factory: Callable[..., Server],
                                                     tmp_path: Path) -> None:
    models = tmp_path / "store"
    first = server_factory(models=models, bundled=True)
    r = httpx.post(f"{first.url}/api/create", timeout=120, json={
        "model": MODEL, "from": MODEL, "template": "{{ .Prompt }}", "system": "Be brief.", "stream": False})
    assert r.status_code == 200, r.text
    before = _show(first)
    first.stop()

    again = server_factory(models=models, bundled=True)
    after = _show(again)
    assert (after["template"], after["system"]) == ("{{ .Prompt }}", "Be brief.")
    assert after["modified_at"] == before["modified_at"]
