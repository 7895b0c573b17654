"""Protobuf requests of spans staged as typed rows land exactly as their OTLP/JSON lines would.

`otel-db serve` writes a protobuf request of spans straight into
otel.traces_staging (otel_db.typed_spans) instead of as one OTLP/JSON line.
Each test stores the same requests both ways, flushes, and compares every
column of otel.traces and the dead letters' reasons.
"""

import math

import psycopg
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from otel_db.otlp_json import dumps, hex_ids, to_json_dict
from otel_db.typed_spans import TYPED_SPANS_COPY_SQL, json_time, typed_spans
from tests.helpers import flush, stage_otlp

START = 1_764_000_000_123_456_789


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


EVERY_VALUE = [
    kv("s", AnyValue(string_value='tab\there, new\nline, back\\slash, quote", NUL\x00, é€😀')),
    kv("i", AnyValue(int_value=-(2**63))),
    kv("big", AnyValue(int_value=2**63 - 1)),
    kv("d", AnyValue(double_value=0.1)),
    kv("tiny", AnyValue(double_value=5e-324)),
    kv("nan", AnyValue(double_value=math.nan)),
    kv("inf", AnyValue(double_value=-math.inf)),
    kv("b", AnyValue(bool_value=False)),
    kv("bytes", AnyValue(bytes_value=b"\x00\xff binary")),
    kv("empty", AnyValue()),
    kv("a", AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(), AnyValue(string_value="x")]))),
    kv("kv", AnyValue(kvlist_value=KeyValueList(values=[kv("inner", AnyValue(bool_value=True))]))),
    kv("s", AnyValue(string_value="a repeated key keeps its last value")),
]


def span(number: int, **fields) -> Span:
    values = {
        "trace_id": bytes([1] * 15 + [number]),
        "span_id": bytes([2] * 7 + [number]),
        "name": f"span {number}",
        "kind": Span.SPAN_KIND_SERVER,
        "start_time_unix_nano": START + number,
        "end_time_unix_nano": START + number + 1_500_000,
    }
    return Span(**{**values, **fields})


def request(
    *spans: Span, resource: list[KeyValue] | None = None, scope: dict | None = None
) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])])
    message.resource_spans[0].resource.attributes.extend(
        [kv("service.name", AnyValue(string_value="checkout"))] if resource is None else resource
    )
    if scope:
        message.resource_spans[0].scope_spans[0].scope.name = scope.get("name", "")
        message.resource_spans[0].scope_spans[0].scope.version = scope.get("version", "")
    return message


def stage_typed(conn: psycopg.Connection, message: ExportTraceServiceRequest) -> None:
    typed = typed_spans(message)
    assert typed is not None
    with conn.cursor().copy(TYPED_SPANS_COPY_SQL) as copy:
        copy.write(typed[0])


def json_line(message: ExportTraceServiceRequest) -> str:
    """The OTLP/JSON line `otel-db serve` stored for a request before spans took the typed path."""
    document = to_json_dict(message)
    hex_ids(document)
    return dumps(document)


def landed(conn: psycopg.Connection) -> tuple[list[tuple], list[str], dict]:
    """Every span as stored, the dead letters' reasons, and the flush's counts; then empty the tables."""
    run = flush(conn)
    spans = conn.execute("""
        select trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time,
               duration_ms, status_code, status_message, service_name, scope_name, scope_version,
               attributes::text, resource_attributes::text, events::text, links::text
          from otel.traces order by trace_id, span_id""").fetchall()
    reasons = [
        reason.removeprefix("rejected record: ")
        for (reason,) in conn.execute("select error_message from otel.telemetry_dlq order by id")
    ]
    conn.execute("truncate otel.traces, otel.trace_summaries, otel.span_signatures, otel.telemetry_dlq")
    return spans, reasons, {key: run[key] for key in ("spans", "dead_lettered")}


def both_ways(conn: psycopg.Connection, message: ExportTraceServiceRequest) -> tuple[tuple, tuple]:
    stage_otlp(conn, [json_line(message)])
    as_json = landed(conn)
    stage_typed(conn, message)
    return as_json, landed(conn)


def test_every_kind_of_value_lands_as_through_otlp_json(conn):
    message = request(
        span(1, attributes=EVERY_VALUE, trace_state="congo=t61", flags=0x301, status=Status(code=2, message="boom")),
        span(
            2,
            parent_span_id=bytes([2] * 7 + [1]),
            kind=Span.SPAN_KIND_CLIENT,
            events=[
                Span.Event(name="exception", time_unix_nano=START + 5, attributes=EVERY_VALUE[:3]),
                Span.Event(time_unix_nano=START + 1000),  # no name, whole microsecond
                Span.Event(name="no time"),
            ],
            links=[
                Span.Link(
                    trace_id=bytes([3] * 16), span_id=bytes([4] * 8), trace_state="a=b", attributes=EVERY_VALUE[:2]
                ),
                Span.Link(),  # empty ids
            ],
        ),
        span(3, kind=Span.SPAN_KIND_UNSPECIFIED, status=Status(code=1)),
        resource=[kv("service.name", AnyValue(string_value="pay\tments")), *EVERY_VALUE[:4]],
        scope={"name": "io.example", "version": "1.2.3"},
    )
    as_json, as_typed = both_ways(conn, message)
    assert as_json[2] == {"spans": 3, "dead_lettered": 0}
    assert as_typed == as_json


@pytest.mark.parametrize(
    "case",
    [
        {"trace_id": b""},
        {"trace_id": b"\x01" * 15},
        {"span_id": b"\x00" * 8},
        {"parent_span_id": b"\x05" * 9},
        {"name": ""},
        {"start_time_unix_nano": 0},
        {"end_time_unix_nano": 0},
        {"end_time_unix_nano": START - 10_000_000},
        {"name": "x" * 5000},
    ],
    ids=lambda case: ",".join(f"{key}={str(value)[:20]}" for key, value in case.items()),
)
def test_a_span_the_flush_refuses_is_refused_either_way(conn, case):
    message = request(span(1), span(2, **case))
    as_json, as_typed = both_ways(conn, message)
    assert as_json[2] == {"spans": 1, "dead_lettered": 1}
    assert as_typed[0] == as_json[0]
    assert as_typed[2] == as_json[2]
    # The same rule refuses it; the words may differ (a missing name is "name is missing" both ways).
    assert as_typed[1][0].split(" ")[0] == as_json[1][0].split(" ")[0]


def test_a_non_string_service_name_and_no_resource(conn):
    for resource in ([kv("service.name", AnyValue(int_value=7))], []):
        as_json, as_typed = both_ways(conn, request(span(1), resource=resource))
        assert as_typed == as_json
        assert as_json[2]["spans"] == 1


def test_a_link_id_of_the_wrong_length_is_left_to_the_otlp_json_decoder():
    message = request(span(1, links=[Span.Link(trace_id=b"\x01" * 15, span_id=b"\x02" * 8)]))
    assert typed_spans(message) is None


def test_a_request_without_spans_has_no_rows():
    assert typed_spans(ExportTraceServiceRequest()) == (b"", 0)


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (1, "1970-01-01T00:00:00+00:00"),
        (1_764_000_000_123_456_789, "2025-11-24T16:00:00.123456+00:00"),
        (1_764_000_000_500_000_000, "2025-11-24T16:00:00.5+00:00"),
        (2**64 - 1, "2554-07-21T23:34:33.709551+00:00"),
    ],
)
def test_event_times_are_written_as_postgresql_writes_them(conn, nanos, text):
    assert json_time(nanos) == text
    conn.execute("set timezone = 'UTC'")
    assert conn.execute("select to_jsonb(otel.parse_time(%s)) #>> '{}'", [str(nanos)]).fetchone()[0] == text
