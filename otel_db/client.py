"""`Client`: the thin synchronous Python face of the SQL API.

The database does the work (`otel.flush()` parses, validates, dedupes; the
`otel.*` read functions check their arguments); the client only moves bytes
in with COPY and calls SQL (the named queries of `otel_db/queries.sql`). It
holds one connection, opened lazily, in autocommit mode: `call otel.flush()`
commits inside the procedure, which PostgreSQL refuses inside a transaction
block, and the write methods open their own explicit transactions.

What `Client` and `otel_db.aio.AsyncClient` share lives here (`BaseClient`,
`connect_params`, the exceptions and their translation) and in
`otel_db.queries`; the two differ only in I/O.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from otel_db import queries
from otel_db.ingest import (
    SIGNALS,
    IngestError,
    IngestReport,
    check_columns,
    copy_otlp_records,
    staging_columns,
)
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
from otel_db.settings import DEFAULT_FLUSH_INTERVAL, EMBEDDING_EXTRA_HINT, Settings, libpq_dsn

if TYPE_CHECKING:
    import numpy as np

    from otel_db.embedding import Embedder

T = TypeVar("T")

# A query string that is a trace id asks for traces like that trace.
_TRACE_ID = re.compile(r"\s*[0-9a-fA-F]{32}\s*")


def is_trace_id(query: str) -> bool:
    """True for 32 hex digits (white space around allowed): `similar_traces` takes such a query as a trace id."""
    return _TRACE_ID.fullmatch(query) is not None


# Connection parameters the client sets unless the DSN says otherwise.
_CONNECT_DEFAULTS = {"application_name": "otel_db", "connect_timeout": "10"}

# How long a statement of `sql()` may run, and how many rows it may return, unless the caller says otherwise.
DEFAULT_SQL_TIMEOUT = 30.0
DEFAULT_SQL_MAX_ROWS = 10_000


def connect_params(dsn: str) -> dict[str, Any]:
    """Keyword arguments for `psycopg.Connection.connect` (and its async twin).

    Autocommit, the client defaults, and UTF-8 client encoding, forced
    because COPY sends raw bytes and the line screening in `otel_db.lines`
    judges them as UTF-8; a client_encoding inherited from PGCLIENTENCODING
    would make the server re-interpret them.
    """
    params: dict[str, Any] = {**_CONNECT_DEFAULTS, **conninfo_to_dict(libpq_dsn(dsn))}
    params["client_encoding"] = "UTF8"
    return {"autocommit": True, **params}


def connect(dsn: str) -> psycopg.Connection:
    """Open an autocommit connection with UTF-8 client encoding (see `connect_params`)."""
    return psycopg.connect(**connect_params(dsn))


class OtelDbError(Exception):
    """Base class of the errors the read API raises (`InvalidArgument`, `ReadOnlyQueryError`, `QueryTimeout`)."""


class InvalidArgument(OtelDbError, ValueError):
    """The server refused an argument: SQLSTATE class 22, mostly 22023 invalid_parameter_value.

    The message is the server's, which says what was wrong and what is
    allowed. A `ValueError`, so callers that catch that keep working.
    """


class ReadOnlyQueryError(OtelDbError):
    """`sql()` was given a statement that writes; it only reads."""


class QueryTimeout(OtelDbError):
    """A statement ran longer than its statement timeout and was cancelled."""


class TooManyRows(OtelDbError):
    """`sql()` was given a statement that returns more rows than its row cap."""


class RowCap:
    """The rows of a `sql()` call, at most `max_rows` of them; shared by Client and AsyncClient."""

    def __init__(self, max_rows: int) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        self.max_rows = max_rows
        self.rows: list[dict[str, Any]] = []
        self.exceeded = False

    def take(self, row: dict[str, Any]) -> bool:
        """Keep the row; False (stop reading) once there is one more than the cap allows."""
        if len(self.rows) == self.max_rows:
            self.exceeded = True
            return False
        self.rows.append(row)
        return True

    @staticmethod
    def no_rows(exc: psycopg.ProgrammingError) -> None:
        """psycopg's stream() reports a statement without rows (SET, DO) client-side: that is no rows.

        An error of the server (a syntax error is a ProgrammingError too) carries a SQLSTATE and is raised again.
        """
        if exc.sqlstate is not None:
            raise exc

    def result(self) -> list[dict[str, Any]]:
        if self.exceeded:
            raise TooManyRows(
                f"the statement returns more than {self.max_rows:,} rows: add a limit or an aggregate,"
                " or pass a larger max_rows= to sql()"
            )
        return self.rows


@contextmanager
def translate_errors(timeout: float | None = None) -> Iterator[None]:
    """Turn the server's refusals into the exceptions above; every read method runs inside this.

    `timeout` is the statement timeout (seconds) in force, for the message.
    Anything else (connection trouble, a cancel by the user) passes unchanged.
    """
    try:
        yield
    except psycopg.errors.ReadOnlySqlTransaction as exc:
        raise ReadOnlyQueryError(
            f"sql() is read-only ({exc.diag.message_primary}); store data with copy_otlp() or copy_spans() "
            "and move it into the tables with flush()"
        ) from exc
    except psycopg.errors.QueryCanceled as exc:
        if "statement timeout" not in (exc.diag.message_primary or ""):
            raise
        limit = f" of {timeout:g} s" if timeout is not None else ""
        raise QueryTimeout(
            f"the statement ran longer than the statement timeout{limit} and was cancelled"
            + ("; pass a larger timeout= to sql()" if timeout is not None else "")
        ) from exc
    except psycopg.errors.DataError as exc:
        raise InvalidArgument(exc.diag.message_primary or str(exc).strip()) from exc


@contextmanager
def contained_errors(timeout: float) -> Iterator[None]:
    """`translate_errors` for `sql()`, which runs as otel_reader: what that role may not do is refused."""
    with translate_errors(timeout):
        try:
            yield
        except psycopg.errors.InsufficientPrivilege as exc:
            message = exc.diag.message_primary or str(exc).strip()
            if "set role" in message:
                raise OtelDbError(
                    f"sql() runs with the privileges of otel_reader, which this connection's role may not take"
                    f" ({message}): grant otel_reader to it"
                ) from exc
            raise ReadOnlyQueryError(
                f"sql() runs read-only with the privileges of otel_reader ({message}); store data with copy_otlp()"
                " or copy_spans() and move it into the tables with flush()"
            ) from exc


DEAD_LETTER_ROW_SQL = "select otel.dead_letter(%s, %s, %s, 'row-json', %s)"


@dataclass
class RowsCopy:
    """The decisions of `copy_rows`, without I/O, shared by Client and AsyncClient."""

    kind: str
    source: str
    columns: list[str]
    rows: Iterator[Mapping[str, object]]
    rejected: list[tuple[str, str, str, str]] = field(default_factory=list)
    staged: int = 0

    @classmethod
    def start(cls, kind: str, rows: Iterable[Mapping[str, object]], source: str) -> RowsCopy | None:
        """None when there are no rows; the columns are the first row's keys."""
        if kind not in SIGNALS:
            raise ValueError(f"kind must be one of {', '.join(SIGNALS)}, got {kind!r}")
        it = iter(rows)
        first = next(it, None)
        if first is None:
            return None
        return cls(kind, source, list(first.keys()), chain([first], it))

    def check(self, allowed: list[str]) -> None:
        check_columns(self.columns, allowed, f"otel.{self.kind}_staging")

    @property
    def statement(self) -> sql.Composed:
        return sql.SQL("copy {} ({}) from stdin").format(
            sql.Identifier("otel", f"{self.kind}_staging"), sql.SQL(", ").join(map(sql.Identifier, self.columns))
        )

    def values(self) -> Iterator[list[str | None]]:
        """Each storable row as staging text; the others go to `rejected`."""
        keys = set(self.columns)
        for number, row in enumerate(self.rows, 1):
            if set(row.keys()) != keys:
                raise IngestError(
                    f"row {number} has keys {sorted(row.keys())}, row 1 has {sorted(keys)}: "
                    "every row needs the same keys"
                )
            values = [to_text(row[c]) for c in self.columns]
            problem = _unstorable_value(self.columns, values)
            if problem:
                raw = json.dumps(dict(zip(self.columns, values, strict=True)))
                self.rejected.append((self.kind, self.source, raw, f"row {number}: {problem}"))
                continue
            self.staged += 1
            yield values


class BaseClient:
    """What `Client` and `AsyncClient` share: settings, the DSN, the embedder and the similarity query.

    Not used on its own; its subclasses add the I/O.
    """

    def __init__(self, dsn: str | None = None, *, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self.dsn = libpq_dsn(dsn) if dsn else self.settings.connection_string
        self._embedder: Embedder | None = None
        # AsyncClient loads and uses the embedder from worker threads.
        self._embedder_lock = threading.Lock()

    @classmethod
    def from_env(cls) -> Self:
        """A client configured by the OTEL_STORAGE_* environment variables."""
        return cls(settings=Settings.from_env())

    def embedder(self) -> Embedder:
        """The client's embedder (ONNX MiniLM, or the fallback), loaded on first use."""
        with self._embedder_lock:
            if self._embedder is None:
                try:
                    from otel_db.embedding import Embedder  # onnxruntime loads only when needed
                except ImportError as exc:
                    raise ImportError(
                        f"embeddings need the embedding extra ({exc.name} is not installed): {EMBEDDING_EXTRA_HINT}"
                    ) from exc

                settings = self.settings
                self._embedder = Embedder(
                    settings.model_dir, cache_size=settings.cache_size, precision=settings.model_precision
                )
            return self._embedder

    def _schedule_call(self, every: float | str | None) -> Call[int]:
        """The schedule_flush call; `every` None: the flush_interval setting.

        Left at its default (5 s), the server picks: every 5 seconds, or every
        minute where pg_cron (1.4) cannot schedule in seconds.
        """
        if every is None and self.settings.flush_interval != DEFAULT_FLUSH_INTERVAL:
            every = self.settings.flush_interval
        return queries.schedule_flush(every)

    def _similar_call(
        self,
        query: str | Sequence[float] | np.ndarray,
        k: int,
        min_similarity: float | None,
        service: str | None,
        since: datetime | None,
        model: str | None,
    ) -> Call[TraceResult]:
        return similar_call(query, k, min_similarity, service, since, model, self.settings, self.embedder)


def similar_call(
    query: str | Sequence[float] | np.ndarray,
    k: int,
    min_similarity: float | None,
    service: str | None,
    since: datetime | None,
    model: str | None,
    settings: Settings,
    embedder: Callable[[], Embedder],
) -> Call[TraceResult]:
    """The similar_traces call for `query` (see `Client.similar_traces`); embeds free text, so it is CPU-bound."""
    threshold = settings.similarity_threshold if min_similarity is None else min_similarity
    if isinstance(query, str):
        if not query.strip():
            raise ValueError("query is empty: give some text, a trace id or a vector")
        if is_trace_id(query):
            return queries.similar_traces_by_trace(query, k, threshold, service, since)
        if min_similarity is None:
            threshold = settings.text_similarity_threshold
        model_in_use = embedder()
        vector = model_in_use.embed([query])[0]
        model = model or model_in_use.model_name
    else:
        vector = query
        model = model or embedder().model_name
    return queries.similar_traces_by_vector(vector, model, k, threshold, service, since)


class Client(BaseClient):
    """Write to and ask an otel_db store.

    `Client(dsn)` or `Client.from_env()`; use it as a context manager or call
    `close()`. The connection opens on first use and reopens after it broke,
    so a long-lived client survives a database restart. Not thread-safe:
    one client per thread.

    Read methods raise `InvalidArgument` (a `ValueError`) with the server's
    message for arguments it refuses; an unknown trace id gives empty
    results, not an error.
    """

    def __init__(self, dsn: str | None = None, *, settings: Settings | None = None) -> None:
        super().__init__(dsn, settings=settings)
        self._conn: psycopg.Connection | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; the client reconnects if used again."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def connection(self) -> psycopg.Connection:
        """The client's connection, opened (or reopened) on demand."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.dsn)
        return self._conn

    # ------------------------------------------------------------------ write

    def copy_otlp(self, lines: Iterable[bytes | str | Mapping[str, object]]) -> IngestReport:
        """COPY OTLP/JSON export requests, one per item, into otel.otlp_staging.

        Items are raw lines (bytes or str) or decoded requests (dicts, sent
        as JSON). Lines PostgreSQL cannot store are dead-lettered with their
        exact bytes, never raised; nothing is parsed until `flush()`.
        """
        return copy_otlp_records(self.connection(), lines, source="Client.copy_otlp")

    def copy_spans(self, rows: Iterable[Mapping[str, object]]) -> int:
        """COPY span rows (staging column name -> value) into otel.traces_staging; see `copy_rows`."""
        return self.copy_rows("traces", rows, source="Client.copy_spans")

    def copy_rows(self, kind: str, rows: Iterable[Mapping[str, object]], *, source: str = "Client.copy_rows") -> int:
        """COPY rows (staging column name -> value) into otel.<kind>_staging (traces, logs or metrics).

        Every row must have the keys of the first. Values become text as the
        staging contract expects: dicts and lists as JSON, datetimes as
        ISO 8601 (naive ones taken as UTC), bytes as lowercase hex, None as
        NULL. A row with a value PostgreSQL cannot store (a NUL character, a
        lone surrogate) is dead-lettered as 'row-json' instead of failing the
        batch. Returns the number of rows staged. One transaction; nothing is
        judged until `flush()`.
        """
        plan = RowsCopy.start(kind, rows, source)
        if plan is None:
            return 0
        conn = self.connection()
        plan.check(staging_columns(conn, kind))
        with conn.transaction():
            with conn.cursor() as cur, cur.copy(plan.statement) as copy:
                for values in plan.values():
                    copy.write_row(values)
            if plan.rejected:
                with conn.cursor() as cur:
                    cur.executemany(DEAD_LETTER_ROW_SQL, plan.rejected)
        return plan.staged

    def store_trace(self, span: Mapping[str, object]) -> int:
        """Stage one span (the seed design's name): `copy_rows("traces", [span])`."""
        return self.copy_rows("traces", [span], source="Client.store_trace")

    def store_log(self, record: Mapping[str, object]) -> int:
        """Stage one log record: `copy_rows("logs", [record])`."""
        return self.copy_rows("logs", [record], source="Client.store_log")

    def store_metrics(self, points: Iterable[Mapping[str, object]]) -> int:
        """Stage metric data points (rows of otel.metrics_staging; all with the same keys)."""
        return self.copy_rows("metrics", points, source="Client.store_metrics")

    def flush(self) -> dict[str, Any]:
        """Run `call otel.flush()` now and return the otel.flush_runs row it wrote.

        Returns {} if the procedure recorded nothing. A concurrent flush (the
        pg_cron job) may record a newer row; the newest one is returned.
        """
        with self.connection().cursor(row_factory=dict_row) as cur:
            last_id = cur.execute(QUERIES["last_flush_run"]).fetchone()["id"]  # type: ignore[index]
            cur.execute(QUERIES["flush"])
            row = cur.execute(QUERIES["flush_run_after"], {"id": last_id}).fetchone()
        return dict(row) if row else {}

    def schedule_flush(self, every: float | str | None = None) -> int:
        """Let pg_cron flush every `every` seconds (default: the flush_interval setting) and return the job id.

        Registers (or replaces) the pg_cron jobs otel-flush and
        otel-maintenance of this database. `every` may also be what
        `otel.schedule_flush()` takes: '30 seconds', '5 minutes', a cron
        expression. pg_cron before 1.5 schedules by the minute at best: there
        the default interval becomes every minute, and a sub-minute one that
        was asked for raises `InvalidArgument` saying so.
        """
        return self._fetch(self._schedule_call(every))[0]

    def unschedule_flush(self) -> bool:
        """Remove this database's pg_cron jobs; False when there were none."""
        return self._fetch(queries.unschedule_flush())[0]

    # ------------------------------------------------------------------ read

    def _fetch(self, call: Call[T]) -> list[T]:
        with translate_errors(), self.connection().cursor(row_factory=call.row_factory) as cur:
            return cur.execute(call.sql, call.params).fetchall()

    def get_traces_by_error(
        self, since: datetime, until: datetime | None = None, service: str | None = None, limit: int = 100
    ) -> list[ErrorSpan]:
        """Error spans started in [since, until) (until: now), newest first, with their exception.

        `service` keeps one service's spans; `limit` is 1..10000. Naive
        datetimes are taken as UTC.
        """
        return self._fetch(queries.traces_by_error(since, until, service, limit))

    def trace_spans(self, trace_id: str) -> list[SpanNode]:
        """The spans of a trace as a tree: depth first, children by start time, with depth and parent."""
        return self._fetch(queries.trace_spans(trace_id))

    def root_cause(self, trace_id: str) -> list[RootCause]:
        """The spans where a trace's failure originates, best first; empty for a trace without errors.

        The failing spans with nothing failing below them (an error travels
        up the tree), those that raised an exception before those with only
        an error status, and those whose only sign is an HTTP status last;
        each with the reason it was chosen. An id that is not 32 hex digits
        raises `InvalidArgument`.
        """
        return self._fetch(queries.root_cause(trace_id))

    def compare_traces(self, a: str, b: str) -> list[TraceDifference]:
        """Traces a and b aligned span by span, the most telling differences first.

        Spans align by service and name (ids and numbers in names replaced),
        the path of operations above them, and start order for repeated
        ones. One row per aligned pair and per span of one trace only, with
        what differs: presence, status, exception type, duration (ratio
        b/a), attributes. Empty when either trace is not stored; an id that
        is not 32 hex digits raises `InvalidArgument`.
        """
        return self._fetch(queries.compare_traces(a, b))

    def explain_trace(self, trace_id: str, k: int = 5) -> list[TraceExplanation]:
        """What sets a failing (or slow) trace apart from its `k` (1..100) nearest healthy neighbours.

        The neighbours share its root service and operation, have no error
        (and, for a trace that did not fail, took less time), are near in
        time and alike in shape. The differences that hold in more than half
        of the comparisons come back, those that hold in most first, the
        span where the failure began before the spans it travelled through.
        Empty when there is nothing to compare with.
        """
        return self._fetch(queries.explain_trace(trace_id, k))

    def suspect_attributes(
        self,
        service: str,
        operation: str | None = None,
        *,
        since: datetime,
        until: datetime | None = None,
        slower_than_percentile: float | None = None,
    ) -> list[SuspectAttribute]:
        """Attribute values over-represented in the failing spans of a service (and operation), best first.

        With `slower_than_percentile` p (0.95, say), in its slow spans instead:
        those longer than the p percentile of the window's. Spans started in
        [since, until) (until: now; at most 31 days; the newest 200,000), at
        most 50 values; see `SuspectAttribute.score`. Naive datetimes are UTC.
        """
        return self._fetch(queries.suspect_attributes(service, operation, since, until, slower_than_percentile))

    def trace_logs(self, trace_id: str) -> list[LogRecord]:
        """The log records correlated to a trace, by time."""
        return self._fetch(queries.trace_logs(trace_id))

    def trace_context(self, trace_id: str) -> TraceContext:
        """A trace's span tree and its logs together (`trace_spans` and `trace_logs`)."""
        return TraceContext(trace_id, self.trace_spans(trace_id), self.trace_logs(trace_id))

    def search_logs(
        self,
        query: str,
        since: datetime | None = None,
        until: datetime | None = None,
        service: str | None = None,
        min_severity: int | None = None,
        limit: int = 100,
    ) -> list[LogRecord]:
        """Log records whose body matches `query`, best ranked first (`LogRecord.rank`), then newest.

        `query` is web-search syntax: words, "a phrase", `or`, `-word`.
        `min_severity` is an OTLP severity number (9 = INFO, 17 = ERROR);
        `limit` is 1..10000. A query of stop words only finds nothing.
        Without `since`, the newest days holding max(limit, 1000) matches are ranked.
        """
        return self._fetch(queries.search_logs(query, since, until, service, min_severity, limit))

    def metric_series(
        self,
        name: str,
        bucket: timedelta | str,
        since: datetime,
        until: datetime | None = None,
        labels: Mapping[str, Any] | None = None,
        agg: str = "avg",
    ) -> list[MetricPoint]:
        """One metric aggregated in buckets from `since` to `until` (default now); empty buckets are left out.

        `bucket` is a timedelta or an interval string such as '1 minute'.
        `labels` keeps points whose labels contain these. `agg` is avg, min,
        max, sum, count, rate (per second, for monotonic sums) or p50, p90,
        p99 (from histogram buckets).
        """
        return self._fetch(queries.metric_series(name, bucket, since, until, labels, agg))

    def services(self, since: datetime | None = None, until: datetime | None = None) -> list[ServiceSummary]:
        """The services with stored spans, by name, with their number of operations and first and last span start.

        Read from the catalog the flush keeps, however many spans are
        stored. `since` and `until` (either may be None) keep the services
        with an operation seen in that window. Naive datetimes are UTC.
        """
        return self._fetch(queries.services(since, until))

    def operations(
        self,
        service: str,
        span_kind: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[OperationSummary]:
        """The operations (span names, with their kind) of a service, by name; empty for an unknown service.

        `span_kind` (server, client, producer, consumer, internal,
        unspecified; any case) keeps one kind; `since` and `until` keep the
        operations seen in that window. Naive datetimes are UTC.
        """
        return self._fetch(queries.operations(service, span_kind, since, until))

    def find_traces(
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
        """The newest `limit` (1..10000) traces with a span started in [since, until) that matches every criterion.

        As a Jaeger search: one span must have the `service`, the
        `operation` (span name), each of the `attributes` (its own or its
        resource's, equal to the value or the number or boolean it spells;
        `error=True` asks for failing spans),
        a duration within `min_duration` and `max_duration`, and the
        `status` (ERROR, OK or UNSET, any case). `since` defaults to an hour
        before `until`, `until` to now; naive datetimes are UTC. Newest first.
        """
        return self._fetch(
            queries.find_traces(service, operation, attributes, min_duration, max_duration, status, since, until, limit)
        )

    def service_dependencies(self, since: datetime, until: datetime | None = None) -> list[ServiceCall]:
        """Calls between services in [since, until) (until: now; at most 31 days), most calls first.

        A call is a span whose parent span belongs to another service.
        Naive datetimes are UTC.
        """
        return self._fetch(queries.service_dependencies(since, until))

    def sql(
        self,
        query: str,
        params: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        timeout: float = DEFAULT_SQL_TIMEOUT,
        max_rows: int = DEFAULT_SQL_MAX_ROWS,
    ) -> list[dict[str, Any]]:
        """Run one statement, contained, and return its rows as dicts.

        For questions the read methods do not cover. `params` fill `%s` or
        `%(name)s` placeholders. The statement runs on a connection of its
        own, closed afterwards, in a read-only transaction that is always
        rolled back, with the privileges of otel_reader whatever the DSN's
        role (which must be able to take them; superusers can): nothing it
        does (locks, settings, large objects, a role) outlives the call, and
        it cannot write, run programs or read server files. It may run
        `timeout` seconds, then `QueryTimeout`; it may return `max_rows`
        rows, then `TooManyRows` (rows are streamed: memory stays bounded).
        A statement that writes raises `ReadOnlyQueryError`; only one
        statement is taken (extended protocol).
        """
        setup = queries.read_only_transaction(timeout)
        cap = RowCap(max_rows)
        with contained_errors(timeout), connect(self.dsn) as conn:
            try:
                with conn.transaction(force_rollback=True), conn.cursor(row_factory=dict_row) as cur:
                    cur.execute(setup.sql, setup.params)
                    try:
                        for row in cur.stream(query, params):
                            if not cap.take(row):
                                break
                    except psycopg.ProgrammingError as exc:
                        cap.no_rows(exc)
            finally:
                if not conn.broken:
                    conn.execute(QUERIES["release_session_locks"])
        return cap.result()

    def similar_traces(
        self,
        query: str | Sequence[float] | np.ndarray,
        k: int = 10,
        min_similarity: float | None = None,
        *,
        service: str | None = None,
        since: datetime | None = None,
        model: str | None = None,
    ) -> list[TraceResult]:
        """Traces most similar to `query`, best first, one per trace.

        `query` is free text (embedded here), a trace id (32 hex digits: traces
        that fail, or run, like that one; never itself) or an embedding of
        384 floats made by `model` (default: this client's embedder).
        `min_similarity` defaults to the text_similarity_threshold setting
        (0.2) for free text, which scores lower against span signatures than
        they score against each other, and to similarity_threshold (0.85)
        for a trace id or a vector.
        """
        return self._fetch(self._similar_call(query, k, min_similarity, service, since, model))

    find_similar_traces = similar_traces  # the seed design's name

    # ------------------------------------------------------------------ status

    def health(self) -> bool:
        """True when the database answers and the otel schema is installed."""
        try:
            row = self.connection().execute(QUERIES["health"]).fetchone()
        except psycopg.Error:
            return False
        return bool(row and row[0])


def to_text(value: object) -> str | None:
    """The text form a staging column expects for a Python value."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return str(value)


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date | bytes | bytearray):
        return to_text(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _unstorable_value(columns: list[str], values: list[str | None]) -> str | None:
    for column, value in zip(columns, values, strict=True):
        if value is None or (value.isascii() and "\x00" not in value):
            continue
        if "\x00" in value:
            return f"column {column} contains a NUL character at offset {value.index(chr(0))}"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"column {column} contains a lone surrogate at offset {exc.start}"
    return None
