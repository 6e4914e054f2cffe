"""Registry protocol facts that need no registry: store-registry.md probes 27–40 and the auth pieces."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from modelstore.names import parse_name
from registry import auth, download
from registry.transport import RegistryClient, RegistryError, token_flow
from registry.upload import etag, with_query

# --- part sizing, Range, state files (probes 27–30) ----------------------------------------------


def test_part_size_for_a_4_7_gb_blob_is_16_parts_of_293_75_mb() -> None:
    parts = download.part_plan(4_700_000_000)
    assert len(parts) == 16
    assert {size for _, size in parts} == {293_750_000}
    assert parts[0] == (0, 293_750_000) and parts[-1][0] == 15 * 293_750_000


def test_part_size_for_a_50_mb_blob_is_one_part() -> None:
    assert download.part_plan(50_000_000) == [(0, 50_000_000)]


def test_part_size_is_clamped_to_100_and_1000_mb_and_the_last_part_is_shorter() -> None:
    parts = download.part_plan(250_000_000)  # 250/16 < 100 MB -> 100 MB parts
    assert parts == [(0, 100_000_000), (100_000_000, 100_000_000), (200_000_000, 50_000_000)]
    huge = download.part_plan(40_000_000_000)  # 40 GB -> 40 parts of 1 GB
    assert len(huge) == 40 and {size for _, size in huge} == {1_000_000_000}
    assert download.part_plan(0) == []


def test_range_header_is_inclusive() -> None:
    assert download.range_header(0, 100_000_000) == "bytes=0-99999999"
    assert download.range_header(100, 101) == "bytes=100-100"


def test_state_file_is_gos_json_line_with_capitalised_fields() -> None:
    part = download.Part(n=3, offset=300_000_000, size=100_000_000, completed=123)
    assert part.state_bytes() == b'{"N":3,"Offset":300000000,"Size":100000000,"Completed":123}\n'
    again = download.parse_state(part.state_bytes())
    assert (again.n, again.offset, again.size, again.completed) == (3, 300_000_000, 100_000_000, 123)
    # Go's decoder matches keys without regard to case.
    assert download.parse_state(b'{"n":0,"offset":0,"size":5,"completed":9}').completed == 5


def _write_states(partial: Path, parts: list[tuple[int, int, int]]) -> None:
    for n, (offset, size, completed) in enumerate(parts):
        part = download.Part(n=n, offset=offset, size=size, completed=completed)
        Path(f"{partial}-{n}").write_bytes(part.state_bytes())


def test_state_files_are_read_back_and_bad_ones_ignored(tmp_path: Path) -> None:
    partial = tmp_path / ("sha256-" + "a" * 64 + "-partial")
    assert download.read_states(partial) is None
    _write_states(partial, [(0, 100, 40), (100, 50, 50)])
    (tmp_path / f".{partial.name}-0.tmp").write_bytes(b"junk")  # a temp file is not a state file
    parts = download.read_states(partial, 150)
    assert [(p.n, p.offset, p.size, p.completed) for p in parts] == [(0, 0, 100, 40), (1, 100, 50, 50)]
    assert download.read_states(partial, 151) is None  # the manifest disagrees on the size
    Path(f"{partial}-1").write_bytes(b'{"N":1,"Offset":99,"Size":50,"Completed":0}\n')
    assert download.read_states(partial) is None  # a gap
    Path(f"{partial}-1").write_bytes(b"")
    assert download.read_states(partial) is None  # unreadable


def test_units_resume_at_offset_plus_completed(tmp_path: Path) -> None:
    job = download.BlobDownload.__new__(download.BlobDownload)
    job.parts = [download.Part(0, 0, 40 << 20, completed=5 << 20), download.Part(1, 40 << 20, 10, completed=10)]
    job._extents = []
    job.units = []
    job._build_units()
    first = job.parts[0].units
    assert (first[0].start, first[0].size, first[0].done) == (0, 5 << 20, 5 << 20)
    assert [u.start for u in first[1:]] == [5 << 20, 21 << 20, 37 << 20]
    assert sum(u.size for u in first) == 40 << 20
    assert [u.remaining for u in job.parts[1].units] == [0]
    first[1].done = 16 << 20
    first[2].done = 7
    assert job.parts[0].live_completed() == (21 << 20) + 7
    first[3].done = 3 << 20  # beyond a gap: not contiguous, not counted
    assert job.parts[0].live_completed() == (21 << 20) + 7


def test_saved_extents_beyond_the_contiguous_prefix_are_skipped_on_resume() -> None:
    job = download.BlobDownload.__new__(download.BlobDownload)
    mib = 1 << 20
    job.parts = [download.Part(0, 0, 40 * mib, completed=10 * mib)]
    job._extents = [(16 * mib, 8 * mib), (5 * mib, 1 * mib), (39 * mib, 5 * mib)]  # one inside the prefix
    job._build_units()
    spans = [(u.start // mib, u.size // mib, u.done // mib) for u in job.units]
    assert spans == [(0, 10, 10), (10, 6, 0), (16, 8, 8), (24, 15, 0), (39, 1, 1)]
    assert sum(u.size for u in job.units) == 40 * mib
    assert job.parts[0].live_completed() == 10 * mib


# --- challenges and tokens (§5, probes 37–39) -----------------------------------------------------


def test_challenge_parsing_follows_ollamas_get_value() -> None:
    header = 'Bearer realm="https://ollama.com:443/token",service="ollama.com",scope="repository:library/x:pull"'
    challenge = auth.parse_challenge(header)
    assert challenge == auth.Challenge("bearer", "https://ollama.com:443/token", "ollama.com",
                                       "repository:library/x:pull")
    # Quirks: unquoted values lose their first character; Basic parses to a realm too.
    assert auth.parse_challenge("Bearer realm=https://x/token").realm == "ttps://x/token"
    basic = auth.parse_challenge('Basic realm="basic-realm"')
    assert (basic.scheme, basic.realm) == ("basic", "basic-realm")
    # A quote inside a value that is not followed by a comma is kept.
    assert auth.parse_challenge('Bearer realm="a"b",service="s"').realm == 'a"b'


def test_token_url_adds_sorted_service_scopes_ts_and_nonce() -> None:
    challenge = auth.Challenge("bearer", "https://registry.ollama.ai/v2/token?z=1", "ollama",
                               "repository:a/b:pull repository:c/d:pull,push")
    url = auth.token_url(challenge, now=1700000000, nonce="bm9uY2U")
    assert url == ("https://registry.ollama.ai/v2/token?nonce=bm9uY2U"
                   "&scope=repository%3Aa%2Fb%3Apull&scope=repository%3Ac%2Fd%3Apull%2Cpush"
                   "&service=ollama&ts=1700000000&z=1")
    nonce = auth.token_url(challenge).split("nonce=")[1].split("&")[0]
    assert len(base64.urlsafe_b64decode(nonce + "==")) == 16 and "=" not in nonce


def test_signing_string_for_an_empty_body_is_probe_37() -> None:
    expected_tail = "ZTNiMGM0NDI5OGZjMWMxNDlhZmJmNGM4OTk2ZmI5MjQyN2FlNDFlNDY0OWI5MzRjYTQ5NTk5MWI3ODUyYjg1NQ=="
    assert auth.EMPTY_BODY_HASH_B64 == expected_tail
    assert auth.signing_string("https://r.ollama.ai/v2/token?x=1") == (
        f"GET,https://r.ollama.ai/v2/token?x=1,{expected_tail}".encode())


def test_realm_on_another_host_is_refused_probe_39() -> None:
    with pytest.raises(auth.AuthError) as caught:
        auth.check_realm_host("https://evil.example/token?x=1", "registry.ollama.ai")
    assert str(caught.value) == 'realm host "evil.example" does not match original host "registry.ollama.ai"'
    auth.check_realm_host("https://registry.ollama.ai/v2/token", "registry.ollama.ai")
    with pytest.raises(auth.AuthError):  # host[:port] compared as strings
        auth.check_realm_host("https://registry.ollama.ai:443/v2/token", "registry.ollama.ai")


def test_token_flow_never_signs_for_a_foreign_realm() -> None:
    ollama = auth.parse_challenge('Bearer realm="https://auth.example/token",service="s"')
    with pytest.raises(RegistryError, match='realm host "auth.example" does not match original host'):
        token_flow("registry.ollama.ai", ollama, has_credentials=False)
    assert token_flow("registry.ollama.ai", auth.parse_challenge('Bearer realm="https://registry.ollama.ai/t"'),
                      False) == "ollama"
    # Other registries: a token server elsewhere is the standard Docker flow (no signature sent there).
    assert token_flow("registry.example:5000", ollama, has_credentials=False) == "standard"
    same_host = auth.parse_challenge('Bearer realm="https://registry.example:5000/token"')
    assert token_flow("registry.example:5000", same_host, has_credentials=False) == "ollama"
    assert token_flow("registry.example:5000", same_host, has_credentials=True) == "standard"


def test_key_is_created_in_ollamas_format_and_signs_like_ollama(tmp_path: Path) -> None:
    pytest.importorskip("cryptography", reason="ed25519 signing needs the cryptography package")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = auth.load_or_create_key(tmp_path)
    private = (tmp_path / "id_ed25519").read_bytes()
    assert private.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert max(len(line) for line in private.splitlines()) == 64  # Go's pem.EncodeToMemory
    assert os.stat(tmp_path / "id_ed25519").st_mode & 0o777 == 0o600
    public_line = (tmp_path / "id_ed25519.pub").read_text()
    assert public_line == f"ssh-ed25519 {key.public_b64}\n"
    # The same file loads again (an existing key keeps working).
    assert auth.load_or_create_key(tmp_path).public_b64 == key.public_b64

    data = auth.signing_string("https://registry.ollama.ai/v2/token?nonce=x")
    header = key.sign(data)
    pub_b64, signature_b64 = header.split(":")  # probe 38: no scheme word
    assert pub_b64 == key.public_b64
    blob = base64.b64decode(pub_b64)  # SSH wire format: string "ssh-ed25519", string key
    assert blob[4:15] == b"ssh-ed25519" and len(blob) == 4 + 11 + 4 + 32
    Ed25519PublicKey.from_public_bytes(blob[-32:]).verify(base64.b64decode(signature_b64), data)
    loaded = serialization.load_ssh_private_key(private, password=None)
    assert loaded.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == blob[-32:]


def test_docker_config_credentials(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {
        "127.0.0.1:5000": {"auth": base64.b64encode(b"alice:s3cr:et").decode()},
        "https://registry.example": {"username": "bob", "password": "pw"},
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"carol:x").decode()},
    }}))
    assert auth.docker_credentials("127.0.0.1:5000", config) == ("alice", "s3cr:et")
    assert auth.docker_credentials("registry.example", config) == ("bob", "pw")
    assert auth.docker_credentials("registry-1.docker.io", config) == ("carol", "x")
    assert auth.docker_credentials("other.example", config) is None
    assert auth.docker_credentials("x", tmp_path / "missing.json") is None
    assert auth.basic_header("alice", "pw") == "Basic " + base64.b64encode(b"alice:pw").decode()


def test_huggingface_token_from_the_environment_goes_only_to_hf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_abc")
    client = RegistryClient("hf.co")
    try:
        assert client.auth_headers("https://hf.co/v2/u/r/manifests/latest") == {"Authorization": "Bearer hf_abc"}
        assert client.auth_headers("https://cdn-lfs.hf.co/repos/x") == {}
    finally:
        client.close()
    other = RegistryClient("registry.example")
    assert other.authorization is None
    other.close()


# --- URLs (probes 33, 35, 40) ----------------------------------------------------------------------


def test_insecure_means_plain_http_probe_40() -> None:
    name = parse_name("registry.example:5000/library/m:tag")
    secure, insecure = RegistryClient.for_name(name), RegistryClient.for_name(name, insecure=True)
    assert secure.url(name, "manifests", "tag") == "https://registry.example:5000/v2/library/m/manifests/tag"
    assert insecure.url(name, "manifests", "tag") == "http://registry.example:5000/v2/library/m/manifests/tag"
    # The scheme on a name is dropped, as Ollama's handlers drop it.
    assert parse_name("http://registry.example:5000/library/m") == name.__class__(*name.parts()[:3], "latest")
    secure.close()
    insecure.close()


def test_upload_start_and_commit_queries_are_gos_sorted_encoding() -> None:
    name = parse_name("registry.example/me/m")
    client = RegistryClient.for_name(name)
    start = client.url(name, "blobs", "uploads", "")
    assert start == "https://registry.example/v2/me/m/blobs/uploads/"
    digest = "sha256:" + "ab" * 32
    mounted = with_query(start, [("mount", digest), ("from", "library/llama3.2")])
    assert mounted == start + "?from=library%2Fllama3.2&mount=sha256%3A" + "ab" * 32
    location = "https://registry.example/v2/me/m/blobs/uploads/uuid?_state=a%2Bb%3D%3D"
    commit = with_query(location, [("digest", digest), ("etag", "0123-1")])
    assert commit == ("https://registry.example/v2/me/m/blobs/uploads/uuid?_state=a%2Bb%3D%3D"
                      f"&digest=sha256%3A{'ab' * 32}&etag=0123-1")
    client.close()


def test_etag_is_md5_of_part_md5s_and_part_count() -> None:
    md5s = [hashlib.md5(b"one").digest(), hashlib.md5(b"two").digest()]
    assert etag(md5s) == hashlib.md5(md5s[0] + md5s[1]).hexdigest() + "-2"
