"""/api/generate beyond a plain prompt: raw, context, suffix (FIM), system and template overrides, Modelfile
MESSAGEs (api-contract.md §3.7, runtime.md §3.7); capability checks before any model work; base64."""

from __future__ import annotations

import httpx
import pytest

from tests.features.conftest import WEATHER

FAST = {"temperature": 0, "num_predict": 4}


def _render(http: httpx.Client, **body: object) -> str:
    r = http.post("/api/generate", json={"model": "m", "_debug_render_only": True, **body})
    assert r.status_code == 200, r.text
    return r.json()["_debug_info"]["rendered_template"]


def test_raw(http: httpx.Client) -> None:
    assert _render(http, prompt="<|im_start|>user\nhi", raw=True) == "<|im_start|>user\nhi"
    body = http.post("/api/generate", json={"model": "m", "prompt": "The capital of France is", "raw": True,
                                            "stream": False, "options": FAST}).json()
    assert body["response"].startswith(" Paris") and "context" not in body
    for extra in ({"template": "{{ .Prompt }}"}, {"system": "s"}, {"context": [1, 2]}):
        r = http.post("/api/generate", json={"model": "m", "prompt": "x", "raw": True, **extra})
        assert (r.status_code, r.json()) == (400, {"error": "raw mode does not support template, system, or context"})
    # an empty context is no context (Ollama checks its length)
    assert _render(http, prompt="x", raw=True, context=[]) == "x"


def test_context_continues_a_conversation(http: httpx.Client) -> None:
    first = http.post("/api/generate", json={"model": "m", "prompt": "Hi", "stream": False, "options": FAST}).json()
    first_prompt = _render(http, prompt="Hi")
    assert first_prompt == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    # the context is the prompt and the answer, tokenized; it is put back in front of the next prompt
    follow = _render(http, prompt="More", context=first["context"])
    assert follow == first_prompt + first["response"] + "<|im_start|>user\nMore<|im_end|>\n<|im_start|>assistant\n"
    second = http.post("/api/generate", json={"model": "m", "prompt": "More", "context": first["context"],
                                              "stream": False, "options": FAST}).json()
    alone = http.post("/api/generate", json={"model": "m", "prompt": "More", "stream": False, "options": FAST}).json()
    assert second["prompt_eval_count"] == alone["prompt_eval_count"] + len(first["context"])
    assert second["context"][:len(first["context"])] == first["context"]


def test_fim_with_suffix(http: httpx.Client) -> None:
    assert http.post("/api/show", json={"model": "fim"}).json()["capabilities"] == ["completion", "insert"]
    prompt = _render(http, model="fim", prompt="def add(a, b):\n", suffix="\n\nprint(add(1, 2))")
    assert prompt == "<fim_prefix>def add(a, b):\n<fim_suffix>\n\nprint(add(1, 2))<fim_middle>"
    # without a suffix the template's other branch is used
    assert _render(http, model="fim", prompt="plain") == "plain"
    body = http.post("/api/generate", json={"model": "fim", "prompt": "def add(a, b):\n", "suffix": "\n",
                                            "stream": False, "options": FAST}).json()
    assert body["done"] and body["eval_count"] > 0
    r = http.post("/api/generate", json={"model": "m", "prompt": "def f(", "suffix": "return"})
    assert (r.status_code, r.json()) == (400, {"error": "registry.ollama.ai/library/m:latest does not support insert"})


def test_system_and_template_overrides(http: httpx.Client) -> None:
    assert _render(http, prompt="hi", system="Be brief.") == ("<|im_start|>system\nBe brief.<|im_end|>\n"
                                                              "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    assert _render(http, prompt="hi", system="S", template="{{ .System }}|Q: {{ .Prompt }}\nA:") == "S|Q: hi\nA:"
    r = http.post("/api/generate", json={"model": "m", "prompt": "hi", "template": "{{ .Prompt "})
    assert r.status_code == 500 and "unclosed action" in r.json()["error"]


def test_modelfile_messages(http: httpx.Client) -> None:
    history = [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "A helper."}]
    r = http.post("/api/create", json={"model": "withmsgs", "from": "m", "system": "Sys.", "messages": history,
                                       "stream": False})
    assert r.status_code == 200, r.text
    turn = "<|im_start|>{}\n{}<|im_end|>\n"
    expected = (turn.format("system", "Sys.") + turn.format("user", "Who are you?")
                + turn.format("assistant", "A helper.") + turn.format("user", "hi") + "<|im_start|>assistant\n")
    assert _render(http, model="withmsgs", prompt="hi") == expected
    # with a context the MESSAGEs are left out
    assert _render(http, model="withmsgs", prompt="hi", context=[]) == (turn.format("system", "Sys.")
                                                                         + turn.format("user", "hi")
                                                                         + "<|im_start|>assistant\n")
    # chat: the SYSTEM first, then the MESSAGEs, then the request's messages
    chat = http.post("/api/chat", json={"model": "withmsgs", "messages": [{"role": "user", "content": "hi"}],
                                        "_debug_render_only": True}).json()
    assert chat["_debug_info"]["rendered_template"] == expected


@pytest.fixture
def cold(http: httpx.Client) -> str:
    """A model that no test loads: a copy of m under a new name."""
    assert http.post("/api/copy", json={"source": "m", "destination": "cold"}).status_code == 200
    return "cold"


def _loaded(http: httpx.Client) -> list[str]:
    return [entry["name"] for entry in http.get("/api/ps").json()["models"]]


@pytest.mark.parametrize(("path", "body", "error"), [
    ("/api/chat", {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER]},
     "registry.ollama.ai/library/cold:latest does not support tools"),
    ("/api/chat", {"messages": [{"role": "user", "content": "x"}], "think": True}, '"cold" does not support thinking'),
    ("/api/generate", {"prompt": "x", "suffix": "y"}, "registry.ollama.ai/library/cold:latest does not support insert"),
    ("/api/generate", {"prompt": "x", "think": "high", "suffix": "y"}, '"cold" does not support thinking'),
    ("/api/generate", {"prompt": "x", "format": "yaml"},
     'invalid format: "\\"yaml\\""; expected "json" or a valid JSON Schema object'),
])
def test_capabilities_are_checked_before_loading(http: httpx.Client, cold: str, path: str, body: dict,
                                                 error: str) -> None:
    r = http.post(path, json={"model": cold, "options": {"temperature": "not a number"}, **body})
    if "format" in body:  # the option error comes first for a format error, as in Ollama
        assert r.json() == {"error": 'option "temperature" must be of type float32'}
        r = http.post(path, json={"model": cold, **body})
    assert (r.status_code, r.json()) == (400, {"error": error})
    assert "cold:latest" not in _loaded(http)


@pytest.mark.parametrize(("path", "body"), [
    ("/api/generate", {"prompt": "x", "images": ["data:image/png;base64,iVBORw0KGgo="]}),
    ("/api/chat", {"messages": [{"role": "user", "content": "x", "images": ["data:image/png;base64,iVBORw0KGgo="]}]}),
])
def test_images_must_be_plain_base64(http: httpx.Client, path: str, body: dict) -> None:
    r = http.post(path, json={"model": "m", **body})
    assert (r.status_code, r.json()) == (400, {"error": "illegal base64 data at input byte 4"})
