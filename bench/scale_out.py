"""One node against a Citus coordinator with two workers on the same machine, in one run (docs/scale-out.md).

The project cluster is the one node; `scripts/citus-cluster.sh start` (ports 54340-54342 unless
OTEL_DB_CITUS_PORT says otherwise) gives the three-node cluster, where the database is distributed by
`otel.distribute()` twice in turn: with its default of 32 shards, then with 4 (about twice this machine's
cores). Each gets the same bench spans (bench.common.span_dicts), narrow (three attributes), realistic,
and realistic as OTLP/JSON requests of 200 spans, OTEL_DB_BENCH_SPANS_SCALE_OUT spans of each (default
200,000) in two batches: into empty tables, then into tables holding the first batch. Each batch is
COPYed into otel.traces_staging (the requests into otel.otlp_staging), then flushed by
`call otel.flush()`: spans per second for each step. Then 100,000 log records (30 % of them
in spans of the first realistic batch) and four hours of 10-second metric points of 116 series
(bench.reads' generators), each COPYed and flushed: records per second of the flush.

After the load, the signatures embedded and `vacuum analyze`, the reads a user makes, each after a
warm-up call, wall-clock from the client: `trace_spans`, `root_cause` and `trace_logs` of 50 failing
traces, `find_traces` by service over the two hours that hold the spans (20 calls), `traces_by_error`
(limit 100, 20 calls), `similar_traces` by trace id (k 10) and `explain_trace` of 10 failing traces,
`search_logs` of 20 terms (limit 100), and `metric_series` in 1-minute buckets over the four hours
(avg of a gauge, rate of a counter, p99 of a histogram, 12 calls). Every read must return the same rows
on the cluster as on one node (checked; floats to 1e-9, as sums add in another order). Figures are
cluster / one node: above 1 the cluster is faster for rates, slower for latencies.

Nothing here is a goal: on two cores three nodes share the CPU one node has alone. The figures show the
overhead of the distribution (a round trip from the coordinator to a worker, shards planned and merged),
how it grows with the shard count, and where the workers' parallel inserts win already.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from bench import reads as bench_reads
from bench.common import (
    ROOT,
    SERVICES,
    copy_staging_file,
    drop_database,
    fresh_database,
    migrate,
    otlp_copy_line,
    otlp_lines,
    span_dicts,
    timed,
    typed_line,
)

DATABASE = "otel_bench_scale_out"
BASE_NS = 1_764_000_000_000_000_000  # span_dicts' default: spans over the hour from 2025-11-24 16:00 UTC
HOURS = ("2025-11-24 16:00+00", "2025-11-24 18:00+00")  # the data and an hour of late ends
READS = 50
LOGS = 100_000
POINTS_PER_SERIES = 1440  # four hours of 10-second points, 116 series (bench.reads)
METRIC_HOURS = ("2025-11-24 00:00+00", "2025-11-24 04:00+00")
# otel.distribute()'s default, and about twice the cores of this machine
SHARD_COUNTS = (32, 4)


def spans_from_env() -> int:
    return int(os.environ.get("OTEL_DB_BENCH_SPANS_SCALE_OUT", "200000"))


def citus_cluster(*arguments: str) -> None:
    done = subprocess.run([ROOT / "scripts" / "citus-cluster.sh", *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"scale_out needs the Citus cluster (make citus-cluster): {done.stderr.strip()}")


def cluster_url() -> str:
    return f"postgresql://postgres@127.0.0.1:{os.environ.get('OTEL_DB_CITUS_PORT', '54340')}/{DATABASE}"


def load(url: str, files: list[Path], count: int) -> list[dict]:
    """COPY then flush each file in turn: spans per second of each step."""
    steps = []
    with psycopg.connect(url, autocommit=True) as conn:
        for path in files:
            with timed() as copying:
                copy_staging_file(conn, path)
            with timed() as flushing:
                conn.execute("call otel.flush()")
            steps.append(
                {
                    "copy_spans_per_s": round(count / copying.seconds),
                    "flush_spans_per_s": round(count / flushing.seconds),
                }
            )
    return steps


def p50_ms(conn: psycopg.Connection, query: str, arguments: list[tuple]) -> tuple[float, list[list[tuple]]]:
    """The median wall-clock time of the query over the arguments, after a warm-up call, and its answers."""
    conn.execute(query, arguments[0]).fetchall()
    seconds, answers = [], []
    for argument in arguments:
        start = time.perf_counter()
        answers.append(conn.execute(query, argument).fetchall())
        seconds.append(time.perf_counter() - start)
    return round(statistics.median(seconds) * 1000, 2), answers


def reads(url: str, failing: list[str]) -> tuple[dict, dict]:
    """Each read's p50 in ms, and its answers."""
    queries: dict[str, tuple[str, list[tuple]]] = {
        "trace_spans": ("select * from otel.trace_spans(%s)", [(t,) for t in failing[:READS]]),
        "root_cause": ("select * from otel.root_cause(%s)", [(t,) for t in failing[:READS]]),
        "find_traces": (
            "select * from otel.find_traces(service => %s, since => %s, until => %s, lim => 20)",
            [(SERVICES[i % len(SERVICES)], *HOURS) for i in range(20)],
        ),
        "traces_by_error": ("select * from otel.traces_by_error(%s, %s, lim => 100)", [HOURS] * 20),
        "similar_traces": (
            "select * from otel.similar_traces(%s, k => 10, min_similarity => 0.5)",
            [(t,) for t in failing[:10]],
        ),
        "explain_trace": ("select * from otel.explain_trace(%s)", [(t,) for t in failing[:10]]),
        "trace_logs": ("select * from otel.trace_logs(%s)", [(t,) for t in failing[:READS]]),
        "search_logs": (
            "select * from otel.search_logs(%s, lim => 100)",
            [(term,) for term in bench_reads.SEARCH_TERMS[:20]],
        ),
        "metric_series": (
            "select * from otel.metric_series(%s, '1 minute', %s, %s, agg => %s)",
            [
                (name, *METRIC_HOURS, agg)
                for name, agg in (
                    (bench_reads.GAUGE, "avg"),
                    (bench_reads.COUNTER, "rate"),
                    (bench_reads.HISTOGRAM, "p99"),
                )
            ]
            * 4,
        ),
    }
    latencies, answers = {}, {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, (query, arguments) in queries.items():
            latencies[name], answers[name] = p50_ms(conn, query, arguments)
    return latencies, answers


def embed(url: str) -> None:
    from otel_db.embed import embed_pending
    from otel_db.embedding import Embedder

    with psycopg.connect(url, autocommit=True) as conn:
        embedder = Embedder()
        while embed_pending(conn, embedder, 256).embedded:
            pass


def same(answers: list[list[tuple]], expected: list[list[tuple]]) -> bool:
    """Equal answers, floats within 1e-9 of each other: an aggregate adds its values in the order the scan (or
    the shards, or parallel workers) deliver them, and floating-point sums differ in their last bits."""

    def close(a: object, b: object) -> bool:
        if isinstance(a, float) and isinstance(b, float):
            return math.isclose(a, b, rel_tol=1e-9)
        return a == b

    return len(answers) == len(expected) and all(
        len(rows) == len(wanted)
        and all(
            len(row) == len(other) and all(close(a, b) for a, b in zip(row, other, strict=True))
            for row, other in zip(rows, wanted, strict=True)
        )
        for rows, wanted in zip(answers, expected, strict=True)
    )


def ratios(cluster: dict, one_node: dict) -> dict:
    return {name: round(cluster[name] / one_node[name], 2) for name in one_node}


def step_ratios(cluster: dict, one_node: dict, figure: str) -> dict:
    """Cluster / one node of a figure of each load step, by shape."""
    return {
        shape: [ratios(c, o)[figure] for c, o in zip(steps, one_node[shape], strict=True)]
        for shape, steps in cluster.items()
    }


def load_signals(url: str, count: int) -> dict:
    """The log records and metric points of bench.reads over the realistic spans of the first batch: COPY, then
    flush, records per second."""
    correlated = [
        (s["trace_id"], s["span_id"], s["start_ns"], s["service_name"])
        for i, s in enumerate(span_dicts(count, seed=7))
        if i % 3 == 0
    ]
    rates = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, table, copy in (
            ("logs", "otel.logs", lambda: bench_reads.load_logs(conn, LOGS, correlated)),
            ("metric_points", "otel.metrics", lambda: bench_reads.load_metrics(conn, POINTS_PER_SERIES)),
        ):
            copy()
            with timed() as flushing:
                conn.execute("call otel.flush()")
            stored = conn.execute(f"select count(*) from {table}").fetchone()[0]
            rates[f"{name}_flush_per_s"] = round(stored / flushing.seconds)
    return rates


def load_and_read(url: str, files: dict[str, list[Path]], count: int, failing: list[str] | None) -> dict:
    """Every shape's batches loaded, then logs and metric points, the signatures embedded, then the reads (of
    `failing`, else of failing traces chosen here)."""
    loads = {shape: load(url, paths, count) for shape, paths in files.items()}
    signals = load_signals(url, count)
    embed(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze otel.traces, otel.trace_summaries, otel.span_signatures")
        stored = conn.execute("select count(*) from otel.traces").fetchone()[0]
        failing = failing or [
            t
            for (t,) in conn.execute(
                "select trace_id from otel.trace_summaries where error_count > 0 order by md5(trace_id) limit %s",
                (READS,),
            )
        ]
    latencies, answers = reads(url, failing)
    return {
        "loads": loads,
        "signals": signals,
        "spans_stored": stored,
        "failing": failing,
        "p50_ms": latencies,
        "answers": answers,
    }


def run(spans: int | None = None) -> dict:
    spans = spans_from_env() if spans is None else spans
    citus_cluster("start")
    result: dict = {"spans_per_shape": spans, "batches": 2, "clusters": {}}
    with tempfile.TemporaryDirectory() as directory:
        files: dict[str, list[Path]] = {}
        for shape, narrow, seed in (("narrow", True, 107), ("realistic", False, 7), ("otlp", False, 207)):
            files[shape] = []
            for batch in range(2):
                generated = span_dicts(spans // 2, seed=seed + batch, narrow=narrow)
                path = Path(directory) / f"{shape}-{batch}.{'otlp' if shape == 'otlp' else 'copy'}"
                with path.open("w") as f:
                    if shape == "otlp":
                        f.writelines(otlp_copy_line(line) for line in otlp_lines(generated))
                    else:
                        f.writelines(typed_line(s) for s in generated)
                files[shape].append(path)
        try:
            one_node = load_and_read(fresh_database(DATABASE), files, spans // 2, None)
        finally:
            drop_database(DATABASE)
        result["one_node"] = {key: one_node[key] for key in ("loads", "signals", "spans_stored", "p50_ms")}
        for shards in SHARD_COUNTS:
            citus_cluster("createdb", DATABASE)
            try:
                migrate(cluster_url())
                with psycopg.connect(cluster_url(), autocommit=True) as conn:
                    conn.execute("select otel.distribute(%s)", (shards,))
                cluster = load_and_read(cluster_url(), files, spans // 2, one_node["failing"])
            finally:
                citus_cluster("dropdb", DATABASE)
            assert cluster["spans_stored"] == one_node["spans_stored"]
            differing = [
                name for name, answers in one_node["answers"].items() if not same(cluster["answers"][name], answers)
            ]
            if differing:
                raise AssertionError(f"{shards} shards answered differently from one node: {', '.join(differing)}")
            result["clusters"][str(shards)] = {
                "loads": cluster["loads"],
                "signals": cluster["signals"],
                "signals_vs_one_node": ratios(cluster["signals"], one_node["signals"]),
                "p50_ms": cluster["p50_ms"],
                "flush_vs_one_node": step_ratios(cluster["loads"], one_node["loads"], "flush_spans_per_s"),
                "copy_vs_one_node": step_ratios(cluster["loads"], one_node["loads"], "copy_spans_per_s"),
                "reads_vs_one_node": ratios(cluster["p50_ms"], one_node["p50_ms"]),
                "same_answers": True,
            }
    result["summary"] = headline(result)
    for line in result["summary"]:
        print(line)
    return result


def headline(result: dict) -> list[str]:
    lines = []
    for shards, cluster in result["clusters"].items():
        flush = "; ".join(
            f"{shape} {ratios[0]} into empty, {ratios[1]} into populated tables"
            for shape, ratios in cluster["flush_vs_one_node"].items()
        )
        reads = ", ".join(f"{name} {ratio}" for name, ratio in cluster["reads_vs_one_node"].items())
        lines.append(f"{shards} shards, flush cluster/one node: {flush}")
        lines.append(f"{shards} shards, reads p50 cluster/one node: {reads}")
    return lines
