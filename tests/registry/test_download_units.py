"""The pieces of a download that need no network: how many streams it wants, and the in-order hash."""

from __future__ import annotations

import hashlib
import os
import random
import threading
from pathlib import Path

import pytest

from registry.download import PROBE_INTERVAL, StreamRamp, stream_setting
from registry.inorder import POOL, InOrderHash
from registry.rangeget import BUFFER_SIZE

# --- StreamRamp -----------------------------------------------------------------------------------


def test_streams_double_while_each_doubling_pays() -> None:
    ramp = StreamRamp(8)
    assert [ramp.update(rate) for rate in (10, 20, 40, 80)] == [2, 4, 8, 8]
    assert ramp.settled and ramp.update(1) == 8


def test_a_doubling_that_does_not_pay_goes_back_and_stays() -> None:
    ramp = StreamRamp(8)
    assert [ramp.update(rate) for rate in (100, 110)] == [2, 1]
    assert ramp.settled and ramp.update(1000) == 1
    ramp = StreamRamp(8)
    assert [ramp.update(rate) for rate in (10, 20, 24)] == [2, 4, 2]  # 4 streams gave 20%, not 25%
    assert ramp.settled


def test_the_ramp_stops_at_its_most_and_one_means_one() -> None:
    ramp = StreamRamp(3)
    assert [ramp.update(rate) for rate in (10, 20, 40)] == [2, 3, 3]
    assert StreamRamp(1).settled and StreamRamp(1).update(5) == 1


def test_windows_start_with_the_first_bytes() -> None:
    ramp = StreamRamp(8)
    assert ramp.observe(0.0, 0) == 1 and ramp.observe(5.0, 0) == 1  # connecting: nothing measured
    assert ramp.observe(5.1, 1_000) == 1  # the first bytes open the first window
    assert ramp.observe(5.1 + PROBE_INTERVAL / 2, 2_000) == 1  # not a whole window yet
    assert ramp.observe(5.1 + PROBE_INTERVAL, 11_000) == 2  # 10 kB in a window: the baseline
    assert ramp.observe(5.1 + 2 * PROBE_INTERVAL, 21_000) == 1  # 2 streams fetched no more


def test_the_setting_fixes_the_count_and_its_absence_adapts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POLLAMA_DOWNLOAD_STREAMS", raising=False)
    assert stream_setting() == (8, False)
    monkeypatch.setenv("POLLAMA_DOWNLOAD_STREAMS", "3")
    assert stream_setting() == (3, True)
    monkeypatch.setenv("POLLAMA_DOWNLOAD_STREAMS", "0")
    assert stream_setting() == (1, True)


# --- InOrderHash ----------------------------------------------------------------------------------


class Filler:
    """Writes `data` into a file in 1 MiB receive buffers from several threads, out of order, offering
    each buffer to the hash as a download's streams do; `contiguous()` is what the hash may read."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.data = data
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(self.fd, len(data))
        self.written = [False] * -(-len(data) // BUFFER_SIZE)
        self.lock = threading.Lock()
        self.kept = 0

    def contiguous(self) -> int:
        with self.lock:
            index = next((i for i, done in enumerate(self.written) if not done), len(self.written))
        return min(index * BUFFER_SIZE, len(self.data))

    def fill(self, hasher: InOrderHash, order: list[int]) -> None:
        buffer = bytearray(BUFFER_SIZE)
        for index in order:
            chunk = self.data[index * BUFFER_SIZE:(index + 1) * BUFFER_SIZE]
            buffer[:len(chunk)] = chunk
            os.pwrite(self.fd, memoryview(buffer)[:len(chunk)], index * BUFFER_SIZE)
            with self.lock:
                self.written[index] = True
            spare = hasher.offer(index * BUFFER_SIZE, memoryview(buffer)[:len(chunk)])
            if spare is None:
                hasher.wake()
            else:
                assert spare is not buffer and len(spare) == BUFFER_SIZE
                buffer = spare  # the hash owns the old one now
                with self.lock:
                    self.kept += 1


def run_hash(tmp_path: Path, data: bytes, orders: list[list[int]]) -> tuple[str | None, int]:
    filler = Filler(tmp_path / "blob", data)
    hasher = InOrderHash(filler.fd, len(data), filler.contiguous)
    thread = threading.Thread(target=hasher.run)
    thread.start()
    writers = [threading.Thread(target=filler.fill, args=(hasher, order)) for order in orders]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    thread.join(30)
    os.close(filler.fd)
    return hasher.result, filler.kept


def test_in_order_data_is_hashed_from_the_buffers_handed_over(tmp_path: Path) -> None:
    data = random.Random(1).randbytes(40 * BUFFER_SIZE + 12345)
    result, kept = run_hash(tmp_path, data, [list(range(41))])
    assert result == "sha256:" + hashlib.sha256(data).hexdigest()
    assert kept > 0


def test_out_of_order_streams_give_the_same_digest(tmp_path: Path) -> None:
    data = random.Random(2).randbytes(3 * POOL * BUFFER_SIZE + 7)
    pieces = list(range(3 * POOL + 1))
    # Four streams, each with a stretch of its own (as ranged GETs), and one that goes backwards.
    orders = [pieces[0:12], pieces[12:24][::-1], pieces[24:40], pieces[40:]]
    result, _ = run_hash(tmp_path, data, orders)
    assert result == "sha256:" + hashlib.sha256(data).hexdigest()


def test_offers_it_cannot_use_are_declined(tmp_path: Path) -> None:
    hasher = InOrderHash(-1, 100 * BUFFER_SIZE, lambda: 0)
    assert hasher.offer(0, memoryview(b"x" * 10)) is None  # not a receive buffer
    assert hasher.offer(0, memoryview(bytearray(10))) is None  # not one of BUFFER_SIZE
    assert hasher.offer(POOL * BUFFER_SIZE, memoryview(bytearray(BUFFER_SIZE))) is None  # too far ahead
    taken = [hasher.offer(i * BUFFER_SIZE, memoryview(bytearray(BUFFER_SIZE))) for i in range(POOL)]
    assert all(isinstance(spare, bytearray) for spare in taken)
    assert hasher.offer(0, memoryview(bytearray(BUFFER_SIZE))) is None  # it holds POOL buffers already


def test_a_restart_hashes_the_rewritten_file_from_the_start(tmp_path: Path) -> None:
    data = random.Random(3).randbytes(5 * BUFFER_SIZE)
    filler = Filler(tmp_path / "blob", b"\0" * len(data))
    hasher = InOrderHash(filler.fd, len(data), filler.contiguous)
    filler.fill(hasher, [0, 1])  # zeros, not what the blob holds
    thread = threading.Thread(target=hasher.run)
    thread.start()
    while hasher.position < 2 * BUFFER_SIZE:
        threading.Event().wait(0.01)
    with filler.lock:
        filler.written = [False] * len(filler.written)
    hasher.restart()
    filler.data = data
    filler.fill(hasher, list(range(5)))
    thread.join(30)
    os.close(filler.fd)
    assert hasher.result == "sha256:" + hashlib.sha256(data).hexdigest()
