"""Files pollama derives from blobs (a model GGUF in llama.cpp's layout, a vision projector), kept beside
the store in `derived/`, never in `blobs/`: Ollama's and pollama's blob pruning leave them alone.

A derived file is named after its source blob's digest, what it is (`kind`) and the recipe that made it,
so the same source and recipe always give the same file: it is made once, by one process at a time
(a lock file), written to a temp file and renamed into place. Its own SHA-256 is recorded beside it when
it is made and checked then; later loads check the file's size, inode and mtime against the record and
hash it again only when they differ. A missing or wrong file is rebuilt. `sweep()` removes what belongs
to blobs that are gone, so derived files go with their model.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelstore.blobs import fsync_directory

log = logging.getLogger(__name__)

_TEMP_PREFIX = ".tmp-"
_STALE_TEMP_SECONDS = 3600.0


class DerivedError(Exception):
    pass


@dataclass(frozen=True)
class Record:
    source: str  # sha256:<hex> of the source blob
    kind: str
    recipe: str
    sha256: str  # of the derived file
    size: int
    inode: int
    mtime_ns: int
    seconds: float  # how long it took to make

    def matches(self, stat: os.stat_result) -> bool:
        return (stat.st_size, stat.st_ino, stat.st_mtime_ns) == (self.size, self.inode, self.mtime_ns)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(16 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def source_digest(source: Path) -> str:
    """The hex digest in a blob's file name (`sha256-<hex>`)."""
    name = Path(source).name
    kind, _, hex_digest = name.partition("-")
    if kind != "sha256" or len(hex_digest) != 64:
        raise DerivedError(f"{name} is not a content-addressed blob")
    return hex_digest


class DerivedStore:
    def __init__(self, root: Path, blobs_directory: Path) -> None:
        self.directory = Path(root) / "derived"
        self.blobs_directory = Path(blobs_directory)

    def path(self, source: Path, kind: str, recipe: str) -> Path:
        return self.directory / f"sha256-{source_digest(source)}.{kind}-{recipe}.gguf"

    def _record_path(self, path: Path) -> Path:
        return path.with_suffix(".json")

    def record(self, path: Path) -> Record | None:
        try:
            return Record(**json.loads(self._record_path(path).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def ensure(self, source: Path, kind: str, recipe: str, build: Callable[[Path, Path], object]) -> Path:
        """The derived file for (source, kind, recipe), made by `build(source, temp_path)` unless a good
        one exists. Blocks while another process or thread makes the same file."""
        path = self.path(source, kind, recipe)
        if self._valid(path):
            return path
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._valid(path):  # made by whoever held the lock before us
                return path
            self._make(source, kind, recipe, path, build)
        self._remove_other_recipes(source, kind, recipe)
        return path

    def _valid(self, path: Path) -> bool:
        record = self.record(path)
        try:
            stat = path.stat()
        except OSError:
            return False
        if record is None:
            return False
        if record.matches(stat):
            return True
        # Touched since it was made: trust it only if its content is still what was recorded.
        if stat.st_size == record.size and _sha256_file(path) == record.sha256:
            self._write_record(path, Record(**{**record.__dict__, "inode": stat.st_ino,
                                               "mtime_ns": stat.st_mtime_ns}))
            return True
        log.warning("derived file %s does not match its record; making it again", path.name)
        return False

    def _make(self, source: Path, kind: str, recipe: str, path: Path, build: Callable[[Path, Path], object]) -> None:
        temp = self.directory / f"{_TEMP_PREFIX}{path.name}-{random.randrange(1 << 32):08x}"
        started = time.perf_counter()
        try:
            build(source, temp)
            digest = _sha256_file(temp)
            with open(temp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        stat = path.stat()
        self._write_record(path, Record(f"sha256:{source_digest(source)}", kind, recipe, digest, stat.st_size,
                                        stat.st_ino, stat.st_mtime_ns, round(time.perf_counter() - started, 3)))
        fsync_directory(self.directory)
        log.info("derived %s from %s in %.2f s (%d bytes)", path.name, source.name,
                 time.perf_counter() - started, stat.st_size)

    def _write_record(self, path: Path, record: Record) -> None:
        target = self._record_path(path)
        temp = self.directory / f"{_TEMP_PREFIX}{target.name}-{random.randrange(1 << 32):08x}"
        temp.write_text(json.dumps(record.__dict__, indent=1))
        os.replace(temp, target)

    def _remove_other_recipes(self, source: Path, kind: str, recipe: str) -> None:
        keep = self.path(source, kind, recipe).name
        for path in self.directory.glob(f"sha256-{source_digest(source)}.{kind}-*.gguf"):
            if path.name != keep:
                self._remove(path)

    def _remove(self, path: Path) -> None:
        for member in (path, self._record_path(path), path.with_suffix(".lock")):
            member.unlink(missing_ok=True)

    def entries(self) -> list[Path]:
        return sorted(self.directory.glob("sha256-*.gguf")) if self.directory.is_dir() else []

    def size(self) -> int:
        return sum(path.stat().st_size for path in self.entries())

    def sweep(self) -> list[str]:
        """Remove derived files whose source blob is gone, and stale temp files; returns removed names.
        A runner that still has such a file open keeps reading it: Linux frees it when closed."""
        removed = []
        for path in self.entries():
            hex_digest = path.name.split(".", 1)[0].removeprefix("sha256-")
            if not (self.blobs_directory / f"sha256-{hex_digest}").exists():
                self._remove(path)
                removed.append(path.name)
        cutoff = time.time() - _STALE_TEMP_SECONDS
        for temp in self.directory.glob(f"{_TEMP_PREFIX}*") if self.directory.is_dir() else []:
            try:
                if temp.stat().st_mtime < cutoff:
                    temp.unlink()
            except OSError:
                pass
        return removed
