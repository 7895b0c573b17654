"""OpenTelemetry SDK exporters that COPY into `otel.otlp_staging`.

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from otel_db.exporters import SpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(SpanExporter("postgresql://…/otel")))

Each `export()` call writes the batch as ONE OTLP/JSON export request (one
line, one row of `otel.otlp_staging`) with the same CSV-framed COPY as
`otel-db ingest`. The exporters never call `otel.flush()`: the pg_cron job
`otel-flush` (see `otel.schedule_flush()`) or the application moves staged
rows into the final tables, so an export is one short COPY and the login
role needs only `otel_writer`.

An instrumented application must not slow down or fail because its telemetry
store does: every exporter owns one connection (opened lazily on the SDK's
worker thread, reopened after it broke) with a connect timeout and a
statement timeout; a failed COPY is retried with exponential back-off and
jitter, within a few seconds and the SDK's timeout; and a circuit breaker
stops trying altogether after `circuit_breaker_threshold` consecutive failed
exports. While it is open, exports return FAILURE at once without touching
the network and count what they drop; after the cool-down one export goes
through as a probe, and its outcome closes or re-opens the breaker.
`export()` never raises and warnings are rate-limited.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
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
from psycopg.conninfo import make_conninfo

from otel_db.client import connect
from otel_db.ingest import OTLP_COPY_SQL, IngestError, copy_otlp_records
from otel_db.lines import COPY_QUOTE, DEFAULT_MAX_LINE_BYTES, unstorable_reason
from otel_db.otlp_json import dumps, logs_request, metrics_request, spans_json
from otel_db.settings import Settings, libpq_dsn

try:  # opentelemetry-sdk >= 1.39 names the log exporter interface LogRecordExporter
    from opentelemetry.sdk._logs.export import LogRecordExporter as _SdkLogExporter
    from opentelemetry.sdk._logs.export import LogRecordExportResult as LogExportResult
except ImportError:  # pragma: no cover - older SDKs
    from opentelemetry.sdk._logs.export import LogExporter as _SdkLogExporter
    from opentelemetry.sdk._logs.export import LogExportResult  # type: ignore[assignment]

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "LogExporter", "MetricExporter", "SpanExporter"]

_logger = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_STATEMENT_TIMEOUT = 5.0
DEFAULT_COOLDOWN = 30.0
# Back-off before retry n (0-based) is uniform in [0, min(CAP, BASE * 2**n)]
# ("full jitter"), and the sleeps of one export never add up to more than
# MAX_SLEEP, whatever max_retries says.
BACKOFF_BASE = 0.1
BACKOFF_CAP = 1.0
MAX_SLEEP = 2.0
# No retry starts later than this after the export began (the SDK's span and
# log processors pass no timeout; the metric reader does).
DEFAULT_EXPORT_BUDGET = 10.0
WARNING_INTERVAL = 30.0


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


class _Stager:
    """One exporter's connection, retry loop and circuit breaker.

    Calls are serialised by a lock: the SDK's processors already export from
    one thread at a time, but `force_flush` and the metric reader's collection
    may come from another, and a psycopg connection runs one COPY at a time.
    """

    def __init__(
        self,
        dsn: str,
        settings: Settings,
        what: str,
        *,
        connect_timeout: float,
        statement_timeout: float,
        cooldown: float,
    ) -> None:
        if connect_timeout <= 0 or statement_timeout <= 0 or cooldown < 0:
            raise ValueError("connect_timeout and statement_timeout must be > 0 and cooldown >= 0 (seconds)")
        self.dsn = dsn
        self.what = what
        self.max_retries = settings.max_retries
        self.threshold = settings.circuit_breaker_threshold
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self.cooldown = cooldown
        self.state = CLOSED
        self.failures = 0  # consecutive failed exports
        self.dropped = 0
        self.source = f"otel_db.exporters ({what})"
        self._opened_at = 0.0
        self._conn: psycopg.Connection | None = None
        self._shut_down = False
        self._lock = threading.Lock()
        self._log = _RateLimitedLog()

    def send(self, items: int, encode: Callable[[], str], timeout: float | None) -> bool:
        """Stage one request; False when it was dropped. Never raises."""
        with self._lock:
            if self._shut_down:
                self.dropped += items
                self._log.warning("%s exporter is shut down: %d %s dropped", self.what, items, self.what)
                return False
            if self.state == OPEN:
                if time.monotonic() - self._opened_at < self.cooldown:
                    self.dropped += items
                    self._log.warning("circuit breaker open: %d %s dropped (%d in all)", items, self.what, self.dropped)
                    return False
                self.state = HALF_OPEN
            try:
                line = encode()
            except Exception:
                self.dropped += items
                _logger.exception("could not encode %d %s as OTLP/JSON; dropped", items, self.what)
                return False
            if self._stage(line, timeout):
                if self.state != CLOSED:
                    _logger.warning("circuit breaker closed: the database takes %s again", self.what)
                self.state = CLOSED
                self.failures = 0
                return True
            self.dropped += items
            self.failures += 1
            if self.state == HALF_OPEN or self.failures >= self.threshold:
                if self.state == HALF_OPEN:
                    self._log.warning("probe failed: circuit breaker open again for %g s", self.cooldown)
                else:
                    _logger.warning(
                        "circuit breaker open after %d failed exports: %s are dropped for %g s",
                        self.failures,
                        self.what,
                        self.cooldown,
                    )
                self.state = OPEN
                self._opened_at = time.monotonic()
            return False

    def _stage(self, line: str, timeout: float | None) -> bool:
        """COPY the line, retrying what may heal (connection trouble, timeouts)."""
        data = line.encode("utf-8", "surrogatepass")
        start = time.monotonic()
        deadline = start + min(timeout if timeout is not None else math.inf, DEFAULT_EXPORT_BUDGET)
        # A half-open probe gets one attempt: it only asks whether the database is back.
        attempts = 1 if self.state == HALF_OPEN else 1 + self.max_retries
        slept = 0.0
        for attempt in range(attempts):
            try:
                self._copy(self._connection(), data)
                return True
            except psycopg.OperationalError as exc:
                self._discard_broken()
                self._log.warning("staging %s failed (attempt %d of %d): %s", self.what, attempt + 1, attempts, exc)
            except Exception as exc:
                # Privileges, a missing table, a wrong encoding: retrying will not help.
                self._discard_broken()
                self._log.warning("staging %s failed: %s", self.what, exc)
                return False
            if attempt + 1 == attempts:
                break
            room = min(MAX_SLEEP - slept, deadline - time.monotonic())
            if room <= 0:
                break
            pause = min(room, random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
            time.sleep(pause)
            slept += pause
        return False

    def _copy(self, conn: psycopg.Connection, data: bytes) -> None:
        """One COPY statement, its own transaction on the autocommit connection.

        Fewer round trips than `copy_otlp_records` (no BEGIN/COMMIT), which
        matters because the worker thread waits for the GIL after each one.
        A line PostgreSQL cannot store goes through `copy_otlp_records`,
        which dead-letters it.
        """
        if len(data) > DEFAULT_MAX_LINE_BYTES or unstorable_reason(data) is not None:
            copy_otlp_records(conn, [data], source=self.source)
            return
        with conn.cursor() as cur, cur.copy(OTLP_COPY_SQL) as copy:
            copy.write(COPY_QUOTE + data + COPY_QUOTE + b"\n")

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            conn = connect(make_conninfo(self.dsn, connect_timeout=max(1, math.ceil(self.connect_timeout))))
            try:
                encoding = conn.info.parameter_status("server_encoding")
                if encoding != "UTF8":
                    raise IngestError(f"otel_db needs a UTF8 database, this one is {encoding}")
                conn.execute(
                    "select set_config('statement_timeout', %s, false)", [f"{round(self.statement_timeout * 1000)}ms"]
                )
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _discard_broken(self) -> None:
        if self._conn is not None and (self._conn.closed or self._conn.broken):
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._shut_down = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class _Reliability:
    """What the three exporters share: settings, the stager, and the attributes tests and dashboards read."""

    _stager: _Stager

    def _setup(
        self,
        dsn: str | None,
        settings: Settings | None,
        what: str,
        connect_timeout: float,
        statement_timeout: float,
        cooldown: float,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self._stager = _Stager(
            libpq_dsn(dsn) if dsn else self.settings.connection_string,
            self.settings,
            what,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
            cooldown=cooldown,
        )

    @property
    def dsn(self) -> str:
        """Where the next connection goes (settable: takes effect when the connection is next opened)."""
        return self._stager.dsn

    @dsn.setter
    def dsn(self, value: str) -> None:
        self._stager.dsn = libpq_dsn(value)

    @property
    def state(self) -> str:
        """The circuit breaker: 'closed', 'open' or 'half_open'."""
        return self._stager.state

    @property
    def consecutive_failures(self) -> int:
        return self._stager.failures

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Close the connection; later exports are dropped and counted."""
        self._stager.close()

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        """Nothing is buffered here: every export is written before it returns."""
        return True


class SpanExporter(_Reliability, _SdkSpanExporter):
    """Exports spans to otel.otlp_staging; use it under BatchSpanProcessor.

    `dropped_spans` counts the spans of every export that returned FAILURE.
    `dsn` defaults to `settings.connection_string` (OTEL_STORAGE_CONNECTION_STRING);
    `connect_timeout` and `statement_timeout` (seconds) override the DSN's;
    `cooldown` is how long the open circuit breaker waits before a probe.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        settings: Settings | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        cooldown: float = DEFAULT_COOLDOWN,
    ) -> None:
        self._setup(dsn, settings, "spans", connect_timeout, statement_timeout, cooldown)

    @property
    def dropped_spans(self) -> int:
        return self._stager.dropped

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        ok = self._stager.send(len(spans), lambda: spans_json(spans), None)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE


class LogExporter(_Reliability, _SdkLogExporter):
    """Exports log records to otel.otlp_staging; use it under BatchLogRecordProcessor.

    `dropped_logs` counts the records of every export that returned FAILURE;
    the other arguments are as for `SpanExporter`.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        settings: Settings | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        cooldown: float = DEFAULT_COOLDOWN,
    ) -> None:
        self._setup(dsn, settings, "logs", connect_timeout, statement_timeout, cooldown)

    @property
    def dropped_logs(self) -> int:
        return self._stager.dropped

    def export(self, batch: Sequence[Any]) -> LogExportResult:
        if not batch:
            return LogExportResult.SUCCESS
        ok = self._stager.send(len(batch), lambda: dumps(logs_request(batch)), None)
        return LogExportResult.SUCCESS if ok else LogExportResult.FAILURE


class MetricExporter(_Reliability, _SdkMetricExporter):
    """Exports metric data points to otel.otlp_staging; use it with PeriodicExportingMetricReader.

    `dropped_points` counts the data points of every export that returned
    FAILURE. Temporality and aggregation preferences go to the SDK's base
    class (cumulative everywhere by default; otel.flush() stores either).
    The other arguments are as for `SpanExporter`.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        settings: Settings | None = None,
        preferred_temporality: dict[type, AggregationTemporality] | None = None,
        preferred_aggregation: dict[type, Aggregation] | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        cooldown: float = DEFAULT_COOLDOWN,
    ) -> None:
        _SdkMetricExporter.__init__(
            self, preferred_temporality=preferred_temporality, preferred_aggregation=preferred_aggregation
        )
        self._setup(dsn, settings, "points", connect_timeout, statement_timeout, cooldown)

    @property
    def dropped_points(self) -> int:
        return self._stager.dropped

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        points = _count_points(metrics_data)
        if not points:
            return MetricExportResult.SUCCESS
        ok = self._stager.send(points, lambda: dumps(metrics_request(metrics_data)[0]), timeout_millis / 1000)
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE


def _count_points(data: MetricsData) -> int:
    return sum(
        len(metric.data.data_points) for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics
    )
