"""`otel.find_traces()` at 1,000,000 spans (OTEL_DB_BENCH_SPANS_SEARCH), against the same search written as a
plain `select … from otel.traces where …`.

The bench spans (bench.common.span_dicts: traces of 1-8 spans over six services, all started within one
hour, HTTP attributes, a user id per span, about 3 % failing) go through the real pipeline (COPY into
otel.traces_staging, `call otel.flush()`, `vacuum analyze`). Each search runs 12 times with a different
10-minute window (or value), after one warm-up run:

- selective: service, operation and an HTTP status in a 10-minute window (a few hundred spans match);
- error: service and status ERROR in a 10-minute window;
- one user: service and a user id that one span has, over the whole hour (a span attribute: its GIN index);
- resource attribute: service and a host name (a resource attribute, read span by span), 10 minutes;
- broad attribute: service and the HTTP method GET (half the spans), 10 minutes;
- broad: a service over the whole hour (about 170,000 spans match);
- everything: no criterion, the whole hour (answered from the trace summaries).

The plain query finds the same traces (one of their spans matches every criterion, newest first, limit 20)
by grouping the matching spans; it compares attributes the way find_traces does (as text, the span's or
its resource's), so both return the same rows. Also `otel.services()` and `otel.operations()`.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg

from bench.common import drop_database, fresh_database, timed
from bench.explain_latency import percentile
from bench.flush_throughput import copy_typed

DATABASE = "otel_bench_trace_search"
RUNS = 12
START = datetime.fromtimestamp(1_764_000_000, UTC)  # bench.common.span_dicts' base time

PLAIN = """
select s.trace_id, s.root_service, s.root_name, s.start_time, s.duration_ms, s.span_count, s.error_count, s.services
  from (select t.trace_id, max(t.start_time) as newest
          from otel.traces as t
         where t.start_time >= %(since)s and t.start_time < %(until)s {conditions}
         group by t.trace_id
         order by newest desc
         limit 20) as m
  join otel.trace_summaries as s using (trace_id)
 order by s.start_time desc, s.trace_id
"""


def spans_from_env() -> int:
    return int(os.environ.get("OTEL_DB_BENCH_SPANS_SEARCH", "1000000"))


def plain_conditions(criteria: dict) -> str:
    conditions = []
    if "service" in criteria:
        conditions.append("t.service_name = %(service)s")
    if "operation" in criteria:
        conditions.append("t.name = %(operation)s")
    if "status" in criteria:
        conditions.append("t.status_code = %(status)s")
    for key, value in json.loads(criteria.get("attributes", "{}")).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        conditions.append(f"(t.attributes ->> '{key}' = '{text}' or t.resource_attributes ->> '{key}' = '{text}')")
    return "".join(f" and {c}" for c in conditions)


def searches(conn: psycopg.Connection) -> dict[str, list[dict]]:
    """Each kind of search, RUNS times with different windows or values."""
    windows = [(START + timedelta(minutes=4 * n), START + timedelta(minutes=4 * n + 10)) for n in range(RUNS)]
    users = [
        row[0]
        for row in conn.execute(
            "select attributes ->> 'user.id' from otel.traces where service_name = 'payment' order by span_id limit %s",
            (RUNS,),
        )
    ]
    hour = {"since": START, "until": START + timedelta(hours=1)}
    return {
        "selective": [
            {
                "service": "payment",
                "operation": "POST /checkout",
                "attributes": '{"http.response.status_code": 500}',
                "since": since,
                "until": until,
            }
            for since, until in windows
        ],
        "error": [{"service": "payment", "status": "ERROR", "since": s, "until": u} for s, u in windows],
        "one_user": [{"service": "payment", "attributes": json.dumps({"user.id": int(u)}), **hour} for u in users],
        "resource_attribute": [
            {"service": "payment", "attributes": json.dumps({"host.name": f"host-{n}"}), "since": s, "until": u}
            for n, (s, u) in enumerate(windows)
        ],
        "broad_attribute": [
            {"service": "payment", "attributes": '{"http.request.method": "GET"}', "since": s, "until": u}
            for s, u in windows
        ],
        "broad": [{"service": SERVICE, **hour} for SERVICE in ["frontend", "checkout", "payment"] * (RUNS // 3)],
        "everything": [dict(hour) for _ in range(RUNS)],
    }


def timed_rows(conn: psycopg.Connection, query: str, params: dict) -> tuple[float, list[tuple]]:
    started = time.perf_counter()
    rows = conn.execute(query, params).fetchall()
    return time.perf_counter() - started, rows


def find_traces_call(criteria: dict) -> str:
    named = ", ".join(f"{name} => %({name})s" for name in criteria)
    return f"select * from otel.find_traces({named})"


def figures(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": round(percentile(ms, 0.5), 2), "p95_ms": round(percentile(ms, 0.95), 2)}


def run(spans: int | None = None) -> dict:
    spans = spans_from_env() if spans is None else spans
    url = fresh_database(DATABASE)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            with timed() as load:
                copy_typed(conn, spans)
                conn.execute("call otel.flush()")
                conn.execute("vacuum analyze otel.traces, otel.trace_summaries, otel.operation_catalog")
            result: dict = {"spans": spans, "load_seconds": round(load.seconds, 1), "searches": {}}
            for kind, runs in searches(conn).items():
                ours, plain, matched = [], [], []
                for criteria in [runs[0], *runs]:  # the first run warms up
                    seconds, rows = timed_rows(conn, find_traces_call(criteria), criteria)
                    plain_seconds, plain_rows = timed_rows(
                        conn, PLAIN.format(conditions=plain_conditions(criteria)), criteria
                    )
                    assert [r[0] for r in rows] == [r[0] for r in plain_rows], (kind, criteria)
                    ours.append(seconds)
                    plain.append(plain_seconds)
                    matched.append(len(rows))
                ours, plain = ours[1:], plain[1:]
                result["searches"][kind] = {
                    "find_traces": figures(ours),
                    "plain_select": figures(plain),
                    "find_traces_vs_plain_p50": round(statistics.median(ours) / statistics.median(plain), 3),
                    "traces_returned_median": statistics.median(matched[1:]),
                }
            catalog = {
                "services": figures([timed_rows(conn, "select * from otel.services()", {})[0] for _ in range(RUNS)]),
                "operations": figures(
                    [timed_rows(conn, "select * from otel.operations('payment')", {})[0] for _ in range(RUNS)]
                ),
            }
            result["catalog"] = catalog
    finally:
        drop_database(DATABASE)
    result["goal"] = {"selective_p50_ms": "<= 50 at 1M spans"}
    return result
