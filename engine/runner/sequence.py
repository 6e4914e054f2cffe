"""The state of one completion request while it runs in a slot."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from engine.runner.media import Image, Prepared
from engine.runner.sampling import Sampler
from engine.runner.slots import Slot
from engine.runner.text import TextStream


@dataclass
class Sequence:
    request_id: int
    prompt_len: int  # after truncation, cached tokens included
    sampler: Sampler
    text: TextStream
    slot: Slot
    pending: list[int]  # not yet in the KV cache: the rest of the prompt, then the last sampled token
    num_predict: int
    num_keep: int
    shift: bool
    logprobs: bool = False
    top_logprobs: int = 0
    cached_tokens: int = 0
    generated: int = 0
    cancelled: bool = False
    outputs: list[int] = field(default_factory=list)  # this step's logits rows in the batch (drafts: several)
    draft_proposed: int = 0  # draft tokens offered
    draft_accepted: int = 0  # of them, the ones the model agreed with
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    prompt: list[int] = field(default_factory=list)  # after truncation
    # A running sequence whose prompt shares this many more leading tokens, to be copied once it holds them.
    awaits: Sequence | None = None
    awaited_length: int = 0
    # A prompt with images: each image still to evaluate, with the text that follows it (after `pending`).
    images: deque[tuple[Image, list[int]]] = field(default_factory=deque)
    prepared: Prepared | None = None  # owns the images' mtmd chunks
    image_turns: int = 0  # image batches evaluated, so that sequences with images take turns
    sampled: list[int] = field(default_factory=list)  # its answer's tokens so far

    def left_to_evaluate(self) -> int:
        """Cells its prompt (and the token it sampled last) still need: pending text, images and their text."""
        return len(self.pending) + sum(image.n_tokens - image.decoded + len(text) for image, text in self.images)
