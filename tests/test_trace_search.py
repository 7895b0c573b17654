"""Trace search: otel.services(), otel.operations(), otel.find_traces() and otel.service_dependencies()."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.helpers import scalar
from tests.otlp import attribute
from tests.test_roles import login_role  # noqa: F401 (a fixture)
from tests.test_trace_comparison import CLIENT, SERVER, T0, a_span, load, request, rows, trace_id

WINDOW = {"since": T0 - timedelta(hours=1), "until": T0 + timedelta(hours=1)}


def with_resource(service: str, resource: dict[str, str], *spans: dict) -> dict:
    body = request(service, *spans)
    body["resourceSpans"][0]["resource"]["attributes"] += [
        attribute(k, {"stringValue": v}) for k, v in resource.items()
    ]
    return body


def checkout(n: int, start: timedelta, ms: float, *, failing: bool = False) -> list[dict]:
    """frontend GET /checkout (ms long) calls payment POST /charge (10 ms): 503 and failing when `failing`."""
    trace = trace_id(n)
    at = T0 + start
    frontend = [
        a_span(trace, 1, None, "GET /checkout", at, (0, ms), kind=SERVER),
        a_span(trace, 2, 1, "POST", at, (1, ms - 1), kind=CLIENT),
    ]
    charge = a_span(
        trace,
        3,
        2,
        "POST /charge",
        at,
        (2, 12),
        kind=SERVER,
        attributes={"http.response.status_code": 503 if failing else 200, "retry": failing},
        error="gateway down" if failing else None,
    )
    return [
        request("frontend", *frontend),
        with_resource("payment", {"deployment.environment": "prod" if failing else "staging"}, charge),
    ]


def home(n: int, start: timedelta) -> list[dict]:
    return [request("frontend", a_span(trace_id(n), 1, None, "GET /home", T0 + start, (0, 50), kind=SERVER))]


@pytest.fixture
def shop(conn) -> None:
    """Three traces: a slow failing checkout (1), a quick good one (2, newer), a home page (3, newest)."""
    load(
        conn,
        checkout(1, timedelta(minutes=-30), 3000, failing=True),
        checkout(2, timedelta(minutes=-20), 100),
        home(3, timedelta(minutes=-10)),
    )


def found(conn, **criteria) -> list[str]:
    arguments = {**WINDOW, **criteria}
    named = ", ".join(f"{name} => %({name})s" for name in arguments)
    return [r["trace_id"] for r in rows(conn, f"select * from otel.find_traces({named})", arguments)]


# ---------------------------------------------------------------- catalog


def test_services_and_operations_come_from_the_catalog_the_flush_keeps(conn, shop):
    services = rows(conn, "select * from otel.services()", ())
    assert [(s["service_name"], s["operations"]) for s in services] == [("frontend", 3), ("payment", 1)]
    assert services[0]["first_seen"] == T0 - timedelta(minutes=30)
    assert services[0]["last_seen"] == T0 - timedelta(minutes=10)
    operations = rows(conn, "select * from otel.operations('frontend')", ())
    assert [(o["name"], o["kind"]) for o in operations] == [
        ("GET /checkout", "SERVER"),
        ("GET /home", "SERVER"),
        ("POST", "CLIENT"),
    ]
    assert [o["name"] for o in rows(conn, "select * from otel.operations('frontend', 'client')", ())] == ["POST"]
    assert rows(conn, "select * from otel.operations('nobody')", ()) == []
    # a later flush widens what is known, and the window filters on it
    load(conn, home(4, timedelta(hours=5)))
    assert scalar(conn, "select last_seen from otel.operations('frontend') where name = 'GET /home'") == (
        T0 + timedelta(hours=5)
    )
    recent = rows(conn, "select * from otel.services(since => %s)", (T0 + timedelta(hours=1),))
    assert [(s["service_name"], s["operations"]) for s in recent] == [("frontend", 1)]
    assert scalar(conn, "select count(*) from otel.operation_catalog") == 4


def test_retention_prunes_the_catalog_with_the_spans(conn):
    now = datetime.now(UTC)
    load(
        conn,
        [request("frontend", a_span(trace_id(1), 1, None, "GET /old", now - timedelta(days=5), (0, 5)))],
        [request("frontend", a_span(trace_id(2), 1, None, "GET /new", now - timedelta(hours=1), (0, 5)))],
    )
    conn.execute("select otel.set_retention('traces', '2 days')")
    conn.execute("call otel.maintain()")
    assert [r["name"] for r in rows(conn, "select * from otel.operations('frontend')", ())] == ["GET /new"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("otel.operations(null)", "service must be a service name, got null"),
        ("otel.operations('a', 'sideways')", "span_kind must be one of server, client"),
        ("otel.services('2026-01-02', '2026-01-01')", "since (2026-01-02 00:00:00+00) is after until"),
    ],
)
def test_catalog_functions_refuse_bad_arguments(conn, call, message):
    conn.execute("set timezone = 'UTC'")
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        conn.execute(f"select * from {call}")
    assert caught.value.diag.message_primary.startswith(message)


# ---------------------------------------------------------------- find_traces


def test_find_traces_by_service_and_operation_newest_first(conn, shop):
    assert found(conn, service="payment") == [trace_id(2), trace_id(1)]
    assert found(conn, service="frontend") == [trace_id(3), trace_id(2), trace_id(1)]
    assert found(conn, service="frontend", operation="GET /home") == [trace_id(3)]
    assert found(conn, operation="POST /charge", lim=1) == [trace_id(2)]
    assert found(conn, service="nobody") == []


def test_find_traces_rows_are_trace_summaries(conn, shop):
    (row,) = rows(conn, "select * from otel.find_traces('payment', status => 'error', since => %s)", (WINDOW["since"],))
    assert row == {
        "trace_id": trace_id(1),
        "root_service": "frontend",
        "root_name": "GET /checkout",
        "start_time": T0 - timedelta(minutes=30),
        "duration_ms": 3000.0,
        "span_count": 3,
        "error_count": 1,
        "services": ["frontend", "payment"],
    }


def test_find_traces_by_attributes_of_the_span_or_its_resource_compared_as_text(conn, shop):
    assert found(conn, attributes='{"http.response.status_code": "503"}') == [trace_id(1)]
    assert found(conn, attributes='{"http.response.status_code": 200}') == [trace_id(2)]
    assert found(conn, attributes='{"retry": true}') == [trace_id(1)]
    assert found(conn, attributes='{"deployment.environment": "prod"}') == [trace_id(1)]
    both = '{"deployment.environment": "prod", "http.response.status_code": 503}'
    assert found(conn, service="payment", attributes=both) == [trace_id(1)]
    assert found(conn, attributes='{"deployment.environment": "staging", "http.response.status_code": 503}') == []


def test_find_traces_wants_one_span_to_match_every_criterion(conn, shop):
    # trace 1 has a frontend span and a span answering 503, but they are not the same span
    assert found(conn, service="frontend", attributes='{"http.response.status_code": 503}') == []
    # its 3 s span is frontend's, its failing span payment's
    assert found(conn, min_duration="2 seconds") == [trace_id(1)]
    assert found(conn, service="payment", min_duration="2 seconds") == []
    assert found(conn, service="payment", min_duration="2 seconds", max_duration="3 seconds") == []


def test_find_traces_by_status_or_the_error_tag(conn, shop):
    assert found(conn, status="ERROR") == [trace_id(1)]
    assert found(conn, attributes='{"error": true}') == [trace_id(1)]
    assert found(conn, attributes='{"error": "true"}', service="payment") == [trace_id(1)]
    assert found(conn, attributes='{"error": false}', service="payment") == [trace_id(2)]
    assert found(conn, status="ok") == []  # no span set status OK


def test_find_traces_by_duration(conn, shop):
    assert found(conn, service="frontend", max_duration="60 milliseconds") == [trace_id(3)]
    assert found(conn, max_duration="60 milliseconds") == [trace_id(3), trace_id(2), trace_id(1)]  # the charges
    assert found(conn, min_duration="90 ms", max_duration="100 ms") == [trace_id(2)]


def test_find_traces_in_a_window_and_without_criteria(conn, shop):
    assert found(conn) == [trace_id(3), trace_id(2), trace_id(1)]
    assert found(conn, lim=2) == [trace_id(3), trace_id(2)]
    assert found(conn, since=T0 - timedelta(minutes=25), until=T0 - timedelta(minutes=15)) == [trace_id(2)]
    assert found(conn, service="payment", since=T0, until=T0 + timedelta(hours=1)) == []
    # the default window is the last hour
    assert scalar(conn, "select count(*) from otel.find_traces('frontend')") == 0


def test_find_traces_reads_on_past_a_trace_with_many_matching_spans(conn):
    """The spans are read in pages (8 times lim spans, then 4 times more each): a trace can fill several."""
    busy = [
        a_span(trace_id(1), n, None, f"step {n}", T0 - timedelta(seconds=n), (0, 5), kind=SERVER) for n in range(1, 40)
    ]
    same_time = [a_span(trace_id(2), n, None, "batch", T0 - timedelta(minutes=5), (0, 5)) for n in range(1, 12)]
    load(conn, [request("worker", *busy)], [request("worker", *same_time)], home(3, timedelta(minutes=-30)))
    assert found(conn, service="worker", lim=2) == [trace_id(1), trace_id(2)]
    assert found(conn, lim=3, min_duration="1 ms") == [trace_id(1), trace_id(2), trace_id(3)]


def scans(conn: psycopg.Connection) -> dict[str, int]:
    """Scans of each partition of otel.traces not yet reported to the statistics (this transaction's, and more)."""
    rows_ = conn.execute(
        "select relname, seq_scan + coalesce(idx_scan, 0) from pg_stat_xact_user_tables"
        " where schemaname = 'otel' and relname like 'traces\\_p%'"
    )
    return dict(rows_.fetchall())


def test_find_traces_reads_only_the_partitions_of_its_window(conn, shop):
    load(conn, home(10, timedelta(days=-2)), home(11, timedelta(days=2)))
    with conn.transaction():  # counts not yet reported include earlier statements': compare before and after
        before = scans(conn)
        assert found(conn, service="frontend", attributes='{"retry": false}') == []
        assert found(conn, operation="GET /home") == [trace_id(3)]
        read = {name for name, count in scans(conn).items() if count > before.get(name, 0)}
    assert read == {"traces_p" + T0.strftime("%Y%m%d")}


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        ({"status": "broken"}, "status must be ERROR, OK or UNSET, got 'broken'"),
        ({"min_duration": "-1 second"}, "min_duration must not be negative, got -00:00:01"),
        ({"max_duration": "-1 second"}, "max_duration must not be negative, got -00:00:01"),
        ({"min_duration": "2 s", "max_duration": "1 s"}, "min_duration (00:00:02) is above max_duration (00:00:01)"),
        ({"attributes": "[1, 2]"}, "attributes must be a JSON object of keys and values, got [1, 2]"),
        ({"attributes": '{"a": {"b": 1}}'}, 'attribute a must be a string, number or boolean, got {"b": 1}'),
        ({"lim": 0}, "lim must be between 1 and 10000, got 0"),
        ({"since": None}, "since must be a timestamp, got null"),
    ],
)
def test_find_traces_refuses_bad_arguments(conn, criteria, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        found(conn, **criteria)
    assert caught.value.diag.message_primary == message


# ---------------------------------------------------------------- service_dependencies


def test_service_dependencies_count_calls_across_services(conn, shop):
    load(conn, checkout(5, timedelta(minutes=-5), 80))
    calls = rows(conn, "select * from otel.service_dependencies(%(since)s, %(until)s)", WINDOW)
    assert calls == [{"parent": "frontend", "child": "payment", "call_count": 3}]
    assert rows(conn, "select * from otel.service_dependencies(%s, %s)", (T0, T0 + timedelta(hours=1))) == []
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="at most 31 days"):
        conn.execute("select * from otel.service_dependencies(now() - interval '40 days')")


def test_otel_reader_may_search(conn, shop, login_role):  # noqa: F811
    reader = login_role("otel_reader")
    assert reader.execute("select count(*) from otel.services()").fetchone() == (2,)
    assert reader.execute("select count(*) from otel.operations('payment')").fetchone() == (1,)
    assert reader.execute(
        "select count(*) from otel.find_traces('payment', since => %s)", (WINDOW["since"],)
    ).fetchone() == (2,)
    assert reader.execute(
        "select count(*) from otel.service_dependencies(%(since)s, %(until)s)", WINDOW
    ).fetchone() == (1,)
