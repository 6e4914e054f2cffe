"""HTTP to a registry: Ollama's request rules (makeRequest / makeRequestWithRetry), auth and redirects.

* Base URL `https://<host>`; `insecure` switches to plain `http` (it does not skip TLS checks; a
  self-signed registry needs its CA in the system trust store, as with Ollama).
* 401: parse the challenge, get a token (or pick Basic credentials), retry once; a second 401 gives
  `unauthorized: access denied`. 404: `file does not exist`. Any other status >= 400:
  `<code>: <body>`. Transport failures read like Go's: `Get "<url>": <reason>`.
* Idempotent requests are retried a few times, with back-off, on connection errors and 502/503/504.
* The Authorization header only ever goes to the registry's own `host[:port]`; redirects elsewhere
  (a CDN) get none. `HTTP(S)_PROXY`/`NO_PROXY` are honoured.

Everything here is blocking: pulls and pushes run in their own threads (see `registry.threads`).
"""

from __future__ import annotations

import functools
import platform
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import urljoin, urlsplit

import httpx

from modelstore.names import Name
from registry import auth

MANIFEST_ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
TRANSIENT_STATUSES = (502, 503, 504)
IDEMPOTENT = ("GET", "HEAD", "PUT", "DELETE")
CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 30.0


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("pollama")
    except Exception:  # noqa: BLE001 - a source tree that was never installed
        return "0.0.0"


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


# Registries (hf.co among them) recognise Ollama clients by this prefix.
USER_AGENT = (f"ollama/{_version()} ({_arch()} {sys.platform}) "
              f"Python/{platform.python_version()} pollama/{_version()}")


class RegistryError(Exception):
    """A pull or push failure; `str()` is the text the API sends, `status` its HTTP status."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class NotFound(RegistryError):
    """A 404 (Go's os.ErrNotExist)."""

    def __init__(self) -> None:
        super().__init__("file does not exist")


class Cancelled(RegistryError):
    def __init__(self) -> None:
        super().__init__("context canceled", 499)


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """The system trust store, like Go's crypto/tls (honours SSL_CERT_FILE / SSL_CERT_DIR). Loaded once per
    process, as Go does: reading the store costs about 50 ms of CPU."""
    return ssl.create_default_context()


def go_method(method: str) -> str:
    return method[:1].upper() + method[1:].lower()


def transport_error(method: str, url: str, exc: BaseException) -> RegistryError:
    reason = str(exc) or type(exc).__name__
    return RegistryError(f'{go_method(method)} "{url}": {reason}')


def _body_text(response: httpx.Response) -> str:
    try:
        return response.read().decode("utf-8", "replace")
    except httpx.HTTPError:
        return ""


Content = bytes | Callable[[], Iterable[bytes]] | None


class RegistryClient:
    """One registry host, with the auth state that a pull or push builds up (Ollama's regOpts)."""

    def __init__(self, host: str, *, insecure: bool = False, retry_delay: float = 1.0) -> None:
        self.host = host
        self.scheme = "http" if insecure else "https"
        self.insecure = insecure
        self.retry_delay = retry_delay
        self.ssl = ssl_context()
        self._http = httpx.Client(
            verify=self.ssl, follow_redirects=False, trust_env=True,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            headers={"User-Agent": USER_AGENT},
        )
        self._lock = threading.Lock()
        self._users = 1
        self.generation = 0  # bumped whenever `authorization` changes
        self.authorization: str | None = None
        if auth.is_huggingface_host(host):
            token = auth.huggingface_token()
            if token:
                self.authorization = f"Bearer {token}"

    @classmethod
    def for_name(cls, name: Name, *, insecure: bool = False, retry_delay: float = 1.0) -> RegistryClient:
        return cls(name.host, insecure=insecure, retry_delay=retry_delay)

    def acquire(self) -> RegistryClient:
        """Another user (a shared download outliving its pull); each calls `close()` once."""
        with self._lock:
            self._users += 1
        return self

    def close(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
        self._http.close()

    # --- URLs ---------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def url(self, name: Name, *segments: str) -> str:
        return "/".join([self.base_url, "v2", name.namespace, name.model, *segments])

    def same_origin(self, url: str) -> bool:
        return urlsplit(url).netloc == self.host

    def auth_headers(self, url: str) -> dict[str, str]:
        """The Authorization header, only for the registry's own host[:port]."""
        if self.authorization and self.same_origin(url):
            return {"Authorization": self.authorization}
        return {}

    # --- requests -----------------------------------------------------------------------------

    def _send(self, method: str, url: str, headers: dict[str, str], content: Content,
              follow_redirects: bool, stream: bool) -> httpx.Response:
        body = content() if callable(content) else content
        request = self._http.build_request(method, url, headers={**headers, **self.auth_headers(url)}, content=body)
        return self._http.send(request, follow_redirects=follow_redirects, stream=stream)

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None, content: Content = None,
                follow_redirects: bool = True, stream: bool = False, check: bool = True,
                retries: int | None = None) -> httpx.Response:
        """Ollama's makeRequestWithRetry. With `check=False` statuses >= 400 (other than 401) are returned."""
        headers = dict(headers or {})
        if url.startswith("https://") and self.insecure:
            url = "http://" + url[len("https://"):]
        attempts = retries if retries is not None else (3 if method in IDEMPOTENT else 1)
        authenticated = False
        failures = 0
        while True:
            generation = self.generation
            try:
                response = self._send(method, url, headers, content, follow_redirects, stream)
            except httpx.TransportError as exc:
                failures += 1
                if failures >= attempts:
                    raise transport_error(method, url, exc) from exc
                time.sleep(self.retry_delay * failures)
                continue
            status = response.status_code
            if status == 401:
                challenge = response.headers.get("www-authenticate", "")
                response.close()
                if authenticated:
                    raise RegistryError("unauthorized: access denied")
                self.authenticate(challenge, url, generation)
                authenticated = True
                continue
            if status in TRANSIENT_STATUSES and failures + 1 < attempts:
                response.close()
                failures += 1
                time.sleep(self.retry_delay * failures)
                continue
            if check and status == 404:
                response.close()
                raise NotFound()
            if check and status >= 400:
                text = _body_text(response)
                response.close()
                raise RegistryError(f"{status}: {text}")
            return response

    # --- auth ---------------------------------------------------------------------------------

    def authenticate(self, www_authenticate: str, request_url: str, generation: int | None = None) -> None:
        """Act on a 401 challenge; concurrent callers that saw the same generation refresh only once."""
        with self._lock:
            if generation is not None and generation != self.generation:
                return  # somebody refreshed meanwhile; just retry
            self.authorization = self._new_authorization(www_authenticate, request_url)
            self.generation += 1

    def _new_authorization(self, www_authenticate: str, request_url: str) -> str:
        challenge = auth.parse_challenge(www_authenticate)
        original_host = urlsplit(request_url).netloc
        credentials = auth.docker_credentials(original_host)
        if challenge.scheme == "basic":
            if credentials is None:
                raise RegistryError(f"unauthorized: access denied (no credentials for {original_host} "
                                    f"in {auth.docker_config_path()})")
            return auth.basic_header(*credentials)
        flow = token_flow(original_host, challenge, credentials is not None)
        if flow == "ollama":
            try:
                return "Bearer " + self._ollama_token(challenge, original_host)
            except RegistryError:
                if auth.is_ollama_host(original_host) or auth.is_huggingface_host(original_host):
                    raise
                # A standard token server on the registry's own host: try it the Docker way.
        return "Bearer " + self._standard_token(challenge, credentials)

    def _ollama_token(self, challenge: auth.Challenge, original_host: str) -> str:
        url = auth.token_url(challenge)
        try:
            auth.check_realm_host(url, original_host)
            signature = auth.load_or_create_key().sign(auth.signing_string(url))
        except auth.AuthError as exc:
            raise RegistryError(str(exc)) from exc
        return self._get_token(url, {"Authorization": signature}, ollama=True)

    def _standard_token(self, challenge: auth.Challenge, credentials: tuple[str, str] | None) -> str:
        url = auth.standard_token_url(challenge)
        headers = {"Authorization": auth.basic_header(*credentials)} if credentials else {}
        return self._get_token(url, headers, ollama=False)

    def _get_token(self, url: str, headers: dict[str, str], *, ollama: bool) -> str:
        try:
            response = self._http.get(url, headers=headers, follow_redirects=True)
        except httpx.TransportError as exc:
            raise transport_error("GET", url, exc) from exc
        text = response.text
        if response.status_code >= 400:
            raise RegistryError(f"{response.status_code}: {text}" if text else str(response.status_code))
        try:
            answer = response.json()
        except ValueError as exc:
            raise RegistryError(f"invalid token response: {exc}") from exc
        token = answer.get("token") if isinstance(answer, dict) else None
        if not token and not ollama and isinstance(answer, dict):
            token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryError("unauthorized: access denied")
        return token

    # --- blob URLs ----------------------------------------------------------------------------

    def resolve_blob(self, url: str, *, deadline_seconds: float = 30.0) -> tuple[str, int]:
        """Where ranged GETs for a blob go: (url, status).

        Redirects to the same hostname are followed (up to 10); the first redirect to another host
        is not, and its Location is the answer (auth is never sent there). A 200/206 means the
        registry serves the blob itself (Docker Distribution with filesystem storage), so the
        request URL is the answer. Ollama insists on a redirect; pollama takes both.
        """
        hostname = urlsplit(url).hostname
        deadline = time.monotonic() + deadline_seconds
        delay = 0.01
        while True:
            try:
                return self._resolve_once(url, hostname)
            except RegistryError as exc:
                if isinstance(exc, NotFound) or time.monotonic() > deadline or not _retryable(exc):
                    raise
            time.sleep(delay)
            delay = min(delay * 4, 10.0)

    def _resolve_once(self, url: str, hostname: str | None) -> tuple[str, int]:
        current = url
        for _ in range(11):
            response = self.request("GET", current, headers={"Range": "bytes=0-0"}, follow_redirects=False,
                                    stream=True, retries=1)
            status, location = response.status_code, response.headers.get("location")
            response.close()
            if status in REDIRECT_STATUSES and location:
                target = urljoin(current, location)
                if urlsplit(target).hostname == hostname:
                    current = target
                    continue
                return target, status
            if status in (200, 206):
                return current, status
            raise RegistryError(f"unexpected status code {status}")
        raise RegistryError("maximum redirects exceeded (10) for directURL")


def _retryable(exc: RegistryError) -> bool:
    text = exc.message
    return text.startswith(("Get ", "Head ")) or text[:3] in ("502", "503", "504")


def token_flow(registry_host: str, challenge: auth.Challenge, has_credentials: bool) -> str:
    """`ollama` (signed, realm on the registry's host) or `standard` (Docker token server).

    Ollama's own registry keeps Ollama's rule: a realm elsewhere is an error (probe 39).
    """
    realm_host = urlsplit(challenge.realm).netloc
    if auth.is_ollama_host(registry_host):
        if realm_host != registry_host:
            raise RegistryError(f'realm host "{realm_host}" does not match original host "{registry_host}"')
        return "ollama"
    if realm_host == registry_host and not has_credentials:
        return "ollama"
    return "standard"
