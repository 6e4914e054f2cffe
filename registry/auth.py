"""Registry authentication: challenges, tokens, Ollama's ed25519 request signing, stored credentials.

Three ways to authenticate, chosen from the registry's `WWW-Authenticate` challenge:

* `Bearer realm=…` with the realm on the registry's own host (ollama.com, hf.co): Ollama's flow. The
  token URL (realm + service, scopes, `ts`, `nonce`) is signed with the ed25519 key in
  `~/.ollama/id_ed25519` (created in Ollama's format when missing) and the header is
  `<ssh public key base64>:<base64 signature>`.
* `Bearer realm=…` on another host (Docker Distribution token servers, GitLab, Docker Hub): the
  standard Docker token flow, with Basic credentials for the registry from a Docker `config.json`
  when there are some, anonymous otherwise. For Ollama's own registry a foreign realm is refused
  with Ollama's `realm host … does not match original host …`, and nothing is ever signed for a
  foreign realm (the signature would let that host fetch a token for the user's ollama.com account).
* `Basic realm=…` (htpasswd): the Docker `config.json` credentials for that host.

Credentials live where Docker keeps them: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`
(`auths.<host>.auth` = base64 `user:password`, or `username`/`password`; `credHelpers`/`credsStore`
run `docker-credential-<helper> get`). For `hf.co`/`huggingface.co` an `HF_TOKEN` (or the token
`huggingface-cli login` cached) is sent as a Bearer token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote_plus, urlsplit, urlunsplit

OLLAMA_HOSTS = ("registry.ollama.ai", "ollama.com", "www.ollama.com")
HF_HOSTS = ("hf.co", "huggingface.co")
KEY_NAME = "id_ed25519"
# base64 of the ASCII hex SHA-256 of an empty body: the last field of the string Ollama signs.
EMPTY_BODY_HASH_B64 = base64.b64encode(hashlib.sha256(b"").hexdigest().encode()).decode()


class AuthError(Exception):
    """Authentication failed; the text is what the API reports."""


# --- challenges -------------------------------------------------------------------------------


def _get_value(header: str, key: str) -> str:
    """Ollama's getValue: first `key=` anywhere, skip the quote, read to a `"` followed by `,` or the end."""
    start = header.find(key + "=")
    if start == -1:
        return ""
    start += len(key) + 2
    end = start
    while end < len(header):
        if header[end] == '"':
            if end + 1 < len(header) and header[end + 1] != ",":
                end += 1
                continue
            break
        end += 1
    return header[start:end]


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic" (lower case), "" when the header was empty
    realm: str
    service: str
    scope: str


def parse_challenge(header: str) -> Challenge:
    """Parse `WWW-Authenticate` with Ollama's quirks (values must be quoted)."""
    header = header.strip()
    scheme = header.split(" ", 1)[0].lower() if header else ""
    rest = header[len("Bearer "):] if header.startswith("Bearer ") else header
    return Challenge(scheme, _get_value(rest, "realm"), _get_value(rest, "service"), _get_value(rest, "scope"))


def go_query_encode(pairs: list[tuple[str, str]]) -> str:
    """Go's url.Values.Encode: keys sorted (values keep their order), QueryEscape'd values."""
    ordered = sorted(pairs, key=lambda kv: kv[0])
    return "&".join(f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}" for k, v in ordered)


def token_url(challenge: Challenge, *, now: float | None = None, nonce: str | None = None) -> str:
    """The realm with service, one scope per space-separated scope, ts and nonce added (Go's order)."""
    parts = urlsplit(challenge.realm)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    pairs.append(("service", challenge.service))
    pairs.extend(("scope", scope) for scope in challenge.scope.split(" "))
    pairs.append(("ts", str(int(time.time() if now is None else now))))
    if nonce is None:
        nonce = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
    pairs.append(("nonce", nonce))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, go_query_encode(pairs), parts.fragment))


def standard_token_url(challenge: Challenge) -> str:
    """The Docker token request: realm plus service and scopes, nothing Ollama-specific."""
    parts = urlsplit(challenge.realm)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if challenge.service:
        pairs.append(("service", challenge.service))
    pairs.extend(("scope", scope) for scope in challenge.scope.split(" ") if scope)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, go_query_encode(pairs), parts.fragment))


def check_realm_host(url: str, original_host: str) -> None:
    """Ollama's guard: the realm's `host[:port]` must equal the registry's."""
    realm_host = urlsplit(url).netloc
    if realm_host != original_host:
        raise AuthError(f'realm host "{realm_host}" does not match original host "{original_host}"')


def signing_string(url: str) -> bytes:
    """What Ollama signs for a token request with an empty body."""
    return f"GET,{url},{EMPTY_BODY_HASH_B64}".encode()


# --- the ed25519 key --------------------------------------------------------------------------


def key_directory() -> Path:
    """`$HOME/.ollama` of the server process (not under OLLAMA_MODELS)."""
    return Path.home() / ".ollama"


def _wrap_pem(label: str, der: bytes, width: int = 64) -> bytes:
    text = base64.b64encode(der).decode()
    lines = [text[i:i + width] for i in range(0, len(text), width)]
    return (f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n").encode()


def _pem_body(pem: bytes) -> bytes:
    lines = [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]
    return base64.b64decode("".join(lines))


class SigningKey:
    """An ed25519 key in OpenSSH form, as `ollama serve` creates and reads it."""

    def __init__(self, private_key) -> None:  # cryptography Ed25519PrivateKey
        from cryptography.hazmat.primitives import serialization

        self._key = private_key
        openssh = private_key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                        serialization.PublicFormat.OpenSSH)
        self.public_b64 = openssh.split()[1].decode()

    @property
    def authorized_key(self) -> str:
        return f"ssh-ed25519 {self.public_b64}"

    def sign(self, data: bytes) -> str:
        """Ollama's auth.Sign: `<pubkey b64>:<base64 raw ed25519 signature>`."""
        return f"{self.public_b64}:{base64.b64encode(self._key.sign(data)).decode()}"

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        from cryptography.hazmat.primitives import serialization

        data = path.read_bytes()
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
        return cls(key)

    @classmethod
    def generate(cls, directory: Path) -> SigningKey:
        """Write `id_ed25519` (OpenSSH PEM, 0600) and `id_ed25519.pub` (authorized_keys line, 0644)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.generate()
        openssh = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption())
        # Go's pem.EncodeToMemory wraps at 64 columns (ssh-keygen and cryptography use 70).
        pem = _wrap_pem("OPENSSH PRIVATE KEY", _pem_body(openssh))
        directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        private_path = directory / KEY_NAME
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        signing = cls(key)
        (directory / f"{KEY_NAME}.pub").write_text(signing.authorized_key + "\n")
        os.chmod(directory / f"{KEY_NAME}.pub", 0o644)
        return signing


def load_or_create_key(directory: Path | None = None) -> SigningKey:
    directory = directory or key_directory()
    path = directory / KEY_NAME
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:
        raise AuthError("signing registry requests needs the 'cryptography' package") from exc
    if not path.exists():
        try:
            return SigningKey.generate(directory)
        except FileExistsError:
            pass  # another process made it meanwhile
    return SigningKey.load(path)


# --- stored credentials -----------------------------------------------------------------------


def docker_config_path() -> Path:
    directory = os.environ.get("DOCKER_CONFIG")
    return (Path(directory) if directory else Path.home() / ".docker") / "config.json"


def _host_keys(host: str) -> list[str]:
    keys = [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/",
            f"http://{host}/v1/", f"http://{host}/v2/"]
    if host in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        keys.append("https://index.docker.io/v1/")
    return keys


def _credential_helper(helper: str, host: str) -> tuple[str, str] | None:
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        return None
    for server in (host, f"https://{host}"):
        try:
            done = subprocess.run([program, "get"], input=server.encode(), capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode == 0:
            try:
                answer = json.loads(done.stdout)
                return answer["Username"], answer["Secret"]
            except (ValueError, KeyError, TypeError):
                return None
    return None


def docker_credentials(host: str, config_path: Path | None = None) -> tuple[str, str] | None:
    """(username, password) for a registry `host[:port]` from a Docker config.json, or None."""
    path = config_path or docker_config_path()
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    auths = config.get("auths") or {}
    for key in _host_keys(host):
        entry = auths.get(key) if isinstance(auths, dict) else None
        if not isinstance(entry, dict):
            continue
        if entry.get("username") and entry.get("password"):
            return str(entry["username"]), str(entry["password"])
        encoded = entry.get("auth")
        if encoded:
            try:
                user, _, password = base64.b64decode(encoded).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                continue
            if user:
                return user, password
    helpers = config.get("credHelpers") or {}
    helper = helpers.get(host) if isinstance(helpers, dict) else None
    helper = helper or config.get("credsStore")
    if isinstance(helper, str) and helper:
        return _credential_helper(helper, host)
    return None


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def huggingface_token() -> str | None:
    """`HF_TOKEN`, else the token huggingface-hub cached (`huggingface-cli login`)."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token.strip()
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # noqa: BLE001 - an absent or broken hub install just means no token
        pass
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    try:
        return Path(home, "token").read_text().strip() or None
    except OSError:
        return None


def is_ollama_host(host: str) -> bool:
    return host.split(":")[0].lower() in OLLAMA_HOSTS


def is_huggingface_host(host: str) -> bool:
    return host.split(":")[0].lower() in HF_HOSTS
