"""`pollama create`: the `ollama` CLI's create verb, as an HTTP client of a server.

create parses the Modelfile, hashes the local files it names, uploads each with `POST /api/blobs/<digest>`
(the server answers 200 at once for a blob it has), then posts `/api/create` and shows its progress.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from modelstore import gojson
from modelstore.modelfile_parser import ModelfileError, parse_modelfile, upload_names
from modelstore.names import parse_name
from server.cli.client import CLIError, error_text, server_url
from server.cli.params import format_params
from server.cli.progress import Progress


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
    """Register `create` on the CLI's subcommand parser."""
    create_parser = commands.add_parser("create", help="create a model from a Modelfile")
    create_parser.add_argument("model", metavar="MODEL")
    create_parser.add_argument("-f", "--file", help='name of the Modelfile (default "Modelfile")')
    create_parser.add_argument("-q", "--quantize", help="quantize the model to this level (e.g. q4_K_M)")
    create_parser.set_defaults(run=_run(create))
