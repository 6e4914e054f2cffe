"""One case per architecture Ollama stores differently from llama.cpp: how to build a tiny model of it in
llama.cpp's layout, and how Ollama's converter would have written the same model.

The Ollama side follows Ollama's converters (`convert/convert_*.go`) and its notes on what it changed
(`llama/compat/README.md`): other architecture names and key prefixes, keys it leaves out or names its
own way, tensor names of its own, the vision tower inside the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from gguf import GGUFValueType

from modelstore.gguf import read_gguf
from tests.layouts.gemma3 import ollama_gemma3
from tests.layouts.ollama import Value, ollama_copy, read_values
from tests.layouts.tiny import VOCAB, hyperparameters, tiny_model, tokenizer_values
from tests.layouts.vision import pixtral_tower, qwen3vl_tower, qwen25vl_tower

U, F, A, B, I32, S = (GGUFValueType.UINT32, GGUFValueType.FLOAT32, GGUFValueType.ARRAY, GGUFValueType.BOOL,
                      GGUFValueType.INT32, GGUFValueType.STRING)
OPTIONAL = ("*.scale", "*.input_scale")  # tensors llama.cpp creates for quantization schemes these files lack


@dataclass
class Case:
    ollama_arch: str  # general.architecture as Ollama writes it
    arch: str  # llama.cpp's architecture
    to_ollama: Callable[[Path, Path], Path]  # llama.cpp layout → Ollama's
    size: dict = field(default_factory=dict)  # tiny_model / hyperparameters arguments
    values: dict[str, Value] = field(default_factory=dict)
    tokenizer: str = "llama"
    drop: tuple[str, ...] = OPTIONAL
    embedding: bool = False
    same_output: bool = True  # derived and original give the same greedy text
    refused: bool = True  # llama.cpp does not load Ollama's file (else it loads it and misbehaves)
    derived_values: dict = field(default_factory=dict)  # keys the derived GGUF must have
    vocabulary: list[str] | None = None  # instead of the small test vocabulary

    def build(self, directory: Path) -> tuple[Path, Path]:
        """(llama.cpp-layout original, Ollama-layout copy)."""
        values = {**hyperparameters(self.arch, **self.size), **tokenizer_values(self.tokenizer, self.vocabulary),
                  **self.values}
        original = tiny_model(self.arch, directory / f"{self.ollama_arch}.gguf", values, drop=self.drop)
        return original, self.to_ollama(original, directory / f"{self.ollama_arch}.ollama.gguf")


def _random(*shape: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * 0.1).astype(np.float32)


def _renamer(pairs: list[tuple[str, str]]) -> Callable[[str], str]:
    def rename(name: str) -> str:
        for old, new in pairs:
            name = name.replace(old, new)
        return name
    return rename


def _key(arch: str, suffix: str, original: Path) -> object:
    return read_gguf(original).kv.get(f"{arch}.{suffix}")


def _vision_keys(arch: str) -> dict[str, Value]:
    """The `<arch>.vision.*` keys Ollama writes beside an embedded tower (a tiny one)."""
    return {f"{arch}.vision.block_count": (1, U), f"{arch}.vision.embedding_length": (16, U),
            f"{arch}.vision.attention.head_count": (2, U)}


def _tower(prefix: str = "v.blk.0.") -> dict[str, np.ndarray]:
    """Stand-in vision tensors: the text side must drop them, whatever they are."""
    return {f"{prefix}attn_q.weight": _random(16, 16), "v.patch_embd.weight": _random(16, 3, 2, 2),
            "mm.0.weight": _random(64, 16)}


# --- gemma ----------------------------------------------------------------------------------------


def gemma3(original: Path, destination: Path) -> Path:
    return ollama_gemma3(original, destination)


def embeddinggemma(original: Path, destination: Path) -> Path:
    """Ollama keeps `gemma3` with the sentence-transformers dense layers as dense.0 / dense.1."""
    width = read_gguf(original).kv["gemma-embedding.embedding_length"]
    return ollama_copy(original, destination, arch="gemma3", rename_key_prefix=("gemma-embedding.", "gemma3."),
                       rename_tensor=_renamer([("output_norm.weight", "norm.weight")]),
                       extra_tensors={"dense.0.weight": _random(2 * width, width, seed=1),
                                      "dense.1.weight": _random(width, 2 * width, seed=2)})


def gemma4(original: Path, destination: Path) -> Path:
    """Published Gemma 4 files call their BPE tokenizer `llama` and hold the vision and audio towers."""
    return ollama_copy(original, destination, set_values={"tokenizer.ggml.model": ("llama", S)},
                       extra_tensors={**_tower(), "a.blk.0.ln1.weight": np.ones(16, np.float32)})


# --- gpt-oss, llama, mistral ----------------------------------------------------------------------


def gptoss(original: Path, destination: Path) -> Path:
    return ollama_copy(
        original, destination, arch="gptoss", rename_key_prefix=("gpt-oss.", "gptoss."),
        drop_keys=("gptoss.expert_feed_forward_length", "gptoss.rope.scaling.type"),
        set_values={"tokenizer.ggml.pre": ("default", S)},
        rename_tensor=_renamer([(".attn_output.", ".attn_out."), (".attn_sinks.weight", ".attn_sinks"),
                                (".post_attention_norm.", ".ffn_norm.")]))


def llama4(original: Path, destination: Path) -> Path:
    return ollama_copy(original, destination, set_values=_vision_keys("llama4"), extra_tensors=_tower())


def mistral3(original: Path, destination: Path) -> Path:
    """Ollama's YaRN keys carry Hugging Face's names, and the Pixtral tower is inside."""
    renames = {"rope.scaling.yarn_beta_fast": "rope.scaling.beta_fast",
               "rope.scaling.yarn_beta_slow": "rope.scaling.beta_slow",
               "rope.scaling.yarn_log_multiplier": "rope.scaling.mscale_all_dim",
               "attention.temperature_scale": "rope.scaling_beta"}
    values = read_values(original)
    moved = {f"mistral3.{new}": values[f"mistral3.{old}"] for old, new in renames.items()
             if f"mistral3.{old}" in values}
    return ollama_copy(original, destination, drop_keys=tuple(f"mistral3.{old}" for old in renames),
                       set_values={**moved, **_vision_keys("mistral3"), "tokenizer.ggml.pre": ("default", S)},
                       extra_tensors=_tower())


def llama3(original: Path, destination: Path) -> Path:
    """A Llama 3 file without a pre-tokenizer whose EOS is <|end_of_text|>: turns would never end."""
    return ollama_copy(original, destination, drop_keys=("tokenizer.ggml.pre", "tokenizer.ggml.eot_token_id",
                                                         "tokenizer.ggml.eos_token_ids"),
                       set_values={"tokenizer.ggml.eos_token_id": (128001, U)})


# --- qwen -----------------------------------------------------------------------------------------


def qwen25vl(original: Path, destination: Path) -> Path:
    sections = read_gguf(original).kv["qwen2vl.rope.dimension_sections"]
    return ollama_copy(original, destination, arch="qwen25vl", rename_key_prefix=("qwen2vl.", "qwen25vl."),
                       drop_keys=("qwen25vl.rope.dimension_sections",),
                       set_values={"qwen25vl.rope.mrope_section": (list(sections[:3]), A, I32),
                                   **_vision_keys("qwen25vl")},
                       extra_tensors=_tower())


def qwen3vl(original: Path, destination: Path) -> Path:
    """Ollama writes no M-RoPE sections (llama.cpp's are those of the whole Qwen3-VL family)."""
    arch = read_gguf(original).architecture
    return ollama_copy(original, destination,
                       drop_keys=(f"{arch}.rope.dimension_sections", f"{arch}.n_deepstack_layers"),
                       set_values={**_vision_keys(arch),
                                   f"{arch}.vision.deepstack_visual_indexes": ([0], A, I32)},
                       extra_tensors=_tower())


def _per_layer_kv_heads(arch: str, original: Path) -> list[int]:
    """Ollama writes head_count_kv per layer: 0 for the recurrent (SSM) layers."""
    info = read_gguf(original)
    heads = info.kv[f"{arch}.attention.head_count_kv"]
    attention = {int(m.group(1)) for t in info.tensors if (m := re.match(r"blk\.(\d+)\.attn_q\.weight", t.name))}
    return [heads if b in attention else 0 for b in range(info.kv[f"{arch}.block_count"])]


def qwen35(original: Path, destination: Path) -> Path:
    arch = read_gguf(original).architecture
    sections = read_gguf(original).kv[f"{arch}.rope.dimension_sections"]
    return ollama_copy(original, destination,
                       set_values={f"{arch}.attention.head_count_kv": (_per_layer_kv_heads(arch, original), A, U),
                                   f"{arch}.rope.dimension_sections": (list(sections[:3]), A, I32),
                                   **_vision_keys(arch)},
                       rename_tensor=_renamer([(".ssm_dt.bias", ".ssm_dt")]),
                       extra_tensors={**_tower(), "mtp.fc.weight": _random(64, 128)})


def qwen3next(original: Path, destination: Path) -> Path:
    return ollama_copy(original, destination,
                       set_values={"qwen3next.attention.head_count_kv":
                                   (_per_layer_kv_heads("qwen3next", original), A, U)},
                       rename_tensor=_renamer([(".ssm_dt.bias", ".ssm_dt")]))


# --- lfm2, olmo3, laguna, GLM ---------------------------------------------------------------------


def lfm2(original: Path, destination: Path) -> Path:
    """Ollama's final norm is `output_norm`; its feed-forward length can disagree with the tensors."""
    return ollama_copy(original, destination, set_values={"lfm2.feed_forward_length": (12288, U)},
                       rename_tensor=_renamer([("token_embd_norm.weight", "output_norm.weight")]))


def olmo3(original: Path, destination: Path) -> Path:
    return ollama_copy(original, destination, arch="olmo3", rename_key_prefix=("olmo2.", "olmo3."))


def laguna(original: Path, destination: Path) -> Path:
    values = read_values(original)
    moved = {f"laguna.rope.swa.{k}": values[f"laguna.rope.{k}_swa"] for k in ("dimension_count", "freq_base")
             if f"laguna.rope.{k}_swa" in values}
    return ollama_copy(original, destination,
                       drop_keys=("laguna.rope.dimension_count_swa", "laguna.rope.freq_base_swa"),
                       set_values=moved, rename_tensor=_renamer([(".attn_gate.weight", ".attn_g.weight")]))


def glm4moelite(original: Path, destination: Path) -> Path:
    """GLM-4.7 Flash: DeepSeek-V2 attention, written with per-head key/value sizes and all KV heads."""
    kv = read_gguf(original).kv
    head_dim = kv["deepseek2.attention.key_length_mla"]
    return ollama_copy(
        original, destination, arch="glm4moelite", rename_key_prefix=("deepseek2.", "glm4moelite."),
        drop_keys=("glm4moelite.attention.key_length_mla", "glm4moelite.attention.value_length_mla",
                   "glm4moelite.expert_group_count", "glm4moelite.expert_group_used_count"),
        set_values={"glm4moelite.attention.head_count_kv": (kv["deepseek2.attention.head_count"], U),
                    "glm4moelite.attention.key_length": (head_dim, U),
                    "glm4moelite.attention.value_length": (head_dim, U)})


def llama3_vocabulary() -> list[str]:
    """Llama 3's 128256 tokens where it matters: <|end_of_text|>, <|start_header_id|>, <|eot_id|>."""
    tokens = VOCAB + [f"<|filler_{i}|>" for i in range(128000 - len(VOCAB))]
    specials = {128000: "<|begin_of_text|>", 128001: "<|end_of_text|>", 128006: "<|start_header_id|>",
                128007: "<|end_header_id|>", 128009: "<|eot_id|>"}
    return tokens + [specials.get(i, f"<|reserved_special_token_{i}|>") for i in range(128000, 128256)]


def _tensor(original: Path, name: str) -> np.ndarray:
    """An F32 tensor of a tiny model, numpy order."""
    info = read_gguf(original)
    tensor = next(t for t in info.tensors if t.name == name)
    data = np.memmap(original, dtype=np.float32, mode="r", offset=info.data_offset + tensor.offset,
                     shape=tuple(reversed(tensor.shape)))
    return np.array(data)


def glmocr(original: Path, destination: Path) -> Path:
    """GLM-OCR as Ollama stores it: `glmocr` with three M-RoPE sections, its own norm and output names, the
    feed-forward gate and up apart where llama.cpp's GLM4 joins them (gate first)."""
    info = read_gguf(original)
    sections = info.kv["glm4.rope.dimension_sections"]
    halves = {}
    for t in info.tensors:
        if t.name.endswith(".ffn_up.weight"):
            joined = _tensor(original, t.name)
            gate, up = np.split(joined, 2)
            halves[t.name.replace(".ffn_up.", ".ffn_gate.")], halves[t.name] = gate, up
    return ollama_copy(
        original, destination, arch="glmocr", rename_key_prefix=("glm4.", "glmocr."),
        drop_keys=("glmocr.rope.dimension_sections", "glmocr.rope.dimension_count"),
        set_values={"glmocr.rope.mrope_section": (list(sections[:3]), A, I32), **_vision_keys("glmocr")},
        rename_tensor=lambda n: None if n.endswith(".ffn_up.weight") else _renamer([
            (".attn_output.", ".attn_out."), (".post_attention_norm.", ".post_attn_norm."),
            (".post_ffw_norm.", ".post_ffn_norm.")])(n),
        extra_tensors={**halves, **_tower()})


def nemotron_h_moe(original: Path, destination: Path) -> Path:
    """Nemotron 3 Super's latent experts: Ollama names the projections `ffn_latent_in/out` and writes no
    latent size; multi-token-prediction tensors ride along."""
    return ollama_copy(original, destination, drop_keys=("nemotron_h_moe.moe_latent_size",),
                       rename_tensor=_renamer([(".ffn_latent_down.", ".ffn_latent_in."),
                                               (".ffn_latent_up.", ".ffn_latent_out.")]),
                       extra_tensors={"mtp.layers.0.mixer.experts.0.up_proj.weight": _random(96, 64)})


def nemotron_h_omni(original: Path, destination: Path) -> Path:
    """Nemotron 3 (33B omni): one `nemotron_h_omni` file with the vision and audio towers inside."""
    return ollama_copy(original, destination, arch="nemotron_h_omni",
                       rename_key_prefix=("nemotron_h.", "nemotron_h_omni."),
                       set_values=_vision_keys("nemotron_h_omni"),
                       extra_tensors={**_tower(), "a.blk.0.ln1.weight": np.ones(16, np.float32)})


MLA = {"deepseek2.attention.key_length": (576, U), "deepseek2.attention.value_length": (512, U),
       "deepseek2.rope.dimension_count": (64, U), "deepseek2.attention.key_length_mla": (128, U),
       "deepseek2.attention.value_length_mla": (128, U), "deepseek2.attention.kv_lora_rank": (512, U),
       "deepseek2.attention.q_lora_rank": (512, U), "deepseek2.expert_group_count": (1, U),
       "deepseek2.expert_group_used_count": (1, U)}
SECTIONS = ([8, 4, 4, 0], A, I32)  # M-RoPE sections of a 32-wide head
QWEN3 = ([24, 20, 20, 0], A, I32)  # of a 128-wide head: the Qwen3-VL family's


def _nemotron(arch: str) -> dict[str, Value]:
    """Mamba, Mamba, attention+MLP: per-layer feed-forward and head counts, 0 where a layer has none."""
    return {f"{arch}.feed_forward_length": ([0, 0, 96], A, U), f"{arch}.attention.head_count": ([2, 0, 2], A, U),
            f"{arch}.attention.head_count_kv": ([2, 0, 2], A, U)}


def _ssm(arch: str) -> dict[str, Value]:
    """Gated delta-net sizes as llama.cpp's own tests give them."""
    return {f"{arch}.ssm.inner_size": (256, U), f"{arch}.ssm.state_size": (128, U),
            f"{arch}.ssm.group_count": (2, U), f"{arch}.ssm.time_step_rank": (2, U)}


CASES = {
    "gemma3": Case("gemma3", "gemma3", gemma3, values={"gemma3.attention.sliding_window": (64, U)},
                   drop=OPTIONAL + ("*.attn_q.bias", "*.attn_k.bias", "*.attn_v.bias")),
    # Six layers: Gemma's pattern makes the sixth a global one, which llama.cpp's encoder path needs.
    "embeddinggemma": Case("gemma3", "gemma-embedding", embeddinggemma, embedding=True, same_output=False,
                           size={"layers": 6},
                           values={"gemma-embedding.pooling_type": (1, U),
                                   "gemma-embedding.attention.sliding_window": (64, U)},
                           drop=OPTIONAL + ("*.attn_q.bias", "*.attn_k.bias", "*.attn_v.bias", "output.weight")),
    # No per-layer inputs: llama.cpp's model saver does not write those tensors.
    "gemma4": Case("gemma4", "gemma4", gemma4, tokenizer="gemma4",
                   size={"layers": 5, "width": 128, "ffn": 192},
                   values={"gemma4.embedding_length_per_layer_input": (0, U),
                           "gemma4.attention.shared_kv_layers": (0, U), "gemma4.attention.key_length_swa": (64, U),
                           "gemma4.attention.value_length_swa": (64, U), "gemma4.rope.freq_base_swa": (1e4, F),
                           "gemma4.attention.sliding_window_pattern": ([True] * 4 + [False], A, B),
                           "gemma4.attention.sliding_window": (64, U)}),
    "gptoss": Case("gptoss", "gpt-oss", gptoss, size={"experts": 2},
                   values={"gpt-oss.attention.sliding_window": (64, U)}),
    "llama4": Case("llama4", "llama4", llama4, size={"layers": 4, "experts": 2}),
    "mistral3": Case("mistral3", "mistral3", mistral3),
    "qwen25vl": Case("qwen25vl", "qwen2vl", qwen25vl, values={"qwen2vl.rope.dimension_sections": SECTIONS}),
    "qwen3vl": Case("qwen3vl", "qwen3vl", qwen3vl, size={"width": 256},
                    values={"qwen3vl.rope.dimension_sections": QWEN3}),
    "qwen35": Case("qwen35", "qwen35", qwen35, size={"width": 256, "ffn": 384}, values={
        "qwen35.rope.dimension_sections": QWEN3, **_ssm("qwen35")}),
    "qwen3next": Case("qwen3next", "qwen3next", qwen3next, size={"experts": 2, "width": 256, "ffn": 384},
                      values=_ssm("qwen3next")),
    "lfm2": Case("lfm2", "lfm2", lfm2, values={"lfm2.attention.head_count_kv": ([2, 0], A, U)}),
    "olmo3": Case("olmo3", "olmo2", olmo3),
    "laguna": Case("laguna", "laguna", laguna, size={"experts": 2, "width": 160}),
    "llama3": Case("llama", "llama", llama3, refused=False, size={"width": 32}, vocabulary=llama3_vocabulary(),
                   drop=OPTIONAL + ("output.weight",),
                   values={"llama.vocab_size": (128256, U), "tokenizer.ggml.pre": ("llama-bpe", S),
                           "tokenizer.ggml.eos_token_id": (128009, U),
                           "tokenizer.ggml.eot_token_id": (128009, U)},
                   derived_values={"tokenizer.ggml.eos_token_id": 128009, "tokenizer.ggml.eot_token_id": 128009,
                                   "tokenizer.ggml.pre": "llama-bpe", "tokenizer.ggml.eos_token_ids": [128009]}),
    "glmocr": Case("glmocr", "glm4", glmocr, values={"glm4.rope.dimension_sections": SECTIONS}),
    "nemotron_h_moe": Case("nemotron_h_moe", "nemotron_h_moe", nemotron_h_moe, size={"layers": 3, "experts": 2},
                           values={**_nemotron("nemotron_h_moe"), "nemotron_h_moe.moe_latent_size": (48, U)}),
    "nemotron_h_omni": Case("nemotron_h_omni", "nemotron_h", nemotron_h_omni, size={"layers": 3},
                            values=_nemotron("nemotron_h")),
    "glm4moelite": Case("glm4moelite", "deepseek2", glm4moelite,
                        size={"experts": 2, "width": 128, "heads": 1, "kv_heads": 1, "ffn": 192}, values=MLA),
}


# Architectures whose projector the tests run: the real (tiny) tower Ollama's converter would write.
TOWERS = {"qwen25vl": qwen25vl_tower, "mistral3": pixtral_tower, "qwen3vl": qwen3vl_tower}


def with_tower(name: str, original: Path, destination: Path) -> Path:
    """The case's Ollama-layout file with a working vision tower in place of the stand-in one."""
    plain = CASES[name].to_ollama(original, destination.with_suffix(".standin.gguf"))
    keys, tensors = TOWERS[name](read_gguf(original).kv[f"{CASES[name].arch}.embedding_length"])
    return ollama_copy(plain, destination, set_values=keys, extra_tensors=tensors,
                       rename_tensor=lambda n: None if n.startswith(("v.", "mm.")) else n)
