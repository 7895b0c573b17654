"""Flush throughput: the typed path against the server's own ceiling, and the OTLP/JSON path.

Typed path: COPY N spans into otel.traces_staging, then `call otel.flush()`.
Ceiling: `insert … select` of the very rows the flush produced into a plain
table with the same columns and indexes, in the same run.
OTLP/JSON path: the same spans as OTLP/JSON requests in otel.otlp_staging.
Every measured statement starts from a checkpoint with no autovacuum worker
running in the database, so that neither side pays for the other's leftovers.
Three rounds, each measuring all three in turn; the figures are their medians.
`flush_narrow` measures the typed path against its ceiling for narrow spans:
three attributes and a resource of the service name alone.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import psycopg

from bench.common import (
    TYPED_COLUMNS,
    drop_database,
    fresh_database,
    otlp_lines,
    span_dicts,
    timed,
    typed_row,
)
from otel_db.ingest import OTLP_COPY_SQL

# The same columns and indexes as otel.traces, whatever revision made them.
CEILING_TABLE = "create table bench_ceiling (like otel.traces including defaults including indexes)"


def copy_typed(conn: psycopg.Connection, count: int, narrow: bool = False) -> float:
    with timed() as t, conn.cursor().copy(f"copy otel.traces_staging ({TYPED_COLUMNS}) from stdin") as copy:
        for span in span_dicts(count, narrow=narrow):
            copy.write_row(typed_row(span))
    return t.seconds


def copy_narrow(conn: psycopg.Connection, count: int) -> float:
    return copy_typed(conn, count, narrow=True)


def copy_otlp(conn: psycopg.Connection, count: int) -> float:
    with timed() as t, conn.cursor().copy(OTLP_COPY_SQL) as copy:
        for line in otlp_lines(span_dicts(count)):
            copy.write(b"\x01" + line.encode() + b"\x01\n")
    return t.seconds


def settle(conn: psycopg.Connection, patience: float = 120.0) -> None:
    """Checkpoint, then wait (up to `patience` seconds) until no autovacuum worker runs in this database."""
    conn.execute("checkpoint")
    deadline = time.monotonic() + patience
    while (
        time.monotonic() < deadline
        and conn.execute(
            "select exists (select from pg_stat_activity"
            " where backend_type = 'autovacuum worker' and datname = current_database())"
        ).fetchone()[0]
    ):
        time.sleep(0.5)


def flush(conn: psycopg.Connection) -> tuple[float, int]:
    with timed() as t:
        conn.execute("call otel.flush()")
    spans = conn.execute("select spans from otel.flush_runs order by id desc limit 1").fetchone()[0]
    return t.seconds, spans


def copy_and_flush(
    conn: psycopg.Connection, copy: Callable[[psycopg.Connection, int], float], spans: int
) -> tuple[float, float]:
    """Seconds to COPY `spans` spans with `copy` and to flush them, each from a settled server."""
    conn.execute("truncate otel.traces, otel.trace_summaries, otel.span_signatures, otel.flush_runs")
    conn.execute("checkpoint")
    copy_seconds = copy(conn, spans)
    settle(conn)
    flush_seconds, moved = flush(conn)
    assert moved == spans, f"the flush moved {moved} of {spans} spans"
    return copy_seconds, flush_seconds


def typed_round(conn: psycopg.Connection, spans: int, copy: Callable[[psycopg.Connection, int], float]) -> dict:
    """COPY and flush typed spans, then the ceiling: `insert … select` of the rows they produced."""
    typed_copy, typed_flush = copy_and_flush(conn, copy, spans)
    conn.execute(CEILING_TABLE)
    settle(conn)
    with timed() as ceiling:
        conn.execute("insert into bench_ceiling select * from otel.traces")
    conn.execute("drop table bench_ceiling")
    return {
        "typed_copy_spans_per_s": round(spans / typed_copy),
        "typed_flush_spans_per_s": round(spans / typed_flush),
        "ceiling_insert_select_rows_per_s": round(spans / ceiling.seconds),
        "typed_flush_vs_ceiling": round(ceiling.seconds / typed_flush, 3),
        "typed_flush_seconds": typed_flush,
    }


def one_round(conn: psycopg.Connection, spans: int) -> dict:
    """The typed spans and their ceiling, then the same spans as OTLP/JSON."""
    typed = typed_round(conn, spans, copy_typed)
    otlp_copy, otlp_flush = copy_and_flush(conn, copy_otlp, spans)
    typed_flush = typed.pop("typed_flush_seconds")
    return {
        **typed,
        "otlp_copy_spans_per_s": round(spans / otlp_copy),
        "otlp_flush_spans_per_s": round(spans / otlp_flush),
        "otlp_vs_typed": round(typed_flush / otlp_flush, 3),
    }


def narrow_round(conn: psycopg.Connection, spans: int) -> dict:
    measured = typed_round(conn, spans, copy_narrow)
    del measured["typed_flush_seconds"]
    return measured


def medians(spans: int, rounds: int, measure: Callable[[psycopg.Connection, int], dict]) -> dict:
    """The median of `rounds` rounds: on a shared machine one ceiling or one flush can be 10 % off."""
    url = fresh_database("otel_bench")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            measured = [measure(conn, spans) for _ in range(rounds)]
    finally:
        drop_database("otel_bench")
    return {
        "spans": spans,
        "rounds": rounds,
        **{key: statistics.median(r[key] for r in measured) for key in measured[0]},
        "each_round": measured,
    }


def run(spans: int = 1_000_000, rounds: int = 3) -> dict:
    return {
        **medians(spans, rounds, one_round),
        "goals": {"typed_flush_vs_ceiling": ">= 0.6", "otlp_vs_typed": ">= 0.5"},
    }


def run_narrow(spans: int = 1_000_000, rounds: int = 3) -> dict:
    """Narrow spans (three attributes, a resource of the service name alone), typed, against their ceiling."""
    return {**medians(spans, rounds, narrow_round), "goals": {"typed_flush_vs_ceiling": ">= 0.6"}}
