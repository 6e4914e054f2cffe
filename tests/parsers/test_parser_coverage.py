"""Every parser name of Ollama's ParserForName switch exists here and has fixtures ported from Ollama."""

from __future__ import annotations

from collections import Counter

from engine.parsers import PARSER_NAMES
from tests.parsers.fixtures import ALL_CASES, ALL_UNITS, VARIANTS
from tests.parsers.fixtures.spec import SHARED

# The names in model/parsers/parsers.go's ParserForName switch at the reference commit (fb307609).
OLLAMA_PARSER_NAMES = [
    "qwen3", "qwen3-thinking", "qwen3.5", "ornith", "qwen3-coder", "qwen3-vl-instruct", "qwen3-vl-thinking",
    "ministral", "passthrough", "harmony", "cogito", "deepseek3", "olmo3", "olmo3-think", "nemotron-3-nano",
    "nemotron-3.5-nano", "functiongemma", "glm-4.7", "gemma4", "gemma4-no-thinking", "glm-ocr", "lfm2",
    "lfm2-thinking", "laguna", "poolside-v1", "cohere", "glimmer",
]


def fixture_counts() -> Counter[str]:
    counts: Counter[str] = Counter()
    for fixture in [*ALL_CASES, *ALL_UNITS]:
        counts[VARIANTS[fixture.parser][1] if fixture.parser in VARIANTS else fixture.parser] += 1
    return counts


def test_every_ollama_parser_name_is_known() -> None:
    assert sorted(PARSER_NAMES) == sorted(OLLAMA_PARSER_NAMES)


def test_every_ollama_parser_has_fixtures() -> None:
    counts = fixture_counts()
    print({name: counts[name] for name in OLLAMA_PARSER_NAMES})
    assert not set(counts) - set(OLLAMA_PARSER_NAMES) - {SHARED}, "fixtures for a parser Ollama does not have"
    assert [name for name in OLLAMA_PARSER_NAMES if counts[name] == 0] == []
