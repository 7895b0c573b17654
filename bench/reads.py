"""Read functions at 1,000,000 spans, 1,000,000 log records and 1,000,000 metric points, side by side with
what a reader would write without them, in one run.

- `otel.trace_spans(trace_id)` against a sequential scan of otel.traces for the same trace (index and bitmap
  scans switched off), for 20 random trace ids. Both sides must return the same spans.
- `otel.search_logs(words)` against `body ILIKE '%word%'` for every word, newest first, limit 100, for 20
  search terms. The bodies come from a few hundred message templates with numbers and ids filled in; the
  match counts of both sides are reported.
- `otel.metric_series(name, '1 minute', day)` over one day of 10-second points against a naive
  `date_trunc('minute', time) … group by 1`: avg of a gauge, rate of a monotonic cumulative sum (with
  counter resets) and p99 of an explicit-bucket histogram. avg and rate are checked against the naive
  answers.

Everything is loaded through the real pipeline: COPY into the staging tables, `call otel.flush()`, then
`vacuum analyze`. Timings are wall-clock from the client, after one warm-up query per side.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg

from bench.common import SERVICES, TYPED_COLUMNS, drop_database, fresh_database, span_dicts, timed, typed_row

DATABASE = "otel_bench_reads"
BASE_NS = 1_764_000_000_000_000_000  # span_dicts' default: 2025-11-24 16:00 UTC, spans over one hour
DAY = datetime(2025, 11, 24, tzinfo=UTC)
NS = 1_000_000_000
REPEATS = 20
METRIC_REPEATS = 5

LOG_COLUMNS = (
    "time, observed_time, severity_number, severity_text, body, trace_id, span_id, service_name,"
    " attributes, resource_attributes"
)
METRIC_COLUMNS = (
    "time, start_time, name, type, unit, value, count, sum, min, max, bucket_counts, explicit_bounds,"
    " temporality, is_monotonic, labels, resource_attributes, service_name"
)

ENTITIES = ["order", "cart", "invoice", "shipment", "product", "customer", "session", "coupon", "refund", "warehouse"]
SEVERITIES = [(5, "DEBUG", 0.15), (9, "INFO", 0.60), (13, "WARN", 0.15), (17, "ERROR", 0.09), (21, "FATAL", 0.01)]
TEMPLATES = {
    5: [
        "SQL select on {entity}s took {ms} ms, {n} rows",
        "retrying idempotent request {id}, attempt {a}",
        "serialised {entity} {id} payload of {n} bytes",
        "token refresh for session {id} scheduled in {n} seconds",
        "lock acquired on {entity} {id} after {ms} ms",
        "span context propagated to downstream {entity} service",
        "gc pause {ms} ms, heap {n} MB",
    ],
    9: [
        "accepted {entity} {id} from user {user} in {ms} ms",
        "created {entity} {id} for customer {user}",
        "updated {entity} {id}: {n} fields changed",
        "loaded {entity} {id} from cache in {ms} ms",
        "cache miss for {entity} {id}, fetched from database in {ms} ms",
        "published {entity} event {id} to topic {entity}-events partition {a}",
        "consumed {n} messages from queue {entity}-tasks",
        "scheduled background job {id} to reindex {entity} catalogue",
        "GET /api/{entity}s/{n} returned 200 in {ms} ms",
        "POST /api/{entity}s returned 201 in {ms} ms",
        "rendered {entity} page in {ms} ms with {a} widgets",
        "exported {n} {entity} records to warehouse batch {id}",
        "search query for {entity} returned {n} results in {ms} ms",
        "user {user} signed in from {ip}",
        "user {user} signed out after {n} minutes",
        "payment authorised for order {id}, amount {amount} EUR",
        "shipment {id} handed to carrier DHL with tracking number {n}",
        "inventory reserved {a} units of sku SKU-{n} for order {id}",
        "webhook delivered to partner endpoint in {ms} ms",
        "health check passed: database, cache and queue reachable",
        "connection pool resized to {a} connections",
        "feature flag {flag} evaluated to true for user {user}",
        "email receipt queued for order {id}",
        "price recalculated for cart {id}: total {amount} EUR",
    ],
    13: [
        "slow query on {entity}s: {ms} ms exceeds threshold of 500 ms",
        "rate limit approaching for client {ip}: {n} requests per minute",
        "request throttled for tenant {user}: quota exhausted",
        "retrying {entity} {id} after upstream returned 503, attempt {a}",
        "cache eviction storm: {n} {entity} keys evicted in one second",
        "replica lag of {ms} ms on host {host}",
        "deprecated API version v1 used by client {ip}",
        "disk usage at {a} percent on volume /var/lib/{entity}",
        "circuit breaker half-open for {entity} service after {a} failures",
        "certificate for {host} expires in {a} days",
    ],
    17: [
        "payment declined for order {id}: card ending {card} insufficient funds",
        "timeout after {ms} ms calling {entity} service at {ip}:8080",
        "connection refused by {host}:5432, reconnecting in {a} seconds",
        "deadlock detected while updating {entity} {id}, transaction rolled back",
        "failed to deserialise {entity} {id}: unexpected token at position {n}",
        "checksum mismatch for {entity} archive {id}",
        "webhook delivery to partner failed with status 500 after {a} attempts",
        "null pointer in {entity} handler for request {id}",
        "refund {id} rejected by payment provider: duplicate transaction",
        "TLS handshake failed with {host}: certificate verify failed",
        "out of stock: sku SKU-{n} requested {a}, available 0",
    ],
    21: [
        "out of memory in {entity} worker {a}, process exiting",
        "database migration {n} failed, service {entity} cannot start",
    ],
}
FLAGS = ["new-checkout", "one-click-pay", "dark-mode", "smart-search", "free-shipping"]
SEARCH_TERMS = [
    "declined",
    "deadlock",
    "checksum",
    "handshake",
    "throttled",
    "evicted",
    "replica lag",
    "refund rejected",
    "connection refused",
    "timeout shipment",
    "slow query invoice",
    "circuit breaker coupon",
    "webhook failed",
    "stock",
    "deprecated",
    "certificate expires",
    "cache miss coupon",
    "migration failed",
    "insufficient funds",
    "tracking number",
    "reindex catalogue",
    "heap",
    "quota exhausted",
    "signed",
]

GAUGE = "system.cpu.utilization"
COUNTER = "http.server.request.count"
HISTOGRAM = "http.server.request.duration"
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
POINTS_PER_SERIES = 8640  # one day of 10-second points


def log_templates() -> dict[int, list[str]]:
    """Every template with {entity} expanded: a few hundred distinct messages, grouped by severity."""
    return {
        severity: [t.replace("{entity}", e) for t in group for e in (ENTITIES if "{entity}" in t else [""])]
        for severity, group in TEMPLATES.items()
    }


def fill(template: str, rng: random.Random) -> str:
    values = {
        "{id}": lambda: f"{rng.getrandbits(48):012x}",
        "{ms}": lambda: str(rng.randrange(1, 5000)),
        "{n}": lambda: str(rng.randrange(1, 100_000)),
        "{a}": lambda: str(rng.randrange(1, 100)),
        "{user}": lambda: str(rng.randrange(10**6)),
        "{ip}": lambda: f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
        "{host}": lambda: f"db-{rng.randrange(12)}.internal",
        "{amount}": lambda: f"{rng.randrange(100, 100_000) / 100:.2f}",
        "{card}": lambda: f"{rng.randrange(10_000):04d}",
        "{flag}": lambda: rng.choice(FLAGS),
    }
    for key, make in values.items():
        while key in template:
            template = template.replace(key, make(), 1)
    return template


def load_spans(conn: psycopg.Connection, count: int) -> list[tuple[str, str, int, str]]:
    """COPY the spans; keep every third (trace_id, span_id, start_ns, service) for the logs and the queries."""
    kept = []
    with conn.cursor().copy(f"copy otel.traces_staging ({TYPED_COLUMNS}) from stdin") as copy:
        for i, span in enumerate(span_dicts(count)):
            copy.write_row(typed_row(span))
            if i % 3 == 0:
                kept.append((span["trace_id"], span["span_id"], span["start_ns"], span["service_name"]))
    return kept


def load_logs(conn: psycopg.Connection, count: int, spans: list[tuple[str, str, int, str]]) -> int:
    """COPY log records over the spans' hour; 30 % of them carry the trace and span id of a span."""
    rng = random.Random(11)
    templates = log_templates()
    numbers = [number for number, _, _ in SEVERITIES]
    weights = [weight for _, _, weight in SEVERITIES]
    names = {number: name for number, name, _ in SEVERITIES}
    with conn.cursor().copy(f"copy otel.logs_staging ({LOG_COLUMNS}) from stdin") as copy:
        for _ in range(count):
            severity = rng.choices(numbers, weights)[0]
            body = fill(rng.choice(templates[severity]), rng)
            if rng.random() < 0.3:
                trace_id, span_id, start_ns, service = rng.choice(spans)
                at = start_ns + rng.randrange(0, 50_000_000)
            else:
                trace_id = span_id = None
                service = rng.choice(SERVICES)
                at = BASE_NS + rng.randrange(0, 3_600 * NS)
            copy.write_row(
                [
                    str(at),
                    str(at + rng.randrange(0, 5_000_000)),
                    str(severity),
                    names[severity],
                    body,
                    trace_id,
                    span_id,
                    service,
                    json.dumps({"thread.id": rng.randrange(64)}),
                    json.dumps({"service.name": service, "host.name": f"host-{rng.randrange(20)}"}),
                ]
            )
    return sum(len(group) for group in templates.values())


def metric_series_labels() -> list[tuple[str, str, dict]]:
    """(metric, service, labels) of the 116 series: 50 gauge, 50 cumulative sum, 16 histogram."""
    routes = ["/users/{id}", "/orders/{id}", "/cart", "/products/{id}", "/checkout"]
    series = [(GAUGE, "node-exporter", {"host.name": f"host-{h}", "cpu": str(c)}) for h in range(10) for c in range(5)]
    series += [
        (COUNTER, service, {"http.route": route, "http.response.status_code": status})
        for service in SERVICES[:5]
        for route in routes
        for status in (200, 500)
    ]
    series += [(HISTOGRAM, service, {"http.route": route}) for service in SERVICES[:4] for route in routes[:4]]
    return series


def load_metrics(conn: psycopg.Connection, per_series: int = POINTS_PER_SERIES) -> int:
    """COPY one day of 10-second points of every series; each counter and histogram restarts once."""
    rng = random.Random(13)
    day_ns = int(DAY.timestamp()) * NS
    step = 10 * NS
    # Bucket shares of a log-normal latency around 80 ms.
    cdf = [0.5 * (1 + math.erf((math.log(b) - math.log(0.08)) / (1.0 * math.sqrt(2)))) for b in BOUNDS]
    shares = [b - a for a, b in zip([0.0, *cdf], [*cdf, 1.0], strict=True)]
    points = 0
    with conn.cursor().copy(f"copy otel.metrics_staging ({METRIC_COLUMNS}) from stdin") as copy:
        for metric, service, labels in metric_series_labels():
            labels_json = json.dumps(labels)
            resource = json.dumps({"service.name": service})
            restart = rng.randrange(per_series // 8, per_series - per_series // 8)
            start_ns = day_ns
            level = rng.uniform(0.1, 0.6)
            total = 0.0
            counts = [0] * (len(BOUNDS) + 1)
            count = 0
            sum_seconds = 0.0
            for i in range(per_series):
                at = day_ns + i * step
                if i == restart:
                    start_ns, total, counts, count, sum_seconds = at - step // 2, 0.0, [0] * len(counts), 0, 0.0
                if metric == GAUGE:
                    value = level + 0.2 * math.sin(i / 360) + rng.uniform(-0.05, 0.05)
                    row = [str(at), None, metric, "gauge", "1", repr(value), None, None, None, None, None, None]
                    row += [None, None]
                elif metric == COUNTER:
                    total += rng.randrange(0, 40)
                    row = [str(at), str(start_ns), metric, "sum", "{request}", repr(total), None, None, None, None]
                    row += [None, None, "cumulative", "true"]
                else:
                    requests = rng.randrange(20, 80)
                    increments = [int(requests * share + rng.random()) for share in shares]
                    counts = [c + d for c, d in zip(counts, increments, strict=True)]
                    count += sum(increments)
                    sum_seconds += sum(increments) * 0.08 * rng.uniform(0.9, 1.4)
                    row = [str(at), str(start_ns), metric, "histogram", "s", None, str(count), repr(sum_seconds)]
                    row += ["0.001", "9.5", json.dumps(counts), json.dumps(BOUNDS), "cumulative", None]
                copy.write_row([*row, labels_json, resource, service])
                points += 1
    return points


def flush(conn: psycopg.Connection, column: str) -> tuple[float, int]:
    with timed() as t:
        conn.execute("call otel.flush()")
    moved = conn.execute(f"select {column} from otel.flush_runs order by id desc limit 1").fetchone()[0]
    return t.seconds, moved


def timed_rows(conn: psycopg.Connection, query: str, params: tuple | dict) -> tuple[float, list[tuple]]:
    started = time.perf_counter()
    rows = conn.execute(query, params).fetchall()
    return time.perf_counter() - started, rows


def summary(fast: list[float], slow: list[float]) -> dict:
    p50_fast, p50_slow = statistics.median(fast), statistics.median(slow)
    return {
        "function_p50_ms": round(p50_fast * 1000, 3),
        "function_max_ms": round(max(fast) * 1000, 3),
        "baseline_p50_ms": round(p50_slow * 1000, 3),
        "baseline_max_ms": round(max(slow) * 1000, 3),
        "ratio_p50": round(p50_slow / p50_fast, 1),
    }


def plan_of_call(conn: psycopg.Connection, call: str, params: tuple) -> list[str]:
    """The plans of the statements run inside a function call (auto_explain, sent to this client)."""
    notices: list[str] = []

    def handler(diagnostic: psycopg.errors.Diagnostic) -> None:
        notices.append(diagnostic.message_primary or "")

    conn.add_notice_handler(handler)
    conn.execute("load 'auto_explain'")
    conn.execute("set auto_explain.log_min_duration = 0")
    conn.execute("set auto_explain.log_nested_statements = on")
    conn.execute("set client_min_messages = log")
    try:
        conn.execute(call, params).fetchall()
    finally:
        conn.execute("reset client_min_messages")
        conn.execute("reset auto_explain.log_min_duration")
        conn.remove_notice_handler(handler)
    return notices


def scan_nodes(plans: list[str]) -> list[str]:
    """The scan lines of the plans (e.g. 'Index Scan using … on traces_p20251124 t')."""
    lines = {line.strip().lstrip("-> ").split("  (")[0] for plan in plans for line in plan.splitlines()}
    return sorted(line for line in lines if " Scan" in line and " on " in line)


def bench_traces(conn: psycopg.Connection, trace_ids: list[str]) -> dict:
    function = "select span_id, parent_span_id, depth from otel.trace_spans(%s)"
    scan = "select span_id, parent_span_id from otel.traces where trace_id = %s order by start_time"
    fast, slow, mismatches, spans = [], [], 0, 0
    for i, trace_id in enumerate([trace_ids[0], *trace_ids]):
        seconds_fast, tree = timed_rows(conn, function, (trace_id,))
        conn.execute("set enable_indexscan = off")
        conn.execute("set enable_bitmapscan = off")
        seconds_slow, rows = timed_rows(conn, scan, (trace_id,))
        conn.execute("reset enable_indexscan")
        conn.execute("reset enable_bitmapscan")
        if i == 0:
            continue  # warm-up
        fast.append(seconds_fast)
        slow.append(seconds_slow)
        spans += len(rows)
        mismatches += sorted((s, p) for s, p, _ in tree) != sorted(rows) or not rows
    conn.execute("set enable_indexscan = off")
    conn.execute("set enable_bitmapscan = off")
    baseline_plan = conn.execute("explain " + scan, (trace_ids[0],)).fetchall()
    conn.execute("reset enable_indexscan")
    conn.execute("reset enable_bitmapscan")
    return {
        "trace_ids": len(trace_ids),
        **summary(fast, slow),
        "spans_returned": spans,
        "traces_where_sides_differ": mismatches,
        "function_scans": scan_nodes(plan_of_call(conn, function, (trace_ids[0],))),
        "baseline_scans": scan_nodes(["\n".join(row[0] for row in baseline_plan)]),
        "goal": ">= 100",
    }


def bench_logs(conn: psycopg.Connection, terms: list[str]) -> dict:
    function = "select time, body from otel.search_logs(%s)"
    ilike = "select time, body from otel.logs where body ilike all(%s) order by time desc limit 100"
    fts_count = (
        "select count(*) from otel.logs"
        " where to_tsvector('english', left(coalesce(body, ''), 65536)) @@ websearch_to_tsquery('english', %s)"
    )
    ilike_count = "select count(*) from otel.logs where body ilike all(%s)"
    fast, slow, per_term = [], [], []
    for i, term in enumerate([terms[0], *terms]):
        patterns = [f"%{word}%" for word in term.split()]
        seconds_fast, found = timed_rows(conn, function, (term,))
        seconds_slow, scanned = timed_rows(conn, ilike, (patterns,))
        if i == 0:
            continue  # warm-up
        fast.append(seconds_fast)
        slow.append(seconds_slow)
        per_term.append(
            {
                "term": term,
                "fts_matches": conn.execute(fts_count, (term,)).fetchone()[0],
                "ilike_matches": conn.execute(ilike_count, (patterns,)).fetchone()[0],
                "function_rows": len(found),
                "ilike_rows": len(scanned),
                "function_ms": round(seconds_fast * 1000, 2),
                "ilike_ms": round(seconds_slow * 1000, 2),
            }
        )
    fts_total = sum(t["fts_matches"] for t in per_term)
    ilike_total = sum(t["ilike_matches"] for t in per_term)
    return {
        "terms": len(terms),
        **summary(fast, slow),
        "matches_p50": {
            "fts": statistics.median(t["fts_matches"] for t in per_term),
            "ilike": statistics.median(t["ilike_matches"] for t in per_term),
        },
        "matches_total": {"fts": fts_total, "ilike": ilike_total, "fts_vs_ilike": round(fts_total / ilike_total, 3)},
        "per_term": per_term,
        "function_scans": scan_nodes(plan_of_call(conn, function, (terms[0],))),
        "goal": ">= 20",
    }


def bench_metrics(conn: psycopg.Connection) -> dict:
    since, until = DAY, DAY + timedelta(days=1)
    function = "select bucket_start, value from otel.metric_series(%s, '1 minute', %s, %s, agg => %s)"
    naive = {
        "avg": "select date_trunc('minute', time), avg(value) from otel.metrics"
        " where name = %s and time >= %s and time < %s group by 1 order by 1",
        # Per-series differences (a drop is a restart: the new value is the increase), per second.
        "rate": "select date_trunc('minute', time), sum(increase) / 60 from ("
        "  select time, case when value < previous then value else value - previous end as increase from ("
        "    select time, value, lag(value) over (partition by labels, service_name order by time) as previous"
        "      from otel.metrics where name = %s and time >= %s and time < %s) as p) as d"
        " group by 1 having count(increase) > 0 order by 1",
        "p99": "select date_trunc('minute', time), sum(sum) / sum(count) from otel.metrics"
        " where name = %s and time >= %s and time < %s group by 1 order by 1",
    }
    cases = {"avg": GAUGE, "rate": COUNTER, "p99": HISTOGRAM}
    result = {}
    for agg, metric in cases.items():
        fast, slow = [], []
        for i in range(METRIC_REPEATS + 1):
            seconds_fast, series = timed_rows(conn, function, (metric, since, until, agg))
            seconds_slow, baseline = timed_rows(conn, naive[agg], (metric, since, until))
            if i:
                fast.append(seconds_fast)
                slow.append(seconds_slow)
        points = conn.execute(
            "select count(*) from otel.metrics where name = %s and time >= %s and time < %s", (metric, since, until)
        ).fetchone()[0]
        entry = {
            "metric": metric,
            "points": points,
            **summary(fast, slow),
            "function_rows": len(series),
            "baseline_rows": len(baseline),
        }
        if agg == "p99":
            entry["baseline"] = "naive avg latency (sum/count) group by minute of the same points"
            values = [v for _, v in series]
            entry["p99_range_s"] = [round(min(values), 4), round(max(values), 4)]
        else:
            same_buckets = [b for b, _ in series] == [b for b, _ in baseline]
            worst = max((abs(a - b) for (_, a), (_, b) in zip(series, baseline, strict=False)), default=None)
            entry["same_buckets_as_baseline"] = same_buckets
            entry["max_abs_difference"] = worst
        entry["function_scans"] = scan_nodes(plan_of_call(conn, function, (metric, since, until, agg)))
        result[agg] = entry
    return result


def relation_size(conn: psycopg.Connection, name: str) -> int:
    return conn.execute(
        "select coalesce(sum(pg_total_relation_size(relid)), 0)::bigint from pg_partition_tree(%s)", (name,)
    ).fetchone()[0]


def run(spans: int = 1_000_000, logs: int = 1_000_000, points_per_series: int = POINTS_PER_SERIES) -> dict:
    rng = random.Random(5)
    url = fresh_database(DATABASE)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            with timed() as load:
                kept = load_spans(conn, spans)
                span_flush, moved_spans = flush(conn, "spans")
                templates = load_logs(conn, logs, kept)
                log_flush, moved_logs = flush(conn, "logs")
                points = load_metrics(conn, points_per_series)
                metric_flush, moved_points = flush(conn, "metric_points")
            assert (moved_spans, moved_logs, moved_points) == (spans, logs, points), "a flush lost rows"
            with timed() as vacuum:
                conn.execute("vacuum analyze otel.traces, otel.trace_summaries, otel.logs, otel.metrics")
            trace_ids = rng.sample(sorted({trace_id for trace_id, _, _, _ in kept}), REPEATS)
            terms = rng.sample(SEARCH_TERMS, REPEATS)
            traces = bench_traces(conn, trace_ids)
            search = bench_logs(conn, terms)
            metrics = bench_metrics(conn)
            sizes = {name: relation_size(conn, f"otel.{name}") for name in ("traces", "logs", "metrics")}
    finally:
        drop_database(DATABASE)
    return {
        "spans": spans,
        "log_records": logs,
        "log_templates": templates,
        "metric_points": points,
        "metric_series": len(metric_series_labels()),
        "load_seconds": round(load.seconds, 1),
        "flush_seconds": {
            "spans": round(span_flush, 1),
            "logs": round(log_flush, 1),
            "metrics": round(metric_flush, 1),
        },
        "vacuum_analyze_seconds": round(vacuum.seconds, 1),
        "table_bytes": sizes,
        "trace_spans_vs_seq_scan": traces,
        "search_logs_vs_ilike": search,
        "metric_series_vs_group_by": metrics,
    }
