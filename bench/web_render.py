"""The web page's trace view in headless Chromium: how long until a 5,000-span trace is on screen (goal: under 2 s).

A trace of 5,000 spans (a tree four children wide and seven levels deep over six services, five attributes a
span, one span in fifty failing with an exception event) and one of 500 are stored beside 200,000 bench spans,
through COPY and the flush. `otel-db serve` serves the page; Chromium (Debian's, through Selenium) opens
`/trace/{id}` 10 times for each after a warm-up, each a fresh page load.

- rendered: from the start of navigation until the page marks the waterfall laid out and painted
  (`performance.mark`, after the next animation frame): the HTML and script, the trace's JSON from
  `/api/traces/{id}`, the span tree and the DOM of every row;
- the yardstick, the same load's fetch of `/api/traces/{id}` (resource timing): the share that is the server's.

Then the page's "what is different" button: `GET /api/otel/traces/{id}/explain` (otel.explain_trace against its
five closest healthy traces), 5 times for each trace after a warm-up.
"""

from __future__ import annotations

import statistics
import time
import urllib.request

import psycopg

from bench.browser import chromium, open_view
from bench.common import TYPED_COLUMNS, drop_database, fresh_database, typed_row
from bench.explain_latency import percentile
from bench.flush_throughput import copy_typed
from bench.serve_throughput import free_port, serving

DATABASE = "otel_bench_web_render"
RUNS = 10
EXPLAIN_RUNS = 5
START_NS = 1_764_000_000_000_000_000 + 1_800 * 10**9  # within the hour of the bench spans
SERVICES = ("frontend", "checkout", "payment", "inventory", "shipping", "email")
LEAF_NS = 200_000
GAP_NS = 20_000

RENDERED = "return performance.getEntriesByName('otel-trace-rendered')[0].startTime"
TRACE_FETCH = "return performance.getEntriesByType('resource').filter(e => e.name.includes('/api/traces/'))[0].duration"


def tree_trace(trace_id: str, spans: int, branching: int = 4) -> list[dict]:
    """Span n's children are n*branching+1 ... n*branching+branching; each parent spans its children in turn."""
    rows: list[dict] = []

    def place(n: int, start: int, depth: int) -> int:
        children = [c for c in range(n * branching + 1, n * branching + branching + 1) if c < spans]
        end = start + GAP_NS
        for child in children:
            end = place(child, end, depth + 1) + GAP_NS
        end = max(end, start + LEAF_NS)
        failing = n % 50 == 49
        service = SERVICES[depth % len(SERVICES)]
        rows.append(
            {
                "trace_id": trace_id,
                "span_id": f"{n + 1:016x}",
                "parent_span_id": None if n == 0 else f"{(n - 1) // branching + 1:016x}",
                "name": "GET /checkout" if n == 0 else f"{service} step {n % 40}",
                "kind": "SERVER" if n == 0 else "INTERNAL",
                "start_ns": start,
                "end_ns": end,
                "status_code": "ERROR" if failing else "UNSET",
                "status_message": "step failed" if failing else None,
                "service_name": service,
                "attributes": {"step": n, "depth": depth, "ok": not failing, "ratio": n / 7, "user": "u-1"},
                "resource_attributes": {"service.name": service, "host.name": "host-1"},
                "events": [{"name": "exception", "time": None, "attributes": {"exception.type": "StepError"}}]
                if failing
                else [],
            }
        )
        return end

    place(0, START_NS, 0)
    return rows


def figures(values: list[float]) -> dict:
    return {"p50_ms": round(percentile(values, 0.5), 1), "p95_ms": round(percentile(values, 0.95), 1)}


def explain_ms(base: str, trace_id: str) -> list[float]:
    took = []
    for _ in range(EXPLAIN_RUNS + 1):
        started = time.perf_counter()
        with urllib.request.urlopen(f"{base}/api/otel/traces/{trace_id}/explain", timeout=120) as answer:
            assert answer.status == 200
            answer.read()
        took.append((time.perf_counter() - started) * 1000)
    return took[1:]  # the first warms up


def measure(base: str, trace_id: str) -> dict:
    rendered, fetched = [], []
    with chromium() as driver:
        for _ in range(RUNS + 1):
            assert open_view(driver, f"{base}/trace/{trace_id}") == "ready"
            rendered.append(float(driver.execute_script(RENDERED)))
            fetched.append(float(driver.execute_script(TRACE_FETCH)))
        rows = driver.execute_script("return document.querySelectorAll('#waterfall .span').length")
    rendered, fetched = rendered[1:], fetched[1:]  # the first warms up
    return {
        "rows_on_screen": rows,
        "rendered": figures(rendered),
        "trace_fetch": figures(fetched),
        "rendered_vs_fetch_p50": round(statistics.median(rendered) / statistics.median(fetched), 2),
        "explain": figures(explain_ms(base, trace_id)),
    }


def run() -> dict:
    traces = {5000: "5" * 32, 500: "6" * 32}
    url = fresh_database(DATABASE)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            copy_typed(conn, 200_000)
            with conn.cursor().copy(f"copy otel.traces_staging ({TYPED_COLUMNS}) from stdin") as copy:
                for spans, trace_id in traces.items():
                    for span in tree_trace(trace_id, spans):
                        copy.write_row(typed_row(span))
            conn.execute("call otel.flush()")
            conn.execute("vacuum analyze otel.traces, otel.trace_summaries")
        query_port = free_port()
        base = f"http://127.0.0.1:{query_port}"
        with serving(url, "--no-flush", query_port=query_port):
            results = {f"trace_{spans}_spans": measure(base, trace_id) for spans, trace_id in traces.items()}
    finally:
        drop_database(DATABASE)
    big = results["trace_5000_spans"]
    return {
        "other_spans": 200_000,
        "page_loads": RUNS,
        **results,
        "goal_rendered_5000_spans_ms": 2000,
        "goal_met": big["rendered"]["p95_ms"] < 2000,
    }
