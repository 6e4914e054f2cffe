"""`pollama pull` and `pollama push`: a spinner per status and a bar per layer, as Ollama shows them.

On a terminal the lines are redrawn in place; in a pipe each status is printed once, and each layer once it
is complete (see server/cli/progress.py).
"""

from __future__ import annotations

from modelstore.names import parse_name
from server.cli.client import Client, CLIError
from server.cli.flags import Parsed
from server.cli.progress import EventDisplay, Progress


def pull_model(client: Client, name: str, insecure: bool) -> None:
    progress = Progress()
    display = EventDisplay(progress, "pulling")
    try:
        for event in client.stream("/api/pull", {"model": name, "insecure": insecure}):
            display(event)
    finally:
        progress.stop()


def pull(client: Client, parsed: Parsed) -> None:
    pull_model(client, parsed.args[0], parsed["insecure"])


def push(client: Client, parsed: Parsed) -> None:
    name = parsed.args[0]
    progress = Progress()
    display = EventDisplay(progress, "pushing")
    try:
        for event in client.stream("/api/push", {"model": name, "insecure": parsed["insecure"]}):
            display(event)
    except CLIError as e:
        text = str(e).lower()
        if "access denied" in text or "unauthorized" in text:
            raise CLIError("you are not authorized to push to this namespace, "
                           "create the model under a namespace you own") from None
        raise
    finally:
        progress.stop()
    parts = parse_name(name)
    destination = str(parts)
    if parts.host.endswith((".ollama.ai", ".ollama.com")):
        destination = "https://ollama.com/" + parts.display_shortest().removesuffix(":latest")
    print(f"\nYou can find your model at:\n\n\t{destination}")
