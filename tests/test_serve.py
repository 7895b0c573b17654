"""`otel-db serve` as a subprocess, with real clients: the OpenTelemetry SDK's OTLP exporters, urllib and grpcio."""

import base64
import gzip
import json
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import Compression as GrpcCompression
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, StatusCode

from tests.conftest import database_url
from tests.helpers import Server, flush, free_port, scalar, start_serve
from tests.otlp import attribute, log_record, logs_request, random_spans, span, traces_request

ROOT = Path(__file__).resolve().parent.parent
BIG = 2**63 - 1
RESOURCE = Resource({"service.name": "checkout", "deployment.id": BIG})
PROTOBUF = "application/x-protobuf"
JSON = "application/json"


# Makes the packages of the embedding extra look uninstalled.
WITHOUT_EMBEDDING_EXTRA = """
import sys
from importlib.abc import MetaPathFinder

class Refuse(MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("numpy", "onnxruntime", "tokenizers"):
            raise ImportError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Refuse())
"""


@pytest.fixture
def serve(dsn: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts `otel-db serve` on free ports (without embedding unless asked) and waits until /healthz answers."""
    servers: list[Server] = []

    def start(*options: str, env: dict[str, str] | None = None, embed: bool = False, prelude: str = "") -> Server:
        server = start_serve(
            dsn, tmp_path / f"serve-{len(servers)}.log", *options, env=env, embed=embed, prelude=prelude
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def status_message(self) -> status_pb2.Status:
        """The google.rpc.Status of an error answer, in its content type."""
        if self.headers["Content-Type"] == PROTOBUF:
            return status_pb2.Status.FromString(self.body)
        return json_format.ParseDict(json.loads(self.body), status_pb2.Status())


def post(url: str, body: bytes, content_type: str = JSON, headers: dict[str, str] | None = None) -> Answer:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type, **(headers or {})}
    )
    return _answer(request)


def get(url: str, headers: dict[str, str] | None = None) -> Answer:
    return _answer(urllib.request.Request(url, headers=headers or {}))


def _answer(request: urllib.request.Request) -> Answer:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read())


def protobuf_request(request: dict, message_type: type) -> bytes:
    """An OTLP/JSON request (hex ids) as protobuf bytes."""
    copy = json.loads(json.dumps(request))
    for resource in copy.get("resourceSpans", []) + copy.get("resourceLogs", []):
        for scope in resource.get("scopeSpans", []) + resource.get("scopeLogs", []):
            for record in scope.get("spans", []) + scope.get("logRecords", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in record:
                        record[key] = base64.b64encode(bytes.fromhex(record[key])).decode()
    return json_format.ParseDict(copy, message_type()).SerializeToString()


def staged(conn: psycopg.Connection) -> list[str]:
    return [row[0] for row in conn.execute("select payload from otel.otlp_staging")]


def staged_span_ids(conn: psycopg.Connection) -> list[str]:
    """The span ids of the rows staged in otel.traces_staging: protobuf spans take the typed path."""
    return [row[0] for row in conn.execute("select span_id from otel.traces_staging order by span_id")]


def staged_log_bodies(conn: psycopg.Connection) -> list[str]:
    """The body of every log record staged, one entry per record."""
    return [
        row[0]
        for row in conn.execute(
            "select r->'body'->>'stringValue' from otel.otlp_staging,"
            " jsonb_array_elements(payload::jsonb->'resourceLogs'->0->'scopeLogs'->0->'logRecords') as r"
        )
    ]


def marked_logs(marker: str, records: int = 1) -> bytes:
    return json.dumps(
        logs_request(*(log_record(body={"stringValue": f"{marker}/{i}"}) for i in range(records)))
    ).encode()


# --------------------------------------------------------------------------- start


def run_serve(dsn: str, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "otel_db.cli", "--dsn", dsn, "serve", "--no-embed", "--no-query", *options],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_serve_does_not_start_on_a_database_without_the_schema(empty_database):
    done = run_serve(empty_database, "--http", f"127.0.0.1:{free_port()}", "--grpc", f"127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert done.stderr.strip().endswith("(is the otel schema installed? run `alembic upgrade head`)")


def test_serve_does_not_start_on_a_port_in_use(serve, dsn):
    running = serve("--no-flush")
    for taken in (["--http", f"127.0.0.1:{running.http_port}"], ["--grpc", running.grpc_target]):
        ports = {"--http": f"127.0.0.1:{free_port()}", "--grpc": f"127.0.0.1:{free_port()}", taken[0]: taken[1]}
        done = run_serve(dsn, *(item for pair in ports.items() for item in pair))
        assert done.returncode == 2
        assert "otel-db: error: cannot listen:" in done.stderr
        assert "Traceback" not in done.stderr


def test_without_the_embedding_extra_serve_says_so_once_and_serves(serve, conn):
    server = serve("--flush-interval", "0.1", embed=True, prelude=WITHOUT_EMBEDDING_EXTRA)
    assert post(f"{server.url}/v1/traces", json.dumps(traces_request(span())).encode()).status == 200
    deadline = time.monotonic() + 10
    while scalar(conn, "select count(*) from otel.traces") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.stop() == 0
    assert scalar(conn, "select count(*) from otel.traces") == 1
    assert server.output().count("not embedding: the embedding extra is missing (numpy)") == 1


@pytest.mark.skipif(
    not (ROOT / "models" / "onnx" / "model.onnx").exists(), reason="no model in models/onnx: run `make model`"
)
def test_with_the_model_serve_embeds_new_signatures(serve, conn):
    server = serve("--flush-interval", "0.1", embed=True)
    assert (
        post(f"{server.url}/v1/traces", json.dumps(traces_request(span(), span(name="POST /pay"))).encode()).status
        == 200
    )
    deadline = time.monotonic() + 30
    while scalar(conn, "select count(*) filter (where embedding is not null) from otel.span_signatures") < 2:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)
    assert server.stop() == 0
    assert "embedding new span signatures with" in server.output()


# --------------------------------------------------------------------------- the SDK's own exporters


def record_results(exporter: Any, results: list[str]) -> None:
    """Make the exporter append the name of each export's result (SUCCESS, FAILURE) to `results`."""
    export = exporter.export

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = export(*args, **kwargs)
        results.append(result.name)
        return result

    exporter.export = recording


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_the_sdk_exporters_land_traces_logs_and_metrics_exactly(protocol, serve, conn):
    server = serve("--no-flush")
    if protocol == "grpc":
        options = {"endpoint": server.grpc_target, "insecure": True, "compression": GrpcCompression.Gzip}
        span_exporter, log_exporter, metric_exporter = (
            GrpcSpanExporter(**options),
            GrpcLogExporter(**options),
            GrpcMetricExporter(**options),
        )
    else:
        span_exporter = HttpSpanExporter(endpoint=f"{server.url}/v1/traces", compression=HttpCompression.Gzip)
        log_exporter = HttpLogExporter(endpoint=f"{server.url}/v1/logs")
        metric_exporter = HttpMetricExporter(endpoint=f"{server.url}/v1/metrics")

    results: list[str] = []
    for exporter in (span_exporter, log_exporter, metric_exporter):
        record_results(exporter, results)

    memory = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])

    tracer = tracer_provider.get_tracer("shop.checkout", "3.1.0")
    logger = logger_provider.get_logger("shop.log")
    meter = meter_provider.get_meter("shop.metrics")
    counter = meter.create_counter("orders")
    for order in range(20):
        with tracer.start_as_current_span(
            f"POST /checkout {order}", kind=SpanKind.SERVER, attributes={"order": order, "max": BIG, "ok": True}
        ) as root:
            root.add_event("cart loaded", {"items": 3, "ratio": 0.5})
            with tracer.start_as_current_span(
                "charge", kind=SpanKind.CLIENT, links=[Link(root.get_span_context(), {"why": "retry"})]
            ) as child:
                child.set_status(StatusCode.ERROR, "card declined")
                counter.add(1, {"region": "eu"})  # in a sampled span: with an exemplar carrying its ids
                logger.emit(
                    severity_number=SeverityNumber.ERROR,
                    severity_text="ERROR",
                    body=f"card declined for order {order}",
                    attributes={"order": order},
                )
    histogram = meter.create_histogram("latency", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1.0])
    for value in (0.05, 0.5, 3.0):
        histogram.record(value)
    meter.create_gauge("temperature").set(21.5, {"room": "a"})
    tracer_provider.shutdown()
    logger_provider.shutdown()
    meter_provider.shutdown()
    assert len(results) >= 3 and set(results) == {"SUCCESS"}, results  # every export answered as stored

    assert scalar(conn, "select count(*) from otel.traces_staging") == 40  # protobuf spans: typed rows
    assert scalar(conn, "select count(*) from otel.otlp_staging") > 0  # logs and metrics: OTLP/JSON lines
    run = flush(conn)
    assert (run["spans"], run["logs"], run["metric_points"], run["dead_lettered"]) == (40, 20, 3, 0)

    rows = {
        r[0]: r[1:]
        for r in conn.execute(
            "select span_id, trace_id, parent_span_id, name, kind, status_code, status_message, attributes,"
            " resource_attributes, events, links from otel.traces"
        )
    }
    recorded = memory.get_finished_spans()
    assert len(rows) == len(recorded) == 40
    for sdk_span in recorded:
        ctx = sdk_span.get_span_context()
        row = rows[f"{ctx.span_id:016x}"]
        parent = f"{sdk_span.parent.span_id:016x}" if sdk_span.parent else None
        assert row[:6] == (
            f"{ctx.trace_id:032x}",
            parent,
            sdk_span.name,
            sdk_span.kind.name,
            sdk_span.status.status_code.name,
            sdk_span.status.description,
        )
        assert row[6] == dict(sdk_span.attributes)
        assert row[7] == {"service.name": "checkout", "deployment.id": BIG}
        assert [(e["name"], e["attributes"]) for e in row[8] or []] == [
            (e.name, dict(e.attributes)) for e in sdk_span.events
        ]
        assert [(k["trace_id"], k["span_id"], k["attributes"]) for k in row[9] or []] == [
            (f"{k.context.trace_id:032x}", f"{k.context.span_id:016x}", dict(k.attributes)) for k in sdk_span.links
        ]

    charges = {(r[0], r[1]) for r in conn.execute("select trace_id, span_id from otel.traces where name = 'charge'")}
    logs = conn.execute("select body, severity_number, trace_id, span_id, attributes from otel.logs").fetchall()
    assert sorted(log[0] for log in logs) == sorted(f"card declined for order {i}" for i in range(20))
    assert {(log[2], log[3]) for log in logs} == charges
    assert all(log[1] == 17 and log[4]["order"] == int(log[0].rsplit(" ", 1)[1]) for log in logs)

    metrics = {
        r[0]: r[1:]
        for r in conn.execute(
            "select name, type, value, count, sum, bucket_counts, explicit_bounds, labels from otel.metrics"
        )
    }
    assert metrics["orders"] == ("sum", 20.0, None, None, None, None, {"region": "eu"})
    exemplars = scalar(conn, "select exemplars from otel.metrics where name = 'orders'")
    assert exemplars and {(e["trace_id"], e["span_id"]) for e in exemplars} <= charges
    assert metrics["latency"] == ("histogram", None, 3, 3.55, [1, 1, 1], [0.1, 1.0], {})
    assert metrics["temperature"] == ("gauge", 21.5, None, None, None, None, {"room": "a"})


NODE_DIR = Path(__file__).resolve().parent / "node"


@pytest.mark.skipif(
    shutil.which("node") is None
    or not (NODE_DIR / "node_modules" / "@opentelemetry" / "exporter-trace-otlp-http").exists(),
    reason="Node.js or tests/node/node_modules missing (make test runs `npm ci` in tests/node)",
)
def test_the_node_sdk_http_exporter_lands_spans_exactly(serve, conn):
    server = serve("--no-flush")
    done = subprocess.run(
        ["node", str(NODE_DIR / "export_spans.js"), server.url, "10"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    recorded = {s["spanId"]: s for s in map(json.loads, done.stdout.splitlines())}
    assert flush(conn)["spans"] == len(recorded) == 20

    rows = conn.execute(
        "select span_id, trace_id, parent_span_id, name, attributes, events, links, service_name from otel.traces"
    ).fetchall()
    assert len(rows) == 20
    for span_id, trace_id, parent_span_id, name, attributes, events, links, service in rows:
        sdk_span = recorded[span_id]
        assert (trace_id, parent_span_id, name, service) == (
            sdk_span["traceId"],
            sdk_span["parentSpanId"],
            sdk_span["name"],
            "storefront",
        )
        assert attributes == sdk_span["attributes"]
        assert [(e["name"], e["attributes"]) for e in events or []] == [
            (e["name"], e["attributes"]) for e in sdk_span["events"]
        ]
        assert [(k["trace_id"], k["span_id"], k["attributes"]) for k in links or []] == [
            (k["traceId"], k["spanId"], k["attributes"]) for k in sdk_span["links"]
        ]


# --------------------------------------------------------------------------- OTLP/HTTP by hand


def test_a_json_body_is_staged_as_one_compact_line(serve, conn):
    server = serve("--no-flush")
    request = traces_request(span(name="line\nbreak", attributes=[attribute("note", {"stringValue": "é ☃ \\N"})]))
    answer = post(f"{server.url}/v1/traces", json.dumps(request, indent=2).encode(), "application/json; charset=utf-8")
    assert (answer.status, answer.headers["Content-Type"], answer.body) == (200, JSON, b"{}")
    assert staged(conn) == [json.dumps(request, separators=(",", ":"), ensure_ascii=False)]
    assert flush(conn)["spans"] == 1
    assert scalar(conn, "select name from otel.traces") == "line\nbreak"


def test_a_protobuf_body_is_staged_with_hex_ids(serve, conn):
    server = serve("--no-flush")
    request = logs_request(log_record(traceId="5b8efff798038103d269b633813fc60c", spanId="eee19b7ec3c1b174"))
    answer = post(
        f"{server.url}/v1/logs", protobuf_request(request, logs_service_pb2.ExportLogsServiceRequest), PROTOBUF
    )
    assert (answer.status, answer.headers["Content-Type"], answer.body) == (200, PROTOBUF, b"")
    [line] = staged(conn)
    assert json.loads(line) == request


def test_a_gzip_body_is_inflated(serve, conn):
    server = serve("--no-flush")
    request = traces_request(span(spanId="eee19b7ec3c1b174"), span(spanId="eee19b7ec3c1b175"))
    body = gzip.compress(protobuf_request(request, trace_service_pb2.ExportTraceServiceRequest))
    answer = post(f"{server.url}/v1/traces", body, PROTOBUF, {"Content-Encoding": "gzip"})
    assert answer.status == 200
    assert staged_span_ids(conn) == ["eee19b7ec3c1b174", "eee19b7ec3c1b175"]


def test_a_body_over_max_body_after_decompression_gets_413(serve, conn):
    server = serve("--no-flush", "--max-body", "64KiB")
    padding = {"stringValue": " " * 100_000}
    bomb = gzip.compress(json.dumps(traces_request(span(attributes=[attribute("pad", padding)]))).encode())
    assert len(bomb) < 2000
    answer = post(f"{server.url}/v1/traces", bomb, JSON, {"Content-Encoding": "gzip"})
    assert answer.status == 413
    assert "65536-byte limit" in answer.status_message().message
    plain = json.dumps(traces_request(span(attributes=[attribute("pad", padding)]))).encode()
    assert post(f"{server.url}/v1/traces", plain).status == 413
    assert post(f"{server.url}/v1/traces", json.dumps(traces_request(span())).encode()).status == 200
    assert len(staged(conn)) == 1


def test_garbage_protobuf_and_invalid_json_get_400_with_a_status(serve, conn):
    server = serve("--no-flush")
    garbage = post(f"{server.url}/v1/traces", b"\xff\xff\xff garbage", PROTOBUF)
    assert (garbage.status, garbage.headers["Content-Type"]) == (400, PROTOBUF)
    assert garbage.status_message().code == 3  # INVALID_ARGUMENT
    assert "ExportTraceServiceRequest" in garbage.status_message().message
    invalid = post(f"{server.url}/v1/logs", b'{"resourceLogs": [')
    assert (invalid.status, invalid.headers["Content-Type"]) == (400, JSON)
    assert invalid.status_message().message.startswith("the body is not valid JSON")
    not_an_object = post(f"{server.url}/v1/logs", b"[1, 2]")
    assert not_an_object.status == 400
    broken_gzip = post(f"{server.url}/v1/logs", b"\x1f\x8b not gzip", JSON, {"Content-Encoding": "gzip"})
    assert broken_gzip.status == 400
    assert staged(conn) == []


def test_an_empty_request_is_answered_200_and_stores_nothing(serve, conn):
    server = serve("--no-flush")
    empty = post(f"{server.url}/v1/metrics", b"", PROTOBUF)
    assert (empty.status, empty.headers["Content-Type"], empty.body) == (200, PROTOBUF, b"")
    assert post(f"{server.url}/v1/logs", b"{}").body == b"{}"
    assert post(f"{server.url}/v1/traces", b'{"resourceSpans": []}').status == 200
    assert staged(conn) == []


def test_wrong_path_method_content_type_and_encoding(serve):
    server = serve("--no-flush")
    assert post(f"{server.url}/v1/spans", b"{}").status == 404
    assert get(f"{server.url}/v1/traces").status == 405
    unsupported = post(f"{server.url}/v1/traces", b"x", "text/plain")
    assert unsupported.status == 415
    assert "application/x-protobuf or application/json" in unsupported.status_message().message
    assert post(f"{server.url}/v1/traces", b"{}", JSON, {"Content-Encoding": "br"}).status == 415


def test_a_record_postgresql_cannot_store_is_dead_lettered_as_a_partial_success(serve, conn):
    server = serve("--no-flush")
    lone_surrogate = b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"\\ud800"}}]}]}]}'
    answer = post(f"{server.url}/v1/logs", lone_surrogate)
    assert answer.status == 200
    partial = json.loads(answer.body)["partialSuccess"]
    assert partial["rejectedLogRecords"] == "1"
    assert "invalid UTF-8" in partial["errorMessage"]
    assert staged(conn) == []
    assert scalar(conn, "select count(*) from otel.telemetry_dlq") == 1


def test_a_grpc_request_over_max_body_is_refused(serve, conn):
    server = serve("--no-flush", "--max-body", "1KiB")
    big = traces_request(*(span() for _ in range(20)))
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(
        protobuf_request(big, trace_service_pb2.ExportTraceServiceRequest)
    )
    assert request.ByteSize() > 1024
    with grpc.insecure_channel(server.grpc_target) as channel, pytest.raises(grpc.RpcError) as refused:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert staged(conn) == []


def test_a_failed_commit_answers_503_and_the_writer_reconnects(serve, conn):
    server = serve("--no-flush")
    url = f"{server.url}/v1/logs"
    assert post(url, marked_logs("before")).status == 200
    conn.execute(
        "select pg_terminate_backend(pid) from pg_stat_activity"
        " where application_name = 'otel-db serve (staging)' and datname = current_database()"
    )
    refusals: list[Answer] = []
    send_with_retries(url, marked_logs("after"), refusals)
    assert refusals, "a request on a killed connection is refused"
    assert {(a.headers["Retry-After"], a.status_message().code) for a in refusals} == {("2", 14)}
    assert sorted(staged_log_bodies(conn)) == ["after/0", "before/0"]


# --------------------------------------------------------------------------- token, health, metrics


def test_a_token_is_required_when_set(serve, conn):
    server = serve("--no-flush", env={"OTEL_STORAGE_SERVE_TOKEN": "s3cret"})
    body = json.dumps(traces_request(span())).encode()
    refused = post(f"{server.url}/v1/traces", body)
    assert (refused.status, refused.headers["WWW-Authenticate"]) == (401, "Bearer")
    assert refused.status_message().code == 16  # UNAUTHENTICATED
    assert post(f"{server.url}/v1/traces", body, headers={"Authorization": "Bearer wrong"}).status == 401
    assert post(f"{server.url}/v1/traces", body, headers={"Authorization": "Bearer s3cret"}).status == 200
    assert get(f"{server.url}/healthz").status == 200
    assert get(f"{server.url}/metrics").status == 401
    assert get(f"{server.url}/metrics", {"Authorization": "Bearer s3cret"}).status == 200

    grpc_request = trace_service_pb2.ExportTraceServiceRequest.FromString(
        protobuf_request(traces_request(span()), trace_service_pb2.ExportTraceServiceRequest)
    )
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused_rpc:
            stub.Export(grpc_request, timeout=10)
        assert refused_rpc.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub.Export(grpc_request, metadata=[("authorization", "Bearer s3cret")], timeout=10)
    assert (len(staged(conn)), len(staged_span_ids(conn))) == (1, 1)


def test_healthz_and_metrics_report_what_happened(serve, conn):
    server = serve("--flush-interval", "0.2")
    for _ in range(3):
        assert post(f"{server.url}/v1/logs", marked_logs("m", records=2)).status == 200
    assert post(f"{server.url}/v1/logs", b"nope").status == 400
    deadline = time.monotonic() + 10
    while scalar(conn, "select count(*) from otel.logs") < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.2)  # the watcher reads the flush runs once a second

    health = get(f"{server.url}/healthz")
    report = json.loads(health.body)
    assert health.status == 200
    assert report["status"] == "ok" and report["database"] == "reachable"
    assert report["staging_backlog_bytes"] >= 0 and report["flush_lag_seconds"] < 5

    metrics = get(f"{server.url}/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain; version=")
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.body.decode().splitlines()
        if line and not line.startswith("#")
    }
    assert samples['otel_db_serve_requests_total{protocol="http",signal="logs",status="200"}'] == 3
    assert samples['otel_db_serve_requests_total{protocol="http",signal="logs",status="400"}'] == 1
    assert samples['otel_db_serve_records_total{signal="logs"}'] == 6
    assert samples['otel_db_serve_received_bytes_total{protocol="http",signal="logs"}'] > 0
    assert 0 <= samples["otel_db_serve_flush_lag_seconds"] < 5
    assert "otel_db_serve_staging_backlog_bytes" in samples
    assert samples["otel_db_serve_embedding_pending_signatures"] == 0
    assert samples["otel_db_serve_inflight_bytes"] == 0


# --------------------------------------------------------------------------- load


def send_with_retries(url: str, body: bytes, refusals: list[Answer]) -> None:
    """Post until stored; 503s (kept in `refusals`) are retried, after a pause shorter than Retry-After."""
    for _ in range(500):
        answer = post(url, body)
        if answer.status == 200:
            return
        assert answer.status == 503, answer
        refusals.append(answer)
        time.sleep(0.01)
    raise AssertionError("never stored")


def test_over_max_inflight_clients_get_503_with_retry_after_and_retries_lose_nothing(serve, conn):
    server = serve("--no-flush", "--max-inflight", "1KiB")
    refusals: list[Answer] = []
    markers = [f"c{client}r{request}" for client in range(8) for request in range(15)]

    def client(mine: list[str]) -> None:
        for marker in mine:
            send_with_retries(f"{server.url}/v1/logs", marked_logs(marker), refusals)

    threads = [threading.Thread(target=client, args=(markers[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert refusals, "a 1 KiB in-flight limit refuses some of 8 concurrent clients"
    assert {a.headers["Retry-After"] for a in refusals} == {"1"}
    assert {a.status_message().code for a in refusals} == {14}  # UNAVAILABLE
    assert sorted(staged_log_bodies(conn)) == sorted(f"{m}/0" for m in markers)


@dataclass
class Load:
    """Clients that send distinct log requests until the server stops answering."""

    url: str
    acknowledged: list[str] = field(default_factory=list)
    running: bool = True

    def client(self, name: str) -> None:
        for n in range(100_000):
            marker = f"{name}-{n}"
            try:
                answer = post(f"{self.url}/v1/logs", marked_logs(marker))
            except OSError:  # refused or cut off: the server is gone
                return
            if answer.status == 200:
                self.acknowledged.append(marker)
            if not self.running:
                return


def test_grpc_requests_over_max_inflight_wait_for_room_and_all_land(serve, conn):
    """A gRPC request arrives whole: it waits for room in flight instead of being refused and sent again."""
    server = serve("--no-flush", "--max-inflight", "1MiB")
    rng = random.Random(5)
    requests = [
        trace_service_pb2.ExportTraceServiceRequest.FromString(
            protobuf_request(traces_request(*random_spans(rng, 4000)), trace_service_pb2.ExportTraceServiceRequest)
        )
        for _ in range(8)
    ]
    assert all(request.ByteSize() > 300_000 for request in requests)  # three at once fill 1 MiB
    errors: list[grpc.RpcError] = []

    def send(request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with grpc.insecure_channel(server.grpc_target) as channel:
            try:
                trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=60)
            except grpc.RpcError as exc:  # no retry here: a refusal is a failure
                errors.append(exc)

    threads = [threading.Thread(target=send, args=(request,)) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [error.code() for error in errors] == []
    assert scalar(conn, "select count(*) from otel.traces_staging") == 8 * 4000


def test_sigterm_under_load_keeps_every_acknowledged_request(serve, conn):
    server = serve("--no-flush")
    load = Load(server.url)
    threads = [threading.Thread(target=load.client, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    while len(load.acknowledged) < 50:
        time.sleep(0.01)
    assert server.stop() == 0
    load.running = False
    for thread in threads:
        thread.join()

    stored = set(staged_log_bodies(conn))
    assert {f"{m}/0" for m in load.acknowledged} <= stored
    assert len(stored) == len(staged_log_bodies(conn))
    output = server.output()
    assert "listening: OTLP/HTTP on http://127.0.0.1:" in output
    assert "stopping: no new requests" in output and "stopped:" in output


def test_sigkill_while_flushing_loses_no_acknowledged_span(serve, conn):
    """Acknowledged means stored: kill -9 in the middle of receiving and flushing, then look for every span."""
    server = serve("--flush-interval", "0.5")
    acknowledged: list[str] = []
    sending = threading.Event()
    sending.set()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while sending.is_set():
            request = traces_request(*random_spans(rng, 50))
            try:
                answer = post(
                    f"{server.url}/v1/traces",
                    protobuf_request(request, trace_service_pb2.ExportTraceServiceRequest),
                    PROTOBUF,
                )
            except OSError:  # the server is gone
                return
            if answer.status == 200:
                acknowledged.extend(s["spanId"] for s in request["resourceSpans"][0]["scopeSpans"][0]["spans"])

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while (len(acknowledged) < 5000 or not scalar(conn, "select count(*) from otel.flush_runs")) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    server.process.kill()
    server.process.wait()
    sending.clear()
    for thread in threads:
        thread.join()

    stored = {
        row[0]
        for row in conn.execute(
            "select span_id from otel.traces union all select span_id from otel.traces_staging"
            " union all select span_id from otel.claimed_traces"
        )
    }
    assert scalar(conn, "select count(*) from otel.flush_runs") > 0  # killed while flushing went on
    assert len(acknowledged) >= 5000
    assert set(acknowledged) <= stored


def test_the_stop_flushes_what_it_committed(serve, conn):
    server = serve("--flush-interval", "3600")
    request = traces_request(span(), span())
    body = protobuf_request(request, trace_service_pb2.ExportTraceServiceRequest)
    assert post(f"{server.url}/v1/traces", body, PROTOBUF).status == 200
    assert post(f"{server.url}/v1/logs", marked_logs("last", records=3)).status == 200
    assert scalar(conn, "select count(*) from otel.traces") == 0
    assert server.stop() == 0
    assert scalar(conn, "select (select count(*) from otel.traces) + (select count(*) from otel.logs)") == 5
    assert scalar(conn, "select count(*) from otel.traces_staging") == 0


def test_a_stalled_upload_does_not_hold_up_the_stop(serve, conn):
    server = serve("--no-flush")
    with socket.create_connection(("127.0.0.1", server.http_port)) as stalled:
        stalled.sendall(b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        stalled.sendall(b'Content-Length: 1000\r\n\r\n{"resourceLogs": [')
        time.sleep(0.2)
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 10
        stalled.settimeout(5)
        assert not stalled.recv(1000).startswith(b"HTTP/1.1 200")
    assert staged(conn) == []


def test_two_servers_on_one_database_flush_without_loss_or_duplicates(serve, conn):
    servers = [serve("--flush-interval", "0.1"), serve("--flush-interval", "0.1")]
    markers = [f"s{s}c{c}r{r}" for s in range(2) for c in range(3) for r in range(20)]
    refusals: list[Answer] = []

    def client(url: str, mine: list[str]) -> None:
        for marker in mine:
            send_with_retries(f"{url}/v1/logs", marked_logs(marker, records=5), refusals)
            time.sleep(0.02)  # sending lasts several flush intervals, however fast the machine

    threads = [
        threading.Thread(target=client, args=(servers[s].url, markers[(s * 3 + c) * 20 : (s * 3 + c + 1) * 20]))
        for s in range(2)
        for c in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [server.stop() for server in servers] == [0, 0]
    flush(conn)

    bodies = [row[0] for row in conn.execute("select body from otel.logs")]
    assert sorted(bodies) == sorted(f"{m}/{i}" for m in markers for i in range(5))
    assert scalar(conn, "select count(*) from otel.otlp_staging") == 0
    assert scalar(conn, "select count(*) from otel.telemetry_dlq") == 0
    assert scalar(conn, "select count(*) from otel.flush_runs where otlp_requests > 0") >= 2


def test_serve_takes_only_its_own_database_s_flush_for_a_running_one(conn, postgresql_noproc_fixture):
    # A database made from the same template has the same relation OIDs, otel.flush_lock's too.
    from otel_db.serve import _FLUSH_RUNNING_SQL

    with psycopg.connect(conn.info.dsn) as reader:
        reader.execute("lock table otel.flush_lock in access share mode")  # as pg_dump reads it
        assert scalar(conn, _FLUSH_RUNNING_SQL) is False
    clone = f"{conn.info.dbname}_clone"
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        admin.execute(f"drop database if exists {clone} with (force)")  # left by an interrupted run
        admin.execute(f"create database {clone} template {postgresql_noproc_fixture.template_dbname}")
    try:
        with psycopg.connect(database_url(clone)) as other:
            other.execute("select otel.take_flush_lock()")  # as a flush does
            assert scalar(other, "select 'otel.flush_lock'::regclass::oid") == scalar(
                conn, "select 'otel.flush_lock'::regclass::oid"
            )
            assert scalar(other, _FLUSH_RUNNING_SQL) is True
            assert scalar(conn, _FLUSH_RUNNING_SQL) is False
    finally:
        with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
            admin.execute(f"drop database if exists {clone} with (force)")
