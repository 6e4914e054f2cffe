"""Parser names, as a model's config (or a Modelfile's PARSER) gives them, and what each one builds."""

from __future__ import annotations

from collections.abc import Callable

from engine.parsers.base import Parsed, Parser
from engine.parsers.cohere import CohereParser
from engine.parsers.deepseek import CogitoParser, DeepSeek3Parser
from engine.parsers.functiongemma import FunctionGemmaParser
from engine.parsers.gemma4 import Gemma4Parser
from engine.parsers.glimmer import GlimmerParser
from engine.parsers.glm import GLM47Parser, GlmOcrParser
from engine.parsers.harmony import HarmonyMessageHandler
from engine.parsers.laguna import LagunaParser, LagunaV8Parser
from engine.parsers.lfm2 import LFM2Parser
from engine.parsers.ministral import MinistralParser
from engine.parsers.nemotron import Nemotron3NanoParser
from engine.parsers.olmo3 import Olmo3Parser, Olmo3ThinkParser
from engine.parsers.qwen3 import Qwen3Parser
from engine.parsers.qwen3coder import Qwen3CoderParser
from engine.parsers.qwen3vl import Qwen3VLParser
from engine.parsers.qwen35 import Qwen35Parser
from modelstore.gojson import go_quote


class PassthroughParser(Parser):
    """The output as it is, all content."""

    def add(self, text: str, done: bool) -> Parsed:
        return Parsed(text, "", [])


_PARSERS: dict[str, Callable[[], Parser]] = {
    "qwen3": lambda: Qwen3Parser(thinking=False),
    "qwen3-thinking": lambda: Qwen3Parser(thinking=True),
    "qwen3.5": Qwen35Parser,
    "ornith": Qwen35Parser,
    "qwen3-coder": Qwen3CoderParser,
    "qwen3-vl-instruct": lambda: Qwen3VLParser(thinking=False),
    "qwen3-vl-thinking": lambda: Qwen3VLParser(thinking=True),
    "ministral": lambda: MinistralParser(thinking=False),
    "passthrough": PassthroughParser,
    "harmony": HarmonyMessageHandler,
    "cogito": CogitoParser,
    "deepseek3": lambda: DeepSeek3Parser(thinking=True),
    "olmo3": Olmo3Parser,
    "olmo3-think": Olmo3ThinkParser,
    "nemotron-3-nano": Nemotron3NanoParser,
    "nemotron-3.5-nano": Nemotron3NanoParser,
    "functiongemma": FunctionGemmaParser,
    "glm-4.7": GLM47Parser,
    "gemma4": lambda: Gemma4Parser(thinking=True),
    "gemma4-no-thinking": lambda: Gemma4Parser(thinking=False),
    "glm-ocr": GlmOcrParser,
    "lfm2": lambda: LFM2Parser(thinking=False),
    "lfm2-thinking": lambda: LFM2Parser(thinking=True),
    "laguna": LagunaParser,
    "poolside-v1": LagunaV8Parser,
    "cohere": CohereParser,
    "glimmer": GlimmerParser,
}

PARSER_NAMES: tuple[str, ...] = tuple(_PARSERS)


class UnknownParser(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown parser {go_quote(name)}")
        self.name = name


def parser_for_name(name: str) -> Parser | None:
    """A fresh parser for the name, or None if there is no such parser."""
    constructor = _PARSERS.get(name)
    return constructor() if constructor is not None else None
