"""The memory estimator against Ollama's era-A formulas (runtime.md §2.2)."""

from __future__ import annotations

from engine.memory import (
    GPU,
    MINIMUM_GPU_MEMORY,
    draft_bytes,
    estimate,
    graph_bytes,
    kv_bytes_per_layer,
    tensor_bytes,
)
from engine.scheduler import human_bytes
from modelstore.gguf import GGUFInfo, TensorInfo, read_gguf

GIB = 1 << 30
F16, Q4_0, Q8_0 = 1, 2, 8


def llama3_8b() -> GGUFInfo:
    """Llama-3-8B's shapes: 32 layers, 4096 wide, 32 heads, 8 KV heads, 128256 vocabulary, Q4_0 weights."""
    kv = {"general.architecture": "llama", "llama.block_count": 32, "llama.embedding_length": 4096,
          "llama.attention.head_count": 32, "llama.attention.head_count_kv": 8, "llama.vocab_size": 128256,
          "llama.feed_forward_length": 14336}
    tensors = [TensorInfo("token_embd.weight", "Q4_0", [4096, 128256], Q4_0),
               TensorInfo("output_norm.weight", "F32", [4096], 0),
               TensorInfo("output.weight", "Q4_0", [4096, 128256], Q4_0)]
    for i in range(32):
        tensors += [TensorInfo(f"blk.{i}.attn_q.weight", "Q4_0", [4096, 4096], Q4_0),
                    TensorInfo(f"blk.{i}.attn_k.weight", "Q4_0", [4096, 1024], Q4_0),
                    TensorInfo(f"blk.{i}.attn_v.weight", "Q4_0", [4096, 1024], Q4_0),
                    TensorInfo(f"blk.{i}.attn_output.weight", "Q4_0", [4096, 4096], Q4_0),
                    TensorInfo(f"blk.{i}.ffn_gate.weight", "Q4_0", [4096, 14336], Q4_0),
                    TensorInfo(f"blk.{i}.ffn_up.weight", "Q4_0", [4096, 14336], Q4_0),
                    TensorInfo(f"blk.{i}.ffn_down.weight", "Q4_0", [14336, 4096], Q4_0),
                    TensorInfo(f"blk.{i}.attn_norm.weight", "F32", [4096], 0),
                    TensorInfo(f"blk.{i}.ffn_norm.weight", "F32", [4096], 0)]
    return GGUFInfo(version=3, kv=kv, tensors=tensors, data_offset=0)


def test_kv_cache_matches_the_reference_example() -> None:
    # "Llama-3-8B (32 layers, 8 KV heads, 128+128) in f16 = 4 KiB/token/layer, 128 KiB/token, 1 GiB at 8192 ctx"
    per_layer = kv_bytes_per_layer(llama3_8b(), 8192)
    assert per_layer[0] == 8192 * 4 * 1024
    assert sum(per_layer) == GIB
    assert sum(kv_bytes_per_layer(llama3_8b(), 8192, "q8_0")) == GIB * 34 // 64


def test_llama_graph_formula() -> None:
    ctx, batch, e, h, hkv, v, d = 8192, 512, 4096, 32, 8, 128256, 128
    partial, full = graph_bytes(llama3_8b(), ctx, batch, GIB)
    assert full == max(4 * batch * (1 + 4 * e + ctx * (1 + h)), 4 * batch * (e + v))
    assert partial == 4 * batch * e + max(4 * batch * (1 + e + max(ctx, e)) + e * e * 9 // 16
                                          + 4 * ctx * (batch * h + d * hkv),
                                          4 * batch * (e + v) + e * v * 105 // 128)


def test_generic_graph_fallback() -> None:
    info = llama3_8b()
    info.kv["general.architecture"] = "mystery"
    info.kv = {k.replace("llama.", "mystery."): v for k, v in info.kv.items()}
    partial, full = graph_bytes(info, 8192, 512, 6 * GIB)
    assert partial == full == (32 // 8) * 6 * GIB // 6


def test_tensor_bytes_by_type() -> None:
    assert tensor_bytes(Q4_0, [4096, 4096]) == 4096 * 4096 * 18 // 32
    assert tensor_bytes(Q8_0, [32]) == 34
    assert tensor_bytes(F16, [10, 10]) == 200


def test_cpu_only_everything_in_system_memory() -> None:
    plan = estimate(llama3_8b(), num_ctx=8192, parallel=1, num_batch=512, gpus=[])
    assert plan.gpu_layers == 0 and plan.vram == 0
    assert plan.total == plan.weights + plan.kv + plan.graph
    assert plan.kv == GIB


def test_big_gpu_takes_every_layer_and_the_output() -> None:
    plan = estimate(llama3_8b(), num_ctx=8192, parallel=1, num_batch=512, gpus=[GPU(0, "big", 80 * GIB, 80 * GIB)])
    assert plan.gpu_layers == 33 and plan.fully_offloaded
    assert plan.vram == plan.total
    assert plan.vram > plan.weights + plan.kv + MINIMUM_GPU_MEMORY


def test_small_gpu_takes_the_last_layers_and_the_rest_stays_on_cpu() -> None:
    plan = estimate(llama3_8b(), num_ctx=8192, parallel=1, num_batch=512, gpus=[GPU(0, "small", 4 * GIB, 3 * GIB)])
    assert 0 < plan.gpu_layers < 32
    assert 0 < plan.vram < 3 * GIB
    assert plan.total > plan.vram


def test_num_gpu_caps_the_layers() -> None:
    plan = estimate(llama3_8b(), num_ctx=8192, parallel=1, num_batch=512,
                    gpus=[GPU(0, "big", 80 * GIB, 80 * GIB)], num_gpu=10)
    assert plan.gpu_layers == 10
    assert estimate(llama3_8b(), num_ctx=8192, parallel=1, num_batch=512,
                    gpus=[GPU(0, "big", 80 * GIB, 80 * GIB)], num_gpu=0).vram == 0


def test_gpu_overhead_is_held_back() -> None:
    gpu = [GPU(0, "mid", 8 * GIB, 6 * GIB)]
    without = estimate(llama3_8b(), num_ctx=8192, parallel=1, num_batch=512, gpus=gpu)
    with_overhead = estimate(llama3_8b(), num_ctx=8192, parallel=1, num_batch=512, gpus=gpu, gpu_overhead=2 * GIB)
    assert with_overhead.gpu_layers < without.gpu_layers


def test_a_draft_model_takes_its_weights_and_cache_beside_the_model() -> None:
    draft = draft_bytes(llama3_8b(), 8192)
    assert draft == sum(tensor_bytes(t.type_id, t.shape) for t in llama3_8b().tensors) + GIB
    without = estimate(llama3_8b(), num_ctx=8192, parallel=1, num_batch=512, gpus=[])
    assert estimate(llama3_8b(), num_ctx=8192, parallel=1, num_batch=512, gpus=[], draft_bytes=draft).total \
        == without.total + draft
    # on a GPU that holds the model but not the model and its draft, layers move to the CPU
    gpu = [GPU(0, "mid", 16 * GIB, without.weights + 2 * GIB)]
    alone = estimate(llama3_8b(), num_ctx=8192, parallel=1, num_batch=512, gpus=gpu)
    drafted = estimate(llama3_8b(), num_ctx=8192, parallel=1, num_batch=512, gpus=gpu, draft_bytes=draft // 4)
    assert drafted.gpu_layers < alone.gpu_layers


def test_parallel_multiplies_the_kv_cache() -> None:
    one = estimate(llama3_8b(), num_ctx=4096, parallel=1, num_batch=512, gpus=[])
    four = estimate(llama3_8b(), num_ctx=4096, parallel=4, num_batch=512, gpus=[])
    assert four.kv == 4 * one.kv


def test_sequences_sharing_one_window_plan_the_memory_of_one() -> None:
    one = estimate(llama3_8b(), num_ctx=4096, parallel=1, num_batch=512, gpus=[])
    shared = estimate(llama3_8b(), num_ctx=4096, parallel=4, num_batch=512, gpus=[], kv_unified=True)
    assert (shared.kv, shared.graph, shared.total) == (one.kv, one.graph, one.total)
    assert (shared.parallel, shared.kv_unified) == (4, True)  # what the runner is loaded with


def test_real_smollm2_estimate(smollm2_gguf) -> None:
    info = read_gguf(smollm2_gguf)
    plan = estimate(info, num_ctx=4096, parallel=1, num_batch=512, gpus=[])
    # 30 layers × 3 KV heads × (64 + 64) × 2 bytes × 4096 tokens
    assert plan.kv == 30 * 3 * 128 * 2 * 4096
    assert abs(plan.weights - smollm2_gguf.stat().st_size) < 5_000_000


def test_human_bytes() -> None:
    assert human_bytes(457 * 1024 * 1024) == "457.0 MiB"
    assert human_bytes(5.5 * GIB) == "5.5 GiB"
    assert human_bytes(100) == "100 B"
