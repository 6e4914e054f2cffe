"""Blob paths, atomic writes, digest checks (store probes 1, 2, 47)."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

import pytest

from modelstore.blobs import BlobStore, DigestMismatch, InvalidDigest
from modelstore.store import ModelStore

HEX = "abc" + "0" * 61


def test_blob_path_both_separators(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    assert blobs.path(f"sha256:{HEX}") == tmp_path / "blobs" / f"sha256-{HEX}"
    assert blobs.path(f"sha256-{HEX}") == tmp_path / "blobs" / f"sha256-{HEX}"
    # upper case is accepted and kept, so it names another file (Ollama quirk)
    assert blobs.path(f"sha256:{HEX.upper()}").name == f"sha256-{HEX.upper()}"


@pytest.mark.parametrize("digest", ["sha256:xyz", f"sha256:{HEX}0", f"sha256:{HEX[:-1]}g", f"sha512:{HEX}",
                                    HEX, "", f"sha256:{HEX}\n"])
def test_invalid_digest(tmp_path: Path, digest: str) -> None:
    with pytest.raises(InvalidDigest, match="^invalid digest format$"):
        BlobStore(tmp_path).path(digest)


def test_write_bytes_new_then_existing(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    digest, created = blobs.write_bytes(b"hello")
    assert digest == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert created
    path = blobs.path(digest)
    assert path.read_bytes() == b"hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert blobs.exists(digest) and blobs.size(digest) == 5

    old = time.time() - 7200
    os.utime(path, (old, old))
    assert blobs.write_bytes(b"hello") == (digest, False)
    assert path.stat().st_mtime > old + 3600, "re-writing an existing blob touches it"
    assert sorted(p.name for p in blobs.directory.iterdir()) == [path.name], "no temp file left"


def test_streaming_writer_hashes_chunks(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    with blobs.writer() as writer:
        for chunk in (b"a" * 1000, b"b" * 5000, b""):
            writer.write(chunk)
        digest = writer.commit()
    assert digest == "sha256:" + hashlib.sha256(b"a" * 1000 + b"b" * 5000).hexdigest()
    assert writer.size == 6000 and writer.created


def test_temp_file_is_named_like_ollamas(tmp_path: Path) -> None:
    writer = BlobStore(tmp_path).writer()
    writer.write(b"partial")
    name = writer.temp_path.name
    assert name.startswith("sha256-") and name[len("sha256-"):].isdigit()
    assert writer.temp_path.parent == tmp_path / "blobs"
    writer.abort()
    assert not writer.temp_path.exists()


def test_digest_mismatch_keeps_data_under_real_digest(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    expected = "sha256:" + "a" * 64
    with pytest.raises(DigestMismatch) as caught:
        with blobs.writer() as writer:
            writer.write(b"wrong body")
            writer.commit(expected)
    actual = "sha256:" + hashlib.sha256(b"wrong body").hexdigest()
    assert str(caught.value) == f'digest mismatch, expected "{expected}", got "{actual}"'
    assert caught.value.actual == actual
    assert blobs.exists(actual)
    assert not blobs.exists(expected)


def test_matching_expected_digest(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    expected = "sha256:" + hashlib.sha256(b"body").hexdigest()
    with blobs.writer() as writer:
        writer.write(b"body")
        assert writer.commit(expected) == expected


def test_exception_in_context_aborts(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    with pytest.raises(RuntimeError):
        with blobs.writer() as writer:
            writer.write(b"half a blob")
            raise RuntimeError("client went away")
    assert list(blobs.directory.iterdir()) == []


def test_crash_mid_write_leaves_only_a_temp_that_prune_removes_after_an_hour(store: ModelStore) -> None:
    writer = store.blobs.writer()
    writer.write(b"half a blob")
    writer._file.flush()  # the process dies here: no commit, no abort
    files = list(store.blobs.directory.iterdir())
    assert files == [writer.temp_path]
    final = store.blobs.path("sha256:" + hashlib.sha256(b"half a blob").hexdigest())
    assert not final.exists()

    assert store.prune() == [], "younger than the grace period: kept"
    assert writer.temp_path.exists()
    old = time.time() - 3601
    os.utime(writer.temp_path, (old, old))
    assert store.prune() == [writer.temp_path.name]
    assert list(store.blobs.directory.iterdir()) == []


def test_remove(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    digest, _ = blobs.write_bytes(b"x")
    assert blobs.remove(digest)
    assert not blobs.remove(digest)
    assert not blobs.exists(digest)
