"""OTLP/JSON decoding: every field and value kind lands exactly."""

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import flush, scalar, stage_otlp
from tests.otlp import (
    attribute,
    log_record,
    logs_request,
    metrics_request,
    span,
    traces_request,
)


def test_every_anyvalue_variant_is_decoded_exactly(conn):
    attributes = [
        attribute("s", {"stringValue": "text with \\ backslash and \\N"}),
        attribute("b", {"boolValue": True}),
        attribute("i53", {"intValue": "9007199254740993"}),
        attribute("u64", {"intValue": "18446744073709551615"}),
        attribute("neg", {"intValue": "-9223372036854775808"}),
        attribute("inum", {"intValue": 42}),
        attribute("d", {"doubleValue": 1.5}),
        attribute("nan", {"doubleValue": "NaN"}),
        attribute("inf", {"doubleValue": "-Infinity"}),
        attribute("bytes", {"bytesValue": "3q2+7w=="}),
        attribute("arr", {"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "x"}]}}),
        attribute(
            "kv",
            {"kvlistValue": {"values": [attribute("inner", {"arrayValue": {"values": [{"boolValue": False}]}})]}},
        ),
        attribute("empty", {}),
    ]
    stage_otlp(conn, [traces_request(span(attributes=attributes))])
    flush(conn)
    stored = json.loads(scalar(conn, "select attributes::text from otel.traces"))
    assert stored == {
        "s": "text with \\ backslash and \\N",
        "b": True,
        "i53": 9007199254740993,
        "u64": 18446744073709551615,
        "neg": -9223372036854775808,
        "inum": 42,
        "d": 1.5,
        "nan": "NaN",
        "inf": "-Infinity",
        "bytes": "3q2+7w==",
        "arr": [1, "x"],
        "kv": {"inner": [False]},
        "empty": None,
    }


def test_span_fields_resource_scope_events_and_links(conn):
    request = traces_request(
        span(
            traceId="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            spanId="BBBBBBBBBBBBBBBB",
            parentSpanId="cccccccccccccccc",
            traceState="vendor=1",
            flags=257,
            kind="SPAN_KIND_CLIENT",
            status={"code": 2, "message": "card declined"},
            events=[
                {
                    "name": "exception",
                    "timeUnixNano": "1764000000100000000",
                    "attributes": [attribute("exception.type", {"stringValue": "CardError"})],
                }
            ],
            links=[
                {
                    "traceId": "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD",
                    "spanId": "EEEEEEEEEEEEEEEE",
                    "attributes": [],
                }
            ],
        ),
        service="payment",
    )
    stage_otlp(conn, [request])
    flush(conn)
    row = conn.execute(
        "select trace_id, span_id, parent_span_id, trace_state, flags, kind, status_code, status_message,"
        " service_name, scope_name, scope_version, resource_attributes, events, links, duration_ms"
        " from otel.traces"
    ).fetchone()
    assert row[:11] == (
        "a" * 32,
        "b" * 16,
        "c" * 16,
        "vendor=1",
        257,
        "CLIENT",
        "ERROR",
        "card declined",
        "payment",
        "tests",
        "1.0",
    )
    assert row[11] == {"service.name": "payment"}
    assert row[12] == [
        {
            "name": "exception",
            "time": "2025-11-24T16:00:00.1+00:00",
            "attributes": {"exception.type": "CardError"},
        }
    ]
    assert row[13] == [{"trace_id": "d" * 32, "span_id": "e" * 16, "trace_state": None, "attributes": {}}]
    assert row[14] == 250.0


def test_all_zero_parent_means_root(conn):
    stage_otlp(conn, [traces_request(span(parentSpanId="0000000000000000"))])
    flush(conn)
    assert scalar(conn, "select parent_span_id from otel.traces") is None
    assert scalar(conn, "select root_name from otel.trace_summaries") == "GET /users/{id}"


def test_ids_in_any_case_and_padding_are_stored_in_lower_case(conn):
    trace_id, span_id, parent_id = "AB" * 16, "Cd" * 8, "0F" * 8
    stage_otlp(conn, [traces_request(span(traceId=f" {trace_id} ", spanId=span_id, parentSpanId=f"{parent_id}  "))])
    flush(conn)
    assert conn.execute("select trace_id, span_id, parent_span_id from otel.traces").fetchone() == (
        trace_id.lower(),
        span_id.lower(),
        parent_id.lower(),
    )


def test_log_bodies_of_every_type_and_trace_context(conn):
    records = [
        log_record(body={"stringValue": "plain"}, traceId="A" * 32, spanId="B" * 16),
        log_record(body={"intValue": "9007199254740993"}),
        log_record(body={"kvlistValue": {"values": [attribute("k", {"doubleValue": 2.5})]}}),
        log_record(body={"arrayValue": {"values": [{"stringValue": "a"}]}}),
        log_record(traceId="0" * 32, spanId="0" * 16, severityNumber="SEVERITY_NUMBER_WARN2"),
        log_record(timeUnixNano="0", observedTimeUnixNano="1764000000500000000"),
    ]
    stage_otlp(conn, [logs_request(*records)])
    run = flush(conn)
    assert run["logs"] == 6
    rows = conn.execute(
        "select body, trace_id, span_id, severity_number, time = observed_time from otel.logs order by body nulls last"
    ).fetchall()
    bodies = [r[0] for r in rows]
    assert "plain" in bodies
    assert "9007199254740993" in bodies
    assert json.loads(next(b for b in bodies if b and b.startswith("{"))) == {"k": 2.5}
    assert '["a"]' in bodies
    correlated = next(r for r in rows if r[0] == "plain")
    assert correlated[1:3] == ("a" * 32, "b" * 16)
    assert {r[3] for r in rows} >= {9, 14}
    assert scalar(conn, "select count(*) from otel.logs where trace_id is null") == 5
    assert scalar(conn, "select count(*) from otel.logs where time = observed_time") == 1


def test_every_metric_type_one_row_per_point(conn):
    t = "1764000000000000000"
    metrics = [
        {
            "name": "g",
            "gauge": {
                "dataPoints": [
                    {"timeUnixNano": t, "asDouble": 0.25},
                    {"timeUnixNano": t, "asInt": "-7"},
                ]
            },
        },
        {
            "name": "requests",
            "unit": "1",
            "sum": {
                "aggregationTemporality": 2,
                "isMonotonic": True,
                "dataPoints": [
                    {
                        "timeUnixNano": t,
                        "startTimeUnixNano": "1763990000000000000",
                        "asInt": "9223372036854775807",
                        "attributes": [attribute("route", {"stringValue": "/pay"})],
                        "exemplars": [
                            {
                                "timeUnixNano": t,
                                "asDouble": 3.5,
                                "traceId": "A" * 32,
                                "spanId": "B" * 16,
                            }
                        ],
                    }
                ],
            },
        },
        {
            "name": "latency",
            "histogram": {
                "aggregationTemporality": 1,
                "dataPoints": [
                    {
                        "timeUnixNano": t,
                        "count": "18446744073709551615",
                        "sum": 12.5,
                        "min": 0.5,
                        "max": 9,
                        "bucketCounts": ["1", "2", "18446744073709551612"],
                        "explicitBounds": [1, 5],
                    }
                ],
            },
        },
        {
            "name": "exp",
            "exponentialHistogram": {
                "aggregationTemporality": 2,
                "dataPoints": [
                    {
                        "timeUnixNano": t,
                        "count": "3",
                        "scale": 2,
                        "zeroCount": "1",
                        "positive": {"offset": 1, "bucketCounts": ["2"]},
                    }
                ],
            },
        },
        {
            "name": "quantiles",
            "summary": {
                "dataPoints": [
                    {
                        "timeUnixNano": t,
                        "count": "4",
                        "sum": 10,
                        "quantileValues": [{"quantile": 0.5, "value": 2}],
                    }
                ]
            },
        },
    ]
    stage_otlp(conn, [metrics_request(*metrics)])
    run = flush(conn)
    assert run["metric_points"] == 6
    rows = {
        (r[0], r[1]): r[2:]
        for r in conn.execute(
            "select name, coalesce(value::text, ''), type, int_value, count, temporality, is_monotonic,"
            " bucket_counts, explicit_bounds, quantiles, exponential, exemplars, labels from otel.metrics"
        )
    }
    assert rows[("g", "0.25")][0] == "gauge"
    assert rows[("g", "-7")][1] == -7
    requests = rows[("requests", "9.223372036854776e+18")]
    assert requests[1] == 9223372036854775807
    assert requests[3:5] == ("cumulative", True)
    assert requests[9][0]["trace_id"] == "a" * 32
    assert requests[10] == {"route": "/pay"}
    latency = rows[("latency", "")]
    assert latency[2] == 18446744073709551615
    assert latency[3] == "delta"
    assert latency[5] == [1, 2, 18446744073709551612]
    assert latency[6] == [1.0, 5.0]
    exp = rows[("exp", "")]
    assert exp[0] == "exponential_histogram"
    assert exp[8]["scale"] == 2
    assert rows[("quantiles", "")][7] == [{"quantile": 0.5, "value": 2}]


def test_nan_metric_value_is_kept(conn):
    point = {"timeUnixNano": "1764000000000000000", "asDouble": "NaN"}
    stage_otlp(conn, [metrics_request({"name": "n", "gauge": {"dataPoints": [point]}})])
    flush(conn)
    assert math.isnan(scalar(conn, "select value from otel.metrics"))


@pytest.mark.parametrize(
    ("text", "max_digits", "signed", "is_integer"),
    [
        ("12", 20, True, True),
        ("0042", 20, False, True),
        (" 12 ", 20, False, True),
        ("-12", 20, True, True),
        ("-12", 20, False, False),
        ("9" * 20, 20, False, True),
        ("9" * 21, 20, True, False),
        ("12a", 20, True, False),
        ("1.5", 20, True, False),
        ("", 20, True, False),
        (None, 20, True, None),
    ],
)
def test_integer_text_is_recognised_in_every_form_otlp_allows(conn, text, max_digits, signed, is_integer):
    assert scalar(conn, "select otel.is_integer_text(%s, %s, %s)", (text, max_digits, signed)) is is_integer


def unix_nanoseconds(nanoseconds: int) -> datetime:
    """What otel.parse_time() must make of Unix nanoseconds: whole microseconds, truncated."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanoseconds // 1000)


@pytest.mark.parametrize(
    "nanoseconds",
    [
        0,
        999,
        1_764_000_000_123_456_789,
        8_999_999_999_999_999_999,  # the last value of the fast path
        9_000_000_000_000_000_000,
        2**63 - 1,
        2**63,
        2**64 - 1,
    ],
)
@pytest.mark.parametrize("leading_zeros", [0, 30])
def test_unix_nanoseconds_are_exact_to_the_microsecond_up_to_2_to_the_64(conn, nanoseconds, leading_zeros):
    text = "0" * leading_zeros + str(nanoseconds)
    assert scalar(conn, "select otel.parse_time(%s)", (text,)) == unix_nanoseconds(nanoseconds)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    nanoseconds=st.integers(min_value=0, max_value=2**64 - 1),
    form=st.sampled_from(["{}", "0{}", " {} "]),  # as written, with a leading zero, with white space
)
def test_any_uint64_of_nanoseconds_is_read_exactly(conn, nanoseconds, form):
    text = form.format(nanoseconds)
    assert scalar(conn, "select otel.parse_time(%s)", (text,)) == unix_nanoseconds(nanoseconds)


@pytest.mark.parametrize("text", [str(2**64), "-1", "12a", "1.5", "", "0x10", None])
def test_unreadable_times_are_null(conn, text):
    assert scalar(conn, "select otel.parse_time(%s)", (text,)) is None


@pytest.mark.parametrize(("text", "parsed"), [("[]", []), ("{}", {}), (" [] ", []), ("[1]", [1]), ("", {"d": 1})])
def test_parse_json_reads_empty_arrays_and_objects_like_any_other(conn, text, parsed):
    assert scalar(conn, "select otel.parse_json(%s, %s)", (text, '{"d": 1}')) == parsed
