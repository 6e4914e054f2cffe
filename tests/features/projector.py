"""A tiny vision projector GGUF for SmolLM2, written by the tests: a LLaVA-style CLIP (`clip.projector_type`
`mlp`) whose image embeddings have SmolLM2's width (576), small enough to write in milliseconds. Its
weights are random, so it sees nothing, but llama.cpp's mtmd loads it and runs every image through it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter

TEXT_WIDTH = 576  # SmolLM2-135M's embedding length
IMAGE_SIZE = 28
PATCH_SIZE = 14
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2  # one embedding per patch


def write_projector(path: Path, *, width: int = 32, ffn: int = 64, blocks: int = 2, heads: int = 2,
                    text_width: int = TEXT_WIDTH, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)

    def weights(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer = GGUFWriter(path, "clip")
    writer.add_string("general.type", "projector")
    writer.add_string("general.name", "tiny test projector")
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_string("clip.projector_type", "mlp")
    writer.add_bool("clip.use_gelu", True)
    writer.add_uint32("clip.vision.image_size", IMAGE_SIZE)
    writer.add_uint32("clip.vision.patch_size", PATCH_SIZE)
    writer.add_uint32("clip.vision.embedding_length", width)
    writer.add_uint32("clip.vision.feed_forward_length", ffn)
    writer.add_uint32("clip.vision.block_count", blocks)
    writer.add_uint32("clip.vision.projection_dim", text_width)
    writer.add_uint32("clip.vision.attention.head_count", heads)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    writer.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    writer.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])
    # numpy shapes are ggml's reversed: a matrix mapping n_in to n_out is (n_out, n_in)
    writer.add_tensor("v.patch_embd.weight", weights(width, 3, PATCH_SIZE, PATCH_SIZE))
    writer.add_tensor("v.position_embd.weight", weights(IMAGE_TOKENS, width))
    for i in range(blocks):
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            writer.add_tensor(f"v.blk.{i}.{name}.weight", weights(width, width))
            writer.add_tensor(f"v.blk.{i}.{name}.bias", weights(width))
        for name in ("ln1", "ln2"):
            writer.add_tensor(f"v.blk.{i}.{name}.weight", np.ones(width, dtype=np.float32))
            writer.add_tensor(f"v.blk.{i}.{name}.bias", np.zeros(width, dtype=np.float32))
        writer.add_tensor(f"v.blk.{i}.ffn_up.weight", weights(ffn, width))
        writer.add_tensor(f"v.blk.{i}.ffn_up.bias", weights(ffn))
        writer.add_tensor(f"v.blk.{i}.ffn_down.weight", weights(width, ffn))
        writer.add_tensor(f"v.blk.{i}.ffn_down.bias", weights(width))
    writer.add_tensor("mm.0.weight", weights(text_width, width))
    writer.add_tensor("mm.0.bias", weights(text_width))
    writer.add_tensor("mm.2.weight", weights(text_width, text_width, scale=0.05))
    writer.add_tensor("mm.2.bias", weights(text_width))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain RGB PNG of one color."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
