"""Signature dedupe: how many embeddings a realistic workload needs.

The workload is scripts/generate_sample.py (a simulated shop instrumented
with the real OpenTelemetry SDK: six services, HTTP, database, cache and
messaging spans, errors with exceptions, varied attributes). Its OTLP/JSON
is ingested and flushed; every distinct signature is one embedding.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from bench.common import ROOT, drop_database, fresh_database
from otel_db.ingest import ingest_otlp_file


def run(traces: int = 5_000) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "workload.jsonl"
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "generate_sample.py"),
                "--traces",
                str(traces),
                "--seed",
                "3",
                "--start",
                "2026-11-20T00:00:00Z",
                "--out",
                str(sample),
                "--quiet",
            ],
            check=True,
        )
        url = fresh_database("otel_bench_dedupe")
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                ingest_otlp_file(conn, str(sample))
                conn.execute("call otel.flush()")
                spans, signatures, services, errors = conn.execute(
                    "select (select count(*) from otel.traces), (select count(*) from otel.span_signatures),"
                    " (select count(distinct service_name) from otel.traces),"
                    " (select count(*) from otel.traces where status_code = 'ERROR')"
                ).fetchone()
        finally:
            drop_database("otel_bench_dedupe")
    return {
        "traces": traces,
        "spans": spans,
        "error_spans": errors,
        "services": services,
        "signatures": signatures,
        "embeddings_per_span": round(signatures / spans, 4),
        "goal": {"embeddings_per_span": "<= 0.05"},
    }
