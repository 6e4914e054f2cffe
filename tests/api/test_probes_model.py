"""api-contract.md §9 group B (the probes of the foundation), against the real SmolLM2 as model `m`."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from tests.conftest import Server, create_plain_smollm2

FAST = {"temperature": 0, "num_predict": 8}


@pytest.fixture(scope="module")
def http(shared_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.url, timeout=120) as client:
        create_plain_smollm2(shared_server.url, "m")
        yield client


def test_b1_load(http: httpx.Client) -> None:
    r = http.post("/api/generate", json={"model": "m"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    body = r.json()
    assert (body["model"], body["response"], body["done"], body["done_reason"]) == ("m", "", True, "load")


def test_b18_ps_after_load(http: httpx.Client) -> None:
    http.post("/api/generate", json={"model": "m"})
    models = http.get("/api/ps").json()["models"]
    entry = next(e for e in models if e["name"] == "m:latest")
    assert entry["model"] == "m:latest"
    assert isinstance(entry["size_vram"], int) and isinstance(entry["context_length"], int)
    assert entry["size"] > 0 and re.fullmatch(r"[0-9a-f]{64}", entry["digest"])
    expires = datetime.fromisoformat(entry["expires_at"])
    assert 240 < expires.timestamp() - time.time() <= 301
    assert list(entry) == ["name", "model", "size", "digest", "details", "expires_at", "size_vram", "context_length"]


def test_b2_unload(http: httpx.Client) -> None:
    http.post("/api/generate", json={"model": "m"})
    body = http.post("/api/generate", json={"model": "m", "keep_alive": 0}).json()
    assert (body["done"], body["done_reason"], body["response"]) == (True, "unload", "")
    assert all(e["name"] != "m:latest" for e in http.get("/api/ps").json()["models"])


def test_b3_chat_load(http: httpx.Client) -> None:
    body = http.post("/api/chat", json={"model": "m"}).json()
    assert body["message"] == {"role": "assistant", "content": ""} and body["done_reason"] == "load"


def test_b4_chat_unload(http: httpx.Client) -> None:
    body = http.post("/api/chat", json={"model": "m", "messages": [], "keep_alive": "0s"}).json()
    assert body["done_reason"] == "unload"


def test_b5_raw_with_system(http: httpx.Client) -> None:
    r = http.post("/api/generate", json={"model": "m", "prompt": "hi", "raw": True, "system": "s"})
    assert r.status_code == 400
    assert r.json() == {"error": "raw mode does not support template, system, or context"}


def test_b6_think_unsupported(http: httpx.Client) -> None:
    messages = [{"role": "user", "content": "hi"}]
    r = http.post("/api/chat", json={"model": "m", "messages": messages, "think": True})
    assert (r.status_code, r.json()) == (400, {"error": '"m" does not support thinking'})
    r = http.post("/api/chat", json={"model": "m", "messages": messages, "think": False, "stream": False,
                                      "options": FAST})
    assert r.status_code == 200


def test_b7_b8_capabilities(http: httpx.Client) -> None:
    r = http.post("/api/generate", json={"model": "m", "prompt": "def f(", "suffix": "return"})
    assert (r.status_code, r.json()) == (400, {"error": "registry.ollama.ai/library/m:latest does not support insert"})
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    r = http.post("/api/chat", json={"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools})
    assert (r.status_code, r.json()) == (400, {"error": "registry.ollama.ai/library/m:latest does not support tools"})


def test_b9_stream(http: httpx.Client) -> None:
    with http.stream("POST", "/api/generate", json={"model": "m", "prompt": "hi", "options": FAST}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/x-ndjson"
        raw = b"".join(r.iter_bytes())
    assert raw.endswith(b"\n")
    lines = [json.loads(line) for line in raw.splitlines()]
    assert all(not line["done"] and isinstance(line["response"], str) for line in lines[:-1])
    last = lines[-1]
    assert last["done"] and last["done_reason"] in ("stop", "length")
    assert isinstance(last["context"], list) and all(isinstance(t, int) for t in last["context"])
    for key in ("total_duration", "load_duration", "eval_count"):
        assert isinstance(last[key], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", last["created_at"])


def test_b10_b11_whole(http: httpx.Client) -> None:
    r = http.post("/api/generate", json={"model": "m", "prompt": "hi", "stream": False, "options": FAST})
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    body = r.json()
    assert body["response"] and "context" in body
    raw = http.post("/api/generate", json={"model": "m", "prompt": "hi", "stream": False, "raw": True,
                                           "options": FAST}).json()
    assert "context" not in raw


def test_b12_unknown_option_ignored(http: httpx.Client) -> None:
    r = http.post("/api/generate", json={"model": "m", "prompt": "hi", "stream": False,
                                         "options": {**FAST, "not_a_real_option": 1}})
    assert r.status_code == 200


@pytest.mark.parametrize(("options", "message"), [
    ({"temperature": "hot"}, 'option "temperature" must be of type float32'),
    ({"stop": "x"}, 'option "stop" must be of type array'),
    ({"num_predict": "x"}, 'option "num_predict" must be of type integer'),
    ({"stop": [1]}, 'option "stop" must be of an array of strings'),
    ({"use_mmap": 1}, 'option "use_mmap" must be of type boolean'),
])
def test_b13_b14_bad_option_types(http: httpx.Client, options: dict, message: str) -> None:
    # Ollama answers 500; a client's mistake gets 400 here, with the same text.
    r = http.post("/api/generate", json={"model": "m", "prompt": "hi", "stream": False, "options": options})
    assert (r.status_code, r.json()) == (400, {"error": message})


def test_b15_length(http: httpx.Client) -> None:
    body = http.post("/api/generate", json={"model": "m", "prompt": "hi", "stream": False,
                                            "options": {"num_predict": 1}}).json()
    assert body["done_reason"] == "length"


def test_b16_bad_format(http: httpx.Client) -> None:
    r = http.post("/api/generate", json={"model": "m", "prompt": "hi", "stream": False, "format": "xml"})
    assert r.status_code == 400
    assert r.json() == {"error": 'invalid format: "\\"xml\\""; expected "json" or a valid JSON Schema object'}


def test_b17_case_insensitive(http: httpx.Client) -> None:
    r = http.post("/api/generate", json={"model": "M", "prompt": "hi", "stream": False, "options": FAST})
    assert r.status_code == 200 and r.json()["model"] == "M"


def test_b19_tags(http: httpx.Client) -> None:
    entry = next(e for e in http.get("/api/tags").json()["models"] if e["name"] == "m:latest")
    assert re.fullmatch(r"[0-9a-f]{64}", entry["digest"]) and entry["size"] > 0
    assert entry["details"]["format"] == "gguf"


def test_b20_show(http: httpx.Client) -> None:
    body = http.post("/api/show", json={"model": "m"}).json()
    assert "general.architecture" in body["model_info"]
    assert "completion" in body["capabilities"]
    assert body["modelfile"].startswith('# Modelfile generated by "ollama show"')
    assert datetime.fromisoformat(body["modified_at"])


def test_b24_copy_delete(http: httpx.Client) -> None:
    r = http.post("/api/copy", json={"source": "m", "destination": "m2"})
    assert (r.status_code, r.content) == (200, b"")
    r = http.request("DELETE", "/api/delete", json={"model": "m2"})
    assert (r.status_code, r.content) == (200, b"")
    names = {e["name"] for e in http.get("/api/tags").json()["models"]}
    assert "m:latest" in names and "m2:latest" not in names


def test_debug_render_only(http: httpx.Client) -> None:
    body = http.post("/api/generate", json={"model": "m", "prompt": "Hello", "system": "Be brief.",
                                            "_debug_render_only": True}).json()
    assert body["_debug_info"]["rendered_template"] == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n")
