"""Manifest and config blob bytes (store probes 9, 10, 12, 13, 14)."""

from __future__ import annotations

import hashlib

import pytest

from modelstore.manifest import (
    MANIFEST_MEDIA_TYPE,
    MEDIA_CONFIG,
    MEDIA_MODEL,
    MEDIA_TENSOR,
    ConfigV2,
    DraftConfig,
    Layer,
    Manifest,
    ManifestError,
)

MODEL_DIGEST = "sha256:89a2116c3a82d6a97f59f748d86ed4417214353fd178ee54df418fde32495fad"
CONFIG_BYTES = (b'{"model_format":"gguf","model_family":"test","model_families":["test"],"model_type":"0",'
                b'"file_type":"unknown","architecture":"amd64","os":"linux"}\n')
CONFIG_DIGEST = "sha256:99759ad5b91e723db0393d698ffbb448b1b7df5ff6377a108c49254583b1bc8c"
MANIFEST_HEX = "f75369d1dd1fb2f7c3db80c05854077604d2e78397dbe270fbe9d8a453ae62ff"
OLD_CONFIG_HEX = "6bcdb8859d417753645538d7bbfbd7ca91a3f0c191aef5379c53c05e86b669dd"


def test_probe_12_config_blob() -> None:
    config = ConfigV2(model_format="gguf", model_family="test", model_families=["test"],
                      model_type="0", file_type="unknown")
    data = config.to_bytes()
    assert data == CONFIG_BYTES
    assert len(data) == 147
    assert "sha256:" + hashlib.sha256(data).hexdigest() == CONFIG_DIGEST


def test_probe_13_old_config_with_rootfs_is_read() -> None:
    old = CONFIG_BYTES[:-2] + b',"rootfs":{"type":"layers","diff_ids":["' + MODEL_DIGEST.encode() + b'"]}}\n'
    assert hashlib.sha256(old).hexdigest() == OLD_CONFIG_HEX
    assert ConfigV2.from_bytes(old).to_bytes() == CONFIG_BYTES


def test_probe_9_10_14_manifest_bytes() -> None:
    manifest = Manifest(config=Layer(MEDIA_CONFIG, CONFIG_DIGEST, 147),
                        layers=[Layer(MEDIA_MODEL, MODEL_DIGEST, 68)])
    data = manifest.to_bytes()
    assert data.startswith(b'{"schemaVersion":2,'
                           b'"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
                           b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json",')
    assert data.endswith(b"\n")
    assert hashlib.sha256(data).hexdigest() == MANIFEST_HEX
    assert manifest.digest_hex == MANIFEST_HEX
    assert manifest.size == 147 + 68
    assert manifest.to_bytes(trailing_newline=False) == data[:-1]
    assert manifest.digests() == [MODEL_DIGEST, CONFIG_DIGEST]


def test_layer_omitempty_fields_and_order() -> None:
    plain = Layer(MEDIA_MODEL, MODEL_DIGEST, 68)
    assert plain.to_dict() == {"mediaType": MEDIA_MODEL, "digest": MODEL_DIGEST, "size": 68}
    layer = Layer(MEDIA_TENSOR, MODEL_DIGEST, 68, from_="llama3.2:latest", name="text/model.weight")
    assert list(layer.to_dict()) == ["mediaType", "digest", "size", "from", "name"]
    assert Layer.from_dict(layer.to_dict()) == layer


def test_parse_keeps_raw_bytes_and_digest() -> None:
    # A pulled manifest: registry bytes, no trailing newline, pretty-printed even.
    raw = (b'{\n  "schemaVersion": 2,\n  "mediaType": "' + MANIFEST_MEDIA_TYPE.encode() + b'",\n'
           b'  "config": {"mediaType": "' + MEDIA_CONFIG.encode() + b'", "digest": "' + CONFIG_DIGEST.encode()
           + b'", "size": 147},\n  "layers": [{"mediaType": "' + MEDIA_MODEL.encode() + b'", "digest": "'
           + MODEL_DIGEST.encode() + b'", "size": 68, "from": "x:latest", "annotations": {}}]\n}')
    manifest = Manifest.parse(raw)
    assert manifest.raw == raw
    assert manifest.file_bytes() == raw
    assert manifest.digest_hex == hashlib.sha256(raw).hexdigest()
    assert manifest.layers[0].from_ == "x:latest"
    # push re-marshals compactly and drops unknown fields
    assert b"annotations" not in manifest.to_bytes()


def test_parse_like_go_decoder() -> None:
    raw = (b'{"SchemaVersion":2,"CONFIG":{"digest":"' + CONFIG_DIGEST.encode() + b'","size":147},'
           b'"layers":null}\n{"trailing": garbage')
    manifest = Manifest.parse(raw)
    assert manifest.schema_version == 2
    assert manifest.config.digest == CONFIG_DIGEST
    assert manifest.layers == []


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'{"layers":{}}', b'{"config":{"size":"68"}}',
                                 b'{"layers":[{"size":1.5}]}'])
def test_corrupt_manifests(raw: bytes) -> None:
    with pytest.raises(ManifestError):
        Manifest.parse(raw)


def test_config_omitempty_and_null_families() -> None:
    assert ConfigV2().to_bytes() == (b'{"model_format":"","model_family":"","model_families":null,'
                                     b'"model_type":"","file_type":"","architecture":"amd64","os":"linux"}\n')
    full = ConfigV2(model_format="gguf", model_family="llama", model_families=["llama", "clip"],
                    model_type="8.0B", file_type="Q4_K_M", renderer="r", parser="p", requires="0.14.0",
                    remote_host="h",
                    remote_model="m", capabilities=["vision"], context_length=4096, embedding_length=2048,
                    base_name="b", draft=DraftConfig(architecture="llama"))
    keys = list(full.to_dict())
    assert keys == ["model_format", "model_family", "model_families", "model_type", "file_type", "renderer",
                    "parser", "requires", "remote_host", "remote_model", "capabilities", "context_length",
                    "embedding_length", "base_name", "draft", "architecture", "os"]
    assert full.to_dict()["draft"] == {"architecture": "llama"}
    assert ConfigV2.from_bytes(full.to_bytes()) == full


def test_config_from_bytes_tolerates_unknown_and_missing() -> None:
    config = ConfigV2.from_bytes(b'{"model_format":"gguf","model_families":[],"generation_defaults":{"x":1}}')
    assert config.model_format == "gguf"
    assert config.model_families == []
    assert config.architecture == "" and config.os == ""
    assert b'"model_families":[]' in config.to_bytes()
