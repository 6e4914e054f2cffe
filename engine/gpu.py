"""NVIDIA GPUs and their free memory, through NVML (libnvidia-ml, which ships with the driver)."""

from __future__ import annotations

import ctypes
import functools
import logging
import os

from engine.ggml import gpu_devices
from engine.memory import GPU

log = logging.getLogger(__name__)


class _Memory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


@functools.cache
def _nvml() -> ctypes.CDLL | None:
    try:
        library = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return None
    if library.nvmlInit_v2() != 0:
        return None
    return library


@functools.cache
def llama_gpu_offload() -> bool:
    """Whether this llama.cpp build has a GPU backend (a CUDA build, say). Not llama_supports_gpu_offload(),
    which also says yes for the RPC backend, whose remote devices are planned separately."""
    return bool(gpu_devices())


def _visible(count: int) -> list[int]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return list(range(count))
    indices = []
    for item in visible.split(","):
        item = item.strip()
        if item.isdigit() and int(item) < count:
            indices.append(int(item))
    return indices


def nvidia_gpus() -> list[GPU]:
    """The GPUs llama.cpp can use here, with free memory now; empty on a CPU-only machine or build."""
    library = _nvml()
    if library is None or not llama_gpu_offload():
        return []
    count = ctypes.c_uint()
    if library.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
        return []
    gpus = []
    for position, index in enumerate(_visible(count.value)):
        handle = ctypes.c_void_p()
        memory = _Memory()
        name = ctypes.create_string_buffer(96)
        if library.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != 0:
            continue
        if library.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(memory)) != 0:
            continue
        library.nvmlDeviceGetName(handle, name, len(name))
        gpus.append(GPU(position, name.value.decode(errors="replace"), memory.total, memory.free))
    return gpus
