"""`pollama create` and `pollama show`: the `ollama` CLI's create and show verbs, as HTTP clients of a server.

create parses the Modelfile, hashes the local files it names, uploads each with `POST /api/blobs/<digest>`
(the server answers 200 at once for a blob it has), then posts `/api/create` and shows its progress.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any, TextIO

import httpx

from engine.options import Options
from modelstore import gojson
from modelstore.gojson import Float32
from modelstore.modelfile_parser import ModelfileError, parse_modelfile, upload_names
from modelstore.names import parse_name
from server.envconfig import parse_host

# Modelfile PARAMETER names -> the Go kind FormatParams converts their text to.
_PARAMETER_KINDS = {f.name: {"int": "int", "int | None": "int", "float": "float32", "bool | None": "bool",
                             "list[str]": "strings"}[str(f.type)] for f in fields(Options)}
_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_FLOAT = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)", re.I)
_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


class CLIError(Exception):
    pass


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


def server_url() -> str:
    return parse_host(os.environ.get("OLLAMA_HOST", "")).url


# --- progress -------------------------------------------------------------------------------------


class Progress:
    """Status lines on stderr: rewritten in place on a terminal, one line per new status otherwise."""

    _SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.current = ""
        self.shown: set[str] = set()
        self.lock = threading.Lock()
        self.tick = 0

    def status(self, text: str) -> None:
        with self.lock:
            if self.tty:
                if self.current and text != self.current and not self.current.startswith("copying file"):
                    self.stream.write("\r\x1b[K" + self.current + "\n")
                self.tick += 1
                self.stream.write("\r\x1b[K" + text + " " + self._SPINNER[self.tick % len(self._SPINNER)])
                self.stream.flush()
            elif text not in self.shown:
                self.stream.write(text + "\n")
                self.stream.flush()
            self.current = text
            self.shown.add(text)

    def bar(self, label: str, completed: int, total: int) -> None:
        percent = int(100 * completed / total) if total else 100
        if self.tty:
            width = 25
            filled = width * percent // 100
            self.status(f"{label} {percent:3d}% ▕{'█' * filled}{' ' * (width - filled)}▏ "
                        f"{_human_bytes(completed)}/{_human_bytes(total)}")
        elif completed >= total:
            self.status(f"{label} 100%")

    def stop(self) -> None:
        with self.lock:
            if self.tty and self.current:
                self.stream.write("\r\x1b[K" + self.current + "\n")
                self.stream.flush()
            self.current = ""


def _human_bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


# --- create ---------------------------------------------------------------------------------------


def _read_chunks(path: Path, progress: Callable[[int], None]) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            progress(len(chunk))
            yield chunk


def _upload(client: httpx.Client, path: str, digest: str, progress: Progress) -> None:
    real = Path(os.path.realpath(path))
    size = max(real.stat().st_size, 1)
    sent = [0]
    last = [0.0]

    def advance(n: int) -> None:
        sent[0] += n
        now = time.monotonic()
        if now - last[0] > 0.06:
            last[0] = now
            progress.status(f"copying file {digest} {int(100 * sent[0] / size)}%")

    progress.status(f"copying file {digest} 0%")
    response = client.post(f"/api/blobs/{digest}", content=_read_chunks(real, advance))
    if response.status_code >= 400:
        raise CLIError(error_text(response))
    progress.status(f"copying file {digest} 100%")


def error_text(response: httpx.Response) -> str:
    """The `error` of an error response, else its body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or f"{response.status_code} {response.reason_phrase}"
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return response.text.strip()


def create(args: argparse.Namespace) -> int:
    name = args.model
    if not parse_name(name).is_valid():
        raise CLIError(f"invalid model name: {name}")
    if args.file:
        filename = Path(args.file).resolve()
        if not filename.is_file():
            raise CLIError("specified Modelfile wasn't found")
        text, directory = filename.read_bytes(), filename.parent
    elif Path("Modelfile").is_file():
        text, directory = Path("Modelfile").read_bytes(), Path.cwd()
    else:
        text, directory = b"FROM .\n", Path.cwd()
    modelfile = parse_modelfile(text)

    progress = Progress()
    try:
        progress.status("gathering model components")
        plan = modelfile.create_plan(directory, format_params, warn=lambda message: print(message))
        request = {"model": name, **plan.request}
        if args.quantize:
            request["quantize"] = args.quantize
        with httpx.Client(base_url=server_url(), timeout=httpx.Timeout(30.0, read=None)) as client:
            for key, files in (("files", plan.files), ("adapters", plan.adapters), ("draft_files", plan.draft_files)):
                if not files:
                    continue
                names = upload_names(files)
                for path, digest in files.items():
                    _upload(client, path, digest, progress)
                request[key] = {names[path]: digest for path, digest in files.items()}
            _stream_create(client, request, progress)
    finally:
        progress.stop()
    return 0


def _stream_create(client: httpx.Client, request: dict[str, Any], progress: Progress) -> None:
    body = gojson.dumps(request).encode()  # float32 parameters keep their short form, as Go sends them
    with client.stream("POST", "/api/create", content=body, headers={"Content-Type": "application/json"}) as r:
        if r.status_code >= 400:
            r.read()
            raise CLIError(error_text(r))
        for line in r.iter_lines():
            if not line.strip():
                continue
            event = httpx.Response(200, content=line.encode()).json()
            if "error" in event:
                raise CLIError(str(event["error"]))
            if event.get("digest"):
                progress.bar(event.get("status") or f"pulling {event['digest'][7:19]}...",
                             int(event.get("completed") or 0), int(event.get("total") or 0))
            else:
                progress.status(event.get("status", ""))


# --- show -----------------------------------------------------------------------------------------

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
        except (CLIError, ModelfileError) as e:
            print(f"Error: {e}", file=sys.stderr)
        except httpx.HTTPError as e:
            print(f"Error: could not connect to the pollama server at {server_url()}: {e}", file=sys.stderr)
        except OSError as e:
            print(f"Error: {e}", file=sys.stderr)
        return 1

    return run


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `create` and `show` on the CLI's subcommand parser."""
    create_parser = commands.add_parser("create", help="create a model from a Modelfile")
    create_parser.add_argument("model", metavar="MODEL")
    create_parser.add_argument("-f", "--file", help='name of the Modelfile (default "Modelfile")')
    create_parser.add_argument("-q", "--quantize", help="quantize the model to this level (e.g. q4_K_M)")
    create_parser.set_defaults(run=_run(create))

    show_parser = commands.add_parser("show", help="show information for a model")
    show_parser.add_argument("model", metavar="MODEL")
    for flag in _SHOW_FLAGS:
        show_parser.add_argument(f"--{flag}", action="store_true", help=f"show the {flag} of the model")
    show_parser.add_argument("-v", "--verbose", action="store_true", help="show detailed model information")
    show_parser.set_defaults(run=_run(show))
