"""The request log: one line per request with method, path, status, model, duration, token counts and the
client's address; never a prompt (prompts only at OLLAMA_DEBUG=2, Ollama's trace); JSON lines on request."""

from __future__ import annotations

import json
import logging
import re
import time

import httpx
import pytest

from server.envconfig import TRACE, load_settings
from tests.conftest import Server

MODEL = "smollm2:135m"
SECRET = "the password is PINEAPPLE-7731"


def _generate(server: Server) -> dict:
    answer = httpx.post(server.url + "/api/generate", timeout=300, json={
        "model": MODEL, "prompt": SECRET, "stream": False, "options": {"temperature": 0, "num_predict": 3}})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _log_once_it_has(server: Server, text: str) -> str:
    """The log, once `text` is in it: a request's line is written just after its answer is sent."""
    deadline = time.monotonic() + 30
    while text not in (log := server.output()):
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{log}"
        time.sleep(0.05)
    return log


def test_text_lines_and_no_prompt(server_factory) -> None:
    server = server_factory(bundled=True)
    body = _generate(server)
    assert httpx.post(server.url + "/api/show", json={"model": "absent"}).status_code == 404
    log = _log_once_it_has(server, "POST /api/show 404")
    line = next(line for line in log.splitlines() if "pollama.requests: POST /api/generate 200" in line)
    assert f"model={MODEL}" in line
    assert f"prompt_tokens={body['prompt_eval_count']}" in line
    assert f"generated_tokens={body['eval_count']}" in line
    assert re.search(r"duration_ms=\d+(\.\d+)? client=127\.0\.0\.1:\d+", line), line
    assert re.search(r"pollama.requests: POST /api/show 404 duration_ms=\S+ client=\S+$", log, re.M)
    assert "PINEAPPLE" not in log
    assert '"POST /api/generate HTTP/1.1"' not in log  # uvicorn's access log is replaced, not doubled


def test_json_lines_and_the_prompt_at_trace(server_factory) -> None:
    server = server_factory({"POLLAMA_LOG_FORMAT": "json", "OLLAMA_DEBUG": "2"}, bundled=True)
    body = _generate(server)
    log = _log_once_it_has(server, "POST /api/generate 200")
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert len(entries) >= 0.9 * len([line for line in log.splitlines() if line.strip()])
    request = next(e for e in entries if e["logger"] == "pollama.requests" and e["path"] == "/api/generate")
    assert request["method"] == "POST" and request["status"] == 200 and request["model"] == MODEL
    assert request["prompt_tokens"] == body["prompt_eval_count"]
    assert request["generated_tokens"] == body["eval_count"]
    assert request["duration_ms"] > 0 and request["client"].startswith("127.0.0.1:")
    assert request["level"] == "INFO" and request["msg"].startswith("POST /api/generate 200")
    assert any(e["level"] == "TRACE" and "PINEAPPLE" in e["msg"] for e in entries)
    assert not any("PINEAPPLE" in json.dumps(e) for e in entries if e["level"] != "TRACE")


@pytest.mark.parametrize(("raw", "level"), [
    ("", logging.INFO), ("0", logging.INFO), ("false", logging.INFO), ("1", logging.DEBUG), ("true", logging.DEBUG),
    ("2", TRACE), ("-1", logging.WARNING), ("-2", logging.ERROR), ("junk", logging.INFO),
])
def test_ollama_debug_levels(monkeypatch: pytest.MonkeyPatch, raw: str, level: int) -> None:
    monkeypatch.setenv("OLLAMA_DEBUG", raw)
    settings = load_settings()
    assert settings.log_level == level
    assert settings.debug == (level <= logging.DEBUG)


def test_log_format_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, expected in (("", "text"), ("JSON", "json"), ("text", "text"), ("xml", "text")):
        monkeypatch.setenv("POLLAMA_LOG_FORMAT", raw)
        assert load_settings().log_format == expected
