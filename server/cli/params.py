"""Go `api.FormatParams`: Modelfile and `/set parameter` text to the typed option values Ollama sends."""

from __future__ import annotations

import math
import re
from dataclasses import fields
from typing import Any

from engine.options import Options
from modelstore.gojson import Float32
from server.cli.client import CLIError

# Modelfile PARAMETER names -> the Go kind FormatParams converts their text to.
_PARAMETER_KINDS = {f.name: {"int": "int", "int | None": "int", "float": "float32", "bool | None": "bool",
                             "list[str]": "strings"}[str(f.type)] for f in fields(Options)}
_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_FLOAT = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)", re.I)
_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def _go_list(values: list[str]) -> str:
    return "[" + " ".join(values) + "]"


def format_params(params: dict[str, list[str]]) -> dict[str, Any]:
    """Go `api.FormatParams`: Modelfile parameter text to typed values (floats stay float32)."""
    out: dict[str, Any] = {}
    for key, values in params.items():
        kind = _PARAMETER_KINDS.get(key)
        if kind is None:
            raise CLIError(f"unknown parameter '{key}'")
        text = values[0]
        if kind == "float32":
            number = float(text) if _GO_FLOAT.fullmatch(text) else None
            if number is None or (math.isfinite(number) and abs(number) > 3.4028234663852886e38):
                raise CLIError(f"invalid float value {_go_list(values)}")
            out[key] = Float32(number)
        elif kind == "int":
            if not _GO_INT.fullmatch(text) or not -(1 << 63) <= int(text) < (1 << 63):
                raise CLIError(f"invalid int value {_go_list(values)}")
            out[key] = int(text)
        elif kind == "bool":
            if text not in _GO_BOOLS:
                raise CLIError(f"invalid bool value {_go_list(values)}")
            out[key] = _GO_BOOLS[text]
        else:
            out[key] = list(values)
    return out
