"""Per-architecture conversion: config.json -> GGUF keys, Hugging Face tensor names -> GGUF names,
and the few tensors that need reshaping. The key sets follow Ollama's converters (convert_llama.go,
convert_qwen2.go, convert_bert.go), which llama.cpp loads."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from server.convert.errors import ConvertError
from server.convert.tokenizer import Tokenizer

_BLOCK = re.compile(r"blk\.(\d+)\.")


def first(config: dict[str, Any], *keys: str, default: Any = 0) -> Any:
    """Go `cmp.Or` over config keys: the first one set to a non-zero value."""
    for key in keys:
        value = config.get(key)
        if value:
            return value
    return default


class Replacer:
    """Go `strings.NewReplacer`: left to right, at each position the first listed match wins."""

    def __init__(self, pairs: list[str]) -> None:
        self.pairs = list(zip(pairs[::2], pairs[1::2], strict=True))

    def replace(self, text: str) -> str:
        out, i = [], 0
        while i < len(text):
            for old, new in self.pairs:
                if old and text.startswith(old, i):
                    out.append(new)
                    i += len(old)
                    break
            else:
                out.append(text[i])
                i += 1
        return "".join(out)


class Converter:
    """One architecture. Subclasses define `arch`, `replacements`, `kv`, and may skip or reshape tensors."""

    arch = ""
    replacements: list[str] = []
    skip: frozenset[str] = frozenset()  # source tensor names to leave out

    def __init__(self, config: dict[str, Any], directory: Path) -> None:
        self.config = config
        self.directory = directory

    def kv(self, tokenizer: Tokenizer) -> dict[str, Any]:
        raise NotImplementedError

    def transform(self, name: str, data: np.ndarray) -> np.ndarray:
        """Reshape a tensor's values (float32) before writing; `name` is the GGUF name."""
        return data

    def needs_transform(self, name: str) -> bool:
        return False

    def base_kv(self, tokenizer: Tokenizer) -> dict[str, Any]:
        kv: dict[str, Any] = {
            "general.architecture": ("string", self.arch),
            "general.file_type": ("uint32", 1),
            "general.quantization_version": ("uint32", 2),
        }
        kv.update(tokenizer.kv())
        return kv

    def put(self, kv: dict[str, Any], key: str, kind: str, value: Any) -> None:
        if value:
            kv[f"{self.arch}.{key}"] = (kind, value)


class LlamaConverter(Converter):
    arch = "llama"
    replacements = [
        "lm_head", "output",
        "model.embed_tokens", "token_embd",
        "model.norm", "output_norm",
        "model.layers", "blk",
        "input_layernorm", "attn_norm",
        "self_attn.q_proj", "attn_q",
        "self_attn.k_proj", "attn_k",
        "self_attn.v_proj", "attn_v",
        "self_attn.o_proj", "attn_output",
        "mlp.gate_proj", "ffn_gate",
        "mlp.down_proj", "ffn_down",
        "mlp.up_proj", "ffn_up",
        "post_attention_layernorm", "ffn_norm",
    ]
    skip = frozenset({"rotary_emb.inv_freq"})

    @property
    def heads(self) -> int:
        return int(first(self.config, "num_attention_heads", "n_head"))

    @property
    def kv_heads(self) -> int:
        return int(self.config.get("num_key_value_heads") or self.heads)

    def kv(self, tokenizer: Tokenizer) -> dict[str, Any]:
        c = self.config
        kv = self.base_kv(tokenizer)
        self.put(kv, "vocab_size", "uint32", len(tokenizer.tokens))
        kv[f"{self.arch}.block_count"] = ("uint32", int(first(c, "n_layers", "num_hidden_layers", "n_layer")))
        self.put(kv, "context_length", "uint32", int(first(c, "max_position_embeddings", "n_ctx")))
        hidden = int(first(c, "hidden_size", "n_embd"))
        self.put(kv, "embedding_length", "uint32", hidden)
        self.put(kv, "feed_forward_length", "uint32", int(first(c, "intermediate_size", "n_inner")))
        head_dim = int(c.get("head_dim") or 0)
        if self.heads:
            self.put(kv, "attention.head_count", "uint32", self.heads)
            self.put(kv, "rope.dimension_count", "uint32", head_dim or hidden // self.heads)
        self.put(kv, "rope.freq_base", "float32", float(c.get("rope_theta") or 0))
        scaling = c.get("rope_scaling") or {}
        if scaling.get("type") == "linear":
            kv[f"{self.arch}.rope.scaling.type"] = ("string", "linear")
            kv[f"{self.arch}.rope.scaling.factor"] = ("float32", float(scaling.get("factor") or 0))
        self.put(kv, "attention.head_count_kv", "uint32", int(c.get("num_key_value_heads") or 0))
        self.put(kv, "attention.layer_norm_rms_epsilon", "float32", float(c.get("rms_norm_eps") or 0))
        eps = float(first(c, "layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"))
        self.put(kv, "attention.layer_norm_epsilon", "float32", eps)
        if head_dim:
            self.put(kv, "attention.key_length", "uint32", head_dim)
            self.put(kv, "attention.value_length", "uint32", head_dim)
        return kv

    def needs_transform(self, name: str) -> bool:
        return name.endswith(("attn_q.weight", "attn_k.weight"))

    def transform(self, name: str, data: np.ndarray) -> np.ndarray:
        """Hugging Face's rotary layout (halves) to GGML's (interleaved pairs), per head."""
        heads = self.heads if name.endswith("attn_q.weight") else self.kv_heads
        shape = data.shape
        return data.reshape(heads, 2, shape[0] // heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


class Qwen2Converter(Converter):
    arch = "qwen2"
    replacements = [
        "lm_head", "output",
        "model.embed_tokens", "token_embd",
        "model.layers", "blk",
        "input_layernorm", "attn_norm",
        "self_attn.k_proj", "attn_k",
        "self_attn.v_proj", "attn_v",
        "self_attn.q_proj", "attn_q",
        "self_attn.o_proj", "attn_output",
        "mlp.down_proj", "ffn_down",
        "mlp.gate_proj", "ffn_gate",
        "mlp.up_proj", "ffn_up",
        "post_attention_layernorm", "ffn_norm",
        "model.norm", "output_norm",
    ]
    skip = frozenset({"rotary_emb.inv_freq"})

    def kv(self, tokenizer: Tokenizer) -> dict[str, Any]:
        c = self.config
        kv = self.base_kv(tokenizer)
        a = self.arch
        kv[f"{a}.block_count"] = ("uint32", int(c.get("num_hidden_layers") or 0))
        kv[f"{a}.context_length"] = ("uint32", int(c.get("max_position_embeddings") or 0))
        kv[f"{a}.embedding_length"] = ("uint32", int(c.get("hidden_size") or 0))
        kv[f"{a}.feed_forward_length"] = ("uint32", int(c.get("intermediate_size") or 0))
        kv[f"{a}.attention.head_count"] = ("uint32", int(c.get("num_attention_heads") or 0))
        kv[f"{a}.attention.head_count_kv"] = ("uint32", int(c.get("num_key_value_heads") or 0))
        kv[f"{a}.rope.freq_base"] = ("float32", float(c.get("rope_theta") or 0))
        kv[f"{a}.attention.layer_norm_rms_epsilon"] = ("float32", float(c.get("rms_norm_eps") or 0))
        scaling = c.get("rope_scaling") or {}
        kind = scaling.get("type") or ""
        if kind == "yarn":
            kv[f"{a}.rope.scaling.type"] = ("string", kind)
            kv[f"{a}.rope.scaling.factor"] = ("float32", float(scaling.get("factor") or 0))
        elif kind in ("mrope", "default"):
            kv[f"{a}.rope.mrope_section"] = ("int32s", [int(x) for x in scaling.get("mrope_section") or []])
        elif kind:
            raise ConvertError(f"unknown rope scaling type {kind!r}")
        return kv


class BertConverter(Converter):
    arch = "bert"
    replacements = [
        "encoder.layer", "blk",
        "encoder.layers", "blk",
        "embeddings.word_embeddings", "token_embd",
        "embeddings.token_type_embeddings", "token_types",
        "embeddings.LayerNorm", "token_embd_norm",
        "embeddings.position_embeddings", "position_embd",
        "attention.self.query", "attn_q",
        "attention.self.key", "attn_k",
        "attention.self.value", "attn_v",
        "attention.output.dense", "attn_output",
        "attention.output.LayerNorm", "attn_output_norm",
        "intermediate.dense", "ffn_up",
        "output.dense", "ffn_down",
        "output.LayerNorm", "layer_output_norm",
    ]
    skip = frozenset({"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"})

    def __init__(self, config: dict[str, Any], directory: Path) -> None:
        super().__init__(config, directory)
        self.pooling_type = 0
        self.normalize = False
        modules_path = directory / "modules.json"
        if not modules_path.is_file():
            return
        pooling_dir = ""
        for module in _json(modules_path):
            if module.get("type") == "sentence_transformers.models.Pooling":
                pooling_dir = module.get("path", "")
            elif module.get("type") == "sentence_transformers.models.Normalize":
                self.normalize = True
        if pooling_dir:
            pooling = _json(directory / pooling_dir / "config.json")
            if pooling.get("pooling_mode_mean_tokens"):
                self.pooling_type = 1
            elif pooling.get("pooling_mode_cls_token"):
                self.pooling_type = 2

    def kv(self, tokenizer: Tokenizer) -> dict[str, Any]:
        c = self.config
        # Phantom-space tokens, as llama.cpp's WordPiece tokenizer expects: `##x` -> `x`, `x` -> `▁x`.
        tokenizer.tokens = [t if t.startswith("[") and t.endswith("]") else t[2:] if t.startswith("##")
                            else "\u2581" + t for t in tokenizer.tokens]
        kv = self.base_kv(tokenizer)
        a = self.arch
        kv[f"{a}.attention.causal"] = ("bool", False)
        kv[f"{a}.pooling_type"] = ("uint32", self.pooling_type)
        kv[f"{a}.normalize_embeddings"] = ("bool", self.normalize)
        kv[f"{a}.block_count"] = ("uint32", int(first(c, "n_layers", "num_hidden_layers", "n_layer")))
        self.put(kv, "context_length", "uint32", int(first(c, "max_position_embeddings", "n_ctx")))
        self.put(kv, "embedding_length", "uint32", int(first(c, "hidden_size", "n_embd")))
        self.put(kv, "feed_forward_length", "uint32", int(first(c, "intermediate_size", "n_inner")))
        self.put(kv, "attention.head_count", "uint32", int(first(c, "num_attention_heads", "n_head")))
        eps = float(first(c, "layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"))
        self.put(kv, "attention.layer_norm_epsilon", "float32", eps)
        kv["tokenizer.ggml.model"] = ("string", "bert")
        kv["tokenizer.ggml.token_type_count"] = ("uint32", 2)
        kv["tokenizer.ggml.tokens"] = ("strings", tokenizer.tokens)
        return kv


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConvertError(f"{path.name}: {e}") from None


ARCHITECTURES: dict[str, type[Converter]] = {
    "LlamaForCausalLM": LlamaConverter,
    "MistralForCausalLM": LlamaConverter,
    "Qwen2ForCausalLM": Qwen2Converter,
    "BertModel": BertConverter,
}


def block_number(name: str) -> int:
    """Ollama writes tensors ordered by block (non-block tensors last), then by name."""
    match = _BLOCK.match(name)
    return int(match.group(1)) if match else 1 << 62
