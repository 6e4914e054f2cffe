"""Entry point of a runner process: `python -m engine.runner <fd>`, fd being the daemon's socketpair end."""

from __future__ import annotations

import socket
import sys

from engine.runner.server import run


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m engine.runner <socket fd>", file=sys.stderr)
        return 2
    with socket.socket(fileno=int(sys.argv[1])) as sock:
        return run(sock)


if __name__ == "__main__":
    sys.exit(main())
