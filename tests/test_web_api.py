"""The web page's reads in SQL (otel.metric_names, otel.dead_letter_reasons) and its endpoints under /api/otel/."""

import asyncio
import json
import socket
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bench import serve_throughput
from bench.serve_throughput import serving
from otel_db import jaeger
from tests.conftest import database_url
from tests.helpers import flush, free_port, stage_spans_with_ids
from tests.otlp import gauge, metrics_request, number_point
from tests.test_jaeger_api import QueryApi, query_api  # noqa: F401 (query_api is a fixture)
from tests.test_roles import login_role  # noqa: F401 (a fixture)
from tests.test_serve import WITHOUT_EMBEDDING_EXTRA, get, post, serve  # noqa: F401 (serve is a fixture)
from tests.test_web_page import minutes_ago, send_checkouts

NOW = datetime.now(UTC)
KINDS = "UNSPECIFIED, INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER"


# --------------------------------------------------------------------------- SQL


def test_metric_names_lists_the_metrics_with_points_in_the_window(conn):
    hour_ago = str(time.time_ns() - 3600 * 10**9)
    day_ago = str(time.time_ns() - 86400 * 10**9)
    request = metrics_request(
        gauge("queue.depth", number_point(3, hour_ago), number_point(4, str(time.time_ns()))),
        gauge("old.gauge", number_point(1, day_ago)),
    )
    conn.execute("insert into otel.otlp_staging (payload) values (%s)", (json.dumps(request),))
    flush(conn)
    names = conn.execute("select name, type, unit from otel.metric_names(now() - interval '2 hours', now())")
    assert names.fetchall() == [("queue.depth", "gauge", "1")]
    everything = conn.execute("select name from otel.metric_names(now() - interval '2 days', now())").fetchall()
    assert everything == [("old.gauge",), ("queue.depth",)]


@pytest.mark.parametrize(
    ("since", "until"), [(None, NOW), (NOW, None), (NOW, NOW - timedelta(hours=1)), ("-infinity", NOW)]
)
def test_metric_names_and_dead_letter_reasons_refuse_a_bad_window(conn, since, until):
    for function in ("otel.metric_names(%s, %s)", "otel.dead_letter_reasons(%s, %s)"):
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute(f"select * from {function}", (since, until))


def test_dead_letter_reasons_group_letters_by_rule_without_the_rejected_value(conn):
    stage_spans_with_ids(conn, ["bad-1", "bad-2", "bad-3"])
    stage_spans_with_ids(conn, ["4bf92f3577b34da6a3ce929d0e0e4736"], kind="SIDEWAYS")
    flush(conn)
    found = conn.execute(
        "select telemetry_type, reason, letters, pending, sample_letters from otel.dead_letter_reasons(samples => 2)"
    ).fetchall()
    assert [row[:4] for row in found] == [
        ("traces", 'trace_id "…" is not 32 hex digits', 3, 3),
        ("traces", f'kind "…" is not a span kind: 0-5 or {KINDS}', 1, 1),
    ]
    samples = found[0][4]
    assert [json.loads(s["raw_data"])["trace_id"] for s in samples] == ["bad-3", "bad-2"]  # the newest two
    assert samples[0]["error_message"] == 'trace_id "bad-3" is not 32 hex digits'
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="samples must be between 0 and 100"):
        conn.execute("select * from otel.dead_letter_reasons(samples => 101)")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ('kind "x:y" is not a span kind', 'kind "…" is not a span kind'),
        ("rejected record: invalid OTLP startTimeUnixNano: 12:30", "rejected record: invalid OTLP startTimeUnixNano"),
        (
            "end_time 2026-01-01 10:00:00+00 is before start_time 2026-01-01 11:00:00.5+00",
            "end_time … is before start_time …",
        ),
        ("name is missing", "name is missing"),
    ],
)
def test_dead_letter_reason_drops_the_rejected_value(conn, message, reason):
    assert conn.execute("select otel.dead_letter_reason(%s)", (message,)).fetchone()[0] == reason


def test_readers_see_dead_letter_reasons_but_not_the_queue(conn, login_role):  # noqa: F811 (the fixture)
    stage_spans_with_ids(conn, ["bad-1"])
    flush(conn)
    reader = login_role("otel_reader")
    assert reader.execute("select letters from otel.dead_letter_reasons()").fetchall() == [(1,)]
    assert reader.execute("select count(*) from otel.metric_names()").fetchone()[0] == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        reader.execute("select * from otel.telemetry_dlq")


# --------------------------------------------------------------------------- HTTP


def test_the_page_is_served_with_its_assets_and_a_content_security_policy(query_api):  # noqa: F811
    api = query_api()
    for path in ("/", f"/trace/{'a' * 32}", "/dead-letters", "/metrics"):
        page = get(api.url + path)
        assert page.status == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert b'<script src="/static/app.js" defer></script>' in page.body
    for asset, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        answer = get(f"{api.url}/static/{asset}")
        assert (answer.status, kind in answer.headers["Content-Type"]) == (200, True)
    for escape in ("../web.py", "%2e%2e/web.py", "..%2fweb.py", "%2e%2e%2fweb.py"):
        assert get(f"{api.url}/static/{escape}").status in (403, 404)


def test_find_traces_without_a_service_and_its_bad_parameters(query_api, serve, conn):  # noqa: F811
    api = query_api()
    otlp = serve("--no-query")
    failing, healthy = send_checkouts(otlp.url, minutes_ago(10), [True, False])
    flush(conn)
    found = api.data("/api/otel/traces?lookback=1h")
    assert [t["trace_id"] for t in found] == [healthy.trace_id, failing.trace_id]
    assert found[1] | {"start_time": None} == {
        "trace_id": failing.trace_id,
        "root_service": "checkout",
        "root_name": "POST /checkout",
        "start_time": None,
        "duration_ms": 45.0,
        "span_count": 3,
        "error_count": 3,
        "services": ["checkout", "payment"],
    }
    errors = "/api/otel/traces?" + urllib.parse.urlencode({"tags": json.dumps({"error": "true"}), "lookback": "1h"})
    assert [t["trace_id"] for t in api.data(errors)] == [failing.trace_id]
    assert "lookback" in api.refused("/api/otel/traces?lookback=soon", 400)
    assert "maxDuration" in api.refused("/api/otel/traces?minDuration=2s&maxDuration=1s", 400)


def test_trace_asides_answer_as_the_client_does(query_api, serve, conn):  # noqa: F811
    api = query_api()
    otlp = serve("--no-query")
    [failing] = send_checkouts(otlp.url, minutes_ago(10), [True])
    flush(conn)
    [cause] = api.data(f"/api/otel/traces/{failing.trace_id}/root-cause")
    assert (cause["span_id"], cause["exception_type"]) == (failing.span_ids["POST /charges"], "CardDeclined")
    assert api.data(f"/api/otel/traces/{failing.trace_id}/logs") == []
    assert api.data(f"/api/otel/traces/{failing.trace_id}/similar") == []  # nothing embedded (serve --no-embed)
    assert "traceID" in api.refused("/api/otel/traces/xyz/root-cause", 400)


def test_metric_series_and_its_bad_parameters(query_api, conn):  # noqa: F811
    api = query_api()
    now = time.time_ns()
    not_a_number = {"timeUnixNano": str(now), "asDouble": "NaN"}  # as the OTLP/JSON mapping writes it
    request = metrics_request(
        gauge("queue.depth", number_point(3, str(now - 60 * 10**9)), number_point(5, str(now))),
        gauge("broken.gauge", not_a_number),
    )
    conn.execute("insert into otel.otlp_staging (payload) values (%s)", (json.dumps(request),))
    flush(conn)
    assert [m["name"] for m in api.data("/api/otel/metrics")] == ["broken.gauge", "queue.depth"]
    series = api.data("/api/otel/metric-series?name=queue.depth&bucket=1h&lookback=2h&agg=max")
    assert [point["value"] for point in series if point["value"] is not None] in ([5.0], [3.0, 5.0])
    # JSON has no NaN: the page's script could not read the answer
    assert [point["value"] for point in api.data("/api/otel/metric-series?name=broken.gauge&agg=max")] == [None]
    assert "name" in api.refused("/api/otel/metric-series", 400)
    assert "agg" in api.refused("/api/otel/metric-series?name=queue.depth&agg=median", 400)
    assert "labels" in api.refused("/api/otel/metric-series?name=queue.depth&labels=[1]", 400)
    assert "duration" in api.refused("/api/otel/metric-series?name=queue.depth&bucket=often", 400)


def test_a_question_in_words_needs_the_model_and_says_so(query_api):  # noqa: F811
    api = query_api(prelude=WITHOUT_EMBEDDING_EXTRA)
    assert "parameter 'q' is required" in api.refused("/api/otel/similar?q=", 400)
    message = api.refused("/api/otel/similar?q=why+was+the+card+declined", 503)
    assert message == "questions in words need the embedding model, which this server cannot load (see its log)"


def test_every_read_needs_the_bearer_token_and_retry_the_admin_token(query_api, conn):  # noqa: F811
    api = query_api("--token", "reader-token", "--admin-token", "admin-token")
    reads = ("/api/otel/traces", "/api/otel/dead-letters", "/api/otel/metrics", f"/api/otel/traces/{'a' * 32}/logs")
    for path in reads:
        status, _ = api.answer(path)
        assert status == 401
        status, document = api.answer(path, token="reader-token")
        assert (status, document["errors"]) == (200, None)
    retry = f"{api.url}/api/otel/dead-letters/retry"
    assert post(retry, b"", headers={"Authorization": "Bearer reader-token"}).status == 401
    moved = post(retry, b"", headers={"Authorization": "Bearer admin-token"})
    assert (moved.status, json.loads(moved.body)["data"]) == (200, {"moved": 0, "pending": 0})


def test_retry_is_off_without_an_admin_token(query_api):  # noqa: F811
    api: QueryApi = query_api()
    refused = post(f"{api.url}/api/otel/dead-letters/retry", b"", headers={"Authorization": "Bearer anything"})
    assert refused.status == 403
    assert "--admin-token" in json.loads(refused.body)["errors"][0]["msg"]


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"), 504, "ran out of time"),
        (psycopg.errors.InvalidParameterValue("k must be between 1 and 1000"), 400, "k must be between"),
        (psycopg.OperationalError("connection to 10.0.0.1 refused"), 503, "did not answer"),
    ],
)
def test_database_errors_become_jaeger_error_envelopes(error, status, message):
    async def failing() -> web.Response:
        raise error

    response = asyncio.run(jaeger.answering(make_mocked_request("GET", "/api/otel/traces"), failing))
    document = json.loads(response.body)
    assert (response.status, document["errors"][0]["code"]) == (status, status)
    assert message in document["errors"][0]["msg"]
    assert "10.0.0.1" not in document["errors"][0]["msg"]


def test_retry_says_so_when_the_servers_role_is_not_an_admin(conn, monkeypatch):
    monkeypatch.setattr(serve_throughput, "free_port", free_port)  # its HTTP and gRPC ports too, as the tests pick them
    role = f"test_web_{uuid.uuid4().hex[:8]}"
    conn.execute(f"create role {role} login in role otel_writer, otel_reader")
    url = database_url(conn.info.dbname).replace("postgres@", f"{role}@")
    admin = {"Authorization": "Bearer admin-token"}
    try:
        port = free_port()
        with serving(url, "--no-flush", "--admin-token", "admin-token", query_port=port):
            refused = post(f"http://127.0.0.1:{port}/api/otel/dead-letters/retry", b"", headers=admin)
    finally:
        conn.execute(f"drop role {role}")
    assert refused.status == 403
    message = json.loads(refused.body)["errors"][0]["msg"]
    assert message == "the database role of `otel-db serve` is not a member of otel_admin"


def test_a_client_that_goes_away_cancels_its_query(query_api, dsn, conn):  # noqa: F811
    """A search waits behind a lock; the client hangs up; the server cancels the search rather than finish it."""
    api = query_api()
    waiting = (
        "select count(*) from pg_stat_activity"
        " where datname = current_database() and application_name = 'otel-db serve (query)'"
        " and wait_event_type = 'Lock'"
    )
    with psycopg.connect(dsn) as blocker:
        blocker.execute("lock table otel.trace_summaries in access exclusive mode")
        port = urllib.parse.urlsplit(api.url).port
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"GET /api/otel/traces?lookback=1h HTTP/1.1\r\nHost: otel-db\r\n\r\n")
            deadline = time.monotonic() + 10
            while conn.execute(waiting).fetchone()[0] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert conn.execute(waiting).fetchone()[0] == 1
        deadline = time.monotonic() + 10
        while conn.execute(waiting).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert conn.execute(waiting).fetchone()[0] == 0  # cancelled while the lock is still held
        blocker.rollback()
