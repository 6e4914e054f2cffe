"""KV slots: one llama sequence id each, with the tokens its KV cache holds (the prefix cache)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from engine.runner.llama import LlamaContext

_use_clock = itertools.count()
# Prompt tokens that must be saved to make copying a cached prefix from another slot worth it when every
# sequence has a KV stream of its own: llama.cpp then copies the whole stream (num_ctx cells, every layer),
# which costs about as much as evaluating a few tokens of a 4096 window (bench/prefix.py measures it).
# In one shared stream a copy only adds the target to the prefix's cells, so any saving is worth it.
COPY_OVER_STREAMS = 32


@dataclass
class Slot:
    seq_id: int
    tokens: list[int] = field(default_factory=list)  # exactly what the KV cache holds, position i at index i
    busy: bool = False
    last_used: int = 0
    # Leading positions whose KV cells other sequences may use too (a prefix copied in or out, in one KV
    # stream): shifting positions in place would move them under the other sequences' feet.
    shared: int = 0
    # KV cells beyond one per position: an M-RoPE image has more embeddings than positions. Kept until the
    # cache is emptied (an over-count after a partial cut only makes a shared pool look fuller).
    surplus: int = 0


def common_prefix_len(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    low, high = 0, n  # a[:low] == b[:low] and a[:high] != b[:high]; list slices compare in C
    while high - low > 1:
        mid = (low + high) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid
    return low


class SlotPool:
    def __init__(self, ctx: LlamaContext, count: int, num_ctx: int, *, shared: bool = False) -> None:
        self.ctx = ctx
        self.num_ctx = num_ctx
        self.slots = [Slot(seq_id) for seq_id in range(count)]
        # A unified KV cache: the slots share its cells, so together they may hold no more than it has.
        self.shared_cells = ctx.n_ctx if shared else None
        # A sliding-window model's window: the positions before the next one that its layers attend to.
        self.window = ctx.model.n_swa

    def has_idle(self) -> bool:
        return any(not slot.busy for slot in self.slots)

    def acquire(self, prompt: list[int]) -> Slot:
        """Take an idle slot for `prompt`, its cache holding the longest prefix of it that any slot holds,
        leaving at least one prompt token to evaluate (its logits are needed).

        The slot is one next to the busy ones where possible, so that running sequences keep consecutive
        ids: with a KV stream per sequence, llama.cpp splits a batch into one micro-batch per run of
        consecutive ids, and every extra micro-batch costs a step nearly as much as the first. Among those,
        the one sharing the longest prefix (ties: least recently used). A longer prefix elsewhere, in an
        idle slot or a busy one, is copied in when that saves enough evaluation (`copy_threshold`)."""
        idle = [slot for slot in self.slots if not slot.busy]
        matches = {slot.seq_id: common_prefix_len(slot.tokens, prompt) for slot in idle}
        busy = {slot.seq_id for slot in self.slots if slot.busy}
        slot = max(idle, key=lambda s: (-self._new_runs(s, busy), matches[s.seq_id], -s.last_used))
        keep = min(matches[slot.seq_id], len(prompt) - 1)
        source, length = self.longest_prefix(prompt, exclude=slot)
        if source is not None and length - keep >= self.copy_threshold:
            self.copy_prefix(source, slot, length)
        else:
            self.truncate(slot, keep)
        slot.busy = True
        return slot

    @property
    def copy_threshold(self) -> int:
        """Prompt tokens a copied prefix must save over what the slot holds already."""
        return 1 if self.ctx.shares_cells else COPY_OVER_STREAMS

    def longest_prefix(self, prompt: list[int], exclude: Slot | None = None) -> tuple[Slot | None, int]:
        """The slot (busy or idle) holding the longest prefix of `prompt` that decoding can go on from, and
        its length (at most all but the last prompt token)."""
        best, best_length = None, 0
        for slot in self.slots:
            if slot is exclude:
                continue
            length = min(common_prefix_len(slot.tokens, prompt), len(prompt) - 1)
            if length > best_length and self._continues(slot, length):
                best, best_length = slot, length
        return best, best_length

    def copy_prefix(self, source: Slot, target: Slot, length: int) -> None:
        """Make `target` hold the first `length` tokens of `source`'s cache (empty if that cannot be done)."""
        if self.ctx.copy_prefix(source.seq_id, target.seq_id, length) and self._continues(target, length):
            target.tokens = source.tokens[:length]
            if self.ctx.shares_cells:
                target.shared = length
                source.shared = max(source.shared, length)
        else:
            self.ctx.seq_rm(target.seq_id, -1, -1)
            target.tokens = []
            target.shared = 0
        target.surplus = 0  # copied cells are counted with their source

    @staticmethod
    def _new_runs(slot: Slot, busy: set[int]) -> int:
        """How many more runs of consecutive ids the busy slots would form with this one: 1 alone, 0 next to
        a run, -1 joining two."""
        return 1 - (slot.seq_id - 1 in busy) - (slot.seq_id + 1 in busy)

    def borrow_empty(self) -> Slot | None:
        """The least recently used idle slot, its cache emptied, for work outside the step loop."""
        idle = [slot for slot in self.slots if not slot.busy]
        if not idle:
            return None
        slot = min(idle, key=lambda s: s.last_used)
        self.truncate(slot, 0)
        slot.busy = True
        return slot

    def free_cells(self) -> int:
        """Cells of a shared cache that no slot holds."""
        assert self.shared_cells is not None
        return self.shared_cells - self.used_cells()

    def used_cells(self) -> int:
        """Cells the slots hold in one KV stream: one per cached position, but a prefix copied between slots
        is the same cells for all of them (counted once, as the distinct prefixes of the shared parts)."""
        used = sum(len(slot.tokens) - slot.shared + slot.surplus for slot in self.slots)
        prefixes = sorted(slot.tokens[:slot.shared] for slot in self.slots if slot.shared)
        used += sum(len(prefix) for prefix in prefixes)
        return used - sum(common_prefix_len(a, b) for a, b in itertools.pairwise(prefixes))

    def evict_idle(self, cells: int) -> None:
        """Empty idle slots' caches, least recently used first, until `cells` cells are free (or none are
        left to empty): a prefix kept for a later request gives way to work that needs the cells now."""
        for slot in sorted((s for s in self.slots if not s.busy and s.tokens), key=lambda s: s.last_used):
            if self.free_cells() >= cells:
                return
            self.truncate(slot, 0)

    def release(self, slot: Slot) -> None:
        slot.busy = False
        slot.last_used = next(_use_clock)

    def truncate(self, slot: Slot, length: int) -> None:
        """Keep the first `length` cached tokens; a cache that cannot be cut partway is cleared, and so is
        one that no longer holds what the next position attends to (a sliding window that has moved on)."""
        if length >= len(slot.tokens):
            return
        if not self.ctx.seq_rm(slot.seq_id, length, -1) or not self._continues(slot, length):
            self.ctx.seq_rm(slot.seq_id, -1, -1)
            length = 0
        del slot.tokens[length:]
        slot.shared = min(slot.shared, length)
        if length == 0:
            slot.surplus = 0

    def _continues(self, slot: Slot, length: int) -> bool:
        """Whether decoding can go on from position `length`. Sliding-window layers drop positions that
        fall out of their window as the sequence grows; going back to an earlier position needs the ones
        before it again (llama-server's test: the smallest position kept is within a window of it)."""
        if length == 0:
            return True
        needed = max(0, length - self.window) if self.window > 0 else 0
        return 0 <= self.ctx.seq_pos_min(slot.seq_id) <= needed

    def shift(self, slot: Slot, num_keep: int) -> list[int]:
        """Make room in a full window: drop half of what follows the first `num_keep` tokens.

        Returns tokens that must be evaluated again: none when the KV cache can shift positions in
        place, else the whole kept history (the cache is cleared and re-fed). Cells shared with another
        sequence are never moved in place."""
        tokens = slot.tokens
        discard = max((self.num_ctx - num_keep) // 2, 1) - (self.num_ctx - len(tokens))
        if discard <= 0:
            return []
        kept = tokens[:num_keep] + tokens[num_keep + discard:]
        moves_shared_cells = slot.shared > num_keep + discard
        if self.ctx.can_shift and not moves_shared_cells and self.ctx.seq_rm(slot.seq_id, num_keep,
                                                                              num_keep + discard):
            self.ctx.seq_add(slot.seq_id, num_keep + discard, len(tokens), -discard)
            slot.tokens = kept
            slot.shared = min(slot.shared, num_keep)
            return []
        self.ctx.seq_rm(slot.seq_id, -1, -1)
        slot.tokens = []
        slot.shared = 0
        slot.surplus = 0
        return kept
