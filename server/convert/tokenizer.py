"""Hugging Face `tokenizer.json` (+ `tokenizer_config.json`, `generation_config.json`) to GGUF
tokenizer keys, as Ollama's convert/tokenizer.go derives them."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.convert.errors import ConvertError

TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = range(1, 7)
SPECIAL_TOKEN_TYPES = ("bos", "eos", "unk", "sep", "pad", "cls", "mask")
_SPECIAL_KEYS = {"bos": "bos", "eos": "eos", "cls": "cls", "mask": "mask", "unk": "unknown",
                 "sep": "seperator",  # sic: the key llama.cpp and Ollama use
                 "pad": "padding"}

# sha256 of the concatenated Split regexes of a pre-tokenizer -> llama.cpp's pre-tokenizer name.
_PRE_TOKENIZERS = {
    "d98f9631be1e9607a9848c26c1f9eac1aa9fc21ac6ba82a2fc0741af9780a48f": "llama-bpe",
    "03df5c5863ad70781dcfdef491ead25140f895fe8010964be0daefe27be32b02": "deepseek-llm",
    "21cde974d587f0d54dc8d56b183cc1e6239600172035c68fbd6d4b9f8da0576e": "deepseek-coder",
    "1ff7f41064896984db5d1bb6ff64fa4bc29007d08c1b439e505b7392777a319e": "qwen2",
    "00431aed57e696b747435f734d1e3b9b1bfd931a121fb5cac7129e97c181e9ba": "qwen35",
    "b92c0824a58e1d8dc3221cf3e12c433c3a86f57e46d57229993489f0798e7702": "laguna",
}


@dataclass
class SpecialToken:
    kind: str  # bos, eos, …
    id: int
    add: bool | None = None  # `add_<kind>_token` when tokenizer_config.json sets it
    ids: list[int] = field(default_factory=list)  # from generation_config.json

    @property
    def key(self) -> str:
        return _SPECIAL_KEYS[self.kind]


@dataclass
class Tokenizer:
    model: str  # tokenizer.ggml.model
    tokens: list[str]
    scores: list[float]
    types: list[int]
    merges: list[str] = field(default_factory=list)
    pre: str = "default"
    template: str = ""
    special: list[SpecialToken] = field(default_factory=list)
    add_space_prefix: bool | None = None  # SentencePiece models only

    def pad_to(self, size: int) -> None:
        """Pad a vocabulary smaller than the model's embedding with `[PADn]` tokens."""
        for i in range(size - len(self.tokens)):
            self.tokens.append(f"[PAD{i}]")
            self.scores.append(-1.0)
            self.types.append(TOKEN_USER_DEFINED)

    def kv(self) -> dict[str, Any]:
        """The GGUF keys, values as (gguf type name, value) pairs."""
        kv: dict[str, Any] = {
            "tokenizer.ggml.pre": ("string", self.pre),
            "tokenizer.ggml.model": ("string", self.model),
            "tokenizer.ggml.tokens": ("strings", self.tokens),
            "tokenizer.ggml.scores": ("float32s", self.scores),
            "tokenizer.ggml.token_type": ("int32s", self.types),
        }
        if self.merges:
            kv["tokenizer.ggml.merges"] = ("strings", self.merges)
        if self.add_space_prefix is not None:
            kv["tokenizer.ggml.add_space_prefix"] = ("bool", self.add_space_prefix)
        if self.template:
            kv["tokenizer.chat_template"] = ("string", self.template)
        for token in self.special:
            if token.add is not None:
                kv[f"tokenizer.ggml.add_{token.key}_token"] = ("bool", token.add)
            kv[f"tokenizer.ggml.{token.key}_token_id"] = ("uint32", token.id)
            if token.ids:
                kv[f"tokenizer.ggml.{token.key}_token_ids"] = ("int32s", token.ids)
        return kv


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConvertError(f"{path.name}: {e}") from None


def _vocabulary(data: dict[str, Any]) -> tuple[list[str], list[float], list[int]]:
    """Go `parseVocabularyFromTokenizer`: the model's vocab overlaid with added tokens, ordered by id."""
    model = data.get("model") or {}
    vocab = model.get("vocab")
    if not isinstance(vocab, dict):
        raise ConvertError(f"unsupported tokenizer model type {model.get('type')!r}")
    tokens: dict[int, tuple[str, int]] = {int(i): (text, TOKEN_NORMAL) for text, i in vocab.items()}
    for added in data.get("added_tokens") or []:
        kind = TOKEN_CONTROL if added.get("special") else TOKEN_USER_DEFINED
        tokens[int(added["id"])] = (added["content"], kind)
    ordered = sorted(tokens)
    return ([tokens[i][0] for i in ordered], [float(i) for i in ordered], [tokens[i][1] for i in ordered])


def _merges(model: dict[str, Any]) -> list[str]:
    merges = model.get("merges") or []
    if all(isinstance(m, str) for m in merges):
        return list(merges)
    if all(isinstance(m, list) and all(isinstance(p, str) for p in m) for m in merges):
        return [" ".join(m) for m in merges]
    raise ConvertError("could not parse tokenizer merges. expected []string or [][]string")


def _pre_tokenizer(data: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    for pre in (data.get("pre_tokenizer") or {}).get("pretokenizers") or []:
        regex = ((pre or {}).get("pattern") or {}).get("Regex")
        if pre.get("type") == "Split" and regex:
            digest.update(regex.encode())
    return _PRE_TOKENIZERS.get(digest.hexdigest(), "default")


def _chat_template(config: dict[str, Any]) -> str:
    template = config.get("chat_template")
    if template is None:
        return ""
    if isinstance(template, str):
        return template
    if isinstance(template, list):
        for entry in template:
            if isinstance(entry, dict) and entry.get("name") == "default":
                return str(entry.get("template", ""))
        return ""
    raise ConvertError("invalid chat_template")


_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def _is_sentencepiece(data: dict[str, Any]) -> bool:
    """A BPE with byte fallback is a SentencePiece model converted to tokenizer.json (Llama 2, Mistral)."""
    model = data.get("model") or {}
    return model.get("type") == "BPE" and bool(model.get("byte_fallback"))


def _adds_space_prefix(data: dict[str, Any]) -> bool:
    """Whether the text gets a leading `▁` (a Prepend normalizer or a prepending Metaspace)."""
    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            if node.get("type") == "Prepend" and node.get("prepend") == "\u2581":
                return True
            if node.get("type") == "Metaspace" and (
                    node.get("prepend_scheme") in ("first", "always") or node.get("add_prefix_space")):
                return True
            return any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False
    return walk(data.get("normalizer")) or walk(data.get("pre_tokenizer"))


def _sentencepiece(data: dict[str, Any], tokens: list[str], types: list[int]) -> tuple[list[float], list[int]]:
    """Scores and token types for llama.cpp's SentencePiece tokenizer, which merges the best-scoring pair
    first: a piece scores minus the rank of the merge that makes it (pieces no merge makes score below all)."""
    model = data.get("model") or {}
    rank = {}
    for i, merge in enumerate(_merges(model)):
        rank.setdefault(merge.replace(" ", "", 1), i)
    unknown = model.get("unk_token")
    scores, kinds = [], []
    for i, (token, kind) in enumerate(zip(tokens, types, strict=True)):
        if kind != TOKEN_NORMAL:
            scores.append(0.0)
            kinds.append(kind)
            continue
        scores.append(-float(rank[token]) if token in rank else -float(len(rank) + i))
        kinds.append(TOKEN_BYTE if _BYTE_TOKEN.fullmatch(token) else TOKEN_UNKNOWN if token == unknown
                     else TOKEN_NORMAL)
    return scores, kinds


def parse_tokenizer(directory: Path, special_types: tuple[str, ...] = SPECIAL_TOKEN_TYPES) -> Tokenizer:
    path = directory / "tokenizer.json"
    if not path.is_file():
        if (directory / "tokenizer.model").is_file():
            raise ConvertError("tokenizer.model (SentencePiece) is not supported; a tokenizer.json is needed")
        raise ConvertError("unknown tokenizer format")
    data = _read_json(path)
    tokens, scores, types = _vocabulary(data)
    if _is_sentencepiece(data):
        scores, types = _sentencepiece(data, tokens, types)
        tokenizer = Tokenizer("llama", tokens, scores, types, add_space_prefix=_adds_space_prefix(data))
    else:
        tokenizer = Tokenizer("gpt2", tokens, scores, types, merges=_merges(data.get("model") or {}),
                              pre=_pre_tokenizer(data))
    added = {t["content"]: int(t["id"]) for t in data.get("added_tokens") or []}

    config_path = directory / "tokenizer_config.json"
    if config_path.is_file():
        config = _read_json(config_path)
        tokenizer.template = _chat_template(config)
        for kind in special_types:
            add = config.get(f"add_{kind}_token")
            content = config.get(f"{kind}_token")
            if isinstance(content, dict):
                content = content.get("content")
            if isinstance(content, str) and content in added:
                tokenizer.special.append(
                    SpecialToken(kind, added[content], add if isinstance(add, bool) else None))
    if not tokenizer.template and (directory / "chat_template.jinja").is_file():
        tokenizer.template = (directory / "chat_template.jinja").read_text(encoding="utf-8")

    generation_path = directory / "generation_config.json"
    if generation_path.is_file():
        generation = _read_json(generation_path)
        for token in tokenizer.special:
            ids = generation.get(f"{token.kind}_token_id")
            if isinstance(ids, list) and all(isinstance(i, int) for i in ids):
                token.ids = list(ids)
    return tokenizer
