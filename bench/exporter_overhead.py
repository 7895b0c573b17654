"""Exporter overhead: an application loop creating spans, with the SDK's in-memory exporter vs otel_db's SpanExporter.

Both run under BatchSpanProcessor in the same process, one after the other,
twice each (alternating; the better run of each counts). Two figures:
`loop_ratio`, the loop's own throughput (spans created per second while it
runs: what the application feels), and `ratio`, which also counts
`provider.shutdown()` exporting whatever is still queued, so that every span
is encoded and staged inside the timed section. The queue is made large
enough that neither run drops spans (checked).

Where the rest of the time goes: the exporter runs on the processor's worker
thread, which holds the GIL while it encodes and while psycopg frames the
COPY data, and releases it while the bytes travel and the server writes
them. The run wraps the encoder and the COPY call to sum their wall time,
and compares the loop thread's CPU time with its wall time: the difference
is mostly time spent waiting for the GIL held by the worker.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter as SdkSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_db.exporters
from bench.common import ROUTES, SERVICES, drop_database, fresh_database
from otel_db.exporters import SpanExporter
from otel_db.settings import Settings

DATABASE = "otel_bench_exporter"


def span_loop(exporter: SdkSpanExporter, spans: int) -> dict[str, float]:
    """Create `spans` spans (traces 1-3 deep, a few attributes each) as fast as possible."""
    provider = TracerProvider(resource=Resource({"service.name": "bench", "host.name": "bench-1"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=spans))
    tracer = provider.get_tracer("bench.exporter_overhead", "1.0")
    made = 0
    i = 0
    start, cpu = time.perf_counter(), time.thread_time()
    while made < spans:
        depth = min(1 + i % 3, spans - made)
        attributes = {"http.route": ROUTES[i % len(ROUTES)], "http.response.status_code": 200, "user.id": i}
        with tracer.start_as_current_span(SERVICES[i % len(SERVICES)], attributes=attributes):
            if depth > 1:
                with tracer.start_as_current_span("db.query", attributes={"db.system": "postgresql", "rows": i}):
                    if depth > 2:
                        with tracer.start_as_current_span("encode", attributes={"bytes": i * 7}):
                            pass
        made += depth
        i += 1
    loop_wall, loop_cpu = time.perf_counter() - start, time.thread_time() - cpu
    provider.shutdown()
    total = time.perf_counter() - start
    return {"seconds": total, "loop_seconds": loop_wall, "loop_cpu_seconds": loop_cpu}


class _Sections:
    """Wall time summed inside wrapped functions (encoding, COPY, export())."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        self.seconds[name] = 0.0

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start

        return timed


@contextmanager
def measured_exporter(exporter: SpanExporter, sections: _Sections) -> Iterator[None]:
    """Time otel_db's span encoder, its COPY and export() as a whole for the duration of a run."""
    encode = otel_db.exporters.spans_json
    otel_db.exporters.spans_json = sections.wrap("encode", encode)
    exporter._sender._copy = sections.wrap("copy", exporter._sender._copy)  # type: ignore[method-assign]
    exporter.export = sections.wrap("export", exporter.export)  # type: ignore[method-assign]
    try:
        yield
    finally:
        otel_db.exporters.spans_json = encode


def run(spans: int = int(os.environ.get("OTEL_DB_BENCH_EXPORTER_SPANS", "50000"))) -> dict:
    url = fresh_database(DATABASE)
    try:
        memory_runs, otel_runs = [], []
        for _ in range(2):
            memory = InMemorySpanExporter()
            memory_runs.append(span_loop(memory, spans))
            assert len(memory.get_finished_spans()) == spans, "the in-memory run dropped spans"

            exporter = SpanExporter(url, settings=Settings(connection_string=url))
            sections = _Sections()
            with measured_exporter(exporter, sections):
                result = span_loop(exporter, spans)
            assert exporter.dropped_spans == 0, f"otel_db dropped {exporter.dropped_spans} spans"
            otel_runs.append({**result, **{f"{k}_seconds": v for k, v in sections.seconds.items()}})
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("call otel.flush()")
            landed = conn.execute("select count(*) from otel.traces").fetchone()[0]
        assert landed == 2 * spans, f"{landed} of {2 * spans} spans landed"
    finally:
        drop_database(DATABASE)
    memory_best = min(memory_runs, key=lambda r: r["seconds"])
    otel_best = min(otel_runs, key=lambda r: r["seconds"])
    # The loop's own throughput (what the goal names), and the stricter
    # figure with the processor's drain at shutdown counted too.
    memory_loop = spans / min(r["loop_seconds"] for r in memory_runs)
    otel_loop = spans / min(r["loop_seconds"] for r in otel_runs)
    memory_rate = spans / memory_best["seconds"]
    otel_rate = spans / otel_best["seconds"]
    extra = otel_best["seconds"] - memory_best["seconds"]
    gil_wait = (otel_best["loop_seconds"] - otel_best["loop_cpu_seconds"]) - (
        memory_best["loop_seconds"] - memory_best["loop_cpu_seconds"]
    )
    return {
        "spans": spans,
        "in_memory_spans_per_s": round(memory_rate),
        "otel_db_spans_per_s": round(otel_rate),
        "ratio": round(otel_rate / memory_rate, 3),
        "loop_spans_per_s": {"in_memory": round(memory_loop), "otel_db": round(otel_loop)},
        "loop_ratio": round(otel_loop / memory_loop, 3),
        "goals": {"loop_ratio": ">= 0.70", "ratio (shutdown drain included)": ">= 0.70"},
        "in_memory_seconds": round(memory_best["seconds"], 3),
        "otel_db_seconds": round(otel_best["seconds"], 3),
        "extra_seconds": round(extra, 3),
        "where_the_extra_goes": {
            "export_seconds": round(otel_best["export_seconds"], 3),
            "encode_seconds": round(otel_best["encode_seconds"], 3),
            "copy_seconds": round(otel_best["copy_seconds"], 3),
            "encode_us_per_span": round(otel_best["encode_seconds"] / spans * 1e6, 2),
            "copy_us_per_span": round(otel_best["copy_seconds"] / spans * 1e6, 2),
            "loop_gil_wait_seconds": round(gil_wait, 3),
            "shutdown_seconds": round(otel_best["seconds"] - otel_best["loop_seconds"], 3),
        },
        "runs": {"in_memory": memory_runs, "otel_db": otel_runs},
    }
