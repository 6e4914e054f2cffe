"""How the CLI reaches the server: its address from OLLAMA_HOST, and the text of an error answer."""

from __future__ import annotations

import os

import httpx

from server.envconfig import parse_host


class CLIError(Exception):
    pass


def server_url() -> str:
    return parse_host(os.environ.get("OLLAMA_HOST", "")).url


def error_text(response: httpx.Response) -> str:
    """The `error` of an error response, else its body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or f"{response.status_code} {response.reason_phrase}"
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return response.text.strip()
