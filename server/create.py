"""POST /api/create: build a model's layers and manifest from GGUF files, a safetensors directory or another
model, optionally quantized, with adapters and the text/JSON layers of a Modelfile."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from engine.parsers import parser_for_architecture
from engine.renderers import renderer_for_architecture
from engine.template import Template, TemplateError, named_template
from modelstore import gguf, temps
from modelstore.blobs import InvalidDigest, fsync_directory
from modelstore.gojson import encoder_bytes
from modelstore.layers import go_message, layer_from_blob, layer_status, new_layer
from modelstore.manifest import (
    MEDIA_ADAPTER,
    MEDIA_CONFIG,
    MEDIA_DRAFT,
    MEDIA_LICENSE,
    MEDIA_MESSAGES,
    MEDIA_MODEL,
    MEDIA_PARAMS,
    MEDIA_PROJECTOR,
    MEDIA_PROMPT,
    MEDIA_SYSTEM,
    MEDIA_TEMPLATE,
    ConfigV2,
    DraftConfig,
    Layer,
    Manifest,
)
from modelstore.names import Name, parse_name
from modelstore.store import ModelStore
from registry.pull import pull_model
from server.api import CreateRequest
from server.convert import ConvertError, convert_adapter, convert_model
from server.http import APIError
from server.quantize import SOURCE_TYPES, QuantizeError, parse_file_type, quantize
from server.routes.registry import api_errors

# The digest field of quantize progress lines: Ollama sends 19 zeros.
ZERO_DIGEST = "0" * 19


def _valid_relative_path(path: str) -> bool:
    """Go's fs.ValidPath: slash-separated, relative, no empty, `.` or `..` elements."""
    if path == ".":
        return True
    return bool(path) and not path.startswith("/") and all(
        part not in ("", ".", "..") for part in PurePosixPath(path).as_posix().split("/")
    ) and "//" not in path and not path.endswith("/")


def check_create_request(req: CreateRequest) -> Name:
    """The checks Ollama makes before any progress is streamed (each a plain 400)."""
    for path, digest in (req.files or {}).items():
        if not _valid_relative_path(path):
            raise APIError("file path must be relative", 400)
        if not digest:
            raise APIError("invalid digest format", 400)
    for path, digest in (req.draft_files or {}).items():
        if not _valid_relative_path(path):
            raise APIError("file path must be relative", 400)
        if not digest:
            raise APIError("invalid digest format", 400)
    if req.draft_quantize and not req.draft_files:
        raise APIError("--draft-quantize requires a DRAFT model", 400)
    for digest in (req.adapters or {}).values():
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
        self.base_config: ConfigV2 | None = None  # a `from` model's config, for models without a GGUF layer
        self.written: list[str] = []  # model blobs this create wrote (conversion, quantization)
        self.pending: dict[str, bytes] = {}  # digest -> data of staged text and JSON layers

    def add(self, layer: Layer, status: str) -> None:
        self.layers.append(layer)
        self.statuses.setdefault(layer.digest, status)

    def stage(self, data: bytes, media_type: str, status: str = "") -> Layer:
        """Add a layer whose blob is written only by `flush`, once nothing can fail any more."""
        layer = Layer(media_type=media_type, digest="sha256:" + hashlib.sha256(data).hexdigest(), size=len(data))
        self.pending[layer.digest] = data
        self.layers.append(layer)
        if status:
            self.statuses.setdefault(layer.digest, status)
        return layer

    def read(self, digest: str) -> bytes:
        return self.pending[digest] if digest in self.pending else self.store.blobs.read_bytes(digest)

    def flush(self) -> None:
        """Write the staged blobs still in use; their status says whether the blob was new."""
        for layer in self.layers:
            data = self.pending.pop(layer.digest, None)
            if data is not None:
                _, created = new_layer(self.store, data, layer.media_type)
                self.statuses.setdefault(layer.digest, layer_status(layer, created))
        self.pending.clear()

    def add_created(self, layer: Layer, created: bool) -> None:
        self.add(layer, layer_status(layer, created))

    def remove(self, *media_types: str) -> list[Layer]:
        removed = [layer for layer in self.layers if layer.media_type in media_types]
        self.layers = [layer for layer in self.layers if layer.media_type not in media_types]
        return removed

    def discard_written(self, keep: frozenset[str] | set[str] = frozenset()) -> None:
        """Delete the model blobs this create wrote that no manifest (and no kept layer) uses."""
        unused = [digest for digest in self.written if digest not in keep]
        self.written = [digest for digest in self.written if digest in keep]
        if unused:
            self.store.remove_unreferenced(unused)


def _gguf_media_type(info: gguf.GGUFInfo) -> str:
    kind = info.kv.get("general.type", "")
    if kind == "adapter":
        return MEDIA_ADAPTER
    if kind in ("projector", "mmproj"):
        return MEDIA_PROJECTOR
    arch = info.architecture
    if f"{arch}.block_count" not in info.kv:
        if f"{arch}.vision.block_count" in info.kv:
            return MEDIA_PROJECTOR  # a standalone vision model
        if arch == "clip" and (info.kv.get("clip.has_vision_encoder") or info.kv.get("clip.has_audio_encoder")):
            return MEDIA_PROJECTOR  # a llama.cpp mmproj file
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


def _blob(store: ModelStore, digest: str) -> Path:
    """The blob behind an uploaded file's digest. Ollama reports a missing one with its open error
    (and status 500); it is the client's mistake, so it is a 400 here."""
    try:
        blob = store.blobs.path(digest)
    except InvalidDigest as e:
        raise APIError(str(e), 400) from None
    if not blob.is_file():
        raise APIError(f"open {blob}: no such file or directory", 400)
    return blob


def _store_file(store: ModelStore, path: Path) -> tuple[str, bool]:
    """Move a finished file (in the blobs directory) onto its digest; returns (digest, created)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    name = "sha256:" + digest.hexdigest()
    final = store.blobs.path(name)
    if final.exists():
        path.unlink()
        os.utime(final)
        return name, False
    os.chmod(path, 0o644)
    os.replace(path, final)
    fsync_directory(store.blobs.directory)
    return name, True


@contextlib.contextmanager
def _temp_blob_path(store: ModelStore) -> Iterator[Path]:
    """A new file in the blobs directory, owned by this process while the block runs (modelstore/temps.py:
    a crash leaves it to the next start-up) and removed after it."""
    store.blobs.directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="sha256-", dir=store.blobs.directory)
    path = Path(name)
    try:
        temps.lock(fd)
        yield path
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)


async def _from_files(b: _Builder, files: dict[str, str], quantize_type: str) -> AsyncIterator[dict]:
    kind = _files_kind(b.store, files)
    if kind == "safetensors":
        async for item in _from_safetensors(b, files, quantize_type):
            yield item
        return
    infos = []
    for path in sorted(files):
        yield {"status": "parsing GGUF"}
        if len(infos) == 0:
            _quantize_target(quantize_type)
        digest = files[path]
        info = await _gguf_blob(b.store, digest)
        b.add(layer_from_blob(b.store, digest, _gguf_media_type(info)), f"using existing layer {digest}")
        infos.append(info)
    for info in infos:
        _autodetect_template(b, info)


async def _gguf_blob(store: ModelStore, digest: str) -> gguf.GGUFInfo:
    """The header of a blob given as a GGUF file (Ollama's 400 when it is not one)."""
    blob = _blob(store, digest)
    if not gguf.is_gguf(blob):
        raise APIError("supplied file was not in GGUF format", 400)
    return await asyncio.to_thread(_read_gguf, blob)


def _read_gguf(path: Path) -> gguf.GGUFInfo:
    try:
        return gguf.read_gguf(path)
    except gguf.GGUFError as e:
        raise APIError(str(e), 400) from None


async def _convert(b: _Builder, files: dict[str, str], convert: Callable[[Path, Path], None]) -> tuple[str, bool]:
    """Ollama's convertFromSafetensors: the blobs are linked under their file names into a temporary
    directory, converted into a GGUF, and that is stored as a blob; returns (digest, created)."""
    for path in files:
        if not _valid_relative_path(path):
            raise APIError(f"file path must be relative: {path}", 400)
    blobs = {path: _blob(b.store, digest) for path, digest in files.items()}
    b.store.root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ollama-safetensors", dir=b.store.root))
    try:
        for path, blob in blobs.items():
            link = workdir / path
            try:
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(blob, link)
            except (FileExistsError, NotADirectoryError, IsADirectoryError):  # paths that clash ("a", "a/b")
                raise APIError(f"file path must be relative: {path}", 400) from None
        with _temp_blob_path(b.store) as output:
            try:
                await asyncio.to_thread(convert, workdir, output)
                digest, created = await asyncio.to_thread(_store_file, b.store, output)
            except ConvertError as e:
                raise APIError(str(e), 400) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if created:
        b.written.append(digest)
    return digest, created


async def _from_safetensors(b: _Builder, files: dict[str, str], quantize_type: str) -> AsyncIterator[dict]:
    yield {"status": "converting model"}
    _quantize_target(quantize_type)
    digest, created = await _convert(b, files, convert_model)
    b.add_created(Layer(media_type=MEDIA_MODEL, digest=digest, size=b.store.blobs.size(digest)), created)
    _autodetect_template(b, await asyncio.to_thread(_read_gguf, b.store.blobs.path(digest)))


def _autodetect_template(b: _Builder, info: gguf.GGUFInfo) -> None:
    chat_template = info.kv.get("tokenizer.chat_template")
    if not isinstance(chat_template, str) or not chat_template:
        return
    named = named_template(chat_template)
    if named is None:
        return
    b.stage(named.template.encode(), MEDIA_TEMPLATE, f"using autodetected template {named.name}")
    if named.parameters:
        b.stage(encoder_bytes(named.parameters, sort_keys=True), MEDIA_PARAMS)


async def _from_adapters(b: _Builder, adapters: dict[str, str]) -> AsyncIterator[dict]:
    """Adapter files: one LoRA GGUF (`general.type` adapter), or a PEFT LoRA in safetensors converted for the
    base model; stored as an adapter layer."""
    if not adapters:
        return
    if _files_kind(b.store, adapters) == "safetensors":
        yield {"status": "converting adapter"}
        base = next((la for la in b.layers if la.media_type == MEDIA_MODEL), None)
        path = b.store.blobs.path(base.digest) if base is not None else None
        if path is None or not gguf.is_gguf(path):
            raise APIError("architecture not set for the base model", 400)
        kv = (await asyncio.to_thread(_read_gguf, path)).kv
        digest, created = await _convert(b, adapters, lambda src, out: convert_adapter(src, out, kv))
        b.add_created(Layer(media_type=MEDIA_ADAPTER, digest=digest, size=b.store.blobs.size(digest)), created)
        return
    if len(adapters) > 1:
        raise APIError("only one adapter is currently supported", 400)
    for path in sorted(adapters):
        yield {"status": "parsing GGUF"}
        digest = adapters[path]
        info = await _gguf_blob(b.store, digest)
        b.add(layer_from_blob(b.store, digest, _gguf_media_type(info)), f"using existing layer {digest}")


async def _from_draft(b: _Builder, files: dict[str, str], quantize_type: str) -> AsyncIterator[dict]:
    """A draft model for speculative decoding: GGUF files stored as draft layers after the adapters, the
    config's `draft` naming their format and architecture, quantized when asked (from an unquantized one)."""
    if not files:
        return
    if _files_kind(b.store, files) == "safetensors":
        # Ollama converts only Qwen 3.5's multi-token-prediction heads from safetensors.
        raise APIError("supplied file was not in GGUF format", 400)
    b.remove(MEDIA_DRAFT)  # a draft given here replaces the base model's
    want = _quantize_target(quantize_type)
    for path in sorted(files):
        yield {"status": "parsing GGUF"}
        digest = files[path]
        info = await _gguf_blob(b.store, digest)
        b.add(layer_from_blob(b.store, digest, MEDIA_DRAFT), f"using existing layer {digest}")
        b.config.draft = DraftConfig(model_format="gguf", architecture=info.architecture or "")
        source = _source_type_name(info)
        if want is not None and source != want:
            if source not in SOURCE_TYPES:
                raise APIError(f"draft quantization requires an unquantized draft model, got {source}", 400)
            async for item in _quantize_layer(b, len(b.layers) - 1, b.layers[-1], source, want,
                                              media_type=MEDIA_DRAFT):
                yield item


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
        requires=base.requires, capabilities=base.capabilities, draft=base.draft,
    )


def _inherit_from_base(b: _Builder) -> None:
    """Of a `from` model's config Ollama keeps only renderer, parser, requires, format and capabilities;
    family, size and quantization are derived again from the model layer."""
    base = b.config
    b.base_config = base
    b.config = ConfigV2(model_format=base.model_format, renderer=base.renderer, parser=base.parser,
                        requires=base.requires, capabilities=base.capabilities, draft=base.draft)


def _quantize_target(quantize_type: str) -> str | None:
    if not quantize_type:
        return None
    try:
        return parse_file_type(quantize_type)
    except QuantizeError as e:
        raise APIError(str(e), 400) from None


def _source_type_name(info: gguf.GGUFInfo) -> str:
    file_type = info.file_type
    if file_type == 0:
        return "F32"  # Ollama calls a 0 file type unknown and refuses it; it is F32
    return gguf.file_type_name(file_type) if file_type is not None else "unknown"


async def _model_layers(b: _Builder, quantize_type: str) -> AsyncIterator[dict]:
    """Quantize the model layers if asked, then derive the config from them (Ollama's createModel loop)."""
    want = _quantize_target(quantize_type)
    derived = False
    for index, layer in enumerate(list(b.layers)):
        if layer.media_type != MEDIA_MODEL:
            continue
        path = b.store.blobs.path(layer.digest)
        if not gguf.is_gguf(path):
            continue
        info = await asyncio.to_thread(_read_gguf, path)
        if want is not None:
            source = _source_type_name(info)
            if source not in SOURCE_TYPES:
                raise APIError("quantization is only supported for F16, BF16 and F32 models", 400)
            if source != want:
                async for item in _quantize_layer(b, index, layer, source, want):
                    yield item
                info = await asyncio.to_thread(_read_gguf, b.store.blobs.path(b.layers[index].digest))
        _config_from_gguf(b.config, info)
        derived = True
    if not derived and b.base_config is not None:
        base = b.base_config
        b.config.model_family = base.model_family
        b.config.model_families = base.model_families
        b.config.model_type = base.model_type
        b.config.file_type = base.file_type


async def _quantize_layer(b: _Builder, index: int, layer: Layer, source: str, want: str, *,
                          media_type: str = MEDIA_MODEL) -> AsyncIterator[dict]:
    status = f"quantizing {source} model to {want}"
    with _temp_blob_path(b.store) as output:
        try:
            async for done, count in quantize(b.store.blobs.path(layer.digest), output, want):
                yield {"status": status, "digest": ZERO_DIGEST, "total": layer.size,
                       "completed": int(done / count * layer.size) if count else 0}
            yield {"status": "verifying conversion"}
            digest, created = await asyncio.to_thread(_store_file, b.store, output)
        except QuantizeError as e:
            raise APIError(str(e), 500) from None
    if created:
        b.written.append(digest)
    quantized = Layer(media_type=media_type, digest=digest, size=b.store.blobs.size(digest))
    b.layers[index] = quantized
    b.statuses[digest] = layer_status(quantized, created)
    # The unquantized conversion is not kept.
    b.discard_written(keep={la.digest for la in b.layers})


def _config_from_gguf(config: ConfigV2, info: gguf.GGUFInfo) -> None:
    arch = info.architecture or "unknown"
    config.model_format = config.model_format or "gguf"
    config.model_family = config.model_family or arch
    config.model_type = config.model_type or gguf.human_number(info.parameter_count)
    file_type = info.file_type
    config.file_type = config.file_type or (gguf.file_type_name(file_type) if file_type else "unknown")
    config.model_families = [*(config.model_families or []), arch]
    config.renderer = config.renderer or renderer_for_architecture(arch)
    config.parser = config.parser or parser_for_architecture(arch)


def _read_params(b: _Builder, layers: list[Layer]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(json.loads(b.read(layer.digest)))
    return merged


def _architecture_parameters(b: _Builder, defaults: bool) -> dict[str, Any]:
    """Parameters Ollama's create gives a GGUF's architecture: Gemma 4 stops at the end of its turn."""
    if defaults and "gemma4" in (b.config.model_families or []):
        return {"stop": ["<turn|>"]}
    return {}


def _apply_overrides(b: _Builder, req: CreateRequest, defaults: dict[str, Any]) -> None:
    if req.template:
        try:
            Template.parse(req.template)
        except TemplateError as e:
            raise APIError(f"template error: {e}", 400) from None
        b.remove(MEDIA_TEMPLATE, MEDIA_PROMPT)
        b.stage(req.template.encode(), MEDIA_TEMPLATE)
    if req.system:
        b.remove(MEDIA_SYSTEM)
        b.stage(req.system.encode(), MEDIA_SYSTEM)
    licenses = [req.license] if isinstance(req.license, str) else (req.license or [])
    for text in licenses:
        b.stage(text.encode(), MEDIA_LICENSE)
    params = {**_read_params(b, [la for la in b.layers if la.media_type == MEDIA_PARAMS]), **defaults,
              **(req.parameters or {})}
    if params:
        b.remove(MEDIA_PARAMS)
        b.stage(encoder_bytes(params, sort_keys=True), MEDIA_PARAMS)  # a Go map: keys sorted
    if req.messages:
        b.remove(MEDIA_MESSAGES)
        messages = [go_message(_with_base64_images(m.template_dict())) for m in req.messages]
        b.stage(encoder_bytes(messages, sort_keys=False), MEDIA_MESSAGES)


def _with_base64_images(message: dict[str, Any]) -> dict[str, Any]:
    if "images" in message:
        message["images"] = [base64.b64encode(img).decode() for img in message["images"]]
    return message


async def create_model(store: ModelStore, req: CreateRequest, name: Name, *, noprune: bool) -> AsyncIterator[dict]:
    """Progress lines of a create; the manifest is written last, so a failure leaves no model (and the
    model blobs this create converted or quantized are removed again)."""
    if not req.from_ and not req.files:
        raise APIError("neither 'from' or 'files' was specified", 400)
    quantize_type = req.quantize or req.quantization
    b = _Builder(store)
    try:
        if req.from_:
            source = parse_name(req.from_)
            if not source.is_valid():
                raise APIError("invalid model name", 400)
            _quantize_target(quantize_type)
            if store.read_manifest(store.canonical_name(source)) is None:
                # As Ollama: a missing base model is pulled (over https), its progress part of this stream.
                async for item in api_errors(pull_model(store, source, noprune=noprune)):
                    yield item
            _from_model(b, source)
            _inherit_from_base(b)
        else:
            async for item in _from_files(b, req.files or {}, quantize_type):
                yield item
        async for item in _from_adapters(b, req.adapters or {}):
            yield item
        async for item in _from_draft(b, req.draft_files or {}, req.draft_quantize):
            yield item
        # Ollama fills the architecture's defaults only while the renderer or the parser is still open
        architecture_defaults = not ((req.renderer or b.config.renderer) and (req.parser or b.config.parser))
        async for item in _model_layers(b, quantize_type):
            yield item
        for field in ("renderer", "parser", "requires"):
            if getattr(req, field, ""):
                setattr(b.config, field, getattr(req, field))
        _apply_overrides(b, req, _architecture_parameters(b, architecture_defaults))
        b.flush()
        for layer in b.layers:
            yield {"status": b.statuses[layer.digest]}
        config_layer, _ = new_layer(store, b.config.to_bytes(), MEDIA_CONFIG)
        yield {"status": "writing manifest"}
        name = store.canonical_name(name)
        previous = store.read_manifest(name)
        await asyncio.to_thread(store.write_manifest, name, Manifest(config=config_layer, layers=b.layers, raw=None))
    except BaseException:
        b.discard_written()
        raise
    if previous is not None and not noprune:
        old = {layer.digest for layer in previous.layers} | {previous.config.digest}
        store.remove_unreferenced(old)
    yield {"status": "success"}
