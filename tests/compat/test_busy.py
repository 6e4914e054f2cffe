"""A full queue through the compatible layers: 503 in each API's envelope, with `retry-after` so the SDKs
wait before their (bounded) retries instead of retrying at once into the overload."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anthropic
import openai

from tests.compat.conftest import upload_and_create

BUSY = "server busy, please try again.  maximum pending requests exceeded"


def test_queue_full_is_503_with_retry_after(server_factory, smollm2_gguf: Path) -> None:
    server = server_factory(env={"OLLAMA_MAX_QUEUE": "1", "OLLAMA_MAX_LOADED_MODELS": "1"})
    upload_and_create(server.url, "first", smollm2_gguf)
    upload_and_create(server.url, "second", smollm2_gguf, padding=64)

    async def burst() -> list:
        oai = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=120)
        claude = anthropic.AsyncAnthropic(base_url=server.url, api_key="x", max_retries=0, timeout=120)
        async with oai, claude:
            hi = [{"role": "user", "content": "hi"}]
            calls = [oai.chat.completions.create(model=name, messages=hi, max_tokens=2)
                     for name in ["first", "second"] * 2]
            calls += [claude.messages.create(model=name, messages=hi, max_tokens=2) for name in ["second", "first"]]
            return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(burst())
    refused = [r for r in results if isinstance(r, openai.APIStatusError | anthropic.APIStatusError)]
    assert any(isinstance(r, anthropic.APIStatusError) for r in refused), results
    assert refused and len(refused) < len(results), results
    for error in refused:
        assert error.status_code == 503 and error.response.headers["retry-after"] == "2"
        if isinstance(error, openai.APIStatusError):
            assert isinstance(error, openai.InternalServerError)
            assert error.body == {"message": BUSY, "type": "api_error", "param": None, "code": None}
        else:
            assert error.body["error"] == {"type": "overloaded_error", "message": BUSY}
