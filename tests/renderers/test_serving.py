"""Renderers through a real server: SmolLM2 models whose config names a renderer (as a Modelfile RENDERER or
a pulled model's config does) render their prompts with it, in /api/chat and /api/generate, and generate."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from engine.renderers import BUILDERS, messages_from_json, renderer_for, resolve_name, runner_prompt, tools_from_json
from tests.conftest import Server

FAST = {"temperature": 0, "num_predict": 4}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather",
    "parameters": {"type": "object", "required": ["city"],
                   "properties": {"city": {"type": "string", "description": "The city"}}}}}
CHAT = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "thinking": "Look it up.",
     "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
    {"role": "tool", "content": "21 C", "tool_name": "get_weather"},
    {"role": "user", "content": "Thanks <b>&</b>!"},
]


@pytest.fixture(scope="module")
def http(shared_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.url, timeout=120) as client:
        yield client


def _create(http: httpx.Client, model: str, **body: object) -> None:
    r = http.post("/api/create", json={"model": model, "from": "smollm2:135m", "stream": False, **body})
    assert r.status_code == 200, r.text


def _expected(name: str, messages: list[dict], tools: list[dict] | None, think: object) -> str:
    # The server decodes numbers as Go does (float64) and tags images: the renderer as the server runs it.
    return renderer_for(name).render(messages_from_json(messages), tools_from_json(tools), think)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_chat_renders_with_the_configured_renderer(http: httpx.Client, name: str) -> None:
    # Tools are allowed by capability (a parser's or the template's, not the renderer's): a template that
    # mentions .Tools lets the request through; the prompt comes from the renderer.
    _create(http, f"r-{name}", renderer=name, template="{{ if .Tools }}{{ end }}{{ .Prompt }}")
    r = http.post("/api/chat", json={"model": f"r-{name}", "messages": CHAT, "tools": [WEATHER], "think": False,
                                    "_debug_render_only": True})
    assert r.status_code == 200, r.text
    resolved = resolve_name(name, short_name=f"r-{name}:latest", name=f"r-{name}", model_type="134.52M")
    assert r.json()["_debug_info"]["rendered_template"] == _expected(resolved, CHAT, [WEATHER], False)


def test_generate_renders_a_one_turn_chat(http: httpx.Client) -> None:
    _create(http, "r-gen", renderer="qwen3.5", system="Be brief.")
    r = http.post("/api/generate", json={"model": "r-gen", "prompt": "Hello", "_debug_render_only": True})
    assert r.status_code == 200, r.text
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    assert r.json()["_debug_info"]["rendered_template"] == _expected("qwen3.5", messages, None, None)
    assert r.json()["_debug_info"]["rendered_template"].endswith("<|im_start|>assistant\n<think>\n")


def test_think_levels_reach_the_renderer(http: httpx.Client) -> None:
    # Thinking is allowed by capability (a parser's or the template's thinking tags), rendered by the renderer.
    thinking = "{{ range .Messages }}{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}{{ end }}"
    _create(http, "r-glimmer", renderer="glimmer", template=thinking)
    for think in (True, False, "low", "high"):
        r = http.post("/api/chat", json={"model": "r-glimmer", "messages": CHAT[1:2], "think": think,
                                        "_debug_render_only": True})
        assert r.status_code == 200, r.text
        strength = {True: "high", False: "none"}.get(think, think)
        assert f"Reasoning strength: {strength}." in r.json()["_debug_info"]["rendered_template"]


def test_a_model_made_from_a_renderer_model_keeps_its_renderer(http: httpx.Client) -> None:
    _create(http, "r-parent", renderer="cohere")
    _create(http, "r-child", **{"from": "r-parent"})
    assert "RENDERER cohere" in http.post("/api/show", json={"model": "r-child"}).json()["modelfile"]
    r = http.post("/api/chat", json={"model": "r-child", "messages": CHAT[1:2], "_debug_render_only": True})
    assert r.json()["_debug_info"]["rendered_template"] == _expected("cohere", CHAT[1:2], None, None)


def test_a_renderer_model_generates(http: httpx.Client) -> None:
    _create(http, "r-run", renderer="qwen3-coder")
    r = http.post("/api/chat", json={"model": "r-run", "messages": CHAT[1:2], "stream": False, "options": FAST})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["done"] is True and body["eval_count"] > 0
    # The prompt llama.cpp saw is the rendered one: its token count is the rendered text's.
    rendered = _expected("qwen3-coder", CHAT[1:2], None, None)
    tokens = http.post("/api/generate", json={"model": "r-run", "prompt": rendered, "raw": True, "stream": False,
                                             "options": FAST}).json()["prompt_eval_count"]
    assert body["prompt_eval_count"] == tokens


def test_history_is_trimmed_to_num_ctx_with_the_renderer(http: httpx.Client) -> None:
    _create(http, "r-trim", renderer="qwen3-coder", parameters={"num_ctx": 256})
    long = [{"role": "user", "content": "word " * 400}, {"role": "assistant", "content": "ok"},
            {"role": "system", "content": "Keep me."}, {"role": "user", "content": "last question"}]
    r = http.post("/api/chat", json={"model": "r-trim", "messages": long, "_debug_render_only": True})
    prompt = r.json()["_debug_info"]["rendered_template"]
    assert prompt == _expected("qwen3-coder", long[1:], None, None)


def test_unknown_renderer_is_an_error_not_a_fallback(http: httpx.Client) -> None:
    _create(http, "r-unknown", renderer="no-such-renderer")
    for route, body in (("/api/chat", {"messages": CHAT[1:2]}), ("/api/generate", {"prompt": "Hi"})):
        r = http.post(route, json={"model": "r-unknown", "stream": False, **body})
        assert r.status_code == 500
        assert r.json() == {"error": 'unknown renderer "no-such-renderer"'}


def test_a_renderer_refusal_is_a_client_error(http: httpx.Client) -> None:
    _create(http, "r-qwen38", renderer="qwen3.8")
    r = http.post("/api/chat", json={"model": "r-qwen38", "messages": [{"role": "system", "content": "Hi"}],
                                    "stream": False})
    assert r.status_code == 400
    assert r.json() == {"error": "no user query found in messages"}


def test_bos_written_by_a_renderer_is_dropped_when_the_tokenizer_adds_one() -> None:
    # Ollama's llm/llama_server_test.go TestLlamaServerCompletionBOSOwnership cases
    assert runner_prompt("<bos><|turn>user\nhello", "<bos>", False) == "<bos><|turn>user\nhello"
    assert runner_prompt("<bos><start_of_turn>user\nhello", "", True) == "<start_of_turn>user\nhello"
    assert runner_prompt("<|startoftext|><|im_start|>user", "<|startoftext|>", True) == "<|im_start|>user"
    assert runner_prompt("<|startoftext|><|im_start|>user", "", True) == "<|startoftext|><|im_start|>user"
    assert runner_prompt("<bos>hello<bos>", "", True) == "hello<bos>"
