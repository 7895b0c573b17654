"""OpenTelemetry SDK exporters that COPY into `otel.otlp_staging`.

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from otel_db.exporters import SpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(SpanExporter("postgresql://…/otel", spool_dir="/var/spool/app")))

Each batch is ONE OTLP/JSON export request (one line, one row of
`otel.otlp_staging`) with the same CSV-framed COPY as `otel-db ingest`. The
exporters never call `otel.flush()`: the pg_cron job `otel-flush` (see
`otel.schedule_flush()`) or the application moves staged rows into the
final tables, so an export is one short COPY and the login role needs only
`otel_writer`.

An instrumented application must not slow down, hang or fail because its
telemetry store does.

Timeouts on the client side. Every exporter owns one daemon sender thread,
which owns the connection. `export()` hands the batch over and waits at most
`timeout` seconds (the metric reader's `timeout_millis` when shorter). A
server that does not answer at all (a frozen backend: its kernel still ACKs,
so statement_timeout, TCP keepalives and cancel requests never fire) would
hold any call on that socket forever, so when the wait times out the caller
abandons the connection: it shuts the socket down, which wakes the sender
with an error at once, and the next attempt opens a new connection. With a
spool, the wait leaves a tenth of the timeout (at most 0.1 s) for writing
the batch to disk, a file and two fsyncs: only a disk that hangs holds an
export longer. TCP keepalives and `tcp_user_timeout` notice a dead network
on their own; the connect timeout and the statement timeout still apply.
`force_flush` and `shutdown` return within their timeouts, whatever the
server does.

Retries and the circuit breaker. A COPY that failed on the connection
(refused, reset, timed out) is retried with jittered exponential back-off
within the timeout; a refusal by the server (privileges, a missing table) is
not. The breaker opens after `circuit_breaker_threshold` failed exports in a
row, and at once when an export timed out (the next one would wait as long)
or a replay failed: exports no longer wait for the database. It probes again
1 s later, then 2, 4, … s, at most `cooldown` (5 s) apart; a successful
probe closes it.

The spool (`spool_dir`, OTEL_STORAGE_SPOOL_DIR; see `otel_db.spool`). Without
one, a batch that could not be stored is dropped: export() returns FAILURE
and `dropped_*` counts it. With one, it is written to disk and export()
returns SUCCESS. While the spool holds anything, new batches join its end,
so nothing overtakes; the sender thread replays the oldest first, each file
deleted right after its COPY committed. A spool left by a previous process
is replayed by the next one. Beyond `spool_max_bytes` the oldest batches are
dropped and counted (`spool_dropped_*`, also in `dropped_*`).

Stored once, but for two windows. The COPY runs in an explicit transaction
whose COMMIT is sent only if nobody gave up on the batch; an abandoned COPY
is rolled back by the server when it sees the connection end. A batch is
stored twice only
- when the connection breaks, or the exporter stops waiting for it (an
  export's or a replay's timeout, shutdown), while the COMMIT is in flight:
  the outcome is unknown, so the batch is kept (spooled, and replayed later;
  without a spool it is counted as dropped, though it may have been
  stored). A COMMIT that turns out to have succeeded removes the spooled
  copy again.
- when the process dies between the COMMIT of a spooled batch and the
  deletion of its file, or the machine loses power before that deletion
  reached the disk (deletions are not fsynced).
Spans stored twice are removed by `otel.flush()`, which keeps one row per
(trace_id, span_id); log records and points are not.

`export()` never raises. Warnings are rate-limited and never logged while
the exporter's lock is held, and what its own sender thread exports (its
warnings, through a LoggingHandler feeding this exporter) goes to the spool
or is dropped, never waited for. Under a SimpleLogRecordProcessor fed by
such a handler a failing export can still wait its timeout, for the
handler's lock, which Python holds while the export runs: use
BatchLogRecordProcessor.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import random
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import psycopg
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.metrics.export import MetricExporter as _SdkMetricExporter
from opentelemetry.sdk.metrics.view import Aggregation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter as _SdkSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from otel_db.client import connect
from otel_db.ingest import OTLP_COPY_SQL, IngestError, copy_otlp_records
from otel_db.lines import COPY_QUOTE, DEFAULT_MAX_LINE_BYTES, unstorable_reason
from otel_db.otlp_json import dumps, logs_request, metrics_request, spans_json
from otel_db.settings import Settings, libpq_dsn
from otel_db.spool import BatchTooLarge, Spool, SpooledBatch, SpoolUnavailable

try:  # opentelemetry-sdk >= 1.39 names the log exporter interface LogRecordExporter
    from opentelemetry.sdk._logs.export import LogRecordExporter as _SdkLogExporter
    from opentelemetry.sdk._logs.export import LogRecordExportResult as LogExportResult
except ImportError:  # pragma: no cover - older SDKs
    from opentelemetry.sdk._logs.export import LogExporter as _SdkLogExporter
    from opentelemetry.sdk._logs.export import LogExportResult  # type: ignore[assignment]

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "LogExporter", "MetricExporter", "SpanExporter"]

_logger = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

DEFAULT_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_STATEMENT_TIMEOUT = 5.0
# The open breaker probes after PROBE_FIRST seconds, then twice as long each
# time, never more than the cool-down apart.
DEFAULT_COOLDOWN = 5.0
PROBE_FIRST = 1.0
# Back-off before retry n (0-based) is uniform in [0, min(CAP, BASE * 2**n)]
# ("full jitter"), and the sleeps of one export never add up to more than
# MAX_SLEEP, whatever max_retries says.
BACKOFF_BASE = 0.1
BACKOFF_CAP = 1.0
MAX_SLEEP = 2.0
# With a spool, an export waits for the database a tenth of its timeout less,
# at most this much (seconds): the time to write the batch to disk instead.
SPOOL_WRITE_MARGIN = 0.1
WARNING_INTERVAL = 30.0
# libpq parameters for a network that dies without a word (no RST ever
# comes): keepalives probe an idle connection, tcp_user_timeout (ms) ends one
# whose sent data stays unacknowledged. The DSN's own values win.
TCP_PARAMETERS = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",
}

# A warning decided while the exporter's lock was held, logged once it is released.
_Warning = Callable[[], None]


class _RateLimitedLog:
    """At most one warning per interval; the next one says how many were held back."""

    def __init__(self, interval: float = WARNING_INTERVAL) -> None:
        self.interval = interval
        self._last = -math.inf
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._suppressed += 1
            return
        if self._suppressed:
            message += " (%d similar warnings suppressed)"
            args = (*args, self._suppressed)
        self._last = now
        self._suppressed = 0
        _logger.warning(message, *args)


class _Abandoned(Exception):
    """Nobody waits for this batch any more: it must not be committed."""


class _Route(Enum):
    SEND = "send"  # hand it to the sender thread and wait
    PROBE = "probe"  # the same, as the half-open breaker's one attempt
    ELSEWHERE = "elsewhere"  # to the spool
    DROP = "drop"  # nowhere: no spool, or the exporter is shut down


@dataclass(eq=False)
class _Operation:
    """One batch for the sender thread: handed over by export(), or replayed from the spool."""

    data: bytes
    items: int
    deadline: float
    probe: bool = False
    replayed: SpooledBatch | None = None
    # Where export() put the batch after it gave up waiting: removed again if the COMMIT got through after all.
    kept: SpooledBatch | None = None
    abandoned: bool = False
    finished: bool = False
    stored: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class _Sender:
    """One exporter's sender thread, connection, retry loop, circuit breaker and spool.

    `_cond` guards the breaker, the queue, the operation in progress and the
    socket. Nothing that can block on the network or the disk runs while it
    is held (the spool's claim, renames and unlinks excepted), and nothing is logged:
    a log handler may export through this very exporter.
    """

    def __init__(
        self,
        dsn: str,
        settings: Settings,
        kind: str,
        what: str,
        *,
        timeout: float,
        connect_timeout: float,
        statement_timeout: float,
        cooldown: float,
        spool_dir: str | os.PathLike[str] | None,
        spool_max_bytes: int,
    ) -> None:
        if min(timeout, connect_timeout, statement_timeout) <= 0 or cooldown < 0:
            raise ValueError("timeout, connect_timeout and statement_timeout must be > 0 and cooldown >= 0 (seconds)")
        if spool_max_bytes < 1:
            raise ValueError(f"spool_max_bytes must be at least 1, got {spool_max_bytes}")
        self.dsn = dsn
        self.kind = kind
        self.what = what
        self.max_retries = settings.max_retries
        self.threshold = settings.circuit_breaker_threshold
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self.cooldown = cooldown
        self.spool_root = spool_dir
        self.spool_max_bytes = spool_max_bytes
        self.source = f"otel_db.exporters ({what})"
        self.state = CLOSED
        self.failures = 0  # consecutive failed exports
        self.dropped = 0
        self.spool_dropped = 0
        self._probes_failed = 0
        self._opened_at = 0.0
        self._replay_failures = 0
        self._draining = 0
        self._closed = False  # shutdown() was called: exports are dropped
        self._stopping = False  # the sender thread is to end
        self._log = _RateLimitedLog()
        self._spool_log = _RateLimitedLog()
        self._spool: Spool | None = None
        self._reset_runtime()
        _LIVE_SENDERS.add(self)
        self._ensure_started()  # at once: a spool left by a previous process is replayed now

    def _reset_runtime(self) -> None:
        """What belongs to this process: the lock, the queue, the connection and the thread."""
        self._cond = threading.Condition(threading.RLock())
        self._jobs: deque[_Operation] = deque()
        self._busy: _Operation | None = None
        self._conn: psycopg.Connection | None = None
        # A duplicate of the connection's socket, to shut it down from another
        # thread: valid until the sender closes it, even after libpq closed its own.
        self._socket: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name=f"otel_db {self.kind} exporter", daemon=True)
        self._started = False

    def _ensure_started(self) -> None:
        """Claim the spool and start the sender thread in this process, once."""
        if self._started:
            return
        failure = None
        with self._cond:
            if not self._started and not self._closed:
                if self.spool_root is not None:
                    try:
                        self._spool = Spool.claim(self.spool_root, self.kind, self.spool_max_bytes)
                    except (SpoolUnavailable, OSError) as exc:
                        failure = exc
                self._thread.start()
                self._started = True
        if failure is not None:
            _logger.warning("the %s exporter runs without a spool: %s", self.kind, failure)

    def _after_fork(self) -> None:
        """In a forked child: its own thread, connection and spool slot, from its first export on.

        The parent's stay the parent's: psycopg does not close a connection in
        a child of the process that opened it, and closing the child's
        descriptors of the socket and the slot's lock touches neither. So do
        its probe and its force_flush(): the child probes anew when due.
        """
        if self._socket is not None:
            self._socket.close()
        if self._spool is not None:
            self._spool.close_after_fork()
            self._spool = None
        if self.state == HALF_OPEN:
            self.state = OPEN
        self._draining = 0
        self._reset_runtime()

    @property
    def spool_directory(self) -> Path | None:
        return self._spool.directory if self._spool is not None else None

    # ------------------------------------------------------------------ the application's side

    def send(self, items: int, encode: Callable[[], str], timeout: float) -> bool:
        """Store one batch, or keep it in the spool; False when it was dropped. Never raises."""
        self._ensure_started()
        with self._cond:
            route, reason = self._route()
        if route is _Route.DROP:  # before encoding: a batch that goes nowhere is not encoded
            return self._drop(items, reason)
        try:
            data = encode().encode("utf-8", "surrogatepass")
        except Exception:
            _logger.exception("could not encode %d %s as OTLP/JSON", items, self.what)
            return self._drop(items, "they could not be encoded")
        operation = None
        with self._cond:
            self._abort_overdue()
            route, reason = self._route()  # again: the encoding took time
            if route is _Route.SEND or route is _Route.PROBE:
                if route is _Route.PROBE:
                    self.state = HALF_OPEN
                operation = _Operation(data, items, time.monotonic() + timeout, probe=route is _Route.PROBE)
                self._jobs.append(operation)
                self._cond.notify_all()
        if operation is not None:
            return self._wait(operation, timeout)
        if route is _Route.DROP:
            return self._drop(items, reason)
        return self._keep(data, items, reason) is not None

    def _route(self) -> tuple[_Route, str]:
        """Where a new batch goes and, unless to the database, why; a probe is for the caller to start."""
        if self._closed:
            return _Route.DROP, "the exporter is shut down"
        spooled = self._spool is not None and len(self._spool) > 0
        if threading.current_thread() is self._thread:
            reason = "they come from the exporter's own thread (its warnings, logged through it)"
        elif self._busy is not None and self._busy.abandoned:
            reason = "the database has not answered the previous call yet"
        elif self.state == HALF_OPEN or (self.state == OPEN and (spooled or time.monotonic() < self._probe_at())):
            reason = "the circuit breaker is open"
        elif self.state == OPEN:
            return _Route.PROBE, ""
        elif spooled:
            reason = "older batches wait in the spool"
        else:
            return _Route.SEND, ""
        return (_Route.ELSEWHERE if self._spool is not None else _Route.DROP), reason

    def _wait(self, operation: _Operation, timeout: float) -> bool:
        """Wait for the sender to store the batch; when it does not in time, give up on it and keep it."""
        margin = min(SPOOL_WRITE_MARGIN, timeout / 10) if self._spool is not None else 0.0
        operation.done.wait(timeout - margin)
        warning = None
        with self._cond:
            if operation.stored:
                return True
            gave_up = not operation.finished
            if gave_up:
                if operation in self._jobs:
                    self._jobs.remove(operation)
                self._abandon(operation)
                warning = self._record(stored=False, at_once=True)
        if gave_up:
            self._log.warning("staging %s: no answer within %g s; the connection is abandoned", self.what, timeout)
            if warning is not None:
                warning()
        # Its COMMIT may still be in flight: spooled as being sent, so that the sender cannot replay it meanwhile.
        kept = self._keep(operation.data, operation.items, "the database did not take them", taken=gave_up)
        if kept is None or not gave_up:
            return kept is not None
        with self._cond:
            if not operation.stored:  # the sender removes it if the COMMIT still gets through
                operation.kept = kept
            self._settle(kept, stored=operation.stored)
        return True

    def _keep(self, data: bytes, items: int, reason: str, *, taken: bool = False) -> SpooledBatch | None:
        """Spool the batch; None when there is no spool or it cannot take it (then it is dropped)."""
        spool = self._spool
        if spool is None:
            self._drop(items, reason)
            return None
        try:
            batch, evicted = spool.append(data, items, taken=taken)
        except (BatchTooLarge, SpoolUnavailable, OSError) as exc:
            self._drop(items, f"{reason}, and the spool cannot keep them: {exc}")
            return None
        lost = sum(old.items for old in evicted)
        with self._cond:
            self.dropped += lost
            self.spool_dropped += lost
            total = self.spool_dropped
            self._cond.notify_all()
        if lost:
            self._spool_log.warning(
                "the %s spool is full (%d bytes): its oldest %d %s dropped (%d in all)",
                self.kind,
                spool.max_bytes,
                lost,
                self.what,
                total,
            )
        return batch

    def _drop(self, items: int, reason: str) -> bool:
        with self._cond:
            self.dropped += items
            total = self.dropped
        self._log.warning("%d %s dropped (%d in all): %s", items, self.what, total, reason)
        return False

    def drain(self, deadline: float) -> bool:
        """Replay the spool until the deadline; True when nothing is left unsent."""
        spool = self._spool
        if spool is None:
            return True
        with self._cond:
            self._abort_overdue()
            if self._stopping or not self._thread.is_alive():
                return len(spool) == 0
            self._draining += 1  # the sender replays now, open breaker or not
            failures = self._replay_failures
            self._cond.notify_all()
            try:
                while len(spool) and self._replay_failures == failures:
                    wake = deadline
                    if self._busy is not None and self._busy.replayed is not None:
                        wake = min(wake, self._busy.deadline)
                    if time.monotonic() >= deadline:
                        break
                    self._cond.wait(max(0.01, wake - time.monotonic()))
                    self._abort_overdue()
                return len(spool) == 0
            finally:
                self._draining -= 1

    def close(self, timeout: float) -> None:
        """Drain what can be drained within the timeout, then stop the sender; the rest stays on disk."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._closed:
                return
            self._closed = True
        self.drain(deadline)
        with self._cond:
            self._stopping = True
            if self._busy is not None:
                self._abandon(self._busy)
            for waiting in self._jobs:
                waiting.finished = True
                waiting.done.set()
            self._jobs.clear()
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline - time.monotonic()))

    def _abandon(self, operation: _Operation) -> None:
        """Never commit this batch; wake the sender if it waits for the server on its behalf."""
        operation.abandoned = True
        if self._busy is operation and self._socket is not None:
            with contextlib.suppress(OSError):  # already gone
                self._socket.shutdown(socket.SHUT_RDWR)
        self._cond.notify_all()

    def _abort_overdue(self) -> None:
        """A replay has nobody waiting for it: whoever comes by next abandons it when it is overdue."""
        busy = self._busy
        if busy is not None and busy.replayed is not None and not busy.abandoned and time.monotonic() > busy.deadline:
            self._abandon(busy)

    # ------------------------------------------------------------------ the circuit breaker

    def _probe_at(self) -> float:
        return self._opened_at + min(self.cooldown, PROBE_FIRST * 2 ** min(self._probes_failed, 16))

    def _record(self, *, stored: bool, at_once: bool = False) -> _Warning | None:
        """One export's (or replay's) outcome; returns the warning to log once `_cond` is released.

        `at_once`: this failure alone opens the breaker (a replay failed, its
        batch waits on disk; or an export timed out, and the next would wait
        as long).
        """
        if stored:
            was = self.state
            self.state = CLOSED
            self.failures = 0
            self._probes_failed = 0
            if was == CLOSED:
                return None
            return functools.partial(_logger.warning, "circuit breaker closed: the database takes %s again", self.what)
        self.failures += 1
        if self.state == HALF_OPEN:
            self._probes_failed += 1
            self.state = OPEN
            self._opened_at = time.monotonic()
            pause = self._probe_at() - self._opened_at
            return functools.partial(self._log.warning, "probe failed: circuit breaker open again for %g s", pause)
        if self.state == CLOSED and (at_once or self.failures >= self.threshold):
            self.state = OPEN
            self._opened_at = time.monotonic()
            self._probes_failed = 0
            return functools.partial(
                _logger.warning,
                "circuit breaker open after %d failed exports: %s are %s until a probe finds the database back",
                self.failures,
                self.what,
                "spooled" if self._spool is not None else "dropped",
            )
        return None

    # ------------------------------------------------------------------ the sender thread

    def _run(self) -> None:
        while (operation := self._next_operation()) is not None:
            try:
                if operation.replayed is None:
                    self._send(operation)
                else:
                    self._replay(operation)
            except Exception:
                _logger.exception("the %s exporter's sender thread failed; it goes on", self.kind)
                self._finish(operation, stored=False)
        self._drop_connection()
        if self._spool is not None:
            self._spool.close()  # the files stay for the next process

    def _next_operation(self) -> _Operation | None:
        with self._cond:
            while not self._stopping:
                if self._jobs:
                    operation = self._jobs.popleft()
                elif (batch := self._replay_candidate()) is not None:
                    # While the breaker is open a replay is its probe (half-open once the batch is read).
                    probe = self.state != CLOSED
                    operation = _Operation(b"", batch.items, time.monotonic() + self.timeout, probe, batch)
                else:
                    self._cond.wait(self._replay_wait())
                    continue
                self._busy = operation
                return operation
            return None

    def _replay_candidate(self) -> SpooledBatch | None:
        if self._spool is None or not len(self._spool) or self.state == HALF_OPEN:
            return None
        if self.state == OPEN and not self._draining and time.monotonic() < self._probe_at():
            return None
        return self._spool.take_oldest()

    def _replay_wait(self) -> float | None:
        """How long the idle sender sleeps: until the next probe, or until something happens."""
        if self._spool is None or not len(self._spool) or self.state != OPEN or self._draining:
            return None
        return max(0.0, self._probe_at() - time.monotonic())

    def _send(self, operation: _Operation) -> None:
        """A batch from export(): COPY it, retrying what may heal (connection trouble, timeouts)."""
        # A half-open probe gets one attempt: it only asks whether the database is back.
        attempts = 1 if operation.probe else 1 + self.max_retries
        slept = 0.0
        for attempt in range(attempts):
            try:
                self._store(operation)
                self._finish(operation, stored=True)
                return
            except _Abandoned:
                break
            except psycopg.OperationalError as exc:
                self._discard_broken()
                if operation.abandoned:
                    break
                self._log.warning("staging %s failed (attempt %d of %d): %s", self.what, attempt + 1, attempts, exc)
            except Exception as exc:
                # Privileges, a missing table, a wrong encoding: retrying will not help.
                self._discard_broken()
                self._log.warning("staging %s failed: %s", self.what, exc)
                break
            room = min(MAX_SLEEP - slept, operation.deadline - time.monotonic())
            if attempt + 1 == attempts or room <= 0:
                break
            pause = min(room, random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
            with self._cond:
                self._cond.wait_for(lambda: operation.abandoned or self._stopping, pause)
            slept += pause
        self._finish(operation, stored=False)

    def _replay(self, operation: _Operation) -> None:
        """The oldest spooled batch, one attempt: it is a probe when the breaker is open."""
        batch, spool = operation.replayed, self._spool
        assert batch is not None and spool is not None, "only a spool replays"
        try:
            operation.data = spool.read(batch)
        except OSError as exc:
            # Lost, and no probe: the breaker stays as it was, and the next batch is tried at once.
            with self._cond:
                self.dropped += operation.items
                self._busy = None
                spool.remove(batch)
                self._cond.notify_all()
            _logger.warning("%d spooled %s lost: %s", operation.items, self.what, exc)
            return
        if operation.probe:
            with self._cond:
                self.state = HALF_OPEN
        try:
            self._store(operation)
        except _Abandoned:
            self._finish(operation, stored=False)
        except Exception as exc:
            self._discard_broken()
            self._log.warning("replaying spooled %s failed: %s", self.what, exc)
            self._finish(operation, stored=False)
        else:
            self._finish(operation, stored=True)

    def _finish(self, operation: _Operation, *, stored: bool) -> None:
        warning = None
        with self._cond:
            if operation.finished:
                return
            operation.finished = True
            operation.stored = stored
            if self._busy is operation:
                self._busy = None
            if operation.replayed is not None:
                self._settle(operation.replayed, stored=stored)
                if not stored:
                    self._replay_failures += 1
                warning = self._record(stored=stored, at_once=True)
            elif stored or not operation.abandoned:  # export() recorded the failure when it gave up
                warning = self._record(stored=stored)
                if stored and operation.kept is not None:
                    self._settle(operation.kept, stored=True)
            self._cond.notify_all()
        operation.done.set()
        if warning is not None:
            warning()

    def _settle(self, batch: SpooledBatch, *, stored: bool) -> None:
        """A spooled batch that was being sent: removed once stored, else released for a later replay."""
        assert self._spool is not None, "only a spool keeps batches"
        if stored:
            self._spool.remove(batch)
        else:
            self._spool.release(batch)
        self._cond.notify_all()

    def _store(self, operation: _Operation) -> None:
        """COPY the batch and commit, unless its export gave up meanwhile."""
        conn = self._connection(operation)
        conn.execute("begin")
        try:
            self._copy(conn, operation.data)
            with self._cond:
                if operation.abandoned:
                    raise _Abandoned
            conn.execute("commit")
        except BaseException:
            if not conn.broken:
                with contextlib.suppress(psycopg.Error):  # a broken connection is discarded by the caller
                    conn.execute("rollback")
            raise

    def _copy(self, conn: psycopg.Connection, data: bytes) -> None:
        """One COPY; a line PostgreSQL cannot store goes through `copy_otlp_records`, which dead-letters it."""
        if len(data) > DEFAULT_MAX_LINE_BYTES or unstorable_reason(data) is not None:
            copy_otlp_records(conn, [data], source=self.source)
            return
        with conn.cursor() as cur, cur.copy(OTLP_COPY_SQL) as copy:
            copy.write(COPY_QUOTE + data + COPY_QUOTE + b"\n")

    def _connection(self, operation: _Operation) -> psycopg.Connection:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self._drop_connection()
        conn = connect(self._conninfo())
        with self._cond:
            self._conn = conn
            self._socket = socket.socket(fileno=os.dup(conn.fileno()))
            if operation.abandoned:
                raise _Abandoned
        try:
            encoding = conn.info.parameter_status("server_encoding")
            if encoding != "UTF8":
                raise IngestError(f"otel_db needs a UTF8 database, this one is {encoding}")
            conn.execute(
                "select set_config('statement_timeout', %s, false)", [f"{round(self.statement_timeout * 1000)}ms"]
            )
        except BaseException:
            self._drop_connection()
            raise
        return conn

    def _conninfo(self) -> str:
        given = conninfo_to_dict(self.dsn)
        defaults = {"application_name": f"otel_db exporter ({self.kind})", **TCP_PARAMETERS}
        return make_conninfo(
            self.dsn,
            **{name: value for name, value in defaults.items() if name not in given},
            connect_timeout=max(1, math.ceil(self.connect_timeout)),
        )

    def _discard_broken(self) -> None:
        if self._conn is not None and (self._conn.closed or self._conn.broken):
            self._drop_connection()

    def _drop_connection(self) -> None:
        with self._cond:
            conn, duplicate = self._conn, self._socket
            self._conn = self._socket = None
        if conn is not None:
            conn.close()
        if duplicate is not None:
            duplicate.close()


# Every sender of this process, for the fork hook, registered once.
_LIVE_SENDERS: weakref.WeakSet[_Sender] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sender in list(_LIVE_SENDERS):
        sender._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _Exporter:
    """What the three exporters share: settings, the sender, and the attributes tests and dashboards read."""

    _kind: str  # the spool's subdirectory, in the connection's application_name
    _what: str  # what an export holds, as the counters and warnings count it
    _sender: _Sender

    def __init__(
        self,
        dsn: str | None = None,
        *,
        settings: Settings | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        cooldown: float = DEFAULT_COOLDOWN,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self._sender = _Sender(
            libpq_dsn(dsn) if dsn else self.settings.connection_string,
            self.settings,
            self._kind,
            self._what,
            timeout=timeout,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
            cooldown=cooldown,
            spool_dir=spool_dir if spool_dir is not None else self.settings.spool_dir,
            spool_max_bytes=spool_max_bytes if spool_max_bytes is not None else self.settings.spool_max_bytes,
        )

    @property
    def dsn(self) -> str:
        """Where the next connection goes (settable: takes effect when the connection is next opened)."""
        return self._sender.dsn

    @dsn.setter
    def dsn(self, value: str) -> None:
        self._sender.dsn = libpq_dsn(value)

    @property
    def timeout(self) -> float:
        """How long an export waits for the database (seconds)."""
        return self._sender.timeout

    @property
    def state(self) -> str:
        """The circuit breaker: 'closed', 'open' or 'half_open'."""
        return self._sender.state

    @property
    def consecutive_failures(self) -> int:
        return self._sender.failures

    @property
    def spool_directory(self) -> Path | None:
        """The directory this exporter spools to (a slot under `spool_dir`), or None without a spool."""
        return self._sender.spool_directory

    @property
    def _dropped(self) -> int:
        """Items lost: those of every export that returned FAILURE, and those the spool dropped."""
        return self._sender.dropped

    @property
    def _spool_dropped(self) -> int:
        """Items the spool dropped (the oldest first) to stay under its cap; included in `dropped_*`."""
        return self._sender.spool_dropped

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Replay the spool within the timeout, then stop; later exports are dropped and counted.

        What is still spooled stays on disk for the next process.
        """
        self._sender.close(timeout_millis / 1000)

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        """Replay the spool within the timeout; True when nothing is left unsent.

        Nothing is buffered in memory: every export has been stored, spooled
        or dropped before it returned.
        """
        return self._sender.drain(time.monotonic() + timeout_millis / 1000)


class SpanExporter(_Exporter, _SdkSpanExporter):
    """Exports spans to otel.otlp_staging; use it under BatchSpanProcessor.

    `dsn` defaults to `settings.connection_string` (OTEL_STORAGE_CONNECTION_STRING);
    `spool_dir` and `spool_max_bytes` to OTEL_STORAGE_SPOOL_DIR (no spool when
    unset) and OTEL_STORAGE_SPOOL_MAX_BYTES. `timeout` is how long an export
    waits for the database; `connect_timeout` and `statement_timeout` (all in
    seconds) override the DSN's; `cooldown` is the longest wait between two
    probes of the open circuit breaker. `dropped_spans` counts the spans that
    were lost: those of every export that returned FAILURE, and those the
    spool dropped to stay under its cap (`spool_dropped_spans`).
    """

    _kind = _what = "spans"
    dropped_spans = _Exporter._dropped
    spool_dropped_spans = _Exporter._spool_dropped

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        ok = self._sender.send(len(spans), lambda: spans_json(spans), self._sender.timeout)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE


class LogExporter(_Exporter, _SdkLogExporter):
    """Exports log records to otel.otlp_staging; use it under BatchLogRecordProcessor.

    `dropped_logs` and `spool_dropped_logs` count lost records as for spans;
    the arguments are as for `SpanExporter`.
    """

    _kind = _what = "logs"
    dropped_logs = _Exporter._dropped
    spool_dropped_logs = _Exporter._spool_dropped

    def export(self, batch: Sequence[Any]) -> LogExportResult:
        if not batch:
            return LogExportResult.SUCCESS
        ok = self._sender.send(len(batch), lambda: dumps(logs_request(batch)), self._sender.timeout)
        return LogExportResult.SUCCESS if ok else LogExportResult.FAILURE


class MetricExporter(_Exporter, _SdkMetricExporter):
    """Exports metric data points to otel.otlp_staging; use it with PeriodicExportingMetricReader.

    `dropped_points` and `spool_dropped_points` count lost data points as for
    spans. Temporality and aggregation preferences go to the SDK's base class
    (cumulative everywhere by default; otel.flush() stores either). An export
    waits at most the reader's `timeout_millis` when that is shorter than
    `timeout`. The other arguments are as for `SpanExporter`.
    """

    _kind, _what = "metrics", "points"
    dropped_points = _Exporter._dropped
    spool_dropped_points = _Exporter._spool_dropped

    def __init__(
        self,
        dsn: str | None = None,
        *,
        settings: Settings | None = None,
        preferred_temporality: dict[type, AggregationTemporality] | None = None,
        preferred_aggregation: dict[type, Aggregation] | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max_bytes: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        cooldown: float = DEFAULT_COOLDOWN,
    ) -> None:
        _SdkMetricExporter.__init__(
            self, preferred_temporality=preferred_temporality, preferred_aggregation=preferred_aggregation
        )
        super().__init__(
            dsn,
            settings=settings,
            spool_dir=spool_dir,
            spool_max_bytes=spool_max_bytes,
            timeout=timeout,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
            cooldown=cooldown,
        )

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        points = _count_points(metrics_data)
        if not points:
            return MetricExportResult.SUCCESS
        timeout = min(self._sender.timeout, timeout_millis / 1000)
        ok = self._sender.send(points, lambda: dumps(metrics_request(metrics_data)[0]), timeout)
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE


def _count_points(data: MetricsData) -> int:
    return sum(
        len(metric.data.data_points) for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
    )
