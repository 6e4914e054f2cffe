"""Docker Distribution with `auth: token:`, trusting a small token server written here.

The token server issues ES256 JWTs (the registry verifies them against the certificate in its
`rootcertbundle`) to clients that present Basic credentials; pollama takes those from a Docker
`config.json` for the registry's host. The realm is on another port than the registry, so Ollama's
same-host rule does not apply and nothing is signed with the ed25519 key.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip("cryptography", reason="the token server signs with the cryptography package")

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.registry.distribution import Registry, start_registry
from tests.registry.helpers import copy, delete, generate, manifest_of, pull, push, statuses

SERVICE = "pollama-test"
ISSUER = "pollama-test-issuer"
USER, PASSWORD = "tok", "en-pass"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    def __init__(self, directory: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pollama test token issuer")])
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.bundle = directory / "token-ca.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[tuple[str, str]] = []  # (path, Authorization)
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self.server = server
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def token(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind and name:
                access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": ISSUER, "sub": USER, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                authorization = self.headers.get("Authorization", "")
                outer.requests.append((self.path, authorization))
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                query = parse_qs(urlsplit(self.path).query)
                if authorization != expected or query.get("service") != [SERVICE]:
                    body, status = b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}', 401
                else:
                    token = outer.token(query.get("scope", []))
                    body, status = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode(), 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture
def token_registry(registry_binary: str, tmp_path: Path) -> Iterator[tuple[Registry, TokenServer]]:
    tokens = TokenServer(tmp_path)
    auth = {"token": {"realm": f"http://127.0.0.1:{tokens.port}/token", "service": SERVICE, "issuer": ISSUER,
                      "rootcertbundle": str(tokens.bundle)}}
    registry = start_registry(tmp_path / "token-registry", auth=auth)
    yield registry, tokens
    registry.stop()
    tokens.close()


def test_push_and_pull_through_a_token_server(token_registry, fresh) -> None:
    registry, tokens = token_registry
    credentials = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    server = fresh(docker_config={"auths": {registry.host: {"auth": credentials}}}, bundled=True)
    name = f"{registry.host}/team/smol:latest"
    copy(server, "smollm2:135m", name)
    _, digests = manifest_of(server, name)
    items = push(server, name)
    assert statuses(items)[-2:] == ["pushing manifest", "success"], items[-3:]
    delete(server, name)
    delete(server, "smollm2:135m")
    assert not list((server.models / "blobs").iterdir())
    items = pull(server, name)
    assert statuses(items) == ["pulling manifest", *[f"pulling {d[7:19]}" for d in digests],
                               "verifying sha256 digest", "writing manifest", "success"]
    assert manifest_of(server, name)[1] == digests
    generate(server, name)

    # Every token request carried the Docker credentials; none carried an ed25519 signature.
    assert tokens.requests
    assert all(auth.startswith("Basic ") for _, auth in tokens.requests)
    # The registry's challenge lists the push scope's actions in no fixed order (a Go map); pollama asks
    # for the scope as challenged.
    scopes = {(s.rsplit(":", 1)[0], frozenset(s.rsplit(":", 1)[1].split(",")))
              for path, _ in tokens.requests for s in parse_qs(urlsplit(path).query).get("scope", [])}
    assert {("repository:team/smol", frozenset({"pull", "push"})),
            ("repository:team/smol", frozenset({"pull"}))} <= scopes, (scopes, tokens.requests)
    assert not (server.models.parent / "home" / ".ollama" / "id_ed25519").exists()

    delete(server, name)
    (server.models.parent / "docker" / "config.json").unlink()  # read per request: now anonymous
    assert pull(server, name)[-1]["error"].startswith("pull model manifest: 401: ")
