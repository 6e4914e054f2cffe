"""The request `format` as a llama.cpp grammar: "json" or a JSON Schema object (runtime.md §5.3)."""

from __future__ import annotations

import json
import re
from typing import Any

from modelstore import gojson


class FormatError(ValueError):
    pass


# Ollama's grammarJSON (llm/llama_server.go): the output is one JSON object.
JSON_GRAMMAR = r"""
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::=
  "{" ws (
         string ":" ws value
    ("," ws string ":" ws value)*
  )? ws "}"
array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? ws "]"
string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F]) # escapes
  )* "\""
number ::= ("-"? ([0-9] | [1-9] [0-9]*)) ("." [0-9]+)? ([eE] [-+]? [0-9]+)?
# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= ([ \t\n] ws)?
"""

# llama-cpp-python's schema converter lets raw control characters into strings, which no JSON parser
# accepts; llama.cpp's own converter excludes them, as here.
_CHAR_RULE = re.compile(r"^char ::= .*$", re.MULTILINE)
_STRICT_CHAR_RULE = (r'char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] '
                     r"[0-9a-fA-F] [0-9a-fA-F])")


def schema_to_grammar(schema: dict[str, Any]) -> str:
    """GBNF for a JSON Schema (llama.cpp's json_schema_to_grammar, as ported to Python)."""
    # Imported here: loading llama.cpp's shared library is only worth it when a schema is given.
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    grammar = json_schema_to_gbnf(json.dumps(schema))
    return _CHAR_RULE.sub(lambda _: _STRICT_CHAR_RULE, grammar)


def format_to_grammar(fmt: Any) -> str | None:
    """None for no constraint (absent, null, ""); GBNF text otherwise; FormatError with Ollama's text."""
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return JSON_GRAMMAR
    if isinstance(fmt, dict):
        try:
            return schema_to_grammar(fmt)
        except Exception as e:  # the converter raises assorted errors for schemas it cannot express
            raise FormatError(f"invalid JSON schema in format: {e}") from None
    raw = gojson.dumps(fmt)
    raise FormatError(f'invalid format: {gojson.go_quote(raw)}; expected "json" or a valid JSON Schema object')
