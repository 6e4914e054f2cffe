"""Building manifest layers for `/api/create` (Go `manifest.NewLayer`, `NewLayerFromLayer`, `setParameters`).

JSON layers use Go's encoder format, so the same content gets the same digest as in Ollama.
"""

from __future__ import annotations

from typing import Any

from modelstore.gojson import encoder_bytes
from modelstore.manifest import MEDIA_MESSAGES, MEDIA_PARAMS, Layer
from modelstore.store import ModelStore


def new_layer(store: ModelStore, data: bytes, media_type: str) -> tuple[Layer, bool]:
    """Store data as a blob; returns the layer and whether the blob is new."""
    digest, created = store.blobs.write_bytes(data)
    return Layer(media_type=media_type, digest=digest, size=len(data)), created


def layer_from_blob(
    store: ModelStore, digest: str, media_type: str, from_: str = "", name: str = ""
) -> Layer:
    """Wrap an existing blob (touching it, which restarts its prune grace period).

    Raises InvalidDigest for a malformed digest and FileNotFoundError when the blob is absent.
    """
    if not digest:
        raise ValueError("creating new layer from layer with empty digest")
    size = store.blobs.size(digest)
    store.blobs.touch(digest)
    return Layer(media_type=media_type, digest=digest, size=size, from_=from_, name=name)


def layer_status(layer: Layer, created: bool) -> str:
    """The create progress text for a layer."""
    return f"{'creating new' if created else 'using existing'} layer {layer.digest}"


def json_layer(store: ModelStore, obj: Any, media_type: str, *, sort_keys: bool) -> tuple[Layer, bool]:
    """A layer holding `obj` as Go's `json.Encoder` writes it (trailing newline included)."""
    return new_layer(store, encoder_bytes(obj, sort_keys=sort_keys), media_type)


def params_layer(store: ModelStore, params: dict[str, Any]) -> tuple[Layer, bool]:
    """Params are a Go map: keys sorted."""
    return json_layer(store, params, MEDIA_PARAMS, sort_keys=True)


def _go_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    out: dict[str, Any] = {"id": call["id"]} if call.get("id") else {}
    out["function"] = {
        "index": function.get("index", 0),
        "name": function.get("name", ""),
        "arguments": function.get("arguments") or {},  # an ordered map in Go: insertion order kept
    }
    return out


def go_message(message: dict[str, Any]) -> dict[str, Any]:
    """A message in `api.Message` field order with its omitempty rules; roles are lower-cased
    as Go's decoder does."""
    out: dict[str, Any] = {
        "role": str(message.get("role", "")).lower(),
        "content": message.get("content", ""),
    }
    if message.get("thinking"):
        out["thinking"] = message["thinking"]
    if message.get("images"):
        out["images"] = list(message["images"])
    if message.get("tool_calls"):
        out["tool_calls"] = [_go_tool_call(call) for call in message["tool_calls"]]
    for key in ("tool_name", "tool_call_id"):
        if message.get(key):
            out[key] = message[key]
    return out


def messages_layer(store: ModelStore, messages: list[dict[str, Any]]) -> tuple[Layer, bool]:
    """Messages are a Go slice of structs: field order kept, no key sorting."""
    return json_layer(store, [go_message(message) for message in messages], MEDIA_MESSAGES, sort_keys=False)
