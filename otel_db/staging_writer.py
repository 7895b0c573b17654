r"""Group commit of received OTLP requests into the staging tables, with bounded memory.

A receiver acknowledges a request only once its line is committed, and a
COPY plus a COMMIT per request would cap a server at a few hundred requests a
second. So requests queue here, and a few writer tasks, each with its own
connection, take what is queued (at most `batch_bytes`), COPY it in one
transaction, commit, and only then resolve each request's future. A writer
takes what is queued at once when no other is committing, so that a
request never waits for a window on an idle server; while another writer
commits, it lets a burst gather for a short window first. Under load the
requests that arrive during one commit make the next batch. A failed batch fails every request in
it; the receivers answer 503 / UNAVAILABLE and the clients send again.

The framing, the screening and the dead-lettering of lines PostgreSQL cannot
store are `otel_db.ingest`'s (`otlp_copy_steps`), so a request is staged
byte for byte as `otel-db ingest` would stage it, or is in the dead-letter
queue, in the same transaction as the rest of its batch.

Memory is bounded by admission rather than by a queue size: the bytes of the
lines queued or being written (in flight) may not pass `max_inflight`, and
while the staging table holds more than `max_backlog` bytes (the flush is not
keeping up) nothing more is taken. Refusing early is what lets a client back
off instead of timing out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from otel_db.client import connect_params
from otel_db.ingest import (
    DEAD_LETTER_SQL,
    OTLP_COPY_SQL,
    CopyEnd,
    IngestReport,
    check_encoding,
    dead_letter_rows,
    otlp_copy_steps,
)
from otel_db.settings import libpq_dsn
from otel_db.typed_spans import TYPED_SPANS_COPY_SQL

log = logging.getLogger(__name__)

SOURCE = "otel-db serve"
DEFAULT_WRITERS = 2
DEFAULT_WINDOW = 0.02  # seconds the oldest queued request waits for others to join its batch
DEFAULT_BATCH_BYTES = 4 * 2**20
# A COPY blocked longer than this (a lock held by hand, say) fails its batch
# rather than holding every request in it until the clients give up.
STATEMENT_TIMEOUT = "30s"

# What the writer reports per batch: requests, seconds, committed or not.
BatchObserver = Callable[[int, float, bool], None]


# How long a refused client should wait before it sends again (Retry-After, gRPC RetryInfo), by reason.
RETRY_AFTER_SECONDS = {"overloaded": 1, "stopping": 1, "database": 2, "backlog": 5}


class Unavailable(Exception):
    """The request was not stored and may be sent again: HTTP 503, gRPC UNAVAILABLE.

    `reason` names the cause for the metrics: overloaded, backlog, database, stopping.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = RETRY_AFTER_SECONDS[reason]


@dataclass(eq=False, slots=True)
class _Queued:
    line: bytes
    typed: bool  # rows of otel.traces_staging rather than an OTLP/JSON line
    arrived: float
    stored: asyncio.Future[str | None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class StagingWriter:
    """Admission and group commit; `stage(line)` returns once the line is committed.

    `stage` resolves to None, or to the reason its line was dead-lettered
    instead of staged. `backlog_bytes` is fed by whoever watches the staging
    table (at most once a second is plenty); `close()` stops admitting,
    commits everything queued, and closes the connections.
    """

    def __init__(
        self,
        dsn: str,
        *,
        max_inflight: int,
        max_backlog: int | None = None,
        writers: int = DEFAULT_WRITERS,
        window: float = DEFAULT_WINDOW,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        observe: BatchObserver | None = None,
    ) -> None:
        self.dsn = dsn
        self.max_inflight = max_inflight
        self.max_backlog = max_backlog
        self.window = window
        self.batch_bytes = batch_bytes
        self.backlog_bytes = 0
        self.inflight_bytes = 0
        self._observe = observe
        self._writers = writers
        self._queue: deque[_Queued] = deque()
        self._queued_bytes = 0
        self._arrived = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._committing = 0  # writers between taking a batch and settling it
        self._room = asyncio.Event()  # set whenever bytes in flight are given back
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        """Connect every writer now, so that a wrong DSN or a missing schema fails the start."""
        connections: list[psycopg.AsyncConnection] = []
        try:
            for _ in range(self._writers):
                connections.append(await self._connect())
            await connections[0].execute("select 'otel.otlp_staging'::regclass")  # fails when not migrated
        except BaseException:
            for conn in connections:
                await conn.close()
            raise
        self._tasks = [
            asyncio.create_task(self._write(conn), name=f"staging writer {i}") for i, conn in enumerate(connections)
        ]

    def take(self, size: int, *, held: int = 0) -> None:
        """Count `size` more bytes in flight, or raise Unavailable (stopping, behind, or no room for them).

        Bytes taken this way (a request body being read and decoded) are
        given back with `give_back`; a staged line's are given back when its
        batch is settled. `held`: bytes the caller has in flight already (a
        body growing as it is inflated). Bytes larger than `max_inflight`
        on their own are taken when nothing else is in flight, so that they
        are not refused for ever.
        """
        others = self.inflight_bytes - held
        if self._closing:
            raise Unavailable("stopping", "the server is stopping")
        if self.max_backlog and self.backlog_bytes > self.max_backlog:
            raise Unavailable(
                "backlog",
                f"the staging tables hold {self.backlog_bytes} bytes waiting for otel.flush()"
                f" (limit {self.max_backlog})",
            )
        if others and self.inflight_bytes + size > self.max_inflight:
            raise Unavailable(
                "overloaded",
                f"{self.inflight_bytes} bytes of requests are being stored; {size} more would pass the limit"
                f" of {self.max_inflight}",
            )
        self.inflight_bytes += size

    def give_back(self, size: int) -> None:
        self.inflight_bytes -= size
        self._room.set()

    async def take_when_room(self, size: int, patience: float) -> None:
        """`take`, waiting up to `patience` seconds while the bytes in flight leave no room for `size` more.

        For a request whose bytes are in memory already (gRPC hands over
        whole messages): refusing it would only make its client send all of
        it again a second later.
        """
        deadline = time.monotonic() + patience
        while True:
            try:
                self.take(size)
                return
            except Unavailable as exc:
                if exc.reason != "overloaded" or time.monotonic() >= deadline:
                    raise
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline - time.monotonic()):
                    await self._room.wait()

    async def stage(self, line: bytes, *, typed: bool = False) -> str | None:
        """Queue the line and wait until it is committed; raises Unavailable when it was not taken or not stored.

        `typed`: the "line" is rows of otel.traces_staging in COPY text format.
        The line's bytes are counted in flight but never refused for lack of
        room: its request was admitted with its body's bytes counted
        (`take`), and refusing the line would make the requests waiting for
        room take that room, decode, and be refused in turn, for ever.
        """
        if self._closing:
            raise Unavailable("stopping", "the server is stopping")
        self.inflight_bytes += len(line)
        queued = _Queued(line, typed, time.monotonic())
        self._queue.append(queued)
        self._queued_bytes += len(line)
        self._arrived.set()
        if self._queued_bytes >= self.batch_bytes:
            self._batch_full.set()
        # Shielded: a client that goes away does not take its line out of a batch being written.
        return await asyncio.shield(queued.stored)

    async def close(self) -> None:
        """Take no more requests; return when everything queued is committed (or failed) and the connections closed."""
        self._closing = True
        self._arrived.set()
        self._batch_full.set()
        await asyncio.gather(*self._tasks)

    # ------------------------------------------------------------------ the writer tasks

    async def _connect(self) -> psycopg.AsyncConnection:
        conn = await psycopg.AsyncConnection.connect(**connection_params(self.dsn, "staging"))
        check_encoding(conn)
        await conn.execute("select set_config('statement_timeout', %s, false)", [STATEMENT_TIMEOUT])
        return conn

    async def _write(self, conn: psycopg.AsyncConnection | None) -> None:
        try:
            while (batch := await self._next_batch()) is not None:
                self._committing += 1
                try:
                    conn = await self._commit(conn, batch)
                finally:
                    self._committing -= 1
        finally:
            if conn is not None:
                await conn.close()

    async def _next_batch(self) -> list[_Queued] | None:
        """The next batch to write, None when closing with nothing left; another writer may take the lines first."""
        while not (batch := await self._gather()):
            if self._closing:
                return None
        return batch

    async def _gather(self) -> list[_Queued]:
        """Up to batch_bytes of what is queued: at once when no writer commits, else after `window` or a full batch."""
        while not self._queue:
            if self._closing:
                return []
            self._arrived.clear()
            await self._arrived.wait()
        linger = self._queue[0].arrived + self.window - time.monotonic()
        if self._committing and linger > 0 and self._queued_bytes < self.batch_bytes and not self._closing:
            self._batch_full.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(linger):
                    await self._batch_full.wait()
        batch: list[_Queued] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].line) <= self.batch_bytes):
            queued = self._queue.popleft()
            batch.append(queued)
            size += len(queued.line)
        self._queued_bytes -= size
        return batch

    async def _commit(
        self, conn: psycopg.AsyncConnection | None, batch: list[_Queued]
    ) -> psycopg.AsyncConnection | None:
        """COPY the batch in one transaction and settle every request of it; the connection to use next time."""
        size = sum(len(q.line) for q in batch)
        started = time.monotonic()
        try:
            if conn is None or conn.closed or conn.broken:
                conn = await self._connect()
            dead = await _copy(conn, batch)
        except Exception as exc:  # whatever it is, every request waiting on the batch gets its answer
            log.warning("staging %d requests failed: %s", len(batch), one_line(exc), exc_info=not _expected(exc))
            failure = Unavailable("database", f"the database did not store the request: {one_line(exc)}")
            for queued in batch:
                queued.stored.set_exception(failure)
            if conn is not None and (conn.closed or conn.broken):
                conn = None
            committed = False
        else:
            for index, queued in enumerate(batch):
                queued.stored.set_result(dead.get(index))
            committed = True
        self.give_back(size)
        if self._observe is not None:
            self._observe(len(batch), time.monotonic() - started, committed)
        return conn


async def _copy(conn: psycopg.AsyncConnection, batch: list[_Queued]) -> dict[int, str]:
    """COPY the batch in one transaction; the reasons of the lines dead-lettered instead, by index in the batch.

    Typed span rows go in one COPY; the OTLP/JSON lines through the loop of
    `AsyncClient.copy_otlp`, with no commit point inside the batch: a batch
    is stored whole or not at all.
    """
    typed = [queued.line for queued in batch if queued.typed]
    lines = [(index, queued.line) for index, queued in enumerate(batch) if not queued.typed]
    steps = otlp_copy_steps(
        [line for _, line in lines], IngestReport(source=SOURCE), commit_bytes=sys.maxsize, commit_seconds=math.inf
    )
    dead: dict[int, str] = {}
    async with conn.transaction():
        if typed:
            async with conn.cursor() as cur, cur.copy(TYPED_SPANS_COPY_SQL) as copy:
                for rows in typed:
                    await copy.write(rows)
        if not lines:
            return dead
        end: CopyEnd | None = None
        while end is None or not end.done:
            async with conn.cursor() as cur:
                async with cur.copy(OTLP_COPY_SQL) as copy:
                    step = next(steps)
                    while isinstance(step, bytes):
                        await copy.write(step)
                        step = next(steps)
                end = step
                if end.dead:
                    await cur.executemany(DEAD_LETTER_SQL, dead_letter_rows("otlp", SOURCE, end.dead))
                    dead.update((lines[letter.line_no - 1][0], letter.reason) for letter in end.dead)
    return dead


def _expected(exc: Exception) -> bool:
    """A database or network failure, as opposed to a bug worth a traceback."""
    return isinstance(exc, psycopg.Error | OSError)


def connection_params(dsn: str, purpose: str) -> dict[str, Any]:
    """`connect_params` with an application_name that shows in pg_stat_activity what the connection is for."""
    params = connect_params(dsn)
    if "application_name" not in conninfo_to_dict(libpq_dsn(dsn)):
        params["application_name"] = f"otel-db serve ({purpose})"
    return params


def one_line(exc: BaseException) -> str:
    text = exc.diag.message_primary if isinstance(exc, psycopg.Error) and exc.diag.message_primary else str(exc)
    return " ".join(text.split()) or type(exc).__name__
