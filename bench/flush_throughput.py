"""Flush throughput: the typed path against the server's own ceiling, and the OTLP/JSON path.

Typed path: COPY N spans into otel.traces_staging, then `call otel.flush()`.
Ceiling: `insert … select` of the very rows the flush produced into a table
with the same columns, daily partitions and indexes, in the same run.
OTLP/JSON path: the same spans as OTLP/JSON requests in otel.otlp_staging.
Every measured statement starts from a checkpoint with no autovacuum worker
running in the database, so that neither side pays for the other's leftovers.
Three rounds, each measuring all three in turn; the figures are their medians.
Then the same in steady state (`populated`): otel.traces already holding 10M
spans in the same daily partition, with their trace summaries and signatures
(1M flushed, then copied under new trace ids), and the ceiling table the
same rows; three rounds each flush 1M more spans and insert the rows they
produced into the ceiling table.
`flush_narrow` measures the typed path against its ceiling for narrow spans:
three attributes and a resource of the service name alone.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import psycopg

from bench.common import (
    OTLP_COPY_SQL,
    TYPED_COLUMNS,
    drop_database,
    fresh_database,
    otlp_copy_line,
    otlp_lines,
    span_dicts,
    timed,
    typed_row,
)


def create_ceiling_table(conn: psycopg.Connection) -> None:
    """bench_ceiling: the columns, daily partitions and per-partition indexes of otel.traces, empty.

    The indexes belong to the partitions (otel.index_partition()), not to the
    partitioned table, so each partition is copied with its own.
    """
    conn.execute("create table bench_ceiling (like otel.traces including defaults) partition by range (start_time)")
    for partition, bounds in conn.execute(
        "select c.oid::regclass::text, pg_get_expr(c.relpartbound, c.oid) from pg_inherits as i"
        " join pg_class as c on c.oid = i.inhrelid where i.inhparent = 'otel.traces'::regclass"
    ).fetchall():
        copy = "bench_ceiling_" + partition.rsplit("_", 1)[-1]
        conn.execute(f"create table {copy} (like {partition} including defaults including indexes)")
        conn.execute(f"alter table bench_ceiling attach partition {copy} {bounds}")


def copy_typed(conn: psycopg.Connection, count: int, narrow: bool = False, seed: int = 7) -> float:
    with timed() as t, conn.cursor().copy(f"copy otel.traces_staging ({TYPED_COLUMNS}) from stdin") as copy:
        for span in span_dicts(count, seed=seed, narrow=narrow):
            copy.write_row(typed_row(span))
    return t.seconds


def copy_narrow(conn: psycopg.Connection, count: int) -> float:
    return copy_typed(conn, count, narrow=True)


def copy_otlp(conn: psycopg.Connection, count: int) -> float:
    with timed() as t, conn.cursor().copy(OTLP_COPY_SQL) as copy:
        for line in otlp_lines(span_dicts(count)):
            copy.write(otlp_copy_line(line).encode())
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
    create_ceiling_table(conn)
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


def run(spans: int = 1_000_000, rounds: int = 3, stored: int = 10_000_000) -> dict:
    """Empty tables (each round truncates them), then tables already holding `stored` spans."""
    return {
        **medians(spans, rounds, one_round),
        "populated": run_populated(spans, stored, rounds),
        "goals": {"typed_flush_vs_ceiling": ">= 0.6", "otlp_vs_typed": ">= 0.5"},
    }


def copy_with_new_trace_ids(conn: psycopg.Connection, source: str, target: str, copies: int) -> None:
    """Insert `copies` copies of `source`'s rows into `target`, each under trace ids of its own."""
    columns = [
        name
        for (name,) in conn.execute(
            "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped"
            " order by attnum",
            (target,),
        )
    ]
    for copy in range(1, copies + 1):
        values = ", ".join(f"md5(trace_id || '/{copy}')" if name == "trace_id" else name for name in columns)
        conn.execute(f"insert into {target} ({', '.join(columns)}) select {values} from {source}")


def populate(conn: psycopg.Connection, spans: int, stored: int) -> None:
    """otel.traces holding `stored` spans with their trace summaries and signatures, and bench_ceiling the same rows.

    `spans` realistic spans are copied and flushed; their spans and trace
    summaries are then inserted again under new trace ids until there are
    `stored`, in the same daily partition as the spans measured later.
    """
    copy_typed(conn, spans, seed=1)
    flush(conn)
    conn.execute("create temp table seed_spans as select * from otel.traces")
    conn.execute("create temp table seed_summaries as select * from otel.trace_summaries")
    copies = max(stored // spans - 1, 0)
    copy_with_new_trace_ids(conn, "seed_spans", "otel.traces", copies)
    copy_with_new_trace_ids(conn, "seed_summaries", "otel.trace_summaries", copies)
    conn.execute("update otel.span_signatures set span_count = span_count * %s", (copies + 1,))
    conn.execute("drop table seed_spans, seed_summaries")
    create_ceiling_table(conn)
    conn.execute("insert into bench_ceiling select * from otel.traces")
    conn.execute("vacuum analyze otel.traces, otel.trace_summaries, otel.span_signatures, bench_ceiling")


def populated_round(conn: psycopg.Connection, spans: int, seed: int) -> dict:
    """COPY and flush `spans` new spans into the populated tables, then insert the rows it produced into the
    populated ceiling table."""
    copy_seconds = copy_typed(conn, spans, seed=seed)
    settle(conn)
    flush_seconds, moved = flush(conn)
    assert moved == spans, f"the flush moved {moved} of {spans} spans"
    # The rows this round's flush produced, set apart untimed: the ceiling
    # inserts them from a table of their own, as the empty rounds insert
    # everything otel.traces holds.
    conn.execute("create temp table round_traces (trace_id text)")
    with conn.cursor().copy("copy round_traces from stdin") as copy:
        for trace_id in {span["trace_id"] for span in span_dicts(spans, seed=seed)}:
            copy.write_row([trace_id])
    conn.execute("create table bench_round as select t.* from otel.traces as t join round_traces using (trace_id)")
    conn.execute("drop table round_traces")
    settle(conn)
    with timed() as ceiling:
        inserted = conn.execute("insert into bench_ceiling select * from bench_round").rowcount
    conn.execute("drop table bench_round")
    assert inserted == spans, f"the round produced {inserted} rows for {spans} spans"
    return {
        "typed_copy_spans_per_s": round(spans / copy_seconds),
        "typed_flush_spans_per_s": round(spans / flush_seconds),
        "ceiling_insert_select_rows_per_s": round(spans / ceiling.seconds),
        "typed_flush_vs_ceiling": round(ceiling.seconds / flush_seconds, 3),
    }


def run_populated(spans: int, stored: int, rounds: int = 3) -> dict:
    """The typed flush and its ceiling into tables already holding `stored` spans: each round adds `spans`."""
    url = fresh_database("otel_bench")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            with timed() as filling:
                populate(conn, spans, stored)
            before = conn.execute("select count(*) from otel.traces").fetchone()[0]  # type: ignore[index]
            measured = [populated_round(conn, spans, seed=100 + r) for r in range(rounds)]
            total = conn.execute("select count(*) from otel.traces").fetchone()[0]  # type: ignore[index]
    finally:
        drop_database("otel_bench")
    return {
        "stored_spans_before": before,
        "stored_spans_after": total,
        "populate_seconds": round(filling.seconds),
        **{key: statistics.median(r[key] for r in measured) for key in measured[0]},
        "each_round": measured,
    }


def run_narrow(spans: int = 1_000_000, rounds: int = 3) -> dict:
    """Narrow spans (three attributes, a resource of the service name alone), typed, against their ceiling."""
    return {**medians(spans, rounds, narrow_round), "goals": {"typed_flush_vs_ceiling": ">= 0.6"}}
