"""CORS per OLLAMA_ORIGINS and the Host-header guard against DNS rebinding, as Ollama applies them."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

DEFAULT_ORIGIN_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0")
DEFAULT_ORIGIN_SCHEMES = ("app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*")
ALLOW_METHODS = "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
ALLOW_HEADERS = ",".join((
    "Authorization", "Content-Type", "User-Agent", "Accept", "X-Requested-With", "Openai-Beta",
    "X-Stainless-Arch", "X-Stainless-Async", "X-Stainless-Custom-Poll-Interval", "X-Stainless-Helper-Method",
    "X-Stainless-Lang", "X-Stainless-Os", "X-Stainless-Package-Version", "X-Stainless-Poll-Helper",
    "X-Stainless-Retry-Count", "X-Stainless-Runtime", "X-Stainless-Runtime-Version", "X-Stainless-Timeout",
))
_CONFIG_SCHEMES = ("http://", "https://", "chrome-extension://", "moz-extension://", "safari-extension://",
                   "ms-browser-extension://")


def default_origins() -> list[str]:
    origins = []
    for host in DEFAULT_ORIGIN_HOSTS:
        origins += [f"http://{host}", f"https://{host}", f"http://{host}:*", f"https://{host}:*"]
    return origins + list(DEFAULT_ORIGIN_SCHEMES)


class OriginMatcher:
    def __init__(self, extra: Iterable[str]) -> None:
        entries = list(extra) + default_origins()
        for entry in entries:
            if entry.count("*") > 1 or ("*" not in entry and not entry.startswith(_CONFIG_SCHEMES)):
                raise ValueError(f"bad origin in OLLAMA_ORIGINS: {entry!r}")
        self.allow_all = "*" in entries
        self.exact = {e for e in entries if "*" not in e}
        self.wildcards = [tuple(e.split("*", 1)) for e in entries if "*" in e and e != "*"]

    def allowed(self, origin: str) -> bool:
        origin = origin.lower()
        if self.allow_all or origin in self.exact:
            return True
        return any(origin.startswith(pre) and origin.endswith(post) and len(origin) >= len(pre) + len(post)
                   for pre, post in self.wildcards)


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def _local_addresses() -> set[str]:
    addresses = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            addresses.add(str(info[4][0]))
    except OSError:
        pass
    return addresses


def host_allowed(host: str) -> tuple[bool, bool]:
    """(allowed, is_name): whether a Host header passes, and whether it was a name (not an IP)."""
    host = _strip_port(host)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        lowered = host.lower()
        named_ok = (lowered in ("", "localhost", socket.gethostname().lower())
                    or lowered.endswith((".localhost", ".local", ".internal")))
        return named_ok, True
    ok = ip.is_loopback or ip.is_private or ip.is_unspecified or host in _local_addresses()
    return ok, False


class GuardMiddleware:
    """CORS first, then the Host check (the latter only when listening on loopback)."""

    def __init__(self, app: ASGIApp, *, origins: Iterable[str], loopback_only: bool) -> None:
        self.app = app
        self.origins = OriginMatcher(origins)
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        method = scope["method"]
        origin = headers.get("origin")
        host = headers.get("host", "")
        extra: list[tuple[bytes, bytes]] = []
        if origin and origin not in (f"http://{host}", f"https://{host}"):
            if not self.origins.allowed(origin):
                await _empty(send, 403)
                return
            allow = b"*" if self.origins.allow_all else origin.encode()
            if method == "OPTIONS":
                preflight = [(b"access-control-allow-origin", allow),
                             (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                             (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                             (b"access-control-max-age", b"43200")]
                if not self.origins.allow_all:
                    preflight += [(b"vary", b"Origin"), (b"vary", b"Access-Control-Request-Method"),
                                  (b"vary", b"Access-Control-Request-Headers")]
                await _empty(send, 204, preflight)
                return
            extra = [(b"access-control-allow-origin", allow)]
            if not self.origins.allow_all:
                extra.append((b"vary", b"Origin"))
        if self.loopback_only:
            ok, is_name = host_allowed(host)
            if not ok:
                await _empty(send, 403, extra)
                return
            if is_name and method == "OPTIONS":
                await _empty(send, 204, extra)
                return
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _empty(send: Send, status: int, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", b"0"), *(headers or [])]})
    await send({"type": "http.response.body", "body": b""})
