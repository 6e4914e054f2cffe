"""The continuous-batching step loop (Ollama's Go runner, era A/B, runtime.md §7.2).

Each step builds one batch across every running sequence: up to `num_batch` pending prompt tokens per
sequence, or the one token it sampled last step. After a single llama_decode, each sequence whose
pending tokens are all in the cache samples its next token from its own logits row. New requests take a
slot between steps, so they join while others generate.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import deque
from collections.abc import Callable

from engine.protocol import CompletionRequest, Done, Failure, Reply, Token
from engine.runner.draft import Drafter, Proposal
from engine.runner.llama import Batch, KVCacheFull, LlamaContext, LlamaError, LlamaModel
from engine.runner.media import Image, MediaError, Projector
from engine.runner.sampling import Sampler, SamplingParams, token_logprobs
from engine.runner.sequence import Sequence
from engine.runner.slots import SlotPool, common_prefix_len
from engine.runner.text import TextStream
from engine.runner.window import INPUT_TOO_LONG, PromptError, beyond, prompt_tokens

# A sequence in a step's batch: where its tokens start in its slot, and how many came from its pending ones.
Scheduled = tuple[Sequence, int, int]
log = logging.getLogger("engine.runner")


def fit_prompt(tokens: list[int], num_ctx: int, num_keep: int, truncate: bool) -> list[int]:
    """Keep the first `num_keep` tokens and as much of the tail as fits the window."""
    if len(tokens) <= num_ctx:
        return tokens
    if not truncate:
        raise PromptError(INPUT_TOO_LONG, 400)
    return tokens[:num_keep] + tokens[len(tokens) - (num_ctx - num_keep):]


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class StepLoop:
    def __init__(self, model: LlamaModel, ctx: LlamaContext, slots: SlotPool, *, num_ctx: int, num_batch: int,
                 emit: Callable[[Reply], None], projector: Projector | None = None,
                 drafter: Drafter | None = None) -> None:
        self.model = model
        self.projector = projector
        self.drafter = drafter
        self.ctx = ctx
        self.slots = slots
        self.num_ctx = num_ctx
        self.num_batch = num_batch
        self.emit = emit
        self.batch = Batch(ctx.n_batch)
        self.waiting: deque[tuple[int, CompletionRequest]] = deque()
        self.running: list[Sequence] = []

    @property
    def idle(self) -> bool:
        return not self.waiting and not self.running

    def _run(self, seq: Sequence) -> None:
        """Add a sequence to the running ones, kept in sequence-id order: with a KV cache per sequence,
        llama.cpp splits a batch into one micro-batch per run of consecutive ids, in the order they appear,
        so batches built in this order take each step in as few micro-batches as they can."""
        bisect.insort(self.running, seq, key=lambda s: s.slot.seq_id)

    def submit(self, request_id: int, request: CompletionRequest) -> None:
        self.waiting.append((request_id, request))

    def cancel(self, request_id: int) -> None:
        """The client went away: forget the request; a running one leaves its slot at the next step."""
        self.waiting = deque(item for item in self.waiting if item[0] != request_id)
        for seq in self.running:
            if seq.request_id == request_id:
                seq.cancelled = True

    def step(self) -> None:
        for seq in [s for s in self.running if s.cancelled]:
            self._retire(seq)
        while self.waiting and self.slots.has_idle():
            self._admit(*self.waiting.popleft())
        self._copy_awaited_prefixes()
        evaluated_image = self._evaluate_image()
        drafts = self._draft()
        scheduled = self._fill_batch(drafts)
        if not scheduled:
            if not evaluated_image and self.slots.shared_cells is not None:
                self._unblock()
            return
        try:
            self.ctx.decode(self.batch)
        except LlamaError as err:
            if isinstance(err, KVCacheFull) and self.slots.shared_cells is not None:
                # The pool was fuller than the slots' count of it: the batch goes again next step, with room.
                self._take_back(scheduled)
                self._unblock()
                return
            for seq, _, _ in scheduled:
                self.slots.truncate(seq.slot, 0)
                self._fail(seq, str(err))
            return
        for seq, _, _ in scheduled:
            if len(seq.outputs) > 1:
                self._verify(seq, drafts[seq.slot.seq_id])
            elif seq.outputs:
                self._sample(seq, seq.outputs[0])

    # --- admission ------------------------------------------------------------------------------

    def _admit(self, request_id: int, request: CompletionRequest) -> None:
        if request.images and self.projector is not None:
            self._admit_with_images(request_id, request)
            return
        options = request.options
        num_keep = options.get("num_keep", 4)
        try:
            tokens = prompt_tokens(self.model, request.prompt, self.num_ctx, num_keep, request.truncate)
            num_keep = min((len(tokens) if num_keep < 0 else num_keep) + self.model.add_bos, self.num_ctx - 1)
            if not tokens:
                raise PromptError("the prompt is empty", 400)
            tokens = fit_prompt(tokens, self.num_ctx, num_keep, request.truncate)
            sampler = Sampler(self.model, SamplingParams.from_options(options), num_ctx=self.num_ctx,
                              grammar=request.grammar)
        except PromptError as err:
            self.emit(Reply(request_id, Failure(str(err), err.status)))
            return
        except LlamaError as err:  # e.g. a grammar that does not parse
            self.emit(Reply(request_id, Failure(str(err))))
            return
        sampler.accept_prompt(tokens)
        slot = self.slots.acquire(tokens)
        cached = len(slot.tokens)
        limit = 10 * self.num_ctx  # Ollama's cap for open-ended requests
        num_predict = options.get("num_predict", -1)
        seq = Sequence(
            request_id=request_id, prompt_len=len(tokens), sampler=sampler,
            text=TextStream(options.get("stop") or []), slot=slot, pending=tokens[cached:],
            num_predict=num_predict if 0 < num_predict <= limit else limit, num_keep=num_keep,
            shift=request.shift, logprobs=request.logprobs, top_logprobs=request.top_logprobs,
            cached_tokens=cached, prompt=tokens)
        self._await_shared_prefix(seq)
        self._run(seq)

    def _await_shared_prefix(self, seq: Sequence) -> None:
        """If a running sequence is about to evaluate a longer prefix of this prompt than any cache holds
        (requests with one long system prompt, arriving together), wait for it and copy that prefix
        rather than evaluate it a second time."""
        cached = len(seq.slot.tokens)
        best, best_length = None, cached + self.slots.copy_threshold - 1
        for other in self.running:
            if other.awaits is not None or len(other.slot.tokens) >= len(other.prompt):
                continue  # it waits itself, or its prompt is in its cache already (acquire() looked there)
            length = min(common_prefix_len(other.prompt, seq.prompt), len(seq.prompt) - 1)
            if length > best_length:
                best, best_length = other, length
        if best is not None:
            seq.awaits, seq.awaited_length = best, best_length

    def _copy_awaited_prefixes(self) -> None:
        """Sequences waiting for a prefix: copy it once its slot holds it (everything in a slot at the start
        of a step has been decoded), or stop waiting when the other sequence has gone without it."""
        for seq in self.running:
            other = seq.awaits
            if other is None:
                continue
            length = seq.awaited_length
            if other.slot.tokens[:length] == seq.prompt[:length]:
                self.slots.copy_prefix(other.slot, seq.slot, length)
            elif other in self.running:
                continue
            seq.awaits = None
            seq.cached_tokens = len(seq.slot.tokens)
            seq.pending = seq.prompt[seq.cached_tokens:]

    def _admit_with_images(self, request_id: int, request: CompletionRequest) -> None:
        """A prompt with images takes a slot like any prompt (an image in the cache at the same place is a
        cached prefix); its images are evaluated between steps (`_evaluate_image`). No context shift: it
        would cut into images."""
        assert self.projector is not None
        options = request.options
        sampler = prepared = None
        try:
            if beyond(self.model, request.prompt, self.num_ctx):  # images leave no room to truncate
                raise PromptError(INPUT_TOO_LONG, 400)
            prepared = self.projector.prepare(request.prompt, request.images, self.num_ctx)
            sampler = Sampler(self.model, SamplingParams.from_options(options), num_ctx=self.num_ctx,
                              grammar=request.grammar)
        except (MediaError, LlamaError, PromptError) as err:
            if prepared is not None:
                prepared.close()
            self.emit(Reply(request_id, Failure(str(err), getattr(err, "status", 500))))
            return
        sampler.accept_prompt(prepared.text_tokens)
        slot = self.slots.acquire(prepared.tokens)
        cached, pending, images = prepared.remaining(len(slot.tokens))
        self.slots.truncate(slot, cached)
        limit = 10 * self.num_ctx
        num_predict = options.get("num_predict", -1)
        self._run(Sequence(
            request_id=request_id, prompt_len=len(prepared.tokens), sampler=sampler,
            text=TextStream(options.get("stop") or []), slot=slot, pending=pending,
            num_predict=num_predict if 0 < num_predict <= limit else limit, num_keep=0, shift=False,
            logprobs=request.logprobs, top_logprobs=request.top_logprobs, cached_tokens=cached,
            prompt=prepared.tokens, images=deque(images), prepared=prepared))

    def _evaluate_image(self) -> bool:
        """One batch of image embeddings per step, for one sequence whose text before an image is in its
        cache (taking turns), so that the others' decoding waits one such batch at most; an image is first
        encoded by the projector in one pass. A prompt that ends with an image samples its first token from
        the image's last logits at once, before the step's decode replaces them. In a shared pool, a sequence
        whose batch finds no room there waits. Whether a batch was evaluated."""
        if self.projector is None:
            return False
        ready = [seq for seq in self.running if seq.images and not seq.pending and seq.awaits is None]
        for seq in sorted(ready, key=lambda s: s.image_turns):
            image, following = seq.images[0]
            cells = image.next_count(self.num_batch)
            if self.slots.shared_cells is not None and not self._claim(seq, cells):
                continue
            seq.image_turns += 1
            self._evaluate_image_batch(seq, image, following, cells)
            return True
        return False

    def _evaluate_image_batch(self, seq: Sequence, image: Image, following: list[int], cells: int) -> None:
        assert self.projector is not None
        last = len(seq.images) == 1 and not following
        try:
            if image.embeddings is None:
                self.projector.encode(image)
            done = self.projector.decode_next(self.ctx, image, seq_id=seq.slot.seq_id,
                                              position=len(seq.slot.tokens), limit=self.num_batch,
                                              logits_last=last)
        except (MediaError, LlamaError) as err:
            if isinstance(err, KVCacheFull) and self.slots.shared_cells is not None:
                self._unblock()  # the pool was fuller than counted: this batch goes again
                return
            self.slots.truncate(seq.slot, 0)
            self._fail(seq, str(err))
            return
        seq.slot.tokens.extend(done)
        seq.slot.surplus += cells - len(done)  # M-RoPE: every embedding takes a cell, positions come last
        if image.decoded < image.n_tokens:
            return
        seq.images.popleft()
        seq.pending = following
        image.embeddings = None
        if last:
            self._sample(seq, -1)  # the image's last embedding: the last output of that decode

    # --- one step -------------------------------------------------------------------------------

    def _draft(self) -> dict[int, list[int]]:
        """The draft model's proposals (by sequence id) for the sequences that are generating: their only
        pending token is the one they sampled last. Image prompts have positions the draft cannot see."""
        if self.drafter is None:
            return {}
        proposals = []
        # in a shared pool the draft's cells go to the oldest sequences first, as the model's do
        shared = self.slots.shared_cells is not None
        for seq in sorted(self.running, key=lambda s: s.started) if shared else self.running:
            if seq.generated == 0 or len(seq.pending) != 1 or seq.prepared is not None:
                continue
            room = min(seq.num_predict - seq.generated, self.num_ctx - len(seq.slot.tokens)) - 1
            proposals.append(Proposal(seq.slot.seq_id, seq.slot.tokens, seq.pending[0], room))
        if not proposals:
            return {}
        try:
            return self.drafter.propose(proposals)
        except LlamaError as err:  # the sequences go on without drafts
            log.warning("draft model: %s", err)
            return {}

    def _fill_batch(self, drafts: dict[int, list[int]]) -> list[Scheduled]:
        self.batch.clear()
        ready = []
        for seq in list(self.running):
            if seq.awaits is not None or not seq.pending:  # waiting for a prefix, or at an image
                continue
            if len(seq.slot.tokens) >= self.num_ctx:  # the window is full
                if not seq.shift:
                    self._finish(seq, "length")
                    continue
                seq.pending[:0] = self.slots.shift(seq.slot, seq.num_keep)
            ready.append(seq)
        allowed = self._share_cells(ready, drafts) if self.slots.shared_cells is not None else None
        scheduled = []
        for seq in ready:
            slot = seq.slot
            proposed = drafts.get(slot.seq_id, [])
            size = self._wanted(seq, proposed) if allowed is None else allowed.get(seq.request_id, 0)
            if size == 0:  # waits for cells of the shared pool
                continue
            if proposed and len(seq.pending) == 1 and size == len(proposed) + 1:
                chunk, outputs = seq.pending + proposed, len(proposed) + 1  # the sampled token and the drafts
            else:
                chunk = seq.pending[:size]
                # the end of the prompt, or a sampled token (not text before an image)
                outputs = 1 if len(chunk) == len(seq.pending) and not seq.images else 0
            position = len(slot.tokens)
            seq.outputs = [self.batch.add(token, position + offset, slot.seq_id, offset >= len(chunk) - outputs)
                           for offset, token in enumerate(chunk)][len(chunk) - outputs:]
            taken = min(len(chunk), len(seq.pending))
            slot.tokens.extend(chunk)
            del seq.pending[:taken]
            scheduled.append((seq, position, taken))
        return scheduled

    def _take_back(self, scheduled: list[Scheduled]) -> None:
        """Undo a step's batch that was not decoded: its tokens are pending again (drafts are dropped)."""
        for seq, start, taken in scheduled:
            seq.pending[:0] = seq.slot.tokens[start:start + taken]
            del seq.slot.tokens[start:]
            seq.outputs = []

    def _wanted(self, seq: Sequence, proposed: list[int]) -> int:
        if proposed and len(seq.pending) == 1:
            return len(proposed) + 1
        return min(self.num_batch, self.num_ctx - len(seq.slot.tokens), len(seq.pending))

    # --- a shared (unified) KV pool -------------------------------------------------------------
    # Every sequence keeps its whole num_ctx window, but together they hold at most the pool's cells.
    # When they need more, idle slots' cached prefixes go first; then the oldest sequences go first: the
    # youngest give their cells back and wait, to evaluate their tokens again later (their sampler keeps
    # its history, so they go on where they stopped). A sequence with nothing cached starts only once all
    # its pending tokens fit beside a token more for each older one, so it is not evicted again at once.
    # A prompt with images is evaluated again from its pieces, its images encoded again.

    def _share_cells(self, ready: list[Sequence], drafts: dict[int, list[int]]) -> dict[int, int]:
        """Tokens each ready sequence may add to this step's batch (a drafting sequence that gets fewer than
        its sampled token and drafts leaves the drafts out)."""
        assert self.slots.shared_cells is not None
        allowed: dict[int, int] = {}
        free = self.slots.free_cells()  # neither held by a slot nor promised to a sequence this step
        promised = 0
        for age, seq in enumerate(sorted(ready, key=lambda s: s.started)):
            wanted = self._wanted(seq, drafts.get(seq.slot.seq_id, []))
            needed = wanted if seq.slot.tokens else min(seq.left_to_evaluate() + age, self.slots.shared_cells)
            if free < needed:
                self._claim(seq, needed + promised)
                free = self.slots.free_cells() - promised
            if seq.slot.tokens or free >= needed:
                size = max(0, min(wanted, free, self.batch.capacity - promised))
                allowed[seq.request_id] = size
                free -= size
                promised += size
        return allowed

    def _claim(self, seq: Sequence, cells: int) -> bool:
        """Free `cells` cells of the pool if that can be done without taking them from an older sequence:
        idle slots' cached prefixes go first, then younger sequences' cells, the youngest first."""
        if self.slots.free_cells() >= cells:
            return True
        self.slots.evict_idle(cells)
        while self.slots.free_cells() < cells:
            victim = self._youngest_holder(younger_than=seq)
            if victim is None:
                return False
            self._give_back(victim)
        return True

    def _youngest_holder(self, younger_than: Sequence) -> Sequence | None:
        holders = [seq for seq in self.running if seq.started > younger_than.started and seq.slot.tokens]
        return max(holders, key=lambda s: s.started, default=None)

    def _give_back(self, seq: Sequence) -> None:
        """Empty a sequence's cache; it evaluates those tokens again when there is room. A prompt with images
        starts again from its pieces (images are not tokens), followed by the answer so far."""
        if seq.prepared is None:
            seq.pending[:0] = seq.slot.tokens
        else:
            _, lead, images = seq.prepared.remaining(0)
            for image, _ in images:
                image.decoded = image.filled = 0
            (images[-1][1] if images else lead).extend(seq.sampled)
            seq.pending, seq.images = lead, deque(images)
        self.slots.truncate(seq.slot, 0)
        seq.outputs = []

    def _unblock(self) -> None:
        """Nothing could go on for want of cells, or llama.cpp found the pool fuller than the slots' count
        of it (an M-RoPE image's cells, say): idle prefixes go; else, while an embedding holds cells, wait
        for it; else the youngest of several sequences holding cells gives them back; else the youngest
        waiting sequence fails, as one sequence's cells and its own need are more than the pool has."""
        waiting = [seq for seq in self.running if seq.awaits is None and (seq.pending or seq.images)]
        if not waiting:
            return
        idle = [slot for slot in self.slots.slots if not slot.busy and slot.tokens]
        if idle:
            for slot in idle:
                self.slots.truncate(slot, 0)
            return
        running = {seq.slot.seq_id for seq in self.running}
        if any(slot.surplus for slot in self.slots.slots if slot.busy and slot.seq_id not in running):
            return  # an embedding decoded between steps holds cells: they come back when it ends
        holders = [seq for seq in self.running if seq.slot.tokens]
        if len(holders) > 1:
            self._give_back(max(holders, key=lambda s: s.started))
            return
        victim = max(waiting, key=lambda s: s.started)
        self.slots.truncate(victim.slot, 0)
        self._fail(victim, "no KV cache space left for this sequence")

    def make_room(self, cells: int) -> None:
        """Free `cells` cells of a shared pool for work outside the step loop (embeddings)."""
        if self.slots.shared_cells is None:
            return
        self.slots.evict_idle(cells)
        for seq in sorted(self.running, key=lambda s: s.started, reverse=True):
            if self.slots.free_cells() >= cells:
                return
            if seq.slot.tokens:
                self._give_back(seq)

    def _verify(self, seq: Sequence, proposed: list[int]) -> None:
        """Sample at each drafted position in turn while the model agrees with the draft: every sample is
        the model's own pick given the tokens before it, so the output is what decoding one token at a time
        gives. Drafts after the first disagreement leave the cache."""
        picks = []
        for index, draft in zip(seq.outputs, [*proposed, None], strict=True):
            token = seq.sampler.sample(self.ctx, index)
            picks.append(token)
            if token != draft or self.model.is_eog(token):
                break
        accepted = len(picks) - 1
        seq.draft_proposed += len(proposed)
        seq.draft_accepted += accepted
        start = len(seq.slot.tokens) - len(seq.outputs)  # where this step's first token went
        self.slots.truncate(seq.slot, start + 1 + accepted)
        for i, token in enumerate(picks):
            if not self._take(seq, token, seq.outputs[i], ahead=accepted - i):
                return

    def _sample(self, seq: Sequence, index: int) -> None:
        self._take(seq, seq.sampler.sample(self.ctx, index), index, ahead=0)

    def _take(self, seq: Sequence, token: int, index: int, *, ahead: int) -> bool:
        """One sampled token: its text out, the sequence ended or not (False when ended). `ahead`: tokens
        the cache holds from this one on (accepted drafts), dropped if the sequence ends here."""
        seq.generated += 1
        if seq.first_token_at is None:
            seq.first_token_at = time.perf_counter()
        if self.model.is_eog(token):  # ends the sequence; its text is never shown
            self._finish(seq, "stop", ahead)
            return False
        logprobs = None
        if seq.logprobs:
            row = self.ctx.logits(index)
            logprobs = [token_logprobs(self.model, row, token, seq.top_logprobs)]
        text = seq.text.push(self.model.piece(token))
        if text or logprobs:
            self.emit(Reply(seq.request_id, Token(text, logprobs)))
        if seq.text.stopped:
            # Forget the cached tokens that only produced the cut-off text; this token isn't cached yet.
            self._finish(seq, "stop", ahead + max(seq.text.tokens_after_stop - 1, 0))
            return False
        if ahead == 0:
            seq.pending.append(token)
        seq.sampled.append(token)
        if seq.generated >= seq.num_predict:
            self._finish(seq, "length", ahead)
            return False
        return True

    # --- endings --------------------------------------------------------------------------------

    def _finish(self, seq: Sequence, reason: str, uncached: int = 0) -> None:
        """End the sequence; `uncached`: tokens at the end of its cache that did not make the output."""
        if uncached > 0:
            self.slots.truncate(seq.slot, len(seq.slot.tokens) - uncached)
        text = seq.text.flush()
        if text:
            self.emit(Reply(seq.request_id, Token(text)))
        now = time.perf_counter()
        first = seq.first_token_at or now
        self.emit(Reply(seq.request_id, Done(
            done_reason=reason, prompt_eval_count=seq.prompt_len,
            prompt_eval_duration=_ns(first - seq.started), eval_count=seq.generated,
            eval_duration=_ns(now - first), cached_tokens=seq.cached_tokens, draft_count=seq.draft_proposed,
            draft_accepted=seq.draft_accepted)))
        self._retire(seq)

    def _fail(self, seq: Sequence, message: str) -> None:
        self.emit(Reply(seq.request_id, Failure(message)))
        self._retire(seq)

    def _retire(self, seq: Sequence) -> None:
        self.running.remove(seq)
        if seq.images:  # an image cut short may have cells past the slot's tokens (M-RoPE fills them last)
            self.ctx.seq_rm(seq.slot.seq_id, len(seq.slot.tokens), -1)
        if seq.prepared is not None:
            seq.prepared.close()
        self.slots.release(seq.slot)
        seq.sampler.close()

    def close(self) -> None:
        for seq in list(self.running):
            self._retire(seq)
        self.batch.close()
