"""Semantic search with the real model: questions in plain words find the
traces they are about (a small labelled set)."""

from pathlib import Path

import pytest

from otel_db.client import Client
from otel_db.embed import embed_pending
from otel_db.settings import Settings
from tests.helpers import flush, stage_otlp
from tests.otlp import attribute, hex_id, span, traces_request

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "onnx"

pytestmark = pytest.mark.skipif(
    not (MODEL_DIR / "model.onnx").exists(), reason="no model in models/onnx: run `make model`"
)


def text(value: str) -> dict:
    return {"stringValue": value}


def failing_span(name: str, message: str, exception_type: str, attributes: dict[str, str], start: int) -> dict:
    started = 1_764_000_000_000_000_000 + start * 60_000_000_000
    return span(
        traceId=hex_id(32),
        name=name,
        status={"code": 2, "message": message},
        startTimeUnixNano=str(started),
        endTimeUnixNano=str(started + 900_000_000),
        attributes=[attribute(k, text(v)) for k, v in attributes.items()],
        events=[
            {
                "name": "exception",
                "timeUnixNano": str(started + 800_000_000),
                "attributes": [
                    attribute("exception.type", text(exception_type)),
                    attribute("exception.message", text(message)),
                ],
            }
        ],
    )


def ok_span(name: str, attributes: dict[str, str], start: int) -> dict:
    started = 1_764_000_000_000_000_000 + start * 60_000_000_000
    return span(
        traceId=hex_id(32),
        name=name,
        startTimeUnixNano=str(started),
        endTimeUnixNano=str(started + 40_000_000),
        attributes=[attribute(k, text(v)) for k, v in attributes.items()],
    )


LABELLED = {
    "payment": (
        "payment",
        [
            failing_span(
                "POST /charge",
                "card 4242 declined: insufficient funds",
                "CardDeclinedError",
                {"http.request.method": "POST", "http.route": "/charge", "http.response.status_code": "402"},
                1,
            ),
            failing_span(
                "POST /charge",
                "the issuing bank declined card ending 0005",
                "CardDeclinedError",
                {"http.request.method": "POST", "http.route": "/charge", "http.response.status_code": "402"},
                2,
            ),
            failing_span("authorize payment", "credit card expired in 2024-03", "PaymentRejected", {}, 3),
        ],
    ),
    "database": (
        "inventory",
        [
            failing_span(
                "SELECT stock",
                "canceling statement due to statement timeout after 5000 ms",
                "QueryCanceled",
                {"db.system.name": "postgresql", "db.operation.name": "SELECT", "db.collection.name": "stock"},
                4,
            ),
            failing_span(
                "UPDATE stock",
                "timeout after 3000 ms waiting for the database",
                "QueryTimeoutError",
                {"db.system.name": "postgresql", "db.operation.name": "UPDATE", "db.collection.name": "stock"},
                5,
            ),
            failing_span(
                "SELECT reservations",
                "query timed out after 10 s",
                "TimeoutError",
                {"db.system.name": "postgresql", "db.operation.name": "SELECT", "db.collection.name": "reservations"},
                6,
            ),
        ],
    ),
    "login": (
        "auth",
        [
            failing_span(
                "POST /login",
                "invalid password for user 1234",
                "AuthenticationError",
                {"http.request.method": "POST", "http.route": "/login", "http.response.status_code": "401"},
                7,
            ),
            failing_span(
                "POST /login",
                "account locked after 5 failed attempts",
                "AccountLocked",
                {"http.request.method": "POST", "http.route": "/login", "http.response.status_code": "403"},
                8,
            ),
        ],
    ),
    "healthy": (
        "frontend",
        [
            ok_span(
                "GET /products/{id}",
                {"http.request.method": "GET", "http.route": "/products/{id}", "http.response.status_code": "200"},
                9,
            ),
            ok_span(
                "GET /cart",
                {"http.request.method": "GET", "http.route": "/cart", "http.response.status_code": "200"},
                10,
            ),
            ok_span("render homepage", {}, 11),
        ],
    ),
}


@pytest.fixture(params=["fp32", "int8"])
def client(dsn, conn, request):
    """The labelled traces embedded by the model in each precision; the answers must not depend on it."""
    for service, spans in LABELLED.values():
        stage_otlp(conn, [traces_request(s, service=service) for s in spans])
    flush(conn)
    settings = Settings(connection_string=dsn, model_dir=str(MODEL_DIR), model_precision=request.param)
    with Client(dsn, settings=settings) as client:
        report = embed_pending(client.connection(), client.embedder(), batch_size=16)
        assert report.embedded == 11 and client.embedder().model_name == "all-MiniLM-L6-v2"
        assert client.embedder().precision == request.param
        yield client


def label_of(trace_id: str) -> str:
    return next(label for label, (_, spans) in LABELLED.items() if any(s["traceId"] == trace_id for s in spans))


@pytest.mark.parametrize(
    ("question", "label", "top"),
    [
        ("why was the customer's credit card rejected?", "payment", 3),
        ("database queries are timing out", "database", 3),
        ("users cannot sign in, wrong password", "login", 2),
    ],
)
def test_a_question_ranks_the_traces_it_is_about_first(client, question, label, top):
    results = client.similar_traces(question, k=5, min_similarity=0.0)
    assert [label_of(r.trace_id) for r in results[:top]] == [label] * top


def test_a_database_timeout_trace_finds_the_other_timeouts(client):
    _, timeouts = LABELLED["database"]
    results = client.similar_traces(timeouts[0]["traceId"], k=2, min_similarity=0.0)
    assert {r.trace_id for r in results} == {s["traceId"] for s in timeouts[1:]}


def test_the_signature_threshold_keeps_unrelated_traces_out(client):
    """0.85 (the similarity_threshold setting) suits queries shaped like signatures, and trace ids."""
    results = client.similar_traces(
        "payment | server POST /charge | error: card declined: insufficient funds",
        k=10,
        min_similarity=client.settings.similarity_threshold,
    )
    assert results
    assert {label_of(r.trace_id) for r in results} == {"payment"}


def test_free_text_has_a_lower_default_threshold_that_drops_questions_about_other_things(client):
    """0.2 (the text_similarity_threshold setting): a plain question finds its traces, an unrelated one nothing."""
    question = client.similar_traces("why was the customer's credit card rejected?", k=3)
    assert [label_of(r.trace_id) for r in question] == ["payment"] * 3
    assert all(r.similarity >= client.settings.text_similarity_threshold for r in question)
    assert max(r.similarity for r in question) < client.settings.similarity_threshold  # 0.85 would drop them all
    assert client.similar_traces("who won the football world cup", k=3) == []
