"""The official OTLP/JSON examples land with the counts their notes give."""

import json

import pytest

from tests.conftest import ROOT
from tests.helpers import flush, scalar, stage_otlp

# Apache-2.0 data from the OpenTelemetry projects: SOURCES.md there says where each file comes from.
EXAMPLES = ROOT / "tests" / "data" / "otlp-examples"
EXPECTED = json.loads((EXAMPLES / "public_expected.json").read_text())

# Our policy where the notes leave one: spans with an empty traceId/spanId
# are invalid per trace.proto and go to the dead-letter queue; a span of the
# year 2339 is outside the accepted time window (otel.future_margin).
REJECTED_BY_POLICY = {("public_traces.jsonl", 1): 3, ("public_traces.jsonl", 2): 1}


def example_lines(name: str) -> list[tuple[int, str]]:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    return list(enumerate(text.splitlines(), start=1))


CASES = [(name, entry) for name, entries in EXPECTED.items() for entry in entries]


@pytest.mark.parametrize(("name", "entry"), CASES, ids=[f"{n}:{e['line']}" for n, e in CASES])
def test_example_line_lands_with_expected_counts(conn, name, entry):
    line = dict(example_lines(name))[entry["line"]]
    stage_otlp(conn, [line])
    run = flush(conn)
    rejected = REJECTED_BY_POLICY.get((name, entry["line"]), 0)
    assert run["spans"] == entry["spans"] - rejected
    assert run["logs"] == entry["logs"]
    assert run["metric_points"] == entry["points"]
    assert run["dead_lettered"] == rejected
    assert scalar(conn, "select count(*) from otel.otlp_staging") == 0


def test_all_examples_together_drop_duplicate_spans(conn):
    for name in EXPECTED:
        stage_otlp(conn, [line for _, line in example_lines(name)])
    run = flush(conn)
    # traces.json, failed_traces.json and serialized_traces.json share span keys.
    assert run["duplicates"] == 4
    assert run["spans"] == 11 - 4 - 4
    assert run["logs"] == 4
    assert run["metric_points"] == 17
    assert run["dead_lettered"] == 4


def test_uppercase_hex_ids_are_stored_lowercase(conn):
    stage_otlp(conn, [dict(example_lines("public_traces.jsonl"))[3]])
    flush(conn)
    trace_id, span_id = conn.execute("select trace_id, span_id from otel.traces").fetchone()
    assert trace_id == "5b8efff798038103d269b633813fc60c"
    assert span_id == "eee19b7ec3c1b174"


def test_start_time_beyond_int64_is_kept(conn):
    conn.execute("set otel.future_margin = '400 years'")
    stage_otlp(conn, [dict(example_lines("public_traces.jsonl"))[2]])
    flush(conn)
    start = scalar(conn, "select start_time::text from otel.traces")
    assert start == "2339-03-21 22:18:14.838206+00"


def test_observed_time_stands_in_for_missing_time(conn):
    stage_otlp(conn, [dict(example_lines("public_logs.jsonl"))[4]])
    flush(conn)
    time, observed, trace_id = conn.execute("select time, observed_time, trace_id from otel.logs").fetchone()
    assert time == observed
    assert trace_id is None


def test_kvlist_body_is_json_text(conn):
    stage_otlp(conn, [dict(example_lines("public_logs.jsonl"))[1]])
    flush(conn)
    body, event_name = conn.execute("select body, event_name from otel.logs").fetchone()
    assert isinstance(json.loads(body), dict)
    assert event_name


def test_legacy_field_names_hold_no_points(conn):
    stage_otlp(conn, [dict(example_lines("public_metrics.jsonl"))[2]])
    run = flush(conn)
    assert run["metric_points"] == 0
    assert run["dead_lettered"] == 0
