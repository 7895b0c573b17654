"""`otel-db ingest` of a 1 GB OTLP/JSON file: peak resident memory of the process."""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
from pathlib import Path

from bench.common import ROOT, drop_database, fresh_database, timed

SAMPLE = ROOT / "examples" / "sample.jsonl"


def make_file(path: Path, size: int) -> int:
    lines = SAMPLE.read_bytes()
    written = 0
    with path.open("wb") as out:
        while written < size:
            out.write(lines)
            written += len(lines)
    return written


def run(size: int = 1_000_000_000) -> dict:
    url = fresh_database("otel_bench")
    try:
        with tempfile.TemporaryDirectory(dir=os.environ.get("OTEL_DB_BENCH_TMP")) as folder:
            path = Path(folder) / "big.jsonl"
            written = make_file(path, size)
            with timed() as t:
                subprocess.run(
                    [str(ROOT / ".venv" / "bin" / "otel-db"), "--dsn", url, "ingest", "--no-flush", str(path)],
                    check=True,
                    capture_output=True,
                )
            peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    finally:
        drop_database("otel_bench")
    return {
        "file_bytes": written,
        "seconds": round(t.seconds, 1),
        "mb_per_s": round(written / t.seconds / 1e6, 1),
        "peak_rss_mb": round(peak_kib / 1024, 1),
        "goals": {"peak_rss_mb": "< 300"},
    }
