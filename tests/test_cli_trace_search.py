"""The trace search in Python (Client, AsyncClient) and on the command line (flush, services, find, trace, logs)."""

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from otel_db import (
    AsyncClient,
    Client,
    InvalidArgument,
    OperationSummary,
    ServiceCall,
    ServiceSummary,
    TraceSummary,
)
from otel_db.cli import _duration
from tests.helpers import flush, stage_otlp
from tests.otlp import log_record, logs_request
from tests.test_ingest import otel_db
from tests.test_trace_comparison import T0, UNKNOWN, load, nanos, sid, trace_id
from tests.test_trace_search import WINDOW, checkout, found, home, shop  # noqa: F401 (shop is a fixture)

# T0 is a fixed day (2026-12-03): the command line's default windows (the last hour, until now) miss it.
CLI_WINDOW = ["--since", WINDOW["since"].isoformat(), "--until", WINDOW["until"].isoformat()]
GATEWAY_DOWN = "card gateway down: connection refused after 3 retries"
STACK = "payment failed\n" + "\n".join(f"  at charge_card (gateway.py:{n})" for n in range(10, 30))


@pytest.fixture
def shop_with_logs(conn, shop) -> None:  # noqa: F811
    """The shop, with two log records of payment's failing charge in trace 1 and one of the home page (trace 3)."""
    charge = T0 - timedelta(minutes=30)
    stage_otlp(
        conn,
        [
            logs_request(
                a_record(trace_id(1), 3, charge + timedelta(milliseconds=5), GATEWAY_DOWN, error=True),
                a_record(trace_id(1), 3, charge + timedelta(milliseconds=11), STACK, error=True),
                service="payment",
            ),
            logs_request(
                a_record(trace_id(3), 1, T0 - timedelta(minutes=10), "home page rendered"), service="frontend"
            ),
        ],
    )
    flush(conn)


def a_record(trace: str, span: int, at: datetime, body: str, *, error: bool = False) -> dict:
    """A log record of span `span` of `trace`: ERROR when `error`, INFO otherwise."""
    return log_record(
        timeUnixNano=nanos(at),
        severityNumber=17 if error else 9,
        severityText="ERROR" if error else "INFO",
        body={"stringValue": body},
        traceId=trace,
        spanId=sid(trace, span),
    )


def cli(*args: str, dsn: str) -> list[str]:
    """The lines `otel-db ARGS` prints, after checking it succeeded without a word on stderr."""
    done = otel_db(*args, dsn=dsn)
    assert (done.returncode, done.stderr.decode()) == (0, "")
    return done.stdout.decode().splitlines()


def cli_json(*args: str, dsn: str) -> object:
    done = otel_db(*args, "--json", dsn=dsn)
    assert (done.returncode, done.stderr.decode()) == (0, "")
    return json.loads(done.stdout)


def refused(*args: str, dsn: str, code: int) -> str:
    """stderr of `otel-db ARGS`, after checking it failed with `code` and without a traceback."""
    done = otel_db(*args, dsn=dsn)
    assert done.returncode == code
    assert done.stdout.decode() == ""
    assert "Traceback" not in done.stderr.decode()
    return done.stderr.decode()


# ---------------------------------------------------------------- Python


@pytest.mark.usefixtures("shop")
def test_client_returns_services_operations_traces_and_calls(dsn):
    with Client(dsn) as client:
        assert client.services() == [
            ServiceSummary("frontend", 3, T0 - timedelta(minutes=30), T0 - timedelta(minutes=10)),
            ServiceSummary(
                "payment",
                1,
                T0 - timedelta(minutes=30) + timedelta(milliseconds=2),
                T0 - timedelta(minutes=20) + timedelta(milliseconds=2),
            ),
        ]
        assert client.services(since=T0 + timedelta(hours=1)) == []
        assert client.operations("frontend", "client") == [
            OperationSummary(
                "POST",
                "CLIENT",
                T0 - timedelta(minutes=30) + timedelta(milliseconds=1),
                T0 - timedelta(minutes=20) + timedelta(milliseconds=1),
            )
        ]
        # naive datetimes are UTC
        recent = client.operations("frontend", since=(T0 - timedelta(minutes=15)).replace(tzinfo=None))
        assert [o.name for o in recent] == ["GET /home"]

        (failing,) = client.find_traces(
            "payment", attributes={"http.response.status_code": 503, "deployment.environment": "prod"}, **WINDOW
        )
        assert failing == TraceSummary(
            trace_id(1), "frontend", "GET /checkout", T0 - timedelta(minutes=30), 3000.0, 3, 1, ["frontend", "payment"]
        )
        assert [t.trace_id for t in client.find_traces(**WINDOW)] == [trace_id(3), trace_id(2), trace_id(1)]
        assert [t.trace_id for t in client.find_traces(attributes={"error": True}, **WINDOW)] == [trace_id(1)]
        assert [t.trace_id for t in client.find_traces(status="error", **WINDOW)] == [trace_id(1)]
        assert [t.trace_id for t in client.find_traces(min_duration=timedelta(seconds=2), **WINDOW)] == [trace_id(1)]
        assert [
            t.trace_id
            for t in client.find_traces(
                "frontend",
                max_duration=timedelta(milliseconds=60),
                since=WINDOW["since"].replace(tzinfo=None),
                until=WINDOW["until"].replace(tzinfo=None),
            )
        ] == [trace_id(3)]
        assert [t.trace_id for t in client.find_traces(limit=1, **WINDOW)] == [trace_id(3)]

        assert client.service_dependencies(**WINDOW) == [ServiceCall("frontend", "payment", 2)]


def test_client_find_traces_searches_the_last_hour_by_default(dsn, conn):
    now = datetime.now(UTC)
    load(conn, home(1, now - timedelta(minutes=30) - T0), home(2, now - timedelta(hours=2) - T0))
    with Client(dsn) as client:
        assert [t.trace_id for t in client.find_traces()] == [trace_id(1)]
        assert [t.trace_id for t in client.find_traces("frontend", "GET /home")] == [trace_id(1)]
        assert [t.trace_id for t in client.find_traces(since=now - timedelta(hours=3))] == [trace_id(1), trace_id(2)]
        assert client.service_dependencies(now - timedelta(hours=3)) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.find_traces(status="broken", **WINDOW), "status must be ERROR, OK or UNSET, got 'broken'"),
        (
            lambda c: c.find_traces(min_duration=timedelta(seconds=2), max_duration=timedelta(seconds=1), **WINDOW),
            r"min_duration \(00:00:02\) is above max_duration \(00:00:01\)",
        ),
        (lambda c: c.find_traces(limit=0, **WINDOW), "lim must be between 1 and 10000, got 0"),
        (lambda c: c.operations("frontend", "sideways"), "span_kind must be one of server, client"),
        (lambda c: c.services(WINDOW["until"], WINDOW["since"]), r"since \(.*\) is after until"),
        (lambda c: c.service_dependencies(T0 - timedelta(days=40), T0), "at most 31 days"),
    ],
)
def test_client_refuses_bad_arguments(dsn, call, message):
    with Client(dsn) as client, pytest.raises(InvalidArgument, match=message):
        call(client)


@pytest.mark.usefixtures("shop")
def test_async_client_agrees_with_the_client(dsn):
    async def scenario():
        async with AsyncClient(dsn) as client:
            answers = (
                await client.services(**WINDOW),
                await client.operations("frontend", span_kind="SERVER"),
                await client.find_traces(operation="POST /charge", attributes={"retry": "false"}, **WINDOW),
                await client.service_dependencies(**WINDOW),
            )
            with pytest.raises(InvalidArgument, match="status must be ERROR, OK or UNSET"):
                await client.find_traces(status="broken")
            return answers

    with Client(dsn) as client:
        expected = (
            client.services(**WINDOW),
            client.operations("frontend", span_kind="SERVER"),
            client.find_traces(operation="POST /charge", attributes={"retry": "false"}, **WINDOW),
            client.service_dependencies(**WINDOW),
        )
    assert asyncio.run(scenario()) == expected
    assert [len(answer) for answer in expected] == [2, 2, 1, 1]
    assert isinstance(expected[2][0], TraceSummary) and expected[2][0].trace_id == trace_id(2)


# ---------------------------------------------------------------- flush


def test_cli_flush_moves_the_staged_rows_and_prints_the_counters(dsn, conn):
    stage_otlp(conn, home(1, timedelta(minutes=-2)) + checkout(2, timedelta(minutes=-1), 80))
    (line,) = cli("flush", dsn=dsn)
    assert re.fullmatch(r"flush: 4 spans, 0 logs, 0 metric points, 0 dead-lettered, 0 duplicates in \d+\.\d{3} s", line)
    stage_otlp(conn, home(3, timedelta(0)))
    run = cli_json("flush", dsn=dsn)
    assert isinstance(run, dict)
    assert (run["spans"], run["logs"], run["otlp_requests"], run["dead_lettered"]) == (1, 0, 1, 0)
    assert datetime.fromisoformat(run["started_at"]) <= datetime.now(UTC)
    assert run["duration"] >= 0
    assert found(conn, operation="GET /home") == [trace_id(3), trace_id(1)]
    assert cli("flush", dsn=dsn)[0].startswith("flush: 0 spans, 0 logs")


# ---------------------------------------------------------------- services


@pytest.mark.usefixtures("shop")
def test_cli_services_prints_a_table_and_json(dsn):
    lines = cli("services", *CLI_WINDOW, dsn=dsn)
    assert lines[0].split() == ["service", "operations", "first", "seen", "last", "seen"]
    assert lines[2].split() == ["frontend", "3", "2026-12-03", "11:30:00.000Z", "2026-12-03", "11:50:00.000Z"]
    assert lines[3].split() == ["payment", "1", "2026-12-03", "11:30:00.002Z", "2026-12-03", "11:40:00.002Z"]
    assert len(lines) == 4
    services = cli_json("services", *CLI_WINDOW, dsn=dsn)
    assert [(s["service"], s["operations"]) for s in services] == [("frontend", 3), ("payment", 1)]
    assert datetime.fromisoformat(services[0]["first_seen"]) == T0 - timedelta(minutes=30)
    assert cli("services", "--since", "2020-01-01", "--until", "2020-01-02", dsn=dsn) == [
        "no service has spans stored in that window"
    ]
    assert cli_json("services", "--since", "2020-01-01", "--until", "2020-01-02", dsn=dsn) == []


def test_cli_services_of_an_empty_store_says_so(dsn):
    assert cli("services", dsn=dsn) == ["no service has spans stored"]


# ---------------------------------------------------------------- find


def cli_found(dsn: str, *args: str) -> list[str]:
    return [t["trace_id"] for t in cli_json("find", *CLI_WINDOW, *args, dsn=dsn)]


@pytest.mark.usefixtures("shop")
def test_cli_find_prints_the_traces_newest_first(dsn):
    lines = cli("find", "--service", "payment", *CLI_WINDOW, dsn=dsn)
    assert lines[0].split() == [
        "trace", "root", "service", "root", "span", "start", "duration", "spans", "errors", "services"
    ]  # fmt: skip
    assert lines[2].split() == [
        trace_id(2), "frontend", "GET", "/checkout", "2026-12-03", "11:40:00.000Z", "100.0", "ms", "3", "0",
        "frontend,", "payment",
    ]  # fmt: skip
    assert lines[3].split() == [
        trace_id(1), "frontend", "GET", "/checkout", "2026-12-03", "11:30:00.000Z", "3,000.0", "ms", "3", "1",
        "frontend,", "payment",
    ]  # fmt: skip
    assert len(lines) == 4


@pytest.mark.usefixtures("shop")
def test_cli_find_json_is_a_list_of_traces(dsn):
    (trace,) = cli_json("find", "--status", "error", *CLI_WINDOW, dsn=dsn)
    assert trace == {
        "trace_id": trace_id(1),
        "root_service": "frontend",
        "root_name": "GET /checkout",
        "start_time": trace["start_time"],
        "duration_ms": 3000.0,
        "span_count": 3,
        "error_count": 1,
        "services": ["frontend", "payment"],
    }
    assert datetime.fromisoformat(trace["start_time"]) == T0 - timedelta(minutes=30)


@pytest.mark.usefixtures("shop")
def test_cli_find_takes_the_criteria_of_otel_find_traces(dsn, conn):
    tags = ["--tag", "http.response.status_code=503", "--tag", "deployment.environment=prod"]
    assert cli_found(dsn, *tags) == found(conn, attributes='{"http.response.status_code": "503"}') == [trace_id(1)]
    assert cli_found(dsn, "--tag", "error=true") == [trace_id(1)]
    assert cli_found(dsn, "--service", "payment", "--tag", "error=false") == [trace_id(2)]
    assert cli_found(dsn, "--operation", "GET /home") == [trace_id(3)]
    assert cli_found(dsn, "--min-duration", "2s") == found(conn, min_duration="2 seconds") == [trace_id(1)]
    assert cli_found(dsn, "--min-duration", "90ms", "--max-duration", "0.1s") == [trace_id(2)]
    assert cli_found(dsn, "--service", "frontend", "--max-duration", "60ms") == [trace_id(3)]
    assert cli_found(dsn, "--status", "ERROR") == [trace_id(1)]
    assert cli_found(dsn, "--limit", "2") == [trace_id(3), trace_id(2)]
    # a start time as the table prints it is a --since (or --until) too
    assert cli_found(dsn, "--since", "2026-12-03 11:40:00.000Z") == [trace_id(3), trace_id(2)]
    nothing = cli("find", "--service", "payment", "--min-duration", "1m", *CLI_WINDOW, dsn=dsn)
    assert nothing == ["no trace has a span started in the window that matches"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--min-duration", "soon"], 2, "argument --min-duration: expected a duration such as 250ms, 2s, 1.5s, 1m"),
        (["--max-duration=-1s"], 2, "expected a duration such as 250ms, 2s, 1.5s, 1m or 1h, got '-1s'"),
        (["--tag", "retry"], 2, "argument --tag: expected KEY=VALUE (http.response.status_code=503, say), got"),
        (["--since", "yesterday"], 2, "expected an age (30m, 6h, 2d) or a timestamp, got 'yesterday'"),
        (["--limit", "0"], 2, "argument --limit: expected a positive integer, got '0'"),
        (["--status", "broken"], 1, "otel-db: error: status must be ERROR, OK or UNSET, got 'broken'\n"),
        (["--limit", "20000"], 1, "otel-db: error: lim must be between 1 and 10000, got 20000\n"),
        (
            ["--min-duration", "2s", "--max-duration", "1s"],
            1,
            "otel-db: error: min_duration (00:00:02) is above max_duration (00:00:01)\n",
        ),
        (["--since", "2h", "--until", "3h"], 1, "otel-db: error: since ("),
    ],
)
def test_cli_find_with_bad_arguments_fails_without_traceback(dsn, args, code, message):
    stderr = refused("find", *args, dsn=dsn, code=code)
    assert message in stderr
    if code == 1:
        assert stderr.startswith("otel-db: error: ") and stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250ms", timedelta(milliseconds=250)),
        ("2s", timedelta(seconds=2)),
        ("1.5s", timedelta(seconds=1.5)),
        ("1m", timedelta(minutes=1)),
        ("1h", timedelta(hours=1)),
        (" 10 ms ", timedelta(milliseconds=10)),
    ],
)
def test_durations_are_a_number_and_a_unit(text, expected):
    assert _duration(text) == expected


# ---------------------------------------------------------------- trace


def test_cli_trace_prints_the_span_tree_then_the_logs(dsn, shop_with_logs):
    lines = cli("trace", trace_id(1), dsn=dsn)
    assert lines[0].split() == ["span", "service", "duration", "status"]
    assert [line.split() for line in lines[2:5]] == [
        ["GET", "/checkout", "frontend", "3,000.0", "ms", "UNSET"],
        ["·", "POST", "frontend", "2,998.0", "ms", "UNSET"],
        ["·", "·", "POST", "/charge", "payment", "10.0", "ms", "✗", "ERROR:", "gateway", "down"],
    ]
    assert lines[5:7] == ["", "logs:"]
    assert lines[7].split() == ["time", "severity", "service", "body"]
    assert lines[9].split()[:4] == ["2026-12-03", "11:30:00.005Z", "ERROR", "payment"]
    assert lines[9].endswith(GATEWAY_DOWN)
    # a long, multi-line body on one line, cut short
    assert lines[10].split()[:4] == ["2026-12-03", "11:30:00.011Z", "ERROR", "payment"]
    assert lines[10].endswith("payment failed at charge_card (gateway.py:10) at charge_card (gateway.py:11) at…")
    assert len(lines[10]) == lines[9].index(GATEWAY_DOWN) + 80
    assert len(lines) == 11


@pytest.mark.usefixtures("shop")
def test_cli_trace_without_logs_or_of_an_unknown_trace(dsn):
    lines = cli("trace", trace_id(2), dsn=dsn)
    assert lines[-3:] == ["", "logs:", "  (none)"]
    assert len(lines) == 2 + 3 + 3
    assert cli("trace", UNKNOWN, dsn=dsn) == [f"nothing stored of trace {UNKNOWN}"]
    assert cli("trace", "xyz", dsn=dsn) == ["nothing stored of trace xyz"]
    assert refused("trace", " ", dsn=dsn, code=1) == "otel-db: error: trace_id must be 32 hex digits, got ' '\n"


def test_cli_trace_json_holds_the_spans_and_the_logs(dsn, shop_with_logs):
    trace = cli_json("trace", trace_id(1).upper(), dsn=dsn)
    assert isinstance(trace, dict) and list(trace) == ["trace_id", "spans", "logs"]
    assert [(s["depth"], s["name"], s["status"]) for s in trace["spans"]] == [
        (0, "GET /checkout", "UNSET"),
        (1, "POST", "UNSET"),
        (2, "POST /charge", "ERROR"),
    ]
    assert trace["spans"][2]["attributes"] == {"http.response.status_code": 503, "retry": True}
    assert datetime.fromisoformat(trace["spans"][0]["start_time"]) == T0 - timedelta(minutes=30)
    assert [(r["body"], r["span_id"]) for r in trace["logs"]] == [
        (GATEWAY_DOWN, sid(trace_id(1), 3)),
        (STACK, sid(trace_id(1), 3)),
    ]
    assert cli_json("trace", UNKNOWN, dsn=dsn) == {"trace_id": UNKNOWN, "spans": [], "logs": []}


# ---------------------------------------------------------------- logs


def test_cli_logs_prints_the_matching_records(dsn, shop_with_logs):
    lines = cli("logs", "gateway", "down", *CLI_WINDOW, dsn=dsn)
    assert lines[0].split() == ["time", "severity", "service", "body"]
    assert lines[2].split()[:4] == ["2026-12-03", "11:30:00.005Z", "ERROR", "payment"]
    assert lines[2].endswith(GATEWAY_DOWN)
    assert len(lines) == 3
    assert len(cli("logs", "payment", "or", "home", dsn=dsn)) == 2 + 2
    assert cli("logs", '"home page"', "--service", "payment", dsn=dsn) == ["no log record matches '\"home page\"'"]
    assert cli("logs", "the", dsn=dsn) == ["no log record matches 'the'"]  # stop words only


def test_cli_logs_json_is_a_list_of_records(dsn, shop_with_logs):
    records = cli_json("logs", "charge_card", "--service", "payment", "--limit", "5", dsn=dsn)
    assert [(r["body"], r["severity_text"], r["trace_id"]) for r in records] == [(STACK, "ERROR", trace_id(1))]
    assert records[0]["rank"] > 0
    assert datetime.fromisoformat(records[0]["time"]) == T0 - timedelta(minutes=30) + timedelta(milliseconds=11)
    assert cli_json("logs", "nowhere", dsn=dsn) == []
    assert "otel-db: error: since (" in refused("logs", "x", "--since", "1h", "--until", "2h", dsn=dsn, code=1)
    assert "expected a positive integer, got '0'" in refused("logs", "x", "--limit", "0", dsn=dsn, code=2)
