"""Recall of the HNSW index behind otel.similar_traces(), by hnsw.ef_search.

Embeds N signature-like texts with the project's embedder, stores them as
otel.span_signatures, and for Q other texts compares the index's 10 nearest
signatures (iterative scan off, so ef_search alone bounds the search) with
the exact 10 nearest (sequential scan), side by side in one run.
"""

from __future__ import annotations

import random
import time

import psycopg

from bench.common import ERRORS, ROUTES, SERVICES, drop_database, fresh_database
from otel_db.embedding import Embedder
from otel_db.queries import vector_literal

EF_SEARCH = (10, 20, 40, 80, 160)
WORDS = ("order", "cart", "user", "stock", "invoice", "shipment", "token", "session", "report", "avatar")


def signature_texts(count: int, seed: int) -> list[str]:
    """Texts shaped like span signatures: service, kind and name, status, HTTP or database parts."""
    rng = random.Random(seed)
    texts: set[str] = set()
    while len(texts) < count:
        service = rng.choice(SERVICES)
        noun = rng.choice(WORDS)
        parts = [
            service,
            f"{rng.choice(['server', 'client', 'internal'])} {rng.choice(['GET', 'POST'])} "
            f"{rng.choice(ROUTES).replace('{id}', noun)}",
        ]
        if rng.random() < 0.4:
            kind, template = rng.choice(ERRORS)
            message = template.replace("{n}", "<num>") + f" ({noun} {rng.choice(WORDS)})"
            parts += [f"error: {message}", f"exception {kind}: {message}"]
        if rng.random() < 0.3:
            parts.append(f"postgresql {rng.choice(['SELECT', 'UPDATE', 'INSERT'])} {noun}s")
        parts.append(
            f"{rng.choice(['GET', 'POST'])} /{noun}/{rng.choice(WORDS)} {rng.choice(['200 OK', '404 Not Found'])}"
        )
        texts.add(" | ".join(parts))
    return sorted(texts)


def top10(conn: psycopg.Connection, query: str) -> list[int]:
    rows = conn.execute(
        "select id from otel.span_signatures order by embedding <=> %s::vector limit 10", (query,)
    ).fetchall()
    return [row[0] for row in rows]


def run(signatures: int = 10_000, queries: int = 200) -> dict:
    embedder = Embedder(cache_size=0)
    texts = signature_texts(signatures + queries, seed=11)
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    embed_seconds = time.perf_counter() - started
    url = fresh_database("otel_bench_recall")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            with conn.cursor().copy("copy otel.span_signatures (text, embedding, embedding_model) from stdin") as copy:
                for text, vector in zip(texts[:signatures], vectors[:signatures], strict=True):
                    copy.write_row((text, vector_literal(vector), embedder.model_name))
            conn.execute("vacuum analyze otel.span_signatures")
            probes = [vector_literal(v) for v in vectors[signatures:]]
            conn.execute("set enable_indexscan = off")
            exact = [set(top10(conn, q)) for q in probes]
            conn.execute("reset enable_indexscan")
            conn.execute("set enable_seqscan = off")
            conn.execute("set hnsw.iterative_scan = off")
            by_ef = {}
            for ef in EF_SEARCH:
                conn.execute(f"set hnsw.ef_search = {ef}")
                started = time.perf_counter()
                found = [set(top10(conn, q)) for q in probes]
                seconds = time.perf_counter() - started
                recall = sum(len(f & e) for f, e in zip(found, exact, strict=True)) / (10 * len(probes))
                by_ef[ef] = {"recall_at_10": round(recall, 4), "ms_per_query": round(1000 * seconds / len(probes), 2)}
    finally:
        drop_database("otel_bench_recall")
    return {
        "signatures": signatures,
        "queries": queries,
        "embedding_model": embedder.model_name,
        "embedded_per_s": round((signatures + queries) / embed_seconds),
        "by_ef_search": by_ef,
    }
