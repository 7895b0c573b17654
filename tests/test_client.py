"""otel_db.Client: the write path and the status calls, against the real schema."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from otel_db import Client, IngestError, Settings
from tests.conftest import database_url
from tests.otlp import span, traces_request


@pytest.fixture
def client(dsn: str):
    with Client(dsn) as c:
        yield c


def staged_spans(client: Client) -> list[tuple]:
    return (
        client.connection()
        .execute(
            "select trace_id, span_id, name, kind, start_time, attributes, status_message"
            "  from otel.traces_staging order by span_id"
        )
        .fetchall()
    )


def test_copy_spans_converts_values_to_staging_text(client):
    start = datetime(2025, 11, 24, 10, 0, 0, 1, tzinfo=UTC)
    rows = [
        {
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "span_id": "b7ad6b7169203331",
            "name": "SELECT \\N orders\t",
            "kind": "CLIENT",
            "start_time": start,
            "attributes": {"db.system": "postgresql", "n": 2**63},
            "status_message": None,
        },
        {
            "span_id": "b7ad6b7169203332",
            "trace_id": bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
            "name": "naive time",
            "kind": 3,
            "start_time": datetime(2025, 11, 24, 10, 0),
            "attributes": [],
            "status_message": "boom",
        },
    ]
    assert client.copy_spans(rows) == 2
    first, second = staged_spans(client)
    assert first == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        "SELECT \\N orders\t",
        "CLIENT",
        "2025-11-24T10:00:00.000001+00:00",
        '{"db.system":"postgresql","n":9223372036854775808}',
        None,
    )
    assert second[0] == "0af7651916cd43dd8448eb211c80319c"
    assert second[3:5] == ("3", "2025-11-24T10:00:00+00:00")
    assert second[5:] == ("[]", "boom")


def test_copy_spans_keeps_the_offset_of_an_aware_datetime(client):
    tz = timezone(timedelta(hours=2))
    client.copy_spans([{"span_id": "1", "start_time": datetime(2025, 1, 1, 12, tzinfo=tz)}])
    assert staged_spans(client)[0][4] == "2025-01-01T12:00:00+02:00"


def test_copy_spans_refuses_rows_with_other_keys_and_stages_nothing(client):
    rows = [{"trace_id": "a", "span_id": "1"}, {"trace_id": "b", "name": "x"}]
    with pytest.raises(IngestError, match="row 2 has keys"):
        client.copy_spans(rows)
    assert staged_spans(client) == []


def test_copy_spans_refuses_an_unknown_column_listing_the_allowed_ones(client):
    with pytest.raises(IngestError, match=r"unknown column.*'spanid'.*allowed: trace_id, span_id"):
        client.copy_spans([{"trace_id": "a", "spanid": "1"}])


def test_copy_spans_dead_letters_a_row_text_cannot_hold(client):
    rows = [
        {"trace_id": "a", "span_id": "1", "name": "ok"},
        {"trace_id": "b", "span_id": "2", "name": "nul\x00here"},
        {"trace_id": "c", "span_id": "3", "name": "lone \udc80 surrogate"},
    ]
    assert client.copy_spans(rows) == 1
    assert [r[1] for r in staged_spans(client)] == ["1"]
    letters = (
        client.connection()
        .execute(
            "select telemetry_type, source, raw_format, error_message, raw_data  from otel.telemetry_dlq order by id"
        )
        .fetchall()
    )
    assert [letter[:4] for letter in letters] == [
        ("traces", "Client.copy_spans", "row-json", "row 2: column name contains a NUL character at offset 3"),
        ("traces", "Client.copy_spans", "row-json", "row 3: column name contains a lone surrogate at offset 5"),
    ]
    assert json.loads(letters[0][4]) == rows[1]


def test_copy_spans_of_nothing_is_zero(client):
    assert client.copy_spans([]) == 0


def test_copy_otlp_then_flush_returns_the_flush_run(client):
    report = client.copy_otlp([traces_request(span(), span()), b"not json\n"])
    assert (report.lines_sent, report.lines_dead_lettered) == (2, 0)
    run = client.flush()
    assert (run["spans"], run["otlp_requests"], run["dead_lettered"]) == (2, 2, 1)
    assert run["id"] == client.connection().execute("select max(id) from otel.flush_runs").fetchone()[0]


def test_health_is_true_on_a_migrated_database(client):
    assert client.health() is True


def test_health_is_false_when_the_database_is_unreachable():
    with Client("postgresql://postgres@127.0.0.1:1/otel") as c:
        assert c.health() is False


def test_health_is_false_without_the_schema(postgresql_noproc_fixture):
    with Client(database_url("postgres")) as c:
        assert c.health() is False


def test_client_reconnects_after_close(client):
    first = client.connection()
    client.close()
    assert first.closed
    assert client.health() is True
    assert client.connection() is not first


def test_from_env_takes_the_connection_string(monkeypatch, dsn):
    monkeypatch.setenv("OTEL_STORAGE_CONNECTION_STRING", dsn)
    with Client.from_env() as c:
        assert c.dsn == dsn
        assert c.settings == Settings.from_env()
        assert c.health() is True


def test_store_methods_stage_rows_that_flush_into_every_kind(client):
    client.store_trace(
        {
            "trace_id": "ab" * 16,
            "span_id": "cd" * 8,
            "name": "GET /",
            "start_time": "2025-11-24T10:00:00Z",
            "end_time": "2025-11-24T10:00:01Z",
            "attributes": {"http.response.status_code": 200},
        }
    )
    client.store_log({"time": datetime(2025, 11, 24, 10, 0, tzinfo=UTC), "body": "hello", "severity_number": 9})
    client.store_metrics(
        [{"name": "queue.depth", "time": "2025-11-24T10:00:00Z", "type": "gauge", "value": v} for v in (3, 4)]
    )
    run = client.flush()
    assert (run["spans"], run["logs"], run["metric_points"], run["dead_lettered"]) == (1, 1, 2, 0)


def test_copy_rows_refuses_an_unknown_kind(client):
    with pytest.raises(ValueError, match="kind must be one of traces, logs, metrics"):
        client.copy_rows("events", [{"name": "x"}])
