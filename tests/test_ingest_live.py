"""`otel-db ingest -` from a live pipe: commits on time, never half a line.

The command runs as a real subprocess whose stdin is a pipe the test writes
to and keeps open, as `tail -F x.jsonl | otel-db ingest -` would; what it
committed is read from the test database with a second connection. The
read-ahead and the commit decisions are also tested on their own.
"""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from otel_db.ingest import CopyEnd, IngestReport, otlp_copy_steps
from otel_db.live import IDLE, Idle, ReadAhead
from tests.otlp import span, traces_request

OTEL_DB = Path(sys.executable).parent / "otel-db"
APPLICATION = "live ingest test"
# What a commit may take beyond the interval: the idle check (a tenth of it), COPY and commit.
SLACK_SECONDS = 0.5


@contextmanager
def live_ingest(dsn: str, *args: str) -> Iterator[subprocess.Popen]:
    """`otel-db ingest … -` with a pipe as stdin, left open for the test; killed if the test leaves it running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_STORAGE_")}
    env["OTEL_STORAGE_CONNECTION_STRING"] = f"{dsn}?application_name={APPLICATION.replace(' ', '%20')}"
    process = subprocess.Popen(
        [str(OTEL_DB), "ingest", *args, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def send(process: subprocess.Popen, data: bytes) -> None:
    assert process.stdin is not None
    process.stdin.write(data)
    process.stdin.flush()


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    """Close stdin (the end of the input) and wait for the command: exit code, stdout, stderr."""
    out, err = process.communicate(timeout=30)
    return process.returncode, out.decode(), err.decode()


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until condition() held, polling; fails the test after timeout."""
    start = time.monotonic()
    while not condition():
        elapsed = time.monotonic() - start
        if elapsed > timeout:
            pytest.fail(f"not true after {elapsed:.2f} s")
        time.sleep(0.02)
    return time.monotonic() - start


def staged(conn: psycopg.Connection, table: str = "otel.otlp_staging") -> int:
    return conn.execute(f"select count(*) from {table}").fetchone()[0]


def line(request: dict) -> bytes:
    return json.dumps(request).encode() + b"\n"


# ------------------------------------------------------------------ the command


def test_live_line_is_committed_within_the_commit_interval(dsn, conn):
    with live_ingest(dsn, "--no-flush") as ingest:
        send(ingest, b"{}\n")
        wait_until(lambda: staged(conn) == 1, timeout=15)  # includes the command's start-up
        send(ingest, line(traces_request(span())))
        waited = wait_until(lambda: staged(conn) == 2, timeout=10)
        assert waited < 1.0 + SLACK_SECONDS
        assert ingest.poll() is None  # still reading the open pipe
        code, out, err = finish(ingest)
    assert code == 0, err
    assert "-: 2 lines read, 2 sent, 0 dead-lettered, 0 blank" in out
    assert "flush:" not in out


def test_live_half_line_waits_for_its_newline(dsn, conn):
    request = line(traces_request(span(name="GET /half")))
    first, second = request[:40], request[40:]
    with live_ingest(dsn, "--no-flush", "--commit-interval", "0.2") as ingest:
        send(ingest, b"{}\n")
        wait_until(lambda: staged(conn) == 1, timeout=15)
        send(ingest, first)
        pause_until = time.monotonic() + 1.0  # five commit intervals
        while time.monotonic() < pause_until:
            assert staged(conn) == 1
            time.sleep(0.05)
        send(ingest, second)
        wait_until(lambda: staged(conn) == 2, timeout=0.2 + SLACK_SECONDS)
        code, out, err = finish(ingest)
    assert code == 0, err
    [(payload,)] = conn.execute("select payload::jsonb from otel.otlp_staging where payload <> '{}'").fetchall()
    assert payload == json.loads(request)
    assert "-: 2 lines read, 2 sent" in out


def test_live_short_commit_interval_commits_each_burst(dsn, conn):
    with live_ingest(dsn, "--no-flush", "--commit-interval", "0.2") as ingest:
        send(ingest, b"{}\n")
        wait_until(lambda: staged(conn) == 1, timeout=15)
        for burst in range(3):
            send(ingest, (b'{"burst":%d}\n' % burst) * 5)
            waited = wait_until(lambda burst=burst: staged(conn) == 6 + 5 * burst, timeout=5)
            assert waited < 0.2 + SLACK_SECONDS
        code, out, err = finish(ingest)
    assert code == 0, err
    assert "-: 16 lines read, 16 sent" in out
    transactions = conn.execute("select count(distinct xmin::text) from otel.otlp_staging").fetchone()[0]
    assert transactions == 4


def test_live_quiet_pipe_holds_no_transaction_open(dsn, conn):
    with live_ingest(dsn, "--no-flush", "--commit-interval", "0.2") as ingest:
        send(ingest, b"{}\n" + b'{"partial":')
        wait_until(lambda: staged(conn) == 1, timeout=15)
        time.sleep(0.5)
        backend = conn.execute(
            "select state, backend_xid, backend_xmin from pg_stat_activity"
            " where datname = current_database() and application_name = %s",
            [APPLICATION],
        ).fetchall()
        assert backend == [("idle", None, None)]
        finish(ingest)
    assert staged(conn) == 2  # the end of the input ends the last line


def test_live_pipe_is_flushed_when_it_ends(dsn, conn):
    with live_ingest(dsn) as ingest:
        send(ingest, line(traces_request(span(), span())))
        wait_until(lambda: staged(conn) == 1, timeout=15)
        assert conn.execute("select count(*) from otel.traces").fetchone()[0] == 0
        code, out, err = finish(ingest)
    assert code == 0, err
    assert "flush: 2 spans" in out
    assert conn.execute("select count(*) from otel.traces").fetchone()[0] == 2


def test_live_csv_commits_whole_records(dsn, conn):
    with live_ingest(dsn, "--signal", "traces", "--no-flush", "--commit-interval", "0.2") as ingest:
        send(ingest, b"trace_id,span_id,name\naa,01,first\n")
        wait_until(lambda: staged(conn, "otel.traces_staging") == 1, timeout=15)
        send(ingest, b'bb,02,"a name\nover two lines')
        time.sleep(1.0)
        assert staged(conn, "otel.traces_staging") == 1
        send(ingest, b'"\n')
        wait_until(lambda: staged(conn, "otel.traces_staging") == 2, timeout=0.2 + SLACK_SECONDS)
        code, out, err = finish(ingest)
    assert code == 0, err
    rows = conn.execute("select trace_id, span_id, name from otel.traces_staging order by 1").fetchall()
    assert rows == [("aa", "01", "first"), ("bb", "02", "a name\nover two lines")]
    assert "-: 3 lines read, 2 rows sent to otel.traces_staging" in out


def test_live_csv_rejected_record_exits_without_waiting_for_the_pipe(dsn, conn):
    with live_ingest(dsn, "--signal", "traces", "--no-flush", "--commit-interval", "0.2") as ingest:
        send(ingest, b"trace_id,span_id\naa,01\nbb,02,extra\n")
        wait_until(lambda: ingest.poll() is not None, timeout=15)  # stdin still open
        code, _, err = finish(ingest)
    assert code == 1
    assert err == "otel-db: error: -: COPY rejected the data at line 3: extra data after last expected column\n"
    assert staged(conn, "otel.traces_staging") == 0


def test_commit_interval_must_be_positive():
    done = subprocess.run([str(OTEL_DB), "ingest", "--commit-interval", "0", "-"], capture_output=True)
    assert done.returncode == 2
    assert "expected a positive number of seconds, got '0'" in done.stderr.decode()


# ------------------------------------------------------------------ read-ahead and commit decisions, no database


def test_read_ahead_reports_idle_while_the_input_is_quiet():
    more = threading.Event()

    def items() -> Iterator[bytes]:
        yield b"a"
        more.wait(timeout=5)
        yield b"b"

    with ReadAhead(items(), size=len, max_bytes=100, idle_seconds=0.02) as ahead:
        got = iter(ahead)
        assert next(item for item in got if item is not IDLE) == b"a"
        assert next(got) is IDLE
        assert next(got) is IDLE
        more.set()
        assert [item for item in got if item is not IDLE] == [b"b"]


def test_read_ahead_queues_at_most_max_bytes():
    produced: list[int] = []

    def items() -> Iterator[bytes]:
        for n in range(100):
            produced.append(n)
            yield b"x" * 10

    with ReadAhead(items(), size=len, max_bytes=30, idle_seconds=1) as ahead:
        wait_until(lambda: len(produced) == 4, timeout=5)
        time.sleep(0.1)
        assert len(produced) == 4  # three queued, the fourth waits for room
        assert sum(len(item) for item in ahead if item is not IDLE) == 1000


def test_read_ahead_raises_the_readers_error():
    def items() -> Iterator[bytes]:
        yield b"a"
        raise OSError("the pipe broke")

    with ReadAhead(items(), size=len, max_bytes=100, idle_seconds=1) as ahead:
        got = iter(ahead)
        assert next(got) == b"a"
        with pytest.raises(OSError, match="the pipe broke"):
            next(got)


def test_copy_steps_commit_on_idle_only_after_the_deadline_and_with_lines():
    report = IngestReport()
    steps = list(otlp_copy_steps([IDLE, b"{}", IDLE, b"[]"], report, commit_seconds=3600))
    assert steps == [b"\x01{}\x01\n\x01[]\x01\n", CopyEnd([], commit=False, done=True)]
    assert report.lines_read == 2

    def quiet_after_the_first_line() -> Iterator[bytes | Idle]:
        yield b"{}"
        time.sleep(0.1)
        yield IDLE
        yield IDLE
        yield b"[]"

    steps = list(otlp_copy_steps(quiet_after_the_first_line(), IngestReport(), commit_seconds=0.05))
    assert steps == [
        b"\x01{}\x01\n",
        CopyEnd([], commit=True, done=False),
        b"\x01[]\x01\n",
        CopyEnd([], commit=False, done=True),
    ]
