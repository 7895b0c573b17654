"""Logged against unlogged staging: COPY and flush rates of the same spans, side by side in one run.

Each round COPYs the typed spans into otel.traces_staging and flushes them,
once with the staging and claim tables unlogged (the default) and once
logged (`otel.set_staging_mode('logged')`), in alternating order; the figures
are the medians of the rounds.
"""

from __future__ import annotations

import statistics

import psycopg

from bench.common import drop_database, fresh_database
from bench.flush_throughput import copy_and_flush, copy_typed


def run(spans: int = 300_000, rounds: int = 3) -> dict:
    url = fresh_database("otel_bench_staging")
    measured: dict[str, list[tuple[float, float]]] = {"unlogged": [], "logged": []}
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for round_number in range(rounds):
                order = ["unlogged", "logged"] if round_number % 2 == 0 else ["logged", "unlogged"]
                for mode in order:
                    conn.execute("select otel.set_staging_mode(%s)", (mode,))
                    measured[mode].append(copy_and_flush(conn, copy_typed, spans))
    finally:
        drop_database("otel_bench_staging")

    def rates(mode: str) -> dict:
        return {
            "copy_spans_per_s": round(spans / statistics.median(copy for copy, _ in measured[mode])),
            "flush_spans_per_s": round(spans / statistics.median(flush for _, flush in measured[mode])),
        }

    unlogged, logged = rates("unlogged"), rates("logged")
    return {
        "spans": spans,
        "rounds": rounds,
        "unlogged": unlogged,
        "logged": logged,
        "logged_vs_unlogged_copy": round(logged["copy_spans_per_s"] / unlogged["copy_spans_per_s"], 3),
        "logged_vs_unlogged_flush": round(logged["flush_spans_per_s"] / unlogged["flush_spans_per_s"], 3),
        "each_round_seconds": {mode: [[round(c, 3), round(f, 3)] for c, f in runs] for mode, runs in measured.items()},
        "goals": {"logged_vs_unlogged": "report (the cost of durable staging)"},
    }
