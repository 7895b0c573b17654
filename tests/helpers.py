"""Small helpers shared by the tests."""

import json
from collections.abc import Iterable

import psycopg

from otel_db.ingest import OTLP_COPY_SQL


def stage_otlp(conn: psycopg.Connection, requests: Iterable[dict | str]) -> None:
    """COPY OTLP/JSON requests into otel.otlp_staging, one per line."""
    with conn.cursor().copy(OTLP_COPY_SQL) as copy:
        for request in requests:
            line = request if isinstance(request, str) else json.dumps(request)
            copy.write(line.encode() + b"\n")


def flush(conn: psycopg.Connection) -> dict:
    """call otel.flush() and return its otel.flush_runs row."""
    conn.execute("call otel.flush()")
    cur = conn.execute("select * from otel.flush_runs order by id desc limit 1")
    names = [c.name for c in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))


def scalar(conn: psycopg.Connection, query: str, params: tuple | dict | None = None):
    return conn.execute(query, params).fetchone()[0]


def dead_letters(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(telemetry_type, error_message, raw_data) of every letter, oldest first."""
    return conn.execute("select telemetry_type, error_message, raw_data from otel.telemetry_dlq order by id").fetchall()


def stage_spans_with_ids(conn: psycopg.Connection, trace_ids: Iterable[str], kind: str = "SERVER") -> None:
    """COPY one span per trace id into otel.traces_staging (typed columns), whatever the ids are."""
    columns = "trace_id, span_id, name, kind, start_time, end_time"
    with conn.cursor().copy(f"copy otel.traces_staging ({columns}) from stdin") as copy:
        for trace_id in trace_ids:
            copy.write_row([trace_id, "00f067aa0ba902b7", "GET /", kind, "1764000000000000000", "1764000000100000000"])
