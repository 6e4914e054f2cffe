"""One pollama server for the inference-feature tests, with SmolLM2 under templates the tests need:

* `m`: the bundled SmolLM2 as it is (ChatML; no tools, thinking or insert);
* `tools`: calls written as bare JSON objects (tag `{`), the shape a JSON schema can force;
* `tagged`: calls written inside `<tool_call>…</tool_call>` (tag `<tool_call>`);
* `think`: thinking between `<think>` and `</think>`; the prompt opens the tag (a primed parser);
* `fim`: fill-in-the-middle through `.Suffix`.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Server, create_plain_smollm2, start_server

CHATML_TOOLS = """{{- if .Tools }}<|im_start|>system
You can call these functions:
{{- range .Tools }}
{{ json . }}
{{- end }}<|im_end|>
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

TAGGED_TOOLS = """{{- if .Tools }}<|im_start|>system
Tools: {{ range .Tools }}{{ .Function.Name }} {{ end }}<|im_end|>
{{ end }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ if eq .Role "tool" }}<tool_response>{{ .Content }}</tool_response>{{ else }}{{ .Content }}{{ end }}
{{- if .ToolCalls }}
{{- range .ToolCalls }}<tool_call>{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}</tool_call>
{{- end }}
{{- end }}<|im_end|>
{{ end }}<|im_start|>assistant
"""

THINK = """{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
<|im_start|>{{ .Role }}
{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}
{{- if or (not $last) (ne .Role "assistant") }}<|im_end|>
{{ end }}
{{- if and $last (ne .Role "assistant") }}<|im_start|>assistant
{{ if $.Think }}<think>{{ end }}
{{- end }}
{{- end }}"""

FIM = "{{- if .Suffix }}<fim_prefix>{{ .Prompt }}<fim_suffix>{{ .Suffix }}<fim_middle>{{- else }}{{ .Prompt }}{{ end }}"

GREEDY = {"temperature": 0, "num_predict": 24}

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "The time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="package")
def features_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("features")
    server = start_server(directory / "models", directory / "server.log", bundled=True)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        create_plain_smollm2(server.url, "m")
        for name, template in (("tools", CHATML_TOOLS), ("tagged", TAGGED_TOOLS), ("think", THINK), ("fim", FIM)):
            r = client.post("/api/create", json={"model": name, "from": "m", "template": template, "stream": False})
            assert r.status_code == 200, r.text
    yield server
    server.stop()


@pytest.fixture(scope="package")
def http(features_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=features_server.url, timeout=180) as client:
        yield client


def stream(http: httpx.Client, path: str, body: dict) -> list[dict]:
    """The chunks of a streamed answer."""
    import json

    with http.stream("POST", path, json=body) as r:
        assert r.status_code == 200, r.read()
        return [json.loads(line) for line in r.iter_lines() if line]
