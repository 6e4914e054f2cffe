"""Issue 13 item 8: fitting a long chat into the window takes O(log n) renders, not one per message dropped
(85 s for 2,000 messages, over 200 s for 10,000), and keeps exactly what Ollama's one-by-one search keeps."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.prompt import PromptTemplate, chat_prompt
from engine.runner.llama import LlamaModel
from engine.runner.window import bounded_tokens
from tests.conftest import Server

CHATML = (Path(__file__).resolve().parents[2] / "engine" / "template" / "templates" / "chatml.gotmpl").read_text()


class CountingTemplate(PromptTemplate):
    renders = 0

    def render(self, *args: Any, **kwargs: Any) -> str:
        self.renders += 1
        return super().render(*args, **kwargs)


def history(n: int) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are terse."}]
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        messages.append({"role": role, "content": f"message {i}: " + "word " * (i % 7)})
    messages.insert(n // 2, {"role": "system", "content": "A system message in the middle stays."})
    return messages


def fit(model: LlamaModel, messages: list[dict[str, str]], num_ctx: int) -> tuple[str, int]:
    template = CountingTemplate(go=PromptTemplate.for_model(CHATML, None).go)

    async def tokenize(text: str) -> list[int]:  # as the server counts: no further than the window
        return bounded_tokens(model, text, tail=num_ctx + 1, add_special=False, parse_special=True)

    rendered = asyncio.run(chat_prompt(template, messages, tokenize=tokenize, num_ctx=num_ctx))
    return rendered.text, template.renders


@pytest.mark.parametrize("n", [2000, 10000])
def test_a_long_history_is_fitted_in_logarithmic_renders(model: LlamaModel, n: int) -> None:
    text, renders = fit(model, history(n), 4096)
    assert renders <= 2 * math.log2(n) + 4
    assert len(model.tokenize(text, add_special=False, parse_special=True)) <= 4096
    assert "A system message in the middle stays." in text and f"message {n - 1}:" in text


def test_the_same_messages_are_kept_as_by_dropping_one_at_a_time(model: LlamaModel) -> None:
    messages = history(120)
    template = PromptTemplate.for_model(CHATML, None)

    def kept(start: int) -> list[dict[str, str]]:
        return [m for m in messages[:start] if m["role"] == "system"] + messages[start:]

    costs = [len(model.tokenize(template.render(kept(s)), add_special=False, parse_special=True))
             for s in range(len(messages) - 1)]
    for num_ctx in (100, 400, 900, 100_000):
        start = next((s for s, cost in enumerate(costs) if cost <= num_ctx), len(messages) - 1)
        assert fit(model, messages, num_ctx)[0] == template.render(kept(start))


def test_a_chat_of_ten_thousand_messages_is_answered(shared_server: Server) -> None:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(10001)]
    r = httpx.post(f"{shared_server.url}/api/chat", json={
        "model": "smollm2:135m", "messages": messages, "stream": False,
        "options": {"temperature": 0, "num_predict": 2, "num_ctx": 1024}}, timeout=300)
    assert r.status_code == 200, r.text
    assert r.json()["prompt_eval_count"] <= 1024
