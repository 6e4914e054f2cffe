"""Temporary files in the store, and whether a live process still owns one.

The process writing a temporary (an upload, a conversion's output, a manifest about to be renamed) holds
an flock(2) on it until it is renamed or removed. The lock goes with the process however it ends, kill -9
included, so at start-up a temporary that nobody holds is a dead process's and is removed at once, not an
hour later. A temporary another server still writes survives: two pollama servers may share a store (the
lock works across containers too), and an Ollama beside them, which takes no lock, still has the file open.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def lock(fd: int) -> None:
    """Mark the file open on `fd` as owned by this process, for as long as the descriptor stays open."""
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _held(path: Path) -> bool:
    """Whether some process holds the file's lock."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return True  # vanished (renamed by its owner) or unreadable: not ours to remove
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock just taken
    return False


def _open_elsewhere() -> set[tuple[int, int]]:
    """(device, inode) of every file another process (that this one can see) has open."""
    opened: set[tuple[int, int]] = set()
    me = str(os.getpid())
    with contextlib.suppress(OSError):
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == me:
                continue
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):
                        info = os.stat(f"/proc/{pid}/fd/{fd}")
                        opened.add((info.st_dev, info.st_ino))
    return opened


def remove_abandoned(paths: Iterable[Path]) -> list[str]:
    """Remove the temporaries no live process owns; returns their names."""
    candidates = [path for path in paths if not _held(path)]
    if not candidates:
        return []
    opened = _open_elsewhere()
    removed = []
    for path in candidates:
        try:
            info = path.stat()
            if (info.st_dev, info.st_ino) in opened:
                continue
            path.unlink()
        except OSError as exc:
            log.warning("couldn't remove temporary file %s: %s", path.name, exc)
            continue
        removed.append(path.name)
    if removed:
        log.info("removed %d temporary file(s) left by a process that is gone", len(removed))
    return removed


@contextlib.contextmanager
def owned_file(path: Path) -> Iterator[int]:
    """Create `path` (it must not exist), locked as this process's temporary; the descriptor is closed,
    and the lock released, when the block exits."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        lock(fd)
        yield fd
    finally:
        os.close(fd)
