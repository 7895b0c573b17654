"""The exporters' spool: export requests the database did not take yet, on disk, bounded.

A spool is a directory per kind of telemetry (`spans`, `logs`, `metrics`)
under the spool root, so that the three exporters can share one
OTEL_STORAGE_SPOOL_DIR. Each holds one file per batch: its OTLP/JSON export
request as one line, so that `otel-db ingest` could read the files too. A
file is written under a temporary name and renamed when complete, so a crash
never leaves half a batch. Names sort in arrival order: a sequence number
that follows the wall clock (nanoseconds) but never goes backwards, then the
number of items in the batch. A new file is made durable (the file and its
directory fsynced); a deletion is not: after a power loss a batch that was
stored may come back and be replayed again.

One process at a time works in a directory, which it holds with an exclusive
`flock`: two replaying the same files would store them twice. A kind's
directory therefore has slots, `spans/0`, `spans/1`, …: a process takes the
first free one, and also adopts the batches of the slots no live process
holds, so what a previous run (or a pre-fork worker that is gone) left
behind is replayed by the next one.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# A kind's directory holds at most this many slots, i.e. processes spooling at once.
MAX_SLOTS = 64

_LOCK_FILE = ".lock"
_BATCH_NAME = re.compile(r"(\d{20})-(\d+)\.jsonl")
_TEMPORARY_SUFFIX = ".tmp"


class SpoolUnavailable(Exception):
    """The spool cannot be used: no free slot, or it was closed."""


class BatchTooLarge(Exception):
    """A batch larger than the spool's cap (less what is being sent): it cannot be kept."""


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    name: str
    items: int
    size: int


class Spool:
    """The batches of one slot, oldest first; thread-safe.

    A batch that the exporter is sending (`take_oldest`, or `append(taken=True)`)
    stays in the spool until it is removed after its COPY committed, or
    released after it failed; the cap never evicts it meanwhile, and
    `take_oldest` does not hand it out again.
    """

    def __init__(self, directory: Path, max_bytes: int, lock_fd: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock_fd: int | None = lock_fd
        self._lock = threading.Lock()
        self._batches: deque[SpooledBatch] = deque()
        self._bytes = 0
        self._taken: set[SpooledBatch] = set()
        self._taken_bytes = 0
        self._last_sequence = 0
        self._load()

    @classmethod
    def claim(cls, root: str | os.PathLike[str], kind: str, max_bytes: int) -> Spool:
        """Take the first free slot of `root/kind` and adopt the batches of the abandoned ones."""
        if max_bytes < 1:
            raise ValueError(f"the spool's cap must be at least 1 byte, got {max_bytes}")
        base = Path(root) / kind
        base.mkdir(parents=True, exist_ok=True)
        for slot in range(MAX_SLOTS):
            directory = base / str(slot)
            directory.mkdir(exist_ok=True)
            lock_fd = _try_lock(directory)
            if lock_fd is not None:
                try:
                    _adopt_abandoned_slots(base, directory)
                    return cls(directory, max_bytes, lock_fd)
                except BaseException:
                    os.close(lock_fd)
                    raise
        raise SpoolUnavailable(f"all {MAX_SLOTS} slots of {base} are held by running processes")

    def __len__(self) -> int:
        with self._lock:
            return len(self._batches)

    @property
    def closed(self) -> bool:
        return self._lock_fd is None

    def append(self, data: bytes, items: int, *, taken: bool = False) -> tuple[SpooledBatch, list[SpooledBatch]]:
        """Keep one batch; returns it and the oldest batches evicted to stay under the cap.

        `taken`: the batch is being sent already, as if `take_oldest` had
        handed it out; the caller releases or removes it.
        """
        line = data + b"\n"
        if len(line) > self.max_bytes:
            raise BatchTooLarge(f"a batch of {len(line)} bytes does not fit a spool of {self.max_bytes}")
        temporary = self.directory / f".{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}{_TEMPORARY_SUFFIX}"
        try:
            with open(temporary, "wb") as file:
                file.write(line)
                file.flush()
                os.fsync(file.fileno())
            with self._lock:
                if self.closed:
                    raise SpoolUnavailable(f"the spool {self.directory} is closed")
                if self._taken_bytes + len(line) > self.max_bytes:
                    raise BatchTooLarge(f"no room for a batch of {len(line)} bytes while the spool sends the rest")
                self._last_sequence = max(self._last_sequence + 1, time.time_ns())
                batch = SpooledBatch(_batch_name(self._last_sequence, items), items, len(line))
                os.rename(temporary, self.directory / batch.name)  # first: nothing is evicted if it fails
                self._batches.append(batch)
                self._bytes += batch.size
                if taken:
                    self._take(batch)
                evicted = self._evict()
        finally:
            temporary.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the batch is kept all the same: only a power loss could lose it now
            _fsync_directory(self.directory)
        return batch, evicted

    def take_oldest(self) -> SpooledBatch | None:
        """The oldest batch not being sent already, now marked as being sent."""
        with self._lock:
            for batch in self._batches:
                if batch not in self._taken:
                    self._take(batch)
                    return batch
            return None

    def read(self, batch: SpooledBatch) -> bytes:
        return (self.directory / batch.name).read_bytes().removesuffix(b"\n")

    def remove(self, batch: SpooledBatch) -> None:
        """Forget a batch that is stored now (or cannot be read)."""
        with self._lock:
            self._release(batch)
            if batch in self._batches:
                self._batches.remove(batch)
                self._bytes -= batch.size
                (self.directory / batch.name).unlink(missing_ok=True)

    def release(self, batch: SpooledBatch) -> None:
        """A batch that could not be sent stays, in its place."""
        with self._lock:
            self._release(batch)

    def close(self) -> None:
        """Let go of the slot; the files stay for the next process.

        Only closes the descriptor: in a forked child that releases nothing
        of the parent's lock, which the parent's descriptor still holds.
        """
        with self._lock:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def close_after_fork(self) -> None:
        """In a forked child: close the inherited descriptor, whatever the parent's threads held at the fork."""
        self._lock = threading.Lock()
        self.close()

    def _take(self, batch: SpooledBatch) -> None:
        self._taken.add(batch)
        self._taken_bytes += batch.size

    def _release(self, batch: SpooledBatch) -> None:
        if batch in self._taken:
            self._taken.remove(batch)
            self._taken_bytes -= batch.size

    def _evict(self) -> list[SpooledBatch]:
        """Drop the oldest batches not being sent until the spool is under its cap."""
        evicted = []
        for batch in list(self._batches):
            if self._bytes <= self.max_bytes:
                break
            if batch in self._taken:
                continue
            self._batches.remove(batch)
            self._bytes -= batch.size
            (self.directory / batch.name).unlink(missing_ok=True)
            evicted.append(batch)
        return evicted

    def _load(self) -> None:
        found = []
        for path, sequence, items in _batch_files(self.directory):
            found.append(SpooledBatch(path.name, items, path.stat().st_size))
            self._last_sequence = max(self._last_sequence, sequence)
        found.sort(key=lambda batch: batch.name)
        self._batches.extend(found)
        self._bytes = sum(batch.size for batch in found)


def _batch_name(sequence: int, items: int) -> str:
    return f"{sequence:020d}-{items}.jsonl"


def _batch_files(directory: Path) -> Iterator[tuple[Path, int, int]]:
    """The batches in a slot (path, sequence number, items); deletes the writes a crash interrupted."""
    for path in directory.iterdir():
        if path.name.endswith(_TEMPORARY_SUFFIX):
            path.unlink(missing_ok=True)
        elif match := _BATCH_NAME.fullmatch(path.name):
            yield path, int(match[1]), int(match[2])


def _try_lock(directory: Path) -> int | None:
    """An open descriptor holding the slot's exclusive lock, or None when a live process holds it."""
    import fcntl  # POSIX only: without a spool the exporters need no fcntl

    fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _adopt_abandoned_slots(base: Path, own: Path) -> None:
    """Move the batches of every slot no process holds into `own`; their names keep the order.

    Holding the locks of both slots, nobody else writes to either, so a name
    that `own` has already (two processes' batches may share one) can be
    checked and a free one taken: a batch is never overwritten.
    """
    for directory in base.iterdir():
        if directory == own or not directory.is_dir() or not directory.name.isdigit():
            continue
        lock_fd = _try_lock(directory)
        if lock_fd is None:
            continue
        try:
            for path, sequence, items in list(_batch_files(directory)):
                while (target := own / _batch_name(sequence, items)).exists():
                    sequence += 1
                os.rename(path, target)
        finally:
            os.close(lock_fd)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in the directory survive a power loss too."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
