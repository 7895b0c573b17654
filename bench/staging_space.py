"""Staging space under a steady write load: 10 flush cycles while a writer keeps COPYing.

The writer stages BATCH rows every INTERVAL seconds (a rate the flush keeps
up with, as a steady state must); a flush runs INTERVAL seconds after the
previous one ends. The size is taken right after the tenth flush, while the
writer goes on.

Reports the size of otel.traces_staging after the cycles against the size
of one batch (the same rows COPYed into an empty table of the same shape).
"""

from __future__ import annotations

import threading
import time

import psycopg

from bench.common import TYPED_COLUMNS, drop_database, fresh_database, span_dicts, typed_row

BATCH = 20_000
CYCLES = 10
INTERVAL = 2.0


def copy_batch(conn: psycopg.Connection, table: str, seed: int) -> None:
    with conn.cursor().copy(f"copy {table} ({TYPED_COLUMNS}) from stdin") as copy:
        for span in span_dicts(BATCH, seed=seed):
            copy.write_row(typed_row(span))


def run() -> dict:
    url = fresh_database("otel_bench")
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            seed = 1
            next_batch = time.monotonic()
            while not stop.is_set():
                copy_batch(conn, "otel.traces_staging", seed)
                written[0] += BATCH
                seed += 1
                next_batch += INTERVAL
                time.sleep(max(0.0, next_batch - time.monotonic()))

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create unlogged table one_batch (like otel.traces_staging)")
            copy_batch(conn, "one_batch", 0)
            batch_bytes = conn.execute("select pg_total_relation_size('one_batch')").fetchone()[0]
            thread = threading.Thread(target=writer)
            thread.start()
            truncated = 0
            for _ in range(CYCLES):
                time.sleep(INTERVAL)
                conn.execute("call otel.flush()")
                truncated += conn.execute(
                    "select ('traces_staging' = any(truncated_staging))::int"
                    " from otel.flush_runs order by id desc limit 1"
                ).fetchone()[0]
            staging_bytes = conn.execute("select pg_total_relation_size('otel.traces_staging')").fetchone()[0]
            stop.set()
            thread.join()
            conn.execute("call otel.flush()")
            moved = conn.execute("select sum(spans) + sum(duplicates) from otel.flush_runs").fetchone()[0]
    finally:
        drop_database("otel_bench")
    return {
        "batch_rows": BATCH,
        "batch_interval_s": INTERVAL,
        "flush_cycles": CYCLES,
        "rows_written": written[0],
        "rows_moved": int(moved),
        "flushes_that_truncated": truncated,
        "one_batch_bytes": batch_bytes,
        "staging_bytes_after_cycles": staging_bytes,
        "staging_vs_batch": round(staging_bytes / batch_bytes, 2),
        "goals": {"staging_vs_batch": "<= 2"},
    }
