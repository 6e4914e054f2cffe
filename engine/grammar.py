"""The request `format` as a llama.cpp grammar: "json" or a JSON Schema object."""

from __future__ import annotations

import json
from typing import Any

from modelstore import gojson


class FormatError(ValueError):
    pass


def format_to_grammar(fmt: Any) -> str | None:
    """None for no constraint (absent, null, ""); GBNF text otherwise; FormatError with Ollama's text."""
    if fmt is None or fmt == "":
        return None
    # Imported here: loading llama.cpp's shared library is only worth it when a grammar is asked for.
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if fmt == "json":
        return JSON_GBNF
    if isinstance(fmt, dict):
        try:
            return json_schema_to_gbnf(json.dumps(fmt))
        except Exception as e:  # the converter raises assorted errors for schemas it cannot express
            raise FormatError(f"invalid JSON schema in format: {e}") from None
    raw = gojson.dumps(fmt)
    raise FormatError(f'invalid format: {gojson.go_quote(raw)}; expected "json" or a valid JSON Schema object')
