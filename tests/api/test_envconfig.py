"""Settings read from Ollama's environment variables (api-contract.md §7)."""

from __future__ import annotations

import math

import pytest

from server.envconfig import DurationError, load_settings, parse_go_duration, parse_host


@pytest.mark.parametrize(("raw", "expected"), [
    ("", ("http", "127.0.0.1", 11434)),
    ("0.0.0.0", ("http", "0.0.0.0", 11434)),
    ("127.0.0.1:8080", ("http", "127.0.0.1", 8080)),
    (":9000", ("http", "0.0.0.0", 9000)),
    ("http://example.com", ("http", "example.com", 80)),
    ("https://example.com", ("https", "example.com", 443)),
    ("[::1]:11435", ("http", "::1", 11435)),
    ("::1", ("http", "::1", 11434)),
    ("127.0.0.1:notaport", ("http", "127.0.0.1", 11434)),
])
def test_ollama_host(raw: str, expected: tuple[str, str, int]) -> None:
    host = parse_host(raw)
    assert (host.scheme, host.host, host.port) == expected


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300), ("1h30m", 5400), ("300ms", 0.3), ("-1m", -60),
                                               ("0", 0), ("1.5s", 1.5)])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "message"), [("10", 'time: missing unit in duration "10"'),
                                                ("abc", 'time: invalid duration "abc"'),
                                                ("", 'time: invalid duration ""')])
def test_go_duration_errors(text: str, message: str) -> None:
    with pytest.raises(DurationError, match=message):
        parse_go_duration(text)


@pytest.mark.parametrize(("raw", "keep_alive", "load_timeout"), [
    ("", 300, 300), ("10m", 600, 600), ("3600", 3600, 3600), ("-1", math.inf, None), ("0", 0, None),
    ("bogus", 300, 300),
])
def test_duration_variables(monkeypatch: pytest.MonkeyPatch, raw: str, keep_alive: float,
                            load_timeout: float | None) -> None:
    monkeypatch.setenv("OLLAMA_KEEP_ALIVE", raw)
    monkeypatch.setenv("OLLAMA_LOAD_TIMEOUT", raw)
    settings = load_settings()
    assert (settings.keep_alive, settings.load_timeout) == (keep_alive, load_timeout)


def test_parallelism_is_chosen_per_model_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_NUM_PARALLEL", raising=False)
    assert load_settings().num_parallel == 0
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "1")
    assert load_settings().num_parallel == 1


def test_other_variables(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("OLLAMA_MODELS", f'"{tmp_path}"')
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "4")
    monkeypatch.setenv("OLLAMA_MAX_QUEUE", "-3")  # invalid: the default
    monkeypatch.setenv("OLLAMA_NOPRUNE", "yes")  # any non-boolean text counts as true
    monkeypatch.setenv("OLLAMA_ORIGINS", " https://A.example , https://b.example")
    settings = load_settings()
    assert settings.models == tmp_path
    assert settings.num_parallel == 4 and settings.max_queue == 512 and settings.noprune
    assert settings.origins == ("https://a.example", "https://b.example")
