"""The Jaeger-compatible query API of `otel-db serve`: `GET /api/traces/{id}` for a 1,000-span trace.

A trace of 1,000 spans (a root and 999 children over three services, each with five attributes and one
in twenty failing with an exception event) is stored beside 200,000 bench spans (bench.common.span_dicts),
through COPY and the flush. Then, 30 times each after a warm-up, from one client on the same machine:

- `GET /api/traces/{id}` (Jaeger's JSON) and `GET /api/v3/traces/{id}` (OTLP/JSON), wall clock per request;
- the yardstick: `select * from otel.trace_export(id)` over psycopg, the rows the API turns into JSON.

The ratio API / yardstick is what the HTTP layer, the read-only transaction as otel_reader and the JSON
mapping add to reading the rows.
"""

from __future__ import annotations

import statistics
import time
import urllib.request

import psycopg

from bench.common import TYPED_COLUMNS, drop_database, fresh_database, typed_row
from bench.explain_latency import percentile
from bench.flush_throughput import copy_typed
from bench.serve_throughput import free_port, serving

DATABASE = "otel_bench_query_api"
RUNS = 30
TRACE_ID = "7" * 32
START_NS = 1_764_000_000_000_000_000 + 1_800 * 10**9  # within the hour of the bench spans


def big_trace(spans: int = 1000) -> list[dict]:
    """A root span and its children, over three services."""
    rows = []
    for n in range(spans):
        failing = n % 20 == 7
        start = START_NS + n * 1_000_000
        service = ("frontend", "checkout", "payment")[n % 3]
        rows.append(
            {
                "trace_id": TRACE_ID,
                "span_id": f"{n + 1:016x}",
                "parent_span_id": None if n == 0 else f"{1:016x}",
                "name": "GET /checkout" if n == 0 else f"step {n % 50}",
                "kind": "SERVER" if n == 0 else "INTERNAL",
                "start_ns": start,
                "end_ns": start + 500_000 if n else START_NS + spans * 1_000_000,
                "status_code": "ERROR" if failing else "UNSET",
                "status_message": "step failed" if failing else None,
                "service_name": service,
                "attributes": {"step": n, "http.route": "/checkout", "ok": not failing, "ratio": n / 7, "user": "u-1"},
                "resource_attributes": {"service.name": service, "host.name": "host-1"},
                "events": [{"name": "exception", "time": None, "attributes": {"exception.type": "StepError"}}]
                if failing
                else [],
            }
        )
    return rows


def get_seconds(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as answer:
        assert answer.status == 200
        answer.read()
    return time.perf_counter() - started


def figures(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": round(percentile(ms, 0.5), 2), "p95_ms": round(percentile(ms, 0.95), 2)}


def run() -> dict:
    url = fresh_database(DATABASE)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            copy_typed(conn, 200_000)
            with conn.cursor().copy(f"copy otel.traces_staging ({TYPED_COLUMNS}) from stdin") as copy:
                for span in big_trace():
                    copy.write_row(typed_row(span))
            conn.execute("call otel.flush()")
            conn.execute("vacuum analyze otel.traces, otel.trace_summaries")
            stored = conn.execute("select count(*) from otel.trace_export(%s)", (TRACE_ID,)).fetchone()[0]
            assert stored == 1000, stored
            sql = []
            for _ in range(RUNS + 1):
                started = time.perf_counter()
                conn.execute("select * from otel.trace_export(%s)", (TRACE_ID,)).fetchall()
                sql.append(time.perf_counter() - started)
        query_port = free_port()
        with serving(url, "--no-flush", query_port=query_port):
            base = f"http://127.0.0.1:{query_port}"
            jaeger = [get_seconds(f"{base}/api/traces/{TRACE_ID}") for _ in range(RUNS + 1)]
            otlp = [get_seconds(f"{base}/api/v3/traces/{TRACE_ID}") for _ in range(RUNS + 1)]
    finally:
        drop_database(DATABASE)
    sql, jaeger, otlp = sql[1:], jaeger[1:], otlp[1:]  # the first of each warms up
    return {
        "trace_spans": 1000,
        "other_spans": 200_000,
        "requests": RUNS,
        "jaeger_api_trace": figures(jaeger),
        "api_v3_trace": figures(otlp),
        "trace_export_sql": figures(sql),
        "jaeger_api_vs_sql_p50": round(statistics.median(jaeger) / statistics.median(sql), 2),
        "api_v3_vs_sql_p50": round(statistics.median(otlp) / statistics.median(sql), 2),
    }
