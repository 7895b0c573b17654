"""OTLP/JSON the Collector's decoder refuses is dead-lettered with a reason; what it accepts lands.

Each case is one export request with one bad record next to a good one, so
a case also shows that the bad record's siblings land.
"""

import json

import pytest

from tests.helpers import dead_letters, flush, scalar, stage_otlp
from tests.otlp import (
    attribute,
    gauge,
    log_record,
    logs_request,
    metrics_request,
    number_point,
    span,
    traces_request,
)

LINK = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"}
EXEMPLAR = {"timeUnixNano": "1764000000000000000", "asDouble": 1.5, **LINK}


def histogram(**point: object) -> dict:
    data_point = {
        "timeUnixNano": "1764000000000000000",
        "count": "3",
        "bucketCounts": ["1", "2"],
        "explicitBounds": [10.0],
        **point,
    }
    return {"name": "latency", "histogram": {"aggregationTemporality": 2, "dataPoints": [data_point]}}


def exponential_histogram(**point: object) -> dict:
    data_point = {
        "timeUnixNano": "1764000000000000000",
        "count": "6",
        "zeroCount": "1",
        "scale": 3,
        "positive": {"offset": 2, "bucketCounts": ["2", "2"]},
        "negative": {"bucketCounts": ["1"]},
        **point,
    }
    return {"name": "latency", "exponentialHistogram": {"aggregationTemporality": 2, "dataPoints": [data_point]}}


def with_attribute(value: object) -> dict:
    return span(attributes=[{"key": "k", "value": value}])


GOOD_SPAN, GOOD_LOG, GOOD_POINT = span(), log_record(), gauge("queue", number_point(3))

REFUSED = {
    "a link's traceId is not hex": (
        traces_request(GOOD_SPAN, span(links=[{**LINK, "traceId": "xyz"}])),
        "link traceId (not 32 hex digits)",
    ),
    "a link's spanId has 15 digits": (
        traces_request(GOOD_SPAN, span(links=[{**LINK, "spanId": "e" * 15}])),
        "link spanId (not 16 hex digits)",
    ),
    "an exemplar's spanId is not hex": (
        metrics_request(GOOD_POINT, gauge("q", {**number_point(1), "exemplars": [{**EXEMPLAR, "spanId": "zz"}]})),
        "exemplar spanId (not 16 hex digits)",
    ),
    "a log record's traceId is not hex": (logs_request(GOOD_LOG, log_record(traceId="abc")), 'trace_id "abc"'),
    "an attribute value that is a bare string": (
        traces_request(GOOD_SPAN, with_attribute("x")),
        "AnyValue (not an object)",
    ),
    "an attribute value with two variants": (
        traces_request(GOOD_SPAN, with_attribute({"stringValue": "a", "intValue": "1"})),
        "AnyValue (more than one of its variants)",
    ),
    "a double and a bool in one value": (
        traces_request(GOOD_SPAN, with_attribute({"doubleValue": 1.5, "boolValue": True})),
        "more than one of its variants",
    ),
    "a boolValue given as a string": (traces_request(GOOD_SPAN, with_attribute({"boolValue": "true"})), "boolValue"),
    "a bytesValue that is not base64": (traces_request(GOOD_SPAN, with_attribute({"bytesValue": "!!"})), "bytesValue"),
    "an intValue that is a fraction": (traces_request(GOOD_SPAN, with_attribute({"intValue": 1.5})), "intValue"),
    "an intValue that is a boolean": (traces_request(GOOD_SPAN, with_attribute({"intValue": True})), "intValue"),
    "an intValue that is null": (traces_request(GOOD_SPAN, with_attribute({"intValue": None})), "intValue"),
    "an intValue that is an array": (traces_request(GOOD_SPAN, with_attribute({"intValue": [1]})), "intValue"),
    "an intValue that is an object": (traces_request(GOOD_SPAN, with_attribute({"intValue": {}})), "intValue"),
    "an arrayValue that is a bare array": (
        traces_request(GOOD_SPAN, with_attribute({"arrayValue": [{"stringValue": "a"}]})),
        "arrayValue",
    ),
    "a log body with two variants": (
        logs_request(GOOD_LOG, log_record(body={"intValue": "1", "doubleValue": 2.0})),
        "more than one of its variants",
    ),
    "a span name that is a number": (traces_request(GOOD_SPAN, span(name=5)), "name (not a string)"),
    "a start time in RFC 3339": (
        traces_request(GOOD_SPAN, span(startTimeUnixNano="2025-11-24T16:00:00Z")),
        "invalid OTLP startTimeUnixNano (not Unix nanoseconds, 0 to 2^64-1): 2025-11-24T16:00:00Z",
    ),
    "a negative log time": (
        logs_request(GOOD_LOG, log_record(timeUnixNano="-1")),
        "invalid OTLP timeUnixNano (not Unix nanoseconds, 0 to 2^64-1): -1",
    ),
    "an empty log time beside an observed time": (
        logs_request(GOOD_LOG, log_record(timeUnixNano="", observedTimeUnixNano="1764000000000000000")),
        "invalid OTLP timeUnixNano (not Unix nanoseconds, 0 to 2^64-1): ",
    ),
    "an empty observed time beside a log time": (
        logs_request(GOOD_LOG, log_record(observedTimeUnixNano="")),
        "invalid OTLP observedTimeUnixNano (not Unix nanoseconds, 0 to 2^64-1): ",
    ),
    "an empty start time of a data point": (
        metrics_request(GOOD_POINT, gauge("q", {**number_point(1), "startTimeUnixNano": ""})),
        "invalid OTLP startTimeUnixNano (not Unix nanoseconds, 0 to 2^64-1): ",
    ),
    "a metric with gauge and sum": (
        metrics_request(GOOD_POINT, {**gauge("q", number_point(1)), "sum": {"dataPoints": [number_point(2)]}}),
        "more than one of gauge, sum",
    ),
    "a histogram with as many buckets as bounds": (
        metrics_request(GOOD_POINT, histogram(explicitBounds=[10.0, 20.0])),
        "not one more than its explicitBounds",
    ),
    "a histogram with buckets and no bounds": (
        metrics_request(GOOD_POINT, histogram(explicitBounds=[])),
        "not one more than its explicitBounds",
    ),
    "a histogram whose count is not the sum of its buckets": (
        metrics_request(GOOD_POINT, histogram(count="4")),
        "histogram count (not the sum of its bucketCounts)",
    ),
    "an exponential histogram whose count is off": (
        metrics_request(GOOD_POINT, exponential_histogram(count="7")),
        "exponential histogram count (not zeroCount plus its buckets)",
    ),
    "an exponential histogram with scale 21": (
        metrics_request(GOOD_POINT, exponential_histogram(scale=21)),
        "scale (not between -10 and 20)",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_what_the_collector_refuses_is_dead_lettered_and_its_siblings_land(conn, case):
    request, reason = REFUSED[case]
    stage_otlp(conn, [request])
    run = flush(conn)
    assert run["spans"] + run["logs"] + run["metric_points"] == 1, "the good sibling lands"
    [(_, error, raw)] = dead_letters(conn)
    assert reason in error
    assert json.loads(raw)  # the letter keeps the bad record, as a request of its own


def test_a_request_whose_spans_are_not_an_array_is_dead_lettered_whole(conn):
    stage_otlp(conn, ['{"resourceSpans": [{"scopeSpans": [{"spans": {"name": "x"}}]}]}'])
    run = flush(conn)
    assert (run["spans"], run["dead_lettered"]) == (0, 1)


@pytest.mark.parametrize("request_line", ["{}", '{"resourceSpans": []}', '{"resourceLogs": [{"scopeLogs": []}]}'])
def test_an_empty_export_request_is_accepted_without_a_dead_letter(conn, request_line):
    stage_otlp(conn, [request_line])
    run = flush(conn)
    assert (run["spans"], run["logs"], run["metric_points"], run["dead_lettered"]) == (0, 0, 0, 0)
    assert scalar(conn, "select count(*) from otel.otlp_staging") == 0


def test_proto_field_names_are_read_like_their_json_names(conn):
    request = {
        "resource_spans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"string_value": "billing"}}]},
                "scope_spans": [
                    {
                        "spans": [
                            {
                                "trace_id": "5b8efff798038103d269b633813fc60c",
                                "span_id": "eee19b7ec3c1b174",
                                "parent_span_id": "",
                                "name": "charge",
                                "kind": 3,
                                "start_time_unix_nano": "1764000000000000000",
                                "end_time_unix_nano": "1764000000500000000",
                                "attributes": [{"key": "retry_count", "value": {"int_value": "2"}}],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    stage_otlp(conn, [request])
    assert flush(conn)["spans"] == 1
    row = conn.execute("select service_name, name, kind, duration_ms, attributes from otel.traces").fetchone()
    assert row == ("billing", "charge", "CLIENT", 500.0, {"retry_count": 2})


ACCEPTED = {
    "an empty AnyValue": with_attribute({}),
    "a null AnyValue": with_attribute(None),
    "an AnyValue with an unknown field beside its variant": with_attribute({"stringValue": "a", "note": 1}),
    "a double given as NaN": with_attribute({"doubleValue": "NaN"}),
    "an intValue as a JSON number": with_attribute({"intValue": 12}),
    "a link with empty ids": span(links=[{"traceId": "", "spanId": ""}]),
    "a kind given by its enum name": span(kind="SPAN_KIND_SERVER"),
    "unknown fields on a span": span(somethingNew={"a": [1, 2]}),
    "a start time as a JSON number": span(startTimeUnixNano=1764000000000000000, endTimeUnixNano=1764000000250000000),
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_what_the_collector_accepts_lands(conn, case):
    stage_otlp(conn, [traces_request(ACCEPTED[case])])
    run = flush(conn)
    assert (run["spans"], run["dead_lettered"]) == (1, 0), dead_letters(conn)


def test_histograms_without_buckets_and_with_consistent_buckets_land(conn):
    no_buckets = histogram(bucketCounts=[], explicitBounds=[])
    stage_otlp(conn, [metrics_request(histogram(), no_buckets, exponential_histogram())])
    run = flush(conn)
    assert (run["metric_points"], run["dead_lettered"]) == (3, 0), dead_letters(conn)


def test_an_attribute_list_entry_may_omit_its_value(conn):
    stage_otlp(conn, [traces_request(span(attributes=[attribute("a", {"stringValue": "x"}), {"key": "empty"}]))])
    assert flush(conn)["spans"] == 1
    assert scalar(conn, "select attributes from otel.traces") == {"a": "x", "empty": None}
