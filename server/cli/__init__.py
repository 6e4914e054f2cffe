"""The `pollama` command line: the `ollama` CLI's commands, as HTTP clients of a server (and `serve`)."""

from server.cli.app import main

__all__ = ["main"]
