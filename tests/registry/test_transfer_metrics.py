"""`pollama_push_bytes_total` and `pollama_pull_bytes_total` move by the bytes of the blobs a push and a pull
move, through a real Docker Distribution registry."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Server
from tests.prometheus import scrape, value
from tests.registry.distribution import Registry
from tests.registry.helpers import copy, manifest_of, pull, push


def test_pull_and_push_bytes(registry: Registry, fresh: Callable[..., Server]) -> None:
    source = fresh(bundled=True)
    name = f"{registry.host}/metrics/smol:latest"  # a repository of its own: the registry has none of it yet
    copy(source, "smollm2:135m", name)
    _, digests = manifest_of(source, name)
    size = sum((source.models / "blobs" / digest.replace(":", "-")).stat().st_size for digest in digests)
    assert value(scrape(source.url), "pollama_push_bytes_total") == 0
    assert push(source, name)[-1] == {"status": "success"}
    assert value(scrape(source.url), "pollama_push_bytes_total") == size

    target = fresh()
    assert pull(target, name)[-1] == {"status": "success"}
    assert value(scrape(target.url), "pollama_pull_bytes_total") == size
    assert value(scrape(source.url), "pollama_pull_bytes_total") == 0
