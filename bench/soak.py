"""The issue-13 soak: rounds of 100 clients (half leaving at random points) against OLLAMA_NUM_PARALLEL=2
for a set time, printing each round's resident memory of the daemon and the runner beside the second
round's (the first warms caches and pools), and the CPU they used. tests/hardening/test_load.py runs three
such rounds in the suite; this runs them for minutes.

Target: over the soak, neither process grows more than --growth MiB above the second round; after the last
round the runner is idle and the queue is empty. The exit status is 1 when one fails.

    .venv/bin/python bench/soak.py [--seconds 300] [--growth 64]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import start_server  # noqa: E402
from tests.hardening.crowd import CLIENTS, MODEL, one_round  # noqa: E402
from tests.hardening.helpers import cpu_seconds, memory_kib, runners, wait_idle  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--growth", type=float, default=64, help="MiB allowed above the second round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pollama-soak-") as directory:
        server = start_server(Path(directory) / "models", Path(directory) / "server.log",
                              {"OLLAMA_NUM_PARALLEL": "2"}, bundled=True)
        try:
            return soak(server, args.seconds, args.growth * 1024)
        finally:
            server.stop()


def soak(server, seconds: float, growth_kib: float) -> int:
    httpx.post(f"{server.url}/api/generate", json={"model": MODEL}, timeout=120).raise_for_status()
    (runner,) = runners(server)
    daemon = server.process.pid
    baseline: tuple[int, int] | None = None
    worst = (0, 0)
    started = time.monotonic()
    rounds = 0
    print(f"{'round':>5} {'s':>5} {'completed/left':>15} {'daemon MiB':>11} {'runner MiB':>11} "
          f"{'daemon CPU s':>13} {'runner CPU s':>13}")
    while rounds < 2 or time.monotonic() - started < seconds:
        round_started, cpu = time.monotonic(), (cpu_seconds(daemon), cpu_seconds(runner))
        counts = one_round(server, rounds)
        wait_idle(runner, timeout=60)
        rss = (memory_kib(daemon, "VmRSS"), memory_kib(runner, "VmRSS"))
        rounds += 1
        if rounds == 2:
            baseline = rss
        if baseline is not None:
            worst = (max(worst[0], rss[0] - baseline[0]), max(worst[1], rss[1] - baseline[1]))
        left = CLIENTS - counts.get("completed", 0)
        print(f"{rounds:>5} {time.monotonic() - round_started:>5.0f} {counts.get('completed', 0):>7}/{left:<7} "
              f"{rss[0] / 1024:>11.1f} {rss[1] / 1024:>11.1f} {cpu_seconds(daemon) - cpu[0]:>13.1f} "
              f"{cpu_seconds(runner) - cpu[1]:>13.1f}", flush=True)
    depth = next(line for line in httpx.get(f"{server.url}/metrics", timeout=30).text.splitlines()
                 if line.startswith("pollama_queue_depth "))
    print(f"growth above round 2 (baseline): daemon {worst[0] / 1024:.1f} MiB, runner {worst[1] / 1024:.1f} MiB "
          f"(target < {growth_kib / 1024:.0f}); runners {len(runners(server))}; {depth}")
    ok = worst[0] < growth_kib and worst[1] < growth_kib and runners(server) == [runner] and depth.endswith(" 0.0")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
