"""Optional API keys (POLLAMA_API_KEYS): every route but the liveness probes needs one, sent as
`Authorization: Bearer <key>` (ollama-python, the OpenAI SDK) or `x-api-key: <key>` (the Anthropic SDK),
or as the password of Basic credentials (what registry clients send to /v2/: `skopeo --creds any:<key>`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from server.errors import Family, family_error_response, route_family
from server.lifecycle import READY_PATH

# Probes that load balancers and `ollama --version` send without credentials.
OPEN_ROUTES = frozenset({"/", "/api/version", READY_PATH})
OPEN_METHODS = frozenset({"GET", "HEAD"})
MISSING = "missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
INVALID = "invalid API key"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


class KeyChecker:
    """Compares in constant time: every key's digest is compared (no early exit), and digests have one
    length whatever the key's, so neither which key matched nor a key's length shows in the timing."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [_digest(k) for k in keys]

    def valid(self, presented: str) -> bool:
        candidate = _digest(presented)
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(candidate, digest)
        return matched


def presented_key(headers: Headers) -> str | None:
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    if scheme == "bearer" and credentials:
        return credentials
    if scheme == "basic" and credentials:
        try:
            _, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return password
    api_key = headers.get("x-api-key", "").strip()
    return api_key or None


class KeyMiddleware:
    """Sits inside the CORS guard, so preflights (which never carry credentials) are answered before it
    and a refusal still carries the CORS headers a browser needs to read it."""

    def __init__(self, app: ASGIApp, *, keys: Iterable[str]) -> None:
        self.app = app
        self.checker = KeyChecker(keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._needs_key(scope):
            await self.app(scope, receive, send)
            return
        key = presented_key(Headers(scope=scope))
        if key is not None and self.checker.valid(key):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        # Registry clients answer a Basic challenge with credentials; a Bearer one would send them off to
        # look for a token service.
        challenge = 'Basic realm="pollama"' if route_family(path) is Family.REGISTRY else "Bearer"
        response = family_error_response(path, MISSING if key is None else INVALID, 401,
                                         {"www-authenticate": challenge})
        await response(scope, receive, send)

    @staticmethod
    def _needs_key(scope: Scope) -> bool:
        method = scope["method"]
        if method == "OPTIONS":
            return False
        return not (method in OPEN_METHODS and scope["path"] in OPEN_ROUTES)
