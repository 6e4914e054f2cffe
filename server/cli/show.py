"""`pollama show`: a model's sections, or one of its parts with a flag."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO

import httpx

from modelstore import gojson
from server.cli.client import CLIError, error_text, server_url

_SHOW_FLAGS = ("license", "modelfile", "parameters", "system", "template")


def _table(out: TextIO, header: str, rows: list[list[str]]) -> None:
    out.write(f"  {header}\n")
    widths = [max(len(row[i]) for row in rows) for i in range(max(len(row) for row in rows))] if rows else []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        out.write("    " + "    ".join(cells).rstrip() + "\n")
    out.write("\n")


def _number(value: Any) -> str:
    return gojson.go_value(value) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def show_info(resp: dict[str, Any], verbose: bool, out: TextIO = sys.stdout) -> None:
    """The tables `ollama show NAME` prints."""
    info = resp.get("model_info") or {}
    details = resp.get("details") or {}
    rows: list[list[str]] = []
    if resp.get("remote_host"):
        rows += [["Remote model", str(resp.get("remote_model", ""))], ["Remote URL", str(resp["remote_host"])]]
    arch = info.get("general.architecture", "")
    if arch:
        rows.append(["architecture", arch])
    parameters = details.get("parameter_size") or ""
    if parameters:
        rows.append(["parameters", parameters])
    for key, label in (("context_length", "context length"), ("embedding_length", "embedding length")):
        if f"{arch}.{key}" in info:
            rows.append([label, _number(info[f"{arch}.{key}"])])
    rows.append(["quantization", details.get("quantization_level", "")])
    if resp.get("requires"):
        rows.append(["requires", resp["requires"]])
    _table(out, "Model", rows)
    if resp.get("capabilities"):
        _table(out, "Capabilities", [[c] for c in resp["capabilities"]])
    projector = resp.get("projector_info")
    if projector:
        parch = projector.get("general.architecture", "")
        prow = [["architecture", parch]] if parch else []
        if "general.parameter_count" in projector:
            from modelstore.gguf import human_number

            prow.append(["parameters", human_number(int(projector["general.parameter_count"]))])
        _table(out, "Projector", prow)
    if resp.get("parameters"):
        _table(out, "Parameters", [line.split(None, 1) for line in resp["parameters"].splitlines() if line.strip()])
    if verbose and info:
        _table(out, "Metadata", [[key, _metadata_value(info[key])] for key in sorted(info)])
    if resp.get("system"):
        _table(out, "System", [[_first_lines(resp["system"])]])
    if resp.get("license"):
        _table(out, "License", [[_first_lines(resp["license"])]])


def _metadata_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        shown = ", ".join(str(v) for v in value[:3])
        return f"[{shown}{', ...' if len(value) > 3 else ''}]"
    return _number(value) if value is not None else "<nil>"


def _first_lines(text: str, count: int = 2) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n    ".join(lines[:count]) + ("\n    ..." if len(lines) > count else "")


def show(args: argparse.Namespace) -> int:
    chosen = [flag for flag in _SHOW_FLAGS if getattr(args, flag)]
    if len(chosen) > 1:
        raise CLIError("only one of '--license', '--modelfile', '--parameters', '--system', or '--template' "
                       "can be specified")
    with httpx.Client(base_url=server_url(), timeout=60) as client:
        response = client.post("/api/show", json={"name": args.model, "verbose": args.verbose})
    if response.status_code >= 400:
        raise CLIError(error_text(response))
    resp = response.json()
    if chosen:
        value = resp.get(chosen[0], "")
        # Println for license, modelfile and parameters; Print for system and template
        sys.stdout.write(value + ("\n" if chosen[0] in ("license", "modelfile", "parameters") else ""))
        return 0
    show_info(resp, args.verbose)
    return 0


def _run(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except CLIError as e:
            print(f"Error: {e}", file=sys.stderr)
        except httpx.HTTPError as e:
            print(f"Error: could not connect to the pollama server at {server_url()}: {e}", file=sys.stderr)
        return 1

    return run


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `show` on the CLI's subcommand parser."""
    show_parser = commands.add_parser("show", help="show information for a model")
    show_parser.add_argument("model", metavar="MODEL")
    for flag in _SHOW_FLAGS:
        show_parser.add_argument(f"--{flag}", action="store_true", help=f"show the {flag} of the model")
    show_parser.add_argument("-v", "--verbose", action="store_true", help="show detailed model information")
    show_parser.set_defaults(run=_run(show))
