"""`pollama create`: the `ollama` CLI's create verb, as an HTTP client of a server.

create parses the Modelfile, hashes the local files it names, uploads each with `POST /api/blobs/<digest>`
(the server answers 200 at once for a blob it has), then posts `/api/create` and shows its progress.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

from modelstore.modelfile_parser import ModelfileError, parse_modelfile, upload_names
from modelstore.names import parse_name
from server.cli.client import Client, CLIError
from server.cli.flags import Parsed
from server.cli.params import format_params
from server.cli.progress import EventDisplay, Progress, Spinner


def _read_chunks(path: Path, sent: list[int]) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sent[0] += len(chunk)
            yield chunk


def _upload(client: Client, path: str, digest: str, progress: Progress) -> None:
    """POST /api/blobs/<digest>, with a spinner showing the share sent (the server answers at once for a blob
    it has)."""
    real = Path(os.path.realpath(path))
    size = max(real.stat().st_size, 1)
    spinner = Spinner(f"copying file {digest} 0%")
    progress.add(spinner)
    sent = [0]
    finished = threading.Event()

    def tick() -> None:
        while not finished.wait(0.06):
            spinner.message = f"copying file {digest} {int(100 * sent[0] / size)}%"

    if progress.tty:
        threading.Thread(target=tick, daemon=True).start()
    try:
        client.upload(f"/api/blobs/{digest}", _read_chunks(real, sent))
    finally:
        finished.set()
        spinner.message = f"copying file {digest} 100%"
        spinner.stop()
        progress.update()


def _modelfile(filename: str) -> tuple[bytes, Path]:
    if filename:
        path = Path(filename).resolve()
        if not path.is_file():
            raise CLIError("specified Modelfile wasn't found")
        return path.read_bytes(), path.parent
    if Path("Modelfile").is_file():
        return Path("Modelfile").read_bytes(), Path.cwd()
    return b"FROM .\n", Path.cwd()


def create(client: Client, parsed: Parsed) -> None:
    name = parsed.args[0]
    if not parse_name(name).is_valid():
        raise CLIError(f"invalid model name: {name}")
    text, directory = _modelfile(parsed["file"])
    try:
        modelfile = parse_modelfile(text)
    except ModelfileError as e:
        raise CLIError(str(e)) from None
    progress = Progress()
    try:
        spinner = Spinner("gathering model components")
        progress.add(spinner)
        try:
            plan = modelfile.create_plan(directory, format_params, warn=lambda message: print(message))
        except (ModelfileError, OSError) as e:
            raise CLIError(str(e)) from None
        spinner.stop()
        request = {"model": name, **plan.request}
        if parsed["quantize"]:
            request["quantize"] = parsed["quantize"]
        if parsed["draft-quantize"]:
            if not plan.draft_files:
                raise CLIError("--draft-quantize requires a DRAFT model")
            request["draft_quantize"] = parsed["draft-quantize"]
        for key, files in (("files", plan.files), ("adapters", plan.adapters), ("draft_files", plan.draft_files)):
            if not files:
                continue
            names = upload_names(files)
            for path, digest in files.items():
                _upload(client, path, digest, progress)
            request[key] = {names[path]: digest for path, digest in files.items()}
        display = EventDisplay(progress, "creating", "gathering model components", spinner)
        try:
            for event in client.stream("/api/create", request):
                display(event)
        except CLIError as e:
            if "path or Modelfile are required" in str(e):
                raise CLIError("the ollama server must be updated to use `ollama create` with this client") from None
            raise
    finally:
        progress.stop()
