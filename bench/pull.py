"""Pull throughput: pollama's /api/pull of a large blob against curl fetching the same blob URL.

A random blob (default 1 GiB) is generated and placed straight into the storage of a local Docker
Distribution registry (`docker-registry`, on loopback), with a manifest naming it. Then, alternating,
`curl -o <file>` fetches the blob URL into the same filesystem the pull writes to, and a pollama server
pulls the model (`insecure`, `stream:false`: the manifest, ranged GETs, SHA-256 verification, fsync,
rename, the manifest written). Each pull is deleted again before the next one. Beside plain curl run
`curl+sync` (curl, then fsync: a download that survives a power cut, as a pull must) and
`curl|sha256sum+sync` (also verified). One untimed round warms caches first; figures are medians.

It runs twice: writing to the disk (the work directory) and to tmpfs (/dev/shm), which takes the disk
out of the figures; `--disk` or `--tmpfs` runs one. The target (pollama at least 0.8 of curl) is
checked on each; the exit status is 1 when one is missed.

    .venv/bin/python bench/pull.py [--size BYTES] [--runs N] [--dir DIR] [--disk | --tmpfs] [--streams N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
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

from registry.download import start_writeback  # noqa: E402
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


def time_pull(client: httpx.Client, name: str) -> float:
    """One /api/pull through a client made beforehand: creating one loads a trust store (about 50 ms),
    which is the bench's cost, not pollama's."""
    os.sync()
    start = time.perf_counter()
    response = client.post("/api/pull", json={"model": name, "insecure": True, "stream": False})
    elapsed = time.perf_counter() - start
    if response.status_code != 200 or response.json().get("status") != "success":
        raise RuntimeError(f"pull failed: {response.status_code} {response.text}")
    client.request("DELETE", "/api/delete", json={"model": name}).raise_for_status()
    return elapsed


def bench_one(args: argparse.Namespace, registry, digest: str, url: str, work: Path, tmpfs: bool) -> float:
    """One filesystem: every subject, alternating; returns pollama/curl."""
    out = Path(tempfile.mkdtemp(prefix="pollama-bench-", dir="/dev/shm")) if tmpfs else work / "out"
    out.mkdir(exist_ok=True)
    env = {"POLLAMA_DOWNLOAD_STREAMS": str(args.streams)} if args.streams else None
    server = start_server(out / "models", work / f"server-{'tmpfs' if tmpfs else 'disk'}.log", env)
    try:
        client = httpx.Client(base_url=server.url, timeout=600)
        name = f"{registry.host}/bench/big:latest"
        subjects = {"curl": lambda: time_curl(url, out / "curl.bin"),
                    "pollama": lambda: time_pull(client, name),
                    "curl+sync": lambda: time_curl_durable(url, out / "curl.bin")}
        if not args.no_verified:
            subjects["curl|sha256sum+sync"] = lambda: time_curl_verified(url, out / "curl.bin", digest)
        subjects["curl"](), subjects["pollama"]()  # untimed: warms caches and the server's code paths
        times: dict[str, list[float]] = {label: [] for label in subjects}
        where = "tmpfs" if tmpfs else "disk"
        for run in range(args.runs):
            order = list(subjects) if run % 2 == 0 else list(subjects)[::-1]
            for label in order:
                pids = (server.process.pid, registry.process.pid)
                before = [cpu_seconds(pid) for pid in pids] + [children_cpu_seconds()]
                seconds = subjects[label]()
                times[label].append(seconds)
                after = [cpu_seconds(pid) for pid in pids] + [children_cpu_seconds()]
                used = [b - a for a, b in zip(before, after, strict=True)]
                print(f"{where} run {run + 1} {label:20s} {seconds:6.2f} s  {args.size / seconds / 1e6:7.1f} MB/s   "
                      f"CPU s: pollama {used[0]:.2f}, registry {used[1]:.2f}, curl {used[2]:.2f}", flush=True)
        rates = {label: args.size / statistics.median(values) / 1e6 for label, values in times.items()}
        print(f"\n{where}: blob {digest[:19]}… {args.size / 1e9:.2f} GB, {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.1f}, streams {args.streams or 'adaptive'}")
        notes = {"pollama": "(ranged GETs, SHA-256, fsync, rename, manifest)",
                 "curl+sync": "(a durable download: curl, then fsync)",
                 "curl|sha256sum+sync": "(a verified, durable download)"}
        for label, rate in rates.items():
            print(f"  {label:20s} median {rate:7.1f} MB/s  {notes.get(label, '')}")
        ratio = rates["pollama"] / rates["curl"]
        print(f"  pollama/curl = {ratio:.2f} (target 0.8: {'met' if ratio >= 0.8 else 'NOT met'}); "
              f"pollama/(curl+sync) = {rates['pollama'] / rates['curl+sync']:.2f}")
        if not tmpfs:
            floors = sorted(args.size / seconds / 1e6 for seconds in durable_write_seconds(out, args.size))
            print(f"  the disk alone: {floors[1]:.1f} MB/s (of {floors[0]:.0f}, {floors[1]:.0f}, {floors[2]:.0f}) "
                  f"written from memory and fdatasynced as a pull writes, {floors[1] / rates['curl']:.2f} of curl: "
                  "no download that is durable before it is visible can beat it")
        phases = [line.split(": ", 1)[-1] for line in server.output().splitlines()
                  if "fetched in" in line and digest[7:19] in line]
        print("  pollama's phases:", *phases[1:], sep="\n    ")
        return ratio
    finally:
        server.stop()
        if tmpfs:
            shutil.rmtree(out, ignore_errors=True)


def durable_write_seconds(directory: Path, size: int) -> list[float]:
    """Three times: writing `size` bytes from memory into a file as a pull does (16 MiB writes, writeback of
    each started at once) and fdatasync. No download that is durable before it is visible can beat it."""
    block = np.random.default_rng(2).bytes(16 << 20)
    path, times = directory / "floor.bin", []
    for _ in range(3):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        start = time.perf_counter()
        for offset in range(0, size, len(block)):
            os.pwrite(fd, block[:size - offset], offset)
            start_writeback(fd, offset, len(block))
        os.fdatasync(fd)
        times.append(time.perf_counter() - start)
        os.close(fd)
        path.unlink()
    return times


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sha256_seconds(size: int) -> float:
    """SHA-256 of `size` bytes already in memory: the least CPU a verified pull can spend."""
    data = memoryview(np.random.default_rng(0).bytes(64 << 20))
    digest, done, start = hashlib.sha256(), 0, time.perf_counter()
    while done < size:
        digest.update(data[:min(len(data), size - done)])
        done += len(data)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1 << 30, help="blob size in bytes (default 1 GiB)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir in /tmp)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--disk", action="store_true", help="only write to the work directory's filesystem")
    where.add_argument("--tmpfs", action="store_true", help="only write to /dev/shm")
    parser.add_argument("--streams", type=int, default=None, help="POLLAMA_DOWNLOAD_STREAMS for the server")
    parser.add_argument("--no-verified", action="store_true", help="skip the curl|sha256sum+sync runs")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pollama-bench-", dir=args.dir))
    registry = start_registry(work / "registry")
    try:
        digest, url = publish(registry, work, args.size)
        print(f"SHA-256 of the blob's size in memory: {sha256_seconds(args.size):.2f} s of one CPU")
        modes = [False] if args.disk else [True] if args.tmpfs else [False, True]
        ratios = [bench_one(args, registry, digest, url, work, tmpfs) for tmpfs in modes]
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(ratio >= 0.8 for ratio in ratios) else 1


if __name__ == "__main__":
    sys.exit(main())
