"""Building layers as /api/create does and reading the model back (store probes 11–20, 41)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import gguf as gguf_writer
import numpy as np
import pytest

from modelstore.gguf import file_type_name, human_number, read_gguf
from modelstore.layers import (
    go_message,
    json_layer,
    layer_from_blob,
    layer_status,
    messages_layer,
    new_layer,
    params_layer,
)
from modelstore.manifest import (
    MEDIA_ADAPTER,
    MEDIA_CONFIG,
    MEDIA_LICENSE,
    MEDIA_MESSAGES,
    MEDIA_MODEL,
    MEDIA_PARAMS,
    MEDIA_PROJECTOR,
    MEDIA_PROMPT,
    MEDIA_SYSTEM,
    MEDIA_TEMPLATE,
    ConfigV2,
    Manifest,
)
from modelstore.model import BrokenModel, load_model
from modelstore.names import parse_name
from modelstore.store import ModelStore

MINIMAL_GGUF_HEX = "89a2116c3a82d6a97f59f748d86ed4417214353fd178ee54df418fde32495fad"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def create_from_gguf(store: ModelStore, name: str, gguf_bytes: bytes, *extra) -> Manifest:
    """The create flow for a GGUF upload kept as is (<= v0.24 behaviour): model layer, extras, config."""
    digest, _ = store.blobs.write_bytes(gguf_bytes)  # POST /api/blobs
    model_layer = layer_from_blob(store, digest, MEDIA_MODEL)
    info = read_gguf(store.blobs.path(digest))
    config = ConfigV2(
        model_format="gguf",
        model_family=info.architecture,
        model_families=[info.architecture],
        model_type=human_number(info.parameter_count),
        file_type=file_type_name(info.file_type) if info.file_type else "unknown",
    )
    config_layer, _ = new_layer(store, config.to_bytes(), MEDIA_CONFIG)
    manifest = Manifest(config=config_layer, layers=[model_layer, *extra])
    store.write_manifest(parse_name(name), manifest)
    return manifest


def test_probes_11_12_14_create_from_minimal_gguf(store: ModelStore, make_minimal_gguf) -> None:
    manifest = create_from_gguf(store, "test", make_minimal_gguf())
    assert manifest.layers[0].digest == f"sha256:{MINIMAL_GGUF_HEX}" and manifest.layers[0].size == 68
    assert manifest.config.digest == "sha256:99759ad5b91e723db0393d698ffbb448b1b7df5ff6377a108c49254583b1bc8c"
    assert manifest.config.size == 147
    file_bytes = store.manifest_path(parse_name("test")).read_bytes()
    assert sha(file_bytes) == "f75369d1dd1fb2f7c3db80c05854077604d2e78397dbe270fbe9d8a453ae62ff"


@pytest.mark.parametrize(
    ("data", "media_type", "hex_digest"),
    [
        (b"{{ .Prompt }}", MEDIA_TEMPLATE,
         "b507b9c2f6ca642bffcd06665ea7c91f235fd32daeefdf875a0f938db05fb315"),
        (b"{{ .System }} {{ .Prompt }}", MEDIA_TEMPLATE,
         "fe7ac77b725cda2ccad03f88a880ecdfd7a33192d6cae08fce2c0ee1455991ed"),
        (b"Say hi!", MEDIA_SYSTEM, "f29e82a8284dbdf5910b1555580ff60b04238b8da9d5e51159ada67a4d0d5851"),
    ],
)
def test_probes_15_16_17_text_layers(
    store: ModelStore, data: bytes, media_type: str, hex_digest: str
) -> None:
    layer, created = new_layer(store, data, media_type)
    assert layer.digest == f"sha256:{hex_digest}" and layer.size == len(data) and created
    assert layer_status(layer, created) == f"creating new layer sha256:{hex_digest}"
    again, created_again = new_layer(store, data, media_type)
    assert again == layer and not created_again
    assert layer_status(again, created_again) == f"using existing layer sha256:{hex_digest}"


def test_probes_18_19_20_autodetected_template_layers(store: ModelStore, ollama_templates: Path) -> None:
    chatml = json.loads((ollama_templates / "chatml.json").read_text())
    layer, _ = params_layer(store, chatml)
    assert store.blobs.read_bytes(layer.digest) == (
        b'{"stop":["\\u003c|im_start|\\u003e","\\u003c|im_end|\\u003e"]}\n')
    assert layer.size == 59
    assert layer.digest == "sha256:f02dd72bb2423204352eabc5637b44d79d17f109fdb510a7c51455892aa2d216"

    llama3 = json.loads((ollama_templates / "llama3-instruct.json").read_text())
    layer, _ = params_layer(store, llama3)
    assert layer.size == 96
    assert layer.digest == "sha256:56bb8bd477a519ffa694fc449c2413c6f0e1d3b1c88fa7e3c9d88d3ae49d4dcb"

    template = (ollama_templates / "chatml.gotmpl").read_bytes().replace(b"\r\n", b"\n")
    layer, _ = new_layer(store, template, MEDIA_TEMPLATE)
    assert layer.size == 102
    assert layer.digest == "sha256:e3b2721cec511e3a627ae0993753abbf5c72cdf4cfcdbc8f5c33ce15c4c4e04b"


def test_params_are_sorted_and_go_encoded(store: ModelStore) -> None:
    params = {"temperature": 0.7, "stop": ["<|eot_id|>"], "num_ctx": 4096, "top_p": 1.0}
    layer, _ = params_layer(store, params)
    assert store.blobs.read_bytes(layer.digest) == (
        b'{"num_ctx":4096,"stop":["\\u003c|eot_id|\\u003e"],"temperature":0.7,"top_p":1}\n')
    assert layer.media_type == MEDIA_PARAMS


def test_messages_layer_field_order(store: ModelStore) -> None:
    messages = [
        {"content": "hi", "role": "USER"},
        {"tool_calls": [{"function": {"name": "f", "arguments": {"b": 1, "a": "<x>"}}}], "content": "",
         "role": "assistant", "thinking": "hmm"},
        {"role": "tool", "content": "42", "tool_name": "f", "images": None},
    ]
    layer, _ = messages_layer(store, messages)
    assert layer.media_type == MEDIA_MESSAGES
    assert store.blobs.read_bytes(layer.digest) == (
        b'[{"role":"user","content":"hi"},'
        b'{"role":"assistant","content":"","thinking":"hmm","tool_calls":[{"function":{"index":0,"name":"f",'
        b'"arguments":{"b":1,"a":"\\u003cx\\u003e"}}}]},'
        b'{"role":"tool","content":"42","tool_name":"f"}]\n')
    assert go_message({"role": "system", "content": "x", "tool_call_id": "c1"}) == {
        "role": "system", "content": "x", "tool_call_id": "c1"}


def test_json_layer_struct_order(store: ModelStore) -> None:
    layer, _ = json_layer(store, {"b": 1, "a": 2}, MEDIA_PARAMS, sort_keys=False)
    assert store.blobs.read_bytes(layer.digest) == b'{"b":1,"a":2}\n'


def test_probe_41_layer_from_existing_blob(store: ModelStore, make_minimal_gguf) -> None:
    digest, _ = store.blobs.write_bytes(make_minimal_gguf())
    path = store.blobs.path(digest)
    old = time.time() - 7200
    os.utime(path, (old, old))
    layer = layer_from_blob(store, digest, MEDIA_MODEL, from_="llama3.2:latest")
    assert layer.to_dict() == {"mediaType": MEDIA_MODEL, "digest": digest, "size": 68,
                               "from": "llama3.2:latest"}
    assert path.stat().st_mtime > old + 3600, "wrapping a blob touches it"
    assert layer_status(layer, False) == f"using existing layer {digest}"
    with pytest.raises(FileNotFoundError):
        layer_from_blob(store, "sha256:" + "0" * 64, MEDIA_MODEL)
    with pytest.raises(ValueError):
        layer_from_blob(store, "", MEDIA_MODEL)


def test_load_model_reads_every_layer_kind(store: ModelStore, make_minimal_gguf) -> None:
    layers = [
        new_layer(store, b"{{ .Prompt }} legacy", MEDIA_PROMPT)[0],
        new_layer(store, b"projector", MEDIA_PROJECTOR)[0],
        new_layer(store, b"adapter", MEDIA_ADAPTER)[0],
        new_layer(store, "Système".encode(), MEDIA_SYSTEM)[0],
        params_layer(store, {"stop": ["a"], "temperature": 0.5})[0],
        params_layer(store, {"temperature": 0.9, "top_k": 20})[0],  # later params layers win per key
        messages_layer(store, [{"role": "user", "content": "hello"}])[0],
        new_layer(store, b"MIT", MEDIA_LICENSE)[0],
        new_layer(store, b"Apache", MEDIA_LICENSE)[0],
        new_layer(store, b"ignored", "application/vnd.ollama.image.embed")[0],
    ]
    manifest = create_from_gguf(store, "full", make_minimal_gguf(), *layers)
    model = load_model(store, parse_name("full"))
    assert model is not None
    assert model.name == parse_name("full") and model.short_name == "full:latest"
    assert model.digest == manifest.digest_hex
    assert model.size == manifest.size
    assert model.modified_at_ns == store.manifest_path(parse_name("full")).stat().st_mtime_ns
    assert model.modified_at.utcoffset() is not None
    assert model.model_path == store.blobs.path(f"sha256:{MINIMAL_GGUF_HEX}")
    assert model.projector_paths == [store.blobs.path(layers[1].digest)]
    assert model.adapter_paths == [store.blobs.path(layers[2].digest)]
    assert model.template == "{{ .Prompt }} legacy"
    assert model.system == "Système"
    assert model.params == {"stop": ["a"], "temperature": 0.9, "top_k": 20}
    assert model.messages == [{"role": "user", "content": "hello"}]
    assert model.license == ["MIT", "Apache"]
    assert model.config.model_family == "test"
    assert model.gguf().architecture == "test"
    assert load_model(store, parse_name("absent")) is None


def test_details_for_tags_and_show(store: ModelStore, make_minimal_gguf) -> None:
    create_from_gguf(store, "test", make_minimal_gguf())
    model = load_model(store, parse_name("test"))
    expected = {"parent_model": "", "format": "gguf", "family": "test", "families": ["test"],
                "parameter_size": "0", "quantization_level": "unknown"}
    assert model.details() == expected
    assert list(model.details(show=True)) == list(expected)


def test_details_fall_back_to_gguf(store: ModelStore, smollm2: Path) -> None:
    store.blobs.directory.mkdir(parents=True)
    blob = store.blobs.path(f"sha256:{'1' * 64}")
    shutil.copyfile(smollm2, blob)
    layer = layer_from_blob(store, f"sha256:{'1' * 64}", MEDIA_MODEL, from_="smollm2:latest")
    config = ConfigV2(model_format="gguf", model_family="llama", model_families=None, model_type="134.52M",
                      file_type="")
    config_layer, _ = new_layer(store, config.to_bytes(), MEDIA_CONFIG)
    store.write_manifest(parse_name("smol"), Manifest(config=config_layer, layers=[layer]))
    model = load_model(store, parse_name("smol"))
    assert model.parent_model == "smollm2:latest"
    assert model.details() == {
        "parent_model": "smollm2:latest", "format": "gguf", "family": "llama", "families": None,
        "parameter_size": "134.52M", "quantization_level": "Q4_1", "context_length": 8192,
        "embedding_length": 576,
    }
    assert model.details(show=True)["quantization_level"] == "Q4_1"
    assert "context_length" not in model.details(show=True)


def test_f32_quirk_tags_show_f32_but_show_keeps_unknown(store: ModelStore, tmp_path: Path) -> None:
    path = tmp_path / "f32.gguf"
    writer = gguf_writer.GGUFWriter(path, "llama")
    writer.add_uint32("general.file_type", 0)
    writer.add_tensor("w", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    create_from_gguf(store, "f32", path.read_bytes())
    model = load_model(store, parse_name("f32"))
    assert model.config.file_type == "unknown"  # create records unknown for file type 0
    assert model.details()["quantization_level"] == "F32"
    assert model.details(show=True)["quantization_level"] == "unknown"


def test_missing_config_blob_raises(store: ModelStore, make_minimal_gguf) -> None:
    manifest = create_from_gguf(store, "broken", make_minimal_gguf())
    store.blobs.remove(manifest.config.digest)
    blob = manifest.config.digest.replace(":", "-")
    with pytest.raises(BrokenModel, match=f"model 'broken:latest' is broken: blob {blob} is missing"):
        load_model(store, parse_name("broken"))
