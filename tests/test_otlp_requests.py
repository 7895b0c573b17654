"""What `otel-db serve` makes of a request body, without a server: bounded inflation, JSON and protobuf to one line."""

import base64
import gzip
import json

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from otel_db.otlp_requests import (
    LOGS,
    METRICS,
    TRACES,
    BoundedBody,
    MalformedRequest,
    RequestTooLarge,
    record_from_json,
    record_from_message,
)
from tests.otlp import gauge, metrics_request, number_point, span, traces_request


def read(body: BoundedBody, data: bytes, piece: int) -> bytes:
    for start in range(0, len(data), piece):
        body.feed(data[start : start + piece])
    return body.finish()


def test_a_gzip_bomb_is_stopped_at_the_limit_not_inflated():
    bomb = gzip.compress(b"\0" * (256 * 2**20), compresslevel=1)
    body = BoundedBody("gzip", 2**20)
    with pytest.raises(RequestTooLarge, match="1048576-byte limit"):
        read(body, bomb, 64 * 1024)
    assert body.raw_size < len(bomb)  # it stopped reading as soon as the limit was passed


@pytest.mark.parametrize("piece", [1, 7, 4096])
def test_gzip_members_are_inflated_whole_in_any_pieces(piece):
    data = gzip.compress(b"first member, ") + gzip.compress(b"second member")
    assert read(BoundedBody("gzip", 1000), data, piece) == b"first member, second member"


def test_a_body_exactly_at_the_limit_is_taken():
    assert read(BoundedBody("gzip", 5), gzip.compress(b"12345"), 3) == b"12345"
    assert read(BoundedBody("identity", 5), b"12345", 2) == b"12345"
    with pytest.raises(RequestTooLarge):
        read(BoundedBody("identity", 5), b"123456", 2)


def test_truncated_or_invalid_gzip_is_malformed():
    with pytest.raises(MalformedRequest, match="ends before its end marker"):
        read(BoundedBody("gzip", 1000), gzip.compress(b"some data")[:-4], 100)
    with pytest.raises(MalformedRequest, match="not valid gzip"):
        read(BoundedBody("gzip", 1000), b"plain text", 100)


def test_compressed_bytes_are_bounded_too():
    empty_members = gzip.compress(b"") * 1000  # inflate to nothing, for ever
    with pytest.raises(RequestTooLarge):
        read(BoundedBody("gzip", 1000), empty_members, 100)


def test_json_with_proto_field_names_is_counted_and_kept():
    request = {"resource_spans": [{"scope_spans": [{"spans": [span(), span()]}]}]}
    record = record_from_json(TRACES, json.dumps(request).encode())
    assert record.records == 2
    assert json.loads(record.line) == request


def test_json_with_nan_is_malformed():
    with pytest.raises(MalformedRequest, match=r'NaN is not JSON.*"NaN"'):
        record_from_json(METRICS, b'{"resourceMetrics": [{"x": NaN}]}')


def test_json_keeps_only_the_signals_field():
    request = traces_request(span())
    record = record_from_json(TRACES, json.dumps({**request, "resourceLogs": [{}], "note": 1}).encode())
    assert json.loads(record.line) == request
    assert record_from_json(LOGS, json.dumps(request).encode()).line is None


def first_exemplar(request: dict) -> dict:
    return request["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["gauge"]["dataPoints"][0]["exemplars"][0]


def test_metric_points_are_counted_and_exemplar_ids_become_hex():
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    point = number_point(1.5) | {"exemplars": [{"asDouble": 1.5}]}
    request = metrics_request(gauge("a", point, number_point(2)), gauge("b", number_point(3)))
    first_exemplar(request)["traceId"] = base64.b64encode(bytes.fromhex(trace_id)).decode()  # protobuf JSON: base64
    first_exemplar(request)["spanId"] = base64.b64encode(bytes.fromhex(span_id)).decode()
    message = json_format.ParseDict(request, metrics_service_pb2.ExportMetricsServiceRequest())

    record = record_from_message(METRICS, message)
    assert record.records == 3
    stored = first_exemplar(json.loads(record.line))
    assert (stored["traceId"], stored["spanId"]) == (trace_id, span_id)
