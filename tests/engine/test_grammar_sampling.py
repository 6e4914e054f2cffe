"""The grammar's fast path (engine/runner/sampling.py) against the full constrained pass, in this process on
the real SmolLM2: greedy output is the same token for token, and sampled output never leaves the grammar."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.grammar import format_to_grammar
from engine.runner.llama import Batch, LlamaContext, LlamaModel, init_backend
from engine.runner.sampling import Sampler, SamplingParams
from tests.engine.conftest import CHAT

NUM_CTX = 512
PERSON = {"type": "object", "additionalProperties": False, "required": ["name", "age", "pets"], "properties": {
    "name": {"type": "string"}, "age": {"type": "integer"},
    "pets": {"type": "array", "items": {"type": "string", "enum": ["cat", "dog"]}, "maxItems": 2}}}
CALL = {"type": "object", "required": ["name", "arguments"], "properties": {
    "name": {"type": "string", "enum": ["get_weather"]},
    "arguments": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}}
FORMATS = {"json": "json", "schema": PERSON, "tool call": CALL}
PROMPTS = ["Tell me about Paris.", "List three colors.", "Describe a person and their pets.",
           "What is the weather in Rome?"]


@dataclass
class Output:
    tokens: list[int]
    text: str
    ended: bool  # by an end-of-generation token, not by the token limit
    fallbacks: int


class Generator:
    """One sequence decoded token by token, sampled by a Sampler built for each call."""

    def __init__(self, gguf: Path) -> None:
        # One thread: on a busy machine, two threads waiting on each other's barriers decode 20x slower.
        init_backend()
        self.model = LlamaModel(str(gguf), n_gpu_layers=0, main_gpu=0, use_mmap=None)
        self.ctx = LlamaContext(self.model, n_ctx=NUM_CTX, n_batch=NUM_CTX, n_ubatch=NUM_CTX, n_seq_max=1,
                                n_threads=1, flash_attn=None, kv_cache_type="f16", embeddings=False)
        self.batch = Batch(NUM_CTX)

    def __call__(self, prompt: str, fmt: Any, options: dict[str, Any], *, limit: int = 48,
                 grammar_first: bool = False) -> Output:
        sampler = Sampler(self.model, SamplingParams.from_options(options), num_ctx=NUM_CTX,
                          grammar=format_to_grammar(fmt), grammar_first=grammar_first)
        prompt_tokens = self.model.tokenize(CHAT.format(prompt), add_special=True, parse_special=True)
        sampler.accept_prompt(prompt_tokens)
        self.ctx.seq_rm(0, -1, -1)
        tokens: list[int] = []
        ended = False
        try:
            pending, position = prompt_tokens, 0
            while len(tokens) < limit:
                self.batch.clear()
                for offset, token in enumerate(pending):
                    self.batch.add(token, position + offset, 0, offset == len(pending) - 1)
                self.ctx.decode(self.batch)
                position += len(pending)
                token = sampler.sample(self.ctx, len(pending) - 1)
                if self.model.is_eog(token):
                    ended = True
                    break
                tokens.append(token)
                pending = [token]
            return Output(tokens, self.model.detokenize(tokens), ended, sampler.fallbacks)
        finally:
            sampler.close()

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()
        self.model.close()


@pytest.fixture(scope="module")
def generate(gguf: Path) -> Iterator[Generator]:
    generator = Generator(gguf)
    yield generator
    generator.close()


def _check(fmt: Any, output: Output) -> None:
    """A finished output is a whole value of the format; a cut one is the start of an object."""
    if not output.ended:
        assert output.text.lstrip().startswith("{"), output.text
        return
    value = json.loads(output.text)
    assert isinstance(value, dict)
    if fmt is PERSON:
        assert set(value) == {"name", "age", "pets"}
        assert isinstance(value["name"], str) and type(value["age"]) is int
        assert len(value["pets"]) <= 2 and set(value["pets"]) <= {"cat", "dog"}
    elif fmt is CALL:
        assert value["name"] == "get_weather" and isinstance(value["arguments"]["city"], str)


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=FORMATS.keys())
def test_greedy_output_is_the_full_constrained_pass(generate: Generator, fmt: Any) -> None:
    fallbacks = picks = 0
    for prompt in PROMPTS:
        fast = generate(prompt, fmt, {"temperature": 0})
        full = generate(prompt, fmt, {"temperature": 0}, grammar_first=True)
        assert fast.tokens == full.tokens, (prompt, fast.text, full.text)
        _check(fmt, fast)
        fallbacks += fast.fallbacks
        picks += len(fast.tokens) + fast.ended
    # Both paths were taken: picks the grammar allowed, and picks it rejected that were made again.
    assert 0 < fallbacks < picks


def test_greedy_with_repeat_penalties_is_the_full_constrained_pass(generate: Generator) -> None:
    options = {"temperature": 0, "repeat_penalty": 1.3, "presence_penalty": 0.5, "repeat_last_n": 32}
    fallbacks = 0
    for prompt in PROMPTS[:2]:
        fast = generate(prompt, "json", options)
        full = generate(prompt, "json", options, grammar_first=True)
        assert fast.tokens == full.tokens, (prompt, fast.text, full.text)
        assert fast.tokens != generate(prompt, "json", {"temperature": 0}).tokens  # the penalties did act
        fallbacks += fast.fallbacks
    assert fallbacks > 0


@pytest.mark.parametrize("top_k", [40, 0], ids=["top_k 40", "whole vocabulary"])
@pytest.mark.parametrize("fmt", FORMATS.values(), ids=FORMATS.keys())
def test_sampled_output_never_leaves_the_grammar(generate: Generator, fmt: Any, top_k: int) -> None:
    fallbacks = 0
    for seed in range(3):
        options = {"temperature": 1.5, "top_k": top_k, "top_p": 1.0, "seed": seed}
        output = generate(PROMPTS[seed], fmt, options, limit=96)
        _check(fmt, output)
        fallbacks += output.fallbacks
    assert fallbacks > 0
