"""otel.compare_traces(), otel.explain_trace() and otel.suspect_attributes(), and their faces in Python and the CLI."""

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from otel_db import AsyncClient, Client, InvalidArgument, SuspectAttribute, TraceDifference, TraceExplanation
from tests.helpers import flush, scalar, stage_otlp
from tests.otlp import attribute
from tests.test_ingest import otel_db
from tests.test_roles import login_role  # noqa: F401 (a fixture)

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
INTERNAL, SERVER, CLIENT = 1, 2, 3
UNKNOWN = "e" * 32


def trace_id(n: int) -> str:
    return f"{n:032x}"


def nanos(at: datetime) -> str:
    return str(int(at.timestamp() * 1_000_000) * 1000)


def value(v: object) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    return {"stringValue": str(v)}


def a_span(
    trace: str,
    span_id: int,
    parent: int | None,
    name: str,
    start: datetime,
    ms: tuple[float, float],
    *,
    kind: int = INTERNAL,
    attributes: dict | None = None,
    error: str | None = None,
    raised: str | None = None,
) -> dict:
    """A span from `ms[0]` to `ms[1]` milliseconds after `start`; `error` sets status ERROR with that message."""
    body: dict = {
        "traceId": trace,
        "spanId": f"{int(trace[-8:], 16) * 100 + span_id:016x}",
        "name": name,
        "kind": kind,
        "startTimeUnixNano": nanos(start + timedelta(milliseconds=ms[0])),
        "endTimeUnixNano": nanos(start + timedelta(milliseconds=ms[1])),
        "attributes": [attribute(k, value(v)) for k, v in (attributes or {}).items()],
        "status": {} if error is None else {"code": 2, "message": error},
    }
    if parent is not None:
        body["parentSpanId"] = f"{int(trace[-8:], 16) * 100 + parent:016x}"
    if raised is not None:
        body["events"] = [
            {
                "name": "exception",
                "timeUnixNano": nanos(start + timedelta(milliseconds=ms[1])),
                "attributes": [
                    attribute("exception.type", {"stringValue": raised}),
                    attribute("exception.message", {"stringValue": error or raised}),
                ],
            }
        ]
    return body


def sid(trace: str, n: int) -> str:
    return f"{int(trace[-8:], 16) * 100 + n:016x}"


def request(service: str, *spans: dict) -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [attribute("service.name", {"stringValue": service})]},
                "scopeSpans": [{"scope": {"name": "tests"}, "spans": list(spans)}],
            }
        ]
    }


def checkout(
    n: int,
    *,
    declined: bool = False,
    stock_ms: float = 20,
    provider: str = "stripe",
    card: str = "4242",
    sku: str = "6f1c2a9e-0d4b-4c8e-9a57-3b2f1e0c7d64",
    retry: bool = False,
    route: str = "/checkout",
    request_id: str | None = None,
) -> list[dict]:
    """A checkout: frontend calls payment (which charges a card) and inventory (which reads the stock).

    `declined`: the charge raises CardDeclined and the error travels up to
    the root; `stock_ms`: how long inventory's query takes; `retry`: the
    frontend retries the payment call (a span with a child of its own);
    `request_id`: an attribute of payment's server span, an id that differs
    from trace to trace.
    """
    trace = trace_id(n)
    start = T0 + timedelta(minutes=n)
    fail = "card declined" if declined else None
    frontend = [
        a_span(
            trace,
            1,
            None,
            "POST /checkout",
            start,
            (0, 200 + stock_ms),
            kind=SERVER,
            attributes={"http.route": route, "http.response.status_code": 402 if declined else 200},
            error="" if declined else None,
        ),
        a_span(trace, 2, 1, "POST", start, (1, 90), kind=CLIENT, error="" if declined else None),
        a_span(trace, 5, 1, "GET", start, (100, 110 + stock_ms), kind=CLIENT),
    ]
    if retry:
        frontend.append(a_span(trace, 8, 1, "retry payment", start, (91, 99)))
        frontend.append(a_span(trace, 9, 8, "POST", start, (92, 98), kind=CLIENT, attributes={"retry": 1}))
    payment = [
        a_span(
            trace,
            3,
            2,
            "POST /charge",
            start,
            (2, 88),
            kind=SERVER,
            attributes={"payment.provider": provider} | ({"request.id": request_id} if request_id else {}),
            error=fail,
        ),
        a_span(
            trace, 4, 3, f"charge card {card}", start, (3, 80), error=fail, raised="CardDeclined" if declined else None
        ),
    ]
    inventory = [
        a_span(trace, 6, 5, f"GET /stock/{sku}", start, (101, 109 + stock_ms), kind=SERVER),
        a_span(trace, 7, 6, "SELECT stock", start, (102, 108 + stock_ms), kind=CLIENT),
    ]
    return [request("frontend", *frontend), request("payment", *payment), request("inventory", *inventory)]


def load(conn: psycopg.Connection, *traces: list[dict]) -> None:
    stage_otlp(conn, [r for t in traces for r in t])
    flush(conn)


def rows(conn: psycopg.Connection, query: str, params: tuple) -> list[dict]:
    cur = conn.execute(query, params)
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def compare(conn: psycopg.Connection, a: str, b: str) -> list[dict]:
    return rows(conn, "select * from otel.compare_traces(%s, %s)", (a, b))


def explain(conn: psycopg.Connection, trace: str, k: int = 5) -> list[dict]:
    return rows(conn, "select * from otel.explain_trace(%s, %s)", (trace, k))


# ---------------------------------------------------------------- compare_traces


def test_two_traces_of_the_same_shape_align_span_for_span_without_differences(conn):
    load(conn, checkout(1), checkout(2))
    result = compare(conn, trace_id(1), trace_id(2))
    assert len(result) == 7
    assert all(r["differences"] == [] and r["differing_attributes"] == {} for r in result)
    assert {(r["span_id_a"], r["span_id_b"]) for r in result} == {
        (sid(trace_id(1), n), sid(trace_id(2), n)) for n in range(1, 8)
    }
    assert all(r["duration_ratio"] == pytest.approx(1.0) for r in result)
    # in tree order: the root first, with an empty path
    first = result[0]
    assert (first["rank"], first["service_name"], first["name"], first["path"], first["depth"]) == (
        1,
        "frontend",
        "POST /checkout",
        [],
        0,
    )
    charge = next(r for r in result if r["span_id_a"] == sid(trace_id(1), 4))
    assert charge["path"] == ["frontend/POST /checkout", "frontend/POST", "payment/POST /charge"]
    assert charge["depth"] == 3


def test_the_failing_span_and_its_exception_come_first(conn):
    load(conn, checkout(1), checkout(2, declined=True))
    result = compare(conn, trace_id(1), trace_id(2))
    first = result[0]
    assert (first["service_name"], first["name"], first["span_id_b"]) == (
        "payment",
        "charge card <num>",
        sid(trace_id(2), 4),
    )
    assert (first["status_a"], first["status_b"], first["status_message_b"]) == ("UNSET", "ERROR", "card declined")
    assert (first["exception_type_a"], first["exception_type_b"]) == (None, "CardDeclined")
    assert first["differences"] == ["status", "exception"]
    # then the spans the error travelled up through, deepest first
    assert [(r["name"], r["depth"]) for r in result[1:4]] == [("POST /charge", 2), ("POST", 1), ("POST /checkout", 0)]
    assert all("status" in r["differences"] for r in result[1:4])
    assert result[3]["differing_attributes"] == {"http.response.status_code": [200, 402]}
    assert all(r["differences"] == [] for r in result[4:])


def test_a_span_present_in_one_trace_only_is_said_with_its_subtree(conn):
    load(conn, checkout(1), checkout(2, retry=True))
    result = compare(conn, trace_id(1), trace_id(2))
    only = [r for r in result if r["differences"] == ["only in b"]]
    assert [(r["name"], r["span_id_a"], r["span_id_b"], r["depth"]) for r in only] == [
        ("retry payment", None, sid(trace_id(2), 8), 1),
        ("POST", None, sid(trace_id(2), 9), 2),
    ]
    assert [r["rank"] for r in only] == [1, 2]
    assert only[1]["path"] == ["frontend/POST /checkout", "frontend/retry payment"]
    assert (only[0]["status_a"], only[0]["duration_ms_a"], only[0]["duration_ratio"]) == (None, None, None)
    assert only[0]["differing_attributes"] is None
    # the other way round they are only in a
    reverse = compare(conn, trace_id(2), trace_id(1))
    assert [(r["name"], r["differences"]) for r in reverse[:2]] == [
        ("retry payment", ["only in a"]),
        ("POST", ["only in a"]),
    ]


def test_a_slower_span_comes_with_its_ratio(conn):
    load(conn, checkout(1, stock_ms=20), checkout(2, stock_ms=320))
    result = compare(conn, trace_id(1), trace_id(2))
    select = next(r for r in result if r["name"] == "SELECT stock")
    # 6 + 20 ms against 6 + 320 ms
    assert select["duration_ratio"] == pytest.approx(326 / 26)
    assert (select["duration_ms_a"], select["duration_ms_b"]) == (pytest.approx(26), pytest.approx(326))
    assert select["differences"] == ["slower"]
    slower = [r["name"] for r in result if r["differences"] == ["slower"]]
    assert slower == ["POST /checkout", "GET", "GET /stock/<uuid>", "SELECT stock"]
    assert [r["rank"] for r in result if r["differences"] == ["slower"]] == [1, 2, 3, 4]
    # b faster than a: the same spans, the other way
    assert [r["name"] for r in compare(conn, trace_id(2), trace_id(1)) if r["differences"] == ["faster"]] == slower


def test_attributes_that_differ_come_as_pairs(conn):
    load(conn, checkout(1, request_id="req-1"), checkout(2, provider="acme", route="/checkout/v2", request_id="req-2"))
    result = compare(conn, trace_id(1), trace_id(2))
    differing = {r["name"]: r["differing_attributes"] for r in result if r["differences"] == ["attributes"]}
    assert differing == {
        "POST /checkout": {"http.route": ["/checkout", "/checkout/v2"]},
        "POST /charge": {"payment.provider": ["stripe", "acme"], "request.id": ["req-1", "req-2"]},
    }


def test_an_attribute_on_one_side_only_pairs_with_null(conn):
    load(conn, checkout(1), checkout(2))
    conn.execute(
        "update otel.traces set attributes = attributes || '{\"feature.flag\": true}' where span_id = %s",
        (sid(trace_id(2), 6),),
    )
    result = compare(conn, trace_id(1), trace_id(2))
    assert [(r["name"], r["differing_attributes"]) for r in result if r["differences"]] == [
        ("GET /stock/<uuid>", {"feature.flag": [None, True]})
    ]


def test_names_with_ids_in_them_still_align(conn):
    load(
        conn,
        checkout(1, card="4242", sku="6f1c2a9e-0d4b-4c8e-9a57-3b2f1e0c7d64"),
        checkout(2, card="0005", sku="0b8e77c2-5a1f-4d3c-8e9b-1a2b3c4d5e6f"),
    )
    stored = scalar(
        conn,
        "select array_agg(name order by name) from otel.traces where span_id in (%s, %s)",
        (sid(trace_id(1), 4), sid(trace_id(2), 4)),
    )
    assert stored == ["charge card 0005", "charge card 4242"]
    result = compare(conn, trace_id(1), trace_id(2))
    assert len(result) == 7
    assert all(r["span_id_a"] and r["span_id_b"] and r["differences"] == [] for r in result)
    assert {r["name"] for r in result} >= {"charge card <num>", "GET /stock/<uuid>"}


def test_repeated_operations_are_matched_in_start_order(conn):
    a, b = trace_id(1), trace_id(2)

    def trace(trace: str, second_ms: float) -> list[dict]:
        start = T0 + timedelta(minutes=int(trace, 16))
        return [
            request(
                "inventory",
                a_span(trace, 1, None, "GET /stock", start, (0, 500), kind=SERVER),
                a_span(trace, 2, 1, "SELECT stock", start, (10, 20), kind=CLIENT),
                a_span(trace, 3, 1, "SELECT stock", start, (30, 30 + second_ms), kind=CLIENT),
            )
        ]

    load(conn, trace(a, 10), trace(b, 100))
    result = compare(conn, a, b)
    pairs = {(r["span_id_a"], r["span_id_b"]): r["differences"] for r in result}
    assert pairs == {
        (sid(a, 1), sid(b, 1)): [],
        (sid(a, 2), sid(b, 2)): [],
        (sid(a, 3), sid(b, 3)): ["slower"],
    }


def test_a_trace_compared_with_an_unknown_trace_gives_no_rows(conn):
    load(conn, checkout(1))
    assert compare(conn, trace_id(1), UNKNOWN) == []
    assert compare(conn, UNKNOWN, trace_id(1)) == []
    assert len(compare(conn, trace_id(1), trace_id(1).upper())) == 7


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (None, "a1" * 16, "trace_id must be 32 hex digits, got null"),
        ("a1" * 16, "xyz", "b must be a trace id of 32 hex digits, got 'xyz'"),
        ("a1" * 15, "a1" * 16, f"a must be a trace id of 32 hex digits, got '{'a1' * 15}'"),
    ],
)
def test_compare_traces_refuses_ids_that_are_not_32_hex_digits(conn, a, b, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        compare(conn, a, b)
    assert caught.value.sqlstate == "22023"
    assert caught.value.diag.message_primary == message


# ---------------------------------------------------------------- explain_trace


@pytest.fixture
def declined_among_good(conn) -> str:
    """Trace 10 is declined; 1..8 of the same root operation went well, 9 failed otherwise; 20 is another operation."""
    good = [checkout(n, request_id=f"req-{n}") for n in range(1, 9)]
    other_failure = checkout(9, stock_ms=30)
    for span in other_failure[2]["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        span["status"] = {"code": 2, "message": "stock unavailable"}
    elsewhere = [
        request("frontend", a_span(trace_id(20), 1, None, "GET /cart", T0 + timedelta(minutes=10), (0, 5), kind=SERVER))
    ]
    load(conn, *good, other_failure, elsewhere, checkout(10, declined=True, request_id="req-10"))
    return trace_id(10)


def test_explain_trace_puts_the_span_that_raised_first_with_its_count(conn, declined_among_good):
    result = explain(conn, declined_among_good)
    first = result[0]
    assert (first["rank"], first["holds_in"], first["compared"], first["kind"]) == (1, 5, 5, "failed")
    assert (first["service_name"], first["name"], first["span_id"]) == (
        "payment",
        "charge card <num>",
        sid(declined_among_good, 4),
    )
    assert first["exception_type"] == "CardDeclined"
    assert first["description"] == "span payment/charge card <num> failed with CardDeclined in this trace only"
    # the spans the error travelled up through come next, then the attribute the failure changed
    assert [(r["kind"], r["name"], r["holds_in"]) for r in result[1:]] == [
        ("failed", "POST /charge", 5),
        ("failed", "POST", 5),
        ("failed", "POST /checkout", 5),
        ("attribute", "POST /checkout", 5),
    ]
    assert result[4]["description"] == (
        "attribute http.response.status_code of frontend/POST /checkout differs: 402 here, 200 in the others"
    )
    assert (result[4]["attribute"], result[4]["value_here"], result[4]["value_elsewhere"]) == (
        "http.response.status_code",
        402,
        200,
    )
    # request.id differs from every neighbour, but no two neighbours agree: not a difference that holds
    assert not [r for r in result if r["attribute"] == "request.id"]


def test_explain_trace_compares_with_the_nearest_healthy_traces_of_the_same_root_operation(conn, declined_among_good):
    assert [r["compared"] for r in explain(conn, declined_among_good, k=100)][:1] == [8]
    assert [r["holds_in"] for r in explain(conn, declined_among_good, k=2)][:1] == [2]


def recorded_exception(n: int, exception_type: str | None, message: str | None = None) -> list[dict]:
    """A checkout whose card charge recorded an exception event and left its status UNSET (no span is ERROR)."""
    requests = checkout(n)
    [charge] = [
        s for r in requests for s in r["resourceSpans"][0]["scopeSpans"][0]["spans"] if s["name"] == "charge card 4242"
    ]
    described = {"exception.type": exception_type, "exception.message": message}
    charge["events"] = [
        {
            "name": "exception",
            "timeUnixNano": charge["endTimeUnixNano"],
            "attributes": [attribute(k, {"stringValue": v}) for k, v in described.items() if v is not None],
        }
    ]
    return requests


def test_explain_trace_counts_a_recorded_exception_as_root_cause_does(conn):
    # Trace 7 only recorded an exception (status UNSET), as trace 6 did; 1..5 went well and took as long:
    # as a slow trace it would have had no neighbours at all.
    load(conn, *[checkout(n) for n in range(1, 6)], recorded_exception(6, "Timeout"))
    load(conn, recorded_exception(7, "CardDeclined"))
    assert [r[0] for r in conn.execute("select name from otel.root_cause(%s)", (trace_id(7),))] == ["charge card 4242"]
    result = explain(conn, trace_id(7))
    # failing, so compared with the healthy traces whatever their duration; trace 6 failed too: not one of them
    assert (result[0]["kind"], result[0]["name"], result[0]["compared"]) == ("failed", "charge card <num>", 5)
    assert result[0]["description"] == "span payment/charge card <num> failed with CardDeclined in this trace only"
    assert not [r for r in result if r["kind"] in ("slower", "faster")]


def test_an_exception_event_without_a_type_is_a_failure_in_comparisons_too(conn):
    # The semantic conventions allow an exception event with a message and no type: root_cause names the span,
    # so explain_trace must say it failed, and compare_traces must see the exception on one side only.
    load(conn, *[checkout(n) for n in range(1, 6)], recorded_exception(7, None, "card limit reached"))
    assert [r[0] for r in conn.execute("select name from otel.root_cause(%s)", (trace_id(7),))] == ["charge card 4242"]
    result = explain(conn, trace_id(7))
    assert (result[0]["kind"], result[0]["name"], result[0]["compared"]) == ("failed", "charge card <num>", 5)
    assert result[0]["exception_type"] is None
    [charge] = [r for r in compare(conn, trace_id(1), trace_id(7)) if r["name"] == "charge card <num>"]
    assert "exception" in charge["differences"]
    assert charge["rank"] == 1


def test_compare_traces_ranks_a_span_that_only_recorded_an_exception_with_the_error_statuses(conn):
    # Trace 8's card charge recorded an exception (status UNSET) and its stock query ended ERROR; in trace 1
    # both went well. Both failed in trace 8 only: the span that raised comes first, as root_cause has it.
    failing = recorded_exception(8, None, "card limit reached")
    [stock] = [
        s for r in failing for s in r["resourceSpans"][0]["scopeSpans"][0]["spans"] if s["name"] == "SELECT stock"
    ]
    stock["status"] = {"code": 2, "message": "lock wait timeout"}
    load(conn, checkout(1), failing)
    ranked = [(r["name"], r["differences"]) for r in compare(conn, trace_id(1), trace_id(8))][:2]
    assert ranked == [("charge card <num>", ["exception"]), ("SELECT stock", ["status"])]


def test_explain_trace_of_a_slow_trace_names_the_slow_span(conn):
    load(conn, *[checkout(n) for n in range(1, 7)], checkout(7, stock_ms=820), checkout(8, stock_ms=2000))
    result = explain(conn, trace_id(7))
    assert result[0]["compared"] == 5  # trace 8 took longer: not a neighbour of a slow trace
    slower = [(r["kind"], r["name"], r["holds_in"]) for r in result]
    assert slower == [
        ("slower", "POST /checkout", 5),
        ("slower", "GET", 5),
        ("slower", "GET /stock/<uuid>", 5),
        ("slower", "SELECT stock", 5),
    ]
    assert result[3]["duration_ratio"] == pytest.approx(826 / 26)
    assert result[3]["description"] == "inventory/SELECT stock took 31.8\u00d7 as long"


def test_explain_trace_says_which_spans_are_here_only(conn):
    # a millisecond slower than the others: they are its neighbours
    load(conn, *[checkout(n) for n in range(1, 5)], checkout(5, retry=True, stock_ms=21))
    result = explain(conn, trace_id(5), k=4)
    assert [(r["kind"], r["name"], r["holds_in"], r["compared"], r["description"]) for r in result] == [
        ("only here", "retry payment", 4, 4, "span frontend/retry payment present only here"),
    ]


def test_explain_trace_with_nothing_to_compare_with_gives_no_rows(conn):
    load(conn, checkout(1, declined=True), checkout(2, declined=True))
    assert explain(conn, trace_id(1)) == []  # the only other trace failed too
    assert explain(conn, UNKNOWN) == []
    load(conn, checkout(3))
    assert explain(conn, trace_id(3)) == []  # healthy, and none was faster


@pytest.mark.parametrize(
    ("trace", "k", "message"),
    [
        ("nope", 5, "trace_id must be 32 hex digits, got 'nope'"),
        (None, 5, "trace_id must be 32 hex digits, got null"),
        ("a1" * 16, 0, "k must be between 1 and 100, got 0"),
        ("a1" * 16, 101, "k must be between 1 and 100, got 101"),
        ("a1" * 16, None, "k must be between 1 and 100, got null"),
    ],
)
def test_explain_trace_refuses_bad_arguments(conn, trace, k, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        explain(conn, trace, k)
    assert caught.value.sqlstate == "22023"
    assert caught.value.diag.message_primary == message


# ---------------------------------------------------------------- suspect_attributes


@pytest.fixture
def planted(conn) -> None:
    """payment's POST /charge: acme in 18 of 20 failures and 5 of 100 successes; request.id unique to each span."""
    spans = []
    for n in range(120):
        failing = n < 20
        provider = "acme" if (failing and n < 18) or (not failing and n < 25) else "stripe"
        spans.append(
            a_span(
                trace_id(1000 + n),
                3,
                None,
                "POST /charge",
                T0 + timedelta(seconds=n),
                (0, 10),
                kind=SERVER,
                attributes={
                    "payment.provider": provider,
                    "request.id": f"req-{n}",
                    "http.request.method": "POST",
                    "retry": n % 2 == 0,
                },
                error="declined" if failing else None,
            )
        )
    spans.append(
        a_span(trace_id(2000), 1, None, "GET /refunds", T0, (0, 1), attributes={"payment.provider": "acme"}, error="x")
    )
    load(conn, [request("payment", *spans)])


def suspects(conn, service, operation, since, until) -> list[dict]:
    return rows(conn, "select * from otel.suspect_attributes(%s, %s, %s, %s)", (service, operation, since, until))


def test_suspect_attributes_finds_the_planted_value_first(conn, planted):
    result = suspects(conn, "payment", "POST /charge", T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    first = result[0]
    assert (first["key"], first["value"], first["failing"], first["others"]) == ("payment.provider", "acme", 18, 5)
    assert (first["failing_share"], first["others_share"]) == (pytest.approx(0.9), pytest.approx(0.05))
    assert first["score"] > 5
    # a value seen once (an id) scores low; values as common in the others are left out
    ids = [r for r in result if r["key"] == "request.id"]
    assert ids and all(r["score"] < 2 for r in ids)
    assert not [r for r in result if r["key"] == "http.request.method" or r["value"] == "stripe"]
    assert [r["score"] for r in result] == sorted((r["score"] for r in result), reverse=True)
    assert len(result) <= 50


def test_suspect_attributes_of_all_operations_and_an_empty_window(conn, planted):
    everything = suspects(conn, "payment", None, T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert (everything[0]["key"], everything[0]["value"], everything[0]["failing"]) == ("payment.provider", "acme", 19)
    assert suspects(conn, "payment", None, T0 - timedelta(hours=2), T0 - timedelta(hours=1)) == []
    assert suspects(conn, "nobody", None, T0 - timedelta(hours=1), T0 + timedelta(hours=1)) == []


def slow_quotes(conn) -> None:
    """shipping's GET /quote: 10 of 100 spans take 500 ms, 9 of them with cache=miss; 5 of the 90 fast ones miss."""
    spans = [
        a_span(
            trace_id(3000 + n),
            1,
            None,
            "GET /quote",
            T0 + timedelta(seconds=n),
            (0, 500 if n < 10 else 10),
            kind=SERVER,
            attributes={"cache": "miss" if n < 9 or 10 <= n < 15 else "hit", "request.id": f"q-{n}"},
        )
        for n in range(100)
    ]
    load(conn, [request("shipping", *spans)])


def test_suspect_attributes_of_slow_spans(conn):
    slow_quotes(conn)
    window = (T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    result = rows(conn, "select * from otel.suspect_attributes('shipping', 'GET /quote', %s, %s, 0.9)", window)
    first = result[0]
    assert (first["key"], first["value"], first["failing"], first["others"]) == ("cache", "miss", 9, 5)
    assert first["score"] > 3
    # none of them failed: by status there is nothing to find
    assert rows(conn, "select * from otel.suspect_attributes('shipping', 'GET /quote', %s, %s)", window) == []


@pytest.mark.parametrize("percentile", [0, 1, -0.5, 1.5, float("nan")])
def test_suspect_attributes_refuses_a_percentile_outside_0_to_1(conn, percentile):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        conn.execute("select * from otel.suspect_attributes('a', null, now(), now(), %s)", (percentile,))
    assert caught.value.diag.message_primary.startswith("slower_than_percentile must be between 0 and 1")


@pytest.mark.parametrize(
    ("service", "since", "until", "message"),
    [
        (None, T0, T0 + timedelta(hours=1), "service must be a service name, got null"),
        ("payment", None, T0, "since must be a timestamp, got null"),
        (
            "payment",
            T0 + timedelta(hours=1),
            T0,
            "since (2026-12-03 13:00:00+00) is after until (2026-12-03 12:00:00+00)",
        ),
        (
            "payment",
            T0 - timedelta(days=32),
            T0,
            "the window from since to until must be at most 31 days, got 32 days",
        ),
    ],
)
def test_suspect_attributes_refuses_bad_arguments(conn, service, since, until, message):
    conn.execute("set timezone = 'UTC'")
    with pytest.raises(psycopg.errors.InvalidParameterValue) as caught:
        suspects(conn, service, None, since, until)
    assert caught.value.sqlstate == "22023"
    assert caught.value.diag.message_primary == message


# ---------------------------------------------------------------- privileges


def test_otel_reader_may_call_all_three_and_public_may_not(conn, declined_among_good, login_role):  # noqa: F811
    reader = login_role("otel_reader")
    assert len(reader.execute("select * from otel.compare_traces(%s, %s)", (trace_id(1), trace_id(10))).fetchall()) == 7
    assert reader.execute("select kind from otel.explain_trace(%s)", (trace_id(10),)).fetchone() == ("failed",)
    assert reader.execute(
        "select count(*) from otel.suspect_attributes('payment', null, %s, %s)", (T0, T0 + timedelta(hours=1))
    ).fetchone() == (1,)
    writer = login_role("otel_writer")
    for call in (
        "select * from otel.compare_traces('a', 'b')",
        "select * from otel.explain_trace('a')",
        "select * from otel.suspect_attributes('a', null, now(), now())",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            writer.execute(call)
    for routine in (
        "otel.compare_traces(text, text)",
        "otel.explain_trace(text, integer)",
        "otel.suspect_attributes(text, text, timestamptz, timestamptz, double precision)",
    ):
        assert scalar(conn, "select has_function_privilege('public', %s, 'execute')", (routine,)) is False


def scans(conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
    """(sequential, index) scans of otel.trace_summaries and each partition of otel.traces in this transaction."""
    rows = conn.execute(
        "select relname, seq_scan, idx_scan from pg_stat_xact_user_tables"
        " where schemaname = 'otel' and (relname like 'traces\\_p%' or relname = 'trace_summaries')"
    )
    return {name: (seq, idx) for name, seq, idx in rows}


def test_explain_trace_reads_by_index_only(conn, declined_among_good):
    # 50,000 other traces, of many root operations, over a month
    conn.execute(
        "insert into otel.trace_summaries"
        " select md5(n::text), t, t + interval '1 second', 1000, 'svc' || n %% 50, 'op' || n %% 20, 3, n %% 7 / 6, '{}'"
        " from generate_series(1, 50000) as n, lateral (select %s - n * interval '1 minute' as t) as x",
        (T0,),
    )
    conn.execute("analyze otel.trace_summaries")
    with conn.transaction():
        before = scans(conn)
        assert explain(conn, declined_among_good)[0]["holds_in"] == 5
        after = scans(conn)
    used = {
        name: (seq - before.get(name, (0, 0))[0], idx - before.get(name, (0, 0))[1])
        for name, (seq, idx) in after.items()
    }
    assert used["trace_summaries"][0] == 0 and used["trace_summaries"][1] > 0
    assert [name for name, (seq, idx) in used.items() if seq] == []
    assert sum(idx for name, (seq, idx) in used.items() if name.startswith("traces_p")) > 0


# ---------------------------------------------------------------- Python and the CLI


def test_client_compare_traces_returns_dataclasses(dsn, conn):
    load(conn, checkout(1), checkout(2, declined=True))
    with Client(dsn) as client:
        differences = client.compare_traces(trace_id(1), f" {trace_id(2).upper()}")
        first = differences[0]
        assert first == TraceDifference(
            rank=1,
            service="payment",
            name="charge card <num>",
            path=["frontend/POST /checkout", "frontend/POST", "payment/POST /charge"],
            depth=3,
            span_id_a=sid(trace_id(1), 4),
            span_id_b=sid(trace_id(2), 4),
            status_a="UNSET",
            status_b="ERROR",
            status_message_a=None,
            status_message_b="card declined",
            exception_type_a=None,
            exception_type_b="CardDeclined",
            duration_ms_a=77.0,
            duration_ms_b=77.0,
            duration_ratio=1.0,
            attributes={},
            differences=["status", "exception"],
        )
        assert len(differences) == 7
        assert client.compare_traces(trace_id(1), UNKNOWN) == []
        with pytest.raises(InvalidArgument, match="b must be a trace id of 32 hex digits, got 'nope'"):
            client.compare_traces(trace_id(1), "nope")


def test_client_explain_trace_and_suspect_attributes_return_dataclasses(dsn, declined_among_good):
    with Client(dsn) as client:
        explanations = client.explain_trace(declined_among_good)
        assert isinstance(explanations[0], TraceExplanation)
        assert (explanations[0].kind, explanations[0].holds_in, explanations[0].compared) == ("failed", 5, 5)
        assert explanations[0].description == (
            "span payment/charge card <num> failed with CardDeclined in this trace only"
        )
        assert [e.rank for e in explanations] == list(range(1, len(explanations) + 1))
        assert client.explain_trace(declined_among_good, k=1)[0].compared == 1
        with pytest.raises(InvalidArgument, match="k must be between 1 and 100, got 0"):
            client.explain_trace(declined_among_good, k=0)
        suspects = client.suspect_attributes("payment", since=T0.replace(tzinfo=None), until=T0 + timedelta(hours=1))
        # payment failed in trace 10 only (its two spans), stripe as in the others: only its request id stands out
        assert [(s.key, s.value, s.failing, s.others, s.failing_share, s.others_share) for s in suspects] == [
            ("request.id", "req-10", 1, 0, 0.5, 0.0)
        ]
        assert 0 < suspects[0].score < 2
        with pytest.raises(InvalidArgument, match="at most 31 days"):
            client.suspect_attributes("payment", since=T0 - timedelta(days=40), until=T0)


def test_client_suspect_attributes_finds_the_planted_value(dsn, planted):
    with Client(dsn) as client:
        first = client.suspect_attributes("payment", "POST /charge", since=T0 - timedelta(hours=1))[0]
    assert isinstance(first, SuspectAttribute)
    assert (first.key, first.value, first.failing, first.others) == ("payment.provider", "acme", 18, 5)
    assert (first.failing_share, first.others_share) == (pytest.approx(0.9), pytest.approx(0.05))


def test_async_client_comparisons_match_the_client(dsn, declined_among_good):
    async def scenario():
        async with AsyncClient(dsn) as client:
            return (
                await client.compare_traces(trace_id(1), declined_among_good),
                await client.explain_trace(declined_among_good, k=3),
                await client.suspect_attributes("payment", None, since=T0, until=T0 + timedelta(hours=1)),
            )

    with Client(dsn) as client:
        expected = (
            client.compare_traces(trace_id(1), declined_among_good),
            client.explain_trace(declined_among_good, k=3),
            client.suspect_attributes("payment", None, since=T0, until=T0 + timedelta(hours=1)),
        )
    assert asyncio.run(scenario()) == expected
    assert expected[0] and expected[1] and expected[2]


def test_cli_compare_prints_the_differences(dsn, conn):
    load(conn, checkout(1), checkout(2, declined=True, provider="acme"))
    done = otel_db("compare", trace_id(1), trace_id(2), dsn=dsn)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    assert lines[0].split() == [
        "rank",
        "span",
        "in",
        "A",
        "in",
        "B",
        "status",
        "A",
        "status",
        "B",
        "B/A",
        "differs",
        "attributes",
    ]
    assert lines[2].split()[:7] == [
        "1",
        "payment/charge",
        "card",
        "<num>",
        sid(trace_id(1), 4),
        sid(trace_id(2), 4),
        "UNSET",
    ]
    assert "ERROR CardDeclined" in lines[2] and "status, exception" in lines[2]
    assert any('payment.provider: "stripe" → "acme"' in line for line in lines)
    assert len(lines) == 2 + 4  # the four failing spans; the three others do not differ
    everything = otel_db("compare", "--all", trace_id(1), trace_id(2), dsn=dsn)
    assert len(everything.stdout.decode().splitlines()) == 2 + 7


def test_cli_compare_of_alike_or_unknown_traces_says_so(dsn, conn):
    load(conn, checkout(1), checkout(2))
    done = otel_db("compare", trace_id(1), trace_id(2), dsn=dsn)
    assert done.stdout.decode().strip() == "no differences: the 7 spans align one for one"
    done = otel_db("compare", trace_id(1), UNKNOWN, dsn=dsn)
    assert done.stdout.decode().strip() == f"nothing to compare: trace {trace_id(1)} or {UNKNOWN} is not stored"
    done = otel_db("compare", "xyz", trace_id(1), dsn=dsn)
    assert done.returncode == 1
    assert done.stderr.decode().strip() == "otel-db: error: a must be a trace id of 32 hex digits, got 'xyz'"


def test_cli_explain_prints_a_table(dsn, declined_among_good):
    done = otel_db("explain", declined_among_good, "-k", "4", dsn=dsn)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    assert lines[0].split() == ["rank", "holds", "kind", "span", "id", "difference"]
    assert lines[2].split()[:4] == ["1", "4/4", "failed", sid(declined_among_good, 4)]
    assert lines[2].endswith("span payment/charge card <num> failed with CardDeclined in this trace only")
    assert len(lines) == 2 + 5


def test_cli_explain_with_nothing_to_compare_with_says_so(dsn):
    done = otel_db("explain", UNKNOWN, dsn=dsn)
    assert done.returncode == 0
    assert done.stdout.decode().startswith(f"no difference holds in most comparisons for trace {UNKNOWN}")
    done = otel_db("explain", "xyz", dsn=dsn)
    assert done.returncode == 1
    assert done.stderr.decode().strip() == "otel-db: error: trace_id must be 32 hex digits, got 'xyz'"


def test_cli_suspects_prints_the_values_failing_or_slow_spans_share(dsn, conn, planted):
    slow_quotes(conn)
    window = ["--since", (T0 - timedelta(hours=1)).isoformat(), "--until", (T0 + timedelta(hours=1)).isoformat()]
    done = otel_db("suspects", "payment", "POST /charge", *window, dsn=dsn)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    assert lines[0].split() == ["attribute", "value", "failing", "others", "score"]
    assert lines[2].split()[:6] == ["payment.provider", "acme", "18", "(90%)", "5", "(5%)"]
    slow = otel_db("suspects", "shipping", "--slow", "0.9", *window, dsn=dsn).stdout.decode().splitlines()
    assert slow[0].split() == ["attribute", "value", "slow", "others", "score"]
    assert slow[2].split()[:6] == ["cache", "miss", "9", "(90%)", "5", "(6%)"]
    nothing = otel_db("suspects", "shipping", *window, dsn=dsn)
    assert (
        nothing.stdout.decode() == "no attribute value is more common in failing spans of shipping than in the others\n"
    )
    refused = otel_db("suspects", "shipping", "--since", "40d", dsn=dsn)
    assert refused.returncode == 1
    assert "the window from since to until must be at most 31 days" in refused.stderr.decode()
    bad_age = otel_db("suspects", "shipping", "--since", "yesterday", dsn=dsn)
    assert bad_age.returncode == 2
    assert "expected an age (30m, 6h, 2d) or a timestamp, got 'yesterday'" in bad_age.stderr.decode()
