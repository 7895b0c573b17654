"""otel_db at 10M spans on one node: how the flush, the reads, the vector index and the disk grow with size.

Not part of `make bench` (about an hour): `.venv/bin/python -m bench.scale` writes
bench/results/scale.json; OTEL_DB_SCALE_SPANS (default 10,000,000) and OTEL_DB_SCALE_VECTORS (default
"100000,1000000") change the sizes.

- Spans: one million a day for ten days (bench.common.span_dicts, a day apart), each million through COPY and
  `call otel.flush()` into tables already holding the days before: the flush rate at 0, 1M, ... stored spans.
  With them, 0.3 log records per span (30 % correlated to a span) and as many metric points as spans (116
  series of 10-second points).
- At 1M and at the full size, after `vacuum analyze`: p50/p95 of `trace_spans` (20 stored traces),
  `find_traces` (a selective search in an hour of the last day), `similar_traces` (a question in words, the
  real model, every signature embedded), `search_logs` (20 terms) and `metric_series` (an hour of 1-minute
  averages); the disk bytes per span, log record and point (heap, TOAST, indexes); the signatures stored.
- The vector index alone at 100k and 1M distinct signatures: the signatures a store of span kinds this
  benchmark makes are a few thousand, which any index answers, so clustered random unit vectors (1,000
  centres) go into a table like otel.span_signatures with the same HNSW index (built after the load: its
  build time and size), then 20 queries near the centres with similar_traces' iterative scan at its
  ef_search (40) and at 100, 200 and 400, against an exact scan: p50 and recall@10.
- Retention: the time `otel.drop_expired_partitions()` takes to drop the oldest day of each kind.

`--vectors` runs the vector index part again, `--logs` a search_logs part of its own (ten days of 300k
log records, search_logs as it is and ranking every match since the first day, after one day and after
ten) and `--hnsw-sweep` the vector index over the largest count under each build setting of HNSW_BUILDS
(m, ef_construction), each into the committed scale.json.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from bench.common import SERVICES, TYPED_COLUMNS, drop_database, fresh_database, span_dicts, timed, typed_row
from bench.reads import LOG_COLUMNS, SEVERITIES, fill, load_metrics, log_templates, metric_series_labels
from bench.storage import timed_each
from bench.trace_search import figures as ms
from otel_db.embed import embed_pending, installed_model
from otel_db.queries import vector_literal
from otel_db.settings import Settings

DATABASE = "otel_bench_scale"
CHUNK = 1_000_000
BASE_NS = 1_764_000_000_000_000_000  # span_dicts' default: 2025-11-24 16:00 UTC
DAY_NS = 86_400 * 10**9
REPEATS = 20
DIMENSIONS = 384
CENTRES = 1_000
SEVERITY_NAMES = {number: name for number, name, _ in SEVERITIES}
EF_SEARCH = (40, 100, 200, 400)  # 40: what otel.similar_traces() sets
QUESTION = "why was the customer's card declined?"
TERMS = ["timeout", "declined", "retrying", "deadlock", "refused", "checkout", "invoice", "warehouse", "session", "gc"]


def spans_from_env() -> int:
    return int(os.environ.get("OTEL_DB_SCALE_SPANS", "10000000"))


def vectors_from_env() -> list[int]:
    return [int(n) for n in os.environ.get("OTEL_DB_SCALE_VECTORS", "100000,1000000").split(",") if n]


def timed_calls(conn: psycopg.Connection, query: str, params: list[tuple]) -> dict:
    """p50/p95 of the query with each of params after a warm-up, and the median number of rows it returned."""
    return timed_each([lambda args=args: len(conn.execute(query, args).fetchall()) for args in params])


def stage_logs(conn: psycopg.Connection, rng: random.Random, count: int, spans: list[tuple]) -> None:
    """`count` log records of the templates, each at one of `spans` (trace_id, span_id, start_ns, service); 30 %
    carry its ids."""
    templates = log_templates()
    with conn.cursor().copy(f"copy otel.logs_staging ({LOG_COLUMNS}) from stdin") as copy:
        for _ in range(count):
            severity = rng.choice([5, 9, 9, 9, 13, 17])
            trace_id, span_id, start_ns, service = rng.choice(spans)
            correlated = rng.random() < 0.3
            at = start_ns + rng.randrange(0, 50_000_000)
            copy.write_row(
                [
                    str(at),
                    str(at),
                    str(severity),
                    SEVERITY_NAMES[severity],
                    fill(rng.choice(templates[severity]), rng),
                    trace_id if correlated else None,
                    span_id if correlated else None,
                    service,
                    json.dumps({"thread.id": rng.randrange(64)}),
                    json.dumps({"service.name": service, "host.name": f"host-{rng.randrange(20)}"}),
                ]
            )


def load_day(conn: psycopg.Connection, day: int, spans: int) -> dict:
    """A day of spans and its log records; the flush's rate into what is already stored."""
    stored = conn.execute("select count(*) from otel.traces").fetchone()[0]
    rng = random.Random(day)
    kept = []
    with conn.cursor().copy(f"copy otel.traces_staging ({TYPED_COLUMNS}) from stdin") as copy:
        for i, span in enumerate(span_dicts(spans, seed=day, base_ns=BASE_NS + day * DAY_NS)):
            copy.write_row(typed_row(span))
            if i % 10 == 0:
                kept.append((span["trace_id"], span["span_id"], span["start_ns"], span["service_name"]))
    with timed() as flush:
        conn.execute("call otel.flush()")
    stage_logs(conn, rng, spans * 3 // 10, kept)
    with timed() as log_flush:
        conn.execute("call otel.flush()")
    return {
        "stored_spans_before": stored,
        "flush_spans_per_s": round(spans / flush.seconds),
        "flush_logs_per_s": round(spans * 3 // 10 / log_flush.seconds),
    }


def bytes_per_row(conn: psycopg.Connection, table: str) -> dict:
    """Heap, TOAST and index bytes of every partition of `table`, per row."""
    heap, toast, indexes, rows = conn.execute(
        """
        select sum(pg_relation_size(c.oid)), sum(coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)),
               sum(pg_indexes_size(c.oid)), sum(c.reltuples)
          from pg_inherits as i join pg_class as c on c.oid = i.inhrelid
         where i.inhparent = %s::regclass
        """,
        (table,),
    ).fetchone()
    rows = max(float(rows or 0), 1.0)
    return {
        "rows": int(rows),
        "heap": round(float(heap or 0) / rows, 1),
        "toast": round(float(toast or 0) / rows, 1),
        "indexes": round(float(indexes or 0) / rows, 1),
        "total": round(float((heap or 0) + (toast or 0) + (indexes or 0)) / rows, 1),
    }


def reads(conn: psycopg.Connection, embedder, last_day: int) -> dict:
    conn.execute("vacuum analyze")
    traces = [
        (row[0],)
        for row in conn.execute(
            "select trace_id from otel.trace_summaries where start_time >= %s order by trace_id limit %s",
            (datetime.fromtimestamp((BASE_NS + last_day * DAY_NS) / 1e9, UTC), REPEATS),
        )
    ]
    day_start = datetime.fromtimestamp((BASE_NS + last_day * DAY_NS) / 1e9, UTC)
    windows = [
        (day_start + timedelta(minutes=2 * n), day_start + timedelta(minutes=2 * n + 10)) for n in range(REPEATS)
    ]
    question = vector_literal(embedder.embed([QUESTION])[0])
    return {
        "trace_spans": timed_calls(conn, "select * from otel.trace_spans(%s)", traces),
        "find_traces": timed_calls(
            conn,
            "select * from otel.find_traces(service => 'payment', operation => 'POST /checkout',"
            " attributes => '{\"http.response.status_code\": 500}', since => %s, until => %s)",
            windows,
        ),
        "similar_traces": timed_calls(
            conn, "select * from otel.similar_traces(%s::vector, 10, 0.2)", [(question,)] * REPEATS
        ),
        "search_logs": timed_calls(
            conn, "select * from otel.search_logs(%s, lim => 100)", [(TERMS[n % len(TERMS)],) for n in range(REPEATS)]
        ),
        "metric_series": timed_calls(
            conn,
            "select * from otel.metric_series(%s, '1 minute', %s, %s)",
            [(metric_series_labels()[0][0], since, since + timedelta(hours=1)) for since, _ in windows],
        ),
        "bytes_per_row": {kind: bytes_per_row(conn, f"otel.{kind}") for kind in ("traces", "logs", "metrics")},
        "signatures": conn.execute("select count(*) from otel.span_signatures").fetchone()[0],
    }


@dataclass
class Vectors:
    """Clustered unit vectors in table scale_vectors, the probes near their centres and their exact 10 nearest."""

    count: int
    probes: list
    truths: list[set[int]]
    load_seconds: float
    exact_seconds: list[float]


def load_vectors(conn: psycopg.Connection, count: int) -> Vectors:
    import numpy as np

    rng = np.random.default_rng(count)
    centres = rng.normal(size=(CENTRES, DIMENSIONS)).astype(np.float32)
    conn.execute("drop table if exists scale_vectors")
    conn.execute(f"create table scale_vectors (id bigint primary key, embedding vector({DIMENSIONS}))")
    with timed() as load, conn.cursor().copy("copy scale_vectors (id, embedding) from stdin") as copy:
        for start in range(0, count, 10_000):
            size = min(10_000, count - start)
            batch = centres[rng.integers(0, CENTRES, size)] + 0.35 * rng.normal(size=(size, DIMENSIONS))
            batch /= np.linalg.norm(batch, axis=1, keepdims=True)
            for n, vector in enumerate(batch):
                copy.write_row([start + n, vector_literal(vector)])
    conn.execute("vacuum analyze scale_vectors")
    probes = list(centres[rng.integers(0, CENTRES, REPEATS)] + 0.35 * rng.normal(size=(REPEATS, DIMENSIONS)))
    exact_seconds, truths = [], []
    # Its own statement: psycopg prepares a query run five times, and the index's cached plan would be reused.
    with conn.transaction():
        conn.execute("set local enable_indexscan = off")
        for probe in probes:
            started = time.perf_counter()
            truths.append({row[0] for row in conn.execute(NEAREST + " -- exact", (vector_literal(probe),))})
            exact_seconds.append(time.perf_counter() - started)
    return Vectors(count, probes, truths, load.seconds, exact_seconds)


NEAREST = "select id from scale_vectors order by embedding <=> %s::vector limit 10"


def measure_index(conn: psycopg.Connection, vectors: Vectors, create_index: str) -> dict:
    """Build the index, then recall@10 and latency by ef_search with similar_traces' iterative scan; drop it."""
    conn.execute("set maintenance_work_mem = '4GB'")  # the graph of 1M vectors fits: the build does not spill
    with timed() as build:
        conn.execute(create_index)
    by_ef_search = {}
    for ef_search in EF_SEARCH:
        seconds, recalls = [], []
        with conn.transaction():
            conn.execute(f"set local hnsw.ef_search = {ef_search}")
            conn.execute("set local hnsw.iterative_scan = strict_order")  # as similar_traces
            for probe, truth in zip(vectors.probes, vectors.truths, strict=True):
                started = time.perf_counter()
                hits = {row[0] for row in conn.execute(NEAREST, (vector_literal(probe),))}
                seconds.append(time.perf_counter() - started)
                recalls.append(len(hits & truth) / 10)
        by_ef_search[str(ef_search)] = {**ms(seconds), "recall_at_10": round(sum(recalls) / len(recalls), 3)}
    size = conn.execute("select pg_relation_size('scale_vectors_embedding_idx')").fetchone()[0]
    conn.execute("drop index scale_vectors_embedding_idx")
    return {
        "hnsw_build_seconds": round(build.seconds, 1),
        "maintenance_work_mem": "4GB",
        "hnsw_bytes": size,
        # at similar_traces' ef_search (40), then by ef_search
        "query": {key: by_ef_search["40"][key] for key in ("p50_ms", "p95_ms")},
        "recall_at_10": by_ef_search["40"]["recall_at_10"],
        "by_ef_search": by_ef_search,
    }


def vector_index(conn: psycopg.Connection, count: int) -> dict:
    """Clustered unit vectors in a table with otel.span_signatures' HNSW index, built after the load."""
    vectors = load_vectors(conn, count)
    definition = conn.execute(
        "select indexdef from pg_indexes where indexname = 'span_signatures_embedding_idx'"
    ).fetchone()[0]
    measured = measure_index(
        conn,
        vectors,
        definition.replace("span_signatures_embedding_idx", "scale_vectors_embedding_idx").replace(
            "otel.span_signatures", "scale_vectors"
        ),
    )
    conn.execute("drop table scale_vectors")
    return {
        "vectors": count,
        "load_seconds": round(vectors.load_seconds, 1),
        **measured,
        "exact_scan": ms(vectors.exact_seconds),
    }


HNSW_BUILDS = [(16, 64), (16, 128), (32, 128)]  # (m, ef_construction); pgvector's default first


def hnsw_sweep(conn: psycopg.Connection, count: int) -> dict:
    """The same vectors and probes under each build setting of HNSW_BUILDS."""
    vectors = load_vectors(conn, count)
    builds = [
        {
            "m": m,
            "ef_construction": ef_construction,
            **measure_index(
                conn,
                vectors,
                "create index scale_vectors_embedding_idx on scale_vectors using hnsw (embedding vector_cosine_ops)"
                f" with (m = {m}, ef_construction = {ef_construction})",
            ),
        }
        for m, ef_construction in HNSW_BUILDS
    ]
    conn.execute("drop table scale_vectors")
    return {"vectors": count, "exact_scan": ms(vectors.exact_seconds), "builds": builds}


def retention(conn: psycopg.Connection) -> dict:
    """Keep all but the oldest day, then time the drop."""
    oldest = conn.execute("select min(start_time) from otel.trace_summaries").fetchone()[0]
    oldest_day_end = datetime(oldest.year, oldest.month, oldest.day, tzinfo=UTC) + timedelta(days=1)
    keep_days = (datetime.now(UTC) - oldest_day_end).days  # only the oldest day is past it
    for kind in ("traces", "logs", "metrics"):
        conn.execute("select otel.set_retention(%s, %s::interval)", (kind, f"{keep_days} days"))
    before = conn.execute("select count(*) from pg_inherits where inhparent = 'otel.traces'::regclass").fetchone()[0]
    with timed() as drop:
        conn.execute("select otel.drop_expired_partitions()")
    after = conn.execute("select count(*) from pg_inherits where inhparent = 'otel.traces'::regclass").fetchone()[0]
    return {"seconds": round(drop.seconds, 2), "trace_partitions_dropped": before - after}


def run(spans: int | None = None, vectors: list[int] | None = None) -> dict:
    spans = spans_from_env() if spans is None else spans
    vectors = vectors_from_env() if vectors is None else vectors
    embedder = installed_model(Settings.from_env())
    url = fresh_database(DATABASE)
    days = max(1, spans // CHUNK)
    per_day = spans // days
    result: dict = {"spans": per_day * days, "days": days, "flush": [], "reads": {}}
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("select otel.set_retention(kind, null) from unnest(array['traces', 'logs', 'metrics']) kind")
            with timed() as metrics_load:
                points = load_metrics(conn, per_series=per_day * days // len(metric_series_labels()))
                conn.execute("call otel.flush()")
            result["metric_points"] = points
            result["metric_points_per_s"] = round(points / metrics_load.seconds)
            for day in range(days):
                result["flush"].append(load_day(conn, day, per_day))
                if day == 0 or day == days - 1:
                    embed_pending(conn, embedder, batch_size=64)
                    result["reads"][f"at_{(day + 1) * per_day}_spans"] = reads(conn, embedder, day)
            result["vector_index"] = [vector_index(conn, count) for count in vectors]
            result["retention_drop_one_day"] = retention(conn)
    finally:
        drop_database(DATABASE)
    first, last = result["flush"][0]["flush_spans_per_s"], result["flush"][-1]["flush_spans_per_s"]
    result["flush_last_vs_first_day"] = round(last / first, 3)
    return result


def search_logs_by_size(conn: psycopg.Connection) -> dict:
    """search_logs as it is (newest days first) and ranking every match (since the first day), the same terms."""
    first_day = datetime.fromtimestamp(BASE_NS / 1e9, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    conn.execute("vacuum analyze otel.logs")
    terms = [(TERMS[n % len(TERMS)],) for n in range(REPEATS)]
    return {
        "newest_days": timed_calls(conn, "select * from otel.search_logs(%s, lim => 100)", terms),
        "every_match": timed_calls(
            conn, "select * from otel.search_logs(%s, since => %s, lim => 100)", [(*t, first_day) for t in terms]
        ),
    }


def search_logs_part(conn: psycopg.Connection, days: int = 10, per_day: int = 300_000) -> dict:
    """search_logs over one day and ten days of log records (300k a day, as the full run's)."""
    figures: dict = {}
    conn.execute("select otel.set_retention('logs', null)")
    for day in range(days):
        rng = random.Random(day)
        spans = [
            (
                f"{rng.getrandbits(128):032x}",
                f"{rng.getrandbits(64):016x}",
                BASE_NS + day * DAY_NS + rng.randrange(DAY_NS),
                rng.choice(SERVICES),
            )
            for _ in range(per_day // 3)
        ]
        stage_logs(conn, rng, per_day, spans)
        conn.execute("call otel.flush()")
        if day in (0, days - 1):
            figures[f"at_{(day + 1) * per_day}_logs"] = search_logs_by_size(conn)
    small, large = figures[f"at_{per_day}_logs"], figures[f"at_{days * per_day}_logs"]
    figures["growth_p50"] = {
        kind: round(large[kind]["p50_ms"] / small[kind]["p50_ms"], 2) for kind in ("newest_days", "every_match")
    }
    return figures


# `python -m bench.scale FLAG`: one part again, in a database of its own, into the committed scale.json.
PARTS: dict[str, tuple[str, Callable[[psycopg.Connection], object]]] = {
    "--vectors": ("vector_index", lambda conn: [vector_index(conn, count) for count in vectors_from_env()]),
    "--logs": ("search_logs", search_logs_part),
    "--hnsw-sweep": ("hnsw_sweep", lambda conn: hnsw_sweep(conn, max(vectors_from_env()))),
}


def rerun_part(flag: str) -> None:
    from bench.common import RESULTS, environment

    key, measure = PARTS[flag]
    path = RESULTS / "scale.json"
    result = json.loads(path.read_text())
    url = fresh_database(DATABASE)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            result[key] = measure(conn)
    finally:
        drop_database(DATABASE)
    result[f"{key}_run"] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": f"python -m bench.scale {flag}",
        "commit": environment()["commit"],
    }
    path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    import sys

    from bench.common import save

    if sys.argv[1:2] and sys.argv[1] in PARTS:
        rerun_part(sys.argv[1])
    elif sys.argv[1:]:
        sys.exit(f"python -m bench.scale [{' | '.join(PARTS)}]")
    else:
        save("scale", run(), command="python -m bench.scale")
