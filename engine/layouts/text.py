"""The text side: Ollama's GGUF layouts that llama.cpp's loader refuses, translated to what it reads.

Facts from Ollama's converters (`convert/convert_*.go`), its llama.cpp compatibility notes
(`llama/compat/`) and llama.cpp's own loader (`src/llama-arch.cpp`, `src/llama-model.cpp`,
`convert_hf_to_gguf.py`). Each translation recognises the Ollama layout by a marker (a key or tensor
llama.cpp's converter never writes) and leaves a GGUF without one alone.

Vision, audio and multi-token-prediction tensors stored inside the model are dropped here; the vision
tower goes to a separate projector GGUF (`engine.layouts.clip`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass

from engine.layouts.edit import FLOAT32, INT32, STRING, UINT8, UINT32, GGUFEdit
from engine.layouts.tensors import concat_rows, interleave_experts, truncate_rows


@dataclass(frozen=True)
class TextTranslation:
    arch: str  # the architecture as Ollama writes it
    detect: Callable[[GGUFEdit], bool]
    apply: Callable[[GGUFEdit], None]


def _blocks(edit: GGUFEdit) -> list[int]:
    found = {int(m.group(1)) for name in edit.tensors if (m := re.match(r"blk\.(\d+)\.", name))}
    return sorted(found)


def _missing_or_default(edit: GGUFEdit, key: str) -> bool:
    return edit.get(key) in (None, "", "default")


def _rename_arch(edit: GGUFEdit, old: str, new: str, *, skip: tuple[str, ...] = ()) -> None:
    edit.set_str("general.architecture", new)
    edit.move_prefix(f"{old}.", f"{new}.", skip=skip)


def _pad_sections(edit: GGUFEdit, source_key: str, key: str) -> None:
    """M-RoPE sections: Ollama writes three, llama.cpp reads four (the last 0)."""
    sections = edit.get(source_key)
    if isinstance(sections, list) and len(sections) >= 3:
        edit.remove(source_key)
        edit.set_array(key, INT32, [int(v) for v in sections[:3]] + [0])


def _collapse_to_max(edit: GGUFEdit, key: str, fallback: int) -> None:
    """A per-layer array where llama.cpp reads one number: the largest (zero for SSM layers)."""
    values = edit.get(key)
    if isinstance(values, list):
        edit.set_u32(key, max([int(v) for v in values] + [0]) or fallback)


def _vocab_rows(edit: GGUFEdit, tensor: str) -> int | None:
    t = edit.tensor(tensor)
    return t.shape[1] if t is not None and len(t.shape) >= 2 else None


def _truncate_vocab(edit: GGUFEdit, rows: int) -> None:
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
        edit.truncate_array(key, rows)


# --- gemma3 ---------------------------------------------------------------------------------------


def _is_embeddinggemma(edit: GGUFEdit) -> bool:
    return edit.arch == "gemma3" and edit.tensor("dense.0.weight") is not None


def _embeddinggemma(edit: GGUFEdit) -> None:
    """embeddinggemma: Ollama keeps `gemma3` plus two dense layers; llama.cpp has `gemma-embedding`."""
    _rename_arch(edit, "gemma3", "gemma-embedding")
    edit.remove("gemma-embedding.attention.causal")
    edit.remove("gemma-embedding.attention.sliding_window_pattern")
    edit.inject("gemma-embedding.rope.freq_base_swa", FLOAT32, 10000.0)
    first, second = edit.tensor("dense.0.weight"), edit.tensor("dense.1.weight")
    if first is not None and second is not None:
        edit.set_u32("gemma-embedding.dense_2_feat_in", first.shape[0])
        edit.set_u32("gemma-embedding.dense_2_feat_out", first.shape[1])
        edit.set_u32("gemma-embedding.dense_3_feat_in", second.shape[0])
        edit.set_u32("gemma-embedding.dense_3_feat_out", second.shape[1])
    edit.rename("dense.0.weight", "dense_2.weight")
    edit.rename("dense.1.weight", "dense_3.weight")
    edit.rename("norm.weight", "output_norm.weight")


def is_gemma3(edit: GGUFEdit) -> bool:
    return edit.arch == "gemma3" and not _is_embeddinggemma(edit) and (
        edit.has("gemma3.mm.tokens_per_image") or edit.has_prefix("v.") or edit.has_prefix("mm.")
        or edit.has("gemma3.rope.global.freq_base") or edit.has("gemma3.rope.local.freq_base")
        or edit.has("tokenizer.ggml.add_padding_token") or edit.has("tokenizer.ggml.add_unknown_token")
        or not edit.has("gemma3.attention.layer_norm_rms_epsilon"))


def _gemma3(edit: GGUFEdit) -> None:
    edit.copy("gemma3.rope.global.freq_base", "gemma3.rope.freq_base")
    edit.copy("gemma3.rope.local.freq_base", "gemma3.rope.freq_base_swa")
    edit.inject("gemma3.attention.layer_norm_rms_epsilon", FLOAT32, 1e-6)
    edit.inject("gemma3.rope.freq_base", FLOAT32, 1_000_000.0)
    edit.inject("gemma3.rope.freq_base_swa", FLOAT32, 10_000.0)
    if (edit.get("gemma3.context_length") or 0) >= 131072:
        # 4B/12B/27B extend a 16K window eightfold by linear RoPE scaling; some files omit the keys.
        edit.inject("gemma3.rope.scaling.type", STRING, "linear")
        edit.inject("gemma3.rope.scaling.factor", FLOAT32, 8.0)
    rows = _vocab_rows(edit, "token_embd.weight")
    if rows is not None:  # Ollama keeps the image soft tokens in the vocabulary, beyond the embeddings
        _truncate_vocab(edit, rows)
    edit.drop_prefix("v.", "mm.")


# --- gemma3n --------------------------------------------------------------------------------------


def _is_gemma3n(edit: GGUFEdit) -> bool:
    if edit.arch != "gemma3n":
        return False
    embd, per_layer = _vocab_rows(edit, "token_embd.weight"), _vocab_rows(edit, "per_layer_token_embd.weight")
    return (embd is not None and per_layer is not None and embd != per_layer) or edit.has_prefix("v.") \
        or edit.has_prefix("a.") or edit.has_prefix("mm.")


def _gemma3n(edit: GGUFEdit) -> None:
    """The multimodal vocabulary (262400) cut to the per-layer embeddings' text vocabulary (262144)."""
    edit.drop_prefix("v.", "a.", "mm.")
    rows = _vocab_rows(edit, "per_layer_token_embd.weight")
    if rows is None or rows == _vocab_rows(edit, "token_embd.weight"):
        return
    edit.set_str("tokenizer.ggml.model", "llama")
    truncate_rows(edit, "token_embd.weight", rows)
    _truncate_vocab(edit, rows)
    tokens = edit.get("tokenizer.ggml.tokens") or []
    types = edit.get("tokenizer.ggml.token_type")
    if isinstance(types, list):
        fixed = []
        for token, kind in zip(tokens, types, strict=False):
            if re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", token):
                kind = 6  # byte
            elif token.startswith("<unused"):
                kind = 1  # normal
            fixed.append(int(kind))
        edit.set_array("tokenizer.ggml.token_type", INT32, fixed)
    ids = edit.get("tokenizer.ggml.eos_token_ids")
    if isinstance(ids, list):
        item = edit.item_type("tokenizer.ggml.eos_token_ids") or INT32
        edit.set_array("tokenizer.ggml.eos_token_ids", item, [int(i) for i in ids] + ([] if 106 in ids else [106]))
    else:
        edit.set_array("tokenizer.ggml.eos_token_ids", INT32, [1, 106])


# --- gemma4 ---------------------------------------------------------------------------------------


def is_gemma4(edit: GGUFEdit) -> bool:
    return edit.arch == "gemma4" and (
        edit.has_prefix("a.") or edit.has_prefix("v.") or edit.has_prefix("mm.")
        or edit.has_prefix("model.vision_tower.") or edit.get("tokenizer.ggml.model") == "llama")


def _gemma4(edit: GGUFEdit) -> None:
    if edit.get("tokenizer.ggml.model") == "llama":  # Gemma 4 is BPE; as SPM its control tokens split
        edit.set_str("tokenizer.ggml.model", "gemma4")
    edit.drop_prefix("a.", "v.", "mm.", "model.vision_tower.")
    for b in _blocks(edit):
        sidecars = any(edit.tensor(f"blk.{b}.ffn_{p}_exps.{s}") for p in ("gate", "up")
                       for s in ("scale", "input_scale"))
        if not sidecars and edit.tensor(f"blk.{b}.ffn_gate_up_exps.weight") is None:
            interleave_experts(edit, f"blk.{b}.ffn_gate_up_exps.weight", f"blk.{b}.ffn_gate_exps.weight",
                               f"blk.{b}.ffn_up_exps.weight")
        edit.rename(f"blk.{b}.ffn_gate_inp.per_expert_scale", f"blk.{b}.ffn_down_exps.scale")


# --- qwen3.5, qwen3-next --------------------------------------------------------------------------


def _ssm_dt(edit: GGUFEdit) -> list[str]:
    return [name for name in edit.tensors if name.endswith(".ssm_dt")]


def is_qwen35(edit: GGUFEdit) -> bool:
    arch = edit.arch
    return arch in ("qwen35", "qwen35moe") and (
        edit.has(f"{arch}.vision.block_count") or edit.has(f"{arch}.image_token_id")
        or edit.has(f"{arch}.ssm.v_head_reordered") or edit.has(f"{arch}.rope.mrope_interleaved")
        or (arch == "qwen35moe" and edit.has(f"{arch}.feed_forward_length"))
        or edit.has_prefix("mtp.") or edit.has_prefix("v.") or bool(_ssm_dt(edit)))


def _qwen35(edit: GGUFEdit) -> None:
    arch = edit.arch
    _collapse_to_max(edit, f"{arch}.attention.head_count_kv", 2)
    sections = edit.get(f"{arch}.rope.dimension_sections")
    if isinstance(sections, list) and len(sections) == 3:
        edit.set_array(f"{arch}.rope.dimension_sections", INT32, [int(v) for v in sections] + [0])
    for name in _ssm_dt(edit):
        edit.rename(name, name + ".bias")
    # Multi-token-prediction layers only serve speculative decoding; the text model runs without them.
    edit.drop_prefix("v.", "mm.", "mtp.")


def _is_qwen3next(edit: GGUFEdit) -> bool:
    return edit.arch == "qwen3next" and bool(_ssm_dt(edit))


def _qwen3next(edit: GGUFEdit) -> None:
    _collapse_to_max(edit, "qwen3next.attention.head_count_kv", 0)
    for name in _ssm_dt(edit):
        edit.rename(name, name + ".bias")


# --- qwen2.5-vl, qwen3-vl -------------------------------------------------------------------------


def _qwen25vl(edit: GGUFEdit) -> None:
    """llama.cpp runs Qwen2.5-VL's text model as `qwen2vl`, with four M-RoPE sections."""
    _rename_arch(edit, "qwen25vl", "qwen2vl", skip=("vision.",))
    _pad_sections(edit, "qwen2vl.rope.mrope_section", "qwen2vl.rope.dimension_sections")
    edit.drop_prefix("v.", "mm.")


def is_qwen3vl(edit: GGUFEdit) -> bool:
    return edit.arch in ("qwen3vl", "qwen3vlmoe") and not edit.has(f"{edit.arch}.rope.dimension_sections")


def _qwen3vl(edit: GGUFEdit) -> None:
    arch = edit.arch
    edit.set_array(f"{arch}.rope.dimension_sections", INT32, [24, 20, 20, 0])  # the Qwen3-VL family's sections
    deepstack = edit.get(f"{arch}.vision.deepstack_visual_indexes")
    edit.inject(f"{arch}.n_deepstack_layers", UINT32, len(deepstack) if isinstance(deepstack, list) else 0)
    edit.drop_prefix("v.", "mm.")


# --- mistral3, llama4, llama 3 --------------------------------------------------------------------


def is_mistral3(edit: GGUFEdit) -> bool:
    return edit.arch == "mistral3" and (
        edit.has_prefix("v.") or edit.has_prefix("mm.") or edit.has("mistral3.rope.scaling.beta_fast")
        or edit.has("mistral3.rope.scaling.mscale_all_dim") or edit.has("mistral3.rope.scaling_beta"))


def _mistral3(edit: GGUFEdit) -> None:
    edit.copy("mistral3.rope.scaling.beta_fast", "mistral3.rope.scaling.yarn_beta_fast")
    edit.copy("mistral3.rope.scaling.beta_slow", "mistral3.rope.scaling.yarn_beta_slow")
    edit.copy("mistral3.rope.scaling.mscale_all_dim", "mistral3.rope.scaling.yarn_log_multiplier")
    edit.copy("mistral3.rope.scaling_beta", "mistral3.attention.temperature_scale")
    if _missing_or_default(edit, "tokenizer.ggml.pre"):
        edit.set_str("tokenizer.ggml.pre", "tekken")
    edit.drop_prefix("v.", "mm.")


def is_llama4(edit: GGUFEdit) -> bool:
    return edit.arch == "llama4" and (edit.has_prefix("v.") or edit.has_prefix("mm."))


def _llama4(edit: GGUFEdit) -> None:
    edit.drop_prefix("v.", "mm.")


def _token(edit: GGUFEdit, index: int) -> str | None:
    tokens = edit.get("tokenizer.ggml.tokens")
    return tokens[index] if isinstance(tokens, list) and index < len(tokens) else None


def _is_llama3_gap(edit: GGUFEdit) -> bool:
    """Llama 3 files without a pre-tokenizer, or whose EOS is <|end_of_text|>: turns never end."""
    if edit.arch != "llama" or _token(edit, 128009) != "<|eot_id|>":
        return False
    template = edit.get("tokenizer.chat_template")
    markers = _token(edit, 128006) == "<|start_header_id|>" or (
        isinstance(template, str) and ("<|start_header_id|>" in template or "<|eot_id|>" in template))
    return markers and (_missing_or_default(edit, "tokenizer.ggml.pre")
                        or edit.get("tokenizer.ggml.eos_token_id") == 128001)


def _llama3(edit: GGUFEdit) -> None:
    if _missing_or_default(edit, "tokenizer.ggml.pre"):
        edit.set_str("tokenizer.ggml.pre", "llama-bpe")
    for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"):
        if edit.get(key) in (None, 128001):
            edit.set_u32(key, 128009)
    edit.set_array("tokenizer.ggml.eos_token_ids", INT32, [128009])


# --- gpt-oss, lfm2, olmo3, laguna -----------------------------------------------------------------


def _gptoss(edit: GGUFEdit) -> None:
    """Ollama's `gptoss` is llama.cpp's `gpt-oss`, with three tensor names of its own."""
    _rename_arch(edit, "gptoss", "gpt-oss")
    gate = edit.tensor("blk.0.ffn_gate_exps.weight")
    if gate is not None:
        edit.inject("gpt-oss.expert_feed_forward_length", UINT32, gate.shape[1])
    edit.inject("gpt-oss.rope.scaling.type", STRING, "yarn")
    edit.set_str("tokenizer.ggml.pre", "gpt-4o")  # the harmony headers tokenize wrongly with GPT-2's
    edit.rename_containing(".attn_out.", ".attn_output.")
    for name in [n for n in edit.tensors if n.endswith(".attn_sinks")]:
        edit.rename(name, name + ".weight")
    edit.rename_containing(".ffn_norm.", ".post_attention_norm.")


def _is_lfm2(edit: GGUFEdit) -> bool:
    return edit.arch == "lfm2" and edit.tensor("output_norm.weight") is not None \
        and edit.tensor("token_embd_norm.weight") is None


def _lfm2(edit: GGUFEdit) -> None:
    edit.rename("output_norm.weight", "token_embd_norm.weight")
    edit.set_str("tokenizer.ggml.pre", "lfm2")
    gate = edit.tensor("blk.0.ffn_gate.weight")
    if gate is not None:
        edit.set_u32("lfm2.feed_forward_length", gate.shape[1])


def _olmo3(edit: GGUFEdit) -> None:
    """llama.cpp's `olmo2` loader covers OLMo 3, sliding windows included."""
    _rename_arch(edit, "olmo3", "olmo2")


def _is_laguna(edit: GGUFEdit) -> bool:
    return edit.arch == "laguna" and (
        edit.has("laguna.rope.swa.dimension_count") or edit.has("laguna.rope.swa.freq_base")
        or edit.tensor("blk.0.attn_g.weight") is not None)


def _laguna(edit: GGUFEdit) -> None:
    edit.copy("laguna.rope.swa.dimension_count", "laguna.rope.dimension_count_swa")
    edit.copy("laguna.rope.swa.freq_base", "laguna.rope.freq_base_swa")
    for name in [n for n in edit.tensors if n.endswith(".attn_g.weight")]:
        edit.rename(name, name[: -len(".attn_g.weight")] + ".attn_gate.weight")


# --- GLM, DeepSeek OCR, Nemotron ------------------------------------------------------------------


def _glm4moelite(edit: GGUFEdit) -> None:
    """GLM-4.7 Flash: DeepSeek-V2 attention (MLA), with per-head key/value sizes where llama.cpp's
    `deepseek2` wants the absorbed ones."""
    head_dim = edit.get("glm4moelite.attention.key_length")
    _rename_arch(edit, "glm4moelite", "deepseek2")
    edit.set_u32("deepseek2.attention.head_count_kv", 1)
    kv_lora, rope = edit.get("deepseek2.attention.kv_lora_rank"), edit.get("deepseek2.rope.dimension_count")
    if isinstance(kv_lora, int) and isinstance(rope, int):
        edit.set_u32("deepseek2.attention.key_length", kv_lora + rope)
        edit.set_u32("deepseek2.attention.value_length", kv_lora)
    if isinstance(head_dim, int):
        edit.set_u32("deepseek2.attention.key_length_mla", head_dim)
        edit.set_u32("deepseek2.attention.value_length_mla", head_dim)
    edit.inject("deepseek2.expert_group_count", UINT32, 1)
    edit.inject("deepseek2.expert_group_used_count", UINT32, 1)
    edit.set_str("tokenizer.ggml.pre", "glm4")
    ids = edit.get("tokenizer.ggml.eos_token_ids")
    if isinstance(ids, list):
        ids = [int(i) for i in ids if int(i) >= 0]
        if len(ids) >= 2:
            edit.inject("tokenizer.ggml.eot_token_id", UINT32, ids[1])
        if len(ids) >= 3:
            edit.inject("tokenizer.ggml.eom_token_id", UINT32, ids[2])


def _glmocr(edit: GGUFEdit) -> None:
    _rename_arch(edit, "glmocr", "glm4", skip=("vision.",))
    _pad_sections(edit, "glm4.rope.mrope_section", "glm4.rope.dimension_sections")
    edit.copy("glm4.attention.key_length", "glm4.rope.dimension_count")
    edit.set_str("tokenizer.ggml.pre", "chatglm-bpe")
    edit.rename_containing(".attn_out.", ".attn_output.")
    edit.rename_containing(".post_attn_norm.", ".post_attention_norm.")
    edit.rename_containing(".post_ffn_norm.", ".post_ffw_norm.")
    for b in _blocks(edit):  # GLM4 reads gate and up as one tensor, gate first
        concat_rows(edit, f"blk.{b}.ffn_up.weight", [f"blk.{b}.ffn_gate.weight", f"blk.{b}.ffn_up.weight"])
    edit.drop_prefix("v.", "mm.")


def _deepseekocr(edit: GGUFEdit) -> None:
    _rename_arch(edit, "deepseekocr", "deepseek2-ocr", skip=("vision.", "sam."))
    edit.inject("deepseek2-ocr.attention.layer_norm_rms_epsilon", FLOAT32, 1e-6)
    down = edit.tensor("blk.1.ffn_down_exps.weight")
    if down is not None:
        edit.inject("deepseek2-ocr.expert_feed_forward_length", UINT32, down.shape[0])
    shared, per_expert = edit.tensor("blk.1.ffn_down_shexp.weight"), edit.get(
        "deepseek2-ocr.expert_feed_forward_length")
    if shared is not None and isinstance(per_expert, int) and per_expert > 0:
        edit.inject("deepseek2-ocr.expert_shared_count", UINT32, shared.shape[0] // per_expert)
    edit.drop_prefix("s.", "v.", "mm.")


def _is_nemotron_h_moe(edit: GGUFEdit) -> bool:
    return edit.arch == "nemotron_h_moe" and (
        any(".ffn_latent_in" in name for name in edit.tensors) or edit.has_prefix("mtp."))


def _nemotron_h_moe(edit: GGUFEdit) -> None:
    for b in _blocks(edit):
        latent = edit.tensor(f"blk.{b}.ffn_latent_in.weight")
        if latent is not None:
            edit.inject("nemotron_h_moe.moe_latent_size", UINT32, latent.shape[1])
            break
    edit.rename_containing(".ffn_latent_in", ".ffn_latent_down")
    edit.rename_containing(".ffn_latent_out", ".ffn_latent_up")
    edit.drop_prefix("mtp.")


def _nemotron_h_omni(edit: GGUFEdit) -> None:
    experts = (edit.get("nemotron_h_omni.expert_count") or 0) or (edit.get("nemotron_h_omni.expert_used_count") or 0)
    text_arch = "nemotron_h_moe" if experts else "nemotron_h"
    _rename_arch(edit, "nemotron_h_omni", text_arch, skip=("vision.", "audio."))
    edit.drop_prefix("a.", "v.", "mm.")
    if text_arch == "nemotron_h_moe":
        _nemotron_h_moe(edit)


# --- BERT -----------------------------------------------------------------------------------------


def _is_snowflake(edit: GGUFEdit) -> bool:
    charsmap = edit.get("tokenizer.ggml.precompiled_charsmap")
    return edit.arch == "bert" and edit.get("tokenizer.ggml.model") == "t5" and isinstance(charsmap, list) \
        and edit.item_type("tokenizer.ggml.precompiled_charsmap") == STRING


def _snowflake(edit: GGUFEdit) -> None:
    """snowflake-arctic-embed2: a precompiled charsmap as one base64 character per string."""
    text = "".join(edit.get("tokenizer.ggml.precompiled_charsmap"))
    edit.set_array("tokenizer.ggml.precompiled_charsmap", UINT8, base64.b64decode(text + "=" * (-len(text) % 4)))


def _arch(name: str) -> Callable[[GGUFEdit], bool]:
    return lambda edit: edit.arch == name


TRANSLATIONS: list[TextTranslation] = [
    TextTranslation("gemma3", _is_embeddinggemma, _embeddinggemma),
    TextTranslation("gemma3", is_gemma3, _gemma3),
    TextTranslation("gemma3n", _is_gemma3n, _gemma3n),
    TextTranslation("gemma4", is_gemma4, _gemma4),
    TextTranslation("qwen35", is_qwen35, _qwen35),
    TextTranslation("qwen35moe", is_qwen35, _qwen35),
    TextTranslation("qwen3next", _is_qwen3next, _qwen3next),
    TextTranslation("qwen25vl", _arch("qwen25vl"), _qwen25vl),
    TextTranslation("qwen3vl", is_qwen3vl, _qwen3vl),
    TextTranslation("qwen3vlmoe", is_qwen3vl, _qwen3vl),
    TextTranslation("mistral3", is_mistral3, _mistral3),
    TextTranslation("llama4", is_llama4, _llama4),
    TextTranslation("llama", _is_llama3_gap, _llama3),
    TextTranslation("gptoss", _arch("gptoss"), _gptoss),
    TextTranslation("lfm2", _is_lfm2, _lfm2),
    TextTranslation("olmo3", _arch("olmo3"), _olmo3),
    TextTranslation("laguna", _is_laguna, _laguna),
    TextTranslation("glm4moelite", _arch("glm4moelite"), _glm4moelite),
    TextTranslation("glmocr", _arch("glmocr"), _glmocr),
    TextTranslation("deepseekocr", _arch("deepseekocr"), _deepseekocr),
    TextTranslation("nemotron_h_omni", _arch("nemotron_h_omni"), _nemotron_h_omni),
    TextTranslation("nemotron_h_moe", _is_nemotron_h_moe, _nemotron_h_moe),
    TextTranslation("bert", _is_snowflake, _snowflake),
]


def text_translation(edit: GGUFEdit) -> TextTranslation | None:
    """The translation this GGUF needs, or None when llama.cpp loads it as it is."""
    for translation in TRANSLATIONS:
        if translation.arch == edit.arch and translation.detect(edit):
            return translation
    return None

