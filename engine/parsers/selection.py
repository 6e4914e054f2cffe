"""Which built-in parser a model's output goes through (as Ollama selects it), and the capabilities a
parser gives a model."""

from __future__ import annotations

from engine.parsers.base import Parser
from engine.parsers.registry import UnknownParser, parser_for_name
from modelstore.model import Model

HARMONY = "harmony"
TOOLS = "tools"
THINKING = "thinking"
GPTOSS_FAMILIES = ("gptoss", "gpt-oss")


# A model created from a GGUF of these architectures gets this parser unless its Modelfile (or base) names one.
ARCHITECTURE_PARSERS = {"gemma4": "gemma4", "laguna": "laguna", "nemotron_h": "nemotron-3-nano",
                        "nemotron_h_moe": "nemotron-3-nano", "nemotron_h_omni": "nemotron-3-nano"}


def parser_for_architecture(architecture: str) -> str:
    return ARCHITECTURE_PARSERS.get(architecture, "")


def uses_harmony(model: Model) -> bool:
    """A gpt-oss model whose template speaks harmony (it has the start and end tags)."""
    template = model.template or ""
    return model.config.model_family in GPTOSS_FAMILIES and "<|start|>" in template and "<|end|>" in template


def effective_parser_name(model: Model) -> str:
    """The config's parser; for a harmony model without one, harmony."""
    if not model.config.parser and uses_harmony(model):
        return HARMONY
    return model.config.parser


def parser_for_model(model: Model) -> Parser | None:
    """A fresh parser for one request, or None when the model has no built-in parser (its template's tags
    are used then). A parser name nothing answers to raises UnknownParser rather than silently parsing
    the output some other way."""
    name = effective_parser_name(model)
    if not name:
        return None
    parser = parser_for_name(name)
    if parser is None:
        raise UnknownParser(name)
    return parser


def capabilities_from_parser(model: Model) -> list[str]:
    """What the config's parser adds to a model's capabilities, and thinking for the gpt-oss family."""
    caps: list[str] = []
    parser = parser_for_name(model.config.parser) if model.config.parser else None
    if parser is not None and parser.has_tool_support:
        caps.append(TOOLS)
    if parser is not None and parser.has_thinking_support:
        caps.append(THINKING)
    if model.config.model_family in GPTOSS_FAMILIES:
        caps.append(THINKING)
    return caps
