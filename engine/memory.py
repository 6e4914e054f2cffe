"""Memory planning before a load: weights, KV cache and compute graph, and how many layers go to the GPU.

Ollama's era-A estimator (llm/memory.go, fs/ggml/ggml.go), since llama-cpp-python has no "fit" call:
KV bytes per layer, a compute-graph estimate, then layers placed on GPUs from the last to the first.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from modelstore.gguf import GGUFInfo

log = logging.getLogger(__name__)
MIB = 1 << 20
MINIMUM_GPU_MEMORY = 457 * MIB  # what Ollama keeps free on every GPU
KV_BYTES_PER_ELEMENT = {"f16": 2.0, "": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32, "f32": 4.0}
KV_CACHE_TYPES = ("f16", "q8_0", "q4_0")  # what OLLAMA_KV_CACHE_TYPE may ask for
_BLOCK = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class GPU:
    index: int
    name: str
    total: int
    free: int
    remote: str = ""  # the llama.cpp RPC worker (host:port) that has this device; "" for a local GPU


@dataclass(frozen=True)
class Placement:
    gpu: GPU
    layers: int  # the output layer counts as one
    size: int  # bytes


@dataclass
class Estimate:
    layers: int  # repeating blocks; the output layer is one more
    gpu_layers: int  # what llama.cpp gets as n_gpu_layers (layers + 1 when fully offloaded)
    kv: int
    weights: int
    graph: int
    vram: int  # bytes placed on devices, local GPUs and RPC workers' alike
    total: int  # vram + what stays in system memory
    placements: list[Placement] = field(default_factory=list)  # the devices that got layers, in device order
    devices: list[GPU] = field(default_factory=list)  # every device the plan considered, in device order
    parallel: int = 1  # the sequences the plan is for
    kv_unified: bool = False  # they share one window's KV cells instead of a window each

    @property
    def fully_offloaded(self) -> bool:
        return self.gpu_layers > self.layers

    @property
    def per_gpu(self) -> list[int]:
        return [p.size for p in self.placements]

    @property
    def local_vram(self) -> int:
        """Bytes on this machine's GPUs (what /api/ps calls size_vram); RPC workers' memory is not among them."""
        return sum(p.size for p in self.placements if not p.gpu.remote)

    @property
    def rpc_servers(self) -> list[str]:
        """The RPC workers whose devices the plan considered, in device order."""
        return list(dict.fromkeys(gpu.remote for gpu in self.devices if gpu.remote))

    @property
    def uses_rpc(self) -> bool:
        return any(p.gpu.remote for p in self.placements)

    def tensor_split(self) -> list[float]:
        """Layers per device in device order, for llama.cpp's tensor_split."""
        layers = {p.gpu.index: p.layers for p in self.placements}
        return [float(layers.get(gpu.index, 0)) for gpu in self.devices]


def effective_kv_cache_type(requested: str, flash_attention: bool | None) -> str:
    """The KV cache type runners really get for OLLAMA_KV_CACHE_TYPE, and that memory estimates use.

    As Ollama's era-A llm/server.go: the value is lowercased; a type other than f16/q8_0/q4_0 is
    ignored, and so is a quantized type with flash attention turned off (llama.cpp cannot quantize the
    V cache without it), each with a warning; f16 is used instead. Flash attention left to llama.cpp
    (None) keeps the quantized type: llama.cpp then turns flash attention on for it."""
    kind = requested.strip().lower()
    if kind in ("", "f16"):
        return "f16"
    if kind not in KV_CACHE_TYPES:
        log.warning("kv cache type not supported by model: OLLAMA_KV_CACHE_TYPE=%s is not one of %s; using f16",
                    requested, ", ".join(KV_CACHE_TYPES))
        return "f16"
    if flash_attention is False:
        log.warning("quantized kv cache requested but flash attention disabled: OLLAMA_KV_CACHE_TYPE=%s "
                    "needs flash attention, which OLLAMA_FLASH_ATTENTION turns off; using f16", requested)
        return "f16"
    return kind


def tensor_bytes(type_id: int, shape: list[int]) -> int:
    elements = 1
    for dim in shape:
        elements *= dim
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType(type_id)]
    return elements * size // block


def _int(info: GGUFInfo, key: str, default: int = 0) -> int:
    value = info.key(key)
    if isinstance(value, list):  # per-layer arrays (e.g. head_count_kv): the largest
        value = max(value) if value else default
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def kv_bytes_per_layer(info: GGUFInfo, ctx: int, kv_cache_type: str = "") -> list[int]:
    """`ctx × (head_dim_k + head_dim_v) × n_head_kv × bytes per element`, for every block."""
    n_layer = _int(info, "block_count")
    n_embd = _int(info, "embedding_length")
    n_head = _int(info, "attention.head_count", 1) or 1
    head_k = _int(info, "attention.key_length", n_embd // n_head)
    head_v = _int(info, "attention.value_length", n_embd // n_head)
    per_layer_heads = info.key("attention.head_count_kv")
    bpe = KV_BYTES_PER_ELEMENT.get(kv_cache_type, 2.0)
    sizes = []
    for layer in range(n_layer):
        if isinstance(per_layer_heads, list):
            heads = int(per_layer_heads[layer]) if layer < len(per_layer_heads) else 0
        else:
            heads = _int(info, "attention.head_count_kv", n_head)
        sizes.append(int(ctx * (head_k + head_v) * heads * bpe))
    return sizes


def graph_bytes(info: GGUFInfo, ctx: int, batch: int, kv_total: int) -> tuple[int, int]:
    """(partial, full) compute-graph sizes; the llama formula, or Ollama's generic fallback."""
    n_embd = _int(info, "embedding_length")
    n_head = _int(info, "attention.head_count", 1) or 1
    n_head_kv = _int(info, "attention.head_count_kv", n_head) or 1
    vocab = _int(info, "vocab_size") or len(info.kv.get("tokenizer.ggml.tokens") or [])
    head_dim = n_embd // n_head
    if info.architecture in ("llama", "llama4"):
        full = max(4 * batch * (1 + 4 * n_embd + ctx * (1 + n_head)), 4 * batch * (n_embd + vocab))
        partial = 4 * batch * n_embd + max(
            4 * batch * (1 + n_embd + max(ctx, n_embd)) + n_embd * n_embd * 9 // 16
            + 4 * ctx * (batch * n_head + head_dim * n_head_kv),
            4 * batch * (n_embd + vocab) + n_embd * vocab * 105 // 128,
        )
        return partial, full
    partial = (n_head // n_head_kv) * kv_total // 6
    return partial, partial


def _weights(info: GGUFInfo, n_layer: int) -> tuple[list[int], int]:
    """(bytes per block, bytes of the output layer: output_norm + output, or the tied embedding)."""
    blocks = [0] * n_layer
    output = 0
    names = {t.name for t in info.tensors}
    for tensor in info.tensors:
        size = tensor_bytes(tensor.type_id, tensor.shape)
        match = _BLOCK.match(tensor.name)
        if match and int(match.group(1)) < n_layer:
            blocks[int(match.group(1))] += size
        elif tensor.name.startswith(("output_norm.", "output.")) or (
            tensor.name.startswith("token_embd.") and "output.weight" not in names
        ):
            output += size
    return blocks, output


def draft_bytes(info: GGUFInfo, ctx: int, kv_cache_type: str = "") -> int:
    """A draft model for speculative decoding: its weights and a KV cache of `ctx` cells."""
    return sum(tensor_bytes(t.type_id, t.shape) for t in info.tensors) + sum(kv_bytes_per_layer(info, ctx,
                                                                                                  kv_cache_type))


def estimate(
    info: GGUFInfo,
    *,
    num_ctx: int,
    parallel: int,
    num_batch: int,
    gpus: list[GPU],
    num_gpu: int = -1,
    kv_cache_type: str = "",
    gpu_overhead: int = 0,
    projector_bytes: int = 0,
    draft_bytes: int = 0,
    kv_unified: bool = False,
) -> Estimate:
    """The plan for `parallel` sequences of `num_ctx` tokens: a KV cache of num_ctx cells each, or of
    num_ctx cells in all when they share them (`kv_unified`; a step's micro-batch, and so the compute
    graph, is the same either way)."""
    plan = _estimate(info, ctx=num_ctx if kv_unified else num_ctx * parallel, batch=min(num_ctx, num_batch),
                     gpus=gpus, num_gpu=num_gpu, kv_cache_type=kv_cache_type, gpu_overhead=gpu_overhead,
                     projector_bytes=projector_bytes + draft_bytes)  # a draft model goes whole on the first GPU
    plan.parallel, plan.kv_unified = parallel, kv_unified
    return plan


def _estimate(info: GGUFInfo, *, ctx: int, batch: int, gpus: list[GPU], num_gpu: int, kv_cache_type: str,
              gpu_overhead: int, projector_bytes: int) -> Estimate:
    n_layer = _int(info, "block_count")
    kv = kv_bytes_per_layer(info, ctx, kv_cache_type)
    kv_total = sum(kv)
    graph_partial, graph_full = graph_bytes(info, ctx, batch, kv_total)
    blocks, output = _weights(info, n_layer)
    weights = sum(tensor_bytes(t.type_id, t.shape) for t in info.tensors)
    if num_gpu == 0 or not gpus:
        graph = max(graph_partial, graph_full)
        return Estimate(n_layer, 0, kv_total, weights, graph, 0, weights + kv_total + graph + projector_bytes)

    layer_size = (blocks[0] if blocks else 0) + (kv[0] if kv else 0)
    graph = max(graph_partial, graph_full)
    usable = [g for i, g in enumerate(gpus) if g.free >= gpu_overhead + (projector_bytes if i == 0 else 0)
              + graph + MINIMUM_GPU_MEMORY + 2 * layer_size]
    allocated = {g.index: MINIMUM_GPU_MEMORY + layer_size for g in usable}
    if usable:
        allocated[usable[0].index] += projector_bytes
    placed = {g.index: 0 for g in usable}
    space = list(usable)
    for layer in range(n_layer - 1, -1, -1):
        if 0 <= num_gpu <= sum(placed.values()) or not space:
            break
        cost = blocks[layer] + kv[layer]
        while space:
            gpu = space[layer % len(space)]
            if gpu.free > gpu_overhead + allocated[gpu.index] + graph + cost:
                allocated[gpu.index] += cost
                placed[gpu.index] += 1
                break
            space.remove(gpu)
    on_gpu = sum(placed.values())
    if on_gpu == n_layer and space and (num_gpu < 0 or num_gpu > n_layer):
        gpu = space[0]
        if gpu.free > gpu_overhead + allocated[gpu.index] + graph + output:
            allocated[gpu.index] += output
            placed[gpu.index] += 1
            on_gpu += 1
    full = on_gpu > n_layer
    placements = []
    for gpu in usable:
        if placed[gpu.index]:
            allocated[gpu.index] += graph_full if full else graph_partial
            placements.append(Placement(gpu, placed[gpu.index], allocated[gpu.index]))
    vram = sum(p.size for p in placements)
    cpu_weights = sum(blocks[: n_layer - min(on_gpu, n_layer)]) + (0 if full else output)
    cpu_kv = sum(kv[: n_layer - min(on_gpu, n_layer)])
    total = vram + cpu_weights + cpu_kv + (0 if on_gpu else graph_partial)
    return Estimate(n_layer, on_gpu, kv_total, weights, graph_full if full else graph_partial, vram, total,
                    placements, list(gpus))


def system_memory() -> tuple[int, int]:
    """(total, available) bytes of system memory, from /proc/meminfo."""
    values = {}
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0]) * 1024
    return values.get("MemTotal", 0), values.get("MemAvailable", values.get("MemFree", 0))
