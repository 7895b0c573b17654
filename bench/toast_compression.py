"""lz4 against pglz for large values: COPY and flush of spans that carry stack traces, side by side in one run.

Every span gets an exception event with a Python traceback of some 4 kB
(a value PostgreSQL compresses); the spans are otherwise bench.common's
realistic ones, written once to a file in COPY's text format, so that the
COPY is timed on the server's side. Each round COPYs them into
otel.traces_staging and flushes them, once as the schema has it (lz4 on the
columns that can hold large values, and in the flush's working tables) and
once with every such column and the flush set back to pglz, PostgreSQL's
default, in alternating order.
Reported: COPY and flush rates (medians of the rounds) and the bytes a span
takes in otel.traces (heap, TOAST and indexes).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import psycopg

from bench.common import copy_staging_file, drop_database, fresh_database, span_dicts, timed, typed_line
from bench.flush_throughput import settle

DATABASE = "otel_bench_toast"

# The columns the schema compresses with lz4, found in the catalog (final tables, their partitions, staging).
LZ4_COLUMNS = """
select c.oid::regclass::text, a.attname
  from pg_attribute as a join pg_class as c on c.oid = a.attrelid
 where c.relnamespace = 'otel'::regnamespace and a.attcompression = 'l' and not a.attisdropped
"""
WORKING_TABLES = ("function otel.flush_process(timestamptz, text[], boolean)", "procedure otel.retry_dlq(integer)")


def traceback(n: int) -> str:
    return "".join(
        f'  File "/app/service/orders_{i}.py", line {i * 7 + n % 13}, in handle_{i}\n'
        f"    result = await self.repository.fetch(order_id={n})\n"
        for i in range(45)
    )


def write_spans(path: Path, count: int) -> None:
    """The spans, each with a traceback event, as typed staging rows in COPY's text format."""
    with path.open("w") as tsv:
        for n, span in enumerate(span_dicts(count)):
            exception = {"exception.type": "QueryCanceled", "exception.stacktrace": traceback(n)}
            span["events"] = [*span["events"], {"name": "exception", "time": None, "attributes": exception}]
            tsv.write(typed_line(span))


def use(conn: psycopg.Connection, columns: list[tuple[str, str]], method: str) -> None:
    for table, column in columns:
        conn.execute(f"alter table {table} alter column {column} set compression {method}")
    for routine in WORKING_TABLES:
        conn.execute(f"alter {routine} set default_toast_compression = '{method}'")


def copy_and_flush(conn: psycopg.Connection, typed: Path, spans: int) -> tuple[float, float, float]:
    """Seconds to COPY the file and to flush its spans into emptied tables, and the bytes a span then takes."""
    conn.execute("truncate otel.traces, otel.trace_summaries, otel.span_signatures, otel.flush_runs")
    settle(conn)
    with timed() as copying:
        copy_staging_file(conn, typed)
    settle(conn)
    with timed() as flushing:
        conn.execute("call otel.flush()")
    stored = conn.execute(
        "select sum(pg_total_relation_size(p.relid)) from pg_partition_tree('otel.traces') as p where p.isleaf"
    ).fetchone()[0]
    return copying.seconds, flushing.seconds, stored / spans


def run(spans: int = 50_000, rounds: int = 3) -> dict:
    url = fresh_database(DATABASE)
    measured: dict[str, list[tuple[float, float, float]]] = {"lz4": [], "pglz": []}
    scratch = tempfile.TemporaryDirectory(prefix="otel_db-toast-")
    typed = Path(scratch.name) / "typed.tsv"
    write_spans(typed, spans)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("select otel.ensure_partitions('traces', array['2025-11-24'::date, '2025-11-25'::date])")
            columns = conn.execute(LZ4_COLUMNS).fetchall()
            for round_number in range(rounds):
                for method in ("lz4", "pglz") if round_number % 2 == 0 else ("pglz", "lz4"):
                    use(conn, columns, method)
                    measured[method].append(copy_and_flush(conn, typed, spans))
    finally:
        drop_database(DATABASE)
        scratch.cleanup()

    def figures(method: str) -> dict:
        runs = measured[method]
        return {
            "copy_spans_per_s": round(spans / statistics.median(r[0] for r in runs)),
            "flush_spans_per_s": round(spans / statistics.median(r[1] for r in runs)),
            "bytes_per_span": round(statistics.median(r[2] for r in runs)),
        }

    lz4, pglz = figures("lz4"), figures("pglz")
    return {
        "spans": spans,
        "rounds": rounds,
        "lz4": lz4,
        "pglz": pglz,
        "lz4_vs_pglz_copy": round(lz4["copy_spans_per_s"] / pglz["copy_spans_per_s"], 3),
        "lz4_vs_pglz_flush": round(lz4["flush_spans_per_s"] / pglz["flush_spans_per_s"], 3),
        "lz4_vs_pglz_bytes": round(lz4["bytes_per_span"] / pglz["bytes_per_span"], 3),
        "each_round": {m: [[round(c, 3), round(f, 3), round(b)] for c, f, b in r] for m, r in measured.items()},
        "goals": {"lz4_vs_pglz": "report (the choice of lz4 for large values)"},
    }
