"""Blob downloads: parallel ranged parts, resumable with Ollama's state files, verified before visible.

On disk, exactly as Ollama (`server/download.go`), so either program can resume the other's download:

* `blobs/sha256-<hex>-partial`: the data, sized to the whole blob up front (sparse; a filesystem
  without room for what is missing fails the pull at once), parts written at their offsets.
* `blobs/sha256-<hex>-partial-<N>`: one JSON line per part, `{"N":0,"Offset":0,"Size":…,"Completed":…}`.
  Parts are `total/16` bytes clamped to [100 MB, 1000 MB]. `Completed` counts the bytes written
  contiguously from `Offset`; a resumed part restarts at `Offset+Completed`, and with state files
  present no HEAD is sent. pollama rewrites the state files about once a second (atomically), so a
  killed daemon loses at most a second of progress.
* `blobs/.sha256-<hex>-partial.extents` (pollama only; Ollama neither reads nor minds it): the byte
  ranges finished beyond each part's contiguous `Completed`, which parallel ranges inside one part
  produce and Ollama's format cannot express, so that a resume skips them too.

The bytes still missing are cut into 16 MiB units, taken lowest offset first. A download starts
with one connection, which asks for a run of adjacent units per GET (up to 8, about half a second's
worth at the rate it sees), and StreamRamp adds connections (2, 4, 8) while each doubling fetches at
least a quarter more; with several, each GET is one unit, so the data still arrives nearly in order.
`POLLAMA_DOWNLOAD_STREAMS=N` fixes the count at N instead. The SHA-256 is computed while the data
arrives (registry.inorder follows the contiguous prefix), so verification costs almost nothing at
the end; a blob whose digest differs is deleted and never becomes visible. A good blob is fsynced
(writeback of each unit starts as soon as it is whole), its state files removed, and renamed onto
`sha256-<hex>`.

Failures: a stall (no bytes for `POLLAMA_DOWNLOAD_STALL_TIMEOUT`, default 30 s) retries without
using up an attempt; other errors retry up to 6 times, sleeping 1, 2, 4, 8, 16, 32 s (times
`POLLAMA_REGISTRY_RETRY_DELAY`), and any progress resets the count; then `max retries exceeded: …`.
A full disk aborts at once. A server that ignores Range (200 instead of 206) is detected and the
blob is fetched as one stream instead.

Concurrent pulls of one blob share one download; when the last waiter leaves, it is cancelled and
its state kept. Two pollama processes on one store serialise on a lock of the `-partial` file.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from modelstore.blobs import fsync_directory
from modelstore.store import ModelStore
from registry import rangeget
from registry.inorder import InOrderHash
from registry.transfers import TRANSFERS
from registry.transport import Cancelled, NotFound, RegistryClient, RegistryError

log = logging.getLogger(__name__)

NUM_PARTS = 16
MIN_PART_SIZE = 100_000_000
MAX_PART_SIZE = 1_000_000_000
MAX_RETRIES = 6
UNIT_SIZE = 16 << 20
STATE_INTERVAL = 1.0
RUN_UNITS = 8  # units one GET asks for when a single stream is wanted: fewer requests, still in order
PROBE_INTERVAL = 0.5  # how long each stream count runs before StreamRamp judges it
RAMP_TICK = 0.1


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


def stream_setting() -> tuple[int, bool]:
    """(the most streams, whether that count is fixed). `POLLAMA_DOWNLOAD_STREAMS` fixes it; unset, a
    download adapts between 1 and 8 (see StreamRamp)."""
    value = os.environ.get("POLLAMA_DOWNLOAD_STREAMS", "")
    try:
        return max(1, int(value)), True
    except ValueError:
        return 8, False


class StreamRamp:
    """How many streams a download wants. It starts with one, doubles while each doubling raises the rate
    at which bytes arrive by at least GAIN, and when one does not, goes back to the count before and
    stays there.

    Extra streams pay off where each connection is capped (CDNs); where one stream already saturates
    the link, the CPU or the disk, they only add requests and out-of-order data that the SHA-256 (which
    must run in order) catches up with at the end.
    """

    GAIN = 1.25

    def __init__(self, most: int) -> None:
        self.most = most
        self.streams = 1
        self._previous = 1
        self._rate_before: float | None = None
        self._window: tuple[float, int] | None = None  # (start, bytes fetched by then)
        self.settled = most == 1

    def observe(self, now: float, fetched: int) -> int:
        """Bytes fetched so far, at `now`; returns the count wanted. Each count runs for PROBE_INTERVAL,
        measured from the first bytes (connecting and the first response are not the link's rate)."""
        if self.settled or not fetched:
            return self.streams
        if self._window is None:
            self._window = (now, fetched)
        elif now - self._window[0] >= PROBE_INTERVAL:
            start, before = self._window
            self._window = (now, fetched)
            return self.update((fetched - before) / (now - start))
        return self.streams

    def update(self, rate: float) -> int:
        """The rate (bytes/s) seen with the current count; returns the count wanted next."""
        if self.settled:
            return self.streams
        if self._rate_before is None or rate >= self._rate_before * self.GAIN:
            self._rate_before, self._previous = rate, self.streams
            if self.streams == self.most:
                self.settled = True
            self.streams = min(self.most, self.streams * 2)
        else:
            self.streams, self.settled = self._previous, True
        return self.streams


def stall_timeout() -> float:
    return _env_float("POLLAMA_DOWNLOAD_STALL_TIMEOUT", 30.0)


def retry_delay() -> float:
    return _env_float("POLLAMA_REGISTRY_RETRY_DELAY", 1.0)


def part_plan(total: int) -> list[tuple[int, int]]:
    """Ollama's parts: `total/16` clamped to [100 MB, 1000 MB] (decimal), the last one shorter."""
    size = min(max(total // NUM_PARTS, MIN_PART_SIZE), MAX_PART_SIZE)
    parts, offset = [], 0
    while offset < total:
        parts.append((offset, min(size, total - offset)))
        offset += size
    return parts


def range_header(start: int, stop: int) -> str:
    """`Range` for bytes start..stop-1 (the end is inclusive)."""
    return f"bytes={start}-{stop - 1}"


@dataclass
class Unit:
    """A stretch of one part fetched by one request; `done` bytes from `start` are written."""

    start: int
    size: int
    done: int = 0

    @property
    def remaining(self) -> int:
        return self.size - self.done


@dataclass
class Part:
    n: int
    offset: int
    size: int
    completed: int = 0  # as last read or saved
    units: list[Unit] = field(default_factory=list)

    def state_bytes(self, completed: int | None = None) -> bytes:
        """Go's json.Encoder output for Ollama's part state."""
        value = self.completed if completed is None else completed
        return f'{{"N":{self.n},"Offset":{self.offset},"Size":{self.size},"Completed":{value}}}\n'.encode()

    def live_completed(self) -> int:
        """Bytes written contiguously from the part's start, from its units."""
        if not self.units:
            return self.completed
        total = self.units[0].start - self.offset
        for unit in self.units:
            total += unit.done
            if unit.done < unit.size:
                break
        return total


def _lookup(obj: dict, key: str) -> object:
    if key in obj:
        return obj[key]
    for name, value in obj.items():
        if name.lower() == key.lower():
            return value
    return None


def parse_state(raw: bytes) -> Part:
    obj = json.loads(raw)
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    values = [_lookup(obj, key) or 0 for key in ("N", "Offset", "Size", "Completed")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise ValueError("bad field")
    n, offset, size, completed = values
    return Part(n=n, offset=offset, size=size, completed=min(completed, size))


def state_paths(partial: Path) -> list[Path]:
    prefix = partial.name + "-"
    return [p for p in partial.parent.glob(glob_escape(prefix) + "*") if p.name[len(prefix):].isdigit()]


def glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def read_states(partial: Path, expected_total: int = 0) -> list[Part] | None:
    """Parts from the state files, or None when there are none or they do not fit together."""
    paths = state_paths(partial)
    if not paths:
        return None
    try:
        parts = sorted((parse_state(p.read_bytes()) for p in paths), key=lambda part: part.n)
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable download state for %s: %s", partial.name, exc)
        return None
    offset = 0
    for index, part in enumerate(parts):
        if part.n != index or part.offset != offset or part.size <= 0:
            log.warning("ignoring inconsistent download state for %s", partial.name)
            return None
        offset += part.size
    if expected_total and offset != expected_total:
        log.warning("ignoring download state for %s: %d bytes, the manifest says %d", partial.name, offset,
                    expected_total)
        return None
    return parts


def extents_path(partial: Path) -> Path:
    return partial.with_name(f".{partial.name}.extents")


def read_extents(partial: Path, total: int) -> list[tuple[int, int]]:
    """Finished (start, length) ranges saved beside the state files, if they belong to this -partial file."""
    try:
        saved = json.loads(extents_path(partial).read_bytes())
        inode = partial.stat().st_ino
    except (OSError, ValueError):
        return []
    if not isinstance(saved, dict) or saved.get("inode") != inode or saved.get("total") != total:
        return []
    extents = []
    for item in saved.get("extents") or []:
        if (isinstance(item, list) and len(item) == 2 and all(isinstance(v, int) and v >= 0 for v in item)
                and item[1] > 0 and item[0] + item[1] <= total):
            extents.append((item[0], item[1]))
    return sorted(extents)


def write_state(path: Path, data: bytes) -> None:
    """Replace a state file atomically (the temp name is not matched by `-partial-*`)."""
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as f:
        f.write(data)
    os.replace(temp, path)


def _load_sync_file_range():
    """Linux sync_file_range(2): start writeback of a range without waiting (None elsewhere)."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.sync_file_range
        function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        function.restype = ctypes.c_int
        return function
    except (OSError, AttributeError):
        return None


_sync_file_range = _load_sync_file_range()
SYNC_FILE_RANGE_WRITE = 2
FLUSH_INTERVAL = 0.05


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Let the disk start on data as soon as it is written, so the final fsync has little left to do
    (Linux would otherwise keep it dirty in memory for up to 30 s)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)


def _go_os_error(op: str, path: Path, exc: OSError) -> str:
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    return f"{op} {path}: {reason}"


class BlobDownload:
    """One blob being fetched; `run()` happens on its own thread."""

    def __init__(self, store: ModelStore, digest: str, client: RegistryClient, url: str,
                 size_hint: int | None = None) -> None:
        self.store = store
        self.digest = digest
        self.client = client.acquire()
        self.url = url
        self.size_hint = size_hint
        self.path = store.blobs.path(digest)
        self.partial = self.path.with_name(self.path.name + "-partial")
        self.total = 0
        self.parts: list[Part] = []
        self.units: list[Unit] = []
        self.prepared = threading.Event()
        self.done = threading.Event()
        self.cancel = threading.Event()  # from outside: the last waiter left
        self._stop = threading.Event()  # for the workers of the current phase
        self._fetched = threading.Event()  # every byte is written: the flusher may fsync
        self._synced = False
        self.error: RegistryError | None = None
        self.actual_digest: str | None = None  # set when the data hashed to something else
        self.references = 0
        self._fd: int | None = None
        self._locked = False
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        self._unit_lock = threading.Lock()
        self._next_unit = 0
        self._wanted_streams = 1
        self._worker_error: BaseException | None = None
        self._direct_url = url
        self._direct_status = 200
        self._extents: list[tuple[int, int]] = []
        self._saved_extents: list[tuple[int, int]] = []
        self._hash: InOrderHash | None = None  # while the transfer runs
        self._contiguous_index = 0
        self._failed = False
        self.bytes_fetched = 0  # over the network in this run (for logs and tests)
        self.most_streams = 1
        self._times: dict[str, float] = {}  # when the last byte arrived, the hash ended, the fsync ended

    # --- progress -----------------------------------------------------------------------------

    @property
    def completed(self) -> int:
        if self.units:
            return sum(unit.done for unit in self.units)
        return sum(part.completed for part in self.parts)

    # --- lifetime -----------------------------------------------------------------------------

    def start(self) -> None:
        threading.Thread(target=self.run, name=f"pull-{self.digest[7:19]}", daemon=True).start()

    def request_cancel(self) -> None:
        self.cancel.set()
        self._interrupt()

    def _interrupt(self) -> None:
        """Stop the workers now: set their flag and shut their sockets (a blocked recv returns)."""
        self._stop.set()
        with self._sockets_lock:
            for sock in list(self._sockets):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def run(self) -> None:
        try:
            self._run()
        except RegistryError as exc:
            self.error = exc
        except Exception as exc:  # noqa: BLE001 - reported to every waiter
            log.exception("download of %s failed", self.digest)
            self.error = RegistryError(str(exc) or type(exc).__name__)
        finally:
            if self.error is not None and self._locked and self._nothing_kept():
                self._remove_partial_files()  # no progress to keep: give the (reserved) space back
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            _forget(self)
            self.done.set()
            self.client.close()

    def _run(self) -> None:
        self.store.blobs.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.partial, os.O_RDWR | os.O_CREAT, 0o644)
        self._fd = fd
        self._lock_partial(fd)
        if self.path.exists():  # another process finished it while we waited for the lock
            self._remove_partial_files()
            self.total = self.path.stat().st_size
            self.prepared.set()
            return
        fresh = self._prepare()
        self.prepared.set()
        self._allocate(fd, fresh)
        if self.total == 0:
            self._finish(fd)
            return
        self._direct_url, self._direct_status = self.client.resolve_blob(self.url)
        log.info("downloading %s in %d %s part(s)", self.digest[7:19], len(self.parts),
                 f"{self.parts[0].size / 1e6:.0f} MB" if self.parts else "0 B")
        started = time.monotonic()
        try:
            self._transfer()
        finally:
            self._save_states()
        self._finish(fd)
        times = self._times
        log.info("%s: %d bytes fetched in %.2f s (at most %d stream(s)); the hash ended %.2f s later, the fsync "
                 "%.2f s later, visible %.2f s later", self.digest[7:19], self.bytes_fetched,
                 times["fetched"] - started, self.most_streams, times["hashed"] - times["fetched"],
                 times["synced"] - times["fetched"], time.monotonic() - times["fetched"])

    def _nothing_kept(self) -> bool:
        if self.units:
            return not any(unit.done for unit in self.units)
        return not any(part.completed for part in self.parts)

    def _lock_partial(self, fd: int) -> None:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._locked = True
                return
            except BlockingIOError:
                if self.cancel.wait(0.2):
                    raise Cancelled() from None

    # --- preparing ----------------------------------------------------------------------------

    def _prepare(self) -> bool:
        """Parts from state files, else from a HEAD; returns whether the download starts afresh."""
        parts = read_states(self.partial, self.size_hint or 0)
        if parts is not None:
            size = os.fstat(self._fd).st_size if self._fd is not None else 0
            for part in parts:  # data that is not there cannot have been completed
                if part.offset + part.completed > size:
                    part.completed = 0
            self.parts = parts
            self.total = sum(part.size for part in parts)
            self._extents = read_extents(self.partial, self.total) if size >= self.total else []
            self._saved_extents = list(self._extents)
            return False
        for stale in state_paths(self.partial):
            stale.unlink(missing_ok=True)
        extents_path(self.partial).unlink(missing_ok=True)
        try:
            response = self.client.request("HEAD", self.url)
            response.close()
            length = response.headers.get("content-length")
        except NotFound:
            raise
        except RegistryError as exc:
            if self.size_hint is None:
                raise
            log.info("HEAD of %s failed (%s); using the size in the manifest", self.digest[7:19], exc)
            length = None
        head_size = int(length) if length and length.isdigit() else None
        if self.size_hint and head_size is not None and head_size != self.size_hint:
            log.warning("%s: HEAD says %d bytes, the manifest %d; going by the manifest", self.digest[7:19],
                        head_size, self.size_hint)
        self.total = self.size_hint or head_size or 0
        self.parts = [Part(n=i, offset=offset, size=size) for i, (offset, size) in enumerate(part_plan(self.total))]
        for part in self.parts:
            write_state(self._state_path(part), part.state_bytes())
        return True

    def _state_path(self, part: Part) -> Path:
        return self.partial.with_name(f"{self.partial.name}-{part.n}")

    def _allocate(self, fd: int, fresh: bool) -> None:
        """Size the file to the blob, sparse, after checking that the filesystem has room for what is
        missing, so that a full disk fails at once. (Reserving the space with fallocate would also
        guard against other writers, but on tmpfs it zeroes every page before the download may start:
        0.45 s per GiB here, spent again by the writes.)"""
        size = os.fstat(fd).st_size
        if size != self.total:
            os.ftruncate(fd, self.total)
        if self.total == 0:
            return
        stat = os.fstatvfs(fd)
        allocated = os.fstat(fd).st_blocks * 512
        if stat.f_bavail * stat.f_frsize < self.total - min(allocated, self.total):
            if fresh:
                self._remove_partial_files()
            raise RegistryError(_go_os_error("write", self.partial, OSError(errno.ENOSPC, "")))

    def _remove_partial_files(self) -> None:
        for path in state_paths(self.partial):
            path.unlink(missing_ok=True)
        extents_path(self.partial).unlink(missing_ok=True)
        self.partial.unlink(missing_ok=True)

    # --- transferring -------------------------------------------------------------------------

    def _build_units(self) -> None:
        """Units covering the blob in order: finished ones (state prefix, saved extents) and missing ones."""
        self.units = []
        for part in self.parts:
            part.units = []
            stop = part.offset + part.size
            have = [(part.offset, part.offset + part.completed)] if part.completed else []
            for start, length in self._extents:
                first, last = max(start, part.offset + part.completed), min(start + length, stop)
                if first < last:
                    have.append((first, last))
            position = part.offset
            for first, last in sorted(have):
                if last <= position:
                    continue
                first = max(first, position)
                self._add_missing(part, position, first)
                part.units.append(Unit(first, last - first, last - first))
                position = last
            self._add_missing(part, position, stop)
            self.units.extend(part.units)
        self._next_unit = 0

    @staticmethod
    def _add_missing(part: Part, start: int, stop: int) -> None:
        while start < stop:
            part.units.append(Unit(start, min(UNIT_SIZE, stop - start)))
            start += UNIT_SIZE

    def _transfer(self) -> None:
        """Fetch the missing units while one thread hashes the data in order and another hands it to the
        disk, so that when the last byte arrives little is left to hash and little to fsync."""
        self._build_units()
        self._contiguous_index = 0
        self._hash = InOrderHash(self._fd, self.total, self._contiguous)  # type: ignore[arg-type]
        hasher = threading.Thread(target=self._hash.run, name=f"hash-{self.digest[7:19]}", daemon=True)
        hasher.start()
        flusher = threading.Thread(target=self._flush_loop, name=f"flush-{self.digest[7:19]}", daemon=True)
        flusher.start()
        try:
            sequential = self._direct_status == 200 and self.total > 1
            if not sequential:
                try:
                    self._parallel()
                except rangeget.RangeIgnored:
                    if self.cancel.is_set():
                        raise Cancelled() from None
                    sequential = True
                    self._stop = threading.Event()
                    self._worker_error = None
            if sequential:
                log.info("%s: the server ignores Range; fetching it as one stream", self.digest[7:19])
                self._sequential()
        except BaseException:
            self._failed = True
            self._hash.stop()
            raise
        finally:
            self._times["fetched"] = time.monotonic()
            self._fetched.set()
            hasher.join()
            self._times["hashed"] = time.monotonic()
            flusher.join()
            self._times.setdefault("synced", time.monotonic())

    def _parallel(self) -> None:
        most, fixed = stream_setting()
        most = max(1, min(most, sum(1 for unit in self.units if unit.remaining)))
        ramp = None if fixed else StreamRamp(most)
        self._wanted_streams = most if fixed else 1
        workers: list[threading.Thread] = []
        saved = time.monotonic()
        while True:
            self.most_streams = max(self.most_streams, self._wanted_streams)
            while len(workers) < self._wanted_streams:
                worker = threading.Thread(target=self._worker, args=(len(workers),),
                                          name=f"pull-{self.digest[7:19]}-{len(workers)}", daemon=True)
                worker.start()
                workers.append(worker)
            alive = [worker for worker in workers if worker.is_alive()]
            if not alive:
                break
            alive[0].join(RAMP_TICK if ramp and not ramp.settled else STATE_INTERVAL)
            now = time.monotonic()
            if now - saved >= STATE_INTERVAL:
                self._save_states()
                saved = now
            if ramp and not ramp.settled:
                self._wanted_streams = ramp.observe(now, self.bytes_fetched)
            if self._worker_error is not None:
                self._interrupt()
                for worker in workers:
                    worker.join()
                break
        if self.cancel.is_set():
            raise Cancelled()
        if self._worker_error is not None:
            raise self._worker_error

    def _claim(self, most: int) -> tuple[int, int] | None:
        """Take the lowest free unit and up to `most - 1` untouched free units right after it, for one GET;
        returns (first, last)."""
        with self._unit_lock:
            while self._next_unit < len(self.units) and not self.units[self._next_unit].remaining:
                self._next_unit += 1
            first = self._next_unit
            if first == len(self.units):
                return None
            last = first
            while (last - first + 1 < most and last + 1 < len(self.units)
                   and self.units[last + 1].done == 0):
                last += 1
            self._next_unit = last + 1
            return first, last

    def _worker(self, number: int) -> None:
        fetcher = rangeget.RangeFetcher(timeout=stall_timeout(), context=self.client.ssl, cancel=self._stop,
                                        register=self._register_socket)
        try:
            run_units = 1
            while not self._stop.is_set() and self._worker_error is None and number < self._wanted_streams:
                run = self._claim(run_units if self._wanted_streams == 1 else 1)
                if run is None:
                    return
                started = time.monotonic()
                fetched = self._fetch_run(fetcher, *run)
                # Alone, ask for about a probe interval's worth per GET at the rate just seen.
                rate = fetched / max(time.monotonic() - started, 1e-3)
                run_units = max(1, min(RUN_UNITS, int(rate * PROBE_INTERVAL / UNIT_SIZE)))
        except BaseException as exc:  # noqa: BLE001 - handed to the controller
            if self._worker_error is None:
                self._worker_error = exc
        finally:
            fetcher.close()

    def _register_socket(self, sock: socket.socket | None) -> None:
        me = threading.current_thread()
        with self._sockets_lock:
            old = getattr(me, "_pollama_socket", None)
            if old is not None:
                self._sockets.discard(old)
            if sock is not None:
                self._sockets.add(sock)
            me._pollama_socket = sock  # type: ignore[attr-defined]

    def _write(self, offset: int, data: memoryview) -> None:
        view = data
        try:
            while view:
                n = os.pwrite(self._fd, view, offset)  # type: ignore[arg-type]
                view, offset = view[n:], offset + n
        except OSError as exc:
            raise rangeget.SinkError(exc) from exc

    def _fetch_run(self, fetcher: rangeget.RangeFetcher, first: int, last: int) -> int:
        """Fetch units first..last, adjacent, with one GET (more when one is cut short or fails); returns
        the bytes received."""
        failures = fetched = 0
        index = first
        stop = self.units[last].start + self.units[last].size
        while index <= last:
            if self._stop.is_set():
                raise Cancelled()
            unit = self.units[index]
            if not unit.remaining:
                index += 1
                continue
            generation = self.client.generation
            sink = _RunSink(self, index)
            try:
                fetcher.fetch(self._direct_url, unit.start + unit.done, stop - 1, {}, sink, self.client.auth_headers)
                index, fetched = sink.index, fetched + sink.received
                if sink.received:
                    failures = 0
                    continue  # done, or a short read: the loop carries on from where it stopped
                error: Exception = RegistryError("unexpected EOF")
            except rangeget.Stalled:
                index, fetched = sink.index, fetched + sink.received
                log.info("%s part stalled; retrying. If this persists, press ctrl-c to exit, then "
                         "'ollama pull' to find a faster connection.", self.digest[7:19])
                continue
            except rangeget.CancelledFetch:
                raise Cancelled() from None
            except rangeget.SinkError as exc:
                raise RegistryError(_go_os_error("write", self.partial, exc.error)) from exc
            except rangeget.Unauthorized as exc:
                error = RegistryError("unauthorized: access denied")
                if self.client.same_origin(self._direct_url):
                    self.client.authenticate(exc.challenge, self._direct_url, generation)
            except rangeget.HTTPStatusError as exc:
                error = RegistryError(str(exc))
                if exc.status in (403, 404, 410) and not self.client.same_origin(self._direct_url):
                    self._reresolve()
            except RegistryError as exc:
                error = exc
            index, fetched = sink.index, fetched + sink.received
            if sink.received:
                failures = 0
            failures += 1
            if failures >= MAX_RETRIES:
                raise RegistryError(f"max retries exceeded: {error}")
            sleep = retry_delay() * 2 ** (failures - 1)
            log.info("%s attempt %d failed: %s, retrying in %.0fs", self.digest[7:19], failures - 1, error, sleep)
            if self._stop.wait(sleep):
                raise Cancelled()
        return fetched

    def _reresolve(self) -> None:
        """A presigned URL that expired: ask the registry again."""
        with self._unit_lock:
            try:
                self._direct_url, self._direct_status = self.client.resolve_blob(self.url)
            except RegistryError as exc:
                log.info("could not resolve %s again: %s", self.digest[7:19], exc)

    def _sequential(self) -> None:
        """The whole blob as one stream; a failure starts it over (without Range there is no resuming)."""
        fetcher = rangeget.RangeFetcher(timeout=stall_timeout(), context=self.client.ssl, cancel=self._stop,
                                        register=self._register_socket)
        failures = 0
        try:
            while True:
                if self._stop.is_set():
                    raise Cancelled()
                for unit in self.units:
                    unit.done = 0
                self._hash.restart()
                sink = _RunSink(self, 0)
                try:
                    fetcher.fetch(self._direct_url, 0, self.total - 1, {}, sink, self.client.auth_headers)
                    if all(unit.remaining == 0 for unit in self.units):
                        return
                    error: Exception = RegistryError("unexpected EOF")
                except rangeget.Stalled:
                    continue
                except rangeget.CancelledFetch:
                    raise Cancelled() from None
                except rangeget.SinkError as exc:
                    raise RegistryError(_go_os_error("write", self.partial, exc.error)) from exc
                except rangeget.Unauthorized as exc:
                    error = RegistryError("unauthorized: access denied")
                    if self.client.same_origin(self._direct_url):
                        self.client.authenticate(exc.challenge, self._direct_url, None)
                except (rangeget.HTTPStatusError, RegistryError) as exc:
                    error = exc
                failures += 1
                if failures >= MAX_RETRIES:
                    raise RegistryError(f"max retries exceeded: {error}")
                if self._stop.wait(retry_delay() * 2 ** (failures - 1)):
                    raise Cancelled()
        finally:
            fetcher.close()

    # --- hashing and state --------------------------------------------------------------------

    def _contiguous(self) -> int:
        """Where the bytes written contiguously from the start end."""
        units, index = self.units, self._contiguous_index
        while index < len(units) and units[index].remaining == 0:
            index += 1
        self._contiguous_index = index
        return self.total if index == len(units) else units[index].start + units[index].done

    def _flush_loop(self) -> None:
        """Start writeback of each unit once it is whole; fsync when everything is written. Runs beside the
        fetch and the hash (fsync does not depend on the digest: a bad blob is deleted all the same)."""
        started: set[int] = set()
        while True:
            fetched = self._fetched.wait(FLUSH_INTERVAL)
            for index, unit in enumerate(self.units):
                if index not in started and unit.size and unit.remaining == 0:
                    started.add(index)
                    start_writeback(self._fd, unit.start, unit.size)  # type: ignore[arg-type]
            if fetched:
                if self._worker_error is None and not self._stop.is_set() and not self._failed:
                    os.fdatasync(self._fd)  # type: ignore[arg-type]
                    self._synced = True
                    self._times["synced"] = time.monotonic()
                return

    def _save_states(self) -> None:
        if not self.units:
            return
        extents: list[tuple[int, int]] = []
        for part in self.parts:
            completed = part.live_completed()
            beyond = part.offset + completed
            extents.extend((unit.start, unit.done) for unit in part.units if unit.done and unit.start >= beyond)
            if completed != part.completed:
                part.completed = completed
                try:
                    write_state(self._state_path(part), part.state_bytes())
                except OSError as exc:
                    log.warning("could not save download state %s: %s", self._state_path(part), exc)
        if extents != self._saved_extents:
            self._saved_extents = extents
            try:
                inode = os.fstat(self._fd).st_ino  # type: ignore[arg-type]
                write_state(extents_path(self.partial), json.dumps(
                    {"inode": inode, "total": self.total, "extents": [list(e) for e in extents]}).encode())
            except OSError as exc:
                log.warning("could not save download extents for %s: %s", self.partial.name, exc)

    # --- finishing ----------------------------------------------------------------------------

    def _finish(self, fd: int) -> None:
        actual = "sha256:" + hashlib.sha256().hexdigest() if self.total == 0 else self._hash.result
        if actual is None:
            raise RegistryError("download ended before its data was hashed")
        if actual != self.digest:
            log.warning("%s: digest mismatch, got %s; deleting the download", self.digest, actual)
            self.actual_digest = actual
            self._remove_partial_files()
            return
        if not self._synced:
            os.fdatasync(fd)
        for path in state_paths(self.partial):
            path.unlink(missing_ok=True)
        extents_path(self.partial).unlink(missing_ok=True)
        os.chmod(self.partial, 0o644)
        os.replace(self.partial, self.path)
        fsync_directory(self.path.parent)


class _RunSink:
    """Writes one response into the adjacent units of a run, from `index` on, and offers each received
    buffer to the hash."""

    def __init__(self, download: BlobDownload, index: int) -> None:
        self.download = download
        self.index = index
        self.received = 0

    def __call__(self, offset: int, data: memoryview) -> bytearray | None:
        download = self.download
        start, received = offset, data
        while data:
            unit = download.units[self.index]
            if not unit.remaining:
                self.index += 1
                unit = download.units[self.index]
            piece = data[:unit.remaining]
            download._write(offset, piece)
            unit.done += len(piece)
            self.received += len(piece)
            download.bytes_fetched += len(piece)
            TRANSFERS.add_pulled(len(piece))
            offset += len(piece)
            data = data[len(piece):]
        spare = download._hash.offer(start, received)
        if spare is None:
            download._hash.wake()
        return spare


# --- downloads shared between pulls ---------------------------------------------------------------

_downloads: dict[str, BlobDownload] = {}
_downloads_lock = threading.Lock()


def join_download(store: ModelStore, digest: str, client: RegistryClient, url: str,
                  size_hint: int | None = None) -> BlobDownload:
    """The running download of this blob in this store, or a new one; call `release` when done."""
    key = str(store.blobs.path(digest))
    with _downloads_lock:
        download = _downloads.get(key)
        if download is None:
            download = BlobDownload(store, digest, client, url, size_hint)
            _downloads[key] = download
            download.start()
        download.references += 1
        return download


def release(download: BlobDownload) -> None:
    """A waiter leaves; the last one out cancels an unfinished download (its state stays on disk)."""
    with _downloads_lock:
        download.references -= 1
        if download.references > 0 or download.done.is_set():
            return
        if _downloads.get(str(download.path)) is download:
            del _downloads[str(download.path)]
    download.request_cancel()


def _forget(download: BlobDownload) -> None:
    with _downloads_lock:
        if _downloads.get(str(download.path)) is download:
            del _downloads[str(download.path)]


def wait_all(timeout: float = 5.0) -> None:
    """For tests: wait until no download is running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _downloads_lock:
            if not _downloads:
                return
        time.sleep(0.02)
