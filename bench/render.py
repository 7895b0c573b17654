"""BENCHMARKS.md from the committed results: `python -m bench.render` (`python -m bench` runs it after a run).

Each benchmark's section is its module's docstring (the method), the run it
comes from (date, commit, command, machine, versions), a table of its goals
with the measured figure and whether it is met, what was learnt from the run
where bench/notes/NAME.md says it, and every figure of the result file. The
figures are never typed in by hand: they change when a benchmark runs again
and its result is committed. tests/test_benchmarks_page.py fails when
BENCHMARKS.md differs from what this renders.
"""

from __future__ import annotations

import importlib
import json
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "BENCHMARKS.md"

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
    ">": operator.gt,
}


@dataclass(frozen=True)
class Goal:
    """A figure of a result (a dotted path) and what it should be: ">= 0.6", "< 2000" (None: reported only)."""

    figure: str
    path: str
    goal: str | None = None


# The goals as the issues set them; the figures that answer them, by path in each result file.
GOALS: dict[str, list[Goal]] = {
    "flush_throughput": [
        Goal("typed flush / the server's insert ceiling (median of rounds)", "typed_flush_vs_ceiling", ">= 0.6"),
        Goal("OTLP/JSON flush / typed flush", "otlp_vs_typed", ">= 0.5"),
        Goal(
            "typed flush / the insert ceiling, both tables holding 10M spans and more (median of rounds)",
            "populated.typed_flush_vs_ceiling",
            ">= 0.6",
        ),
    ],
    "flush_narrow": [
        Goal(
            "typed flush of narrow spans / their insert ceiling (median of rounds)", "typed_flush_vs_ceiling", ">= 0.6"
        ),
    ],
    "flush_before_after": [
        Goal("typed flush, after / before the checks (within noise: 0.95)", "after_vs_before.typed", ">= 0.95"),
        Goal("OTLP flush, after / before the checks (within noise: 0.95)", "after_vs_before.otlp", ">= 0.95"),
    ],
    "seed_orm": [Goal("COPY + flush / the seed design's ORM inserts", "otel_db_vs_seed", ">= 2.5")],
    "staging_space": [Goal("staging size left / one batch", "staging_vs_batch", "<= 2")],
    "staging_modes": [
        Goal("logged / unlogged staging, COPY", "logged_vs_unlogged_copy"),
        Goal("logged / unlogged staging, flush", "logged_vs_unlogged_flush"),
    ],
    "ingest_memory": [Goal("otel-db ingest of a 1 GB file, peak resident MB", "peak_rss_mb", "< 300")],
    "embedding_throughput": [
        Goal("ONNX fp32 / sentence-transformers, texts per second", "onnx_vs_sentence_transformers", ">= 2"),
        Goal("ONNX int8 / sentence-transformers", "onnx_int8_vs_sentence_transformers", ">= 2"),
    ],
    "similar_recall": [
        Goal("HNSW recall@10 at similar_traces' ef_search (40)", "by_ef_search.40.recall_at_10", ">= 0.95")
    ],
    "signature_dedupe": [Goal("embeddings per span", "embeddings_per_span", "<= 0.05")],
    "similar_latency": [
        Goal("similar_traces(vector) / exact scan, p50", "similar_traces_vs_exact_latency", "<= 0.1"),
        Goal("similar_traces(trace_id) / exact scan, p50", "by_trace_vs_exact_latency", "<= 0.1"),
        Goal("recall@10", "recall_at_10", ">= 0.95"),
    ],
    "exporter_overhead": [
        Goal("exporter / in-memory exporter, with the shutdown drain", "ratio", ">= 0.70"),
        Goal("exporter / in-memory exporter, the loop only", "loop_ratio", ">= 0.70"),
    ],
    "reads": [
        Goal("trace_spans / a sequential scan, p50 speed-up", "trace_spans_vs_seq_scan.ratio_p50", ">= 100"),
        Goal("search_logs / ilike, p50 speed-up", "search_logs_vs_ilike.ratio_p50", ">= 20"),
        Goal("metric_series avg / group by, p50 speed-up", "metric_series_vs_group_by.avg.ratio_p50"),
        Goal("metric_series rate / group by, p50 speed-up", "metric_series_vs_group_by.rate.ratio_p50"),
    ],
    "serve_throughput": [
        Goal(
            "end to end / typed path, 100 spans a request",
            "rates.100_spans_per_request.end_to_end_vs_typed",
            ">= 0.6",
        ),
        Goal(
            "end to end / typed path, 1,000 spans a request",
            "rates.1000_spans_per_request.end_to_end_vs_typed",
            ">= 0.6",
        ),
        Goal("receiver alone / end to end, 100 spans", "rates.100_spans_per_request.receiver_vs_end_to_end", ">= 2"),
        Goal("peak resident MB, HTTP, 32 clients", "memory.http.peak_rss_mb", "< 400"),
        Goal("peak resident MB, gRPC, 32 clients", "memory.grpc.peak_rss_mb", "< 400"),
    ],
    "explain_latency": [Goal("explain_trace p50 ms at 1M spans", "explain_trace.p50_ms", "< 1000")],
    "search_quality": [
        Goal("trace to trace, precision@5", "trace_to_trace.similar_traces.precision_at_5", ">= 0.95"),
        Goal("root cause found, share of failing traces", "root_cause.root_cause.accuracy", ">= 0.95"),
        Goal("baseline: the deepest error span", "root_cause.deepest_error_span.accuracy"),
        Goal(
            "questions in words, precision@5",
            "questions.similar_traces_default_min_similarity.precision_at_5",
            ">= 0.85",
        ),
        Goal("questions, full-text search baseline, precision@5", "questions.baseline_any_word_tsquery.precision_at_5"),
    ],
    "trace_search": [
        Goal("selective find_traces p50 ms at 1M spans", "searches.selective.find_traces.p50_ms", "<= 50"),
        Goal("selective find_traces / plain select, p50", "searches.selective.find_traces_vs_plain_p50"),
        Goal("broad find_traces / plain select, p50", "searches.broad.find_traces_vs_plain_p50"),
    ],
    "query_api": [
        Goal("GET /api/traces/{id}, 1,000 spans, p50 ms", "jaeger_api_trace.p50_ms"),
        Goal("the same / reading its rows", "jaeger_api_vs_sql_p50"),
    ],
    "scale": [
        Goal("flush, spans/s into empty tables", "flush.0.flush_spans_per_s"),
        Goal("flush, spans/s with 9M spans stored", "flush.9.flush_spans_per_s"),
        Goal("flush, with 9M stored / empty", "flush_last_vs_first_day"),
        Goal("trace_spans p50 ms at 1M spans", "reads.at_1000000_spans.trace_spans.p50_ms"),
        Goal("trace_spans p50 ms at 10M", "reads.at_10000000_spans.trace_spans.p50_ms"),
        Goal("find_traces p50 ms at 1M", "reads.at_1000000_spans.find_traces.p50_ms"),
        Goal("find_traces p50 ms at 10M", "reads.at_10000000_spans.find_traces.p50_ms"),
        Goal("similar_traces p50 ms at 1M", "reads.at_1000000_spans.similar_traces.p50_ms"),
        Goal("similar_traces p50 ms at 10M", "reads.at_10000000_spans.similar_traces.p50_ms"),
        Goal("search_logs p50 ms at 1M spans (300k logs)", "reads.at_1000000_spans.search_logs.p50_ms"),
        Goal("search_logs p50 ms at 10M spans (3M logs)", "reads.at_10000000_spans.search_logs.p50_ms"),
        Goal("search_logs p50 ms over 300k logs (--logs run)", "search_logs.at_300000_logs.newest_days.p50_ms"),
        Goal("search_logs p50 ms over 3M logs (--logs run)", "search_logs.at_3000000_logs.newest_days.p50_ms"),
        Goal("search_logs p50, 3M / 300k logs", "search_logs.growth_p50.newest_days"),
        Goal("ranking every match (since the first day), 3M / 300k", "search_logs.growth_p50.every_match"),
        Goal("metric_series p50 ms at 1M", "reads.at_1000000_spans.metric_series.p50_ms"),
        Goal("metric_series p50 ms at 10M", "reads.at_10000000_spans.metric_series.p50_ms"),
        Goal("bytes per span at 10M (heap, TOAST, indexes)", "reads.at_10000000_spans.bytes_per_row.traces.total"),
        Goal("bytes per log record", "reads.at_10000000_spans.bytes_per_row.logs.total"),
        Goal("bytes per metric point", "reads.at_10000000_spans.bytes_per_row.metrics.total"),
        Goal("HNSW over 100k vectors: build s", "vector_index.0.hnsw_build_seconds"),
        Goal("HNSW over 100k vectors: recall@10", "vector_index.0.recall_at_10"),
        Goal("HNSW over 1M vectors: build s", "vector_index.1.hnsw_build_seconds"),
        Goal("HNSW over 1M vectors: recall@10", "vector_index.1.recall_at_10"),
        Goal("HNSW over 1M vectors: query p50 ms", "vector_index.1.query.p50_ms"),
        Goal("HNSW over 1M vectors: exact scan p50 ms", "vector_index.1.exact_scan.p50_ms"),
        Goal("HNSW over 1M vectors: recall@10 at ef_search 100", "vector_index.1.by_ef_search.100.recall_at_10"),
        Goal("HNSW over 1M vectors: recall@10 at ef_search 200", "vector_index.1.by_ef_search.200.recall_at_10"),
        Goal("HNSW over 1M vectors: recall@10 at ef_search 400", "vector_index.1.by_ef_search.400.recall_at_10"),
        Goal("HNSW over 1M vectors: query p50 ms at ef_search 400", "vector_index.1.by_ef_search.400.p50_ms"),
        Goal("HNSW sweep, 1M vectors, m 16 / ef_construction 64: recall@10 at 40", "hnsw_sweep.builds.0.recall_at_10"),
        Goal("the same, at ef_search 400", "hnsw_sweep.builds.0.by_ef_search.400.recall_at_10"),
        Goal("m 16 / ef_construction 128: recall@10 at 40", "hnsw_sweep.builds.1.recall_at_10"),
        Goal("m 32 / ef_construction 128 (the index now): recall@10 at 40", "hnsw_sweep.builds.2.recall_at_10"),
        Goal("the same, at ef_search 100", "hnsw_sweep.builds.2.by_ef_search.100.recall_at_10"),
        Goal("build s, m 16 / 64 against m 32 / 128", "hnsw_sweep.builds.0.hnsw_build_seconds"),
        Goal("build s, m 32 / 128", "hnsw_sweep.builds.2.hnsw_build_seconds"),
        Goal("drop a day of retention, s", "retention_drop_one_day.seconds"),
    ],
    "scale_out": [
        Goal(
            "flush, narrow spans, empty tables: cluster / one node, 32 shards", "clusters.32.flush_vs_one_node.narrow.0"
        ),
        Goal("the same, populated tables", "clusters.32.flush_vs_one_node.narrow.1"),
        Goal("flush, realistic spans, empty tables, 32 shards", "clusters.32.flush_vs_one_node.realistic.0"),
        Goal("the same, populated tables", "clusters.32.flush_vs_one_node.realistic.1"),
        Goal("flush, narrow spans, empty tables, 4 shards", "clusters.4.flush_vs_one_node.narrow.0"),
        Goal("flush, realistic spans, populated tables, 4 shards", "clusters.4.flush_vs_one_node.realistic.1"),
        Goal("flush, OTLP/JSON requests, empty tables, 32 shards", "clusters.32.flush_vs_one_node.otlp.0"),
        Goal("flush, OTLP/JSON requests, empty tables, 4 shards", "clusters.4.flush_vs_one_node.otlp.0"),
        Goal("the same, populated tables", "clusters.4.flush_vs_one_node.otlp.1"),
        Goal("COPY into staging, narrow spans: cluster / one node, 32 shards", "clusters.32.copy_vs_one_node.narrow.0"),
        Goal("the same, 4 shards", "clusters.4.copy_vs_one_node.narrow.0"),
        Goal("COPY, realistic spans, 4 shards", "clusters.4.copy_vs_one_node.realistic.0"),
        Goal("trace_spans p50: cluster / one node, 32 shards", "clusters.32.reads_vs_one_node.trace_spans"),
        Goal("find_traces p50, 32 shards", "clusters.32.reads_vs_one_node.find_traces"),
        Goal("traces_by_error p50, 32 shards", "clusters.32.reads_vs_one_node.traces_by_error"),
        Goal("explain_trace p50, 32 shards", "clusters.32.reads_vs_one_node.explain_trace"),
        Goal("trace_spans p50, 4 shards", "clusters.4.reads_vs_one_node.trace_spans"),
        Goal("find_traces p50, 4 shards", "clusters.4.reads_vs_one_node.find_traces"),
        Goal("traces_by_error p50, 4 shards", "clusters.4.reads_vs_one_node.traces_by_error"),
        Goal("explain_trace p50, 4 shards", "clusters.4.reads_vs_one_node.explain_trace"),
        Goal("logs flush: cluster / one node, 4 shards", "clusters.4.signals_vs_one_node.logs_flush_per_s"),
        Goal("metric points flush, 4 shards", "clusters.4.signals_vs_one_node.metric_points_flush_per_s"),
        Goal("search_logs p50, 32 shards", "clusters.32.reads_vs_one_node.search_logs"),
        Goal("search_logs p50, 4 shards", "clusters.4.reads_vs_one_node.search_logs"),
        Goal("trace_logs p50, 4 shards", "clusters.4.reads_vs_one_node.trace_logs"),
        Goal("metric_series p50, 4 shards", "clusters.4.reads_vs_one_node.metric_series"),
    ],
    "storage": [
        Goal(
            "narrow: bytes per span, spans and trace summaries, every index",
            "narrow.bytes_per_span.otel_db.total",
            "<= 150",
        ),
        Goal("narrow: otel.traces alone with its indexes", "narrow.bytes_per_span.otel_db.spans_table"),
        Goal("narrow: ClickHouse bytes per span, both tables", "narrow.bytes_per_span.clickhouse.total"),
        Goal("narrow: otel_db / ClickHouse bytes", "narrow_bytes_vs_clickhouse"),
        Goal(
            "narrow: COPY + flush / ClickHouse insert, spans/s (median of 3)",
            "narrow.ingest_otel_vs_clickhouse",
            ">= 0.25",
        ),
        Goal("narrow: trace by id, ClickHouse / otel_db p50", "narrow.trace_by_id_clickhouse_vs_otel_p50", ">= 10"),
        Goal("realistic: bytes per span, spans and trace summaries", "realistic.bytes_per_span.otel_db.total"),
        Goal("realistic: ClickHouse bytes per span", "realistic.bytes_per_span.clickhouse.total"),
        Goal("realistic: COPY + flush / ClickHouse insert", "realistic.ingest_otel_vs_clickhouse"),
        Goal("realistic: trace by id, ClickHouse / otel_db p50", "realistic.trace_by_id_clickhouse_vs_otel_p50"),
        Goal(
            "narrow, cold: bytes per span, the columnar spans and trace summaries, their metadata, the day filters",
            "narrow.cold.bytes_per_span.total",
            "<= 60",
        ),
        Goal("narrow, cold: the columnar partition alone", "narrow.cold.bytes_per_span.spans_table"),
        Goal("narrow, cold: the trace summaries, columnar", "narrow.cold.bytes_per_span.trace_summaries"),
        Goal("narrow, cold: the Bloom filters of each day's trace ids", "narrow.cold.bytes_per_span.trace_day_filters"),
        Goal("narrow, cold: the columnar metadata of both", "narrow.cold.bytes_per_span.columnar_metadata"),
        Goal(
            "narrow, cold: trace by id, ClickHouse / otel_db p50",
            "narrow.cold.trace_by_id_clickhouse_vs_otel_p50",
            ">= 10",
        ),
        Goal("narrow, cold: trace by id p50 ms", "narrow.cold.trace_by_id.p50_ms"),
        Goal("narrow, cold: find_traces p50 ms", "narrow.cold.find_traces.p50_ms"),
        Goal("narrow: conversion to columnar, spans/s", "narrow.cold.conversion_spans_per_s"),
        Goal(
            "realistic, cold: bytes per span, the columnar spans and trace summaries, their metadata, the day filters",
            "realistic.cold.bytes_per_span.total",
        ),
        Goal("realistic, cold: the columnar partition alone", "realistic.cold.bytes_per_span.spans_table"),
        Goal(
            "realistic, cold: trace by id, ClickHouse / otel_db p50",
            "realistic.cold.trace_by_id_clickhouse_vs_otel_p50",
        ),
    ],
    "toast_compression": [
        Goal("lz4 / pglz, COPY of spans with 4 kB stack traces", "lz4_vs_pglz_copy"),
        Goal("lz4 / pglz, flush of the same spans", "lz4_vs_pglz_flush"),
        Goal("lz4 / pglz, bytes a span takes", "lz4_vs_pglz_bytes"),
    ],
    "web_render": [
        Goal("5,000-span trace on screen, p95 ms", "trace_5000_spans.rendered.p95_ms", "< 2000"),
        Goal("the same, p50 ms", "trace_5000_spans.rendered.p50_ms", "< 2000"),
        Goal("rendered / the load's fetch of the trace, p50", "trace_5000_spans.rendered_vs_fetch_p50"),
    ],
}

INTRODUCTION = """\
# Benchmarks

Rendered by `python -m bench.render` from the results committed in
`bench/results/` (each names its command, date, commit, machine and
versions); do not edit by hand. Earlier figures are in the history of
those files.

The machines are shared and noisy (2 cores, 24 GiB, Debian 12, PostgreSQL
15 with the settings of `scripts/pg-cluster.sh`), so every figure that has
a goal is a ratio measured side by side in one run, or an absolute figure
where the goal is one. Run them with `make bench` (all) or
`.venv/bin/python -m bench NAME …`; each writes `bench/results/NAME.json`.
The generated data is described in `bench/common.py`: traces of 1 to 8 spans
over six services, HTTP attributes, about 3 % errors with exception events.
"""


def figure(result: dict[str, Any], path: str) -> Any:
    """The value at a dotted path; keys may hold dots themselves, so the longest key that matches wins."""
    node: Any = result
    rest = path
    while rest:
        if isinstance(node, list):  # an index: "flush.0.flush_spans_per_s"
            index, _, rest = rest.partition(".")
            node = node[int(index)]
            continue
        keys = [key for key in node if rest == key or rest.startswith(key + ".")]
        if not keys:
            raise KeyError(path)
        key = max(keys, key=len)
        node, rest = node[key], rest[len(key) + 1 :]
    return node


def status(value: Any, goal: str | None) -> str:
    if goal is None:
        return "reported"
    match = re.fullmatch(r"(>=|<=|<|>)\s*([0-9.]+)", goal)
    if match is None or not isinstance(value, int | float):
        raise ValueError(f"cannot judge {value!r} against {goal!r}")
    return "**met**" if COMPARISONS[match[1]](value, float(match[2])) else "**not met**"


def measured(result: dict[str, Any], goal: Goal) -> tuple[str, str]:
    """The figure as shown and its status; a figure the run could not measure says so."""
    try:
        value = figure(result, goal.path)
    except KeyError:
        return "not in this run", "**not measured**"
    return shown(value), status(value, goal.goal)


def shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{prefix}.{key}" if prefix else key)
    elif isinstance(node, list) and any(isinstance(v, dict | list) for v in node):
        for index, value in enumerate(node):
            yield from leaves(value, f"{prefix}.{index}")
    elif isinstance(node, list):
        yield prefix, ", ".join(shown(v) for v in node)
    else:
        yield prefix, node


RUN_FIELDS = ("benchmark", "date", "command", "commit", "python", "postgresql", "cpus", "machine")


# Benchmarks that live in another's module.
MODULES = {"flush_narrow": "flush_throughput"}


def method(name: str) -> str:
    """The benchmark module's docstring: what it measures and how."""
    doc = importlib.import_module(f"bench.{MODULES.get(name, name)}").__doc__ or ""
    return doc.strip()


NOTES = ROOT / "bench" / "notes"


def notes(name: str) -> list[str]:
    """What was learnt from a run, written by hand in bench/notes/NAME.md (it names the run it reads)."""
    path = NOTES / f"{name}.md"
    return [path.read_text(encoding="utf-8").strip(), ""] if path.exists() else []


def section(name: str, result: dict[str, Any]) -> list[str]:
    run = ", ".join(f"{field} {result[field]}" for field in RUN_FIELDS[1:] if result.get(field) is not None)
    lines = [f"## {name}", "", method(name), "", f"*Run:* {run}.", ""]
    lines += ["| figure | measured | goal | status |", "|---|---|---|---|"]
    for goal in GOALS[name]:
        value, judged = measured(result, goal)
        lines.append(f"| {goal.figure} | {value} | {goal.goal or '—'} | {judged} |")
    lines += ["", *notes(name)]
    lines += ["<details><summary>Every figure of this run</summary>", "", "| figure | value |", "|---|---|"]
    lines += [
        f"| `{path}` | {shown(value)} |"
        for path, value in leaves({k: v for k, v in result.items() if k not in RUN_FIELDS})
    ]
    lines += ["", "</details>", ""]
    return lines


def render() -> str:
    results = {name: RESULTS / f"{name}.json" for name in GOALS}
    missing = [str(path.relative_to(ROOT)) for path in results.values() if not path.exists()]
    summary = ["## Goals at a glance", "", "| benchmark | figure | measured | goal | status |", "|---|---|---|---|---|"]
    sections: list[str] = []
    for name, path in results.items():
        if not path.exists():
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        for goal in GOALS[name]:
            if goal.goal is not None:
                value, judged = measured(result, goal)
                summary.append(f"| [{name}](#{name}) | {goal.figure} | {value} | {goal.goal} | {judged} |")
        sections += section(name, result)
    absent = ["", f"Not measured yet (no result committed): {', '.join(missing)}.", ""] if missing else [""]
    return "\n".join([INTRODUCTION, *summary, *absent, *sections]).rstrip() + "\n"


def main() -> None:
    PAGE.write_text(render(), encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
