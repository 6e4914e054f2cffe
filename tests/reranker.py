"""A tiny BERT cross-encoder written as a GGUF (the `gguf` package), and its forward pass in numpy.

Random weights over a vocabulary of whole words: the scores mean nothing, but they are far apart, so the
order and the values llama.cpp computes can be checked against the reference. The reference follows
llama.cpp's BERT graph: token type 0 for every token, absolute positions, post-norm layers, tanh-approximated
GELU, rank pooling on the first token ([CLS]) through the classifier head (dense + tanh, then one output).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import gguf
import httpx
import numpy as np

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP, MASK = range(len(SPECIALS))
WORDS = ("what is the capital of france paris berlin germany cats sleep a lot rivers flow to sea "
         "bread needs flour and water").split()
WORD_PIECE_START = "\u2581"  # llama.cpp's WordPiece vocabulary marks the start of a word this way
EMBED, HEADS, FFN, LAYERS, TRAIN_CTX, EPS = 32, 4, 64, 2, 128, 1e-5


# A `rerank` chat template, as Qwen3 rerankers carry: llama-server fills it in instead of laying the pair out.
RERANK_TEMPLATE = "[CLS] {query} [SEP] {document} [SEP]"


@dataclass
class TinyReranker:
    path: Path
    weights: dict[str, np.ndarray]
    vocabulary: list[str]
    templated: bool = False

    def tokens(self, text: str) -> list[int]:
        index = {token: i for i, token in enumerate(self.vocabulary)}
        return [index.get(WORD_PIECE_START + word, UNK) for word in text.lower().split()]

    def pair(self, query: str, document: str) -> list[int]:
        """`[CLS] query [SEP] document`: the GGUF asks for BOS, not EOS, and BERT vocabularies add SEP; with the
        template, what it spells."""
        if self.templated:
            return [CLS, *self.tokens(query), SEP, *self.tokens(document), SEP]
        return [CLS, *self.tokens(query), SEP, *self.tokens(document)]

    def score(self, query: str, document: str) -> float:
        w = self.weights
        ids = self.pair(query, document)
        x = w["token_embd.weight"][ids] + w["token_types.weight"][0] + w["position_embd.weight"][: len(ids)]
        x = _layer_norm(x, w["token_embd_norm.weight"], w["token_embd_norm.bias"])
        head = EMBED // HEADS
        for i in range(LAYERS):
            p = f"blk.{i}."

            def project(name: str, value: np.ndarray, prefix: str = p) -> np.ndarray:
                return value @ w[f"{prefix}{name}.weight"].T + w[f"{prefix}{name}.bias"]

            q, k, v = (project(n, x).reshape(len(ids), HEADS, head).transpose(1, 0, 2)
                       for n in ("attn_q", "attn_k", "attn_v"))
            attention = _softmax(q @ k.transpose(0, 2, 1) / np.sqrt(head)) @ v
            merged = attention.transpose(1, 0, 2).reshape(len(ids), EMBED)
            x = _layer_norm(project("attn_output", merged) + x, w[p + "attn_output_norm.weight"],
                            w[p + "attn_output_norm.bias"])
            hidden = project("ffn_down", _gelu(project("ffn_up", x)))
            x = _layer_norm(hidden + x, w[p + "layer_output_norm.weight"], w[p + "layer_output_norm.bias"])
        pooled = np.tanh(w["cls.weight"] @ x[0] + w["cls.bias"])
        return float((w["cls.output.weight"] @ pooled + w["cls.output.bias"])[0])


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + EPS) * weight + bias


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def write_reranker_gguf(path: Path, seed: int = 6, templated: bool = False) -> TinyReranker:
    rng = np.random.default_rng(seed)
    vocabulary = SPECIALS + [WORD_PIECE_START + word for word in dict.fromkeys(WORDS)]

    def r(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    # numpy shapes are (out, in): ggml's ne reversed
    weights: dict[str, np.ndarray] = {
        "token_embd.weight": r(len(vocabulary), EMBED, scale=1.0),
        "token_types.weight": r(2, EMBED),
        "position_embd.weight": r(TRAIN_CTX, EMBED),
        "token_embd_norm.weight": 1 + r(EMBED, scale=0.1), "token_embd_norm.bias": r(EMBED, scale=0.1),
        "cls.weight": r(EMBED, EMBED), "cls.bias": r(EMBED, scale=0.1),
        "cls.output.weight": r(1, EMBED, scale=3.0), "cls.output.bias": r(1, scale=0.1),
    }
    for i in range(LAYERS):
        p = f"blk.{i}."
        for name, shape in (("attn_q", (EMBED, EMBED)), ("attn_k", (EMBED, EMBED)), ("attn_v", (EMBED, EMBED)),
                            ("attn_output", (EMBED, EMBED)), ("ffn_up", (FFN, EMBED)), ("ffn_down", (EMBED, FFN))):
            weights[f"{p}{name}.weight"] = r(*shape)
            weights[f"{p}{name}.bias"] = r(shape[0], scale=0.1)
        for norm in ("attn_output_norm", "layer_output_norm"):
            weights[f"{p}{norm}.weight"] = 1 + r(EMBED, scale=0.1)
            weights[f"{p}{norm}.bias"] = r(EMBED, scale=0.1)

    writer = gguf.GGUFWriter(path, "bert")
    writer.add_name("tiny-reranker")
    writer.add_context_length(TRAIN_CTX)
    writer.add_embedding_length(EMBED)
    writer.add_feed_forward_length(FFN)
    writer.add_block_count(LAYERS)
    writer.add_head_count(HEADS)
    writer.add_layer_norm_eps(EPS)
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.RANK)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("bert")
    writer.add_token_list(vocabulary)
    writer.add_token_types([gguf.TokenType.UNKNOWN if i == UNK else gguf.TokenType.CONTROL
                            if i < len(SPECIALS) else gguf.TokenType.NORMAL for i in range(len(vocabulary))])
    writer.add_token_type_count(2)
    writer.add_bos_token_id(CLS)
    writer.add_sep_token_id(SEP)
    writer.add_unk_token_id(UNK)
    writer.add_pad_token_id(PAD)
    writer.add_mask_token_id(MASK)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if templated:
        writer.add_chat_template([{"name": "rerank", "template": RERANK_TEMPLATE}])
    for name, value in weights.items():
        writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return TinyReranker(path, {k: v.astype(np.float64) for k, v in weights.items()}, vocabulary, templated)


def create_reranker(url: str, name: str, path: Path) -> None:
    """Upload the GGUF and create `name` from it, as `ollama create` does."""
    data = path.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert httpx.post(f"{url}/api/blobs/{digest}", content=data).status_code in (200, 201)
    answer = httpx.post(f"{url}/api/create", json={"model": name, "files": {"rr.gguf": digest}, "stream": False})
    assert answer.status_code == 200, answer.text
