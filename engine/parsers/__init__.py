"""Ollama's built-in output parsers (model/parsers and harmony): a model whose config names a parser, or
a gpt-oss model (harmony), has its output split into content, thinking and tool calls by model-specific
code instead of the tags inferred from its template."""

from engine.parsers.base import Parsed, Parser, ParserError
from engine.parsers.registry import PARSER_NAMES, UnknownParser, parser_for_name
from engine.parsers.selection import (
    capabilities_from_parser,
    effective_parser_name,
    parser_for_architecture,
    parser_for_model,
    uses_harmony,
)
from engine.thinkvalue import Think

__all__ = [
    "PARSER_NAMES",
    "Parsed",
    "Parser",
    "ParserError",
    "Think",
    "UnknownParser",
    "capabilities_from_parser",
    "effective_parser_name",
    "parser_for_architecture",
    "parser_for_model",
    "parser_for_name",
    "uses_harmony",
]
