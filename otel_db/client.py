"""`Client`: the thin synchronous Python face of the SQL API.

The database does the work (`otel.flush()` parses, validates, dedupes); the
client only moves bytes in with COPY and calls SQL. It holds one connection,
opened lazily, in autocommit mode: `call otel.flush()` commits inside the
procedure, which PostgreSQL refuses inside a transaction block, and the
write methods open their own explicit transactions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from itertools import chain
from types import TracebackType
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from otel_db.ingest import (
    IngestError,
    IngestReport,
    check_columns,
    copy_otlp_records,
    staging_columns,
)
from otel_db.results import TraceResult
from otel_db.settings import Settings, libpq_dsn

if TYPE_CHECKING:
    import numpy as np

    from otel_db.embedding import Embedder

# A query string that is a trace id asks for traces like that trace.
_TRACE_ID = re.compile(r"\s*[0-9a-fA-F]{32}\s*")

# Connection parameters the client sets unless the DSN says otherwise.
_CONNECT_DEFAULTS = {"application_name": "otel_db", "connect_timeout": "10"}


def connect(dsn: str) -> psycopg.Connection:
    """Open an autocommit connection with UTF-8 client encoding.

    UTF-8 is forced because COPY sends raw bytes and the line screening in
    `otel_db.lines` judges them as UTF-8; a client_encoding inherited from
    PGCLIENTENCODING would make the server re-interpret them.
    """
    params: dict[str, Any] = {**_CONNECT_DEFAULTS, **conninfo_to_dict(libpq_dsn(dsn))}
    params["client_encoding"] = "UTF8"
    return psycopg.connect(autocommit=True, **params)


class Client:
    """Write to and ask an otel_db store.

    `Client(dsn)` or `Client.from_env()`; use it as a context manager or call
    `close()`. The connection opens on first use and reopens after it broke,
    so a long-lived client survives a database restart.
    """

    def __init__(self, dsn: str | None = None, *, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self.dsn = libpq_dsn(dsn) if dsn else self.settings.connection_string
        self._conn: psycopg.Connection | None = None
        self._embedder: Embedder | None = None

    @classmethod
    def from_env(cls) -> Client:
        """A client configured by the OTEL_STORAGE_* environment variables."""
        return cls(settings=Settings.from_env())

    def __enter__(self) -> Client:
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
        """COPY span rows (staging column name -> value) into otel.traces_staging.

        Every row must have the keys of the first. Values become text as the
        staging contract expects: dicts and lists as JSON, datetimes as
        ISO 8601 (naive ones taken as UTC), bytes as lowercase hex, None as
        NULL. A row with a value PostgreSQL cannot store (a NUL character, a
        lone surrogate) is dead-lettered as 'row-json' instead of failing the
        batch. Returns the number of rows staged. One transaction.
        """
        it = iter(rows)
        first = next(it, None)
        if first is None:
            return 0
        columns = list(first.keys())
        conn = self.connection()
        check_columns(columns, staging_columns(conn, "traces"), "otel.traces_staging")
        statement = sql.SQL("copy otel.traces_staging ({}) from stdin").format(
            sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        keys = set(columns)
        rejected: list[tuple[str, str]] = []
        staged = 0
        with conn.transaction():
            with conn.cursor() as cur, cur.copy(statement) as copy:
                for number, row in enumerate(chain([first], it), 1):
                    if set(row.keys()) != keys:
                        raise IngestError(
                            f"row {number} has keys {sorted(row.keys())}, row 1 has "
                            f"{sorted(keys)}: every row needs the same keys"
                        )
                    values = [to_text(row[c]) for c in columns]
                    problem = _unstorable_value(columns, values)
                    if problem:
                        raw = json.dumps(dict(zip(columns, values, strict=True)))
                        rejected.append((raw, f"row {number}: {problem}"))
                        continue
                    copy.write_row(values)
                    staged += 1
            if rejected:
                with conn.cursor() as cur:
                    cur.executemany(
                        "select otel.dead_letter('traces', 'Client.copy_spans', %s, 'row-json', %s)",
                        rejected,
                    )
        return staged

    def flush(self) -> dict[str, Any]:
        """Run `call otel.flush()` now and return the otel.flush_runs row it wrote.

        Returns {} if the procedure recorded nothing. A concurrent flush (the
        pg_cron job) may record a newer row; the newest one is returned.
        """
        conn = self.connection()
        with conn.cursor(row_factory=dict_row) as cur:
            before = cur.execute("select coalesce(max(id), 0) as id from otel.flush_runs")
            last_id = before.fetchone()["id"]  # type: ignore[index]
            cur.execute("call otel.flush()")
            row = cur.execute(
                "select * from otel.flush_runs where id > %s order by id desc limit 1",
                [last_id],
            ).fetchone()
        return dict(row) if row else {}

    # ------------------------------------------------------------------ read

    def embedder(self) -> Embedder:
        """The client's embedder (ONNX MiniLM, or the fallback), loaded on first use."""
        if self._embedder is None:
            from otel_db.embedding import Embedder  # onnxruntime loads only when needed

            self._embedder = Embedder(self.settings.model_dir, cache_size=self.settings.cache_size)
        return self._embedder

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
        `min_similarity` defaults to the similarity_threshold setting.
        """
        threshold = self.settings.similarity_threshold if min_similarity is None else min_similarity
        if isinstance(query, str):
            if not query.strip():
                raise ValueError("query is empty: give some text, a trace id or a vector")
            if _TRACE_ID.fullmatch(query):
                statement = "select * from otel.similar_traces(%s::text, %s, %s, %s, %s)"
                params: tuple[Any, ...] = (query.strip(), k, threshold, service, since)
                return self._trace_results(statement, params)
            embedder = self.embedder()
            vector = embedder.embed([query])[0]
            model = model or embedder.model_name
        else:
            vector = query
            model = model or self.embedder().model_name
        statement = "select * from otel.similar_traces(%s::vector, %s, %s, %s, %s, %s)"
        return self._trace_results(statement, (_vector_literal(vector), k, threshold, service, since, model))

    find_similar_traces = similar_traces  # the seed design's name

    def _trace_results(self, statement: str, params: tuple[Any, ...]) -> list[TraceResult]:
        with self.connection().cursor(row_factory=dict_row) as cur:
            return [TraceResult.from_row(row) for row in cur.execute(statement, params)]

    # ------------------------------------------------------------------ status

    def health(self) -> bool:
        """True when the database answers and the otel schema is installed."""
        try:
            row = self.connection().execute("select to_regclass('otel.otlp_staging') is not null").fetchone()
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


def _vector_literal(vector: Sequence[float] | np.ndarray) -> str:
    """pgvector's text form; the server checks the dimension."""
    return "[" + ",".join(format(float(x), ".9g") for x in vector) + "]"
