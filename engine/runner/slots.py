"""KV slots: one llama sequence id each, with the tokens its KV cache holds (the prefix cache)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from engine.runner.llama import LlamaContext

_use_clock = itertools.count()


@dataclass
class Slot:
    seq_id: int
    tokens: list[int] = field(default_factory=list)  # exactly what the KV cache holds, position i at index i
    busy: bool = False
    last_used: int = 0


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
    def __init__(self, ctx: LlamaContext, count: int, num_ctx: int) -> None:
        self.ctx = ctx
        self.num_ctx = num_ctx
        self.slots = [Slot(seq_id) for seq_id in range(count)]
        # A sliding-window model's window: the positions before the next one that its layers attend to.
        self.window = ctx.model.n_swa

    def has_idle(self) -> bool:
        return any(not slot.busy for slot in self.slots)

    def acquire(self, prompt: list[int]) -> Slot:
        """Take the idle slot sharing the longest prefix with `prompt` (ties: least recently used) and trim
        its cache to that prefix, leaving at least one prompt token to evaluate (its logits are needed)."""
        idle = [slot for slot in self.slots if not slot.busy]
        matches = {slot.seq_id: common_prefix_len(slot.tokens, prompt) for slot in idle}
        slot = max(idle, key=lambda s: (matches[s.seq_id], -s.last_used))
        keep = min(matches[slot.seq_id], len(prompt) - 1)
        self.truncate(slot, keep)
        slot.busy = True
        return slot

    def borrow_empty(self) -> Slot | None:
        """The least recently used idle slot, its cache emptied, for work outside the step loop."""
        idle = [slot for slot in self.slots if not slot.busy]
        if not idle:
            return None
        slot = min(idle, key=lambda s: s.last_used)
        self.truncate(slot, 0)
        slot.busy = True
        return slot

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
        place, else the whole kept history (the cache is cleared and re-fed)."""
        tokens = slot.tokens
        discard = max((self.num_ctx - num_keep) // 2, 1) - (self.num_ctx - len(tokens))
        if discard <= 0:
            return []
        kept = tokens[:num_keep] + tokens[num_keep + discard:]
        if self.ctx.can_shift and self.ctx.seq_rm(slot.seq_id, num_keep, num_keep + discard):
            self.ctx.seq_add(slot.seq_id, num_keep + discard, len(tokens), -discard)
            slot.tokens = kept
            return []
        self.ctx.seq_rm(slot.seq_id, -1, -1)
        slot.tokens = []
        return kept
