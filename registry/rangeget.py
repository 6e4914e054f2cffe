"""Ranged blob GETs, the hot path of a pull.

httpx (h11, pure Python) tops out near 150 MB/s here, far below what a registry on the same machine
or a CDN can send, so blob bytes travel over a minimal HTTP/1.1 client: one keep-alive socket per
worker thread, `recv_into` a reusable 1 MiB buffer, `pwrite` at the right offset, no copies in
between. It speaks just what a ranged GET needs (Content-Length and chunked bodies, redirects,
TLS with the system trust store). When a proxy applies (`HTTP(S)_PROXY`, `NO_PROXY`) httpx does
the transfer instead, so proxies keep working.

A fetch returns how many bytes it wrote; callers loop until their range is complete, so a short
read or a cut connection loses nothing that arrived.
"""

from __future__ import annotations

import socket
import ssl
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from registry.transport import USER_AGENT, transport_error

BUFFER_SIZE = 1 << 20
MAX_HEADER_BYTES = 64 * 1024
MAX_REDIRECTS = 10

# sink(offset, data) takes each piece of the body as it arrives. It may keep the receive buffer behind
# `data` (a bytearray of BUFFER_SIZE, when `data.obj` is one) by returning another such bytearray, which
# the fetcher receives into from then on; it returns None otherwise.
Sink = Callable[[int, memoryview], "bytearray | None"]


class RangeIgnored(Exception):
    """The server answered a ranged GET that does not start at 0 with the whole blob (200)."""


class Unauthorized(Exception):
    def __init__(self, challenge: str) -> None:
        super().__init__("unauthorized")
        self.challenge = challenge


class HTTPStatusError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body}" if body else str(status))
        self.status = status


class Stalled(Exception):
    """No bytes for the stall timeout."""


class CancelledFetch(Exception):
    pass


class SinkError(Exception):
    """Writing received bytes failed (disk full, I/O error); `error` is the OSError."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class FetchResult:
    written: int
    status: int


def proxy_for(url: str) -> str | None:
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def _parse_content_range(value: str) -> tuple[int, int] | None:
    # "bytes 100-199/1000"
    try:
        unit, _, spec = value.strip().partition(" ")
        if unit.lower() != "bytes":
            return None
        span = spec.split("/", 1)[0]
        first, _, last = span.partition("-")
        return int(first), int(last)
    except ValueError:
        return None


class _Connection:
    def __init__(self, scheme: str, host: str, port: int, timeout: float, context: ssl.SSLContext) -> None:
        self.key = (scheme, host, port)
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except OSError:
            pass
        if scheme == "https":
            sock = context.wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.pending = b""  # bytes read past the headers

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class RangeFetcher:
    """One worker's client: keeps one connection alive between requests."""

    def __init__(self, *, timeout: float, context: ssl.SSLContext, cancel: threading.Event,
                 register: Callable[[socket.socket | None], None] | None = None) -> None:
        self.timeout = timeout
        self.context = context
        self.cancel = cancel
        self.register = register or (lambda sock: None)
        self._conn: _Connection | None = None
        self._buffer = bytearray(BUFFER_SIZE)
        self._httpx: httpx.Client | None = None

    def close(self) -> None:
        self._drop()
        if self._httpx is not None:
            self._httpx.close()

    def _drop(self) -> None:
        if self._conn is not None:
            self.register(None)
            self._conn.close()
            self._conn = None

    # --- public ---------------------------------------------------------------------------------

    def fetch(self, url: str, start: int, end: int | None, headers: dict[str, str], sink: Sink,
              auth_for: Callable[[str], dict[str, str]]) -> FetchResult:
        """GET bytes start..end (inclusive; None: to the end) of url into sink(offset, data)."""
        if proxy_for(url):
            return self._fetch_httpx(url, start, end, headers, sink, auth_for)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                result = self._fetch_raw(url, start, end, headers, sink, auth_for)
            except TimeoutError as exc:
                self._drop()
                raise Stalled() from exc
            except (OSError, EOFError) as exc:  # the network; write failures arrive as SinkError
                self._drop()
                if self.cancel.is_set():
                    raise CancelledFetch() from exc
                raise transport_error("GET", url, exc) from exc
            except SinkError:
                self._drop()
                raise
            if isinstance(result, str):
                url = result  # a redirect
                continue
            return result
        raise HTTPStatusError(310, "stopped after 10 redirects")

    # --- raw HTTP/1.1 ---------------------------------------------------------------------------

    def _connect(self, url: str) -> _Connection:
        parts = urlsplit(url)
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, parts.hostname or "", port)
        if self._conn is not None and self._conn.key == key:
            return self._conn
        self._drop()
        self._conn = _Connection(scheme, key[1], port, self.timeout, self.context)
        self.register(self._conn.sock)
        return self._conn

    def _request_bytes(self, url: str, start: int, end: int | None, headers: dict[str, str],
                       auth_for: Callable[[str], dict[str, str]]) -> bytes:
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", f"User-Agent: {USER_AGENT}",
                 "Accept-Encoding: identity", "Connection: keep-alive"]
        if start or end is not None:
            lines.append(f"Range: bytes={start}-{'' if end is None else end}")
        for key, value in {**headers, **auth_for(url)}.items():
            lines.append(f"{key}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _fetch_raw(self, url: str, start: int, end: int | None, headers: dict[str, str], sink: Sink,
                   auth_for: Callable[[str], dict[str, str]]) -> FetchResult | str:
        request = self._request_bytes(url, start, end, headers, auth_for)
        reused = self._conn is not None
        conn = self._connect(url)
        try:
            conn.sock.sendall(request)
            status, response_headers = self._read_head(conn)
        except (ConnectionError, EOFError):
            if not reused:
                raise
            self._drop()  # a kept-alive connection the server had closed: one fresh try
            conn = self._connect(url)
            conn.sock.sendall(request)
            status, response_headers = self._read_head(conn)
        keep_alive = response_headers.get("connection", "").lower() != "close"
        if status in (301, 302, 303, 307, 308) and "location" in response_headers:
            self._discard_body(conn, response_headers)
            if not keep_alive:
                self._drop()
            return urljoin(url, response_headers["location"])
        if status == 401:
            self._drop()
            raise Unauthorized(response_headers.get("www-authenticate", ""))
        if status >= 300:
            body = self._read_small_body(conn, response_headers)
            self._drop()
            raise HTTPStatusError(status, body)
        offset = start
        limit: int | None = None if end is None else end - start + 1
        if status == 206:
            span = _parse_content_range(response_headers.get("content-range", ""))
            if span is None or span[0] != start:
                self._drop()
                raise HTTPStatusError(status, f"unexpected Content-Range {response_headers.get('content-range')!r}")
            limit = span[1] - span[0] + 1 if limit is None else min(limit, span[1] - span[0] + 1)
        elif start != 0:
            self._drop()
            raise RangeIgnored()
        written, complete = self._read_body(conn, response_headers, offset, limit, sink)
        if not complete or not keep_alive:
            self._drop()
        return FetchResult(written, status)

    def _recv(self, conn: _Connection, view: memoryview) -> int:
        if self.cancel.is_set():
            raise CancelledFetch()
        n = conn.sock.recv_into(view)
        if self.cancel.is_set():
            raise CancelledFetch()
        return n

    def _read_head(self, conn: _Connection) -> tuple[int, dict[str, str]]:
        data = conn.pending
        conn.pending = b""
        while b"\r\n\r\n" not in data:
            if len(data) > MAX_HEADER_BYTES:
                raise ConnectionError("response header too long")
            chunk = conn.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed before the response header")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        conn.pending = rest
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError) as exc:
            raise ConnectionError(f"malformed status line {lines[0]!r}") from exc
        headers: dict[str, str] = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        if status == 100:
            return self._read_head(conn)
        return status, headers

    def _read_small_body(self, conn: _Connection, headers: dict[str, str]) -> str:
        chunks: list[bytes] = []

        def keep(_: int, data: memoryview) -> None:
            if sum(map(len, chunks)) < 65536:
                chunks.append(bytes(data))

        try:
            length = int(headers.get("content-length", "-1"))
            if 0 <= length <= 1 << 20 or "chunked" in headers.get("transfer-encoding", "").lower():
                self._read_body(conn, headers, 0, None, keep)
        except (OSError, ValueError, EOFError):
            pass
        return b"".join(chunks).decode("utf-8", "replace")

    def _discard_body(self, conn: _Connection, headers: dict[str, str]) -> None:
        length = headers.get("content-length")
        if length is not None and int(length) > 1 << 20:
            self._drop()
            return
        self._read_body(conn, headers, 0, None, lambda offset, data: None)

    def _read_body(self, conn: _Connection, headers: dict[str, str], offset: int, limit: int | None,
                   sink: Sink) -> tuple[int, bool]:
        """Write the body to sink; returns (bytes written, whether the response was read to its end)."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked(conn, offset, limit, sink)
        length_header = headers.get("content-length")
        length = int(length_header) if length_header is not None else None
        want = length if limit is None else (limit if length is None else min(length, limit))
        written = 0
        buffer = memoryview(self._buffer)
        if conn.pending:
            take = conn.pending if want is None else conn.pending[:want]
            conn.pending = conn.pending[len(take):]
            if take:
                sink(offset, memoryview(take))
                written += len(take)
        while want is None or written < want:
            room = len(buffer) if want is None else min(len(buffer), want - written)
            n = self._recv(conn, buffer[:room])
            if n == 0:
                break
            spare = sink(offset + written, buffer[:n])
            if spare is not None:
                self._buffer, buffer = spare, memoryview(spare)
            written += n
        complete = length is not None and written == length and not conn.pending
        return written, complete

    def _read_line(self, conn: _Connection) -> bytes:
        while b"\r\n" not in conn.pending:
            chunk = conn.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed inside a chunked body")
            conn.pending += chunk
        line, _, conn.pending = conn.pending.partition(b"\r\n")
        return line

    def _read_chunked(self, conn: _Connection, offset: int, limit: int | None, sink: Sink) -> tuple[int, bool]:
        written = 0
        while True:
            size = int(self._read_line(conn).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self._read_line(conn):  # trailers
                    pass
                return written, True
            remaining = size
            while remaining:
                if not conn.pending:
                    data = conn.sock.recv(min(BUFFER_SIZE, remaining))
                    if not data:
                        return written, False
                    conn.pending = data
                piece, conn.pending = conn.pending[:remaining], conn.pending[remaining:]
                remaining -= len(piece)
                if limit is not None:
                    piece = piece[:limit - written]
                if piece:
                    sink(offset + written, memoryview(piece))
                    written += len(piece)
                if limit is not None and written >= limit:
                    return written, False
            self._read_line(conn)

    # --- proxied: httpx -------------------------------------------------------------------------

    def _fetch_httpx(self, url: str, start: int, end: int | None, headers: dict[str, str], sink: Sink,
                     auth_for: Callable[[str], dict[str, str]]) -> FetchResult:
        if self._httpx is None:
            self._httpx = httpx.Client(verify=self.context, trust_env=True, follow_redirects=False,
                                       timeout=httpx.Timeout(self.timeout),
                                       headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        for _ in range(MAX_REDIRECTS + 1):
            request_headers = {**headers, **auth_for(url)}
            if start or end is not None:
                request_headers["Range"] = f"bytes={start}-{'' if end is None else end}"
            try:
                with self._httpx.stream("GET", url, headers=request_headers) as response:
                    status = response.status_code
                    if status in (301, 302, 303, 307, 308) and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if status == 401:
                        raise Unauthorized(response.headers.get("www-authenticate", ""))
                    if status >= 300:
                        raise HTTPStatusError(status, response.read().decode("utf-8", "replace"))
                    limit = None if end is None else end - start + 1
                    if status == 200 and start != 0:
                        raise RangeIgnored()
                    written = 0
                    for chunk in response.iter_raw(BUFFER_SIZE):
                        if self.cancel.is_set():
                            raise CancelledFetch()
                        if limit is not None:
                            chunk = chunk[:limit - written]
                        sink(start + written, memoryview(chunk))
                        written += len(chunk)
                        if limit is not None and written >= limit:
                            break
                    return FetchResult(written, status)
            except httpx.TimeoutException as exc:
                raise Stalled() from exc
            except httpx.TransportError as exc:
                raise transport_error("GET", url, exc) from exc
        raise HTTPStatusError(310, "stopped after 10 redirects")
