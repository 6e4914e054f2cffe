"""Shared helpers for the template engine tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.template.exec import execute
from engine.template.funcs import FUNCTION_NAMES
from engine.template.lexer import LineIndex
from engine.template.parser import parse

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "conformance" / "ollama-templates"


@pytest.fixture(scope="session")
def corpus() -> Path:
    assert CORPUS.is_dir(), f"template corpus missing at {CORPUS}"
    return CORPUS


def _go_render(text: str, data: Any = None, zero_missing_keys: bool = True) -> str:
    parsed = parse(text, FUNCTION_NAMES)
    return execute(parsed.root, data, defines=parsed.defines, lines=LineIndex(text),
                   zero_missing_keys=zero_missing_keys)


@pytest.fixture
def go_render():
    """Plain Go text/template execution (no Ollama touch-ups), for testing the language itself."""
    return _go_render
