"""ggml's device registry, through the very libraries llama-cpp-python loads: which devices this build and
machine have, their names and memory. llama-cpp-python binds llama.h only, not ggml-backend.h."""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

# ggml_backend_dev_type
DEVICE_CPU, DEVICE_GPU, DEVICE_IGPU = 0, 1, 2


@functools.cache
def library(name: str) -> ctypes.CDLL:
    """One of llama-cpp-python's ggml libraries (the same handle llama.cpp itself uses in this process)."""
    import llama_cpp

    return ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / name))


@functools.cache
def ggml() -> ctypes.CDLL:
    lib = library("libggml.so")
    lib.ggml_backend_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_dev_get.restype = ctypes.c_void_p
    lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    lib.ggml_backend_dev_type.restype = ctypes.c_int
    lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_name.restype = ctypes.c_char_p
    lib.ggml_backend_dev_name.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
                                            ctypes.POINTER(ctypes.c_size_t)]
    lib.ggml_backend_reg_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_reg_dev_count.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_reg_dev_get.restype = ctypes.c_void_p
    lib.ggml_backend_reg_dev_get.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return lib


def devices() -> list[int]:
    """Handles of every device registered in this process (remote ones once their workers are added)."""
    lib = ggml()
    return [lib.ggml_backend_dev_get(i) for i in range(lib.ggml_backend_dev_count())]


def device_type(device: int) -> int:
    return ggml().ggml_backend_dev_type(device)


def gpu_devices() -> list[int]:
    """This machine's GPUs that this llama.cpp build can use (its CUDA backend, say); empty for a CPU build."""
    return [d for d in devices() if device_type(d) in (DEVICE_GPU, DEVICE_IGPU)]


def device_name(device: int) -> str:
    return ggml().ggml_backend_dev_name(device).decode()


def device_memory(device: int) -> tuple[int, int]:
    """(free, total) bytes."""
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    ggml().ggml_backend_dev_memory(device, ctypes.byref(free), ctypes.byref(total))
    return free.value, total.value
