"""`AsyncClient`: `Client` for asyncio applications, on `psycopg.AsyncConnection`.

Same methods, same SQL (`otel_db.queries`), same row mapping and errors; only
the I/O is awaited. The client holds one connection and an `asyncio.Lock`, so
concurrent tasks take turns on it instead of interleaving their statements
(a task's `sql()` transaction would otherwise run another task's query).
Embedding text for `similar_traces` is CPU-bound ONNX work and runs in a
worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import psycopg
from psycopg.rows import dict_row

from otel_db import queries
from otel_db.client import (
    DEAD_LETTER_ROW_SQL,
    DEFAULT_SQL_MAX_ROWS,
    DEFAULT_SQL_TIMEOUT,
    BaseClient,
    RowCap,
    RowsCopy,
    connect_params,
    contained_errors,
    translate_errors,
)
from otel_db.ingest import (
    DEAD_LETTER_SQL,
    OTLP_COPY_SQL,
    CopyEnd,
    IngestReport,
    check_encoding,
    dead_letter_rows,
    otlp_copy_steps,
    record_lines,
)
from otel_db.lines import DEFAULT_MAX_LINE_BYTES
from otel_db.queries import QUERIES, Call
from otel_db.results import (
    ErrorSpan,
    LogRecord,
    MetricPoint,
    OperationSummary,
    RootCause,
    ServiceCall,
    ServiceSummary,
    SpanNode,
    SuspectAttribute,
    TraceContext,
    TraceDifference,
    TraceExplanation,
    TraceResult,
    TraceSummary,
)
from otel_db.settings import Settings

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")


class AsyncClient(BaseClient):
    """Write to and ask an otel_db store from asyncio code.

    `AsyncClient(dsn)` or `AsyncClient.from_env()`; use `async with` or call
    `aclose()`. The connection opens on first use and reopens after it
    broke. Methods and results are those of `otel_db.Client`, awaited.
    """

    def __init__(self, dsn: str | None = None, *, settings: Settings | None = None) -> None:
        super().__init__(dsn, settings=settings)
        self._conn: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection; the client reconnects if used again."""
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """The connection, opened (or reopened) on demand, held by this task until the block ends."""
        async with self._lock:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = await psycopg.AsyncConnection.connect(**connect_params(self.dsn))
            yield self._conn

    # ------------------------------------------------------------------ write

    async def copy_otlp(self, lines: Iterable[bytes | str | Mapping[str, object]]) -> IngestReport:
        """COPY OTLP/JSON export requests into otel.otlp_staging, as `Client.copy_otlp`.

        Lines PostgreSQL cannot store are dead-lettered with their exact
        bytes, never raised; nothing is parsed until `flush()`.
        """
        source = "AsyncClient.copy_otlp"
        report = IngestReport(source=source)
        steps = otlp_copy_steps(record_lines(lines, report, DEFAULT_MAX_LINE_BYTES), report)
        async with self._connection() as conn:
            check_encoding(conn)
            end: CopyEnd | None = None
            while end is None or not end.done:
                async with conn.transaction():
                    while True:
                        async with conn.cursor() as cur:
                            async with cur.copy(OTLP_COPY_SQL) as copy:
                                step = next(steps)
                                while isinstance(step, bytes):
                                    await copy.write(step)
                                    step = next(steps)
                            end = step
                            if end.dead:
                                await cur.executemany(DEAD_LETTER_SQL, dead_letter_rows("otlp", source, end.dead))
                        if end.commit or end.done:
                            break
        return report

    async def copy_rows(
        self, kind: str, rows: Iterable[Mapping[str, object]], *, source: str = "AsyncClient.copy_rows"
    ) -> int:
        """COPY rows into otel.<kind>_staging, as `Client.copy_rows`; returns the rows staged."""
        plan = RowsCopy.start(kind, rows, source)
        if plan is None:
            return 0
        async with self._connection() as conn:
            async with conn.cursor() as cur:
                await cur.execute(QUERIES["staging_columns"], {"table": f"{kind}_staging"})
                plan.check([row[0] for row in await cur.fetchall()])
            async with conn.transaction(), conn.cursor() as cur:
                async with cur.copy(plan.statement) as copy:
                    for values in plan.values():
                        await copy.write_row(values)
                if plan.rejected:
                    await cur.executemany(DEAD_LETTER_ROW_SQL, plan.rejected)
        return plan.staged

    async def copy_spans(self, rows: Iterable[Mapping[str, object]]) -> int:
        """COPY span rows into otel.traces_staging; see `copy_rows`."""
        return await self.copy_rows("traces", rows, source="AsyncClient.copy_spans")

    async def store_trace(self, span: Mapping[str, object]) -> int:
        """Stage one span (the seed design's name)."""
        return await self.copy_rows("traces", [span], source="AsyncClient.store_trace")

    async def store_log(self, record: Mapping[str, object]) -> int:
        """Stage one log record."""
        return await self.copy_rows("logs", [record], source="AsyncClient.store_log")

    async def store_metrics(self, points: Iterable[Mapping[str, object]]) -> int:
        """Stage metric data points (rows of otel.metrics_staging; all with the same keys)."""
        return await self.copy_rows("metrics", points, source="AsyncClient.store_metrics")

    async def flush(self) -> dict[str, Any]:
        """Run `call otel.flush()` now and return the otel.flush_runs row it wrote ({} if none)."""
        async with self._connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(QUERIES["last_flush_run"])
            last = await cur.fetchone()
            await cur.execute(QUERIES["flush"])
            await cur.execute(QUERIES["flush_run_after"], {"id": last["id"]})  # type: ignore[index]
            row = await cur.fetchone()
        return dict(row) if row else {}

    async def schedule_flush(self, every: float | str | None = None) -> int:
        """Let pg_cron flush every `every` seconds (default: the flush_interval setting); see `Client`."""
        return (await self._fetch(self._schedule_call(every)))[0]

    async def unschedule_flush(self) -> bool:
        """Remove this database's pg_cron jobs; False when there were none."""
        return (await self._fetch(queries.unschedule_flush()))[0]

    # ------------------------------------------------------------------ read

    async def _fetch(self, call: Call[T]) -> list[T]:
        async with self._connection() as conn, conn.cursor(row_factory=call.row_factory) as cur:
            with translate_errors():
                await cur.execute(call.sql, call.params)
                return await cur.fetchall()

    async def get_traces_by_error(
        self, since: datetime, until: datetime | None = None, service: str | None = None, limit: int = 100
    ) -> list[ErrorSpan]:
        """Error spans started in [since, until), newest first; see `Client.get_traces_by_error`."""
        return await self._fetch(queries.traces_by_error(since, until, service, limit))

    async def trace_spans(self, trace_id: str) -> list[SpanNode]:
        """The span tree of a trace, depth first; see `Client.trace_spans`."""
        return await self._fetch(queries.trace_spans(trace_id))

    async def root_cause(self, trace_id: str) -> list[RootCause]:
        """The spans where a trace's failure originates, best first; see `Client.root_cause`."""
        return await self._fetch(queries.root_cause(trace_id))

    async def compare_traces(self, a: str, b: str) -> list[TraceDifference]:
        """Traces a and b aligned span by span, what differs first; see `Client.compare_traces`."""
        return await self._fetch(queries.compare_traces(a, b))

    async def explain_trace(self, trace_id: str, k: int = 5) -> list[TraceExplanation]:
        """What sets a failing or slow trace apart from its healthy neighbours; see `Client.explain_trace`."""
        return await self._fetch(queries.explain_trace(trace_id, k))

    async def suspect_attributes(
        self,
        service: str,
        operation: str | None = None,
        *,
        since: datetime,
        until: datetime | None = None,
        slower_than_percentile: float | None = None,
    ) -> list[SuspectAttribute]:
        """Attribute values over-represented in failing (or slow) spans; see `Client.suspect_attributes`."""
        return await self._fetch(queries.suspect_attributes(service, operation, since, until, slower_than_percentile))

    async def trace_logs(self, trace_id: str) -> list[LogRecord]:
        """The log records of a trace, by time; see `Client.trace_logs`."""
        return await self._fetch(queries.trace_logs(trace_id))

    async def trace_context(self, trace_id: str) -> TraceContext:
        """A trace's span tree and its logs together; see `Client.trace_context`."""
        return TraceContext(trace_id, await self.trace_spans(trace_id), await self.trace_logs(trace_id))

    async def search_logs(
        self,
        query: str,
        since: datetime | None = None,
        until: datetime | None = None,
        service: str | None = None,
        min_severity: int | None = None,
        limit: int = 100,
    ) -> list[LogRecord]:
        """Full-text log search (web-search syntax), best ranked first; see `Client.search_logs`."""
        return await self._fetch(queries.search_logs(query, since, until, service, min_severity, limit))

    async def metric_series(
        self,
        name: str,
        bucket: timedelta | str,
        since: datetime,
        until: datetime | None = None,
        labels: Mapping[str, Any] | None = None,
        agg: str = "avg",
    ) -> list[MetricPoint]:
        """One metric aggregated in buckets; see `Client.metric_series`."""
        return await self._fetch(queries.metric_series(name, bucket, since, until, labels, agg))

    async def services(self, since: datetime | None = None, until: datetime | None = None) -> list[ServiceSummary]:
        """The services with stored spans, by name; see `Client.services`."""
        return await self._fetch(queries.services(since, until))

    async def operations(
        self,
        service: str,
        span_kind: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[OperationSummary]:
        """The operations (span names, with their kind) of a service; see `Client.operations`."""
        return await self._fetch(queries.operations(service, span_kind, since, until))

    async def find_traces(
        self,
        service: str | None = None,
        operation: str | None = None,
        *,
        attributes: Mapping[str, str | int | float | bool] | None = None,
        min_duration: timedelta | None = None,
        max_duration: timedelta | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 20,
    ) -> list[TraceSummary]:
        """The newest traces with a span that matches every criterion (a Jaeger search); see `Client.find_traces`."""
        return await self._fetch(
            queries.find_traces(service, operation, attributes, min_duration, max_duration, status, since, until, limit)
        )

    async def service_dependencies(self, since: datetime, until: datetime | None = None) -> list[ServiceCall]:
        """Calls between services in [since, until), most calls first; see `Client.service_dependencies`."""
        return await self._fetch(queries.service_dependencies(since, until))

    async def sql(
        self,
        query: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        timeout: float = DEFAULT_SQL_TIMEOUT,
        max_rows: int = DEFAULT_SQL_MAX_ROWS,
    ) -> list[dict[str, Any]]:
        """One statement, contained: its own connection, read only, rolled back, as otel_reader; see `Client.sql`."""
        setup = queries.read_only_transaction(timeout)
        cap = RowCap(max_rows)
        with contained_errors(timeout):
            async with await psycopg.AsyncConnection.connect(**connect_params(self.dsn)) as conn:
                try:
                    async with conn.transaction(force_rollback=True), conn.cursor(row_factory=dict_row) as cur:
                        await cur.execute(setup.sql, setup.params)
                        try:
                            async for row in cur.stream(query, params):
                                if not cap.take(row):
                                    break
                        except psycopg.ProgrammingError as exc:
                            cap.no_rows(exc)
                finally:
                    if not conn.broken:
                        await conn.execute(QUERIES["release_session_locks"])
        return cap.result()

    async def similar_traces(
        self,
        query: str | Sequence[float] | np.ndarray,
        k: int = 10,
        min_similarity: float | None = None,
        *,
        service: str | None = None,
        since: datetime | None = None,
        model: str | None = None,
    ) -> list[TraceResult]:
        """Traces most similar to `query`, best first; see `Client.similar_traces`.

        Free text is embedded in a worker thread (`asyncio.to_thread`).
        """
        call = await asyncio.to_thread(self._similar_call, query, k, min_similarity, service, since, model)
        return await self._fetch(call)

    find_similar_traces = similar_traces  # the seed design's name

    # ------------------------------------------------------------------ status

    async def health(self) -> bool:
        """True when the database answers and the otel schema is installed."""
        try:
            async with self._connection() as conn:
                row = await (await conn.execute(QUERIES["health"])).fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0])
