"""How the CLI reaches a server: HTTP to OLLAMA_HOST, as Ollama's `api.Client` does.

Errors read the way Ollama's client words them: a plain request's error is the server's `error` text; a
streamed request that fails before streaming is `<status line>: <error>`; an `error` inside a stream is its
text. With nothing listening, the heartbeat every command starts with gives Ollama's "could not connect".
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Iterator
from typing import Any

import httpx

from modelstore import gojson
from server.envconfig import client_api_key, parse_host
from server.version import VERSION

NOT_RUNNING = "could not connect to ollama server, run 'pollama serve' to start it"


class CLIError(Exception):
    """A failure the CLI reports as `Error: <text>` with exit status 1."""


class StatusError(CLIError):
    def __init__(self, status_code: int, message: str, status_line: str = "") -> None:
        super().__init__(f"{status_line}: {message}" if status_line and message else message or status_line)
        self.status_code = status_code
        self.message = message


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


def _status_line(response: httpx.Response) -> str:
    return f"{response.status_code} {response.reason_phrase}".strip()


class Client:
    """One connection pool to the server for the life of a command."""

    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = base_url or server_url()
        headers = {"User-Agent": f"ollama/{VERSION} ({platform.machine()} {sys.platform}) "
                                 f"Python/{platform.python_version()}"}
        if key := client_api_key():
            headers["Authorization"] = f"Bearer {key}"
        self.http = httpx.Client(base_url=self.base_url, headers=headers,
                                 timeout=httpx.Timeout(None, connect=30.0))

    def close(self) -> None:
        self.http.close()

    def _connection_error(self, method: str, path: str, error: httpx.TransportError) -> CLIError:
        host = self.http.base_url.netloc.decode()
        reason = str(error) or type(error).__name__
        if isinstance(error, httpx.ConnectError) and "refused" in reason.lower():
            reason = f"dial tcp {host}: connect: connection refused"
        return CLIError(f'{method.title()} "{self.base_url}{path}": {reason}')

    def heartbeat(self) -> None:
        """HEAD /: a command's first call; nothing listening is Ollama's 'could not connect'."""
        try:
            self.http.head("/", timeout=httpx.Timeout(30.0))
        except httpx.TransportError as e:
            raise CLIError(NOT_RUNNING) from e

    def request(self, method: str, path: str, body: Any = None) -> Any:
        content = gojson.dumps(body).encode() if body is not None else None
        try:
            response = self.http.request(method, path, content=content,
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        except httpx.TransportError as e:
            raise self._connection_error(method, path, e) from e
        if response.status_code >= 400:
            raise StatusError(response.status_code, error_text(response))
        return response.json() if response.content else None

    def stream(self, path: str, body: Any) -> Iterator[dict[str, Any]]:
        """POST and yield each NDJSON object; closing the generator closes the request (the server stops)."""
        content = gojson.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/x-ndjson"}
        try:
            with self.http.stream("POST", path, content=content, headers=headers) as response:
                if response.status_code >= 400:
                    response.read()
                    raise StatusError(response.status_code, error_text(response), _status_line(response))
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    try:
                        item = json.loads(line)
                    except ValueError:
                        raise CLIError(line) from None
                    if isinstance(item, dict) and item.get("error"):
                        raise CLIError(str(item["error"]))
                    yield item
        except httpx.TransportError as e:
            raise self._connection_error("POST", path, e) from e

    def upload(self, path: str, chunks: Iterator[bytes]) -> None:
        try:
            response = self.http.post(path, content=chunks)
        except httpx.TransportError as e:
            raise self._connection_error("POST", path, e) from e
        if response.status_code >= 400:
            raise StatusError(response.status_code, error_text(response))
