"""Pull throughput: pollama's /api/pull of a large blob against curl fetching the same blob URL.

A random blob (default 1 GiB) is generated and placed straight into the storage of a local Docker
Distribution registry (`docker-registry`, on loopback), with a manifest naming it. Then, alternating,
`curl -o <file>` fetches the blob URL into the same filesystem the pull writes to, and a pollama server
pulls the model (`insecure`, `stream:false`: parts, verification, fsync, rename, manifest). Each pull is
deleted again before the next one. Both throughputs and their ratio are printed (medians).

    .venv/bin/python bench/pull.py [--size BYTES] [--runs N] [--dir DIR] [--tmpfs]

`--tmpfs` puts the pulled model and curl's file in /dev/shm, which takes the disk out of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import start_server  # noqa: E402
from tests.registry.distribution import start_registry  # noqa: E402

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its finished children."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def generate(path: Path, size: int) -> None:
    rng = np.random.default_rng(1234)
    chunk = 64 << 20
    with path.open("wb") as f:
        written = 0
        while written < size:
            n = min(chunk, size - written)
            f.write(rng.bytes(n))
            written += n


def publish(registry, work: Path, size: int) -> tuple[str, str]:
    blob = work / "blob.bin"
    print(f"generating {size / 1e9:.2f} GB of random data", flush=True)
    generate(blob, size)
    digest, length = registry.put_blob_file("bench/big", blob)
    config = work / "config.json"
    config.write_text('{"model_format":"gguf","model_family":"bench","model_families":["bench"],'
                      '"model_type":"","file_type":"","architecture":"amd64","os":"linux"}\n')
    config_digest, config_size = registry.put_blob_file("bench/big", config)
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": config_digest, "size": config_size},
                "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": length}]}
    response = httpx.put(f"{registry.url}/v2/bench/big/manifests/latest", content=json.dumps(manifest),
                         headers={"Content-Type": MANIFEST_TYPE})
    response.raise_for_status()
    return digest, f"{registry.url}/v2/bench/big/blobs/{digest}"


def time_curl(url: str, target: Path) -> float:
    os.sync()
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "--fail", "-o", str(target), url], check=True)
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


def time_curl_durable(url: str, target: Path) -> float:
    """curl, then fsync of what it wrote: the least a download that survives a power cut costs."""
    os.sync()
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "--fail", "-o", str(target), url], check=True)
    subprocess.run(["sync", str(target)], check=True)
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


def time_curl_verified(url: str, target: Path, digest: str) -> float:
    """curl piped through tee and sha256sum: a download that is checked, as a pull is."""
    os.sync()
    start = time.perf_counter()
    done = subprocess.run(f"curl -sS --fail {url} | tee {target} | sha256sum", shell=True, check=True,
                          capture_output=True, text=True)
    subprocess.run(["sync", str(target)], check=True)
    elapsed = time.perf_counter() - start
    if done.stdout.split()[0] != digest.split(":")[1]:
        raise RuntimeError("curl fetched something else")
    target.unlink()
    return elapsed


def time_pull(server_url: str, name: str) -> float:
    os.sync()
    start = time.perf_counter()
    response = httpx.post(f"{server_url}/api/pull", json={"model": name, "insecure": True, "stream": False},
                          timeout=600)
    elapsed = time.perf_counter() - start
    if response.status_code != 200 or response.json().get("status") != "success":
        raise RuntimeError(f"pull failed: {response.status_code} {response.text}")
    httpx.request("DELETE", f"{server_url}/api/delete", json={"model": name}).raise_for_status()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1 << 30, help="blob size in bytes (default 1 GiB)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir in /tmp)")
    parser.add_argument("--tmpfs", action="store_true", help="write the pulled model and curl's copy to /dev/shm")
    parser.add_argument("--streams", type=int, default=None, help="POLLAMA_DOWNLOAD_STREAMS for the server")
    parser.add_argument("--no-verified", action="store_true", help="skip the curl|sha256sum+sync runs")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pollama-bench-", dir=args.dir))
    out = Path(tempfile.mkdtemp(prefix="pollama-bench-", dir="/dev/shm")) if args.tmpfs else work
    registry = start_registry(work / "registry")
    server = None
    try:
        digest, url = publish(registry, work, args.size)
        env = {"POLLAMA_DOWNLOAD_STREAMS": str(args.streams)} if args.streams else None
        server = start_server(out / "models", work / "server.log", env)
        name = f"{registry.host}/bench/big:latest"
        times: dict[str, list[float]] = {"curl": [], "pollama": [], "curl+sync": [], "curl|sha256sum+sync": []}
        for run in range(args.runs):
            order = [("curl", lambda: time_curl(url, out / "curl.bin")),
                     ("pollama", lambda: time_pull(server.url, name)),
                     ("curl+sync", lambda: time_curl_durable(url, out / "curl.bin")),
                     ("curl|sha256sum+sync", lambda: time_curl_verified(url, out / "curl.bin", digest))]
            if args.no_verified:
                order.pop()
            if run % 2:
                order.reverse()
            for label, fn in order:
                before = {pid: cpu_seconds(pid) for pid in (server.process.pid, registry.process.pid)}
                seconds = fn()
                times[label].append(seconds)
                used = [cpu_seconds(pid) - before[pid] for pid in before]
                print(f"run {run + 1} {label:20s} {seconds:6.2f} s  {args.size / seconds / 1e6:7.1f} MB/s   "
                      f"CPU s: pollama {used[0]:.2f}, registry {used[1]:.2f}", flush=True)
        rates = {label: args.size / statistics.median(values) / 1e6 for label, values in times.items() if values}
        rates.setdefault("curl|sha256sum+sync", float("nan"))
        print(f"\nblob {digest[:19]}… {args.size / 1e9:.2f} GB, writing to {'tmpfs' if args.tmpfs else work}, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, streams {args.streams or 'default'}")
        print(f"curl                 median {rates['curl']:7.1f} MB/s")
        print(f"pollama              median {rates['pollama']:7.1f} MB/s  (parts, SHA-256, fsync, rename, manifest)")
        print(f"curl+sync            median {rates['curl+sync']:7.1f} MB/s  (a durable download: curl, then fsync)")
        print(f"curl|sha256sum+sync  median {rates['curl|sha256sum+sync']:7.1f} MB/s  (a verified, durable download)")
        print(f"ratio pollama/curl = {rates['pollama'] / rates['curl']:.2f} (target 0.8); "
              f"pollama/(curl+sync) = {rates['pollama'] / rates['curl+sync']:.2f}; "
              f"pollama/(curl|sha256sum+sync) = {rates['pollama'] / rates['curl|sha256sum+sync']:.2f}")
        phases = [line.split(": ", 1)[-1] for line in server.output().splitlines() if "fetched in" in line]
        print("pollama's phases:", *phases, sep="\n  ")
    finally:
        if server is not None:
            server.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
        if out != work:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
