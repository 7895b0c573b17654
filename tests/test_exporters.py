"""The OpenTelemetry SDK exporters, with the real SDK and the real database."""

import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.metrics import Observation
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState
from psycopg.conninfo import make_conninfo

from otel_db.exporters import CLOSED, OPEN, PROBE_FIRST, LogExporter, MetricExporter, SpanExporter
from otel_db.otlp_json import dumps, spans_json, spans_request
from otel_db.settings import PREFIX, Settings
from tests.conftest import HOST, PORT
from tests.helpers import flush, scalar

DOWN = "postgresql://postgres@127.0.0.1:1/otel"  # nothing listens on port 1
BIG = 2**63 - 1
SMALL = -(2**63)
RESOURCE = Resource({"service.name": "checkout", "service.version": "1.4.2", "deployment.id": BIG})


@pytest.fixture(autouse=True)
def no_storage_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exporters built without `settings=` read OTEL_STORAGE_*: none of the user's (a spool directory, say) apply."""
    for name in [name for name in os.environ if name.startswith(PREFIX)]:
        monkeypatch.delenv(name)


def settings(dsn: str, **overrides: int) -> Settings:
    return Settings(connection_string=dsn, **overrides)


def finished_spans(count: int, resource: Resource = RESOURCE) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for i in range(count):
        with tracer.start_as_current_span(f"op {i}", attributes={"i": i}):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def ns_to_us(conn: psycopg.Connection, column: str, table: str, where: str, params: tuple) -> int:
    return scalar(conn, f"select (extract(epoch from {column}) * 1000000)::bigint from {table} where {where}", params)


# --------------------------------------------------------------------------- encoding


def test_spans_json_is_the_sdk_protobuf_encoding_byte_for_byte():
    memory = InMemorySpanExporter()
    providers = []
    for resource in (RESOURCE, Resource({"service.name": "payment"}, schema_url="https://opentelemetry.io/schemas/1")):
        provider = TracerProvider(resource=resource, span_limits=SpanLimits(max_attributes=12, max_events=1))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        providers.append(provider)
    remote = SpanContext(
        0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("shop", "t:1"), ("ot", "x")])
    )
    for provider in providers:
        tracer = provider.get_tracer("lib", "2.0", schema_url="https://x/1", attributes={"scope.attr": 1})
        other = provider.get_tracer("other")
        with tracer.start_as_current_span(
            "root",
            context=trace.set_span_in_context(NonRecordingSpan(remote)),
            kind=SpanKind.SERVER,
            attributes={
                "s": "text ü €",
                "empty": "",
                "t": True,
                "f": False,
                "big": BIG,
                "small": SMALL,
                "zero": 0,
                "x": 1.5,
                "fzero": 0.0,
                "nan": math.nan,
                "inf": math.inf,
                "ninf": -math.inf,
                "dropped": "by the limit",
            },
        ) as root:
            root.set_attribute("tuple", ("a", "b"))
            root.set_attribute("ints", (1, BIG))
            root.set_attribute("out_of_range", 2**64)
            root.add_event("first", {"k": "v", "n": 3}, timestamp=1_764_000_000_000_000_001)
            root.add_event("second")
            with other.start_as_current_span(
                "", kind=SpanKind.CONSUMER, links=[Link(remote, {"l": 1}), Link(root.get_span_context())]
            ) as child:
                child.set_status(StatusCode.ERROR, "it broke")
            with tracer.start_as_current_span("ok", kind=SpanKind.PRODUCER) as ok:
                ok.set_status(StatusCode.OK)
            with tracer.start_as_current_span("client", kind=SpanKind.CLIENT) as client:
                client.set_status(StatusCode.ERROR)
            # Strings that need escaping, and the values the SDK lets through beyond the plain types.
            with tracer.start_as_current_span(
                'quote " backslash \\ tab \t line \u2028 emoji \U0001f600',
                attributes={
                    "control": "\x01\x1f\x7f",
                    "bytes": b"\x00\xff",
                    "enum": SpanKind.CLIENT,
                    "with none": ("a", None),
                    "empty": (),
                    "floats": (0.1, -2.5e-300),
                },
            ) as odd:
                odd.add_event("only unencodable", {"too big": 2**64})
            with tracer.start_as_current_span("nothing encodable", attributes={"too big": 2**64}):
                pass
        provider.shutdown()
    spans = memory.get_finished_spans()
    assert spans_json(spans) == dumps(spans_request(spans))
    assert '"out_of_range"' not in spans_json(spans)
    assert spans_json([]) == dumps(spans_request([])) == "{}"


# --------------------------------------------------------------------------- what lands


def test_spans_land_as_the_sdk_made_them(dsn, conn):
    exporter = SpanExporter(dsn, settings=settings(dsn))
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("shop.checkout", "3.1.0")
    with tracer.start_as_current_span(
        "POST /checkout", kind=SpanKind.SERVER, attributes={"max": BIG, "min": SMALL, "ratio": 0.25, "ok": True}
    ) as root:
        root.add_event("cart loaded", {"items": 3})
        link = Link(root.get_span_context(), {"why": "backoff"})
        with (
            tracer.start_as_current_span("charge", kind=SpanKind.CLIENT, attributes={"card.last4": "4242"}) as child,
            tracer.start_as_current_span("retry", links=[link]) as leaf,
        ):
            try:
                raise TimeoutError("payment gateway timed out")
            except TimeoutError as exc:
                leaf.record_exception(exc)
                leaf.set_status(StatusCode.ERROR, "gateway timeout")
    provider.shutdown()
    flush(conn)

    ctx = {s.name: s for s in (root, child, leaf)}
    rows = conn.execute(
        "select name, trace_id, span_id, parent_span_id, kind, status_code, status_message, service_name,"
        " scope_name, scope_version, attributes, resource_attributes, events, links from otel.traces order by name"
    ).fetchall()
    trace_id = f"{root.get_span_context().trace_id:032x}"
    root_id, child_id, leaf_id = (f"{s.get_span_context().span_id:016x}" for s in (root, child, leaf))
    resource = {"service.name": "checkout", "service.version": "1.4.2", "deployment.id": BIG}
    assert [r[:10] for r in rows] == [
        ("POST /checkout", trace_id, root_id, None, "SERVER", "UNSET", None, "checkout", "shop.checkout", "3.1.0"),
        ("charge", trace_id, child_id, root_id, "CLIENT", "UNSET", None, "checkout", "shop.checkout", "3.1.0"),
        ("retry", trace_id, leaf_id, child_id, "INTERNAL", "ERROR", "gateway timeout", "checkout", "shop.checkout",
         "3.1.0"),
    ]  # fmt: skip
    by_name = {r[0]: r for r in rows}
    assert by_name["POST /checkout"][10] == {"max": BIG, "min": SMALL, "ratio": 0.25, "ok": True}
    assert scalar(conn, "select attributes->>'max' from otel.traces where span_id = %s", (root_id,)) == str(BIG)
    assert scalar(conn, "select attributes->>'min' from otel.traces where span_id = %s", (root_id,)) == str(SMALL)
    assert by_name["charge"][10] == {"card.last4": "4242"}
    assert all(r[11] == resource for r in rows)
    [event] = by_name["POST /checkout"][12]
    assert (event["name"], event["attributes"]) == ("cart loaded", {"items": 3})
    [exception] = by_name["retry"][12]
    assert exception["name"] == "exception"
    assert exception["attributes"]["exception.type"] == "TimeoutError"
    assert exception["attributes"]["exception.message"] == "payment gateway timed out"
    assert "Traceback" in exception["attributes"]["exception.stacktrace"]
    [link] = by_name["retry"][13]
    assert (link["trace_id"], link["span_id"], link["attributes"]) == (trace_id, root_id, {"why": "backoff"})
    assert ns_to_us(conn, "start_time", "otel.traces", "span_id = %s", (leaf_id,)) == ctx["retry"].start_time // 1000
    assert ns_to_us(conn, "end_time", "otel.traces", "span_id = %s", (leaf_id,)) == ctx["retry"].end_time // 1000
    assert scalar(conn, "select count(*) from otel.telemetry_dlq") == 0
    assert scalar(conn, "select count(*) from otel.otlp_staging") == 0
    assert (exporter.dropped_spans, exporter.state) == (0, CLOSED)


def test_logs_land_with_their_trace_correlation(dsn, conn):
    exporter = LogExporter(dsn, settings=settings(dsn))
    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    logger = logger_provider.get_logger("shop.checkout.log", "3.1.0")
    tracer_provider = TracerProvider(resource=RESOURCE)
    with tracer_provider.get_tracer("t").start_as_current_span("handle") as span:
        logger.emit(
            severity_number=SeverityNumber.ERROR,
            severity_text="ERROR",
            body="card 4242 declined",
            attributes={"order.id": BIG, "retry": False},
            event_name="payment.declined",
        )
    logger.emit(severity_number=SeverityNumber.INFO, severity_text="INFO", body={"structured": [1, 2]})
    logger_provider.shutdown()
    flush(conn)

    rows = conn.execute(
        "select body, severity_number, severity_text, trace_id, span_id, service_name, scope_name, scope_version,"
        " attributes, resource_attributes, event_name from otel.logs order by severity_number desc"
    ).fetchall()
    resource = {"service.name": "checkout", "service.version": "1.4.2", "deployment.id": BIG}
    ctx = span.get_span_context()
    assert rows[0] == (
        "card 4242 declined",
        17,
        "ERROR",
        f"{ctx.trace_id:032x}",
        f"{ctx.span_id:016x}",
        "checkout",
        "shop.checkout.log",
        "3.1.0",
        {"order.id": BIG, "retry": False},
        resource,
        "payment.declined",
    )
    assert rows[1][:5] == ('{"structured": [1, 2]}', 9, "INFO", None, None)
    assert scalar(conn, "select count(*) from otel.telemetry_dlq") == 0
    assert (exporter.dropped_logs, exporter.state) == (0, CLOSED)


def test_every_metric_type_lands(dsn, conn):
    exporter = MetricExporter(
        dsn, settings=settings(dsn), preferred_temporality={Counter: AggregationTemporality.DELTA}
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=RESOURCE,
        metric_readers=[reader],
        views=[View(instrument_name="db.duration", aggregation=ExponentialBucketHistogramAggregation(max_size=20))],
    )
    meter = provider.get_meter("shop.metrics", "0.9")
    meter.create_counter("orders", unit="{order}").add(5, {"region": "eu"})
    meter.create_up_down_counter("queue.depth").add(-3)
    histogram = meter.create_histogram("http.duration", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1.0])
    for value in (0.05, 0.5, 0.7, 3.0):
        histogram.record(value)
    exponential = meter.create_histogram("db.duration", unit="s")
    for value in (1.0, 2.0, 4.0):
        exponential.record(value)
    meter.create_observable_gauge("temperature", callbacks=[lambda _options: [Observation(21.5, {"room": "a"})]])
    provider.shutdown()
    flush(conn)

    rows = {
        r[0]: r[1:]
        for r in conn.execute(
            "select name, type, value, count, sum, bucket_counts, explicit_bounds, temporality, is_monotonic,"
            " labels, unit, scope_name, scope_version, service_name, resource_attributes from otel.metrics"
        ).fetchall()
    }
    assert set(rows) == {"orders", "queue.depth", "http.duration", "db.duration", "temperature"}
    assert rows["orders"][:8] == ("sum", 5.0, None, None, None, None, "delta", True)
    assert rows["orders"][8:10] == ({"region": "eu"}, "{order}")
    assert rows["queue.depth"][:8] == ("sum", -3.0, None, None, None, None, "cumulative", False)
    assert rows["http.duration"][:7] == ("histogram", None, 4, 4.25, [1, 2, 1], [0.1, 1.0], "cumulative")
    assert rows["db.duration"][:4] == ("exponential_histogram", None, 3, 7.0)
    assert rows["db.duration"][6] == "cumulative"
    assert rows["temperature"][:2] == ("gauge", 21.5)
    assert rows["temperature"][8] == {"room": "a"}
    resource = {"service.name": "checkout", "service.version": "1.4.2", "deployment.id": BIG}
    assert all(r[10:] == ("shop.metrics", "0.9", "checkout", resource) for r in rows.values())
    assert scalar(conn, "select count(*) from otel.telemetry_dlq") == 0
    assert (exporter.dropped_points, exporter.state) == (0, CLOSED)


# --------------------------------------------------------------------------- reliability


def timed_export(exporter: SpanExporter, spans: list[ReadableSpan]) -> tuple[SpanExportResult, float]:
    start = time.perf_counter()
    result = exporter.export(spans)
    return result, time.perf_counter() - start


def test_database_down_opens_the_breaker_and_a_probe_closes_it(dsn, conn):
    exporter = SpanExporter(DOWN, settings=settings(dsn, max_retries=2, circuit_breaker_threshold=3), cooldown=0.5)
    spans = finished_spans(4)
    for failures in (1, 2, 3):
        result, elapsed = timed_export(exporter, spans)
        # Refused at once; two retries sleep at most 0.1 + 0.2 s.
        assert (result, elapsed < 1.5) == (SpanExportResult.FAILURE, True)
        assert exporter.consecutive_failures == failures
    assert (exporter.state, exporter.dropped_spans) == (OPEN, 12)

    exporter.dsn = dsn  # the database is back, but the breaker waits for its cool-down
    result, elapsed = timed_export(exporter, spans)
    assert (result, exporter.state, exporter.dropped_spans) == (SpanExportResult.FAILURE, OPEN, 16)
    assert elapsed < 0.01  # no connection attempt
    assert scalar(conn, "select count(*) from otel.otlp_staging") == 0

    time.sleep(0.6)
    result, _ = timed_export(exporter, spans)
    assert (result, exporter.state, exporter.dropped_spans) == (SpanExportResult.SUCCESS, CLOSED, 16)
    assert exporter.consecutive_failures == 0
    assert flush(conn)["spans"] == 4
    exporter.shutdown()


def test_failed_probe_opens_the_breaker_again(dsn):
    exporter = SpanExporter(DOWN, settings=settings(dsn, max_retries=0, circuit_breaker_threshold=1), cooldown=0.2)
    spans = finished_spans(2)
    assert exporter.export(spans) == SpanExportResult.FAILURE
    assert exporter.state == OPEN
    time.sleep(0.25)
    assert exporter.export(spans) == SpanExportResult.FAILURE  # the probe
    assert exporter.state == OPEN
    result, elapsed = timed_export(exporter, spans)
    assert (result, exporter.state, elapsed < 0.01) == (SpanExportResult.FAILURE, OPEN, True)
    assert exporter.dropped_spans == 6


def test_application_never_waits_for_a_database_that_is_down(dsn):
    exporter = SpanExporter(DOWN, settings=settings(dsn, circuit_breaker_threshold=2))
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=100))
    tracer = provider.get_tracer("app")
    start = time.perf_counter()
    for i in range(1000):
        with tracer.start_as_current_span("work", attributes={"i": i}), tracer.start_as_current_span("inner"):
            pass
    assert provider.force_flush()
    provider.shutdown()
    # Two failed exports with retries (< 0.8 s of back-off each), then fail-fast.
    assert time.perf_counter() - start < 5
    assert (exporter.state, exporter.dropped_spans) == (OPEN, 2000)


@pytest.fixture
def login_role(conn) -> Iterator[str]:
    """A new login role with no privileges at all; yields its name."""
    name = f"test_exporter_{uuid.uuid4().hex[:8]}"
    conn.execute(f"create role {name} login")
    yield name
    conn.execute(
        "select pg_terminate_backend(pid) from pg_stat_activity where usename = %s and pid <> pg_backend_pid()",
        (name,),
    )
    conn.execute(f"drop role {name}")


def test_server_side_refusal_opens_the_breaker_until_the_role_may_write(dsn, conn, login_role):
    role_dsn = f"postgresql://{login_role}@{HOST}:{PORT}/{conn.info.dbname}"
    exporter = SpanExporter(role_dsn, settings=settings(dsn, max_retries=3, circuit_breaker_threshold=2), cooldown=0.3)
    spans = finished_spans(3)
    for _ in range(2):
        result, elapsed = timed_export(exporter, spans)
        # Permission denied is not retried: no back-off sleep.
        assert (result, elapsed < 0.5) == (SpanExportResult.FAILURE, True)
    assert (exporter.state, exporter.dropped_spans) == (OPEN, 6)

    conn.execute(f"grant otel_writer to {login_role}")
    time.sleep(0.35)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert (exporter.state, exporter.dropped_spans) == (CLOSED, 6)
    assert flush(conn)["spans"] == 3
    exporter.shutdown()


def test_statement_timeout_bounds_an_export_blocked_by_a_lock(dsn, conn):
    exporter = SpanExporter(dsn, settings=settings(dsn, max_retries=1), statement_timeout=0.2)
    spans = finished_spans(2)
    with psycopg.connect(dsn) as locker:
        locker.execute("lock table otel.otlp_staging in access exclusive mode")
        result, elapsed = timed_export(exporter, spans)
        assert result == SpanExportResult.FAILURE
        assert 0.4 <= elapsed < 1.5  # two attempts of 0.2 s, at most 0.1 s of back-off
        locker.rollback()
    assert (exporter.state, exporter.consecutive_failures, exporter.dropped_spans) == (CLOSED, 1, 2)
    assert exporter.export(spans) == SpanExportResult.SUCCESS  # same connection, still usable
    assert flush(conn)["spans"] == 2
    exporter.shutdown()


def test_exporter_reconnects_after_its_connection_is_killed(dsn, conn):
    exporter = SpanExporter(dsn, settings=settings(dsn))
    assert exporter.export(finished_spans(1)) == SpanExportResult.SUCCESS
    conn.execute(
        "select pg_terminate_backend(pid) from pg_stat_activity"
        " where datname = current_database() and application_name = 'otel_db exporter (spans)'"
    )
    assert exporter.export(finished_spans(1)) == SpanExportResult.SUCCESS
    assert (exporter.state, exporter.consecutive_failures, exporter.dropped_spans) == (CLOSED, 0, 0)
    assert flush(conn)["spans"] == 2
    exporter.shutdown()


def test_exporter_connections_have_tcp_keepalives_and_a_user_timeout(dsn, conn):
    exporter_dsn = make_conninfo(dsn, keepalives_idle="7")  # the DSN's own values win
    exporter = SpanExporter(exporter_dsn, settings=settings(dsn))
    assert exporter.export(finished_spans(1)) == SpanExportResult.SUCCESS
    with socket.socket(fileno=os.dup(exporter._sender._conn.fileno())) as sock:  # the kernel's view
        options = [
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        ]
    assert options == [1, 7, 2, 3, 10_000]
    exporter.shutdown()


@pytest.mark.filterwarnings("ignore:`LoggingHandler` in `opentelemetry-sdk` is deprecated:DeprecationWarning")
def test_the_log_exporter_takes_the_warnings_of_its_own_thread_without_waiting_for_itself(dsn, conn, tmp_path):
    """A LoggingHandler feeds otel_db's warnings to the exporter synchronously, from the thread that logs them."""
    once = settings(dsn, max_retries=0, circuit_breaker_threshold=1)
    exporter = LogExporter(DOWN, settings=once, spool_dir=tmp_path, timeout=5.0)
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    # Refused: spooled, and the breaker opens.
    provider.get_logger("shop").emit(body="checkout failed", severity_number=SeverityNumber.ERROR)
    assert exporter.state == OPEN
    handler = LoggingHandler(logger_provider=provider)
    exporters_log = logging.getLogger("otel_db.exporters")
    exporters_log.addHandler(handler)
    try:
        exporter.dsn = dsn
        # The probe replays the record a second later, and the sender logs that the breaker closed: exported
        # from the sender thread, that warning is spooled and replayed next, not waited for by the sender itself.
        closed = "select count(*) from otel.otlp_staging where payload like '%circuit breaker closed%'"
        deadline = time.monotonic() + PROBE_FIRST + 2
        while not scalar(conn, closed) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        exporters_log.removeHandler(handler)
    assert scalar(conn, closed) == 1
    assert "checkout failed" in scalar(conn, "select payload from otel.otlp_staging order by ctid limit 1")
    assert (exporter.state, exporter.dropped_logs, len(list(tmp_path.rglob("*.jsonl")))) == (CLOSED, 0, 0)
    provider.shutdown()


def test_shutdown_closes_the_connection_and_later_exports_are_dropped(dsn, conn):
    exporter = SpanExporter(dsn, settings=settings(dsn))
    assert exporter.export(finished_spans(1)) == SpanExportResult.SUCCESS
    sessions = (
        "select count(*) from pg_stat_activity"
        " where datname = current_database() and application_name = 'otel_db exporter (spans)'"
    )
    assert scalar(conn, sessions) == 1
    exporter.shutdown()
    deadline = time.monotonic() + 5
    while scalar(conn, sessions) and time.monotonic() < deadline:  # the backend exits just after the client closes
        time.sleep(0.01)
    assert scalar(conn, sessions) == 0
    assert exporter.export(finished_spans(2)) == SpanExportResult.FAILURE
    assert exporter.dropped_spans == 2
    assert exporter.force_flush() is True


def test_a_batch_postgresql_cannot_store_is_dead_lettered_not_failed(dsn, conn):
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("bad", attributes={"text": "lone \udc80 surrogate"}):
        pass
    exporter = SpanExporter(dsn, settings=settings(dsn))
    assert exporter.export(memory.get_finished_spans()) == SpanExportResult.SUCCESS
    assert scalar(conn, "select count(*) from otel.otlp_staging") == 0
    [(telemetry_type, error)] = conn.execute("select telemetry_type, error_message from otel.telemetry_dlq").fetchall()
    assert (telemetry_type, "invalid UTF-8" in error) == ("otlp", True)
    exporter.shutdown()


def test_a_nul_character_in_one_span_does_not_dead_letter_the_batch(dsn, conn):
    provider = TracerProvider(resource=RESOURCE)
    exporter = SpanExporter(dsn)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("query", attributes={"db.query.text": "select '\x00'"}):
        pass
    provider.shutdown()
    run = flush(conn)
    assert (run["spans"], run["dead_lettered"]) == (1, 0)
    assert scalar(conn, "select attributes ->> 'db.query.text' from otel.traces") == "select '\ufffd'"
