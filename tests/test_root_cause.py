"""otel.root_cause(): the spans where a trace's failure originates, and its faces in Client, AsyncClient and the CLI."""

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from otel_db import AsyncClient, Client, InvalidArgument, RootCause
from tests.helpers import flush, scalar, stage_otlp
from tests.otlp import attribute
from tests.test_ingest import otel_db
from tests.test_roles import login_role  # noqa: F401 (a fixture)

# Just before midnight UTC: the propagation trace spans two daily partitions.
T0 = datetime(2026, 12, 1, 23, 59, 59, 500000, tzinfo=UTC)

PROPAGATION = "a1" * 16
TWO_CAUSES = "b2" * 16
STATUS_ONLY = "c3" * 16
HTTP_ONLY = "d4" * 16
ORPHANED = "e5" * 16
HEALTHY = "f6" * 16
UNKNOWN = "0" * 31 + "1"

INTERNAL, SERVER, CLIENT = 1, 2, 3


def nanos(seconds: float) -> str:
    return str(int((T0 + timedelta(seconds=seconds)).timestamp() * 1_000_000) * 1000)


def a_span(
    trace: str,
    span_id: int,
    parent: int | None,
    name: str,
    *,
    start: float,
    end: float,
    kind: int = INTERNAL,
    error: str | None = None,
    http_status: int | None = None,
    raised: tuple[str, str] | None = None,
) -> dict:
    """A span of `trace`; `error` sets status ERROR with that message ('' for none); `raised` an exception event."""
    body: dict = {
        "traceId": trace,
        "spanId": f"{span_id:016x}",
        "name": name,
        "kind": kind,
        "startTimeUnixNano": nanos(start),
        "endTimeUnixNano": nanos(end),
        "attributes": [],
        "status": {} if error is None else {"code": 2, "message": error},
    }
    if parent is not None:
        body["parentSpanId"] = f"{parent:016x}"
    if http_status is not None:
        body["attributes"].append(attribute("http.response.status_code", {"intValue": str(http_status)}))
    if raised is not None:
        body["events"] = [
            {
                "name": "exception",
                "timeUnixNano": nanos(end),
                "attributes": [
                    attribute("exception.type", {"stringValue": raised[0]}),
                    attribute("exception.message", {"stringValue": raised[1]}),
                ],
            }
        ]
    return body


def request(service: str, *spans: dict) -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [attribute("service.name", {"stringValue": service})]},
                "scopeSpans": [{"scope": {"name": "tests"}, "spans": list(spans)}],
            }
        ]
    }


def sid(n: int) -> str:
    return f"{n:016x}"


# A KeyError raised deep in checkout travels up: checkout's HTTP server span
# ends 500 (and records the same exception as it passes), the gateway's
# client span gets 502, the gateway's server span ends 500. Inventory, called
# by checkout before, answered fine.
GATEWAY = [
    a_span(PROPAGATION, 1, None, "GET /checkout", start=0, end=2, kind=SERVER, error="", http_status=500),
    a_span(PROPAGATION, 2, 1, "POST", start=0.1, end=1.9, kind=CLIENT, error="", http_status=502),
]
CHECKOUT = [
    a_span(
        PROPAGATION,
        3,
        2,
        "POST /api/orders",
        start=0.2,
        end=1.8,
        kind=SERVER,
        error="KeyError: 'sku-42'",
        http_status=500,
        raised=("KeyError", "'sku-42'"),
    ),
    a_span(PROPAGATION, 4, 3, "POST", start=0.3, end=0.6, kind=CLIENT, http_status=200),
    a_span(PROPAGATION, 6, 3, "price items", start=0.7, end=1.7),
    a_span(
        PROPAGATION,
        7,
        6,
        "lookup price",
        start=0.8,
        end=1.6,
        error="KeyError: 'sku-42'",
        raised=("KeyError", "'sku-42'"),
    ),
]
INVENTORY = [a_span(PROPAGATION, 5, 4, "POST /api/reservations", start=0.35, end=0.55, kind=SERVER, http_status=200)]


@pytest.fixture
def propagation(conn: psycopg.Connection) -> None:
    stage_otlp(conn, [request("gateway", *GATEWAY), request("checkout", *CHECKOUT), request("inventory", *INVENTORY)])
    flush(conn)


def root_cause(conn: psycopg.Connection, trace: str) -> list[dict]:
    cur = conn.execute("select * from otel.root_cause(%s)", (trace,))
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_an_error_propagating_through_three_services_is_traced_to_the_span_that_raised(conn, propagation):
    rows = root_cause(conn, PROPAGATION)
    assert [(r["rank"], r["span_id"], r["service_name"], r["name"]) for r in rows] == [
        (1, sid(7), "checkout", "lookup price")
    ]
    first = rows[0]
    assert (first["exception_type"], first["exception_message"]) == ("KeyError", "'sku-42'")
    assert (first["status_code"], first["status_message"], first["kind"]) == ("ERROR", "KeyError: 'sku-42'", "INTERNAL")
    assert (first["parent_span_id"], first["depth"], first["score"]) == (sid(6), 4, 3.0)
    assert first["reason"] == "raised KeyError; no failing descendant"
    assert first["start_time"] == T0 + timedelta(seconds=0.8)
    # the spans it travelled through all failed, each with a failing span below it
    assert (
        scalar(conn, "select count(*) from otel.traces where trace_id = %s and status_code = 'ERROR'", (PROPAGATION,))
        == 4
    )


def test_two_independent_causes_come_back_best_first(conn):
    stage_otlp(
        conn,
        [
            request(
                "frontend",
                a_span(TWO_CAUSES, 1, None, "POST /checkout", start=0, end=3, kind=SERVER, error="", http_status=500),
                a_span(TWO_CAUSES, 2, 1, "charge", start=0.1, end=1, kind=CLIENT, error="", http_status=502),
                a_span(TWO_CAUSES, 4, 1, "reserve", start=1.1, end=2.9, kind=CLIENT, error="", http_status=500),
            ),
            request(
                "payment",
                a_span(
                    TWO_CAUSES,
                    3,
                    2,
                    "charge card",
                    start=0.2,
                    end=0.9,
                    kind=SERVER,
                    error="card declined",
                    raised=("CardDeclined", "card 0002 declined"),
                ),
            ),
            request(
                "inventory",
                a_span(TWO_CAUSES, 5, 4, "POST /api/reservations", start=1.2, end=2.8, kind=SERVER, error=""),
                a_span(TWO_CAUSES, 6, 5, "UPDATE shop.stock", start=1.3, end=2.7, error="deadlock detected"),
            ),
        ],
    )
    flush(conn)
    rows = root_cause(conn, TWO_CAUSES)
    assert [(r["rank"], r["span_id"], r["service_name"], r["score"], r["reason"]) for r in rows] == [
        (1, sid(3), "payment", 3.0, "raised CardDeclined; no failing descendant"),
        (2, sid(6), "inventory", 2.0, "error status without exception; no failing descendant"),
    ]
    assert [(r["depth"], r["exception_type"], r["status_message"]) for r in rows] == [
        (2, "CardDeclined", "card declined"),
        (3, None, "deadlock detected"),
    ]


def test_an_error_status_without_exception_is_a_cause(conn):
    stage_otlp(
        conn,
        [
            request(
                "inventory",
                a_span(STATUS_ONLY, 1, None, "GET /stock", start=0, end=1, kind=SERVER, http_status=200),
                a_span(STATUS_ONLY, 2, 1, "SELECT shop.stock", start=0.1, end=0.9, kind=CLIENT, error="timeout"),
            )
        ],
    )
    flush(conn)
    rows = root_cause(conn, STATUS_ONLY)
    assert [(r["span_id"], r["depth"], r["exception_type"], r["status_message"], r["score"]) for r in rows] == [
        (sid(2), 1, None, "timeout", 2.0)
    ]
    assert rows[0]["reason"] == "error status without exception; no failing descendant"


def test_a_status_that_only_repeats_an_http_status_weighs_least(conn):
    stage_otlp(
        conn,
        [
            request(
                "frontend",
                a_span(HTTP_ONLY, 1, None, "GET /", start=0, end=5, kind=SERVER),
                # a 502 from a callee that sent no spans
                a_span(HTTP_ONLY, 2, 1, "GET", start=0.1, end=0.5, kind=CLIENT, error="", http_status=502),
                # a server span that ended 500 because its call got a 503 (which its caller did not mark failed)
                a_span(HTTP_ONLY, 3, 1, "GET /recommendations", start=1, end=2, kind=SERVER, error="", http_status=500),
                a_span(HTTP_ONLY, 4, 3, "GET", start=1.1, end=1.9, kind=CLIENT, http_status=503),
                # a failure that says what it is
                a_span(HTTP_ONLY, 5, 1, "publish order", start=3, end=4, kind=INTERNAL, error="queue full"),
            )
        ],
    )
    flush(conn)
    rows = root_cause(conn, HTTP_ONLY)
    assert [(r["span_id"], r["score"], r["reason"]) for r in rows] == [
        (sid(5), 2.0, "error status without exception; no failing descendant"),
        (sid(2), 1.0, "only an HTTP 502 status, no exception; the callee has no span in the trace"),
        (sid(3), 1.0, "error status mirrors the HTTP 503 of a descendant that did not fail"),
    ]


def test_a_span_that_raised_over_a_client_span_with_only_an_http_status_comes_first(conn):
    trace = "8" * 32
    stage_otlp(
        conn,
        [
            request(
                "checkout",
                a_span(
                    trace,
                    1,
                    None,
                    "POST /api/orders",
                    start=0,
                    end=1,
                    kind=SERVER,
                    error="OutOfStock: sku-42",
                    http_status=500,
                    raised=("OutOfStock", "sku-42"),
                ),
                a_span(trace, 2, 1, "POST", start=0.1, end=0.5, kind=CLIENT, error="", http_status=409),
            ),
            # inventory said 409 and, by the conventions for server spans, did not fail
            request("inventory", a_span(trace, 3, 2, "POST /api/reservations", start=0.2, end=0.4, kind=SERVER)),
        ],
    )
    flush(conn)
    assert [(r["span_id"], r["depth"], r["score"], r["reason"]) for r in root_cause(conn, trace)] == [
        (sid(1), 0, 3.0, "raised OutOfStock; nothing failing below it but an HTTP 409 status"),
        (sid(2), 1, 1.0, "only an HTTP 409 status, no exception; no failing descendant"),
    ]


def test_spans_that_arrive_in_two_flushes_are_read_together(conn):
    stage_otlp(conn, [request("gateway", *GATEWAY)])
    flush(conn)
    # Only the gateway's spans so far: its client span is where the failure is seen.
    assert [(r["span_id"], r["reason"]) for r in root_cause(conn, PROPAGATION)] == [
        (sid(2), "only an HTTP 502 status, no exception; the callee has no span in the trace")
    ]
    stage_otlp(conn, [request("checkout", *CHECKOUT), request("inventory", *INVENTORY)])
    flush(conn)
    assert scalar(conn, "select count(*) from otel.flush_runs where spans > 0") == 2
    # the trace crosses midnight: its spans are in two daily partitions
    assert scalar(conn, "select count(distinct tableoid) from otel.traces where trace_id = %s", (PROPAGATION,)) == 2
    rows = root_cause(conn, PROPAGATION)
    assert [(r["span_id"], r["depth"], r["exception_type"]) for r in rows] == [(sid(7), 4, "KeyError")]


def test_a_missing_parent_is_said_in_the_reason_and_depth_counts_from_below_it(conn):
    stage_otlp(
        conn,
        [
            request(
                "checkout",
                # the parent 0x63 (the gateway's client span) never arrived
                a_span(ORPHANED, 1, 99, "POST /api/orders", start=0, end=2, kind=SERVER, error="", http_status=500),
                a_span(ORPHANED, 2, 1, "price items", start=0.1, end=1.9),
                a_span(ORPHANED, 3, 2, "lookup price", start=0.2, end=1.8, error="", raised=("KeyError", "'x'")),
                a_span(ORPHANED, 4, 98, "publish order", start=2.5, end=3, error="", raised=("QueueFull", "full")),
            )
        ],
    )
    flush(conn)
    rows = root_cause(conn, ORPHANED)
    assert [(r["span_id"], r["depth"], r["reason"]) for r in rows] == [
        (
            sid(3),
            2,
            f"raised KeyError; no failing descendant; depth counted from span {sid(1)},"
            " whose parent is missing from the trace",
        ),
        (sid(4), 0, "raised QueueFull; no failing descendant; parent span missing from the trace"),
    ]


def test_a_trace_without_errors_and_an_unknown_trace_give_no_rows(conn):
    stage_otlp(
        conn,
        [
            request(
                "shop",
                a_span(HEALTHY, 1, None, "GET /", start=0, end=1, kind=SERVER, http_status=200),
                a_span(HEALTHY, 2, 1, "GET", start=0.1, end=0.5, kind=CLIENT, http_status=404),
                # a handled exception: status OK is final
                {
                    **a_span(HEALTHY, 3, 1, "retry", start=0.6, end=0.9, raised=("Timeout", "retrying")),
                    "status": {"code": 1},
                },
            )
        ],
    )
    flush(conn)
    assert scalar(conn, "select count(*) from otel.traces where trace_id = %s", (HEALTHY,)) == 3
    assert root_cause(conn, HEALTHY) == []
    assert root_cause(conn, UNKNOWN) == []


def test_an_exception_without_error_status_is_a_cause_that_weighs_less_than_a_raise(conn):
    trace = "9" * 32
    stage_otlp(
        conn,
        [
            request(
                "worker",
                a_span(trace, 1, None, "job", start=0, end=3),
                a_span(trace, 2, 1, "fetch", start=0.1, end=1, raised=("ConnectionReset", "peer reset")),
                a_span(trace, 3, 1, "store", start=1.1, end=2, error="", raised=("DiskFull", "no space")),
            )
        ],
    )
    flush(conn)
    assert [(r["span_id"], r["score"], r["reason"]) for r in root_cause(conn, trace)] == [
        (sid(3), 3.0, "raised DiskFull; no failing descendant"),
        (sid(2), 2.5, "recorded ConnectionReset with status UNSET; no failing descendant"),
    ]


@pytest.mark.parametrize(
    ("argument", "shown"),
    [
        (None, "null"),
        ("", "''"),
        ("   ", "'   '"),
        ("a1" * 15, f"'{'a1' * 15}'"),
        ("a1" * 16 + "00", f"'{'a1' * 16}00'"),
        ("g" * 32, f"'{'g' * 32}'"),
        ("'; drop table otel.traces; --", "'''; drop table otel.traces; --'"),
    ],
)
def test_a_trace_id_that_is_not_32_hex_digits_is_refused(conn, argument, shown):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        conn.execute("select * from otel.root_cause(%s)", (argument,))
    assert caught.value.sqlstate == "22023"
    assert caught.value.diag.message_primary == f"trace_id must be 32 hex digits, got {shown}"


def test_upper_case_and_padding_are_taken_as_stored(conn, propagation):
    assert [r["span_id"] for r in root_cause(conn, f"  {PROPAGATION.upper()} ")] == [sid(7)]


def test_otel_reader_may_call_it_and_public_may_not(conn, propagation, login_role):  # noqa: F811
    reader = login_role("otel_reader")
    assert reader.execute("select span_id from otel.root_cause(%s)", (PROPAGATION,)).fetchall() == [(sid(7),)]
    writer = login_role("otel_writer")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        writer.execute("select * from otel.root_cause(%s)", (PROPAGATION,))
    assert scalar(conn, "select has_function_privilege('public', 'otel.root_cause(text)', 'execute')") is False


def partition_scans(conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
    """(sequential, index) scans of each partition of otel.traces not yet reported to the statistics."""
    rows = conn.execute(
        "select relname, seq_scan, idx_scan from pg_stat_xact_user_tables"
        " where schemaname = 'otel' and relname like 'traces\\_p%'"
    )
    return {name: (seq, idx) for name, seq, idx in rows}


def test_the_lookup_reads_only_the_trace_s_partitions_by_its_index(conn, propagation):
    # Another day's partition holds spans too: the function must not read it.
    stage_otlp(conn, [request("other", a_span("77" * 16, 1, None, "x", start=-3 * 86400, end=-3 * 86400 + 1))])
    flush(conn)
    with conn.transaction():
        before = partition_scans(conn)
        assert [r["span_id"] for r in root_cause(conn, PROPAGATION)] == [sid(7)]
        after = partition_scans(conn)
    assert "traces_p20261128" in after
    scanned = {
        name: (seq - before.get(name, (0, 0))[0], idx - before.get(name, (0, 0))[1])
        for name, (seq, idx) in after.items()
        if (seq, idx) != before.get(name, (0, 0))
    }
    assert scanned == {"traces_p20261201": (0, 1), "traces_p20261202": (0, 1)}


# ---------------------------------------------------------------- Python and the CLI


def test_client_root_cause_returns_dataclasses(dsn, propagation):
    with Client(dsn) as client:
        causes = client.root_cause(PROPAGATION.upper())
        assert causes == [
            RootCause(
                rank=1,
                span_id=sid(7),
                parent_span_id=sid(6),
                depth=4,
                service="checkout",
                name="lookup price",
                kind="INTERNAL",
                status="ERROR",
                status_message="KeyError: 'sku-42'",
                exception_type="KeyError",
                exception_message="'sku-42'",
                start_time=T0 + timedelta(seconds=0.8),
                duration_ms=800.0,
                score=3.0,
                reason="raised KeyError; no failing descendant",
            )
        ]
        assert client.root_cause(UNKNOWN) == []
        with pytest.raises(InvalidArgument, match="trace_id must be 32 hex digits, got 'nope'"):
            client.root_cause("nope")
        assert client.health() is True


def test_async_client_root_cause_matches_the_client(dsn, propagation):
    async def scenario():
        async with AsyncClient(dsn) as client:
            return await client.root_cause(PROPAGATION)

    with Client(dsn) as client:
        assert asyncio.run(scenario()) == client.root_cause(PROPAGATION)


def test_cli_root_cause_prints_a_table(dsn, propagation):
    done = otel_db("root-cause", PROPAGATION, dsn=dsn)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    assert lines[0].split() == ["rank", "span", "id", "service", "span", "depth", "score", "error", "reason"]
    assert lines[2].split()[:7] == ["1", sid(7), "checkout", "lookup", "price", "4", "3.0"]
    assert "KeyError: 'sku-42'" in lines[2] and "raised KeyError; no failing descendant" in lines[2]
    assert len(lines) == 3


def test_cli_root_cause_of_a_healthy_or_unknown_trace_says_so(dsn):
    done = otel_db("root-cause", UNKNOWN, dsn=dsn)
    assert done.returncode == 0
    assert done.stdout.decode().strip() == f"no failing spans in trace {UNKNOWN} (or no such trace)"


def test_cli_root_cause_refuses_a_bad_id_without_traceback(dsn):
    done = otel_db("root-cause", "xyz", dsn=dsn)
    assert done.returncode == 1
    assert done.stderr.decode().strip() == "otel-db: error: trace_id must be 32 hex digits, got 'xyz'"
