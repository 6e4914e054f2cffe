"""SlotPool's bookkeeping against a fake KV cache (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from engine.runner.slots import COPY_OVER_STREAMS, SlotPool, common_prefix_len


@dataclass
class FakeContext:
    can_shift: bool = True
    partial_rm: bool = True
    shares_cells: bool = False  # one KV stream for all sequences (a unified cache)
    window: int = 0  # sliding-window attention span of the model (0: none)
    pos_min: int = 0  # the smallest position every layer still holds
    n_ctx: int = 0  # cells of the KV cache
    calls: list[tuple] = field(default_factory=list)

    @property
    def model(self) -> SimpleNamespace:
        return SimpleNamespace(n_swa=self.window)

    def seq_pos_min(self, seq_id: int) -> int:
        return self.pos_min

    def seq_rm(self, seq_id: int, p0: int, p1: int) -> bool:
        self.calls.append(("rm", seq_id, p0, p1))
        return self.partial_rm or p0 < 0

    def seq_add(self, seq_id: int, p0: int, p1: int, delta: int) -> None:
        self.calls.append(("add", seq_id, p0, p1, delta))

    def copy_prefix(self, source: int, target: int, length: int) -> bool:
        self.calls.append(("copy", source, target, length))
        return self.partial_rm


def pool(ctx: FakeContext, slots: int = 3, num_ctx: int = 10) -> SlotPool:
    return SlotPool(ctx, slots, num_ctx)  # type: ignore[arg-type]


def test_common_prefix_len() -> None:
    assert common_prefix_len([1, 2, 3, 4], [1, 2, 9]) == 2
    assert common_prefix_len([1, 2], [1, 2, 3]) == 2
    assert common_prefix_len([], [1]) == 0
    assert common_prefix_len(list(range(1000)), list(range(999)) + [5]) == 999


def test_acquire_prefers_the_longest_prefix_then_the_least_recently_used() -> None:
    ctx = FakeContext()
    slots = pool(ctx)
    a, b, c = slots.slots
    a.tokens, b.tokens, c.tokens = [1, 2, 3], [1, 2, 7, 8], [9]
    for slot in (c, b, a):
        slots.release(slot)  # c is now the least recently used
    chosen = slots.acquire([1, 2, 3, 4])
    assert chosen is a and a.busy and a.tokens == [1, 2, 3]
    slots.release(a)
    assert slots.acquire([5, 6]) is c  # no prefix anywhere: the least recently used idle slot
    assert c.tokens == [] and ("rm", c.seq_id, 0, -1) in ctx.calls


def test_acquire_keeps_running_sequences_on_consecutive_ids() -> None:
    slots = pool(FakeContext(), slots=6)
    for slot in reversed(slots.slots):
        slots.release(slot)  # slot 5 is the least recently used
    taken = [slots.acquire([n]).seq_id for n in range(3)]
    assert taken == [5, 4, 3]  # the first by age, then next to the busy ones
    slots.release(slots.slots[4])  # a hole: 3 and 5 run apart
    slots.slots[1].tokens = [7, 8, 9]  # a short prefix elsewhere does not pull a sequence away
    assert slots.acquire([7, 8, 9, 10]).seq_id == 4  # it joins the two runs again


def test_a_longer_prefix_elsewhere_is_copied_next_to_the_running_ones() -> None:
    ctx = FakeContext()
    slots = pool(ctx, slots=6)
    slots.acquire([1])  # slot 0
    prefix = list(range(100, 100 + COPY_OVER_STREAMS))
    slots.slots[4].tokens = prefix + [5, 6]
    chosen = slots.acquire(prefix + [1])
    assert chosen.seq_id == 1 and chosen.tokens == prefix
    assert ctx.calls[-1] == ("copy", 4, 1, COPY_OVER_STREAMS)
    assert slots.slots[4].tokens == prefix + [5, 6]  # the source keeps its cache
    # from a busy slot too: slot 1 runs, its prompt is cached
    again = slots.acquire(prefix + [2])
    assert again.seq_id == 2 and again.tokens == prefix and ctx.calls[-1][:3] == ("copy", 1, 2)


def test_a_short_prefix_is_copied_only_within_one_kv_stream() -> None:
    short = list(range(100, 100 + COPY_OVER_STREAMS - 1))
    for shares_cells, copied in ((False, False), (True, True)):
        ctx = FakeContext(shares_cells=shares_cells)
        slots = pool(ctx, slots=4)
        slots.acquire([1])  # slot 0
        slots.slots[3].tokens = short + [5]
        chosen = slots.acquire(short + [1])
        assert chosen.seq_id == 1
        assert chosen.tokens == (short if copied else [])
        assert (chosen.shared, slots.slots[3].shared) == ((len(short), len(short)) if copied else (0, 0))


def test_a_prefix_that_cannot_be_cut_out_is_not_copied_in() -> None:
    ctx = FakeContext(partial_rm=False)  # a recurrent model's state, say
    slots = pool(ctx, slots=3)
    slots.acquire([1])
    prefix = list(range(100, 100 + COPY_OVER_STREAMS))
    slots.slots[2].tokens = prefix + [5]
    chosen = slots.acquire(prefix + [1])
    assert chosen.tokens == [] and ctx.calls[-1] == ("rm", chosen.seq_id, -1, -1)


def test_cells_shared_with_another_sequence_are_never_shifted_in_place() -> None:
    ctx = FakeContext(shares_cells=True)
    slots = pool(ctx, num_ctx=10)
    slot = slots.slots[0]
    slot.tokens, slot.shared = list(range(10)), 8  # positions 0-7 are shared, a shift would move 6-7
    assert slots.shift(slot, num_keep=2) == [0, 1, 6, 7, 8, 9]
    assert slot.tokens == [] and slot.shared == 0
    slot.tokens, slot.shared = list(range(10)), 5  # 2-5 are dropped for this sequence only: in place
    assert slots.shift(slot, num_keep=2) == []
    assert slot.shared == 2


def test_a_fully_cached_prompt_keeps_one_token_to_evaluate() -> None:
    ctx = FakeContext()
    slots = pool(ctx)
    slots.slots[0].tokens = [1, 2, 3, 4, 5]
    slot = slots.acquire([1, 2, 3])
    assert slot.tokens == [1, 2]
    assert ("rm", slot.seq_id, 2, -1) in ctx.calls


def test_a_cache_that_cannot_be_cut_partway_is_cleared() -> None:
    ctx = FakeContext(partial_rm=False)
    slots = pool(ctx)
    slots.slots[0].tokens = [1, 2, 3, 4]
    slot = slots.acquire([1, 2, 9])
    assert slot.tokens == []


def test_shift_moves_positions_in_place() -> None:
    ctx = FakeContext()
    slots = pool(ctx, num_ctx=10)
    slot = slots.slots[0]
    slot.tokens = list(range(10))
    assert slots.shift(slot, num_keep=2) == []
    assert slot.tokens == [0, 1, 6, 7, 8, 9]  # half of the 8 tokens after the kept 2 are gone
    assert ctx.calls == [("rm", 0, 2, 6), ("add", 0, 6, 10, -4)]


def test_shift_without_position_shifting_refeeds_the_kept_tokens() -> None:
    ctx = FakeContext(can_shift=False)
    slots = pool(ctx, num_ctx=10)
    slot = slots.slots[0]
    slot.tokens = list(range(10))
    assert slots.shift(slot, num_keep=2) == [0, 1, 6, 7, 8, 9]
    assert slot.tokens == []


def test_a_sliding_window_that_moved_past_the_prefix_is_evaluated_again() -> None:
    # Window 4; the sequence ran to position 19 and its sliding-window layers hold positions 12 to 19 only.
    ctx = FakeContext(window=4, pos_min=12)
    slots = pool(ctx, slots=1, num_ctx=32)
    slots.slots[0].tokens = list(range(20))
    slot = slots.acquire(list(range(6)) + [99, 98])  # going on from position 6 needs positions 2 to 5
    assert slot.tokens == []
    assert ctx.calls[-1] == ("rm", 0, -1, -1)


def test_a_prefix_whose_window_is_still_held_is_reused() -> None:
    ctx = FakeContext(window=4, pos_min=12)
    slots = pool(ctx, slots=1, num_ctx=32)
    slots.slots[0].tokens = list(range(20))
    slot = slots.acquire(list(range(18)) + [99])  # position 18 needs 14 to 17: still there
    assert slot.tokens == list(range(18))
    assert ctx.calls == [("rm", 0, 18, -1)]


def test_a_shared_pool_counts_a_copied_prefix_once() -> None:
    ctx = FakeContext(shares_cells=True, n_ctx=100)
    slots = SlotPool(ctx, 4, 100, shared=True)  # type: ignore[arg-type]
    a, b, c, d = slots.slots
    a.tokens = [1, 2, 3, 4, 5, 6]
    assert slots.used_cells() == 6 and slots.free_cells() == 94
    slots.copy_prefix(a, b, 4)  # b shares a's first 4 cells
    b.tokens += [7, 8]
    slots.copy_prefix(b, c, 2)
    assert slots.used_cells() == 6 + 2  # a's 6 cells and b's own 2
    d.tokens = [1, 2, 3]  # the same tokens, evaluated on its own: cells of its own
    assert slots.used_cells() == 8 + 3
    slots.truncate(a, 0)  # b and c still hold the shared cells
    assert slots.used_cells() == 6 + 3
    d.surplus = 5  # an M-RoPE image's embeddings beyond its positions
    assert slots.used_cells() == 6 + 3 + 5
    slots.truncate(d, 0)
    assert slots.used_cells() == 6 and d.surplus == 0


def test_idle_prefixes_give_way_least_recently_used_first() -> None:
    ctx = FakeContext(shares_cells=True, n_ctx=10)
    slots = SlotPool(ctx, 3, 10, shared=True)  # type: ignore[arg-type]
    old, recent, busy = slots.slots
    old.tokens, recent.tokens, busy.tokens = [1, 2, 3], [4, 5, 6], [7, 8]
    slots.release(old)
    slots.release(recent)
    busy.busy = True
    slots.evict_idle(4)  # 2 free: the least recently used prefix goes
    assert (old.tokens, recent.tokens) == ([], [4, 5, 6])
    slots.evict_idle(10)  # as many as there are: busy slots keep theirs
    assert (recent.tokens, busy.tokens) == ([], [7, 8])
