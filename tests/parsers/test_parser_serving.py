"""Built-in parsers through a real server on the real SmolLM2: models whose config names a parser (as a
Modelfile PARSER or a pulled model's config does). A `format` that allows one string forces SmolLM2's
greedy output, so the parser's part is known: /api/chat and /api/generate, streamed and whole, and the
OpenAI layer on the same pipeline."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from gguf import GGUFWriter

from engine.parsers import parser_for_name
from tests.conftest import Server

GREEDY = {"temperature": 0, "num_predict": 120}
USER = [{"role": "user", "content": "hi"}]
TEMPLATE = "{{ range .Messages }}{{ .Content }}{{ end }}"
# shows the tools the prompt gets: harmony renames them
TOOLS_TEMPLATE = "{{ range .Tools }}{{ .Function.Name }} {{ end }}" + TEMPLATE

# The string each format allows, as SmolLM2 then writes it: a JSON string, so in quotes.
HARMONY_OUTPUT = ("<|channel|>analysis<|message|>T<|end|>"
                  "<|start|>assistant<|channel|>commentary to=functions.g_w<|message|>{}<|end|>")
CODER_OUTPUT = "<tool_call><function=f><parameter=a>7</parameter></function></tool_call>"
G_W = {"type": "function", "function": {"name": "g-w", "parameters": {"type": "object", "properties": {}}}}
F = {"type": "function", "function": {"name": "f", "parameters": {"type": "object",
                                                                  "properties": {"a": {"type": "integer"}}}}}


@pytest.fixture(scope="module")
def http(shared_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.url, timeout=600) as client:
        for name, parser in (("p-harmony", "harmony"), ("p-coder", "qwen3-coder"),
                             ("p-thinking", "qwen3-thinking"), ("p-unknown", "no-such-parser")):
            template = TOOLS_TEMPLATE if parser == "harmony" else TEMPLATE
            r = client.post("/api/create", json={"model": name, "from": "smollm2:135m", "parser": parser,
                                                 "template": template, "stream": False})
            assert r.status_code == 200, r.text
        r = client.post("/api/create", json={"model": "p-plain", "from": "smollm2:135m", "template": TEMPLATE,
                                             "stream": False})
        assert r.status_code == 200, r.text
        yield client


def _chat(http: httpx.Client, model: str, stream: bool, **body: Any) -> dict[str, Any]:
    """The answer, streamed chunks joined as a client joins them (content, thinking, calls)."""
    request = {"model": model, "messages": USER, "stream": stream, "options": GREEDY, **body}
    if not stream:
        r = http.post("/api/chat", json=request)
        assert r.status_code == 200, r.text
        return r.json()["message"]
    message: dict[str, Any] = {"content": "", "thinking": "", "tool_calls": []}
    with http.stream("POST", "/api/chat", json=request) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            chunk = json.loads(line)
            assert "error" not in chunk, chunk
            part = chunk["message"]
            message["content"] += part.get("content", "")
            message["thinking"] += part.get("thinking", "")
            message["tool_calls"] += part.get("tool_calls", [])
    return message


def _calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    calls = message.get("tool_calls") or []
    assert all(call["id"].startswith("call_") for call in calls)
    return [call["function"] for call in calls]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_harmony_thinking_and_tool_call(http: httpx.Client, stream: bool) -> None:
    message = _chat(http, "p-harmony", stream, tools=[G_W], think=False, format={"enum": [HARMONY_OUTPUT]})
    assert message.get("thinking") == "T"
    assert message.get("content", "") == ""
    # the model called the harmony name; the client gets its own name back
    assert _calls(message) == [{"index": 0, "name": "g-w", "arguments": {}}]


def test_harmony_prompt_shows_the_renamed_tools(http: httpx.Client) -> None:
    r = http.post("/api/chat", json={"model": "p-harmony", "messages": USER, "tools": [G_W],
                                    "_debug_render_only": True})
    assert r.json()["_debug_info"]["rendered_template"] == "g_w hi"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_xml_tool_call_typed_by_the_tool(http: httpx.Client, stream: bool) -> None:
    message = _chat(http, "p-coder", stream, tools=[F], format={"enum": [CODER_OUTPUT]})
    assert message["content"] == '""'  # the quotes around the forced string, either side of the call
    assert message.get("thinking", "") == ""
    assert _calls(message) == [{"index": 0, "name": "f", "arguments": {"a": 7}}]


def test_openai_layer_gets_the_parsed_call(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", json={
        "model": "p-coder", "messages": USER, "tools": [F], "temperature": 0, "max_tokens": 120,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"enum": [CODER_OUTPUT]}}}})
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]["function"]
    assert (call["name"], json.loads(call["arguments"])) == ("f", {"a": 7})


def test_thinking_parser_on_free_output(http: httpx.Client) -> None:
    # Without a format SmolLM2 never closes a thinking block: under qwen3-thinking all of its greedy output
    # is thinking, in /api/generate and /api/chat, streamed and whole.
    options = {"temperature": 0, "num_predict": 8}
    plain = http.post("/api/generate", json={"model": "p-plain", "prompt": "hi", "stream": False,
                                             "options": options}).json()["response"]
    parser = parser_for_name("qwen3-thinking")
    parser.init(None, None, None)
    expected = parser.add(plain, True)
    assert expected.thinking and not expected.content
    whole = http.post("/api/generate", json={"model": "p-thinking", "prompt": "hi", "stream": False,
                                             "options": options}).json()
    assert (whole["thinking"], whole["response"]) == (expected.thinking, "")
    with http.stream("POST", "/api/generate", json={"model": "p-thinking", "prompt": "hi", "options": options}) as r:
        chunks = [json.loads(line) for line in r.iter_lines()]
    assert "".join(c.get("thinking", "") for c in chunks) == expected.thinking
    assert "".join(c["response"] for c in chunks) == ""
    message = _chat(http, "p-thinking", True, options=options)
    assert (message["thinking"], message["content"]) == (expected.thinking, "")


def test_capabilities_come_from_the_parser(http: httpx.Client) -> None:
    def capabilities(model: str) -> set[str]:
        return set(http.post("/api/show", json={"model": model}).json()["capabilities"])

    assert capabilities("p-plain") == {"completion"}
    assert capabilities("p-coder") == {"completion", "tools"}
    assert capabilities("p-thinking") == {"completion", "tools", "thinking"}
    assert capabilities("p-harmony") == {"completion", "tools", "thinking"}
    r = http.post("/api/chat", json={"model": "p-coder", "messages": USER, "think": True})
    assert (r.status_code, r.json()) == (400, {"error": '"p-coder" does not support thinking'})


def test_parser_is_shown_and_inherited(http: httpx.Client) -> None:
    assert "PARSER qwen3-coder" in http.post("/api/show", json={"model": "p-coder"}).json()["modelfile"]
    r = http.post("/api/create", json={"model": "p-child", "from": "p-coder", "stream": False})
    assert r.status_code == 200, r.text
    assert "PARSER qwen3-coder" in http.post("/api/show", json={"model": "p-child"}).json()["modelfile"]


def test_unknown_parser_is_an_error_not_a_fallback(http: httpx.Client) -> None:
    for route, body in (("/api/chat", {"messages": USER}), ("/api/generate", {"prompt": "hi"})):
        r = http.post(route, json={"model": "p-unknown", "stream": False, **body})
        assert (r.status_code, r.json()) == (500, {"error": 'unknown parser "no-such-parser"'})
    # a raw prompt goes to no parser, as in Ollama
    r = http.post("/api/generate", json={"model": "p-unknown", "prompt": "hi", "raw": True, "stream": False,
                                         "options": {"num_predict": 1}})
    assert r.status_code == 200, r.text


def _tiny_gguf(path: Path, architecture: str) -> Path:
    writer = GGUFWriter(path, architecture)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _create_from_file(http: httpx.Client, model: str, path: Path, **body: Any) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert http.post(f"/api/blobs/{digest}", content=path.read_bytes()).status_code in (200, 201)
    r = http.post("/api/create", json={"model": model, "files": {path.name: digest}, "stream": False, **body})
    assert r.status_code == 200, r.text
    return http.post("/api/show", json={"model": model}).json()


@pytest.mark.parametrize(("architecture", "parser"), [("gemma4", "gemma4"), ("laguna", "laguna"),
                                                      ("nemotron_h", "nemotron-3-nano"),
                                                      ("nemotron_h_moe", "nemotron-3-nano")])
def test_parser_by_architecture_at_create(http: httpx.Client, tmp_path: Path, architecture: str, parser: str) -> None:
    shown = _create_from_file(http, f"arch-{architecture}", _tiny_gguf(tmp_path / "m.gguf", architecture))
    assert f"PARSER {parser}" in shown["modelfile"]
    # a parser the Modelfile names wins
    shown = _create_from_file(http, f"arch-{architecture}-own", tmp_path / "m.gguf", parser="qwen3")
    assert "PARSER qwen3\n" in shown["modelfile"]


def test_gpt_oss_family_thinks_and_speaks_harmony(http: httpx.Client, tmp_path: Path) -> None:
    # a gpt-oss model with a harmony template gets the harmony parser without naming it; the family thinks
    shown = _create_from_file(http, "tiny-gptoss", _tiny_gguf(tmp_path / "g.gguf", "gptoss"),
                              template="<|start|>{{ .Prompt }}<|end|>")
    assert shown["details"]["family"] == "gptoss"
    assert "thinking" in shown["capabilities"]
    assert "PARSER" not in shown["modelfile"]


def test_gemma4_stops_at_its_turn_end_unless_told_otherwise(http: httpx.Client, tmp_path: Path) -> None:
    gguf = _tiny_gguf(tmp_path / "m.gguf", "gemma4")
    assert '"<turn|>"' in _create_from_file(http, "g4-default", gguf)["parameters"]
    assert '"<turn|>"' not in _create_from_file(http, "g4-stop", gguf, parameters={"stop": ["<end>"]})["parameters"]
    # with both a renderer and a parser given, Ollama fills in no architecture defaults
    shown = _create_from_file(http, "g4-own", gguf, renderer="qwen3.5", parser="qwen3.5")
    assert '"<turn|>"' not in shown.get("parameters", "")
    assert '"<turn|>"' not in _create_from_file(http, "laguna-default", _tiny_gguf(tmp_path / "l.gguf", "laguna")).get(
        "parameters", "")
