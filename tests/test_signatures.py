"""Span signatures: what the normalised text keeps and what it replaces."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import flush, scalar, stage_otlp
from tests.otlp import attribute, span, traces_request


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("order 123 failed", "order <num> failed"),
        ("took 12.5 ms, retry -3", "took <num> ms, retry -<num>"),
        ("card expired in 2024-03", "card expired in <num>-<num>"),
        ("user 3fa85f64-5717-4562-b3fc-2c963f66afa6 missing", "user <uuid> missing"),
        ("at 2026-11-25T10:00:00.123Z and 2026-11-25 10:00", "at <time> and <time>"),
        ("mail to jane.doe+x@example.com bounced", "mail to <email> bounced"),
        ("connect to 10.0.3.12:5432 refused", "connect to <ip> refused"),
        ("span 4bf92f3577b34da6 of 0xdeadbeef", "span <hex> of <hex>"),
        ("  many   spaces\n\tand tabs ", "many spaces and tabs"),
        ("GET /users/{id}", "GET /users/{id}"),
        ("", None),
        (None, None),
    ],
)
def test_normalize_text_replaces_what_makes_every_span_unique(conn, text, normalised):
    assert scalar(conn, "select otel.normalize_text(%s)", (text,)) == normalised


def test_normalize_text_keeps_at_most_300_characters(conn):
    assert scalar(conn, "select length(otel.normalize_text(repeat('word ', 200)))") == 300


# Text made of what the patterns look at: digits, hex letters, x (0x), and
# the separators of times, addresses and numbers.
PATTERN_TEXT = st.text(alphabet="0123456789abcdefxyzT:.-@+ Z", max_size=60)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=PATTERN_TEXT)
def test_normalize_text_does_not_tell_the_digits_1_to_9_apart(conn, text):
    # otel.signature_input() folds them in error messages and relies on this.
    folded, original = conn.execute(
        "select otel.normalize_text(translate(%(t)s, '23456789', '11111111')), otel.normalize_text(%(t)s)", {"t": text}
    ).fetchone()
    assert folded == original


def signature_input(conn, message: str) -> int:
    return scalar(
        conn,
        "select otel.signature_input('checkout', 'SERVER', 'charge', 'ERROR', %(m)s::text, '{}',"
        " jsonb_build_array(jsonb_build_object('name', 'exception', 'attributes',"
        " jsonb_build_object('exception.type', 'Declined', 'exception.message', %(m)s::text))))",
        {"m": message},
    )


def test_signature_inputs_of_error_messages_fold_the_digits_1_to_9(conn):
    # One normalisation for all the messages that differ only in them.
    assert signature_input(conn, "order 981 declined") == signature_input(conn, "order 275 declined")
    assert signature_input(conn, "order 0x1f declined") != signature_input(conn, "order 1x1f declined")
    assert signature_input(conn, "order 10 declined") != signature_input(conn, "order 11 declined")


@pytest.mark.parametrize(
    ("empty", "missing"),
    [
        ({"attributes": {"http.request.method": ""}}, {"attributes": {}}),
        ({"attributes": {"db.system": ""}}, {"attributes": {}}),
        ({"events": [{"name": "exception", "attributes": {"exception.type": ""}}]}, {"events": []}),
        ({"status_code": "ERROR", "status_message": None}, {"status_code": "OK", "status_message": None}),
    ],
)
def test_signature_inputs_tell_an_empty_value_from_a_missing_one(conn, empty, missing):
    # otel.span_signature() does, so the spans must not share an input.
    def input_of(fields: dict) -> int:
        span_fields = {"status_code": "UNSET", "status_message": None, "attributes": {}, "events": [], **fields}
        return scalar(
            conn,
            "select otel.signature_input('checkout', 'SERVER', 'GET /', %(status_code)s, %(status_message)s,"
            " %(attributes)s::jsonb, %(events)s::jsonb)",
            {
                **span_fields,
                "attributes": json.dumps(span_fields["attributes"]),
                "events": json.dumps(span_fields["events"]),
            },
        )

    assert input_of(empty) != input_of(missing)


def test_error_messages_that_differ_only_in_numbers_share_one_signature(conn):
    spans = [
        span(name="charge", status={"code": 2, "message": f"order {order} declined after {tries} tries"})
        for order, tries in ((981, 3), (12, 7), (40977, 2))
    ]
    hex_like = span(name="charge", status={"code": 2, "message": "order 0x1f declined after 3 tries"})
    stage_otlp(conn, [traces_request(*spans, hex_like)])
    flush(conn)
    assert conn.execute("select text, span_count from otel.span_signatures order by text").fetchall() == [
        ("checkout | server charge | error: order <hex> declined after <num> tries | GET", 1),
        ("checkout | server charge | error: order <num> declined after <num> tries | GET", 3),
    ]


def string(value: str) -> dict:
    return {"stringValue": value}


def signature_of(conn, body: dict, service: str = "checkout") -> str:
    stage_otlp(conn, [traces_request(body, service=service)])
    flush(conn)
    return scalar(
        conn,
        "select g.text from otel.traces t join otel.span_signatures g on g.id = t.signature_id where t.span_id = %s",
        (body["spanId"],),
    )


def test_an_http_error_span_reads_as_a_person_would_search_it(conn):
    body = span(
        name="POST /orders/981",
        kind=2,
        status={"code": 2, "message": "payment for order 981 declined"},
        attributes=[
            attribute("http.request.method", string("POST")),
            attribute("http.route", string("/orders/{id}")),
            attribute("http.response.status_code", {"intValue": "402"}),
            attribute("url.full", string("https://shop.example.com/orders/981?session=77ab")),
        ],
        events=[
            {
                "name": "exception",
                "attributes": [
                    attribute("exception.type", string("CardDeclined")),
                    attribute("exception.message", string("card 4242 declined")),
                    attribute("exception.stacktrace", string("Traceback ... line 12")),
                ],
            }
        ],
    )
    assert signature_of(conn, body) == (
        "checkout | server POST /orders/<num> | error: payment for order <num> declined"
        " | exception CardDeclined (card declined): card <num> declined | POST /orders/{id} 402 Payment Required"
    )


@pytest.mark.parametrize(
    ("class_name", "words"),
    [
        ("psycopg.errors.QueryCanceled", "query canceled"),
        ("java.net.SocketTimeoutException", "socket timeout exception"),
        ("HTTPError", "http error"),
        ("System.IO.IOException", "io exception"),
        ("*errors.errorString", "error string"),
        ("Foo::BarBaz", "bar baz"),
        ("shop$OutOfStock", "out of stock"),
        ("my_custom_error", "my custom error"),
        ("Exception", None),  # one word already
        ("timeout", None),
        (None, None),
    ],
)
def test_exception_class_names_are_spelled_out_in_words(conn, class_name, words):
    assert scalar(conn, "select otel.identifier_words(%s)", (class_name,)) == words


def grpc_call(code: int | str) -> dict:
    value = {"intValue": str(code)} if isinstance(code, int) else string(code)
    return span(
        name="shop.Shipping/Quote",
        kind=3,
        attributes=[attribute("rpc.system", string("grpc")), attribute("rpc.grpc.status_code", value)],
    )


def test_a_grpc_span_carries_its_status_code_and_name(conn):
    assert signature_of(conn, grpc_call(14)) == "checkout | client shop.Shipping/Quote | grpc 14 unavailable"
    assert signature_of(conn, grpc_call(4)) == "checkout | client shop.Shipping/Quote | grpc 4 deadline exceeded"
    assert signature_of(conn, grpc_call(99)) == "checkout | client shop.Shipping/Quote | grpc 99"
    assert signature_of(conn, grpc_call("UNAVAILABLE")) == "checkout | client shop.Shipping/Quote | grpc UNAVAILABLE"
    assert scalar(conn, "select count(*) from otel.span_signatures") == 4


def test_an_exception_message_the_error_message_holds_is_said_once(conn):
    body = span(
        name="SELECT shop.orders",
        kind=3,
        status={"code": 2, "message": "QueryCanceled: canceling statement due to statement timeout"},
        events=[
            {
                "name": "exception",
                "attributes": [
                    attribute("exception.type", string("psycopg.errors.QueryCanceled")),
                    attribute("exception.message", string("canceling statement due to statement timeout")),
                ],
            }
        ],
    )
    assert signature_of(conn, body) == (
        "checkout | client SELECT shop.orders | error: QueryCanceled: canceling statement due to statement timeout"
        " | exception psycopg.errors.QueryCanceled (query canceled) | GET"
    )


def test_database_and_messaging_spans_keep_their_system_operation_and_target(conn):
    query = span(
        name="SELECT shop.orders",
        kind=3,
        attributes=[
            attribute("db.system.name", string("postgresql")),
            attribute("db.operation.name", string("SELECT")),
            attribute("db.collection.name", string("orders")),
            attribute("db.query.text", string("select * from orders where id = 42")),
        ],
    )
    assert signature_of(conn, query, "inventory") == "inventory | client SELECT shop.orders | postgresql SELECT orders"
    publish = span(
        name="publish order.created",
        kind=4,
        attributes=[
            attribute("messaging.system", string("kafka")),
            attribute("messaging.operation.type", string("send")),
            attribute("messaging.destination.name", string("orders-7")),
        ],
    )
    assert signature_of(conn, publish) == "checkout | producer publish order.created | kafka send orders-<num>"


def test_spans_differing_only_in_ids_and_numbers_share_a_signature(conn):
    first = span(name="GET /users/17", status={"code": 2, "message": "user 17 not found at 10.0.0.1"})
    second = span(name="GET /users/90210", status={"code": 2, "message": "user 90210 not found at 10.0.0.2"})
    other = span(name="GET /users/17/avatar")
    stage_otlp(conn, [traces_request(first, second, other)])
    run = flush(conn)
    assert run["spans"] == 3
    assert scalar(conn, "select count(distinct signature_id) from otel.traces") == 2
    assert scalar(conn, "select span_count from otel.span_signatures where text like '%%not found%%'") == 2


@pytest.mark.parametrize(
    ("events", "attributes"),
    [
        ('[{"name": "exception", "attributes": {"exception.type": "E"}}]', {"exception.type": "E"}),
        ('[{"name": "retry"}, {"name": "exception", "attributes": {}}]', {}),
        ('[{"name": "retry"}]', None),
        ("[]", None),
        ("[null]", None),
        ('{"name": "exception", "attributes": {}}', None),  # not a list of events
        ('"exception"', None),
        ("null", None),
        (None, None),
    ],
)
def test_exception_event_attributes_come_only_from_an_exception_event_in_a_list(conn, events, attributes):
    assert scalar(conn, "select otel.exception_event_attributes(%s::jsonb)", (events,)) == attributes
