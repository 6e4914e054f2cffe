"""Speculative decoding: a small draft model proposes the next tokens of generating sequences, and the step
loop verifies them all in one decode of the model (llama.cpp's speculative examples, llama-server's draft).

The draft model has a context of its own with the same slots (sequence ids) and window. Its cache follows
each slot's lazily: before proposing, it keeps the longest prefix it shares with the slot's tokens and
evaluates the rest together with the sequence's last sampled token. It then proposes greedily, one token
per decode for every drafting sequence at once, up to `draft_num_predict` tokens, and stops for a sequence
at the first token it is not confident of (probability below `DRAFT_P_MIN`, llama.cpp's default), which it
leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.runner.llama import Batch, LlamaContext, LlamaError, LlamaModel
from engine.runner.slots import common_prefix_len

DRAFT_P_MIN = 0.75
DRAFT_TOP_K = 10


@dataclass
class Proposal:
    """What a sequence asks of the draft: its slot's tokens, the token it sampled last, and how many it may
    be offered (never past num_predict or the window)."""

    seq_id: int
    cached: list[int]  # the model's cache of this sequence
    last: int
    limit: int


class Drafter:
    def __init__(self, model: LlamaModel, ctx: LlamaContext, *, target: LlamaModel, num_predict: int,
                 num_batch: int, parallel: int, shared_cells: int | None = None) -> None:
        if model.n_vocab != target.n_vocab or model.bos != target.bos or any(
                model.piece(t) != target.piece(t) for t in range(0, model.n_vocab, max(model.n_vocab // 64, 1))):
            raise LlamaError("the draft model's vocabulary does not match the model's")
        self.model = model
        self.ctx = ctx
        self.num_predict = num_predict
        self.num_batch = num_batch
        self.batch = Batch(ctx.n_batch)
        self.cached: list[list[int]] = [[] for _ in range(parallel)]  # what the draft's cache holds, per slot
        # The cells of a pool the slots share (kv_unified), as the model's do: the draft holds no shared
        # prefixes, so it keeps only the sequences it drafts for, as many as fit (see `_fitting`).
        self.shared_cells = shared_cells

    def propose(self, proposals: list[Proposal]) -> dict[int, list[int]]:
        """Draft tokens for each sequence (by sequence id); a sequence whose draft cache lags behind by more
        than a batch only catches up this step and gets none."""
        self.batch.clear()
        rows: dict[int, int] = {}  # seq id -> its logits row in the batch
        # the model checks the sampled token and the drafts in one batch of a sequence: at most num_batch
        limits = {p.seq_id: min(p.limit, self.num_predict, self.num_batch - 1) for p in proposals}
        if self.shared_cells is not None:
            proposals = self._fitting(proposals, limits)
        for proposal in proposals:
            held = self.cached[proposal.seq_id]
            keep = common_prefix_len(held, proposal.cached)
            if keep < len(held):
                if not self.ctx.seq_rm(proposal.seq_id, keep, -1):
                    self.ctx.seq_rm(proposal.seq_id, -1, -1)
                    keep = 0
                del held[keep:]
            missing = proposal.cached[keep:]
            drafting = limits[proposal.seq_id] > 0 and len(missing) < self.num_batch
            feed = missing + [proposal.last] if drafting else missing[: self.num_batch]
            for offset, token in enumerate(feed):
                last = self.batch.add(token, keep + offset, proposal.seq_id, drafting and offset == len(feed) - 1)
            held.extend(feed)
            if drafting:
                rows[proposal.seq_id] = last
        drafts: dict[int, list[int]] = {seq_id: [] for seq_id in rows}
        while self.batch.n_tokens:
            try:
                self.ctx.decode(self.batch)
            except LlamaError:
                self.reset()
                raise
            self.batch.clear()
            picks = []
            for seq_id, row in rows.items():
                token, probability = self._best(row)
                if probability < DRAFT_P_MIN:
                    continue
                drafts[seq_id].append(token)
                if len(drafts[seq_id]) < limits[seq_id]:
                    picks.append((seq_id, token))
            rows = {}
            for seq_id, token in picks:
                rows[seq_id] = self.batch.add(token, len(self.cached[seq_id]), seq_id, True)
                self.cached[seq_id].append(token)
        return {seq_id: tokens for seq_id, tokens in drafts.items() if tokens}

    def _fitting(self, proposals: list[Proposal], limits: dict[int, int]) -> list[Proposal]:
        """In a shared pool: the proposals, in the order given, whose tokens and drafts fit in it together;
        the draft's cache of every other slot is emptied."""
        assert self.shared_cells is not None
        fitting, cells = [], 0
        for proposal in proposals:
            needed = len(proposal.cached) + 1 + max(limits[proposal.seq_id], 0)
            if cells + needed <= self.shared_cells:
                fitting.append(proposal)
                cells += needed
        kept = {proposal.seq_id for proposal in fitting}
        for seq_id, held in enumerate(self.cached):
            if seq_id not in kept and held:
                self.ctx.seq_rm(seq_id, -1, -1)
                held.clear()
        return fitting

    def _best(self, row: int) -> tuple[int, float]:
        """The draft's best token and its probability among its DRAFT_TOP_K best (llama.cpp's draft sampler
        keeps the top 10 before it weighs them)."""
        logits = self.ctx.logits(row)
        top = logits[np.argpartition(logits, -DRAFT_TOP_K)[-DRAFT_TOP_K:]]
        best = float(top.max())
        return int(np.argmax(logits)), 1.0 / float(np.exp(top - best).sum())

    def reset(self) -> None:
        """Forget the draft cache (after a failed decode, what it holds is unknown)."""
        self.ctx.clear_memory()
        for held in self.cached:
            held.clear()

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()
        self.model.close()
