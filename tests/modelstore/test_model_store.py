"""Manifest files, listing, case-insensitive names, copy, delete and pruning (store probes 3, 4, 54–56)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from modelstore.manifest import MEDIA_CONFIG, MEDIA_MODEL, MEDIA_SYSTEM, Layer, Manifest, ManifestError
from modelstore.names import Name, parse_name
from modelstore.store import ModelStore


def make_model(store: ModelStore, name: str, *texts: bytes) -> Manifest:
    """A manifest whose layers are small blobs with the given contents (the first is the 'model')."""
    layers = []
    for index, text in enumerate(texts):
        digest, _ = store.blobs.write_bytes(text)
        layers.append(Layer(MEDIA_MODEL if index == 0 else MEDIA_SYSTEM, digest, len(text)))
    config_digest, _ = store.blobs.write_bytes(b"{}\n" + name.encode())
    manifest = Manifest(config=Layer(MEDIA_CONFIG, config_digest, 3 + len(name)), layers=layers)
    store.write_manifest(parse_name(name), manifest)
    return manifest


def age(path: Path, seconds: float) -> None:
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def test_manifest_paths(store: ModelStore) -> None:
    root = store.root / "manifests"
    assert store.manifest_path(parse_name("llama3.2")) == root / "registry.ollama.ai/library/llama3.2/latest"
    assert (store.manifest_path(parse_name("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"))
            == root / "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF/Q4_K_M")
    with pytest.raises(ValueError):
        store.manifest_path(parse_name("x.com/m"))


def test_write_and_read_round_trip(store: ModelStore) -> None:
    manifest = make_model(store, "m", b"weights")
    name = parse_name("m")
    path = store.manifest_path(name)
    assert path.read_bytes() == manifest.to_bytes()
    loaded = store.read_manifest(name)
    assert loaded is not None and loaded.layers == manifest.layers and loaded.config == manifest.config
    assert loaded.digest_hex == hashlib.sha256(path.read_bytes()).hexdigest()  # probe 54
    assert len(loaded.digest_hex) == 64
    assert store.read_manifest(parse_name("absent")) is None
    # the write leaves no temp file behind, neither beside the manifest nor in manifests/
    assert os.listdir(path.parent) == ["latest"]
    assert os.listdir(store.manifests_dir) == ["registry.ollama.ai"]


def test_raw_registry_bytes_are_written_verbatim(store: ModelStore) -> None:
    raw = b'{"schemaVersion":2,"layers":[],"config":{"digest":"","size":0}}'
    store.write_manifest(parse_name("pulled"), Manifest.parse(raw))
    assert store.manifest_path(parse_name("pulled")).read_bytes() == raw


def test_corrupt_manifest_read_raises(store: ModelStore) -> None:
    path = store.manifest_path(parse_name("bad"))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"{not json")
    with pytest.raises(ManifestError):
        store.read_manifest(parse_name("bad"))


def test_mtime(store: ModelStore) -> None:
    make_model(store, "m", b"w")
    name = parse_name("m")
    path = store.manifest_path(name)
    os.utime(path, ns=(1_700_000_000_123456789, 1_700_000_000_123456789))
    assert store.manifest_mtime_ns(name) == 1_700_000_000_123456789
    mtime = store.manifest_mtime(name)
    assert mtime is not None and mtime.utcoffset() is not None
    assert mtime.timestamp() == pytest.approx(1_700_000_000.123457)
    assert store.manifest_mtime(parse_name("absent")) is None


def test_listing_skips_wrong_depth_invalid_and_corrupt(store: ModelStore) -> None:
    make_model(store, "good", b"w1")
    make_model(store, "hf.co/User/Repo:Q4", b"w2")
    manifests = store.manifests_dir
    (manifests / "too/shallow").mkdir(parents=True)
    (manifests / "too/shallow/m").write_bytes(b"{}")
    (manifests / "a/b/c/d").mkdir(parents=True)
    (manifests / "a/b/c/d/e").write_bytes(b"{}")
    (manifests / "h/n.s/m").mkdir(parents=True)
    (manifests / "h/n.s/m/t").write_bytes(b"{}")  # namespace with a dot: invalid name
    (manifests / "h/ns/corrupt").mkdir(parents=True)
    (manifests / "h/ns/corrupt/t").write_bytes(b"{")
    (manifests / "h/ns/dir/t").mkdir(parents=True)  # a directory at depth four is skipped

    good = {parse_name("good"), Name("hf.co", "User", "Repo", "Q4")}
    assert set(store.manifests()) == good
    # names alone (no parsing) include the corrupt file, whose name is valid
    assert set(store.manifest_names()) == good | {Name("h", "ns", "corrupt", "t")}


def test_listing_skips_unparsable(store: ModelStore) -> None:
    make_model(store, "good", b"w1")
    path = store.manifest_path(parse_name("bad"))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"[1,2]")
    assert list(store.manifests()) == [parse_name("good")]
    with pytest.raises(ManifestError):
        store.manifests(strict=True)


def test_canonical_name_matches_each_part_ignoring_case(store: ModelStore) -> None:
    make_model(store, "hf.co/Bartowski/Llama-3.2-GGUF:Q4_K_M", b"w")
    make_model(store, "MyModel", b"w2")
    assert (store.canonical_name(parse_name("HF.CO/bartowski/llama-3.2-gguf:q4_k_m"))
            == Name("hf.co", "Bartowski", "Llama-3.2-GGUF", "Q4_K_M"))
    assert store.canonical_name(parse_name("mymodel:LATEST")) == parse_name("MyModel")
    assert store.canonical_name(parse_name("other")) == parse_name("other")
    # parts are matched on their own, so an unknown model still gets known host/namespace spellings
    partly_known = store.canonical_name(parse_name("HF.co/BARTOWSKI/new"))
    assert partly_known == Name("hf.co", "Bartowski", "new", "latest")


def test_exact_spelling_wins_when_two_exist(store: ModelStore) -> None:
    make_model(store, "Model", b"a")
    make_model(store, "model", b"b")
    if len(store.manifest_names()) < 2:
        pytest.skip("case-insensitive file system")
    assert store.canonical_name(parse_name("model")).model == "model"
    assert store.canonical_name(parse_name("Model")).model == "Model"
    assert store.canonical_name(parse_name("MODEL")).model == "Model"


def test_delete_removes_manifest_dirs_and_only_unreferenced_blobs(store: ModelStore) -> None:
    kept = make_model(store, "keep", b"shared weights", b"kept system")
    doomed = make_model(store, "ns/doomed:1b", b"shared weights", b"own system")
    removed = store.delete_manifest(parse_name("ns/doomed:1b"))
    assert removed is not None and removed.layers == doomed.layers
    assert not (store.manifests_dir / "registry.ollama.ai/ns").exists(), "empty dirs pruned"

    gone = store.remove_unreferenced(removed.digests())
    own_digest = doomed.layers[1].digest
    assert set(gone) == {own_digest, doomed.config.digest}
    assert not store.blobs.exists(own_digest)
    for digest in kept.digests():
        assert store.blobs.exists(digest)
    assert store.delete_manifest(parse_name("ns/doomed:1b")) is None


def test_deleting_the_last_model_removes_manifests_dir(store: ModelStore) -> None:
    make_model(store, "only", b"w")
    store.delete_manifest(parse_name("only"))
    assert not store.manifests_dir.exists()
    make_model(store, "again", b"w")  # re-created on demand
    assert store.read_manifest(parse_name("again")) is not None


def test_remove_unreferenced_ignores_invalid_and_missing(store: ModelStore) -> None:
    assert store.remove_unreferenced(["sha256:nothex", "sha256:" + "0" * 64]) == []


def test_copy(store: ModelStore) -> None:
    make_model(store, "src", b"w")
    source, destination = parse_name("src"), parse_name("me/dst:v1")
    age(store.manifest_path(source), 7200)
    store.copy_manifest(source, destination)
    assert store.manifest_path(destination).read_bytes() == store.manifest_path(source).read_bytes()
    assert store.manifest_mtime_ns(destination) > store.manifest_mtime_ns(source)
    make_model(store, "other", b"x")
    store.copy_manifest(parse_name("other"), destination)  # overwrites silently
    assert store.read_manifest(destination).layers == store.read_manifest(parse_name("other")).layers
    with pytest.raises(FileNotFoundError):
        store.copy_manifest(parse_name("missing"), parse_name("x"))
    store.copy_manifest(parse_name("missing"), parse_name("missing"))  # same path: a no-op


def test_prune_grace_period_and_references(store: ModelStore) -> None:
    manifest = make_model(store, "m", b"weights")
    orphan_digest, _ = store.blobs.write_bytes(b"orphan")
    orphan = store.blobs.path(orphan_digest)
    partial = store.blobs.directory / (orphan.name + "-partial")
    partial.write_bytes(b"")
    stray = store.blobs.directory / "Q4_K_M12345"
    stray.write_bytes(b"")
    (store.manifests_dir / "registry.ollama.ai/empty/dir").mkdir(parents=True)

    assert store.prune() == [], "probe 56: everything younger than 1 h is kept"
    assert orphan.exists() and partial.exists() and stray.exists()
    assert not (store.manifests_dir / "registry.ollama.ai/empty").exists(), "empty manifest dirs pruned"

    for path in store.blobs.directory.iterdir():
        age(path, 3600)
    assert sorted(store.prune()) == sorted([orphan.name, partial.name, stray.name])
    for digest in manifest.digests():
        assert store.blobs.exists(digest), "referenced blobs survive"


def test_prune_is_skipped_when_a_manifest_is_corrupt(store: ModelStore) -> None:
    make_model(store, "m", b"weights")
    orphan_digest, _ = store.blobs.write_bytes(b"orphan")
    age(store.blobs.path(orphan_digest), 7200)
    bad = store.manifests_dir / "h/n.s/m/t"  # an invalid name counts as corrupt too
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"{}")
    assert store.prune() == []
    assert store.blobs.exists(orphan_digest)
    bad.unlink()
    assert store.prune() == [store.blobs.path(orphan_digest).name]


def test_manifest_at_wrong_depth_does_not_protect_blobs(store: ModelStore) -> None:
    manifest = make_model(store, "m", b"weights")
    hidden = store.manifests_dir / "deep/er/than/four/levels"
    hidden.parent.mkdir(parents=True)
    hidden.write_bytes(store.manifest_path(parse_name("m")).read_bytes())
    store.delete_manifest(parse_name("m"))
    assert set(store.remove_unreferenced(manifest.digests())) == set(manifest.digests())


def test_prune_fixes_colon_blob_names(store: ModelStore) -> None:
    manifest = make_model(store, "m", b"weights")
    path = store.blobs.path(manifest.layers[0].digest)
    colon = path.with_name(path.name.replace("sha256-", "sha256:"))
    path.rename(colon)
    age(colon, 7200)
    store.prune()
    assert path.exists() and not colon.exists()


def test_referenced_digests(store: ModelStore) -> None:
    first = make_model(store, "a", b"1", b"2")
    second = make_model(store, "b", b"1", b"3")
    assert store.referenced_digests() == set(first.digests()) | set(second.digests())
