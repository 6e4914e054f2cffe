"""Manifest and config blob formats (`manifest/manifest.go`, `types/model/config.go`).

Both are written with Go's JSON encoder (struct field order, HTML escapes, trailing newline) so
that their digests equal Ollama's for the same content. Reading mirrors Go's decoder: unknown keys
are dropped, keys match case-insensitively, and data after the first JSON value is ignored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from modelstore.gojson import encoder_bytes

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_MODEL = "application/vnd.ollama.image.model"
MEDIA_PROJECTOR = "application/vnd.ollama.image.projector"
MEDIA_ADAPTER = "application/vnd.ollama.image.adapter"
MEDIA_DRAFT = "application/vnd.ollama.image.draft"
MEDIA_TEMPLATE = "application/vnd.ollama.image.template"
MEDIA_PROMPT = "application/vnd.ollama.image.prompt"  # legacy name of the template layer
MEDIA_SYSTEM = "application/vnd.ollama.image.system"
MEDIA_PARAMS = "application/vnd.ollama.image.params"
MEDIA_MESSAGES = "application/vnd.ollama.image.messages"
MEDIA_LICENSE = "application/vnd.ollama.image.license"
MEDIA_EMBED = "application/vnd.ollama.image.embed"  # deprecated, ignored when reading
MEDIA_TENSOR = "application/vnd.ollama.image.tensor"  # MLX tensor models (not supported)
MEDIA_JSON = "application/vnd.ollama.image.json"


class ManifestError(ValueError):
    """A manifest or config blob that Go's decoder would reject."""


def decode_first_json_value(raw: bytes) -> Any:
    """Go `json.Decoder.Decode`: the first value in the stream; what follows is not read."""
    text = raw.decode("utf-8", "replace")
    try:
        value, _ = json.JSONDecoder().raw_decode(text.lstrip(" \t\r\n"))
    except json.JSONDecodeError as exc:
        raise ManifestError(str(exc)) from exc
    return value


def _lookup(obj: dict[str, Any], key: str) -> Any:
    """A struct field as Go's decoder finds it: the exact key, else one that matches ignoring case."""
    if key in obj:
        return obj[key]
    folded = [value for name, value in obj.items() if name.lower() == key.lower()]
    return folded[-1] if folded else None


def _field(obj: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    """Look a field up and check its JSON type (null counts as absent)."""
    value = _lookup(obj, key)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ManifestError(f"json: cannot unmarshal {type(value).__name__} into field {key}")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ManifestError(f"json: cannot unmarshal {type(value).__name__} into {what}")
    return value


def _string_list(value: Any, key: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ManifestError(f"json: cannot unmarshal into field {key}")
    return list(value)


@dataclass
class Layer:
    media_type: str
    digest: str
    size: int
    from_: str = ""
    name: str = ""  # only on tensor-model layers

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.from_:
            out["from"] = self.from_
        if self.name:
            out["name"] = self.name
        return out

    @classmethod
    def from_dict(cls, obj: Any) -> Layer:
        obj = _object(obj, "Layer")
        return cls(
            media_type=_field(obj, "mediaType", str, ""),
            digest=_field(obj, "digest", str, ""),
            size=_field(obj, "size", int, 0),
            from_=_field(obj, "from", str, ""),
            name=_field(obj, "name", str, ""),
        )


@dataclass
class Manifest:
    config: Layer
    layers: list[Layer]
    raw: bytes | None = None  # the file's bytes when read from disk or a registry
    schema_version: int = 2
    media_type: str = MANIFEST_MEDIA_TYPE

    def to_dict(self) -> dict[str, Any]:
        return {
            "schemaVersion": self.schema_version,
            "mediaType": self.media_type,
            "config": self.config.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def to_bytes(self, *, trailing_newline: bool = True) -> bytes:
        """Go encoder output (what create writes); without the newline it is `json.Marshal` (push)."""
        data = encoder_bytes(self.to_dict())
        return data if trailing_newline else data[:-1]

    def file_bytes(self) -> bytes:
        """What goes to disk: the raw bytes when there are some (pulls keep them), else `to_bytes()`."""
        return self.raw if self.raw is not None else self.to_bytes()

    @classmethod
    def parse(cls, raw: bytes) -> Manifest:
        obj = _object(decode_first_json_value(raw), "Manifest")
        layers = _lookup(obj, "layers")
        if layers is not None and not isinstance(layers, list):
            raise ManifestError("json: cannot unmarshal into field layers")
        return cls(
            config=Layer.from_dict(_lookup(obj, "config")),
            layers=[Layer.from_dict(layer) for layer in layers or []],
            raw=bytes(raw),
            schema_version=_field(obj, "schemaVersion", int, 0),
            media_type=_field(obj, "mediaType", str, ""),
        )

    @property
    def digest_hex(self) -> str:
        """What `/api/tags` calls the digest: bare hex SHA-256 of the manifest file bytes."""
        return hashlib.sha256(self.file_bytes()).hexdigest()

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers) + self.config.size

    def digests(self) -> list[str]:
        """Every blob digest referenced, layers first, then the config (empty ones skipped)."""
        return [layer.digest for layer in [*self.layers, self.config] if layer.digest]


@dataclass
class DraftConfig:
    model_format: str = ""
    architecture: str = ""
    tensor_prefix: str = ""
    config: str = ""

    def to_dict(self) -> dict[str, str]:
        fields = ("model_format", "architecture", "tensor_prefix", "config")
        return {key: getattr(self, key) for key in fields if getattr(self, key)}


_CONFIG_ALWAYS = ("model_format", "model_family", "model_families", "model_type", "file_type")
_CONFIG_OMITEMPTY = ("renderer", "parser", "requires", "remote_host", "remote_model", "capabilities",
                     "context_length", "embedding_length", "base_name")


@dataclass
class ConfigV2:
    """The config blob. Field order is the serialised order; see the omitempty rules in to_dict."""

    model_format: str = ""
    model_family: str = ""
    model_families: list[str] | None = None
    model_type: str = ""
    file_type: str = ""
    renderer: str = ""
    parser: str = ""
    requires: str = ""
    remote_host: str = ""
    remote_model: str = ""
    capabilities: list[str] | None = None
    context_length: int = 0
    embedding_length: int = 0
    base_name: str = ""
    draft: DraftConfig | None = None
    architecture: str = "amd64"  # fixed values Ollama writes, not the host's
    os: str = "linux"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {key: getattr(self, key) for key in _CONFIG_ALWAYS}
        for key in _CONFIG_OMITEMPTY:
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.draft is not None:
            out["draft"] = self.draft.to_dict()
        out["architecture"] = self.architecture
        out["os"] = self.os
        return out

    def to_bytes(self) -> bytes:
        return encoder_bytes(self.to_dict())

    @classmethod
    def from_bytes(cls, raw: bytes) -> ConfigV2:
        """Decode a config blob; `rootfs` (written up to v0.32.6) and unknown keys are ignored."""
        obj = _object(decode_first_json_value(raw), "ConfigV2")
        draft = _lookup(obj, "draft")
        return cls(
            model_format=_field(obj, "model_format", str, ""),
            model_family=_field(obj, "model_family", str, ""),
            model_families=_string_list(_field(obj, "model_families", list, None), "model_families"),
            model_type=_field(obj, "model_type", str, ""),
            file_type=_field(obj, "file_type", str, ""),
            renderer=_field(obj, "renderer", str, ""),
            parser=_field(obj, "parser", str, ""),
            requires=_field(obj, "requires", str, ""),
            remote_host=_field(obj, "remote_host", str, ""),
            remote_model=_field(obj, "remote_model", str, ""),
            capabilities=_string_list(_field(obj, "capabilities", list, None), "capabilities"),
            context_length=_field(obj, "context_length", int, 0),
            embedding_length=_field(obj, "embedding_length", int, 0),
            base_name=_field(obj, "base_name", str, ""),
            draft=None if draft is None else DraftConfig(**{
                key: _field(_object(draft, "Draft"), key, str, "")
                for key in ("model_format", "architecture", "tensor_prefix", "config")
            }),
            architecture=_field(obj, "architecture", str, ""),
            os=_field(obj, "os", str, ""),
        )
