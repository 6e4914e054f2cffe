"""The runner's side of the command channel.

The main thread owns llama.cpp and every send: it runs the step loop and, between steps, drains the
commands that a reader thread receives. When nothing is running it blocks on the command queue.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections import deque
from collections.abc import Callable, Generator

import llama_cpp as lc

from engine.protocol import (
    FRAME_HEADER,
    Cancel,
    Complete,
    Detokenize,
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
    Shutdown,
    Tokenize,
    decode_body,
    encode_frame,
    invalid_token_message,
)
from engine.runner.embed import PooledEmbedder, SlotEmbedder
from engine.runner.llama import LlamaError, init_backend
from engine.runner.load import LoadedModel, embed_sequences, load_model
from engine.runner.loop import StepLoop
from engine.runner.rerank import NOT_A_RERANKER, Reranker
from engine.runner.slots import SlotPool
from engine.runner.window import PromptError, bounded_tokens

log = logging.getLogger("engine.runner")


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.commands: queue.Queue[object] = queue.Queue()
        self._outgoing = bytearray()

    def send(self, message: object) -> None:
        self.post(message)
        self.flush()

    def post(self, message: object) -> None:
        """Queue a message for the next flush: a step's tokens for every sequence go in one write, so the
        daemon wakes once per step rather than once per token."""
        self._outgoing += encode_frame(message)

    def flush(self) -> None:
        if self._outgoing:
            self.sock.sendall(self._outgoing)
            self._outgoing.clear()

    def receive(self) -> object | None:
        """The next message, or None when the daemon has gone."""
        header = self._read_exactly(FRAME_HEADER.size)
        if header is None:
            return None
        body = self._read_exactly(FRAME_HEADER.unpack(header)[0])
        return None if body is None else decode_body(body)

    def _read_exactly(self, size: int) -> bytes | None:
        data = bytearray()
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return bytes(data)

    def start_reader(self) -> None:
        def read() -> None:
            while (message := self.receive()) is not None:
                self.commands.put(message)
            self.commands.put(Shutdown())  # the daemon closed its end

        threading.Thread(target=read, name="command-reader", daemon=True).start()


class Runner:
    """Serves one loaded model: commands in between units of work, blocking on the queue when idle."""

    def __init__(self, channel: Channel, loaded: LoadedModel) -> None:
        self.channel = channel
        self.loaded = loaded

    def serve(self) -> None:
        commands = self.channel.commands
        while True:
            pending = [commands.get()] if self.idle else []
            while not commands.empty():
                pending.append(commands.get_nowait())
            for command in pending:
                match command:
                    case Shutdown():
                        return
                    case Tokenize(request_id, text, add_special, parse_special, head, tail):
                        self.reply(request_id, bounded_tokens(self.loaded.model, text, head=head, tail=tail,
                                                              add_special=add_special, parse_special=parse_special))
                    case Detokenize(request_id, tokens):
                        self.reply(request_id, self.detokenize(tokens))
                    case _:
                        self.handle(command)
            self.work()
            self.channel.flush()

    @property
    def idle(self) -> bool:
        return True

    def detokenize(self, tokens: list[int]) -> str | Failure:
        """Ids from a client (a request's `context`); one outside the vocabulary would abort llama.cpp."""
        n_vocab = self.loaded.model.n_vocab
        bad = next((t for t in tokens if not 0 <= t < n_vocab), None)
        if bad is not None:
            return Failure(invalid_token_message(bad, n_vocab), 400)
        return self.loaded.model.detokenize(tokens)

    def handle(self, command: object) -> None:
        raise NotImplementedError

    def work(self) -> None:
        """One unit of work between command checks."""

    def reply(self, request_id: int, payload: object) -> None:
        self.channel.send(Reply(request_id, payload))

    def close(self) -> None:
        self.loaded.close()


class EmbedJob:
    """One embedding (or rerank) request, advanced a decode at a time between commands, so a cancel stops it."""

    def __init__(self, request_id: int, steps: Generator[None, None, EmbedResult | RerankResult],
                 release: Callable[[], None] = lambda: None) -> None:
        self.request_id = request_id
        self.steps = steps
        self.release = release

    def advance(self) -> EmbedResult | RerankResult | Failure | None:
        """The outcome once the request is done, else None."""
        try:
            next(self.steps)
            return None
        except StopIteration as done:
            return done.value
        except PromptError as err:
            return Failure(str(err), err.status)
        except LlamaError as err:
            return Failure(str(err))

    def close(self) -> None:
        self.steps.close()
        self.release()


class CompletionRunner(Runner):
    def __init__(self, channel: Channel, loaded: LoadedModel) -> None:
        super().__init__(channel, loaded)
        self.slots = SlotPool(loaded.ctx, loaded.info.parallel, loaded.info.num_ctx, shared=loaded.info.kv_unified)
        self.loop = StepLoop(loaded.model, loaded.ctx, self.slots, num_ctx=loaded.info.num_ctx,
                             num_batch=loaded.num_batch, emit=channel.post, projector=loaded.projector,
                             drafter=loaded.drafter)
        self.embedder = SlotEmbedder(loaded.model, loaded.ctx, self.loop.batch, num_ctx=loaded.info.num_ctx,
                                     make_room=self.loop.make_room)
        self.waiting_embeds: deque[Embed] = deque()  # until a slot is idle
        self.embeds: list[EmbedJob] = []  # each in a borrowed slot

    @property
    def idle(self) -> bool:
        return self.loop.idle and not self.waiting_embeds and not self.embeds

    def handle(self, command: object) -> None:
        match command:
            case Complete(request_id, request):
                self.loop.submit(request_id, request)
            case Cancel(request_id):
                self.loop.cancel(request_id)
                self.waiting_embeds = deque(e for e in self.waiting_embeds if e.request_id != request_id)
                for job in [j for j in self.embeds if j.request_id == request_id]:
                    self.embeds.remove(job)
                    job.close()
            case Embed():
                self.waiting_embeds.append(command)
            case Rerank(request_id, _):
                self.reply(request_id, Failure(NOT_A_RERANKER, 400))
            case _:
                log.warning("unknown command %r", command)

    def work(self) -> None:
        while self.waiting_embeds and (slot := self.slots.borrow_empty()) is not None:
            embed = self.waiting_embeds.popleft()
            steps = self.embedder.embed(embed.inputs, slot)
            self.embeds.append(EmbedJob(embed.request_id, steps, lambda slot=slot: self.slots.release(slot)))
        for job in list(self.embeds):
            outcome = job.advance()
            if outcome is not None:
                self.embeds.remove(job)
                job.close()
                self.reply(job.request_id, outcome)
        self.loop.step()

    def close(self) -> None:
        for job in self.embeds:
            job.close()
        self.loop.close()
        super().close()


class EmbeddingRunner(Runner):
    def __init__(self, channel: Channel, loaded: LoadedModel) -> None:
        super().__init__(channel, loaded)
        self.embedder = PooledEmbedder(loaded.model, loaded.ctx, num_ctx=loaded.info.num_ctx,
                                       max_sequences=embed_sequences(loaded.num_batch))
        # A reranker's pooled output is its scores, not a vector: it reranks and does not embed.
        self.reranker = Reranker(self.embedder) if loaded.ctx.pooling_type == lc.LLAMA_POOLING_TYPE_RANK else None
        self.jobs: deque[EmbedJob] = deque()  # one at a time, in order

    @property
    def idle(self) -> bool:
        return not self.jobs

    def handle(self, command: object) -> None:
        match command:
            case Complete(request_id, _):
                self.reply(request_id, Failure("this model does not support generate", 400))
            case Embed(request_id, _) if self.reranker is not None:
                self.reply(request_id, Failure("this model does not support embeddings", 400))
            case Embed(request_id, inputs):
                self.jobs.append(EmbedJob(request_id, self.embedder.embed(inputs)))
            case Rerank(request_id, _) if self.reranker is None:
                self.reply(request_id, Failure(NOT_A_RERANKER, 400))
            case Rerank(request_id, query, documents, truncate):
                self.jobs.append(EmbedJob(request_id, self.reranker.rerank(query, documents, truncate)))
            case Cancel(request_id):
                for job in [j for j in self.jobs if j.request_id == request_id]:
                    self.jobs.remove(job)
                    job.close()
            case _:
                log.warning("unknown command %r", command)

    def work(self) -> None:
        if not self.jobs:
            return
        job = self.jobs[0]
        outcome = job.advance()
        if outcome is not None:
            self.jobs.popleft()
            job.close()
            self.reply(job.request_id, outcome)

    def close(self) -> None:
        for job in self.jobs:
            job.close()
        self.embedder.close()
        super().close()


def run(sock: socket.socket) -> int:
    """Load the model the daemon asks for, then serve it until told to stop; returns the exit status."""
    channel = Channel(sock)
    spec = channel.receive()
    if not isinstance(spec, LoadSpec):
        return 2
    init_backend()
    progress = [-1.0]

    def report(fraction: float) -> None:
        if fraction - progress[0] >= 0.01 or fraction >= 1.0:  # no need to flood the channel
            progress[0] = fraction
            channel.send(LoadProgress(fraction))

    try:
        loaded = load_model(spec, on_progress=report)
    except LlamaError as err:
        channel.send(LoadFailed(f"error loading model: {err}"))
        return 1
    channel.send(Loaded(loaded.info))
    channel.start_reader()
    runner_class = EmbeddingRunner if spec.embedding else CompletionRunner
    runner = runner_class(channel, loaded)
    try:
        runner.serve()
    finally:
        runner.close()
    return 0
