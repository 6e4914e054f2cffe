"""The daemon's handle on one runner process (asyncio side of the channel in engine/protocol.py)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from engine import rpc
from engine.protocol import (
    FRAME_HEADER,
    Cancel,
    Complete,
    CompletionRequest,
    Detokenize,
    Done,
    Embed,
    EmbedResult,
    Failure,
    Loaded,
    LoadFailed,
    LoadProgress,
    LoadSpec,
    Reply,
    Rerank,
    RerankResult,
    RunnerError,
    RunnerInfo,
    Shutdown,
    Token,
    Tokenize,
    decode_body,
    encode_frame,
)

__all__ = ["RunnerError", "RunnerProcess"]

log = logging.getLogger("engine.runner")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Lines of the runner's stderr worth quoting in an error (llm/status.go in Ollama).
ERROR_MARKERS = ("error:", "Error:", "error loading model", "panic:", "CUDA error", "GGML_ASSERT",
                 "out of memory", "failed to allocate", "Traceback", "Exception", "RPC server")
LAST_ERROR_LIMIT = 8192
# How many of those lines a failed or exited runner leaves in the daemon's log at the default level.
LOGGED_ERROR_LINES = 8
CLOSE_GRACE_SECONDS = 5.0
# Ollama's loop guard (llm/llama_server.go Completion): a completion whose whitespace-trimmed chunk is
# the same more than this many times in a row is aborted silently, with no final Done.
TOKEN_REPEAT_LIMIT = 30


class _Terminated:
    """Put on every open request's queue when the process dies."""


class _Frames(asyncio.Protocol):
    """The daemon's end of the channel: each frame is decoded as its last byte arrives and handed to `deliver`
    at once (no reader task to wake per token). Until the runner has loaded, frames wait in `early`; None
    there means the runner closed its end."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.early: asyncio.Queue[object | None] = asyncio.Queue()
        self.deliver: Callable[[object], None] = self.early.put_nowait
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= FRAME_HEADER.size:
            end = start + FRAME_HEADER.size + FRAME_HEADER.unpack_from(buffer, start)[0]
            if len(buffer) < end:
                break
            self.deliver(decode_body(bytes(memoryview(buffer)[start + FRAME_HEADER.size:end])))
            start = end
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self.early.put_nowait(None)
        if not self.closed.done():
            self.closed.set_result(None)


def _exit_text(returncode: int | None) -> str:
    """Go's wording for how a process ended, as Ollama quotes it."""
    if returncode is None:
        return "exit status unknown"
    if returncode < 0:
        try:
            return f"signal: {signal.strsignal(-returncode).lower()}"
        except (ValueError, AttributeError):
            return f"signal: {-returncode}"
    return f"exit status {returncode}"


class RunnerProcess:
    def __init__(self, process: asyncio.subprocess.Process, frames: _Frames,
                 transport: asyncio.WriteTransport, info: RunnerInfo, stderr_task: asyncio.Task[None],
                 last_error: list[str], rpc_servers: list[str]) -> None:
        self.process = process
        self.info = info
        self._frames = frames
        self._transport = transport
        self._stderr_task = stderr_task
        self._last_error = last_error
        self._rpc_servers = rpc_servers
        self._ids = itertools.count(1)
        self._queues: dict[int, asyncio.Queue[object]] = {}
        self._closing = False
        self._exit_error: RunnerError | None = None
        # Called once if the process exits without being asked to (the scheduler counts crashes).
        self.on_crash: Callable[[], None] | None = None
        frames.deliver = self._route
        self._watcher = asyncio.create_task(self._watch())

    # --- lifecycle ------------------------------------------------------------------------------

    @classmethod
    async def start(cls, spec: LoadSpec, *, load_timeout: float | None) -> RunnerProcess:
        """Spawn a runner and wait until it has loaded the model.

        `load_timeout` is a stall timeout, as in Ollama: it restarts whenever load progress moves."""
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "engine.runner", str(child.fileno()), pass_fds=(child.fileno(),),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, env=env)
        finally:
            child.close()
        last_error: list[str] = []
        stderr_task = asyncio.create_task(_watch_stderr(process, last_error))
        transport, frames = await asyncio.get_running_loop().create_unix_connection(_Frames, sock=parent)
        transport.write(encode_frame(spec))
        try:
            outcome = await _await_load(frames.early, load_timeout, last_error)
        except RunnerError as err:  # the load stalled
            await _reap(process, transport, stderr_task, grace=0)
            _log_failure(process.pid, err.message, last_error)
            raise
        except BaseException:
            await _reap(process, transport, stderr_task, grace=0)
            raise
        if not isinstance(outcome, RunnerInfo):  # the runner is exiting, with or without a word
            await _reap(process, transport, stderr_task, grace=CLOSE_GRACE_SECONDS)
            if isinstance(outcome, LoadFailed):
                message = f"llama runner process has terminated: {outcome.message}"
            else:
                message = _termination_message(process.returncode, last_error)
            _log_failure(process.pid, message, last_error)
            raise RunnerError(message)
        info = outcome
        return cls(process, frames, transport, info, stderr_task, last_error, spec.rpc_servers)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self._exit_error is None and self.process.returncode is None and not self._closing

    async def close(self) -> None:
        """Stop the process (its memory goes back to the OS); kills it if it does not stop in time."""
        if self.alive:
            self._send(Shutdown())
        self._closing = True
        await _stop(self.process, grace=CLOSE_GRACE_SECONDS)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        await self.process.wait()
        await self._watcher
        await self._stderr_task
        self._transport.close()

    # --- requests -------------------------------------------------------------------------------

    async def tokenize(self, text: str, add_special: bool = False, parse_special: bool = True, *,
                       head: int = 0, tail: int = 0) -> list[int]:
        """The text's tokens. A text beyond `head` tokens gives its first `head` + 1, one beyond `tail` its last
        `tail`: the runner does not tokenize what lies beyond (a 256 MB text would cost it gigabytes)."""
        return await self._call(lambda rid: Tokenize(rid, text, add_special, parse_special, head, tail))  # type: ignore[return-value]

    async def detokenize(self, tokens: list[int]) -> str:
        return await self._call(lambda rid: Detokenize(rid, list(tokens)))  # type: ignore[return-value]

    async def embed(self, inputs: list[str]) -> EmbedResult:
        return await self._call(lambda rid: Embed(rid, list(inputs)))  # type: ignore[return-value]

    async def rerank(self, query: str, documents: list[str], truncate: bool) -> RerankResult:
        return await self._call(lambda rid: Rerank(rid, query, list(documents), truncate))  # type: ignore[return-value]

    async def completion(self, req: CompletionRequest) -> AsyncIterator[Token | Done]:
        """Stream a completion. Leaving the loop early (or aclose()) cancels it in the runner.

        A model stuck in a loop (the same trimmed chunk more than TOKEN_REPEAT_LIMIT times in a row)
        is cancelled and the stream ends without a Done, as Ollama does."""
        request_id, queue = self._open()
        finished = False
        last, repeats = "", 0
        try:
            self._send(Complete(request_id, req))
            while True:
                payload = await queue.get()
                if isinstance(payload, Token):
                    trimmed = payload.text.strip()
                    if trimmed == last:
                        repeats += 1
                    else:
                        last, repeats = trimmed, 0
                    if repeats > TOKEN_REPEAT_LIMIT:
                        log.debug("prediction aborted, token repeat limit reached")
                        return
                    yield payload
                    continue
                finished = True
                if isinstance(payload, Done):
                    log.debug("completion done: %s, prompt %d tokens (%d from the cache), %d generated",
                              payload.done_reason, payload.prompt_eval_count, payload.cached_tokens,
                              payload.eval_count)
                    if payload.draft_count:  # Ollama's API has no field for it; llama-server logs it too
                        log.info("speculative decoding: %d of %d draft tokens accepted (%.0f%%)",
                                 payload.draft_accepted, payload.draft_count,
                                 100 * payload.draft_accepted / payload.draft_count)
                    yield payload
                    return
                raise self._error(payload)
        finally:
            del self._queues[request_id]
            if not finished and self.alive:
                self._send(Cancel(request_id))

    # --- plumbing -------------------------------------------------------------------------------

    def _open(self) -> tuple[int, asyncio.Queue[object]]:
        if not self.alive:
            raise self._exit_error or RunnerError("llama runner process is not running")
        request_id = next(self._ids)
        queue: asyncio.Queue[object] = asyncio.Queue()
        self._queues[request_id] = queue
        return request_id, queue

    def _send(self, message: object) -> None:
        self._transport.write(encode_frame(message))

    async def _call(self, make_message: Callable[[int], object]) -> object:
        """One request, one reply. A caller cancelled before the reply (its client left) cancels the
        request in the runner too: an embedding batch stops at its next decode."""
        request_id, queue = self._open()
        answered = False
        try:
            self._send(make_message(request_id))
            payload = await queue.get()
            answered = True
        finally:
            del self._queues[request_id]
            if not answered and self.alive:
                self._send(Cancel(request_id))
        if isinstance(payload, Failure | _Terminated):
            raise self._error(payload)
        return payload

    def _error(self, payload: object) -> RunnerError:
        if isinstance(payload, Failure):
            return RunnerError(payload.message, payload.status)
        return self._exit_error or RunnerError("llama runner process has terminated")

    def _route(self, message: object) -> None:
        """Deliver a reply to its request's queue."""
        if isinstance(message, Reply) and (queue := self._queues.get(message.request_id)) is not None:
            queue.put_nowait(message.payload)

    async def _watch(self) -> None:
        """When the channel closes: wait for the process to end, then fail every open request."""
        await self._frames.closed
        await self.process.wait()
        await self._stderr_task
        message = _termination_message(self.process.returncode, self._last_error)
        if gone := await asyncio.to_thread(rpc.unreachable, self._rpc_servers):
            message += f" (rpc worker {', '.join(gone)} is unreachable)"
        self._exit_error = RunnerError(message)
        if not self._closing:
            _log_failure(self.pid, self._exit_error.message, self._last_error)
            if self.on_crash is not None:
                self.on_crash()
        for queue in self._queues.values():
            queue.put_nowait(_Terminated())


def _log_failure(pid: int, message: str, last_error: list[str]) -> None:
    """Leave the reason in the log at the default level: the runner's own stream is logged at debug."""
    log.warning("llama runner %d: %s", pid, message)
    for line in last_error[-LOGGED_ERROR_LINES:]:
        log.warning("llama runner %d: %s", pid, line)


def _termination_message(returncode: int | None, last_error: list[str]) -> str:
    message = f"llama runner process has terminated: {_exit_text(returncode)}"
    return f"{message}: {last_error[-1]}" if last_error else message


async def _await_load(frames: asyncio.Queue[object | None], load_timeout: float | None,
                      last_error: list[str]) -> RunnerInfo | LoadFailed | None:
    """The runner's answer to the load: its info, its failure, or None if it exited without one."""
    stall = load_timeout if load_timeout is not None and load_timeout > 0 else None
    progress = 0.0
    while True:
        try:
            message = await asyncio.wait_for(frames.get(), stall)
        except TimeoutError:
            detail = f" - {last_error[-1]}" if last_error else ""
            message = f"timed out waiting for llama runner to start - progress {progress:.2f}{detail}"
            raise RunnerError(message) from None
        match message:
            case LoadProgress(fraction):
                progress = fraction
            case Loaded(info):
                return info
            case LoadFailed() | None:
                return message


async def _stop(process: asyncio.subprocess.Process, *, grace: float) -> None:
    """Wait up to `grace` seconds for the process to exit, then kill it."""
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


async def _reap(process: asyncio.subprocess.Process, transport: asyncio.WriteTransport,
                stderr_task: asyncio.Task[None], *, grace: float) -> None:
    transport.close()
    await _stop(process, grace=grace)
    await stderr_task


async def _watch_stderr(process: asyncio.subprocess.Process, last_error: list[str]) -> None:
    """Forward the runner's stderr to the log and remember the lines that explain a failure."""
    assert process.stderr is not None
    kept = 0
    while line := await process.stderr.readline():
        text = line.decode("utf-8", errors="replace").rstrip()
        log.debug("runner %d: %s", process.pid, text)
        if any(marker in text for marker in ERROR_MARKERS):
            last_error.append(text)
            kept += len(text)
            while kept > LAST_ERROR_LIMIT and len(last_error) > 1:
                kept -= len(last_error.pop(0))
