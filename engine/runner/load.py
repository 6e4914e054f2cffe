"""Turn a LoadSpec into a llama model + context sized the way Ollama sizes them (runtime.md §6)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import llama_cpp as lc

from engine.ggml import gpu_devices
from engine.protocol import LoadSpec, RunnerInfo
from engine.rpc import add_servers
from engine.runner.draft import Drafter
from engine.runner.llama import POOLING_NAMES, LlamaContext, LlamaModel, supports_gpu_offload
from engine.runner.media import Projector

# An embedding request's inputs share one decode, one sequence id each, up to this many at a time.
EMBED_MAX_SEQUENCES = 16


def embed_sequences(n_ctx: int) -> int:
    """Inputs embedded together by one decode: at most 16, and never more than the window's tokens
    (llama.cpp reserves one output per sequence)."""
    return min(EMBED_MAX_SEQUENCES, n_ctx)


def embed_batch(n_ctx: int, sequences: int) -> int:
    """Tokens per embedding decode: the window, rounded up to a multiple of the sequences.

    llama.cpp reserves its worst-case graph for a micro-batch split evenly across the sequences, rounding
    the token count up to a multiple of them, but with one output per token of the unrounded count; the
    pooling's matrix product then gets mismatched shapes and aborts (GGML_ASSERT ggml_can_mul_mat) for any
    window that is not such a multiple (17, 24, 100 with 16 sequences). A multiple reserves consistently."""
    return -(-n_ctx // sequences) * sequences


@dataclass
class LoadedModel:
    model: LlamaModel
    ctx: LlamaContext
    info: RunnerInfo
    num_batch: int  # prompt tokens one sequence may add to a step
    projector: Projector | None = None  # images, for a model loaded with a projector
    drafter: Drafter | None = None  # speculative decoding, for a model loaded with a draft model

    def close(self) -> None:
        if self.drafter is not None:
            self.drafter.close()
        if self.projector is not None:
            self.projector.close()
        self.ctx.close()
        self.model.close()


def physical_cores() -> int:
    """Cores, not hyper-threads: llama.cpp decodes slower when threads share a core."""
    cores = set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            physical = ""
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "physical id":
                    physical = value.strip()
                elif key.strip() == "core id":
                    cores.add((physical, value.strip()))
    except OSError:
        pass
    return len(cores) or os.cpu_count() or 1


def load_model(spec: LoadSpec, on_progress: Callable[[float], None] | None = None) -> LoadedModel:
    offload = supports_gpu_offload() or bool(spec.rpc_servers)
    n_gpu_layers = (-1 if spec.num_gpu < 0 else spec.num_gpu) if offload else 0
    devices = gpu_devices() + add_servers(spec.rpc_servers) if spec.rpc_servers else []
    model = LlamaModel(spec.model_path, n_gpu_layers=n_gpu_layers, main_gpu=spec.main_gpu,
                       use_mmap=spec.use_mmap, on_progress=on_progress, devices=devices,
                       tensor_split=spec.tensor_split)
    try:
        parallel = max(spec.parallel, 1)
        num_ctx = max(spec.num_ctx, 4)
        n_ctx = num_ctx if spec.kv_unified else num_ctx * parallel
        # More threads than CPUs only slow llama.cpp down (and a huge num_thread would start them all).
        threads = min(spec.num_thread, os.cpu_count() or 1) if spec.num_thread > 0 else physical_cores()
        if spec.embedding:
            # Whole inputs go in one micro-batch (non-causal models need that) and share one KV buffer.
            pooling = model.pooling_type()
            sequences = embed_sequences(n_ctx)
            num_batch = embed_batch(n_ctx, sequences)
            # The context is as large as the batch: a causal model's batch is capped at the context asked for.
            # llama.cpp pads the context to 256 tokens anyway, so this costs no memory.
            ctx = LlamaContext(model, n_ctx=num_batch, n_batch=num_batch, n_ubatch=num_batch,
                               n_seq_max=sequences, n_threads=threads, flash_attn=spec.flash_attn,
                               kv_cache_type=spec.kv_cache_type, embeddings=True, kv_unified=True,
                               pooling_type=lc.LLAMA_POOLING_TYPE_MEAN if pooling is None else pooling)
        else:
            num_batch = max(min(spec.num_batch, num_ctx), 1)
            ctx = LlamaContext(model, n_ctx=n_ctx, n_batch=num_batch * parallel, n_ubatch=num_batch,
                               n_seq_max=parallel, n_threads=threads, flash_attn=spec.flash_attn,
                               kv_cache_type=spec.kv_cache_type, embeddings=False, kv_unified=spec.kv_unified)
        if spec.adapters:
            ctx.set_adapters([model.load_adapter(path) for path in spec.adapters])
        projector = drafter = None
        try:
            if spec.projectors and not spec.embedding:
                projector = Projector(spec.projectors[0], model, threads=threads, use_gpu=offload)
            if spec.draft_path and spec.draft_num_predict > 0 and not spec.embedding:
                drafter = _load_drafter(spec, model, n_ctx=n_ctx, parallel=parallel, num_batch=num_batch,
                                        threads=threads, gpu=supports_gpu_offload() and n_gpu_layers != 0)
        except BaseException:
            if projector is not None:
                projector.close()
            ctx.close()
            raise
    except BaseException:
        model.close()
        raise
    layers = model.n_layer + 1  # the output layer counts, as in Ollama's estimates
    num_ctx = min(num_ctx, ctx.n_ctx_seq)  # the window each sequence really has
    info = RunnerInfo(
        pid=os.getpid(), n_ctx=ctx.n_ctx, num_ctx=num_ctx, parallel=parallel, n_ctx_train=model.n_ctx_train,
        n_vocab=model.n_vocab, n_embd=model.n_embd, add_bos=model.add_bos, has_encoder=model.has_encoder,
        model_size_bytes=model.size_bytes, gpu_offload=offload,
        n_gpu_layers=(layers if n_gpu_layers < 0 else min(n_gpu_layers, layers)) if offload else 0,
        pooling=POOLING_NAMES.get(ctx.pooling_type, "none") if spec.embedding else "none",
        kv_unified=spec.kv_unified and not spec.embedding)
    return LoadedModel(model=model, ctx=ctx, info=info, num_batch=num_batch, projector=projector, drafter=drafter)


def _load_drafter(spec: LoadSpec, target: LlamaModel, *, n_ctx: int, parallel: int, num_batch: int,
                  threads: int, gpu: bool) -> Drafter:
    """The draft model with a context shaped like the model's (the same slots and cells, in a shared pool
    when the model's are), all of it on this machine's GPU when the model uses one (it is small, and every
    draft token waits for it)."""
    model = LlamaModel(spec.draft_path, n_gpu_layers=-1 if gpu else 0, main_gpu=spec.main_gpu,
                       use_mmap=spec.use_mmap)
    try:
        ctx = LlamaContext(model, n_ctx=n_ctx, n_batch=num_batch * parallel, n_ubatch=num_batch,
                           n_seq_max=parallel, n_threads=threads, flash_attn=spec.flash_attn,
                           kv_cache_type=spec.kv_cache_type, embeddings=False, kv_unified=spec.kv_unified)
    except BaseException:
        model.close()
        raise
    try:
        return Drafter(model, ctx, target=target, num_predict=spec.draft_num_predict, num_batch=num_batch,
                       parallel=parallel, shared_cells=ctx.n_ctx if spec.kv_unified else None)
    except BaseException:
        ctx.close()
        model.close()
        raise
