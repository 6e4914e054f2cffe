"""The vision side: a projector GGUF in llama.cpp's clip layout (`tools/mtmd/clip.cpp`,
`clip-impl.h`), made from the vision tower and projector Ollama keeps inside the model GGUF.

Keys come from `<arch>.vision.*` (Ollama's converters) and go to `clip.vision.*`; tensor names go from
the Hugging Face-derived names Ollama writes to the ones clip.cpp looks up. Where a model family needs
more (joined Q/K/V, split 3D patch embeddings, rotary row order), `engine.layouts.tensors` computes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.layouts.edit import ARRAY, BOOL, FLOAT32, UINT32, GGUFEdit, LayoutError, Range, Source, Tensor
from engine.layouts.tensors import (
    computed,
    concat_rows,
    permute_rope_rows,
    promote_f32,
    read_f32,
    split_patch_embedding,
)
from engine.layouts.text import is_gemma3, is_gemma4, is_llama4, is_mistral3, is_qwen3vl, is_qwen35

HALF = [0.5, 0.5, 0.5]
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]  # OpenAI CLIP's image statistics
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


@dataclass(frozen=True)
class ClipTranslation:
    arch: str
    detect: Callable[[GGUFEdit], bool]
    apply: Callable[[GGUFEdit], None]


def _copy_vision(edit: GGUFEdit, arch: str, names: dict[str, str]) -> None:
    for theirs, ours in names.items():
        edit.copy(f"{arch}.{theirs}", f"clip.vision.{ours}")


def _common(edit: GGUFEdit, projector_type: str, *, mean: list[float] = HALF, std: list[float] = HALF,
            activation: str = "gelu") -> None:
    edit.inject("clip.vision.image_mean", ARRAY, mean, FLOAT32)
    edit.inject("clip.vision.image_std", ARRAY, std, FLOAT32)
    edit.inject("clip.has_vision_encoder", BOOL, True)
    edit.inject(f"clip.use_{activation}", BOOL, True)
    edit.set_str("clip.projector_type", projector_type)


def _rename_all(edit: GGUFEdit, renames: list[tuple[str, str]]) -> None:
    for old, new in renames:
        edit.rename_containing(old, new)


def _merge_qkv(edit: GGUFEdit, blocks: int) -> None:
    """Separate Q, K and V of each vision block as the one `attn_qkv` tensor llama.cpp reads (Ollama may
    store them in different types, F16 and Q8_0: those are joined as F32)."""
    for b in range(blocks):
        for kind in ("weight", "bias"):
            concat_rows(edit, f"v.blk.{b}.attn_qkv.{kind}", [f"v.blk.{b}.attn_{x}.{kind}" for x in "qkv"])


# --- per family -----------------------------------------------------------------------------------


def _gemma3(edit: GGUFEdit) -> None:
    _copy_vision(edit, "gemma3", {
        "vision.block_count": "block_count", "vision.embedding_length": "embedding_length",
        "vision.feed_forward_length": "feed_forward_length", "vision.image_size": "image_size",
        "vision.patch_size": "patch_size", "vision.attention.head_count": "attention.head_count",
        "vision.attention.layer_norm_epsilon": "attention.layer_norm_epsilon", "embedding_length": "projection_dim",
    })
    tokens, size, patch = (edit.get("gemma3.mm.tokens_per_image"), edit.get("gemma3.vision.image_size"),
                           edit.get("gemma3.vision.patch_size"))
    if isinstance(tokens, int) and isinstance(size, int) and isinstance(patch, int) and tokens > 0 and patch > 0:
        scale = (size // patch) // math.isqrt(tokens)
        if scale > 0 and scale != 4:  # clip.cpp assumes 4 (256 tokens from 64x64 patches)
            edit.set_u32("clip.vision.projector.scale_factor", scale)
    _common(edit, "gemma3")
    _rename_all(edit, [
        ("v.patch_embedding", "v.patch_embd"), ("v.position_embedding", "v.position_embd"),
        ("v.post_layernorm", "v.post_ln"), (".layer_norm1", ".ln1"), (".layer_norm2", ".ln2"),
        (".attn_output", ".attn_out"), (".mlp.fc1", ".ffn_up"), (".mlp.fc2", ".ffn_down"),
        ("mm.mm_input_projection", "mm.input_projection"), ("mm.mm_soft_emb_norm", "mm.soft_emb_norm"),
    ])
    promote_f32(edit, "v.patch_embd.weight")
    promote_f32(edit, "v.position_embd.weight")


def _gemma4(edit: GGUFEdit) -> None:
    _copy_vision(edit, "gemma4", {
        "vision.block_count": "block_count", "vision.embedding_length": "embedding_length",
        "vision.feed_forward_length": "feed_forward_length", "vision.attention.head_count": "attention.head_count",
        "vision.attention.layer_norm_epsilon": "attention.layer_norm_epsilon", "vision.patch_size": "patch_size",
        "embedding_length": "projection_dim",
    })
    edit.inject("clip.vision.image_size", UINT32, 224)
    # Gemma 4 normalizes images itself (v.std_bias, v.std_scale): no mean/std shift here.
    edit.inject("clip.vision.image_mean", ARRAY, [0.0, 0.0, 0.0], FLOAT32)
    edit.inject("clip.vision.image_std", ARRAY, [1.0, 1.0, 1.0], FLOAT32)
    edit.inject("clip.has_vision_encoder", BOOL, True)
    edit.set_str("clip.vision.projector_type", "gemma4v")
    edit.set_bool("clip.has_audio_encoder", False)
    promote_f32(edit, "v.patch_embd.weight")


def _qwen35(edit: GGUFEdit) -> None:
    arch = edit.arch
    _copy_vision(edit, arch, {
        "vision.block_count": "block_count", "vision.embedding_length": "embedding_length",
        "vision.attention.head_count": "attention.head_count", "vision.patch_size": "patch_size",
        "vision.spatial_merge_size": "spatial_merge_size", "vision.num_channels": "num_channels",
        "embedding_length": "projection_dim",
    })
    edit.inject("clip.vision.feed_forward_length", UINT32, 4304)  # Qwen3.5's vision tower
    edit.inject("clip.vision.image_size", UINT32, 768)
    edit.inject("clip.vision.attention.layer_norm_epsilon", FLOAT32, 1e-6)
    blocks = edit.get("clip.vision.block_count") or 0
    edit.inject("clip.vision.is_deepstack_layers", ARRAY, [False] * blocks, BOOL)
    _common(edit, "qwen3vl_merger")
    _merge_qkv(edit, blocks)
    split_patch_embedding(edit, "v.patch_embed.weight", edit.get("clip.vision.num_channels") or 3)
    _rename_all(edit, [
        ("v.pos_embed", "v.position_embd"), ("v.patch_embed", "v.patch_embd"), ("v.merger.norm", "v.post_ln"),
        ("v.merger.linear_fc1", "mm.0"), ("v.merger.linear_fc2", "mm.2"), (".mlp.linear_fc1", ".ffn_up"),
        (".mlp.linear_fc2", ".ffn_down"), (".norm1", ".ln1"), (".norm2", ".ln2"),
    ])
    promote_f32(edit, "v.position_embd.weight")


def _qwen3vl(edit: GGUFEdit) -> None:
    arch = edit.arch
    _copy_vision(edit, arch, {
        "vision.attention.head_count": "attention.head_count",
        "vision.attention.layer_norm_epsilon": "attention.layer_norm_epsilon",
        "vision.block_count": "block_count", "vision.embedding_length": "embedding_length",
        "vision.num_channels": "num_channels", "vision.patch_size": "patch_size",
        "vision.spatial_merge_size": "spatial_merge_size", "vision.temporal_patch_size": "temporal_patch_size",
        "vision.rope.freq_base": "rope.freq_base", "embedding_length": "projection_dim",
        "vision.image_mean": "image_mean", "vision.image_std": "image_std",
        "vision.shortest_edge": "image_min_pixels", "vision.longest_edge": "image_max_pixels",
    })
    edit.inject("clip.vision.num_channels", UINT32, 3)
    edit.inject("clip.vision.temporal_patch_size", UINT32, 2)
    edit.inject("clip.vision.rope.freq_base", FLOAT32, 10000.0)
    edit.inject("clip.vision.image_min_pixels", UINT32, 65536)
    edit.inject("clip.vision.image_max_pixels", UINT32, 16777216)
    up = edit.tensor("v.blk.0.mlp.linear_fc1.weight")
    if up is not None:
        edit.inject("clip.vision.feed_forward_length", UINT32, up.shape[1])
    position, patch = edit.tensor("v.pos_embed.weight"), edit.get(f"{arch}.vision.patch_size")
    if position is not None and isinstance(patch, int):
        edit.inject("clip.vision.image_size", UINT32, math.isqrt(position.shape[1]) * patch)
    blocks = edit.get("clip.vision.block_count") or 0
    deepstack = [int(i) for i in edit.get(f"{arch}.vision.deepstack_visual_indexes") or []]
    edit.inject("clip.vision.is_deepstack_layers", ARRAY, [b in deepstack for b in range(blocks)], BOOL)
    _common(edit, "qwen3vl_merger")
    _merge_qkv(edit, blocks)
    split_patch_embedding(edit, "v.patch_embed.weight", edit.get("clip.vision.num_channels") or 3)
    for old, new in [("v.merger.norm", "v.post_ln"), ("v.merger.linear_fc1", "mm.0"), ("v.merger.linear_fc2", "mm.2"),
                     ("v.patch_embed", "v.patch_embd"), ("v.pos_embed", "v.position_embd")]:
        for kind in ("weight", "bias"):
            edit.rename(f"{old}.{kind}", f"{new}.{kind}")
    for i, layer in enumerate(deepstack):  # deepstack mergers are named after the layer they follow
        for old, new in (("norm", "norm"), ("linear_fc1", "fc1"), ("linear_fc2", "fc2")):
            for kind in ("weight", "bias"):
                edit.rename(f"v.deepstack_merger.{i}.{old}.{kind}", f"v.deepstack.{layer}.{new}.{kind}")
    _rename_all(edit, [(".norm1", ".ln1"), (".norm2", ".ln2"), (".mlp.linear_fc1", ".ffn_up"),
                       (".mlp.linear_fc2", ".ffn_down")])
    promote_f32(edit, "v.position_embd.weight")


def _qwen25vl(edit: GGUFEdit) -> None:
    _copy_vision(edit, "qwen25vl", {
        "vision.attention.head_count": "attention.head_count",
        "vision.attention.layer_norm_epsilon": "attention.layer_norm_epsilon",
        "vision.block_count": "block_count", "vision.embedding_length": "embedding_length",
        "vision.num_channels": "num_channels", "vision.patch_size": "patch_size",
        "vision.spatial_merge_size": "spatial_merge_size", "vision.window_size": "window_size",
        "embedding_length": "projection_dim",
    })
    up = edit.tensor("v.blk.0.ffn_up.weight")
    if up is not None:
        edit.inject("clip.vision.feed_forward_length", UINT32, up.shape[1])
    full = edit.get("qwen25vl.vision.fullatt_block_indexes")
    if isinstance(full, list) and full:
        edit.set_u32("clip.vision.n_wa_pattern", int(full[0]) + 1)
    edit.inject("clip.vision.n_wa_pattern", UINT32, 8)
    edit.inject("clip.vision.image_size", UINT32, 560)
    _common(edit, "qwen2.5vl_merger", mean=CLIP_MEAN, std=CLIP_STD, activation="silu")
    for old, new in [("v.merger.ln_q.weight", "v.post_ln.weight"), ("v.merger.mlp.0.weight", "mm.0.weight"),
                     ("v.merger.mlp.0.bias", "mm.0.bias"), ("v.merger.mlp.2.weight", "mm.2.weight"),
                     ("v.merger.mlp.2.bias", "mm.2.bias"), ("v.patch_embd_0.weight", "v.patch_embd.weight"),
                     ("v.patch_embd_1.weight", "v.patch_embd.weight.1")]:
        edit.rename(old, new)
    promote_f32(edit, "v.patch_embd.weight")
    promote_f32(edit, "v.patch_embd.weight.1")


def _img_break_row(edit: GGUFEdit) -> Callable[[Source], np.ndarray]:
    """Pixtral separates image rows with the [IMG_BREAK] token's embedding; zeros if it is not found."""
    tokens = edit.get("tokenizer.ggml.tokens") or []
    embeddings = edit.tensor("token_embd.weight")
    width = edit.get("mistral3.embedding_length") or 0
    index = tokens.index("[IMG_BREAK]") if "[IMG_BREAK]" in tokens else None

    def values(source: Source) -> np.ndarray:
        if index is None or embeddings is None or len(embeddings.ranges) != 1:
            return np.zeros(width, np.float32)
        row = embeddings.nbytes // embeddings.shape[1]
        one = Tensor(embeddings.name, [embeddings.shape[0], 1], embeddings.type_id,
                     [Range(embeddings.ranges[0].offset + index * row, row)])
        return read_f32(source, one)

    return values


def _mistral3(edit: GGUFEdit) -> None:
    _copy_vision(edit, "mistral3", {
        "vision.block_count": "block_count", "vision.embedding_length": "embedding_length",
        "vision.feed_forward_length": "feed_forward_length", "vision.attention.head_count": "attention.head_count",
        "vision.image_size": "image_size", "vision.patch_size": "patch_size", "vision.num_channels": "num_channels",
        "spatial_merge_size": "spatial_merge_size", "embedding_length": "projection_dim",
    })
    edit.copy("mistral3.vision.rope.freq_base", "clip.rope.freq_base")
    edit.inject("clip.vision.attention.layer_norm_epsilon", FLOAT32, 1e-5)
    _common(edit, "pixtral", mean=CLIP_MEAN, std=CLIP_STD, activation="silu")
    width = edit.get("mistral3.embedding_length") or 0
    computed(edit, "v.token_embd.img_break", [width], _img_break_row(edit))
    heads, blocks = edit.get("mistral3.vision.attention.head_count"), edit.get("mistral3.vision.block_count")
    if isinstance(heads, int) and isinstance(blocks, int):
        # Ollama permutes only the text Q/K for rotary embeddings; pixtral's clip graph wants vision Q/K so too.
        for b in range(blocks):
            permute_rope_rows(edit, f"v.blk.{b}.attn_q.weight", heads)
            permute_rope_rows(edit, f"v.blk.{b}.attn_k.weight", heads)
    _rename_all(edit, [
        ("v.patch_conv", "v.patch_embd"), ("v.encoder_norm", "v.pre_ln"), (".attn_output", ".attn_out"),
        (".attn_norm", ".ln1"), (".ffn_norm", ".ln2"), ("mm.linear_1", "mm.1"), ("mm.linear_2", "mm.2"),
        ("mm.patch_merger.merging_layer", "mm.patch_merger"), ("mm.norm", "mm.input_norm"),
    ])
    promote_f32(edit, "v.patch_embd.weight")


def _llama4(edit: GGUFEdit) -> None:
    _copy_vision(edit, "llama4", {
        "vision.block_count": "block_count", "vision.embedding_length": "embedding_length",
        "vision.feed_forward_length": "feed_forward_length", "vision.attention.head_count": "attention.head_count",
        "vision.image_size": "image_size", "vision.patch_size": "patch_size",
        "vision.layer_norm_epsilon": "attention.layer_norm_epsilon", "embedding_length": "projection_dim",
    })
    ratio = edit.get("llama4.vision.pixel_shuffle_ratio")
    scale = round(1 / ratio) if isinstance(ratio, float) and ratio > 0 else 2
    edit.inject("clip.vision.projector.scale_factor", UINT32, scale or 2)
    _common(edit, "llama4")
    edit.set_str("clip.vision.projector_type", "llama4")
    edit.rename("v.positional_embedding_vlm", "v.position_embd.weight")
    _rename_all(edit, [
        ("v.vision_adapter.mlp.fc1", "mm.model.mlp.1"), ("v.vision_adapter.mlp.fc2", "mm.model.mlp.2"),
        ("mm.linear_1", "mm.model.fc"), ("v.class_embedding", "v.class_embd"), ("v.layernorm_post", "v.post_ln"),
        ("v.layernorm_pre", "v.pre_ln"), ("v.patch_embedding", "v.patch_embd"), (".attn_output", ".attn_out"),
        (".attn_norm", ".ln1"), (".ffn_norm", ".ln2"), (".mlp.fc1", ".ffn_up"), (".mlp.fc2", ".ffn_down"),
    ])


def _glmocr(edit: GGUFEdit) -> None:
    _copy_vision(edit, "glmocr", {
        "vision.block_count": "block_count", "vision.embedding_length": "embedding_length",
        "vision.intermediate_size": "feed_forward_length", "vision.attention.head_count": "attention.head_count",
        "vision.attention.layer_norm_rms_epsilon": "attention.layer_norm_epsilon",
        "vision.image_size": "image_size", "vision.patch_size": "patch_size",
        "vision.spatial_merge_size": "spatial_merge_size", "vision.out_hidden_size": "projection_dim",
        "vision.image_mean": "image_mean", "vision.image_std": "image_std",
    })
    _common(edit, "glm4v", activation="silu")
    edit.rename("v.patch_embd_0.weight", "v.patch_embd.weight")
    edit.rename("v.patch_embd_1.weight", "v.patch_embd.weight.1")
    promote_f32(edit, "v.patch_embd.weight")
    promote_f32(edit, "v.patch_embd.weight.1")


def _deepseekocr(edit: GGUFEdit) -> None:
    _copy_vision(edit, "deepseekocr", {
        "vision.block_count": "block_count", "vision.embedding_length": "embedding_length",
        "vision.head_count": "attention.head_count", "vision.image_size": "image_size",
        "vision.patch_size": "patch_size", "sam.block_count": "sam.block_count",
        "sam.embedding_length": "sam.embedding_length", "sam.head_count": "sam.head_count",
    })
    edit.inject("clip.vision.feed_forward_length", UINT32, 64)
    edit.inject("clip.vision.projection_dim", UINT32, 1280)
    edit.inject("clip.vision.projector.scale_factor", UINT32, 1)
    edit.inject("clip.vision.window_size", UINT32, 14)
    edit.inject("clip.vision.attention.layer_norm_epsilon", FLOAT32, 1e-6)
    _common(edit, "deepseekocr")
    for name in [n for n in edit.tensors if n.startswith("s.")]:
        edit.rename(name, "v.sam." + name[2:])
    edit.rename("v.sam.position_embd", "v.sam.pos_embd.weight")
    _rename_all(edit, [
        (".self_attn.out_proj", ".attn_out"), (".self_attn.qkv_proj", ".attn_qkv"), (".layer_norm1", ".ln1"),
        (".layer_norm2", ".ln2"), (".mlp.fc1", ".ffn_up"), (".mlp.fc2", ".ffn_down"), ("v.pre_layrnorm", "v.pre_ln"),
        (".attn.proj", ".attn.out"), (".attn.rel_pos_h", ".attn.pos_h.weight"),
        (".attn.rel_pos_w", ".attn.pos_w.weight"), (".norm1", ".pre_ln"), (".norm2", ".post_ln"),
        ("mm.layers", "mm.model.fc"), ("mm.image_newline", "v.image_newline"),
        ("mm.view_seperator", "v.view_seperator"),
    ])
    for name in ("v.patch_embd.weight", "v.sam.patch_embd.weight", "v.position_embd.weight"):
        promote_f32(edit, name)


def _nemotron(edit: GGUFEdit) -> None:
    arch = "nemotron_h_omni"
    _copy_vision(edit, arch, {
        "vision.block_count": "block_count", "vision.embedding_length": "embedding_length",
        "vision.feed_forward_length": "feed_forward_length", "vision.attention.head_count": "attention.head_count",
        "vision.attention.layer_norm_epsilon": "attention.layer_norm_epsilon", "vision.patch_size": "patch_size",
        "vision.image_size": "image_size", "vision.num_channels": "num_channels",
        "vision.projector.scale_factor": "projector.scale_factor", "embedding_length": "projection_dim",
        "vision.image_mean": "image_mean", "vision.image_std": "image_std",
        **{f"vision.{k}": k for k in ("image_token_id", "image_start_token_id", "image_end_token_id", "max_tiles",
                                      "min_num_patches", "max_num_patches")},
    })
    size, patch = edit.get("clip.vision.image_size") or 512, edit.get("clip.vision.patch_size") or 16
    width, channels = edit.get("clip.vision.embedding_length") or 1280, edit.get("clip.vision.num_channels") or 3
    for key, value_type, value in [("block_count", UINT32, 32), ("embedding_length", UINT32, width),
                                   ("feed_forward_length", UINT32, width * 4), ("attention.head_count", UINT32, 16),
                                   ("attention.layer_norm_epsilon", FLOAT32, 1e-6), ("patch_size", UINT32, patch),
                                   ("image_size", UINT32, size), ("num_channels", UINT32, channels),
                                   ("projector.scale_factor", UINT32, 2)]:
        edit.inject(f"clip.vision.{key}", value_type, value)
    edit.inject("clip.vision.image_mean", ARRAY, CLIP_MEAN, FLOAT32)
    edit.inject("clip.vision.image_std", ARRAY, CLIP_STD, FLOAT32)
    edit.inject("clip.has_vision_encoder", BOOL, True)
    edit.inject("clip.use_gelu", BOOL, True)
    edit.set_str("clip.vision.projector_type", "nemotron_v2_vl")
    edit.set_bool("clip.has_audio_encoder", False)
    edit.rename("v.cls_embd", "v.class_embd")
    promote_f32(edit, "v.class_embd")
    _nemotron_positions(edit, width, size // patch)
    _nemotron_patches(edit, patch, channels, width)
    for old, new in [("mm.norm.weight", "mm.model.mlp.0.weight"), ("mm.1.weight", "mm.model.mlp.1.weight"),
                     ("mm.2.weight", "mm.model.mlp.3.weight")]:
        edit.rename(old, new)


def _nemotron_positions(edit: GGUFEdit, width: int, side: int) -> None:
    """RADIO's position table (a square grid) resampled bilinearly, corners aligned, to the image grid."""
    name = "v.position_embd" if edit.tensor("v.position_embd") else "v.position_embd.weight"
    tensor = edit.tensor(name)
    if tensor is None or side <= 0:
        return
    shape = tensor.shape

    def square(n: int) -> bool:
        return math.isqrt(n) ** 2 == n

    # Which dimension holds the positions, and whether each position's vector is contiguous.
    if len(shape) == 2 and square(shape[1]):
        width, positions, contiguous = shape[0], shape[1], True
    elif len(shape) == 2 and square(shape[0]):
        width, positions, contiguous = shape[1], shape[0], False
    elif len(shape) == 3 and shape[0] == 1 and square(shape[1]):
        width, positions, contiguous = shape[2], shape[1], True
    elif len(shape) == 3 and shape[2] == 1 and square(shape[1]):
        width, positions, contiguous = shape[0], shape[1], False
    else:
        raise LayoutError(f"unexpected nemotron position embedding shape {shape}")
    source_side = math.isqrt(positions)
    source_tensor = Tensor(tensor.name, list(shape), tensor.type_id, list(tensor.ranges))

    def values(source: Source) -> np.ndarray:
        flat = read_f32(source, source_tensor)
        table = flat.reshape(positions, width) if contiguous else flat.reshape(width, positions).T
        grid = table.reshape(source_side, source_side, width)
        coords = np.linspace(0, source_side - 1, side) if side > 1 else np.zeros(1)
        low = np.floor(coords).astype(int)
        high = np.minimum(low + 1, source_side - 1)
        frac = (coords - low).astype(np.float32)
        rows = grid[low] * (1 - frac)[:, None, None] + grid[high] * frac[:, None, None]
        cells = rows[:, low] * (1 - frac)[None, :, None] + rows[:, high] * frac[None, :, None]
        return cells.reshape(side * side, width)

    computed(edit, "v.position_embd.weight", [width, side * side], values, replaces=name)


def _nemotron_patches(edit: GGUFEdit, patch: int, channels: int, width: int) -> None:
    """A flat [patch*patch*channels, width] patch embedding as the conv kernel [p, p, channels, width]."""
    tensor = edit.tensor("v.patch_embd.weight")
    if tensor is None or tensor.shape != [patch * patch * channels, width]:
        return
    source_tensor = Tensor(tensor.name, list(tensor.shape), tensor.type_id, list(tensor.ranges))
    computed(edit, "v.patch_embd.weight", [patch, patch, channels, width],
             lambda source: read_f32(source, source_tensor))


def _is_embedded(edit: GGUFEdit) -> bool:
    return edit.has_prefix("v.")


TRANSLATIONS: list[ClipTranslation] = [
    ClipTranslation("gemma3", lambda e: is_gemma3(e) and _is_embedded(e), _gemma3),
    ClipTranslation("qwen35moe", lambda e: is_qwen35(e) and _is_embedded(e), _qwen35),
    ClipTranslation("qwen35", lambda e: is_qwen35(e) and _is_embedded(e), _qwen35),
    ClipTranslation("mistral3", lambda e: is_mistral3(e) and _is_embedded(e), _mistral3),
    ClipTranslation("deepseekocr", _is_embedded, _deepseekocr),
    ClipTranslation("nemotron_h_omni", _is_embedded, _nemotron),
    ClipTranslation("llama4", lambda e: is_llama4(e) and _is_embedded(e), _llama4),
    ClipTranslation("gemma4", lambda e: is_gemma4(e) and _is_embedded(e), _gemma4),
    ClipTranslation("glmocr", _is_embedded, _glmocr),
    ClipTranslation("qwen25vl", _is_embedded, _qwen25vl),
    ClipTranslation("qwen3vl", lambda e: is_qwen3vl(e) and _is_embedded(e), _qwen3vl),
    ClipTranslation("qwen3vlmoe", lambda e: is_qwen3vl(e) and _is_embedded(e), _qwen3vl),
]


def clip_translation(edit: GGUFEdit) -> ClipTranslation | None:
    for translation in TRANSLATIONS:
        if translation.arch == edit.arch and translation.detect(edit):
            return translation
    return None


def finish_projector(edit: GGUFEdit) -> None:
    """Keep what a projector file holds: the clip keys and the vision tensors (`v.*`, `mm.*`, after renaming)."""
    edit.set_str("general.architecture", "clip")
    edit.keep_only(["general.architecture", "general.name", "general.alignment", "clip.*"])
    edit.keep_prefix("v.", "mm.")


def projector_type_default(edit: GGUFEdit) -> bool:
    """LLaVA and BakLLaVA projectors written without a projector type: clip.cpp wants `mlp`."""
    if edit.arch != "clip" or not edit.get("clip.has_vision_encoder"):
        return False
    if edit.has("clip.projector_type") or edit.has("clip.vision.projector_type"):
        return False
    edit.set_str("clip.projector_type", "mlp")
    return True

