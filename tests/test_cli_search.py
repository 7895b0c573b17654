"""`otel-db embed`, `similar` and `demo` as a shell user runs them."""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from otel_db.cli import _render
from tests.helpers import flush, scalar, stage_otlp
from tests.otlp import span, traces_request
from tests.test_ingest import OTEL_DB, otel_db

MODEL = Path(__file__).resolve().parent.parent / "models" / "onnx" / "model.onnx"

pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="no model in models/onnx: run `make model`")


def test_demo_runs_the_shop_through_the_exporters_and_queries_it(dsn, conn):
    done = otel_db("demo", "--requests", "120", dsn=dsn)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    for heading in ["similar traces:", "span tree of trace", "its logs", "log search:", "p90 of"]:
        assert heading in out
    assert "charge card" in out and "declined" in out
    assert scalar(conn, "select count(distinct service_name) from otel.traces") == 4
    assert scalar(conn, "select count(*) from otel.logs where trace_id is not null") > 0
    assert scalar(conn, "select count(distinct type) from otel.metrics") == 2
    assert scalar(conn, "select count(*) from otel.telemetry_dlq") == 0
    assert scalar(conn, "select pending from otel.embedding_status") == 0


def test_embed_then_similar_prints_a_table(dsn):
    otel_db("demo", "--requests", "60", dsn=dsn)
    assert "0 signatures embedded" in otel_db("embed", dsn=dsn).stdout.decode()  # the demo embedded them
    done = otel_db("similar", "card declined", "-k", "3", dsn=dsn)  # the free-text default floor
    lines = done.stdout.decode().splitlines()
    assert lines[0].split() == ["trace", "service", "span", "status", "duration", "similarity"]
    assert 1 <= len(lines) - 2 <= 3
    floor = otel_db("similar", "card declined", "--min-similarity", "0.99", dsn=dsn).stdout.decode()
    assert floor.startswith("no trace scores 0.99 or more; the closest is trace ")
    closest = float(floor.split(" at ")[1].split(":")[0])
    assert f"try --min-similarity {int(closest * 20) / 20:.2f}, or other words" in floor


def test_similar_says_what_is_missing_when_nothing_is_embedded(dsn):
    assert otel_db("similar", "card declined", dsn=dsn).stdout.decode() == (
        "no span is embedded yet: store some traces, then run `otel-db embed`\n"
    )
    unknown = "ab" * 16
    assert otel_db("similar", unknown, dsn=dsn).stdout.decode() == (
        f"nothing to compare with: trace {unknown} is not stored, or its spans are not embedded yet (`otel-db embed`)\n"
    )


def test_similar_with_bad_arguments_exits_without_traceback(dsn):
    done = otel_db("similar", "x", "-k", "5000", dsn=dsn)
    assert done.returncode == 1
    assert done.stderr.decode().startswith("otel-db: error: ")
    assert "k must be between 1 and 1000, got 5000" in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


def test_tables_keep_values_as_they_are_and_right_align_numbers():
    table = _render(["name", "spans", "version"], [("checkout", 1234567, "1.10"), ("db", 5, None)]).splitlines()
    assert table[0].split() == ["name", "spans", "version"]
    assert table[2].split() == ["checkout", "1,234,567", "1.10"]  # text that looks like a number stays as it is
    assert table[3].split() == ["db", "5"]
    assert table[3].index("5") == table[2].index("1,234,567") + len("1,234,567") - 1


# Runs a command with Ctrl-C (SIGINT) not ignored, as from a terminal: a shell that starts the suite in the
# background makes it ignore SIGINT, its children inherit that, and Python then raises no KeyboardInterrupt.
AT_A_TERMINAL = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])",
]


def test_embed_watch_says_what_it_embeds_as_flushes_add_signatures(dsn, conn):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_STORAGE_")}
    env["OTEL_STORAGE_CONNECTION_STRING"] = dsn
    worker = subprocess.Popen(
        [*AT_A_TERMINAL, str(OTEL_DB), "embed", "--watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in worker.stdout or ()], daemon=True).start()
    try:
        first = lines.get(timeout=60)
        assert first.startswith("embed: watching for new span signatures (0 pending), embedding with ")
        stage_otlp(conn, [traces_request(span(name="charge card"), span(name="ship parcel"))])
        flush(conn)  # notifies the worker
        line = lines.get(timeout=60)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d embedded 2 signatures in \d+\.\d s; 0 pending\n", line)
        assert scalar(conn, "select embedded from otel.embedding_status") == 2
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=30) == 130
        assert "interrupted" in worker.stderr.read()
    finally:
        worker.kill()
        worker.wait()
