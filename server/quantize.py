"""Quantizing a GGUF with llama.cpp's quantizer (`llama_model_quantize` from llama-cpp-python).

Ollama shells out to `llama-quantize`; here a child Python process calls the library function, so a
llama.cpp abort cannot take the server down, and the `[ n/ total]` lines llama.cpp logs per tensor
become progress. Run as `python -m server.quantize IN OUT TYPE` it is that child.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

# Ollama's FileType names and llama.cpp's `llama_ftype` values for the types create accepts.
FILE_TYPES = {"F32": 0, "F16": 1, "BF16": 32, "Q8_0": 7, "Q4_K_S": 14, "Q4_K_M": 15}
SOURCE_TYPES = ("F16", "BF16", "F32")
UNSUPPORTED_MESSAGE = "unsupported quantization type {} - supported types are F32, F16, Q4_K_S, Q4_K_M, Q8_0"

_PROGRESS = re.compile(rb"\[\s*(\d+)/\s*(\d+)\]")


class QuantizeError(RuntimeError):
    pass


def parse_file_type(name: str) -> str:
    """Ollama's `ParseFileType` for create: the canonical upper-case name (`Q4_K` is `Q4_K_M`)."""
    wanted = name.upper()
    if wanted == "Q4_K":
        wanted = "Q4_K_M"
    if wanted not in FILE_TYPES:
        raise QuantizeError(UNSUPPORTED_MESSAGE.format(wanted))
    return wanted


async def quantize(source: Path, target: Path, type_name: str) -> AsyncIterator[tuple[int, int]]:
    """Quantize `source` into `target`, yielding (tensors done, tensor count) as llama.cpp goes.

    Raises QuantizeError with llama.cpp's reason when it fails."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "server.quantize", str(source), str(target), type_name,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1])
    stderr_task = asyncio.ensure_future(process.stderr.read())  # type: ignore[union-attr]
    try:
        assert process.stdout is not None
        async for line in process.stdout:
            match = _PROGRESS.search(line)
            if match:
                yield int(match.group(1)), int(match.group(2))
        code = await process.wait()
        errors = (await stderr_task).decode(errors="replace").strip()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        stderr_task.cancel()
    if code != 0:
        reason = errors.splitlines()[-1].removeprefix("llama_model_quantize: failed to quantize: ") if errors \
            else f"exit status {code}"
        raise QuantizeError(f"llama-quantize failed: {reason}")


def _main(source: str, target: str, type_name: str) -> int:
    import llama_cpp

    last_level = [0]

    @llama_cpp.llama_log_callback
    def log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        # ggml levels: 1 debug, 2 info, 3 warn, 4 error, 5 continues the previous line
        level = last_level[0] if level == 5 else level
        last_level[0] = level
        if _PROGRESS.search(text):
            sys.stdout.buffer.write(text.split(b"]")[0] + b"]\n")
            sys.stdout.flush()
        elif level >= 3:  # warnings and errors: the last one explains a failure
            sys.stderr.buffer.write(text)
            sys.stderr.flush()

    llama_cpp.llama_log_set(log, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FILE_TYPES[type_name]
    params.allow_requantize = True
    params.nthread = max(len(os.sched_getaffinity(0)), 1)
    if llama_cpp.llama_model_quantize(source.encode(), target.encode(), ctypes.byref(params)) != 0:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(*sys.argv[1:4]))
