"""A thin typed layer over llama_cpp's low-level (ctypes) API: just what the runner needs.

Everything here maps one-to-one onto llama.cpp calls; policy (slots, sampling, truncation) lives in the
modules that use it.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys
from collections.abc import Callable, Sequence

import llama_cpp as lc
import numpy as np

from engine.ggml import gpu_devices

log = logging.getLogger(__name__)
# Ollama accepts these for OLLAMA_KV_CACHE_TYPE; the daemon resolves anything else to f16 before a load
# (engine.memory.effective_kv_cache_type), so that its memory estimate matches.
KV_CACHE_TYPES = {"f16": lc.GGML_TYPE_F16, "q8_0": lc.GGML_TYPE_Q8_0, "q4_0": lc.GGML_TYPE_Q4_0}
POOLING_NAMES = {
    lc.LLAMA_POOLING_TYPE_NONE: "none", lc.LLAMA_POOLING_TYPE_MEAN: "mean", lc.LLAMA_POOLING_TYPE_CLS: "cls",
    lc.LLAMA_POOLING_TYPE_LAST: "last", lc.LLAMA_POOLING_TYPE_RANK: "rank",
}


class LlamaError(RuntimeError):
    pass


class KVCacheFull(LlamaError):
    """llama_decode found no room for the batch in the KV cache; the cache is as it was before the call."""


class _LogFilter:
    """llama.cpp's log → stderr, warnings and errors only: the daemon scans the runner's stderr for errors."""

    WARN, ERROR, CONT = 3, 4, 5  # ggml_log_level

    def __init__(self) -> None:
        self.keeping = False  # whether the current (possibly continued) message is shown
        self.errors: list[str] = []  # error lines since the last take_errors(), to explain a failure

    def __call__(self, level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        if level != self.CONT:
            self.keeping = level >= self.WARN
        line = text.decode("utf-8", errors="replace")
        if self.keeping:
            sys.stderr.write(line)
            sys.stderr.flush()
        if level == self.ERROR:
            # "gguf_init_from_file: failed to open ..." → "failed to open ..."
            self.errors.append(line.strip().split(": ", 1)[-1])

    def take_errors(self) -> list[str]:
        errors, self.errors = self.errors, []
        return errors


_log_filter = _LogFilter()
_LOG_CALLBACK = lc.llama_log_callback(_log_filter)  # module-level: must outlive every llama call


def init_backend() -> None:
    lc.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p())
    lc.llama_backend_init()


def supports_gpu_offload() -> bool:
    """A local GPU backend; remote (RPC) devices are given to a load explicitly."""
    return bool(gpu_devices())


class LlamaModel:
    def __init__(self, path: str, *, n_gpu_layers: int, main_gpu: int, use_mmap: bool | None,
                 on_progress: Callable[[float], None] | None = None, devices: Sequence[int] = (),
                 tensor_split: Sequence[float] = ()) -> None:
        params = lc.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        params.main_gpu = main_gpu
        if devices:  # llama.cpp's default is every local device; remote ones must be named
            self._devices = (ctypes.c_void_p * (len(devices) + 1))(*devices, None)
            params.devices = ctypes.cast(self._devices, ctypes.c_void_p)
        if tensor_split:
            self._split = (ctypes.c_float * lc.LLAMA_MAX_DEVICES)(*tensor_split)
            params.tensor_split = self._split
        if use_mmap is not None:
            params.load_mode = lc.LLAMA_LOAD_MODE_MMAP if use_mmap else lc.LLAMA_LOAD_MODE_NONE
        if on_progress is not None:
            def progress(fraction: float, _user_data: ctypes.c_void_p) -> bool:
                on_progress(fraction)
                return True
            self._progress = lc.llama_progress_callback(progress)  # kept alive for the load
            params.progress_callback = self._progress
        _log_filter.take_errors()
        model = lc.llama_model_load_from_file(path.encode(), params)
        if not model:
            errors = _log_filter.take_errors()
            reason = f" ({errors[0]})" if errors else ""  # the first error is the root cause
            raise LlamaError(f"unable to load model: {path}{reason}")
        self.model = model
        self.vocab = lc.llama_model_get_vocab(model)
        self.n_vocab: int = lc.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train: int = lc.llama_model_n_ctx_train(model)
        self.n_embd: int = lc.llama_model_n_embd(model)
        self.n_embd_out: int = lc.llama_model_n_embd_out(model)
        self.n_cls_out: int = lc.llama_model_n_cls_out(model)  # a classifier head's outputs (rank pooling)
        self.n_layer: int = lc.llama_model_n_layer(model)
        self.add_bos: bool = bool(lc.llama_vocab_get_add_bos(self.vocab))
        self.add_eos: bool = bool(lc.llama_vocab_get_add_eos(self.vocab))
        self.add_sep: bool = bool(lc.llama_vocab_get_add_sep(self.vocab))
        self.bos: int = lc.llama_vocab_bos(self.vocab)
        self.eos: int = lc.llama_vocab_eos(self.vocab)
        self.sep: int = lc.llama_vocab_sep(self.vocab)
        self.has_encoder: bool = bool(lc.llama_model_has_encoder(model))
        self.n_swa: int = lc.llama_model_n_swa(model)  # sliding-window attention span; 0 = none
        self.size_bytes: int = lc.llama_model_size(model)
        self._pieces: dict[int, bytes] = {}
        self._adapters: list[ctypes.c_void_p] = []

    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(256)
        n = lc.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace") if n >= 0 else None

    def named_template(self, name: str) -> str | None:
        """A GGUF chat template by name (`tokenizer.chat_template.<name>`), e.g. a reranker's `rerank`."""
        template = lc.llama_model_chat_template(self.model, name.encode())
        return template.decode("utf-8", errors="replace") if template else None

    def pooling_type(self) -> int | None:
        """The GGUF's `<arch>.pooling_type`, or None for a model without one (a generative model)."""
        arch = self.meta("general.architecture")
        value = self.meta(f"{arch}.pooling_type") if arch else None
        return int(value) if value is not None else None

    def load_adapter(self, path: str) -> ctypes.c_void_p:
        adapter = lc.llama_adapter_lora_init(self.model, path.encode())
        if not adapter:
            raise LlamaError(f"unable to load LoRA adapter: {path}")
        self._adapters.append(adapter)
        return adapter

    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        while True:
            out = (lc.llama_token * capacity)()
            n = lc.llama_tokenize(self.vocab, data, len(data), out, capacity, add_special, parse_special)
            if n >= 0:
                return out[:n]
            capacity = -n

    def piece(self, token: int) -> bytes:
        """The token's bytes, special tokens rendered (Ollama parses e.g. <think> from them)."""
        cached = self._pieces.get(token)
        if cached is None:
            buf = ctypes.create_string_buffer(64)
            n = lc.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = lc.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
            cached = self._pieces[token] = buf.raw[:n]
        return cached

    @functools.cached_property
    def longest_piece(self) -> int:
        """Bytes of the longest token's text: no token covers more characters of a text than this."""
        buf = ctypes.create_string_buffer(64)
        longest = 1
        for token in range(self.n_vocab):
            n = lc.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
            longest = max(longest, abs(n))  # negative: the size the piece needs
        return longest

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def is_eog(self, token: int) -> bool:
        return bool(lc.llama_vocab_is_eog(self.vocab, token))

    def close(self) -> None:
        for adapter in self._adapters:
            lc.llama_adapter_lora_free(adapter)
        self._adapters.clear()
        if self.model:
            lc.llama_model_free(self.model)
            self.model = None


class Batch:
    """A reusable llama_batch of up to `capacity` tokens, one sequence id per token."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.raw = lc.llama_batch_init(capacity, 0, 1)
        self.n_tokens = 0

    def clear(self) -> None:
        self.n_tokens = 0

    def add(self, token: int, pos: int, seq_id: int, output: bool) -> int:
        """Append a token; returns its index (the logits row when `output`)."""
        i = self.n_tokens
        raw = self.raw
        raw.token[i] = token
        raw.pos[i] = pos
        raw.n_seq_id[i] = 1
        raw.seq_id[i][0] = seq_id
        raw.logits[i] = output
        self.n_tokens = i + 1
        return i

    def close(self) -> None:
        if self.raw is not None:
            lc.llama_batch_free(self.raw)
            self.raw = None


class LlamaContext:
    def __init__(self, model: LlamaModel, *, n_ctx: int, n_batch: int, n_ubatch: int, n_seq_max: int,
                 n_threads: int, flash_attn: bool | None, kv_cache_type: str, embeddings: bool,
                 pooling_type: int = lc.LLAMA_POOLING_TYPE_UNSPECIFIED, kv_unified: bool = False) -> None:
        params = lc.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_ubatch
        params.n_seq_max = n_seq_max
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.embeddings = embeddings
        params.pooling_type = pooling_type
        params.kv_unified = kv_unified
        # Sliding-window layers keep only their window (plus a batch), as llama-server does, not the whole
        # context: Gemma 3 needs several times less KV memory. Positions that leave the window are gone from
        # those layers, so the slots check `seq_pos_min` before reusing a prefix (engine.runner.slots).
        params.swa_full = False
        params.flash_attn_type = {None: lc.LLAMA_FLASH_ATTN_TYPE_AUTO, True: lc.LLAMA_FLASH_ATTN_TYPE_ENABLED,
                                  False: lc.LLAMA_FLASH_ATTN_TYPE_DISABLED}[flash_attn]
        kv_type = KV_CACHE_TYPES.get((kv_cache_type or "f16").lower())
        if kv_type is None:
            log.warning("unknown KV cache type %r, using f16", kv_cache_type)
            kv_type = lc.GGML_TYPE_F16
        params.type_k = params.type_v = kv_type
        ctx = lc.llama_init_from_model(model.model, params)
        if not ctx:
            raise LlamaError("failed to create the llama context")
        self.ctx = ctx
        self.model = model
        self.memory = lc.llama_get_memory(ctx)
        self.n_ctx: int = lc.llama_n_ctx(ctx)
        self.n_ctx_seq: int = lc.llama_n_ctx_seq(ctx)
        # One KV stream for every sequence (a unified cache, or a single sequence): sequences can share cells.
        self.shares_cells: bool = kv_unified or n_seq_max == 1
        self.n_batch: int = lc.llama_n_batch(ctx)
        self.pooling_type: int = lc.llama_pooling_type(ctx)
        self._logits_row = ctypes.c_float * model.n_vocab
        self.can_shift: bool = bool(self.memory) and bool(lc.llama_memory_can_shift(self.memory))

    def set_adapters(self, adapters: list[ctypes.c_void_p]) -> None:
        array = (lc.llama_adapter_lora_p_ctypes * len(adapters))(*adapters)
        scales = (ctypes.c_float * len(adapters))(*([1.0] * len(adapters)))
        if lc.llama_set_adapters_lora(self.ctx, array, len(adapters), scales):
            raise LlamaError("failed to apply the LoRA adapters")

    def decode(self, batch: Batch) -> None:
        batch.raw.n_tokens = batch.n_tokens
        status = lc.llama_decode(self.ctx, batch.raw)
        if status == 1:
            raise KVCacheFull("llama_decode failed: no KV cache space for the batch")
        if status != 0:
            raise LlamaError(f"llama_decode failed: status {status}")

    def logits(self, index: int) -> np.ndarray:
        """The logits row of batch token `index` (a view, valid until the next decode)."""
        row = lc.llama_get_logits_ith(self.ctx, index)
        return np.frombuffer(self._logits_row.from_address(ctypes.addressof(row.contents)), dtype=np.float32)

    def set_embeddings(self, enabled: bool) -> None:
        lc.llama_set_embeddings(self.ctx, enabled)

    def sequence_embedding(self, seq_id: int) -> list[float]:
        """The pooled vector of a sequence (a context with a pooling type); with rank pooling, the classifier's
        outputs."""
        pointer = lc.llama_get_embeddings_seq(self.ctx, seq_id)
        if not pointer:
            raise LlamaError("no pooled embedding for the sequence")
        size = self.model.n_cls_out if self.pooling_type == lc.LLAMA_POOLING_TYPE_RANK else self.model.n_embd_out
        return pointer[:size]

    def token_embeddings(self, n_outputs: int) -> np.ndarray:
        """The last decode's per-token vectors, one row per output (a view, valid until the next decode)."""
        pointer = lc.llama_get_embeddings(self.ctx)
        if not pointer:
            raise LlamaError("no token embeddings: embeddings are off")
        return np.ctypeslib.as_array(pointer, shape=(n_outputs, self.model.n_embd_out))

    def seq_rm(self, seq_id: int, p0: int, p1: int) -> bool:
        """Drop positions [p0, p1) of a sequence (p1 < 0: to the end); False if it cannot be done."""
        return bool(lc.llama_memory_seq_rm(self.memory, seq_id, p0, p1))

    def seq_pos_min(self, seq_id: int) -> int:
        """The smallest position a sequence still has in every layer's cache; -1 when it has none."""
        return lc.llama_memory_seq_pos_min(self.memory, seq_id) if self.memory else -1

    def seq_add(self, seq_id: int, p0: int, p1: int, delta: int) -> None:
        lc.llama_memory_seq_add(self.memory, seq_id, p0, p1, delta)

    def copy_prefix(self, source: int, target: int, length: int) -> bool:
        """Make sequence `target` hold the first `length` positions of `source`, and nothing else.

        In one KV stream the target shares the source's cells (no data moves). With a stream per sequence
        llama.cpp copies only whole streams, at the start of the next decode: the target gets all of the
        source, then loses what follows the prefix. False when the cache cannot be cut there (the target is
        then empty)."""
        self.seq_rm(target, -1, -1)
        if self.shares_cells:
            lc.llama_memory_seq_cp(self.memory, source, target, 0, length)
            return True
        lc.llama_memory_seq_cp(self.memory, source, target, -1, -1)
        if self.seq_rm(target, length, -1):
            return True
        self.seq_rm(target, -1, -1)
        return False

    def clear_memory(self) -> None:
        if self.memory:
            lc.llama_memory_clear(self.memory, True)

    def close(self) -> None:
        if self.ctx:
            lc.llama_free(self.ctx)
            self.ctx = None
