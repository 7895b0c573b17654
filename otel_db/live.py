"""Live inputs: a pipe or terminal that delivers lines as they are written (`tail -F x | otel-db ingest -`).

Reading a pipe waits until its writer writes, and a COPY loop waiting in a
read cannot commit what it already has. So a live input is read on a
background thread, ahead of the loader, into a queue bounded in bytes; the
loader takes items with a timeout and gets `IDLE` when none came, which is
its chance to commit on time. A regular file is not live: its reads never
wait, so it is read where it is used.
"""

from __future__ import annotations

import os
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Generic, Self, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Idle:
    """In a stream of items: nothing arrived for a while."""


IDLE = Idle()


def is_live(stream: IO[bytes]) -> bool:
    """Whether reads of `stream` wait for a writer: a pipe, FIFO, terminal or socket."""
    return not stat.S_ISREG(os.fstat(stream.fileno()).st_mode)


class ReadAhead(Generic[T]):
    """Iterate `items` on a background thread; iterating this gives them, or IDLE after `idle_seconds` without one.

    Entering the `with` block starts the reader, leaving it stops the
    reader. At most `max_bytes` (as measured by `size`) wait in the queue,
    or one item when it alone is larger, and the consumer takes the whole
    queue at once (one lock round trip per batch, not per line): a slow
    consumer makes the reader wait, and then the writer of the pipe, so
    memory stays within about twice `max_bytes`. An exception of the reader
    is raised in the consumer. A reader blocked in a read stays blocked
    until its input gives data or ends, which is why it is a daemon thread
    and must read with `os.read` (see `otel_db.lines.read_chunks`), never
    inside a locked file object.
    """

    def __init__(self, items: Iterable[T], *, size: Callable[[T], int], max_bytes: int, idle_seconds: float) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._idle_seconds = idle_seconds
        self._queue: deque[T] = deque()
        self._queued_bytes = 0
        self._ended = False
        self._closed = False
        self._error: Exception | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(items,), name="otel-db read-ahead", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __iter__(self) -> Iterator[T | Idle]:
        while True:
            with self._changed:
                if not self._changed.wait_for(lambda: bool(self._queue) or self._ended, timeout=self._idle_seconds):
                    batch: list[T | Idle] = [IDLE]
                elif self._queue:
                    batch = list(self._queue)
                    self._queue.clear()
                    self._queued_bytes = 0
                    self._changed.notify_all()
                elif self._error is not None:
                    raise self._error
                else:
                    return
            yield from batch

    def _read(self, items: Iterable[T]) -> None:
        try:
            for item in items:
                size = self._size(item)
                with self._changed:
                    while not self._closed and self._queue and self._queued_bytes + size > self._max_bytes:
                        self._changed.wait()
                    if self._closed:
                        return
                    self._queue.append(item)
                    self._queued_bytes += size
                    self._changed.notify_all()
        except Exception as exc:
            with self._changed:
                self._error = exc
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()


@contextmanager
def read_ahead_if_live(
    stream: IO[bytes], items: Iterable[T], *, size: Callable[[T], int], max_bytes: int, idle_seconds: float
) -> Iterator[Iterable[T | Idle]]:
    """`items` read from `stream`: through a `ReadAhead` when the stream is live, as they are otherwise."""
    if not is_live(stream):
        yield items
        return
    with ReadAhead(items, size=size, max_bytes=max_bytes, idle_seconds=idle_seconds) as ahead:
        yield ahead
