"""`pollama show`: a model's sections (Model, Capabilities, Projector, Parameters, Metadata, Tensors, System,
License), or one part of it with a flag; `/show info` in `pollama run` prints the same sections."""

from __future__ import annotations

import math
import sys
from typing import Any, TextIO

from modelstore.gojson import go_value
from server.cli.client import Client, CLIError
from server.cli.flags import Parsed
from server.cli.format import human_number
from server.cli.table import render

SHOW_FLAGS = ("license", "modelfile", "parameters", "system", "template")


def _float_text(value: Any) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64): no exponent, the shortest digits."""
    number = float(value)
    if number.is_integer() and math.isfinite(number):
        return str(int(number))
    return repr(number) if "e" not in repr(number) else f"{number:f}".rstrip("0")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _section(out: TextIO, header: str, rows: list[list[str]]) -> None:
    out.write(f"  {header}\n")
    out.write(render(rows, limit=100 if header in ("Template", "System", "License") else 30))
    out.write("\n")


def _list_value(items: list[Any]) -> str:
    """A metadata array as Ollama abbreviates it: what fits in 10 columns, then `...+N more]`."""
    texts = [go_value(item) for item in items]
    shown, used = 0, 1
    for i, text in enumerate(texts):
        size = len(text) + (2 if i else 0)
        if used + size > 10 and i > 0:
            break
        used += size
        shown += 1
    if shown < len(texts):
        return "[" + " ".join(texts[:shown]) + f" ...+{len(texts) - shown} more]"
    return "[" + " ".join(texts) + "]"


def _metadata_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if _is_number(value):
        return go_value(float(value))
    if isinstance(value, list):
        return _list_value(value)
    return "<nil>" if value is None else type(value).__name__


def _head(text: str, count: int) -> list[list[str]]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    rows = [["", line] for line in lines[:count]]
    return rows + ([["", "..."]] if len(lines) > count else [])


def _model_rows(resp: dict[str, Any]) -> list[list[str]]:
    details = resp.get("details") or {}
    rows: list[list[str]] = []
    if resp.get("remote_host"):
        rows += [["", "Remote model", resp.get("remote_model", "")], ["", "Remote URL", resp["remote_host"]]]
    info = resp.get("model_info")
    if info is not None:
        arch = info.get("general.architecture") if isinstance(info.get("general.architecture"), str) else ""
        if arch:
            rows.append(["", "architecture", arch])
        parameters = details.get("parameter_size") or ""
        if not parameters and _is_number(info.get("general.parameter_count")):
            parameters = human_number(int(info["general.parameter_count"]))
        if parameters:
            rows.append(["", "parameters", parameters])
        for key, label in (("context_length", "context length"), ("embedding_length", "embedding length")):
            if _is_number(info.get(f"{arch}.{key}")):
                rows.append(["", label, _float_text(info[f"{arch}.{key}"])])
    else:
        rows += [["", "architecture", details.get("family", "")], ["", "parameters", details.get("parameter_size", "")]]
    rows.append(["", "quantization", details.get("quantization_level", "")])
    if resp.get("requires"):
        rows.append(["", "requires", resp["requires"]])
    return rows


def _projector_rows(projector: dict[str, Any]) -> list[list[str]]:
    arch = projector.get("general.architecture") if isinstance(projector.get("general.architecture"), str) else ""
    rows = [["", "architecture", arch]] if arch else []
    if _is_number(projector.get("general.parameter_count")):
        rows.append(["", "parameters", human_number(int(projector["general.parameter_count"]))])
    for suffix, label in (("embedding_length", "embedding length"), ("projection_dim", "dimensions")):
        for modality in ("vision", "audio"):
            value = projector.get(f"{arch}.{modality}.{suffix}")
            if _is_number(value):
                rows.append(["", label, _float_text(value)])
                break
    return rows


def show_info(resp: dict[str, Any], verbose: bool, out: TextIO) -> None:
    """The sections `ollama show NAME` prints."""
    _section(out, "Model", _model_rows(resp))
    if resp.get("capabilities"):
        _section(out, "Capabilities", [["", str(c)] for c in resp["capabilities"]])
    if resp.get("projector_info") is not None:
        _section(out, "Projector", _projector_rows(resp["projector_info"]))
    if resp.get("parameters"):
        _section(out, "Parameters", [["", *line.split()] for line in resp["parameters"].splitlines() if line])
    info = resp.get("model_info")
    if info is not None and verbose:
        _section(out, "Metadata", [["", key, _metadata_value(info[key])] for key in sorted(info)])
    if resp.get("tensors") and verbose:
        _section(out, "Tensors", [["", t.get("name", ""), t.get("type", ""),
                                   "[" + " ".join(str(d) for d in t.get("shape") or []) + "]"]
                                  for t in resp["tensors"]])
    if resp.get("system"):
        _section(out, "System", _head(resp["system"], 2))
    if resp.get("license"):
        _section(out, "License", _head(resp["license"], 2))


def show(client: Client, parsed: Parsed) -> None:
    chosen = [flag for flag in SHOW_FLAGS if parsed[flag]]
    if len(chosen) > 1:
        raise CLIError("only one of '--license', '--modelfile', '--parameters', '--system', or '--template' "
                       "can be specified")
    resp = client.request("POST", "/api/show", {"name": parsed.args[0], "verbose": parsed["verbose"]})
    if "image" in (resp.get("capabilities") or []):
        raise CLIError("image generation models are not currently supported")
    if chosen:
        value = resp.get(chosen[0]) or ""
        # Println for license, modelfile and parameters; Print for system and template
        sys.stdout.write(value + ("\n" if chosen[0] in ("license", "modelfile", "parameters") else ""))
        return
    show_info(resp, parsed["verbose"], sys.stdout)
