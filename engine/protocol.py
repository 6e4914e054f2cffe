"""What the daemon and a runner process say to each other.

Frames on the socket are a 4-byte big-endian length followed by a pickle of one of the dataclasses
below. The channel is a private socketpair between a parent and the child it spawned, so pickle is
safe here and keeps the messages plain Python objects.

The one frame sent for nearly every generated token, a Reply holding a Token without logprobs, is not
pickled (a pickle costs each side about 6 µs): its body is b"T", the request id (8 bytes, big-endian) and
the text in UTF-8. A pickle never starts with b"T" (protocol 2 and later begin with 0x80).
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass, field
from typing import Any

FRAME_HEADER = struct.Struct(">I")
TOKEN_HEADER = struct.Struct(">cQ")
TOKEN_TAG = b"T"


class RunnerError(Exception):
    """A failure reported by (or about) a runner; `status` is the HTTP status the daemon should use."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --- load ---------------------------------------------------------------------------------------


@dataclass
class LoadSpec:
    model_path: str
    num_ctx: int  # per sequence; the llama context holds num_ctx × parallel tokens (num_ctx when kv_unified)
    parallel: int
    num_batch: int = 512
    num_gpu: int = -1  # layers to offload; -1 = all when the build can offload, else none
    main_gpu: int = 0
    use_mmap: bool | None = None  # None = llama.cpp's default
    num_thread: int = 0  # 0 = physical cores
    adapters: list[str] = field(default_factory=list)  # LoRA files
    projectors: list[str] = field(default_factory=list)  # vision projector GGUFs (the first is used)
    embedding: bool = False
    flash_attn: bool | None = None  # None = llama.cpp decides
    kv_cache_type: str = ""  # "" = f16; else a ggml type name such as "q8_0"
    draft_path: str = ""  # a draft model for speculative decoding
    draft_num_predict: int = 0  # tokens the draft proposes per step; 0 = no speculative decoding
    # The sequences share one pool of num_ctx KV cells (llama.cpp's kv_unified) instead of num_ctx each:
    # each still has a num_ctx window, and they take turns when together they need more cells than that.
    kv_unified: bool = False
    rpc_servers: list[str] = field(default_factory=list)  # llama.cpp RPC workers (host:port) that take layers
    tensor_split: list[float] = field(default_factory=list)  # layers per device: local GPUs, then the workers'


@dataclass
class RunnerInfo:
    pid: int
    n_ctx: int  # the whole llama context
    num_ctx: int  # per sequence
    parallel: int
    n_ctx_train: int
    n_vocab: int
    n_embd: int
    add_bos: bool
    has_encoder: bool
    model_size_bytes: int
    gpu_offload: bool
    n_gpu_layers: int
    pooling: str = "none"  # embedding loads: how token vectors become one vector
    kv_unified: bool = False  # the sequences share the n_ctx cells (see LoadSpec.kv_unified)


# --- requests and their events ------------------------------------------------------------------


@dataclass
class CompletionRequest:
    prompt: str
    options: dict[str, Any]  # predict options, defaulted and validated by the daemon
    grammar: str | None = None  # GBNF
    shift: bool = True
    truncate: bool = True
    logprobs: bool = False
    top_logprobs: int = 0
    images: list[bytes] = field(default_factory=list)  # image k goes where the prompt says `[img-k]`


@dataclass
class Token:
    text: str  # "" when everything is held back but logprobs exist
    logprobs: list[dict[str, Any]] | None = None


@dataclass
class Done:
    done_reason: str  # "stop" | "length"
    prompt_eval_count: int  # all prompt tokens, cached ones included
    prompt_eval_duration: int  # ns
    eval_count: int
    eval_duration: int  # ns
    cached_tokens: int = 0  # prompt tokens reused from the slot's KV cache, not evaluated again
    draft_count: int = 0  # speculative decoding: tokens the draft model proposed
    draft_accepted: int = 0  # of them, the ones the model agreed with (they cost no decode of their own)


@dataclass
class EmbedResult:
    embeddings: list[list[float]]  # raw, not normalised
    prompt_eval_count: int


@dataclass
class RerankResult:
    scores: list[float]  # one per document, in the documents' order: the model's raw relevance output
    prompt_eval_count: int


# --- wire messages ------------------------------------------------------------------------------


@dataclass
class Complete:
    request_id: int
    request: CompletionRequest


@dataclass
class Cancel:
    request_id: int


@dataclass
class Tokenize:
    request_id: int
    text: str
    add_special: bool
    parse_special: bool
    # A text beyond what the caller can use is not tokenized whole (engine/runner/window.py):
    head: int = 0  # > 0: a text beyond this many tokens gives its first `head` + 1
    tail: int = 0  # > 0: a text beyond this many tokens gives its last `tail`


@dataclass
class Detokenize:
    request_id: int
    tokens: list[int]


@dataclass
class Embed:
    request_id: int
    inputs: list[str]  # each must fit the runner's window: the daemon truncates, the runner refuses


@dataclass
class Rerank:
    """Score each document against the query, with a reranker (a GGUF whose pooling type is rank)."""

    request_id: int
    query: str
    documents: list[str]
    truncate: bool  # cut a document that does not fit the window, instead of refusing the request


@dataclass
class Shutdown:
    pass


@dataclass
class LoadProgress:
    fraction: float


@dataclass
class Loaded:
    info: RunnerInfo


@dataclass
class LoadFailed:
    message: str


@dataclass
class Failure:
    message: str
    status: int = 500


@dataclass
class Reply:
    """One event for one request: Token, or a final Done | EmbedResult | RerankResult | Failure | list[int] |
    str."""

    request_id: int
    payload: Any


def invalid_token_message(token: int, n_vocab: int) -> str:
    return f"invalid token id {token}: the vocabulary has ids 0 to {n_vocab - 1}"


def encode_frame(message: object) -> bytes:
    if type(message) is Reply and type(message.payload) is Token and message.payload.logprobs is None:
        text = message.payload.text.encode("utf-8", "surrogatepass")
        return (FRAME_HEADER.pack(TOKEN_HEADER.size + len(text)) + TOKEN_HEADER.pack(TOKEN_TAG, message.request_id)
                + text)
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME_HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> object:
    if body[:1] == TOKEN_TAG:
        _, request_id = TOKEN_HEADER.unpack_from(body)
        return Reply(request_id, Token(body[TOKEN_HEADER.size:].decode("utf-8", "surrogatepass")))
    return pickle.loads(body)
