"""llama.cpp's RPC backend: workers that hold part of a model's layers (`pollama rpc`), and what a runner and
the scheduler need to use them (POLLAMA_RPC_SERVERS).

llama.cpp's own code does the work: ggml-rpc's server loop in a worker, its client in a runner. A worker serves
one client at a time, so a set of workers belongs to one loaded model at a time (see engine/scheduler.py).
The scheduler asks a worker's memory in a short-lived child process, because ggml's client aborts the process
when a worker goes away mid-call.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import socket
import subprocess
import sys
from dataclasses import dataclass

from engine.ggml import DEVICE_CPU, device_memory, device_name, device_type, devices, ggml, gpu_devices, library

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 30.0
CONNECT_TIMEOUT = 2.0


@dataclass(frozen=True)
class RemoteDevice:
    endpoint: str  # host:port of the worker
    index: int  # the device's number on that worker
    name: str  # llama.cpp's name for it, e.g. RPC0[127.0.0.1:50052]
    total: int
    free: int


@functools.cache
def _rpc() -> ctypes.CDLL:
    rpc = library("libggml-rpc.so")
    rpc.ggml_backend_rpc_add_server.restype = ctypes.c_void_p
    rpc.ggml_backend_rpc_add_server.argtypes = [ctypes.c_char_p]
    rpc.ggml_backend_rpc_start_server.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
                                                  ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
    return rpc


def local_devices() -> list[int]:
    """Handles of this machine's devices a worker should serve: its GPUs, or else its CPU."""
    return gpu_devices() or [d for d in devices() if device_type(d) == DEVICE_CPU]


def serve_worker(host: str, port: int, threads: int, cache_dir: str | None = None) -> None:
    """Serve this machine's devices to runners elsewhere; returns only when the server cannot start."""
    devices = local_devices()
    array = (ctypes.c_void_p * len(devices))(*devices)
    _rpc().ggml_backend_rpc_start_server(f"{host}:{port}".encode(), cache_dir.encode() if cache_dir else None,
                                         threads, len(devices), array)


def add_servers(endpoints: list[str]) -> list[int]:
    """Register workers with this process's llama.cpp; the handles of their devices, in order."""
    found = []
    for endpoint in endpoints:
        registry = _rpc().ggml_backend_rpc_add_server(endpoint.encode())
        if not registry:
            raise RuntimeError(f"rpc worker {endpoint} could not be added")
        count = ggml().ggml_backend_reg_dev_count(registry)
        found += [ggml().ggml_backend_reg_dev_get(registry, i) for i in range(count)]
    return found


def reachable(endpoint: str, timeout: float = CONNECT_TIMEOUT) -> bool:
    host, _, port = endpoint.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def unreachable(endpoints: list[str]) -> list[str]:
    return [endpoint for endpoint in endpoints if not reachable(endpoint, timeout=0.5)]


def probe(endpoints: list[str]) -> list[RemoteDevice]:
    """The devices of the workers that answer, with their memory now; a worker that does not is left out."""
    alive = []
    for endpoint in endpoints:
        if reachable(endpoint):
            alive.append(endpoint)
        else:
            log.warning("rpc worker %s is unreachable; loading without it", endpoint)
    if not alive:
        return []
    try:
        done = subprocess.run([sys.executable, "-m", "engine.rpc", *alive], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("rpc workers %s did not answer within %.0f s; loading without them", alive, PROBE_TIMEOUT)
        return []
    if done.returncode != 0:
        log.warning("rpc workers %s could not be asked for their memory: %s", alive, done.stderr.strip()[-500:])
        return []
    return [RemoteDevice(**device) for device in json.loads(done.stdout)]


def _report(endpoints: list[str]) -> None:
    """The child side of `probe`: every device of the workers as JSON, memory included."""
    found = []
    for endpoint in endpoints:
        for index, device in enumerate(add_servers([endpoint])):
            free, total = device_memory(device)
            if total:
                found.append({"endpoint": endpoint, "index": index, "name": device_name(device),
                              "total": total, "free": free})
    print(json.dumps(found))


if __name__ == "__main__":
    _report(sys.argv[1:])
