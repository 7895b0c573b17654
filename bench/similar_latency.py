"""otel.similar_traces() at 1,000,000 spans: latency and recall against an
exact scan, and against the seed design's vector-per-span table.

- otel_db: signatures embedded once each, HNSW index; the function returns
  one row per trace (k = 10, no similarity floor).
- exact: the same spans each carrying their signature's vector (what a
  vector-per-span store holds), scanned sequentially: the exact 10 most
  similar spans.
- seed design: that vector-per-span table with the seed's IVFFlat index
  (lists = 100, default probes).
- by trace: `otel.similar_traces(trace_id)` for failing traces, which finds
  the trace's root cause (otel.root_cause()) and searches by it, against
  the exact scan of the same 12 questions.
Recall@10 compares similarity values: spans of one signature tie, so the
trace ids of an exact answer are arbitrary among equals, their
similarities are not.
"""

from __future__ import annotations

import statistics
import time

import psycopg

from bench.common import TYPED_COLUMNS, drop_database, fresh_database, span_dicts, typed_row
from otel_db.embed import embed_pending
from otel_db.embedding import Embedder
from otel_db.queries import vector_literal

QUESTIONS = [
    "why was the customer's card declined?",
    "database connection timeout",
    "product not found",
    "checkout failed with an internal server error",
    "slow requests to the cart service",
    "inventory lookups",
    "user profile page",
    "POST /orders returned 500",
    "shipping service health check",
    "payment | server POST /checkout | error: card declined",
    "timeout connecting to postgres",
    "GET /products/{id} 404 Not Found",
]

SEED_TABLE = """
create unlogged table seed_spans as
select t.trace_id, t.span_id, t.service_name, t.name, s.embedding
  from otel.traces as t
  join otel.span_signatures as s on s.id = t.signature_id;
"""


def timed_query(conn: psycopg.Connection, query: str, params: tuple) -> tuple[float, list[tuple]]:
    started = time.perf_counter()
    rows = conn.execute(query, params).fetchall()
    return time.perf_counter() - started, rows


def recall(found: list[float], exact: list[float]) -> float:
    """Share of the exact top similarities matched (to 1e-6) by the found ones."""
    remaining = sorted(found, reverse=True)
    hits = 0
    for value in exact:
        match = next((f for f in remaining if abs(f - value) < 1e-6), None)
        if match is not None:
            remaining.remove(match)
            hits += 1
    return hits / len(exact)


def relation_size(conn: psycopg.Connection, *names: str) -> int:
    return sum(conn.execute("select pg_total_relation_size(%s)", (n,)).fetchone()[0] for n in names)


def run(spans: int = 1_000_000) -> dict:
    embedder = Embedder()
    url = fresh_database("otel_bench_similar")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            with conn.cursor().copy(f"copy otel.traces_staging ({TYPED_COLUMNS}) from stdin") as copy:
                for span in span_dicts(spans):
                    copy.write_row(typed_row(span))
            conn.execute("call otel.flush()")
            embed_pending(conn, embedder, batch_size=64)
            conn.execute(SEED_TABLE)
            conn.execute("vacuum analyze seed_spans")
            conn.execute("vacuum analyze otel.span_signatures")
            started = time.perf_counter()
            conn.execute(
                "create index seed_spans_embedding_idx on seed_spans using ivfflat (embedding vector_cosine_ops)"
                " with (lists = 100)"
            )
            ivfflat_build = time.perf_counter() - started

            probes = [vector_literal(v) for v in embedder.embed(QUESTIONS)]
            ours, exact, seed, recalls, seed_recalls = [], [], [], [], []
            for probe in probes:
                seconds, rows = timed_query(
                    conn, "select similarity from otel.similar_traces(%s::vector, 10, -1)", (probe,)
                )
                ours.append(seconds)
                conn.execute("set enable_indexscan = off")
                seconds, exact_rows = timed_query(
                    conn,
                    "select 1 - (embedding <=> %s::vector) from seed_spans order by embedding <=> %s::vector limit 10",
                    (probe, probe),
                )
                conn.execute("reset enable_indexscan")
                exact.append(seconds)
                seconds, seed_rows = timed_query(
                    conn,
                    "select 1 - (embedding <=> %s::vector) from seed_spans order by embedding <=> %s::vector limit 10",
                    (probe, probe),
                )
                seed.append(seconds)
                truth = [r[0] for r in exact_rows]
                recalls.append(recall([r[0] for r in rows], truth))
                seed_recalls.append(recall([r[0] for r in seed_rows], truth))
            failing = [
                r[0]
                for r in conn.execute(
                    "select trace_id from otel.trace_summaries where error_count > 0 order by trace_id limit %s",
                    (len(QUESTIONS),),
                )
            ]
            by_trace = [
                timed_query(conn, "select similarity from otel.similar_traces(%s, 10, -1)", (trace_id,))[0]
                for trace_id in failing
            ]
            signatures = conn.execute("select count(*) from otel.span_signatures").fetchone()[0]
            ours_bytes = relation_size(conn, "otel.span_signatures")
            seed_bytes = relation_size(conn, "seed_spans")
    finally:
        drop_database("otel_bench_similar")
    p50 = statistics.median
    return {
        "spans": spans,
        "signatures": signatures,
        "queries": len(QUESTIONS),
        "similar_traces_p50_ms": round(1000 * p50(ours), 2),
        "exact_scan_p50_ms": round(1000 * p50(exact), 2),
        "similar_traces_vs_exact_latency": round(p50(ours) / p50(exact), 4),
        "recall_at_10": round(statistics.mean(recalls), 4),
        "by_trace_p50_ms": round(1000 * p50(by_trace), 2),
        "by_trace_vs_exact_latency": round(p50(by_trace) / p50(exact), 4),
        "seed_ivfflat_p50_ms": round(1000 * p50(seed), 2),
        "seed_ivfflat_recall_at_10": round(statistics.mean(seed_recalls), 4),
        "seed_ivfflat_build_s": round(ivfflat_build, 1),
        "vector_storage_bytes": {
            "otel_db_signatures_with_hnsw": ours_bytes,
            "seed_vector_per_span_with_ivfflat": seed_bytes,
        },
        "seed_storage_vs_otel_db": round(seed_bytes / ours_bytes, 1),
        "seed_p50_vs_otel_db": round(p50(seed) / p50(ours), 2),
        "goals": {
            "similar_traces_vs_exact_latency": "<= 0.1",
            "by_trace_vs_exact_latency": "<= 0.1",
            "recall_at_10": ">= 0.95",
        },
    }
