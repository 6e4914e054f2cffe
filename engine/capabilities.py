"""What a model can do, derived as Ollama derives it (server/images.go: Capabilities)."""

from __future__ import annotations

from engine.parsers import capabilities_from_parser, uses_harmony
from engine.template import Template
from engine.thinking import infer_tags
from modelstore.model import Model

COMPLETION = "completion"
TOOLS = "tools"
INSERT = "insert"
VISION = "vision"
EMBEDDING = "embedding"
THINKING = "thinking"
RERANK = "rerank"  # not Ollama's: a cross-encoder, scoring documents against a query
RANK_POOLING = 4  # llama.cpp's LLAMA_POOLING_TYPE_RANK


def model_capabilities(model: Model) -> list[str]:
    caps: list[str] = list(model.config.capabilities or [])
    info = model.gguf()
    if info is not None:
        arch = info.architecture
        # a model whose prompt and output Ollama handles itself does not take them from the GGUF's template
        rendered_by_ollama = bool(model.config.renderer or model.config.parser) or uses_harmony(model)
        if model.template is None and not rendered_by_ollama:
            jinja = info.kv.get("tokenizer.chat_template")
            if isinstance(jinja, str):
                if "tools" in jinja or "tool_call" in jinja:
                    caps.append(TOOLS)
                if "<think>" in jinja and "</think>" in jinja:
                    caps.append(THINKING)
        pooling = info.kv.get(f"{arch}.pooling_type")
        if pooling is None:
            caps.append(COMPLETION)
        else:  # a reranker's pooled output is its scores, not an embedding
            caps.append(RERANK if pooling == RANK_POOLING else EMBEDDING)
        if f"{arch}.vision.block_count" in info.kv:
            caps.append(VISION)
    if model.projector_paths:
        caps.append(VISION)
    if model.template is not None:
        template = Template.parse(model.template)
        if template.uses("tools"):
            caps.append(TOOLS)
        if template.uses("suffix"):
            caps.append(INSERT)
        opening, closing = infer_tags(template.root)
        if opening and closing:
            caps.append(THINKING)
    caps += capabilities_from_parser(model)
    return list(dict.fromkeys(caps))
