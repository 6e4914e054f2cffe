"""Content-addressed blobs under `<root>/blobs/sha256-<hex>`, written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
from pathlib import Path
from types import TracebackType

from modelstore import temps
from modelstore.gojson import go_quote

_DIGEST_PATTERN = re.compile(r"sha256[:-][0-9a-fA-F]{64}")
TEMP_PREFIX = "sha256-"
_TEMP_NAME = re.compile(r"sha256-[0-9A-Za-z_]{1,20}")


class InvalidDigest(ValueError):
    def __init__(self) -> None:
        super().__init__("invalid digest format")


class DigestMismatch(ValueError):
    """The data hashed to another digest; it is kept under `actual` (as Ollama does)."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"digest mismatch, expected {go_quote(expected)}, got {go_quote(actual)}")
        self.expected = expected
        self.actual = actual


def is_valid_digest(digest: str) -> bool:
    """`sha256:` or `sha256-` plus 64 hex digits (either case, kept as given)."""
    return _DIGEST_PATTERN.fullmatch(digest) is not None


def fsync_directory(path: Path) -> None:
    """Make a rename or unlink inside `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_temp(directory: Path) -> tuple[int, Path]:
    """Like Go's os.CreateTemp(dir, "sha256-"): a new file named with random digits, mode 0600; locked as
    this process's temporary (modelstore/temps.py) while the descriptor is open."""
    while True:
        path = directory / f"{TEMP_PREFIX}{random.randrange(1 << 32)}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        temps.lock(fd)
        return fd, path


def is_temp_name(name: str) -> bool:
    """A temporary in the blobs directory: `sha256-` and a short random suffix (Go's CreateTemp, or
    mkstemp's), never a digest or a download's `-partial` file (those are resumable, not temporary)."""
    return _TEMP_NAME.fullmatch(name) is not None


class BlobWriter:
    """Streams data into a temp blob while hashing it; `commit` renames it onto its digest."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        store.directory.mkdir(parents=True, exist_ok=True)
        fd, self.temp_path = _create_temp(store.directory)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self.created = False
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def commit(self, expected: str | None = None) -> str:
        """Store the blob and return `sha256:<hex>`.

        With `expected`, a different digest raises DigestMismatch after the data has been stored
        under its real digest, as Ollama's `POST /api/blobs` does.
        """
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        digest = "sha256:" + self._hash.hexdigest()
        final = self._store.path(digest)
        if final.exists():
            self.temp_path.unlink(missing_ok=True)
        else:
            os.chmod(self.temp_path, 0o644)
            os.replace(self.temp_path, final)
            fsync_directory(self._store.directory)
            self.created = True
        self._done = True
        # Fresh mtime either way: it starts the prune grace period afresh.
        os.utime(final)
        if expected is not None and expected != digest:
            raise DigestMismatch(expected, digest)
        return digest

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            # Closing flushes what is buffered, which fails again on a full disk: the data is discarded anyway.
            with contextlib.suppress(OSError):
                self._file.close()
        finally:
            self.temp_path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()


class BlobStore:
    def __init__(self, root: Path) -> None:
        """`root` is the models directory (`$OLLAMA_MODELS`); blobs live in `root/blobs`."""
        self.root = Path(root)
        self.directory = self.root / "blobs"

    def path(self, digest: str) -> Path:
        if not is_valid_digest(digest):
            raise InvalidDigest()
        return self.directory / digest.replace(":", "-")

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def read_bytes(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def touch(self, digest: str) -> None:
        os.utime(self.path(digest))

    def writer(self) -> BlobWriter:
        return BlobWriter(self)

    def write_bytes(self, data: bytes) -> tuple[str, bool]:
        """Store data; returns its digest and whether the blob is new."""
        with self.writer() as writer:
            writer.write(data)
            digest = writer.commit()
            return digest, writer.created

    def remove(self, digest: str) -> bool:
        """Delete a blob; False when it was not there."""
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True
