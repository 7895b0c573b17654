"""`python -m bench [NAME ...]`: run the benchmarks (all by default), save bench/results/NAME.json, render the page.

OTEL_DB_BENCH_SPANS sets the span count of the flush benchmark (default 1,000,000) and
OTEL_DB_BENCH_STORED_SPANS how many its tables hold before its populated rounds (default 10,000,000),
OTEL_DB_BENCH_SERVE_SPANS that of serve_throughput (default 200,000), OTEL_DB_BENCH_SPANS_EXPLAIN that of
explain_latency, OTEL_DB_BENCH_SPANS_SEARCH that of trace_search and OTEL_DB_BENCH_SPANS_STORAGE that of
storage (default 1,000,000 each); OTEL_DB_BENCH_SPANS_SCALE_OUT that of scale_out (default 200,000).
"""

import os
import sys

from bench import (
    embedding_throughput,
    explain_latency,
    exporter_overhead,
    flush_before_after,
    flush_throughput,
    ingest_memory,
    query_api,
    reads,
    render,
    scale_out,
    search_quality,
    seed_orm,
    serve_throughput,
    signature_dedupe,
    similar_latency,
    similar_recall,
    staging_modes,
    staging_space,
    storage,
    toast_compression,
    trace_search,
    web_render,
)
from bench.common import save

BENCHMARKS = {
    "flush_throughput": lambda: flush_throughput.run(
        int(os.environ.get("OTEL_DB_BENCH_SPANS", "1000000")),
        stored=int(os.environ.get("OTEL_DB_BENCH_STORED_SPANS", "10000000")),
    ),
    "flush_narrow": lambda: flush_throughput.run_narrow(int(os.environ.get("OTEL_DB_BENCH_SPANS", "1000000"))),
    "flush_before_after": flush_before_after.run,
    "seed_orm": seed_orm.run,
    "staging_space": staging_space.run,
    "staging_modes": staging_modes.run,
    "ingest_memory": ingest_memory.run,
    "embedding_throughput": embedding_throughput.run,
    "similar_recall": similar_recall.run,
    "signature_dedupe": signature_dedupe.run,
    "similar_latency": similar_latency.run,
    "exporter_overhead": exporter_overhead.run,
    "reads": reads.run,
    "serve_throughput": serve_throughput.run,
    "explain_latency": explain_latency.run,
    "search_quality": search_quality.run,
    "trace_search": trace_search.run,
    "query_api": query_api.run,
    "web_render": web_render.run,
    "storage": storage.run,
    "scale_out": scale_out.run,
    "toast_compression": toast_compression.run,
}


def main(names: list[str]) -> None:
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    for name in names or BENCHMARKS:
        save(name, BENCHMARKS[name]())
    render.main()


if __name__ == "__main__":
    main(sys.argv[1:])
