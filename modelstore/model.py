"""A stored model as the server sees it: manifest, config and text layers resolved (Go `GetModel`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from modelstore.gguf import GGUFError, GGUFInfo, file_type_name, is_gguf, read_gguf
from modelstore.gojson import local_time_from_timestamp
from modelstore.manifest import (
    MEDIA_ADAPTER,
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
    Manifest,
    ManifestError,
    decode_first_json_value,
)
from modelstore.names import Name
from modelstore.store import ModelStore

DEFAULT_TEMPLATE = "{{ .Prompt }}"


class BrokenModel(Exception):
    """A model whose manifest names something unusable: a missing or undecodable blob, a corrupt GGUF.
    Lists skip it (as Ollama does); its own routes answer with this text."""

    def __init__(self, name: Name, problem: str) -> None:
        super().__init__(f"model '{name.display_shortest()}' is broken: {problem}")


def _problem(error: Exception) -> str:
    """What is wrong, naming the blob rather than the store's path."""
    if isinstance(error, FileNotFoundError) and error.filename:
        return f"blob {Path(error.filename).name} is missing"
    if isinstance(error, OSError) and error.filename:
        return f"blob {Path(error.filename).name}: {error.strerror}"
    return str(error)


def _text(path: Path) -> str:
    # Go strings are bytes; surrogateescape keeps invalid UTF-8 round-trippable.
    return path.read_bytes().decode("utf-8", "surrogateescape")


def _is_unknown_quantization(level: str) -> bool:
    return level in ("", "unknown")


@dataclass
class Model:
    name: Name
    manifest: Manifest
    digest: str  # bare hex SHA-256 of the manifest file
    modified_at: datetime  # manifest mtime, local zone
    modified_at_ns: int  # the same mtime in nanoseconds, for Go's time format
    config: ConfigV2
    model_path: Path | None = None
    projector_paths: list[Path] = field(default_factory=list)
    adapter_paths: list[Path] = field(default_factory=list)
    draft_path: Path | None = None
    template: str | None = None  # from a template (or legacy prompt) layer; None when absent
    system: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    license: list[str] = field(default_factory=list)
    parent_model: str = ""  # the model layer's `from`

    @property
    def size(self) -> int:
        return self.manifest.size

    @property
    def short_name(self) -> str:
        return self.name.display_shortest()

    def gguf(self) -> GGUFInfo | None:
        """The model layer's GGUF header; None without a GGUF model layer. BrokenModel when it is corrupt."""
        try:
            return self._gguf_header
        except (OSError, GGUFError) as e:
            blob = self.model_path.name if self.model_path is not None else "?"
            raise BrokenModel(self.name, f"model file {blob}: {_problem(e)}") from e

    @functools.cached_property
    def _gguf_header(self) -> GGUFInfo | None:
        # A request asks for the header several times: look it up (in the reader's cache) once per Model.
        if self.model_path is None or not is_gguf(self.model_path):
            return None
        return read_gguf(self.model_path)

    def details(self, *, show: bool = False) -> dict[str, Any]:
        """The API `details` object, keys in `api.ModelDetails` order.

        `/api/tags` (default) adds context_length/embedding_length (omitted when 0) from the
        config or the GGUF, reports empty families as null and falls back to the GGUF file
        type for any integer `general.file_type`. `/api/show` (show=True) omits the lengths,
        keeps families as stored and falls back only for a file type > 0, so F32 files stay
        `unknown` there, as in Ollama.
        """
        config = self.config
        families = config.model_families if show else (config.model_families or None)
        details: dict[str, Any] = {
            "parent_model": self.parent_model,
            "format": config.model_format,
            "family": config.model_family,
            "families": families,
            "parameter_size": config.model_type,
            "quantization_level": config.file_type,
        }
        info = self._gguf_or_none()
        if info is not None and _is_unknown_quantization(config.file_type) and info.file_type is not None:
            if not show or info.file_type > 0:
                fallback = file_type_name(info.file_type)
                if not _is_unknown_quantization(fallback):
                    details["quantization_level"] = fallback
        if show:
            return details
        context_length = config.context_length or (info.context_length if info else None)
        embedding_length = config.embedding_length or (info.embedding_length if info else None)
        if context_length:
            details["context_length"] = context_length
        if embedding_length:
            details["embedding_length"] = embedding_length
        return details

    def _gguf_or_none(self) -> GGUFInfo | None:
        # A broken model blob must not break listing (Ollama logs and carries on).
        try:
            return self.gguf()
        except BrokenModel:
            return None


def load_model(store: ModelStore, name: Name) -> Model | None:
    """Resolve a stored model; None when the name has no manifest.

    A corrupt manifest, or missing or undecodable layer blobs, raise BrokenModel, as Ollama fails then too.
    """
    try:
        return _load_model(store, name)
    except (OSError, ManifestError, UnicodeDecodeError) as e:
        raise BrokenModel(name, _problem(e)) from e


def _load_model(store: ModelStore, name: Name) -> Model | None:
    manifest = store.read_manifest(name)
    if manifest is None:
        return None
    mtime_ns = store.manifest_path(name).stat().st_mtime_ns
    config = ConfigV2()
    if manifest.config.digest:
        config = ConfigV2.from_bytes(store.blobs.read_bytes(manifest.config.digest))
    model = Model(
        name=name,
        manifest=manifest,
        digest=manifest.digest_hex,
        modified_at=local_time_from_timestamp(mtime_ns / 1e9),
        modified_at_ns=mtime_ns,
        config=config,
    )
    for layer in manifest.layers:
        path = store.blobs.path(layer.digest)
        media_type = layer.media_type
        if media_type == MEDIA_MODEL:
            model.model_path = path
            model.parent_model = layer.from_
        elif media_type == MEDIA_DRAFT:
            model.draft_path = path
        elif media_type == MEDIA_ADAPTER:
            model.adapter_paths.append(path)
        elif media_type == MEDIA_PROJECTOR:
            model.projector_paths.append(path)
        elif media_type in (MEDIA_TEMPLATE, MEDIA_PROMPT):
            model.template = _text(path)
        elif media_type == MEDIA_SYSTEM:
            model.system = _text(path)
        elif media_type == MEDIA_PARAMS:
            # Go decodes every params layer into the same map, so later keys win.
            model.params.update(_json_object(path))
        elif media_type == MEDIA_MESSAGES:
            model.messages = _json_messages(path)
        elif media_type == MEDIA_LICENSE:
            model.license.append(_text(path))
    return model


def _json_object(path: Path) -> dict[str, Any]:
    value = decode_first_json_value(path.read_bytes())
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ManifestError(f"{path.name}: params layer is not a JSON object")
    return value


def _json_messages(path: Path) -> list[dict[str, Any]]:
    value = decode_first_json_value(path.read_bytes())
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ManifestError(f"{path.name}: messages layer is not a JSON array of objects")
    return value

