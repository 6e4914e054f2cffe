"""POST /api/create: build a model's layers and manifest from GGUF files or another model."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from typing import Any

from engine.template import Template, TemplateError, named_template
from modelstore import gguf
from modelstore.layers import layer_from_blob, layer_status, messages_layer, new_layer, params_layer
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
    Layer,
    Manifest,
)
from modelstore.names import Name, parse_name
from modelstore.store import ModelStore
from registry.pull import pull_model
from server.api import CreateRequest
from server.http import APIError
from server.routes.registry import api_errors

QUANTIZE_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_K_S", "Q4_K_M")


def _valid_relative_path(path: str) -> bool:
    """Go's fs.ValidPath: slash-separated, relative, no empty, `.` or `..` elements."""
    if path == ".":
        return True
    return bool(path) and not path.startswith("/") and all(
        part not in ("", ".", "..") for part in PurePosixPath(path).as_posix().split("/")
    ) and "//" not in path and not path.endswith("/")


def check_create_request(req: CreateRequest) -> Name:
    """The checks Ollama makes before any progress is streamed (each a plain 400)."""
    for files in (req.files or {}, req.adapters or {}):
        for path, digest in files.items():
            if not _valid_relative_path(path):
                raise APIError("file path must be relative", 400)
            if not digest:
                raise APIError("invalid digest format", 400)
    name = parse_name(req.model or req.name)
    if not name.is_valid():
        raise APIError("invalid model name", 400)
    return name


class _Builder:
    """Accumulates layers and progress lines while a create runs."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self.layers: list[Layer] = []
        self.statuses: dict[str, str] = {}  # layer digest -> status line shown for it
        self.config = ConfigV2()

    def add(self, layer: Layer, status: str) -> None:
        self.layers.append(layer)
        self.statuses.setdefault(layer.digest, status)

    def add_new(self, data: bytes, media_type: str) -> None:
        self.add_created(*new_layer(self.store, data, media_type))

    def add_created(self, layer: Layer, created: bool) -> None:
        self.add(layer, layer_status(layer, created))

    def remove(self, *media_types: str) -> list[Layer]:
        removed = [layer for layer in self.layers if layer.media_type in media_types]
        self.layers = [layer for layer in self.layers if layer.media_type not in media_types]
        return removed


def _gguf_media_type(info: gguf.GGUFInfo) -> str:
    kind = info.kv.get("general.type", "")
    if kind == "adapter":
        return MEDIA_ADAPTER
    if kind in ("projector", "mmproj"):
        return MEDIA_PROJECTOR
    arch = info.architecture
    if f"{arch}.vision.block_count" in info.kv and f"{arch}.block_count" not in info.kv:
        return MEDIA_PROJECTOR
    return MEDIA_MODEL


def _files_kind(store: ModelStore, files: dict[str, str]) -> str:
    for path in files:
        if path.endswith(".safetensors"):
            return "safetensors"
        if path.endswith(".gguf"):
            return "gguf"
    for digest in files.values():
        try:
            blob = store.blobs.path(digest)
            if blob.exists() and gguf.is_gguf(blob):
                return "gguf"
        except ValueError:
            continue
    raise APIError("unknown type", 400)


async def _from_files(b: _Builder, files: dict[str, str]) -> AsyncIterator[dict]:
    kind = _files_kind(b.store, files)
    if kind == "safetensors":
        raise APIError("creating a model from safetensors is not supported yet", 400)
    for path in sorted(files):
        yield {"status": "parsing GGUF"}
        digest = files[path]
        try:
            blob = b.store.blobs.path(digest)
        except ValueError as e:
            raise APIError(str(e), 400) from None
        if not blob.exists():
            raise APIError(f"open {blob}: no such file or directory", 500)
        if not gguf.is_gguf(blob):
            raise APIError("supplied file was not in GGUF format", 400)
        info = await asyncio.to_thread(gguf.read_gguf, blob)
        media_type = _gguf_media_type(info)
        b.add(layer_from_blob(b.store, digest, media_type), f"using existing layer {digest}")
        if media_type == MEDIA_MODEL:
            _config_from_gguf(b.config, info)
            _autodetect_template(b, info)


def _config_from_gguf(config: ConfigV2, info: gguf.GGUFInfo) -> None:
    arch = info.architecture or "unknown"
    config.model_format = config.model_format or "gguf"
    config.model_family = config.model_family or arch
    config.model_type = config.model_type or gguf.human_number(info.parameter_count)
    file_type = info.file_type
    config.file_type = config.file_type or (gguf.file_type_name(file_type) if file_type else "unknown")
    config.model_families = [*(config.model_families or []), arch]


def _autodetect_template(b: _Builder, info: gguf.GGUFInfo) -> None:
    chat_template = info.kv.get("tokenizer.chat_template")
    if not isinstance(chat_template, str) or not chat_template:
        return
    named = named_template(chat_template)
    if named is None:
        return
    layer, _ = new_layer(b.store, named.template.encode(), MEDIA_TEMPLATE)
    b.add(layer, f"using autodetected template {named.name}")
    if named.parameters:
        b.add_created(*params_layer(b.store, named.parameters))


def _from_model(b: _Builder, source: Name) -> None:
    model_name = b.store.canonical_name(source)
    manifest = b.store.read_manifest(model_name)
    if manifest is None:
        raise APIError("pull model manifest: file does not exist", 500)
    origin = model_name.display_shortest()
    for layer in manifest.layers:
        wrapped = layer_from_blob(b.store, layer.digest, layer.media_type, from_=origin, name=layer.name)
        b.add(wrapped, f"using existing layer {layer.digest}")
    base = ConfigV2.from_bytes(b.store.blobs.path(manifest.config.digest).read_bytes())
    b.config = ConfigV2(
        model_format=base.model_format, model_family=base.model_family, model_families=base.model_families,
        model_type=base.model_type, file_type=base.file_type, renderer=base.renderer, parser=base.parser,
        requires=base.requires, capabilities=base.capabilities,
    )


def _read_params(b: _Builder, layers: list[Layer]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(json.loads(b.store.blobs.read_bytes(layer.digest)))
    return merged


def _apply_overrides(b: _Builder, req: CreateRequest) -> None:
    if req.template:
        try:
            Template.parse(req.template)
        except TemplateError as e:
            raise APIError(f"template error: {e}", 400) from None
        b.remove(MEDIA_TEMPLATE, MEDIA_PROMPT)
        b.add_new(req.template.encode(), MEDIA_TEMPLATE)
    if req.system:
        b.remove(MEDIA_SYSTEM)
        b.add_new(req.system.encode(), MEDIA_SYSTEM)
    licenses = [req.license] if isinstance(req.license, str) else (req.license or [])
    for text in licenses:
        b.add_new(text.encode(), MEDIA_LICENSE)
    params = {**_read_params(b, [la for la in b.layers if la.media_type == MEDIA_PARAMS]), **(req.parameters or {})}
    if params:
        b.remove(MEDIA_PARAMS)
        b.add_created(*params_layer(b.store, params))
    if req.messages:
        b.remove(MEDIA_MESSAGES)
        b.add_created(*messages_layer(b.store, [_with_base64_images(m.template_dict()) for m in req.messages]))


def _with_base64_images(message: dict[str, Any]) -> dict[str, Any]:
    if "images" in message:
        message["images"] = [base64.b64encode(img).decode() for img in message["images"]]
    return message


def _check_quantize(b: _Builder, quantize: str) -> None:
    if not quantize:
        return
    want = quantize.upper()
    want = "Q4_K_M" if want == "Q4_K" else want
    if want not in QUANTIZE_TYPES:
        raise APIError(
            f"unsupported quantization type {want} - supported types are F32, F16, Q4_K_S, Q4_K_M, Q8_0", 400
        )
    if b.config.file_type not in ("F16", "BF16", "F32", "unknown"):
        raise APIError("quantization is only supported for F16, BF16 and F32 models", 400)
    if b.config.file_type != want:
        raise APIError("quantization is not supported yet", 400)


async def create_model(store: ModelStore, req: CreateRequest, name: Name, *, noprune: bool) -> AsyncIterator[dict]:
    """Progress lines of a create; the manifest is written last, so a failure leaves no model."""
    if not req.from_ and not req.files:
        raise APIError("neither 'from' or 'files' was specified", 400)
    b = _Builder(store)
    if req.from_:
        source = parse_name(req.from_)
        if not source.is_valid():
            raise APIError("invalid model name", 400)
        if store.read_manifest(store.canonical_name(source)) is None:
            # As Ollama: a missing base model is pulled (over https), its progress part of this stream.
            async for item in api_errors(pull_model(store, source, noprune=noprune)):
                yield item
        _from_model(b, source)
    else:
        async for item in _from_files(b, req.files or {}):
            yield item
    _check_quantize(b, req.quantize or req.quantization)
    for _, digest in sorted((req.adapters or {}).items()):
        b.add(layer_from_blob(store, digest, MEDIA_ADAPTER), f"using existing layer {digest}")
    _apply_overrides(b, req)
    for layer in b.layers:
        yield {"status": b.statuses[layer.digest]}
    config_layer, _ = new_layer(store, b.config.to_bytes(), MEDIA_CONFIG)
    yield {"status": "writing manifest"}
    name = store.canonical_name(name)
    previous = store.read_manifest(name)
    await asyncio.to_thread(store.write_manifest, name, Manifest(config=config_layer, layers=b.layers, raw=None))
    if previous is not None and not noprune:
        old = {layer.digest for layer in previous.layers} | {previous.config.digest}
        store.remove_unreferenced(old)
    yield {"status": "success"}
