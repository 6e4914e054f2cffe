"""A real Docker Distribution registry (Debian's `docker-registry`) on loopback, for tests and bench/pull.py.

It is installed with apt when missing (root only). Each instance gets a temporary config: filesystem
storage in its own directory, `http.addr: 127.0.0.1:<free port>`, and optionally htpasswd or token
authentication.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REGISTRY_BINARY = "docker-registry"
PACKAGES = ("docker-registry", "apache2-utils")


class Unavailable(Exception):
    pass


def ensure_installed() -> str:
    """Path of the docker-registry binary, installing the Debian packages when missing."""
    binary = shutil.which(REGISTRY_BINARY)
    if binary and shutil.which("htpasswd"):
        return binary
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable("docker-registry is not installed (apt-get install docker-registry apache2-utils)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise Unavailable(f"could not install docker-registry: {done.stderr[-2000:]}")
    binary = shutil.which(REGISTRY_BINARY)
    if binary is None:
        raise Unavailable("docker-registry is still missing after apt-get install")
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def htpasswd_line(user: str, password: str) -> str:
    done = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True, text=True, check=True)
    return done.stdout.strip() + "\n"


@dataclass
class Registry:
    root: Path
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def storage(self) -> Path:
        return self.root / "data" / "docker" / "registry" / "v2"

    def blob_data(self, digest: str) -> Path:
        hex_ = digest.split(":", 1)[1]
        return self.storage / "blobs" / "sha256" / hex_[:2] / hex_ / "data"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def put_blob_file(self, repository: str, source: Path) -> tuple[str, int]:
        """Place a file straight into the storage (no upload) and link it into `repository`."""
        digest = hashlib.sha256()
        with source.open("rb") as f:
            while chunk := f.read(8 << 20):
                digest.update(chunk)
        hex_ = digest.hexdigest()
        data = self.blob_data(f"sha256:{hex_}")
        data.parent.mkdir(parents=True, exist_ok=True)
        if not data.exists():
            try:
                os.link(source, data)
            except OSError:
                shutil.copyfile(source, data)
        link = self.storage / "repositories" / repository / "_layers" / "sha256" / hex_ / "link"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.write_text(f"sha256:{hex_}")
        return f"sha256:{hex_}", source.stat().st_size


def start_registry(root: Path, *, auth: dict | None = None, port: int | None = None,
                   mirror_of: str | None = None) -> Registry:
    """Start docker-registry with a temporary config under root; `auth` is the config's `auth:` map.

    With `mirror_of` (a registry's URL) it is a pull-through cache of that registry."""
    binary = ensure_installed()
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True},
                    "maintenance": {"uploadpurging": {"enabled": False}}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    if auth:
        config["auth"] = auth
    if mirror_of:
        config["proxy"] = {"remoteurl": mirror_of}
    config_path = root / "config.yml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    log = root / "registry.log"
    handle = log.open("ab")
    process = subprocess.Popen([binary, "serve", str(config_path)], stdout=handle, stderr=subprocess.STDOUT,
                               start_new_session=True)
    registry = Registry(root, port, process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited:\n{registry.output()}")
        try:
            if httpx.get(f"{registry.url}/v2/", timeout=1).status_code in (200, 401):
                return registry
        except httpx.HTTPError:
            time.sleep(0.1)
    registry.stop()
    raise RuntimeError(f"docker-registry did not answer:\n{registry.output()}")
