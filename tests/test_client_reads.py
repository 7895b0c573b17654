"""otel_db.Client read methods and sql(), on a small dataset staged through the typed tables."""

import json
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from otel_db import (
    Client,
    ErrorSpan,
    InvalidArgument,
    LogRecord,
    MetricPoint,
    OtelDbError,
    QueryTimeout,
    ReadOnlyQueryError,
    SpanNode,
    TraceContext,
)
from tests.helpers import flush, scalar

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TRACE = "ab" * 16
OTHER_TRACE = "cd" * 16
UNKNOWN_TRACE = "0" * 31 + "1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stage(conn: psycopg.Connection, kind: str, rows: list[dict]) -> None:
    columns = sorted({key for row in rows for key in row})
    with conn.cursor().copy(f"copy otel.{kind}_staging ({', '.join(columns)}) from stdin") as copy:
        for row in rows:
            values = (row.get(c) for c in columns)
            copy.write_row([json.dumps(v) if isinstance(v, dict | list) else v for v in values])


def a_span(trace: str, span_id: str, parent: str | None, start: float, name: str, **extra) -> dict:
    return {
        "trace_id": trace,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "kind": "SERVER",
        "start_time": at(start).isoformat(),
        "end_time": at(start + 0.5).isoformat(),
        "service_name": "shop",
        **extra,
    }


@pytest.fixture
def shop(conn: psycopg.Connection) -> None:
    """Two traces (one error each), three logs, a gauge with two label sets."""
    exception = {"name": "exception", "attributes": {"exception.type": "CardDeclined", "exception.message": "no"}}
    stage(
        conn,
        "traces",
        [
            a_span(TRACE, "0000000000000001", None, 0, "GET /checkout", attributes={"http.route": "/checkout"}),
            a_span(TRACE, "0000000000000002", "0000000000000001", 1, "load cart"),
            a_span(
                TRACE,
                "0000000000000003",
                "0000000000000001",
                2,
                "charge card",
                service_name="payment",
                status_code="ERROR",
                status_message="declined",
                events=[exception],
            ),
            a_span(OTHER_TRACE, "0000000000000004", None, 10, "GET /health", service_name="edge", status_code="ERROR"),
        ],
    )
    stage(
        conn,
        "logs",
        [
            {
                "time": at(2.1).isoformat(),
                "severity_number": "17",
                "severity_text": "ERROR",
                "body": "card declined by issuer",
                "trace_id": TRACE,
                "span_id": "0000000000000003",
                "service_name": "payment",
                "attributes": {"card.brand": "visa"},
            },
            {"time": at(1.2).isoformat(), "severity_number": "9", "body": "cart loaded", "trace_id": TRACE},
            {
                "time": at(30).isoformat(),
                "severity_number": "9",
                "body": "card payment accepted",
                "service_name": "pay",
            },
        ],
    )
    stage(
        conn,
        "metrics",
        [
            {"name": "cpu", "type": "gauge", "time": at(s).isoformat(), "value": str(v), "labels": {"host": h}}
            for s, v, h in [(0, 1, "a"), (20, 3, "a"), (70, 10, "a"), (30, 100, "b")]
        ],
    )
    flush(conn)


@pytest.fixture
def client(dsn: str):
    with Client(dsn) as c:
        yield c


def test_get_traces_by_error_returns_error_spans_newest_first(client, shop):
    spans = client.get_traces_by_error(at(-60), at(60))
    assert all(isinstance(s, ErrorSpan) for s in spans)
    assert [(s.trace_id, s.name) for s in spans] == [(OTHER_TRACE, "GET /health"), (TRACE, "charge card")]
    charge = spans[1]
    assert (charge.service, charge.parent_span_id, charge.status_message) == ("payment", "0000000000000001", "declined")
    assert (charge.exception_type, charge.exception_message, charge.duration_ms) == ("CardDeclined", "no", 500.0)
    assert charge.start_time == at(2)
    assert [s.name for s in client.get_traces_by_error(at(-60), at(60), service="payment")] == ["charge card"]
    assert len(client.get_traces_by_error(at(-60), at(60), limit=1)) == 1


def test_naive_datetimes_are_taken_as_utc(client, shop):
    client.connection().execute("set timezone = 'Asia/Tokyo'")
    naive = T0.replace(tzinfo=None)
    assert [s.name for s in client.get_traces_by_error(naive, naive + timedelta(seconds=5))] == ["charge card"]


def test_trace_spans_returns_the_tree_depth_first(client, shop):
    spans = client.trace_spans(TRACE.upper())
    assert all(isinstance(s, SpanNode) for s in spans)
    assert [(s.span_id[-1], s.parent_span_id, s.depth, s.name) for s in spans] == [
        ("1", None, 0, "GET /checkout"),
        ("2", "0000000000000001", 1, "load cart"),
        ("3", "0000000000000001", 1, "charge card"),
    ]
    root, _, charge = spans
    assert root.attributes == {"http.route": "/checkout"} and root.events == [] and root.links == []
    assert (charge.status, charge.service, charge.end_time) == ("ERROR", "payment", at(2.5))
    assert charge.events[0]["attributes"]["exception.type"] == "CardDeclined"


def test_trace_logs_returns_log_records_by_time(client, shop):
    logs = client.trace_logs(TRACE)
    assert logs == [
        LogRecord(at(1.2), 9, None, None, "cart loaded", TRACE, None),
        LogRecord(
            at(2.1),
            17,
            "ERROR",
            "payment",
            "card declined by issuer",
            TRACE,
            "0000000000000003",
            {"card.brand": "visa"},
        ),
    ]


def test_trace_context_holds_the_spans_and_the_logs(client, shop):
    context = client.trace_context(TRACE)
    assert isinstance(context, TraceContext)
    assert context.trace_id == TRACE
    assert context.spans == client.trace_spans(TRACE)
    assert context.logs == client.trace_logs(TRACE)
    assert len(context.spans) == 3 and len(context.logs) == 2


def test_unknown_trace_gives_empty_results(client, shop):
    assert client.trace_spans(UNKNOWN_TRACE) == []
    assert client.trace_logs(UNKNOWN_TRACE) == []
    assert client.trace_context(UNKNOWN_TRACE) == TraceContext(UNKNOWN_TRACE, [], [])


def test_search_logs_returns_ranked_records(client, shop):
    found = client.search_logs("card")
    assert {r.body for r in found} == {"card declined by issuer", "card payment accepted"}
    assert all(isinstance(r, LogRecord) and r.rank is not None and r.rank > 0 for r in found)
    assert [r.rank for r in found] == sorted((r.rank for r in found), reverse=True)
    [declined] = client.search_logs('"card declined"', min_severity=17)
    assert (declined.trace_id, declined.span_id, declined.service) == (TRACE, "0000000000000003", "payment")
    assert [r.body for r in client.search_logs("card", since=at(25), service="pay")] == ["card payment accepted"]
    assert client.search_logs("card", until=at(0)) == []


def test_metric_series_takes_a_timedelta_or_an_interval_string(client, shop):
    by_timedelta = client.metric_series("cpu", timedelta(minutes=1), T0, at(300))
    assert by_timedelta == [MetricPoint(at(0), pytest.approx(104 / 3)), MetricPoint(at(60), 10.0)]
    assert client.metric_series("cpu", "1 minute", T0, at(300)) == by_timedelta
    assert client.metric_series("cpu", "1 minute", T0, at(300), labels={"host": "a"}, agg="max") == [
        MetricPoint(at(0), 3.0),
        MetricPoint(at(60), 10.0),
    ]


def test_metric_series_until_defaults_to_now(client, conn):
    recent = datetime.now(UTC) - timedelta(minutes=2)
    stage(conn, "metrics", [{"name": "up", "type": "gauge", "time": recent.isoformat(), "value": "1"}])
    flush(conn)
    assert [p.value for p in client.metric_series("up", timedelta(hours=1), recent - timedelta(minutes=1))] == [1.0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.get_traces_by_error(T0, limit=0), "lim must be between 1 and 10000, got 0"),
        (lambda c: c.get_traces_by_error(T0, T0 - timedelta(days=1)), "is after until"),
        (lambda c: c.get_traces_by_error(None), "since must be a timestamp, got null"),
        (lambda c: c.trace_spans("  "), "trace_id must be 32 hex digits"),
        (lambda c: c.trace_logs(""), "trace_id must be 32 hex digits"),
        (lambda c: c.search_logs("  "), "query must be words"),
        (lambda c: c.search_logs("card", min_severity=30), "min_severity must be an OTLP severity number"),
        (lambda c: c.metric_series("cpu", "1 minute", T0, agg="median"), "agg must be one of avg, min, max"),
        (lambda c: c.metric_series("cpu", timedelta(0), T0), "bucket must be an interval from 1 second"),
        (lambda c: c.metric_series("cpu", "1 minute", T0, labels=["host"]), "labels must be a JSON object"),
        (lambda c: c.metric_series("cpu", "1 fortnight", T0), 'invalid input syntax for type interval: "1 fortnight"'),
        (lambda c: c.similar_traces(TRACE, k=0), "k must be between 1 and 1000, got 0"),
    ],
)
def test_a_refused_argument_is_a_value_error_with_the_server_s_message(client, call, message):
    with pytest.raises(InvalidArgument, match=message) as caught:
        call(client)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, OtelDbError)
    assert str(caught.value) == caught.value.__cause__.diag.message_primary
    assert isinstance(caught.value.__cause__, psycopg.errors.DataError)
    assert client.health() is True


# ---------------------------------------------------------------- sql()


def test_sql_returns_rows_as_dicts_and_takes_parameters(client, shop):
    rows = client.sql(
        "select name, depth from otel.trace_spans(%(trace)s) where depth = %(depth)s order by name",
        {"trace": TRACE, "depth": 1},
    )
    assert rows == [{"name": "charge card", "depth": 1}, {"name": "load cart", "depth": 1}]
    assert client.sql("select count(*) as n from otel.logs where body like 'card%%'", ()) == [{"n": 2}]
    assert client.sql("select 'a%' as pattern") == [{"pattern": "a%"}]


@pytest.mark.parametrize(
    "statement",
    [
        "insert into otel.retention values ('logs', interval '7 days')",
        "update otel.logs set body = 'x'",
        "delete from otel.logs",
        "create table otel.sneaky (id int)",
        "select otel.set_retention('logs', interval '7 days')",
    ],
)
def test_sql_refuses_a_write_and_the_client_stays_usable(client, conn, shop, statement):
    with pytest.raises(ReadOnlyQueryError, match=r"sql\(\) (is|runs) read-only .*copy_otlp\(\).*flush\(\)") as caught:
        client.sql(statement)
    assert isinstance(caught.value, OtelDbError)
    assert client.connection().info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert client.sql("select count(*) as n from otel.logs") == [{"n": 3}]
    assert scalar(conn, "select count(*) from otel.retention") == 0
    assert scalar(conn, "select to_regclass('otel.sneaky')") is None


def test_sql_cannot_commit_its_way_out_of_the_read_only_transaction(client, shop):
    with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
        client.sql("commit; delete from otel.logs")
    assert client.sql("select count(*) as n from otel.logs") == [{"n": 3}]


def test_sql_statement_timeout_raises_and_the_client_stays_usable(client):
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"statement timeout of 0\.1 s.*larger timeout="):
        client.sql("select pg_sleep(2)", timeout=0.1)
    assert time.monotonic() - started < 1.5
    assert client.connection().info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    # The timeout was local to that transaction.
    assert scalar(client.connection(), "show statement_timeout") == "0"
    assert client.sql("select 1 as slept from pg_sleep(0.2)", timeout=5) == [{"slept": 1}]


def test_sql_timeout_must_be_positive(client):
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        client.sql("select 1", timeout=0)


def test_read_methods_run_no_ddl(client, shop, conn):
    before = scalar(conn, "select count(*) from pg_class")
    client.trace_context(TRACE)
    client.search_logs("card")
    client.metric_series("cpu", "1 minute", T0, at(300))
    client.sql("select 1")
    assert scalar(conn, "select count(*) from pg_class") == before


# ---------------------------------------------------------------- settings


def test_from_env_reaches_the_reads(monkeypatch, dsn, shop):
    monkeypatch.setenv("OTEL_STORAGE_CONNECTION_STRING", dsn.replace("postgresql://", "postgresql+psycopg://"))
    monkeypatch.setenv("OTEL_STORAGE_SIMILARITY_THRESHOLD", "0.42")
    with Client.from_env() as c:
        assert c.dsn == dsn
        assert c.settings.similarity_threshold == 0.42
        assert [s.name for s in c.trace_spans(TRACE)] == ["GET /checkout", "load cart", "charge card"]


@pytest.mark.parametrize(
    ("vector", "message"), [([0.0] * 384, "zero vector"), ([float("nan")] * 384, "NaN not allowed")]
)
def test_a_query_vector_without_a_direction_is_refused(client, vector, message):
    with pytest.raises(InvalidArgument, match=message):
        client.similar_traces(vector, model="all-MiniLM-L6-v2")
