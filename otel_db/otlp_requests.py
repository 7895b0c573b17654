"""OTLP export requests as a receiver gets them, and the line otel.otlp_staging stores for each.

`otel-db serve` stores every request as ONE OTLP/JSON line, exactly what the
Collector's file exporter writes and `otel-db ingest` reads: a protobuf
request through `to_json_dict` (trace and span ids re-encoded as lowercase
hex, as OTLP/JSON requires), a JSON request parsed and written again
compactly, so that no line break inside it survives. Judging the records is
`otel.flush()`'s job; here a body is refused only when it cannot be a request
at all (not protobuf, not a JSON object) or is too large.

No I/O here, so each rule is testable on its own; the HTTP and gRPC servers
share it.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_db.lines import DEFAULT_MAX_LINE_BYTES
from otel_db.otlp_json import METRIC_KINDS, dumps, hex_ids, to_json_dict
from otel_db.typed_spans import typed_spans

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
CONTENT_TYPES = (PROTOBUF, JSON)

# google.rpc.Code values used in error bodies and gRPC statuses.
INVALID_ARGUMENT = 3
UNAVAILABLE = 14
UNAUTHENTICATED = 16


@dataclass(frozen=True, slots=True)
class Signal:
    """One of the three OTLP export services."""

    name: str  # traces, logs, metrics: as in otel.<name> and the /v1/<name> path
    request_type: type[Message]
    response_type: type[Message]
    rejected_field: str  # the partial_success counter: rejected_spans, …
    resources: str  # the request's top-level field, camelCase: resourceSpans, …
    scopes: str
    records: str  # spans, logRecords, metrics (whose data points are counted)
    grpc_service: str  # the collector service's full name

    @property
    def path(self) -> str:
        return f"/v1/{self.name}"


TRACES = Signal(
    "traces",
    trace_service_pb2.ExportTraceServiceRequest,
    trace_service_pb2.ExportTraceServiceResponse,
    "rejected_spans",
    "resourceSpans",
    "scopeSpans",
    "spans",
    trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name,
)
LOGS = Signal(
    "logs",
    logs_service_pb2.ExportLogsServiceRequest,
    logs_service_pb2.ExportLogsServiceResponse,
    "rejected_log_records",
    "resourceLogs",
    "scopeLogs",
    "logRecords",
    logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"].full_name,
)
METRICS = Signal(
    "metrics",
    metrics_service_pb2.ExportMetricsServiceRequest,
    metrics_service_pb2.ExportMetricsServiceResponse,
    "rejected_data_points",
    "resourceMetrics",
    "scopeMetrics",
    "metrics",
    metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name,
)
SIGNALS = (TRACES, LOGS, METRICS)


class MalformedRequest(ValueError):
    """The body is no export request: HTTP 400, gRPC INVALID_ARGUMENT."""


class RequestTooLarge(ValueError):
    """The body, or the line it makes, is over the limit: HTTP 413."""


@dataclass(frozen=True, slots=True)
class StagingRecord:
    """What one request becomes: its OTLP/JSON line (None for an empty request) and its record count.

    For a protobuf request of spans, `line` is instead rows of otel.traces_staging
    in COPY text format (`typed`; see otel_db.typed_spans).
    """

    line: bytes | None
    records: int
    typed: bool = False


# --------------------------------------------------------------------------- bodies


class BoundedBody:
    """Collects a request body, inflating gzip as the pieces arrive, never past `limit` bytes.

    The limit applies after decompression, and a piece is inflated only up to
    what is left of it: a small gzip bomb costs no more memory than an honest
    body of the limit's size. The compressed bytes are bounded too (deflate
    expands incompressible data by well under 1 %), so that a stream of empty
    gzip members cannot go on for ever.
    """

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.raw_limit = limit + limit // 64 + 1024
        self.raw_size = 0
        self._gzip = encoding == "gzip"
        self._inflater = _gzip_inflater()
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, piece: bytes) -> None:
        self.raw_size += len(piece)
        if self.raw_size > self.raw_limit:
            raise self._too_large()
        if not self._gzip:
            self._keep(piece)
            return
        try:
            while piece:
                # One byte more than is left: getting it means the limit is passed.
                self._keep(self._inflater.decompress(piece, self.limit - self._size + 1))
                piece = self._inflater.unused_data
                if piece:  # the next member of a multi-member gzip stream
                    self._inflater = _gzip_inflater()
        except zlib.error as exc:
            raise MalformedRequest(f"the body is not valid gzip: {exc}") from None

    @property
    def size(self) -> int:
        """The bytes kept so far (inflated)."""
        return self._size

    def finish(self) -> bytes:
        if self._gzip and self.raw_size and not self._inflater.eof:
            raise MalformedRequest("the gzip body ends before its end marker")
        return b"".join(self._parts)

    def _keep(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self.limit:
            raise self._too_large()
        if data:
            self._parts.append(data)

    def _too_large(self) -> RequestTooLarge:
        return RequestTooLarge(f"the request body is larger than the {self.limit}-byte limit (after decompression)")


def _gzip_inflater() -> Any:
    return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)


# --------------------------------------------------------------------------- requests to lines


def record_from_protobuf(signal: Signal, body: bytes) -> StagingRecord:
    """A protobuf-encoded request (an HTTP body) as its staging line."""
    try:
        message = signal.request_type.FromString(body)
    except DecodeError as exc:
        raise MalformedRequest(f"the body is not a protobuf {signal.request_type.__name__}: {exc}") from None
    return record_from_message(signal, message)


def record_from_message(signal: Signal, message: Message) -> StagingRecord:
    """A decoded request as its staging rows: typed spans, else an OTLP/JSON line."""
    if signal is TRACES and (spans := typed_spans(cast(ExportTraceServiceRequest, message))) is not None:
        rows, count = spans
        return StagingRecord(rows or None, count, typed=True)
    request = to_json_dict(message)
    if not request:
        return StagingRecord(None, 0)
    return _staging_record(request, hex_ids(request))


def record_from_json(signal: Signal, body: bytes) -> StagingRecord:
    """A JSON request as its staging line.

    Only the signal's own field is kept (camelCase, or the proto name that
    OTLP/JSON readers accept too); other members are ignored, as the
    Collector's decoder ignores unknown fields. Everything inside it is left
    for otel.flush() to judge.
    """
    try:
        request = json.loads(body, parse_constant=_not_json)
    except ValueError as exc:  # UnicodeDecodeError included
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise MalformedRequest(
            f"the body is not an OTLP/JSON export request: expected an object with {signal.resources}"
        )
    for key in (signal.resources, _snake(signal.resources)):
        if request.get(key):
            kept = {key: request[key]}
            return _staging_record(kept, sum(1 for _ in _records(signal, kept)))
    return StagingRecord(None, 0)


def _not_json(name: str) -> None:
    """Python's json reads NaN and Infinity, which JSON (and PostgreSQL) does not have."""
    raise ValueError(f"{name} is not JSON (OTLP/JSON writes it as the string {json.dumps(name)})")


def _staging_record(request: dict, records: int) -> StagingRecord:
    # Lone surrogates become invalid UTF-8 here, which the staging writer dead-letters.
    line = dumps(request).encode("utf-8", "surrogatepass")
    if len(line) > DEFAULT_MAX_LINE_BYTES:
        raise RequestTooLarge(
            f"the request is {len(line)} bytes as OTLP/JSON, over the {DEFAULT_MAX_LINE_BYTES}-byte line limit:"
            " send smaller batches"
        )
    return StagingRecord(line, records)


def _records(signal: Signal, request: dict) -> Iterator[dict]:
    """The spans, log records or metric data points of a request; what is not shaped like one is skipped."""
    if signal is METRICS:
        yield from _metric_points(request)
        return
    for scope in _children(request, signal.resources, signal.scopes):
        yield from _list(scope, signal.records)


def _metric_points(request: dict) -> Iterator[dict]:
    for scope in _children(request, METRICS.resources, METRICS.scopes):
        for metric in _list(scope, METRICS.records):
            for kind in METRIC_KINDS:
                data = _field(metric, kind)
                if isinstance(data, dict):
                    yield from _list(data, "dataPoints")


def _children(request: dict, resources: str, scopes: str) -> Iterator[dict]:
    for resource in _list(request, resources):
        yield from _list(resource, scopes)


def _list(parent: dict, key: str) -> Iterator[dict]:
    items = _field(parent, key)
    if isinstance(items, list):
        yield from (item for item in items if isinstance(item, dict))


def _field(parent: dict, key: str) -> Any:
    value = parent.get(key)
    return parent.get(_snake(key)) if value is None else value


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


# --------------------------------------------------------------------------- answers


def response_message(signal: Signal, rejected: int = 0, reason: str = "") -> Message:
    """An empty Export*ServiceResponse, or one whose partial_success counts the records refused."""
    response = signal.response_type()
    if rejected:
        setattr(response.partial_success, signal.rejected_field, rejected)
        response.partial_success.error_message = reason
    return response


def response_body(signal: Signal, content_type: str, rejected: int = 0, reason: str = "") -> bytes:
    """`response_message` as an OTLP/HTTP body of the request's content type."""
    return _encode(response_message(signal, rejected, reason), content_type)


def status_body(content_type: str, code: int, message: str) -> bytes:
    """A google.rpc.Status, the body OTLP/HTTP gives a refused request."""
    return _encode(status_pb2.Status(code=code, message=message), content_type)


def _encode(message: Message, content_type: str) -> bytes:
    if content_type == PROTOBUF:
        return message.SerializeToString()
    return json.dumps(json_format.MessageToDict(message), separators=(",", ":")).encode()
