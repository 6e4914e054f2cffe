"""Ollama's built-in renderers: model prompt formats written as code, chosen by a model's `renderer`."""

from engine.renderers.api import Message, Tool, messages_from_json, tools_from_json
from engine.renderers.base import Renderer, RenderError
from engine.renderers.registry import (
    BUILDERS,
    UnknownRendererError,
    leading_bos,
    renderer_for,
    renderer_for_architecture,
    resolve_name,
    runner_prompt,
    tokenizer_adds_bos,
)
from engine.thinkvalue import Think

__all__ = ["BUILDERS", "Message", "RenderError", "Renderer", "Think", "Tool", "UnknownRendererError", "leading_bos",
           "messages_from_json", "renderer_for", "renderer_for_architecture", "resolve_name", "runner_prompt",
           "tokenizer_adds_bos", "tools_from_json"]
