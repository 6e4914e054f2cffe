"""Debian packages that tests need, installed on first use (CI starts on a bare machine, as root)."""

from __future__ import annotations

import os
import shutil
import subprocess


def ensure_command(command: str, *packages: str) -> str | None:
    """The path of `command`, installing `packages` with apt-get when it is missing; None when that cannot be done."""
    found = shutil.which(command)
    if found or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *(packages or (command,))]
    for step in (install, ["apt-get", "update", "-q"], install):
        done = subprocess.run(step, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=900)
        if step is install and done.returncode == 0:
            break
    return shutil.which(command)
