"""`/metrics`: parsed with prometheus-client's own parser, its counters move by the right amounts after known
requests (HTTP requests, tokens, first tokens, runner starts and crashes, queue rejections)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Server, start_server
from tests.prometheus import Samples, scrape, value

MODEL = "smollm2:135m"
GREEDY = {"temperature": 0, "num_predict": 5}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory: Path = tmp_path_factory.mktemp("metrics")
    server = start_server(directory / "models", directory / "server.log", bundled=True)
    yield server
    server.stop()


def _delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_requests_by_route_and_status(server: Server) -> None:
    before = scrape(server.url)
    for _ in range(3):
        assert httpx.get(server.url + "/api/tags").status_code == 200
    assert httpx.post(server.url + "/api/show", json={"model": "absent"}).status_code == 404
    assert httpx.get(server.url + "/no/such/path").status_code == 404
    after = scrape(server.url)
    assert _delta(before, after, "pollama_http_requests_total", method="GET", route="/api/tags", status="200") == 3
    assert _delta(before, after, "pollama_http_requests_total", method="POST", route="/api/show", status="404") == 1
    assert _delta(before, after, "pollama_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert _delta(before, after, "pollama_http_request_duration_seconds_count", method="GET", route="/api/tags") == 3
    # The scrape before this one is counted too: /metrics is a route like any other.
    assert _delta(before, after, "pollama_http_requests_total", method="GET", route="/metrics", status="200") == 1
    # Path parameters stay templates: one series per route, not per blob.
    httpx.head(server.url + "/api/blobs/sha256:" + "0" * 64)
    assert value(scrape(server.url), "pollama_http_requests_total", method="HEAD", route="/api/blobs/{digest}",
                 status="404") == 1


def test_tokens_and_first_token_of_generations(server: Server) -> None:
    before = scrape(server.url)
    native = httpx.post(server.url + "/api/generate", timeout=300, json={
        "model": MODEL, "prompt": "Count: one, two,", "stream": False, "options": GREEDY}).json()
    with openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=300) as client:
        stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                                max_tokens=4, temperature=0, stream=True,
                                                stream_options={"include_usage": True})
        usage = [chunk.usage for chunk in stream if chunk.usage is not None][-1]
    after = scrape(server.url)
    generated = native["eval_count"] + usage.completion_tokens
    prompt = native["prompt_eval_count"] + usage.prompt_tokens
    assert generated >= 2 and prompt >= 2
    assert _delta(before, after, "pollama_generated_tokens_total", model=MODEL) == generated
    assert _delta(before, after, "pollama_prompt_tokens_total", model=MODEL) == prompt
    assert _delta(before, after, "pollama_time_to_first_token_seconds_count", model=MODEL) == 2
    first_tokens = _delta(before, after, "pollama_time_to_first_token_seconds_sum", model=MODEL)
    assert 0 < first_tokens < native["total_duration"] / 1e9 + 300
    assert _delta(before, after, "pollama_decode_tokens_per_second_count", model=MODEL) == 2
    rate = native["eval_count"] / (native["eval_duration"] / 1e9)
    assert _delta(before, after, "pollama_decode_tokens_per_second_sum", model=MODEL) >= rate * 0.999
    assert value(after, "pollama_loaded_models") == 1
    assert value(after, "pollama_model_memory_bytes", model=MODEL, memory="ram") > 50_000_000
    assert value(after, "pollama_model_memory_bytes", model=MODEL, memory="vram") == 0
    assert value(after, "pollama_queue_depth") == 0


def test_embedding_prompt_tokens(server: Server) -> None:
    before = scrape(server.url)
    body = httpx.post(server.url + "/api/embed", timeout=300, json={"model": MODEL, "input": ["a b c", "d"]}).json()
    assert _delta(before, scrape(server.url), "pollama_prompt_tokens_total", model=MODEL) == body["prompt_eval_count"]


def test_runner_starts_and_crashes(server: Server) -> None:
    before = scrape(server.url)
    generate = {"model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 1}}
    assert httpx.post(server.url + "/api/generate", json=generate, timeout=300).status_code == 200
    pids = server.runner_pids()
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _delta(before, scrape(server.url), "pollama_runner_crashes_total", model=MODEL) < len(pids):
        assert time.monotonic() < deadline, "the crash was not counted"
        time.sleep(0.2)
    assert httpx.post(server.url + "/api/generate", json=generate, timeout=300).status_code == 200
    after = scrape(server.url)
    assert _delta(before, after, "pollama_runner_crashes_total", model=MODEL) == len(pids)
    assert _delta(before, after, "pollama_runner_starts_total", model=MODEL) >= 1


def test_queue_rejections(server_factory) -> None:
    busy = server_factory({"OLLAMA_MAX_QUEUE": "0"}, bundled=True)
    answer = httpx.post(busy.url + "/api/generate", json={"model": MODEL, "prompt": "Hi"})
    assert answer.status_code == 503
    samples = scrape(busy.url)
    assert value(samples, "pollama_queue_rejections_total") == 1
    assert value(samples, "pollama_http_requests_total", method="POST", route="/api/generate", status="503") == 1
    assert value(samples, "pollama_runner_starts_total", model=MODEL) == 0


def test_behind_the_key(server_factory) -> None:
    keyed = server_factory({"POLLAMA_API_KEYS": "k1"})
    assert httpx.get(keyed.url + "/metrics").status_code == 401
    samples = scrape(keyed.url, headers={"authorization": "Bearer k1"})
    assert value(samples, "pollama_http_requests_total", method="GET", route="/metrics", status="401") == 1


def test_every_metric_is_in_the_readme(server: Server) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    answer = httpx.get(server.url + "/metrics").text
    # `_created` series come as families of their own; the README mentions them once.
    families = [f.name for f in text_string_to_metric_families(answer) if not f.name.endswith("_created")]
    assert len(families) >= 12
    assert [name for name in families if f"`{name}" not in readme] == []
