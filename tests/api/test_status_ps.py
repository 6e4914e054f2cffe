"""`GET /api/status` in Ollama's shape (pollama has no cloud), and `POST /api/ps` beside `GET`."""

from __future__ import annotations

import httpx
import ollama

from tests.conftest import Server


def test_status(server_factory) -> None:
    plain, no_cloud = server_factory(), server_factory({"OLLAMA_NO_CLOUD": "1"})
    answer = httpx.get(plain.url + "/api/status")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    assert answer.json() == {"cloud": {"disabled": True, "source": "config"}}
    assert httpx.get(no_cloud.url + "/api/status").json() == {"cloud": {"disabled": True, "source": "both"}}


def test_post_ps_answers_as_get(shared_server: Server) -> None:
    empty = httpx.post(shared_server.url + "/api/ps")
    assert empty.status_code == 200 and empty.json() == {"models": []}
    reply = ollama.Client(host=shared_server.url).generate("smollm2:135m", "Hi", options={"num_predict": 1})
    assert reply.done
    got = httpx.get(shared_server.url + "/api/ps").json()
    posted = httpx.post(shared_server.url + "/api/ps", json={"ignored": True}).json()
    assert [m["name"] for m in posted["models"]] == ["smollm2:135m"]
    assert posted == got
