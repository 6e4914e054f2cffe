"""The error body of each route family, chosen by path: Anthropic's envelope on /v1/messages, OpenAI's on
the rest of /v1, the OCI registry's `{"errors": [...]}` on /v2/, Ollama's `{"error": ...}` everywhere else.
Anything that answers an error outside a handler (API keys, body limits, the app's exception handlers) goes
through `family_error_response`."""

from __future__ import annotations

import logging
from enum import StrEnum

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import anthropic, openai
from server.http import error_response, json_response, unexpected_error

log = logging.getLogger(__name__)
ANTHROPIC_PREFIX = "/v1/messages"
OPENAI_PREFIX = "/v1/"
REGISTRY_PREFIX = "/v2/"
OCI_API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
# The distribution spec's error codes.
_OCI_CODES = {400: "UNSUPPORTED", 401: "UNAUTHORIZED", 403: "DENIED", 404: "NAME_UNKNOWN", 429: "TOOMANYREQUESTS"}


def oci_error(code: str, message: str, status: int) -> Response:
    response = json_response({"errors": [{"code": code, "message": message}]}, status)
    response.headers.update(OCI_API_VERSION)
    return response


class Family(StrEnum):
    OLLAMA = "Ollama"
    OPENAI = "OpenAI"
    ANTHROPIC = "Anthropic"
    REGISTRY = "Registry"


def route_family(path: str) -> Family:
    if path == ANTHROPIC_PREFIX or path.startswith(ANTHROPIC_PREFIX + "/"):
        return Family.ANTHROPIC
    if path.startswith(OPENAI_PREFIX):
        return Family.OPENAI
    if path.startswith(REGISTRY_PREFIX):
        return Family.REGISTRY
    return Family.OLLAMA


def family_error_response(path: str, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    family = route_family(path)
    if family is Family.ANTHROPIC:
        response = anthropic.error_response(message, status)
    elif family is Family.OPENAI:
        response = openai.error_response(message, status)
    elif family is Family.REGISTRY:
        response = oci_error(_OCI_CODES.get(status, "UNKNOWN"), message, status)
    else:
        response = error_response(message, status)
    response.headers.update(headers or {})
    return response


def unexpected_error_response(path: str, exc: Exception) -> Response:
    """An error no handler expected, as JSON in the route family's shape (never a plain-text traceback)."""
    return family_error_response(path, *unexpected_error(exc))


class UnexpectedErrorMiddleware:
    """Answers an exception no handler expected with a JSON 500 in the route family's shape, here rather than
    in Starlette's outermost error middleware, which re-raises to uvicorn: uvicorn then closes the keep-alive
    connection after the answer, and a client's next request on it is reset. Once an answer has begun there
    is nothing left to say, and the exception goes on (uvicorn ends the cut answer)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:
                raise
            log.exception("unexpected error in %s %s", scope["method"], scope["path"])
            await unexpected_error_response(scope["path"], exc)(scope, receive, send)
