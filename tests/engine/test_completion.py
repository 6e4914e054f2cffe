"""Completions through a real runner process on SmolLM2 (four slots of 512 tokens)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from llama_cpp import Llama

from engine.protocol import RunnerError
from engine.runner.load import physical_cores
from tests.engine.conftest import CHAT, Aio, complete

PROMPTS = [CHAT.format("Write a haiku about the sea."), CHAT.format("What is the capital of France?"),
           "The three primary colours are"]


@pytest.fixture(scope="module")
def reference(gguf: Path) -> Iterator[Llama]:
    # Flash attention on: what the runner's default ("auto") picks on this CPU build.
    threads = physical_cores()
    llm = Llama(str(gguf), n_ctx=512, n_threads=threads, n_threads_batch=threads, flash_attn=True,
                verbose=False)
    yield llm
    llm.close()


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_output_equals_llama_cpp(aio: Aio, runner, reference: Llama, prompt: str) -> None:
    expected = reference.create_completion(prompt, max_tokens=40, temperature=0, repeat_penalty=1.0)
    got = aio.run(complete(runner, prompt, options={"num_predict": 40}))
    assert got.text == expected["choices"][0]["text"]
    stopped = expected["choices"][0]["finish_reason"] == "stop"
    assert got.done.done_reason == ("stop" if stopped else "length")
    # Ollama counts the end-of-generation token; llama-cpp-python does not.
    assert got.done.eval_count == expected["usage"]["completion_tokens"] + stopped
    assert got.done.prompt_eval_count == expected["usage"]["prompt_tokens"]


def test_seeded_sampling_is_reproducible(aio: Aio, runner) -> None:
    prompt = CHAT.format("Invent a name for a cat.")

    def sample(seed: int) -> str:
        options = {"temperature": 1.0, "top_k": 100, "top_p": 1.0, "seed": seed, "num_predict": 12}
        return aio.run(complete(runner, prompt, options=options)).text

    assert sample(7) == sample(7)
    assert len({sample(seed) for seed in range(1, 6)}) > 1  # the seed does steer the draw


def test_four_streams_all_produce_tokens_before_any_finishes(aio: Aio, runner) -> None:
    order: list[tuple[int, str]] = []

    async def stream(i: int) -> None:
        prompt = CHAT.format(f"Count from {i * 10} to {i * 10 + 40}, separated by commas.")
        options = {"temperature": 0, "num_predict": 24}
        from engine.protocol import CompletionRequest, Done
        async for event in runner.completion(CompletionRequest(prompt, options)):
            order.append((i, "done" if isinstance(event, Done) else "token"))

    async def all_streams() -> None:
        await asyncio.gather(*(stream(i) for i in range(4)))

    aio.run(all_streams())
    first_done = next(n for n, (_, kind) in enumerate(order) if kind == "done")
    assert {i for i, kind in order[:first_done] if kind == "token"} == {0, 1, 2, 3}


def test_shared_prefix_is_not_evaluated_again(aio: Aio, runner) -> None:
    base = CHAT.format("Describe a quiet library at night in two sentences.")
    first = aio.run(complete(runner, base, options={"num_predict": 8}))
    longer = base + first.text + "<|im_end|>\n" + CHAT.format("Now one sentence about a storm.")
    base_len = len(aio.run(runner.tokenize(base, parse_special=True)))
    second = aio.run(complete(runner, longer, options={"num_predict": 4}))
    total = len(aio.run(runner.tokenize(longer, parse_special=True)))
    assert second.done.prompt_eval_count == total
    assert second.done.cached_tokens >= base_len  # the prompt and (most of) the reply came from the KV cache
    again = aio.run(complete(runner, longer, options={"num_predict": 4}))
    assert again.done.cached_tokens == total - 1  # the last token is evaluated again for its logits
    assert again.text == second.text


def test_stop_string_split_across_tokens_is_cut_and_never_emitted(aio: Aio, runner) -> None:
    prompt = CHAT.format("Tell me a short story about a dragon.")
    free = aio.run(complete(runner, prompt, options={"num_predict": 30}, logprobs=True))
    pieces = [t.logprobs[0]["token"] for t in free.tokens]
    # A stop string made of the end of one token and the start of the next, both at least two characters.
    at = next(i for i in range(3, len(pieces) - 1) if len(pieces[i].strip()) >= 2 and len(pieces[i + 1]) >= 2)
    stop = pieces[at][-2:] + pieces[at + 1][:2]
    expected = free.text[: free.text.index(stop)]
    got = aio.run(complete(runner, prompt, options={"num_predict": 30, "stop": ["never-seen", stop]}))
    assert got.text == expected
    assert got.done.done_reason == "stop"
    assert all(stop not in t.text for t in got.tokens)


def test_stop_string_trims_the_slot_cache(aio: Aio, runner) -> None:
    prompt = CHAT.format("List three fruits, one per line.")
    free = aio.run(complete(runner, prompt, options={"num_predict": 20}))
    stop = free.text.strip()[4:8]
    cut = aio.run(complete(runner, prompt, options={"num_predict": 20, "stop": [stop]}))
    follow_up = prompt + cut.text
    again = aio.run(complete(runner, follow_up, options={"num_predict": 1}))
    # The cache ended at the kept text, so the follow-up prompt matches it almost entirely.
    assert again.done.cached_tokens >= again.done.prompt_eval_count - 2


def test_num_predict_ends_with_length(aio: Aio, runner) -> None:
    got = aio.run(complete(runner, "Once upon a time", options={"num_predict": 3}))
    assert got.done.done_reason == "length"
    assert got.done.eval_count == 3


def test_prompt_too_long_without_truncate_is_a_400(aio: Aio, runner) -> None:
    long_prompt = "apple " * 600
    with pytest.raises(RunnerError) as caught:
        aio.run(complete(runner, long_prompt, truncate=False))
    assert caught.value.status == 400
    assert str(caught.value) == "the input length exceeds the context length"


def test_long_prompt_is_truncated_to_the_window(aio: Aio, runner) -> None:
    got = aio.run(complete(runner, "apple " * 600, options={"num_predict": 4}))
    assert got.done.prompt_eval_count == 512
    assert got.done.eval_count == 4  # generation went on after a context shift


def test_full_window_without_shift_ends_with_length(aio: Aio, runner) -> None:
    got = aio.run(complete(runner, "apple " * 600, options={"num_predict": 4}, shift=False))
    assert got.done.done_reason == "length"
    assert got.done.eval_count == 1


def test_logprobs_describe_each_token(aio: Aio, runner) -> None:
    got = aio.run(complete(runner, PROMPTS[1], options={"num_predict": 5}, logprobs=True, top_logprobs=3))
    entries = [entry for t in got.tokens for entry in t.logprobs or []]
    assert len(entries) == got.done.eval_count - (got.done.done_reason == "stop")
    for entry in entries:
        tops = entry["top_logprobs"]
        assert len(tops) == 3
        assert tops[0]["token"] == entry["token"]  # greedy picks the most likely token
        assert [t["logprob"] for t in tops] == sorted((t["logprob"] for t in tops), reverse=True)
        assert entry["logprob"] <= 0
        assert bytes(entry["bytes"]).decode("utf-8", errors="replace") == entry["token"]


def test_multibyte_characters_are_never_split(aio: Aio, runner) -> None:
    prompt = CHAT.format("Repeat exactly: 🎉🐉🌊 日本語のテキスト 🎉🐉🌊")
    got = aio.run(complete(runner, prompt, options={"num_predict": 40}, logprobs=True))
    token_bytes = [bytes(entry["bytes"]) for t in got.tokens for entry in t.logprobs]

    def complete_utf8(data: bytes) -> bool:
        try:
            data.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False

    assert not all(complete_utf8(b) for b in token_bytes), "the output should contain split characters"
    assert all("\ufffd" not in t.text for t in got.tokens)
    assert got.text == b"".join(token_bytes).decode("utf-8", errors="ignore")


def test_grammar_constrains_the_output(aio: Aio, runner) -> None:
    grammar = 'root ::= ("yes" | "no") "."'
    got = aio.run(complete(runner, CHAT.format("Is the sky green? Answer in one word."),
                           options={"num_predict": 10}, grammar=grammar))
    assert got.text in ("yes.", "no.")
    assert got.done.done_reason == "stop"


def test_repeat_penalty_changes_greedy_output(aio: Aio, runner) -> None:
    prompt = CHAT.format("Repeat the word 'cat' twenty times.")
    plain = aio.run(complete(runner, prompt, options={"num_predict": 20}))
    penalised = aio.run(complete(runner, prompt, options={"num_predict": 20, "repeat_penalty": 1.8,
                                                          "repeat_last_n": -1}))
    assert plain.text != penalised.text


def test_a_grammar_that_does_not_parse_fails_only_its_request(aio: Aio, runner) -> None:
    with pytest.raises(RunnerError) as caught:
        aio.run(complete(runner, "Hello", grammar="root ::= ("))
    assert caught.value.status == 500
    assert aio.run(complete(runner, "Hello", options={"num_predict": 1})).done.eval_count == 1


def test_a_prompt_longer_than_a_batch_is_fed_in_chunks(aio: Aio, runner, small_batch_runner) -> None:
    prompt = CHAT.format("Summarise in one sentence: " + "The river flows past the old mill. " * 6)
    whole = aio.run(complete(runner, prompt, options={"num_predict": 16}))
    chunked = aio.run(complete(small_batch_runner, prompt, options={"num_predict": 16}))
    assert chunked.done.prompt_eval_count > 3 * 16
    assert chunked.text == whole.text
