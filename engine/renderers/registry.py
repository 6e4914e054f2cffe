"""Renderer names as a model's config (or Modelfile RENDERER) gives them, and the renderer each one builds."""

from __future__ import annotations

from collections.abc import Callable

from engine.renderers.base import Renderer
from engine.renderers.cohere import CohereRenderer
from engine.renderers.deepseek import CogitoRenderer, DeepSeek3Renderer
from engine.renderers.gemma import FunctionGemmaRenderer, Gemma4Renderer
from engine.renderers.glimmer import GlimmerRenderer
from engine.renderers.glm import GLM47Renderer, GlmOcrRenderer
from engine.renderers.laguna import LagunaRenderer, LagunaV8Renderer
from engine.renderers.lfm2 import LFM2Renderer
from engine.renderers.nemotron import Nemotron3NanoRenderer
from engine.renderers.olmo import Olmo3Renderer, Olmo3ThinkRenderer
from engine.renderers.qwen import Qwen3CoderRenderer, Qwen3VLRenderer, Qwen35Renderer
from modelstore.gojson import go_quote


class UnknownRendererError(LookupError):
    def __init__(self, name: str):
        super().__init__(f"unknown renderer {go_quote(name)}")
        self.name = name


# Every name in Ollama's renderer switch (model/renderers/renderer.go at the reference commit); each builder
# takes `img_tags`, whether images are written as `[img-N]` tags.
BUILDERS: dict[str, Callable[[bool], Renderer]] = {
    "qwen3-coder": lambda img_tags: Qwen3CoderRenderer(),
    "qwen3-vl-instruct": lambda img_tags: Qwen3VLRenderer(thinking=False, img_tags=img_tags),
    "qwen3-vl-thinking": lambda img_tags: Qwen3VLRenderer(thinking=True, img_tags=img_tags),
    "qwen3.5": lambda img_tags: Qwen35Renderer(thinking=True, empty_think_on_no_think=True, img_tags=img_tags),
    "qwen3.8": lambda img_tags: Qwen35Renderer(thinking=True, qwen38=True, always_think_block=True,
                                               empty_think_on_no_think=True, img_tags=img_tags),
    "ornith": lambda img_tags: Qwen35Renderer(thinking=True, always_think_block=True, empty_think_on_no_think=True,
                                              img_tags=img_tags),
    "cogito": lambda img_tags: CogitoRenderer(thinking=True),
    "deepseek3.1": lambda img_tags: DeepSeek3Renderer(thinking=True),
    "olmo3": lambda img_tags: Olmo3Renderer(extended_system=False),
    "olmo3.1": lambda img_tags: Olmo3Renderer(extended_system=True),
    "olmo3-think": lambda img_tags: Olmo3ThinkRenderer(model_32b=False),
    "olmo3-32b-think": lambda img_tags: Olmo3ThinkRenderer(model_32b=True),
    "glm-4.7": lambda img_tags: GLM47Renderer(),
    "glm-ocr": lambda img_tags: GlmOcrRenderer(img_tags=img_tags),
    "nemotron-3-nano": lambda img_tags: Nemotron3NanoRenderer(),
    "nemotron-3.5-nano": lambda img_tags: Nemotron3NanoRenderer(v35=True),
    "gemma4": lambda img_tags: Gemma4Renderer(img_tags=img_tags),
    "gemma4-small": lambda img_tags: Gemma4Renderer(img_tags=img_tags),
    "gemma4-large": lambda img_tags: Gemma4Renderer(img_tags=img_tags, empty_block_on_no_think=True),
    "functiongemma": lambda img_tags: FunctionGemmaRenderer(),
    "lfm2": lambda img_tags: LFM2Renderer(thinking=False, img_tags=img_tags),
    "lfm2-thinking": lambda img_tags: LFM2Renderer(thinking=True, img_tags=img_tags),
    "laguna": lambda img_tags: LagunaRenderer(),
    "poolside-v1": lambda img_tags: LagunaV8Renderer(),
    "cohere": lambda img_tags: CohereRenderer(),
    "glimmer": lambda img_tags: GlimmerRenderer(img_tags=img_tags),
}


def renderer_for(name: str, *, img_tags: bool = True) -> Renderer:
    """The renderer a name selects. `img_tags`: images appear as `[img-N]` tags, as the server renders them;
    off, a renderer writes its model's own image placeholder. Raises UnknownRendererError."""
    build = BUILDERS.get(name)
    if build is None:
        raise UnknownRendererError(name)
    return build(img_tags)


def leading_bos(name: str) -> str:
    """The BOS text a renderer starts its prompts with; empty for an unknown name."""
    build = BUILDERS.get(name)
    return build(True).leading_bos if build is not None else ""


GEMMA4_LARGE_MIN_PARAMETERS = 12_000_000_000


def resolve_name(renderer: str, *, short_name: str, name: str, model_type: str) -> str:
    """The renderer a model's config names, with Ollama's legacy `gemma4` resolved to gemma4-small or
    gemma4-large: by a size in the model's name (e2b/e4b small; 12b/26b/31b large), else by its parameter
    count (12B and up is large), else small."""
    if renderer != "gemma4":
        return renderer
    for candidate in (short_name, name):
        lower = candidate.lower()
        if "e2b" in lower or "e4b" in lower:
            return "gemma4-small"
        if "12b" in lower or "26b" in lower or "31b" in lower:
            return "gemma4-large"
    count = _human_count(model_type)
    if count is not None:
        return "gemma4-large" if count >= GEMMA4_LARGE_MIN_PARAMETERS else "gemma4-small"
    return "gemma4-small"


def _human_count(text: str) -> int | None:
    """"31.3B" -> 31300000000 (B, M or K); None when it is not such a number."""
    multiplier = {"B": 1_000_000_000, "M": 1_000_000, "K": 1_000}.get(text[-1:].upper())
    if multiplier is None:
        return None
    try:
        return int(float(text[:-1]) * multiplier)
    except ValueError:
        return None


# Ollama's create gives a GGUF of these architectures a renderer when neither the Modelfile nor the base
# model names one.
ARCHITECTURE_RENDERERS = {"gemma4": "gemma4", "laguna": "laguna", "nemotron_h": "nemotron-3-nano",
                          "nemotron_h_moe": "nemotron-3-nano", "nemotron_h_omni": "nemotron-3-nano"}


def renderer_for_architecture(architecture: str) -> str:
    return ARCHITECTURE_RENDERERS.get(architecture, "")


def tokenizer_adds_bos(kv: dict) -> bool:
    """Whether llama.cpp puts BOS in front of a prompt by itself (Ollama's reading of the GGUF: LFM2 and
    Gemma 4 tokenizers always do, others when tokenizer.ggml.add_bos_token says so)."""
    if kv.get("tokenizer.ggml.pre") in ("lfm2", "gemma4") or kv.get("tokenizer.ggml.model") == "gemma4":
        return True
    return kv.get("tokenizer.ggml.add_bos_token") is True


def runner_prompt(prompt: str, leading_bos: str, adds_bos: bool) -> str:
    """The prompt llama.cpp is given: when its tokenizer adds BOS itself, a BOS the prompt starts with as
    text (the renderer's, or `<bos>`) is dropped so the model does not see two."""
    if adds_bos:
        if leading_bos and prompt.startswith(leading_bos):
            return prompt[len(leading_bos):]
        if prompt.startswith("<bos>"):
            return prompt[len("<bos>"):]
    return prompt
