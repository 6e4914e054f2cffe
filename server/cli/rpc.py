"""`pollama rpc`: a llama.cpp RPC worker that holds layers for a server elsewhere (POLLAMA_RPC_SERVERS there).

Like llama.cpp's rpc-server, it has no authentication: bind it to a private network only."""

from __future__ import annotations

from server.cli.flags import Flag, Parsed

DEFAULT_PORT = 50052

FLAGS = [
    Flag("host", "Address to listen on", str, short="H", default="127.0.0.1"),
    Flag("port", "Port to listen on", int, short="p", default=DEFAULT_PORT),
    Flag("threads", "CPU threads (default: the physical cores)", int, short="t"),
    Flag("cache", "Directory that keeps the tensors sent to the worker, for faster reloads", str, short="c"),
]


def rpc(_client: None, parsed: Parsed) -> int:
    from engine.rpc import serve_worker
    from engine.runner.load import physical_cores

    print(f"pollama rpc worker on {parsed['host']}:{parsed['port']}", flush=True)
    serve_worker(parsed["host"], parsed["port"], parsed["threads"] or physical_cores(), parsed["cache"] or None)
    return 1  # the server loop returns only when it could not start
