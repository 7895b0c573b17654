"""`otel.explain_trace()` and `otel.compare_traces()` at 1,000,000 spans (OTEL_DB_BENCH_SPANS_EXPLAIN).

The bench spans (bench.common.span_dicts: traces of 1-8 spans over six services, about 3 % of spans
failing) go through the real pipeline (COPY into otel.traces_staging, `call otel.flush()`, `vacuum
analyze`). Then, for 50 failing traces chosen at random (by a hash of their ids):

- `otel.explain_trace(trace_id)` (k = 5): the goal is a p50 under 1 s;
- `otel.compare_traces(a, b)` with a healthy trace of the same root operation as a;
- `otel.trace_spans(trace_id)` of the same traces, the yardstick: reading one trace's spans, which
  explain_trace does for the trace and its neighbours (and for the 4k candidates it chooses them from).

Timings are wall-clock from the client, each call once after one warm-up call of each function.
"""

from __future__ import annotations

import os
import statistics
import time

import psycopg

from bench.common import drop_database, fresh_database, timed
from bench.flush_throughput import copy_typed

DATABASE = "otel_bench_explain"
TRACES = 50


def spans_from_env() -> int:
    return int(os.environ.get("OTEL_DB_BENCH_SPANS_EXPLAIN", "1000000"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(percentile(ms, 0.5), 2),
        "p90_ms": round(percentile(ms, 0.9), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


def timed_call(conn: psycopg.Connection, query: str, params: tuple) -> tuple[float, list[tuple]]:
    start = time.perf_counter()
    rows = conn.execute(query, params).fetchall()
    return time.perf_counter() - start, rows


def run(spans: int | None = None) -> dict:
    spans = spans_from_env() if spans is None else spans
    url = fresh_database(DATABASE)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            with timed() as load:
                copy_typed(conn, spans)
                conn.execute("call otel.flush()")
            with timed() as vacuum:
                conn.execute("vacuum analyze otel.traces, otel.trace_summaries")
            traces, failing_traces = conn.execute(
                "select count(*), count(*) filter (where error_count > 0) from otel.trace_summaries"
            ).fetchone()
            chosen = conn.execute(
                "select f.trace_id, h.trace_id"
                "  from (select trace_id, root_service, root_name from otel.trace_summaries"
                "         where error_count > 0 order by md5(trace_id) limit %s) as f"
                "  cross join lateral (select s.trace_id from otel.trace_summaries as s"
                "                       where s.root_service = f.root_service and s.root_name = f.root_name"
                "                         and s.error_count = 0 order by md5(s.trace_id) limit 1) as h",
                (TRACES,),
            ).fetchall()
            explain_sql = "select * from otel.explain_trace(%s, 5)"
            compare_sql = "select * from otel.compare_traces(%s, %s)"
            spans_sql = "select * from otel.trace_spans(%s)"
            for query, params in ((explain_sql, chosen[0][:1]), (compare_sql, chosen[0]), (spans_sql, chosen[0][:1])):
                conn.execute(query, params).fetchall()
            explain_seconds, compare_seconds, spans_seconds = [], [], []
            explained, first_kinds = 0, {}
            for failing, healthy in chosen:
                seconds, rows = timed_call(conn, explain_sql, (failing,))
                explain_seconds.append(seconds)
                if rows:
                    explained += 1
                    first_kinds[rows[0][3]] = first_kinds.get(rows[0][3], 0) + 1
                compare_seconds.append(timed_call(conn, compare_sql, (healthy, failing))[0])
                spans_seconds.append(timed_call(conn, spans_sql, (failing,))[0])
    finally:
        drop_database(DATABASE)
    explain = summary(explain_seconds)
    trace_spans = summary(spans_seconds)
    return {
        "spans": spans,
        "traces": traces,
        "failing_traces": failing_traces,
        "load_and_flush_seconds": round(load.seconds, 1),
        "vacuum_analyze_seconds": round(vacuum.seconds, 1),
        "calls": len(chosen),
        "explain_trace": explain,
        "compare_traces": summary(compare_seconds),
        "trace_spans": trace_spans,
        "explain_p50_vs_trace_spans_p50": round(explain["p50_ms"] / trace_spans["p50_ms"], 1),
        "traces_explained": explained,
        "first_difference_kinds": first_kinds,
        "goals": {"explain_trace_p50_ms": "< 1000"},
    }
