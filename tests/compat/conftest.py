"""One pollama server for the compatibility tests, with the models they need:

* `m`: the bundled SmolLM2 (a completion model; no tools, no thinking, no insert);
* `tm`: SmolLM2 with a Go template that renders `.Tools` and tool calls (capability `tools`);
* `fim`: SmolLM2 with a template that renders `.Suffix` (capability `insert`);
* `think`: SmolLM2 with a template whose `<think>` tags around `.Thinking` make it a thinking model; the
  prompt opens `<think>` when thinking is on, and SmolLM2 never closes it, so all it says is thinking;
* `e` (on demand): a copy of the SmolLM2 GGUF with `llama.pooling_type` set, so an embedding model
  (probe C7 uses it; SmolLM2 itself is tried too, as a generative model used for embeddings).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.conftest import Server, create_plain_smollm2, start_server
from tests.ggufs import embedding_gguf

TOOLS_TEMPLATE = """{{- if .Tools }}<|im_start|>system
You can call these functions:
{{- range .Tools }}
{{ json . }}
{{- end }}
To call one, answer with {"name": <function name>, "arguments": <arguments object>}.<|im_end|>
{{ end }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{- if .ToolCalls }}
{{- range .ToolCalls }}
{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
{{- end }}
{{- else }}
{{ .Content }}
{{- end }}<|im_end|>
{{ end }}<|im_start|>assistant
"""

FIM_TEMPLATE = ("{{- if .Suffix }}<fim_prefix>{{ .Prompt }}<fim_suffix>{{ .Suffix }}<fim_middle>"
                "{{- else }}{{ .Prompt }}{{ end }}")

THINK_TEMPLATE = """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ if .Think }}<think>{{ end }}"""

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
# A one-pixel PNG.
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6300010000050001"
    "0d0a2db40000000049454e44ae426082")).decode()


def upload_and_create(url: str, name: str, path: Path, padding: int = 0) -> None:
    """Upload a GGUF (padded, to make it a different blob) and create `name` from it."""
    data = path.read_bytes() + b"\0" * padding
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert httpx.post(f"{url}/api/blobs/{digest}", content=data, timeout=120).status_code in (200, 201)
    r = httpx.post(f"{url}/api/create", json={"model": name, "files": {"model.gguf": digest}, "stream": False},
                   timeout=120)
    assert r.status_code == 200, r.text


def sse_payloads(text: str) -> list[str]:
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    assert all(e.startswith("data: ") and "\n" not in e for e in events), events
    return [e[len("data: "):] for e in events]


@pytest.fixture(scope="package")
def compat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("compat")
    # One slot per model: a dropped client must not keep it (test_a_dropped_stream_frees_the_slot).
    server = start_server(directory / "models", directory / "server.log", {"OLLAMA_NUM_PARALLEL": "1"},
                          bundled=True)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        create_plain_smollm2(server.url, "m")
        for name, template in (("tm", TOOLS_TEMPLATE), ("fim", FIM_TEMPLATE), ("think", THINK_TEMPLATE)):
            r = client.post("/api/create", json={"model": name, "from": "m", "template": template, "stream": False})
            assert r.status_code == 200, r.text
    yield server
    server.stop()


@pytest.fixture(scope="package")
def embedding_model(compat_server: Server, smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """`e`, an embedding model: the SmolLM2 GGUF rewritten with a pooling type (tests/ggufs.py)."""
    path = embedding_gguf(smollm2_gguf, tmp_path_factory.mktemp("pooling") / "e.gguf")
    upload_and_create(compat_server.url, "e", path)
    return "e"


@pytest.fixture(scope="package")
def http(compat_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=compat_server.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="package")
def oai(compat_server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=compat_server.url + "/v1", api_key="ollama", max_retries=0, timeout=120) as client:
        yield client


@pytest.fixture(scope="package")
def claude(compat_server: Server) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=compat_server.url, api_key="ollama", max_retries=0, timeout=120) as client:
        yield client
