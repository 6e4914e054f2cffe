"""`list`/`ls`, `ps`, `cp`, `rm` and `stop`: the model-management commands, printed as Ollama prints them."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from server.cli.client import Client, CLIError
from server.cli.flags import Parsed
from server.cli.format import human_bytes, human_time, parse_time
from server.cli.progress import Progress, Spinner
from server.cli.table import render


def list_models(client: Client, parsed: Parsed) -> None:
    prefix = parsed.args[0].lower() if parsed.args else None
    rows = []
    for model in client.request("GET", "/api/tags").get("models") or []:
        name = model.get("name", "")
        if prefix is not None and not name.lower().startswith(prefix):
            continue
        size = "-" if model.get("remote_model") else human_bytes(int(model.get("size") or 0))
        rows.append([name, (model.get("digest") or "")[:12], size,
                     human_time(parse_time(model.get("modified_at")), "Never")])
    sys.stdout.write(render(rows, ["NAME", "ID", "SIZE", "MODIFIED"]))


def processor(size: int, size_vram: int) -> str:
    """Where a loaded model sits: `100% CPU`, `100% GPU`, `48%/52% CPU/GPU`."""
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    if size_vram > size or size == 0:
        return "Unknown"
    cpu = round((size - size_vram) / size * 100)
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


def list_running(client: Client, parsed: Parsed) -> None:
    prefix = parsed.args[0] if parsed.args else None
    rows = []
    now = datetime.now(UTC)
    for model in client.request("GET", "/api/ps").get("models") or []:
        name = model.get("name", "")
        if prefix is not None and not name.startswith(prefix):
            continue
        size, size_vram = int(model.get("size") or 0), int(model.get("size_vram") or 0)
        expires = parse_time(model.get("expires_at"))
        until = "Stopping..." if now > expires else human_time(expires, "Never", now)
        rows.append([name, (model.get("digest") or "")[:12], human_bytes(size), processor(size, size_vram),
                     str(int(model.get("context_length") or 0)), until])
    sys.stdout.write(render(rows, ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]))


def copy_model(client: Client, parsed: Parsed) -> None:
    source, destination = parsed.args
    client.request("POST", "/api/copy", {"source": source, "destination": destination})
    print(f"copied '{source}' to '{destination}'")


def unload(client: Client, model: str, keep_alive: str | int | None = 0, think: object = None) -> None:
    """Ollama's loadOrUnloadModel: an empty generate request, with a spinner, that loads or unloads a model."""
    progress = Progress()
    progress.add(Spinner(""))
    try:
        client.request("POST", "/api/show", {"model": model})
        body: dict[str, object] = {"model": model}
        if keep_alive is not None:
            body["keep_alive"] = keep_alive
        if think is not None:
            body["think"] = think
        for _ in client.stream("/api/generate", body):
            pass
    finally:
        progress.stop_and_clear()


def stop_model(client: Client, parsed: Parsed) -> None:
    name = parsed.args[0]
    try:
        unload(client, name)
    except CLIError as e:
        if "not found" in str(e):
            raise CLIError(f'couldn\'t find model "{name}" to stop') from None
        raise


def remove_models(client: Client, parsed: Parsed) -> None:
    for name in parsed.args:
        try:
            unload(client, name)
        except CLIError as e:
            if "not found" not in str(e).lower():
                print(f"Warning: unable to stop model '{name}'", file=sys.stderr)
        client.request("DELETE", "/api/delete", {"model": name})
        print(f"deleted '{name}'")
