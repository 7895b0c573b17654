"""The exporters under a database that freezes, goes away or comes back: client-side timeouts and the spool.

Real PostgreSQL and the real SDK pipeline throughout. A frozen backend is a
SIGSTOPped server process (the tests run as root, as the cluster's owner may
be another user): its kernel still ACKs, so only the client can give up. The
outage and the frozen server run on the private cluster, which the project
cluster's other tests never see stopping. A server that never answers at all
(`unanswered`) is a listening socket that nobody accepts from.
"""

import json
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from alembic import command
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_db.exporters import (
    CLOSED,
    DEFAULT_COOLDOWN,
    HALF_OPEN,
    OPEN,
    PROBE_FIRST,
    LogExporter,
    MetricExporter,
    SpanExporter,
)
from otel_db.otlp_json import spans_json
from otel_db.settings import PREFIX, Settings
from otel_db.spool import BatchTooLarge, Spool, SpooledBatch
from tests.conftest import PrivateCluster, alembic_config, database_url
from tests.helpers import flush, scalar

DOWN = "postgresql://postgres@127.0.0.1:1/otel"  # nothing listens on port 1
RESOURCE = Resource({"service.name": "spool-test"})
SLACK = 0.5  # seconds a call may take beyond its timeout on a busy test machine
BACKENDS = "select pid from pg_stat_activity where datname = current_database() and application_name = %s"
# The span ids in otel.otlp_staging, one per staged span (duplicates included).
STAGED_SPAN_IDS = """
select span ->> 'spanId'
  from otel.otlp_staging,
       jsonb_array_elements(payload::jsonb -> 'resourceSpans') as resource_spans,
       jsonb_array_elements(resource_spans -> 'scopeSpans') as scope_spans,
       jsonb_array_elements(scope_spans -> 'spans') as span
"""
# The name of the first span of each staged request, in the order the rows were written.
STAGED_BATCH_NAMES = (
    "select payload::jsonb #>> '{resourceSpans,0,scopeSpans,0,spans,0,name}' from otel.otlp_staging order by ctid"
)


@pytest.fixture(autouse=True)
def no_storage_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exporters built without `settings=` read OTEL_STORAGE_*: none of the user's (a spool directory, say) apply."""
    for name in [name for name in os.environ if name.startswith(PREFIX)]:
        monkeypatch.delenv(name)


@pytest.fixture
def unanswered() -> Iterator[str]:
    """A DSN whose server never says a word: the kernel accepts the connection, and a connect waits for its timeout."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield f"postgresql://postgres@127.0.0.1:{server.getsockname()[1]}/otel"


@pytest.fixture
def memory_spool_dir(tmp_path: Path) -> Iterator[Path]:
    """A spool directory in memory (/dev/shm) where there is one: a test that times an export within its timeout
    checks the exporter's share of it, not how long a busy disk takes to fsync the batch (up to 0.05 s there)."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(prefix="otel_db-spool-", dir=shm))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.01)


def batch(name: str, size: int = 3) -> list[ReadableSpan]:
    """`size` finished spans, all called `name`."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for i in range(size):
        with tracer.start_as_current_span(name, attributes={"i": i}):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def timed(call, *args, **kwargs):
    start = time.perf_counter()
    result = call(*args, **kwargs)
    return result, time.perf_counter() - start


def staged_span_ids(conn: psycopg.Connection) -> list[str]:
    return [span_id for (span_id,) in conn.execute(STAGED_SPAN_IDS).fetchall()]


def spooled_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.jsonl"))


def emit(tracer, count: int) -> list[str]:
    """End `count` spans; returns their span ids as OTLP/JSON writes them."""
    ids = []
    for i in range(count):
        with tracer.start_as_current_span("work", attributes={"i": i}) as span:
            ids.append(f"{span.get_span_context().span_id:016x}")
    return ids


@contextmanager
def frozen(*pids: int) -> Iterator[None]:
    """SIGSTOP the processes; they are resumed whatever happens."""
    stopped = []
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)


def backend(conn: psycopg.Connection, kind: str = "spans") -> int:
    """The pid of the server process behind the exporter's connection."""
    [pid] = [row[0] for row in conn.execute(BACKENDS, (f"otel_db exporter ({kind})",)).fetchall()]
    return pid


def wait_until_idle(exporter: SpanExporter) -> None:
    """Until the sender thread is done with what it was doing (it wakes from a shut-down socket at once)."""
    deadline = time.monotonic() + 5
    while exporter._sender._busy is not None and time.monotonic() < deadline:
        time.sleep(0.01)


def wait_until_gone(conn: psycopg.Connection, pid: int) -> None:
    """A resumed backend whose client left reads the end of its connection and exits, rolling back."""
    deadline = time.monotonic() + 10
    while scalar(conn, "select count(*) from pg_stat_activity where pid = %s", (pid,)) and time.monotonic() < deadline:
        time.sleep(0.05)


# --------------------------------------------------------------------------- a frozen backend


def test_a_frozen_backend_holds_no_call_longer_than_the_timeout(dsn, conn):
    exporter = SpanExporter(dsn, timeout=1.0)
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("frozen")
    stored = emit(tracer, 10)
    assert provider.force_flush()
    pid = backend(conn)

    with frozen(pid):
        lost = emit(tracer, 100)
        assert timed(provider.force_flush, 5_000)[1] < 1.0 + SLACK
        # No spool: dropped and counted; and the breaker is open, so the next export does not wait as long.
        assert (exporter.dropped_spans, exporter.state) == (100, OPEN)
        lost += emit(tracer, 100)
        assert timed(provider.force_flush, 5_000)[1] < SLACK
        assert exporter.dropped_spans == 200
        wait_until_idle(exporter)
        time.sleep(PROBE_FIRST)
        stored += emit(tracer, 100)  # the probe opens a new connection
        assert timed(provider.shutdown)[1] < 1.0 + SLACK
    wait_until_gone(conn, pid)

    staged = staged_span_ids(conn)
    assert sorted(staged) == sorted(stored)  # the abandoned COPY was rolled back, not committed late
    assert not set(lost) & set(staged)
    assert (exporter.dropped_spans, exporter.state) == (200, CLOSED)


def test_with_a_spool_a_frozen_backend_loses_and_duplicates_nothing(dsn, conn, tmp_path):
    exporter = SpanExporter(dsn, spool_dir=tmp_path, timeout=1.0)
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("frozen")
    emitted = emit(tracer, 10)
    assert provider.force_flush()
    pid = backend(conn)

    with frozen(pid):
        emitted += emit(tracer, 100)
        assert timed(provider.force_flush, 5_000)[1] < 1.0 + SLACK  # the batch is spooled, not waited for
        emitted += emit(tracer, 100)
        assert timed(provider.shutdown)[1] < 1.0 + SLACK
    wait_until_gone(conn, pid)

    staged = staged_span_ids(conn)
    assert (len(staged), set(staged)) == (210, set(emitted))
    assert (exporter.dropped_spans, spooled_files(tmp_path)) == (0, [])


def test_the_metric_exporter_waits_no_longer_than_the_reader_says(dsn, conn):
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("m")
    meter.create_counter("orders").add(1)
    data = reader.get_metrics_data()
    exporter = MetricExporter(dsn, timeout=10.0)
    assert exporter.export(data) == MetricExportResult.SUCCESS
    with frozen(backend(conn, "metrics")):
        result, elapsed = timed(exporter.export, data, timeout_millis=300)
        assert (result, elapsed < 0.3 + SLACK) == (MetricExportResult.FAILURE, True)
        assert timed(exporter.shutdown, timeout_millis=300)[1] < 0.3 + SLACK
    assert exporter.dropped_points == 1


@pytest.fixture(scope="module")
def private_dsn(private_cluster: PrivateCluster) -> str:
    """A migrated database `spool` on the private cluster."""
    with psycopg.connect(database_url("postgres", private_cluster.port), autocommit=True) as admin:
        admin.execute("drop database if exists spool with (force)")
        admin.execute("create database spool")
    url = database_url("spool", private_cluster.port)
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture
def private_conn(private_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(private_dsn, autocommit=True) as connection:
        connection.execute("truncate otel.otlp_staging")
        yield connection


def test_a_frozen_server_holds_neither_exports_nor_shutdown(
    private_cluster, private_dsn, private_conn, memory_spool_dir
):
    """The backend and the postmaster are frozen: a new connection hangs too, until its connect timeout."""
    exporter = SpanExporter(private_dsn, spool_dir=memory_spool_dir, timeout=0.5)
    assert exporter.export(batch("before")) == SpanExportResult.SUCCESS
    server_process = backend(private_conn)
    postmaster = int((private_cluster.data / "postmaster.pid").read_text().split()[0])

    with frozen(server_process, postmaster):
        result, elapsed = timed(exporter.export, batch("frozen 1"))
        # Kept on disk, within the timeout: the wait left a tenth of it to write the batch.
        assert (result, elapsed < 0.5, exporter.state) == (SpanExportResult.SUCCESS, True, OPEN)
        for name in ("frozen 2", "frozen 3"):
            result, elapsed = timed(exporter.export, batch(name))
            assert (result, elapsed < SLACK) == (SpanExportResult.SUCCESS, True)  # the breaker is open
        result, elapsed = timed(exporter.force_flush, 300)
        assert (result, elapsed < 0.3 + SLACK) == (False, True)
        assert timed(exporter.shutdown, 300)[1] < 0.3 + SLACK
    assert len(spooled_files(memory_spool_dir)) == 3
    wait_until_gone(private_conn, server_process)

    exporter._sender._thread.join(15)  # its connect returns once the server runs again, and it frees the slot
    replayer = SpanExporter(private_dsn, spool_dir=memory_spool_dir)
    assert replayer.spool_directory == exporter.spool_directory
    assert replayer.force_flush(10_000) is True
    replayer.shutdown()
    names = [name for (name,) in private_conn.execute(STAGED_BATCH_NAMES).fetchall()]
    assert names == ["before", "frozen 1", "frozen 2", "frozen 3"]
    assert spooled_files(memory_spool_dir) == []


# --------------------------------------------------------------------------- the spool


def test_the_spool_stays_under_its_cap_by_dropping_the_oldest_batches(tmp_path, unanswered):
    batches = [batch(f"batch {i}", size=4) for i in range(10)]
    cap = 3 * (len(spans_json(batches[0])) + 1) + 100  # room for three batches
    # The first export times out and the sender waits for its connection for 30 s: no replay takes a batch
    # out of the cap's reach during the test.
    settings = Settings(max_retries=0)
    exporter = SpanExporter(
        unanswered, settings=settings, spool_dir=tmp_path, spool_max_bytes=cap, timeout=0.2, connect_timeout=30
    )
    for spans in batches:
        assert exporter.export(spans) == SpanExportResult.SUCCESS  # kept on disk, or room made for it
        assert sum(path.stat().st_size for path in spooled_files(tmp_path)) <= cap
    files = spooled_files(tmp_path)
    assert [path.read_text().count('"name":"batch ') for path in files] == [4, 4, 4]
    assert [f'"name":"batch {i}"' in path.read_text() for i, path in zip((7, 8, 9), files, strict=True)] == [True] * 3
    assert exporter.spool_dropped_spans == exporter.dropped_spans == 7 * 4

    result = exporter.export(batch("larger than the spool", size=200))
    assert (result, exporter.dropped_spans, exporter.spool_dropped_spans) == (SpanExportResult.FAILURE, 228, 28)
    exporter.shutdown(timeout_millis=100)
    assert spooled_files(tmp_path) == files  # left for the next process


def test_when_the_database_is_back_the_spool_goes_first_in_order(dsn, conn, tmp_path):
    # Probes at most a second apart: the next one comes within a second of the database's return.
    exporter = SpanExporter(DOWN, settings=Settings(max_retries=0), spool_dir=tmp_path, cooldown=1.0)
    for i in range(3):
        assert exporter.export(batch(f"batch {i}")) == SpanExportResult.SUCCESS
    wait_for(lambda: exporter.state == OPEN)  # the sender's replay of the spool failed
    assert len(spooled_files(tmp_path)) == 3

    exporter.dsn = dsn  # the database is back
    assert exporter.export(batch("batch 3")) == SpanExportResult.SUCCESS  # behind the spool, not before it
    back = time.monotonic()
    while spooled_files(tmp_path) and time.monotonic() - back < 10:
        time.sleep(0.05)
    # Nobody asked: the sender's next probe found the database.
    assert time.monotonic() - back < 1.0 + SLACK
    assert exporter.state == CLOSED
    assert exporter.export(batch("batch 4")) == SpanExportResult.SUCCESS  # straight to the database now
    assert spooled_files(tmp_path) == []
    names = [name for (name,) in conn.execute(STAGED_BATCH_NAMES).fetchall()]
    assert names == [f"batch {i}" for i in range(5)]
    exporter.shutdown()
    assert exporter.dropped_spans == 0


def test_a_spooled_batch_gone_from_disk_is_counted_lost_and_the_breaker_probes_on(dsn, conn, tmp_path):
    settings = Settings(max_retries=0, circuit_breaker_threshold=1)
    exporter = SpanExporter(DOWN, settings=settings, spool_dir=tmp_path)
    assert exporter.export(batch("lost")) == SpanExportResult.SUCCESS  # refused: spooled, and the breaker opens
    assert exporter.state == OPEN
    [spooled] = spooled_files(tmp_path)
    spooled.unlink()

    exporter.dsn = dsn
    wait_for(lambda: exporter.dropped_spans == 3)  # the sender's probe, a second later, found no file
    assert exporter.state == OPEN  # not half-open with no probe under way
    assert exporter.export(batch("after")) == SpanExportResult.SUCCESS  # so this export is the probe, due already
    assert exporter.state == CLOSED
    exporter.shutdown()
    assert [name for (name,) in conn.execute(STAGED_BATCH_NAMES).fetchall()] == ["after"]


def test_a_spool_left_behind_is_replayed_once_in_order_by_the_next_exporter(dsn, conn, tmp_path):
    first = SpanExporter(DOWN, settings=Settings(max_retries=0), spool_dir=tmp_path)
    for i in range(5):
        assert first.export(batch(f"batch {i}")) == SpanExportResult.SUCCESS
    first.shutdown(timeout_millis=1_000)  # one failed attempt to drain, then it leaves the rest on disk
    assert len(spooled_files(tmp_path)) == 5

    second = SpanExporter(dsn, spool_dir=tmp_path)  # the next process
    assert second.spool_directory == first.spool_directory
    assert second.force_flush(10_000) is True
    second.shutdown()
    names = [name for (name,) in conn.execute(STAGED_BATCH_NAMES).fetchall()]
    assert names == [f"batch {i}" for i in range(5)]
    assert len(staged_span_ids(conn)) == len(set(staged_span_ids(conn))) == 15
    assert spooled_files(tmp_path) == []


def test_exporters_sharing_a_spool_directory_never_replay_the_same_batches(dsn, conn, tmp_path):
    settings = Settings(max_retries=0, spool_dir=str(tmp_path))  # as OTEL_STORAGE_SPOOL_DIR would
    one, two = SpanExporter(DOWN, settings=settings), SpanExporter(DOWN, settings=settings)
    logs = LogExporter(DOWN, settings=settings)
    assert len({one.spool_directory, two.spool_directory, logs.spool_directory}) == 3
    assert {path.relative_to(tmp_path).parts[0] for path in (one.spool_directory, logs.spool_directory)} == {
        "spans",
        "logs",
    }
    assert one.export(batch("from one")) == two.export(batch("from two")) == SpanExportResult.SUCCESS
    for exporter in (one, two, logs):
        exporter.shutdown(timeout_millis=1_000)

    replayer = SpanExporter(dsn, settings=settings)  # adopts the slot nobody holds any more
    assert replayer.force_flush(10_000) is True
    replayer.shutdown()
    names = [name for (name,) in conn.execute(STAGED_BATCH_NAMES).fetchall()]
    assert names == ["from one", "from two"]
    assert spooled_files(tmp_path) == []


def test_a_forked_child_exports_with_its_own_thread_connection_and_spool_slot(dsn, conn, tmp_path):
    exporter = SpanExporter(dsn, spool_dir=tmp_path)
    assert exporter.export(batch("parent before")) == SpanExportResult.SUCCESS
    child = os.fork()
    if child == 0:
        ok = False
        try:
            ok = exporter.export(batch("child")) == SpanExportResult.SUCCESS
            ok = ok and exporter.spool_directory not in (None, tmp_path / "spans" / "0")
            exporter.shutdown()
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert exporter.export(batch("parent after")) == SpanExportResult.SUCCESS  # the parent's connection lives on
    exporter.shutdown()
    names = [name for (name,) in conn.execute(STAGED_BATCH_NAMES).fetchall()]
    assert names == ["parent before", "child", "parent after"]


def test_a_child_forked_during_a_probe_and_a_flush_probes_on_its_own(dsn, conn, tmp_path, unanswered):
    settings = Settings(max_retries=0, circuit_breaker_threshold=1)
    exporter = SpanExporter(DOWN, settings=settings, spool_dir=tmp_path, connect_timeout=3)
    assert exporter.export(batch("spooled")) == SpanExportResult.SUCCESS  # refused: spooled, and the breaker opens
    exporter.dsn = unanswered
    wait_for(lambda: exporter.state == HALF_OPEN)  # the sender's probe, a second later, waits for an answer
    flushing = threading.Thread(target=exporter.force_flush, args=(10_000,))
    flushing.start()
    wait_for(lambda: exporter._sender._draining == 1)

    child = os.fork()
    if child == 0:
        ok = False
        try:
            # Neither the probe nor the flush came along: the child's first export is its own probe, due already.
            ok = (exporter.state, exporter._sender._draining) == (OPEN, 0)
            exporter.dsn = dsn
            ok = ok and exporter.export(batch("child")) == SpanExportResult.SUCCESS and exporter.state == CLOSED
            exporter.shutdown()
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0

    exporter.dsn = dsn
    flushing.join()  # the parent's probe failed at its connect timeout
    assert exporter.force_flush(10_000) is True
    exporter.shutdown()
    names = [name for (name,) in conn.execute(STAGED_BATCH_NAMES).fetchall()]
    assert names == ["child", "spooled"]


# --------------------------------------------------------------------------- the spool on its own


def spool_batch(spool: Spool, *, taken: bool = False) -> SpooledBatch:
    """Appends a batch of 100 bytes (its line); the batches it evicted must be none."""
    batch, evicted = spool.append(b"x" * 99, 1, taken=taken)
    assert evicted == []
    return batch


def spool_names(spool: Spool) -> list[str]:
    return sorted(path.name for path in spool.directory.glob("*.jsonl"))


def test_the_spool_never_evicts_a_batch_being_sent(tmp_path):
    spool = Spool.claim(tmp_path, "spans", 300)
    a, b, c = (spool_batch(spool) for _ in range(3))
    assert spool.take_oldest() == a
    d, evicted = spool.append(b"x" * 99, 1)
    assert evicted == [b]  # the oldest batch not being sent
    # An export that gave up while its COMMIT may be in flight spools its batch as being sent.
    e, evicted = spool.append(b"x" * 99, 1, taken=True)
    assert evicted == [c]
    assert spool.take_oldest() == d  # neither a nor e again
    spool.release(a)
    f, evicted = spool.append(b"x" * 99, 1)
    assert evicted == [a]
    assert spool_names(spool) == [d.name, e.name, f.name]
    spool.close()


def test_the_spool_refuses_a_batch_while_the_rest_is_being_sent(tmp_path):
    spool = Spool.claim(tmp_path, "spans", 300)
    a, b = spool_batch(spool), spool_batch(spool, taken=True)
    assert spool.take_oldest() == a
    c = spool_batch(spool, taken=True)
    with pytest.raises(BatchTooLarge):
        spool.append(b"x" * 99, 1)  # the cap is full of batches being sent: none can be evicted
    assert spool_names(spool) == [a.name, b.name, c.name]
    spool.remove(b)  # stored
    d = spool_batch(spool)
    assert (spool_names(spool), len(spool)) == ([a.name, c.name, d.name], 3)
    spool.close()


def test_claiming_a_slot_deletes_the_interrupted_writes_of_every_abandoned_slot(tmp_path):
    base = tmp_path / "spans"
    for slot in ("0", "1"):
        (base / slot).mkdir(parents=True)
        (base / slot / ".123-4-5.tmp").write_bytes(b"half a batch")
    (base / "1" / "00000000000000000001-2.jsonl").write_bytes(b"{}\n")
    spool = Spool.claim(tmp_path, "spans", 10_000)
    assert spool.directory == base / "0"
    left = [path.relative_to(base).as_posix() for path in base.rglob("*") if path.is_file() and path.name != ".lock"]
    assert left == ["0/00000000000000000001-2.jsonl"]
    spool.close()


def test_adopted_batches_keep_their_order_and_none_is_overwritten(tmp_path):
    base = tmp_path / "spans"
    # Sequence numbers per slot; two processes both wrote a batch numbered 5.
    for slot, sequences in {"0": [1, 4], "1": [2, 5, 7], "2": [3, 5]}.items():
        (base / slot).mkdir(parents=True)
        for sequence in sequences:
            line = json.dumps({"slot": slot, "sequence": sequence}) + "\n"
            (base / slot / f"{sequence:020d}-1.jsonl").write_text(line)
    spool = Spool.claim(tmp_path, "spans", 10_000)
    replayed = []
    while (taken := spool.take_oldest()) is not None:
        replayed.append(json.loads(spool.read(taken)))
        spool.remove(taken)
    assert [request["sequence"] for request in replayed] == [1, 2, 3, 4, 5, 5, 7]
    assert {request["slot"] for request in replayed if request["sequence"] == 5} == {"1", "2"}
    spool.close()


def test_a_slot_that_cannot_be_loaded_is_let_go(tmp_path):
    unremovable = tmp_path / "spans" / "0" / ".interrupted.tmp"
    unremovable.mkdir(parents=True)  # a directory: deleting it as an interrupted write fails
    with pytest.raises(OSError):
        Spool.claim(tmp_path, "spans", 10_000)
    unremovable.rmdir()
    spool = Spool.claim(tmp_path, "spans", 10_000)
    assert spool.directory == tmp_path / "spans" / "0"  # the failed claim released its lock
    spool.close()


# --------------------------------------------------------------------------- an outage


RATE = 2_000  # spans per second
OUTAGE = 60.0  # seconds
EXPORT_TIMEOUT = 2.0


class TimedSpanExporter(SpanExporter):
    """Records how long each export() takes."""

    longest_export = 0.0

    def export(self, spans):
        result, elapsed = timed(super().export, spans)
        self.longest_export = max(self.longest_export, elapsed)
        return result


class Application(threading.Thread):
    """Ends RATE spans a second until told to stop."""

    def __init__(self, tracer) -> None:
        super().__init__(name="application", daemon=True)
        self.tracer = tracer
        self.span_ids: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        start = time.perf_counter()
        while not self.stop.is_set():
            due = int((time.perf_counter() - start) * RATE)
            while len(self.span_ids) < due:
                span = self.tracer.start_span("request", attributes={"n": len(self.span_ids)})
                span.end()
                self.span_ids.append(f"{span.get_span_context().span_id:016x}")
            time.sleep(0.005)


@pytest.mark.slow
def test_a_60_second_outage_at_2000_spans_a_second_loses_no_span(private_cluster, private_dsn, private_conn, tmp_path):
    exporter = TimedSpanExporter(private_dsn, spool_dir=tmp_path, timeout=EXPORT_TIMEOUT)
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(BatchSpanProcessor(exporter))  # the SDK's defaults: a queue of 2048 spans
    application = Application(provider.get_tracer("outage"))
    application.start()
    time.sleep(5)
    try:
        private_cluster.run("stop")
        time.sleep(OUTAGE)
    finally:
        private_cluster.run("start")
    restarted = time.monotonic()
    waiting = spooled_files(tmp_path)
    assert len(waiting) > 100  # a minute of spans, in batches of at most 512
    while waiting[0].exists() and time.monotonic() - restarted < 30:
        time.sleep(0.05)
    first_back = time.monotonic() - restarted  # the oldest spooled batch is committed
    while any(path.exists() for path in waiting) and time.monotonic() - restarted < 60:
        time.sleep(0.05)
    all_back = time.monotonic() - restarted
    time.sleep(3)  # the application goes on, its exports straight to the database again
    application.stop.set()
    application.join()
    assert provider.force_flush()
    assert exporter.force_flush(30_000) is True
    provider.shutdown()

    print(
        f"\n{len(application.span_ids)} spans emitted, {len(waiting)} batches spooled;"
        f" the oldest stored {first_back:.1f} s after the restart, all of them after {all_back:.1f} s;"
        f" longest export {exporter.longest_export:.2f} s"
    )
    with psycopg.connect(private_dsn, autocommit=True) as conn:  # the fixture's connection ended with the server
        staged = staged_span_ids(conn)
        run = flush(conn)
    assert len(staged) == len(set(staged)) == len(application.span_ids)  # none lost, none twice
    assert set(staged) == set(application.span_ids)
    assert (run["spans"], run["duplicates"]) == (len(application.span_ids), 0)
    assert spooled_files(tmp_path) == []
    assert (exporter.dropped_spans, exporter.state) == (0, CLOSED)
    assert exporter.longest_export < EXPORT_TIMEOUT + SLACK
    assert first_back < DEFAULT_COOLDOWN + 3  # the breaker probes again within its cool-down
