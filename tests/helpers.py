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
