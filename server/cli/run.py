"""`pollama run`: pull the model if it is missing, then answer one prompt, chat interactively, or embed.

Non-interactive when a prompt is given, stdin is not a terminal (piped text is put before the prompt) or
stdout is not a terminal.
"""

from __future__ import annotations

import sys
from typing import Any

from modelstore import gojson
from server.cli.answer import AnswerView
from server.cli.client import Client, CLIError, StatusError
from server.cli.flags import Parsed
from server.cli.models import unload
from server.cli.repl import interact
from server.cli.session import RunOptions, generate, infer_think, keep_alive_value, parse_think
from server.cli.transfer import pull_model


def embed(client: Client, name: str, text: str, opts: RunOptions, parsed: Parsed) -> None:
    body: dict[str, Any] = {"model": name, "input": text}
    if opts.keep_alive is not None:
        body["keep_alive"] = opts.keep_alive
    if "truncate" in parsed.changed:
        body["truncate"] = parsed["truncate"]
    if parsed["dimensions"] > 0:
        body["dimensions"] = parsed["dimensions"]
    embeddings = client.request("POST", "/api/embed", body).get("embeddings") or []
    if not embeddings:
        raise CLIError("no embeddings returned")
    print(gojson.dumps_float32_list(embeddings[0]))


def show_or_pull(client: Client, name: str, insecure: bool) -> dict[str, Any]:
    try:
        return client.request("POST", "/api/show", {"model": name})
    except StatusError as e:
        if e.status_code != 404:
            raise
    pull_model(client, name, insecure)
    return client.request("POST", "/api/show", {"model": name})


def run(client: Client, parsed: Parsed) -> None:
    name = parsed.args[0]
    opts = RunOptions(model=name, format=parsed["format"], hide_thinking=parsed["hidethinking"],
                      verbose=parsed["verbose"])
    explicit_think = "think" in parsed.changed
    if explicit_think:
        opts.think = parse_think(parsed["think"])
    if parsed["keepalive"]:
        opts.keep_alive = keep_alive_value(parsed["keepalive"])

    prompts = parsed.args[1:]
    interactive = True
    if not sys.stdin.isatty():
        piped = sys.stdin.read()
        if piped:
            prompts = [piped, *prompts]
        interactive = False
    opts.prompt = " ".join(prompts)
    if prompts or not sys.stdout.isatty():
        interactive = False
    # Ollama wraps in a pipe too, with cursor escapes; plain text is what a pipe wants.
    opts.word_wrap = not parsed["nowordwrap"] and sys.stdout.isatty()

    info = show_or_pull(client, name, parsed["insecure"])
    capabilities = [str(c) for c in info.get("capabilities") or []]
    opts.think = infer_think(capabilities, opts, explicit_think)
    opts.multimodal = ("vision" in capabilities or "audio" in capabilities or bool(info.get("projector_info"))
                       or any(".vision." in key for key in info.get("model_info") or {}))
    opts.apply_show(info)

    if "embedding" in capabilities:
        if not opts.prompt:
            raise CLIError(f'embedding models require input text. Usage: ollama run {name} "your text here"')
        embed(client, name, opts.prompt, opts, parsed)
        return
    if "image" in capabilities:
        raise CLIError("image generation models are not currently supported")

    if not interactive:
        generate(client, opts)
        return
    unload(client, opts.model, opts.keep_alive, opts.think)
    for message in opts.loaded_messages:
        if message.get("role") == "user":
            print(f">>> {message.get('content', '')}")
        elif message.get("role") == "assistant":
            AnswerView(opts.word_wrap, True, False).show("", message.get("content", ""), None, True)
            sys.stdout.write("\n\n")
    interact(client, opts, explicit_think)
