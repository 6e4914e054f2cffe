"""Prompt assembly with images: `[img-N]` markers and the 768-tokens-per-image truncation rule (runtime.md
§3.5, §3.6), with the cases of Ollama's server/prompt_test.go (a whitespace tokenizer, a legacy template)."""

from __future__ import annotations

import asyncio

import pytest

from engine.prompt import ChatPrompt, PromptTemplate, chat_prompt

TEMPLATE = PromptTemplate.for_model(
    "{{- if .System }}{{ .System }} {{ end }}{{- if .Prompt }}{{ .Prompt }} {{ end }}"
    "{{- if .Response }}{{ .Response }} {{ end }}", None)

HARRY = {"role": "user", "content": "You're a test, Harry!"}
WHAT = {"role": "assistant", "content": "I-I'm a what?"}
WAGER = {"role": "user", "content": "A test. And a thumping good one at that, I'd wager."}
SYSTEM = {"role": "system", "content": "You are the Test Who Lived."}


def _with(message: dict, *images: bytes, content: str | None = None) -> dict:
    return {**message, "images": list(images), **({} if content is None else {"content": content})}


async def _words(text: str) -> list[int]:
    return list(range(len(text.split())))


def _prompt(messages: list[dict], limit: int, truncate: bool = True, projector: bool = True) -> ChatPrompt:
    return asyncio.run(chat_prompt(TEMPLATE, messages, tokenize=_words, num_ctx=limit, truncate=truncate,
                                   think=False, count_images=projector))


@pytest.mark.parametrize(("messages", "limit", "prompt", "images"), [
    ([HARRY, WHAT, WAGER], 64, "You're a test, Harry! I-I'm a what? A test. And a thumping good one at that, I'd "
     "wager. ", []),
    ([HARRY, WHAT, WAGER], 1, "A test. And a thumping good one at that, I'd wager. ", []),
    ([HARRY, WHAT, _with(WAGER, b"something")], 64, "[img-0]A test. And a thumping good one at that, I'd wager. ",
     [b"something"]),
    ([_with(HARRY, b"something"), WHAT, _with(WAGER, b"somethingelse")], 64,
     "[img-0]A test. And a thumping good one at that, I'd wager. ", [b"somethingelse"]),
    ([_with(HARRY, b"something"), WHAT, _with(WAGER, b"somethingelse")], 2048,
     "[img-0]You're a test, Harry! I-I'm a what? [img-1]A test. And a thumping good one at that, I'd wager. ",
     [b"something", b"somethingelse"]),
    ([_with(HARRY, b"something", content="You're a test, Harry! [img]"), WHAT, _with(WAGER, b"somethingelse")], 2048,
     "You're a test, Harry! [img-0] I-I'm a what? [img-1]A test. And a thumping good one at that, I'd wager. ",
     [b"something", b"somethingelse"]),
    ([HARRY, {"role": "user", "content": "", "images": [b"something"]},
      {"role": "user", "content": "", "images": [b"somethingelse"]}, WHAT, WAGER], 2048,
     "You're a test, Harry!\n\n[img-0]\n\n[img-1] I-I'm a what? A test. And a thumping good one at that, I'd wager. ",
     [b"something", b"somethingelse"]),
    # two images cost 1536 > 1024: the oldest messages go until one image is left
    ([HARRY, {"role": "user", "content": "", "images": [b"something"]},
      {"role": "user", "content": "", "images": [b"somethingelse"]}, WHAT, WAGER], 1024,
     "[img-0] I-I'm a what? A test. And a thumping good one at that, I'd wager. ", [b"somethingelse"]),
    ([SYSTEM, HARRY, WHAT, WAGER], 2048, "You are the Test Who Lived. You're a test, Harry! I-I'm a what? A test. "
     "And a thumping good one at that, I'd wager. ", []),
    ([HARRY, WHAT, SYSTEM, WAGER], 2048, "You're a test, Harry! I-I'm a what? You are the Test Who Lived. A test. "
     "And a thumping good one at that, I'd wager. ", []),
    ([_with({"role": "user", "content": "Compare these two pictures of hotdogs"}, b"one hotdog", b"two hotdogs")], 2048,
     "[img-0][img-1]Compare these two pictures of hotdogs ", [b"one hotdog", b"two hotdogs"]),
])
def test_chat_prompt(messages: list[dict], limit: int, prompt: str, images: list[bytes]) -> None:
    assert _prompt(messages, limit) == ChatPrompt(prompt, images)


def test_no_truncation_when_off() -> None:
    result = _prompt([HARRY, WHAT, WAGER], 10, truncate=False)
    assert result.text == "You're a test, Harry! I-I'm a what? A test. And a thumping good one at that, I'd wager. "


def test_images_are_free_without_a_projector() -> None:
    """Only a model with projector files counts 768 tokens per image."""
    messages = [_with(HARRY, b"a"), WHAT, _with(WAGER, b"b")]
    assert _prompt(messages, 64, projector=False).images == [b"a", b"b"]
    assert _prompt(messages, 64, projector=True).images == [b"b"]


def test_system_messages_survive_truncation() -> None:
    result = _prompt([SYSTEM, HARRY, WHAT, WAGER], 19)
    assert result.text == "You are the Test Who Lived. A test. And a thumping good one at that, I'd wager. "
