"""bench/search_quality.py on a tiny data set: the shop's labels are right, and the metrics compute what they say."""

import re
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest

from bench import search_quality as quality
from bench.shop_failures import CAUSES, SERVICES, CardDeclined, Label, exception_type, generate

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "onnx"
TRACES, SEED, ERROR_RATE = 40, 1, 0.6  # every cause at least once


@pytest.fixture(scope="module")
def shop():
    return generate(TRACES, seed=SEED, error_rate=ERROR_RATE)


@pytest.fixture
def loaded(dsn: str) -> list[Label]:
    labels, loading = quality.load(dsn, TRACES, seed=SEED, error_rate=ERROR_RATE)
    assert loading["spans_stored"] == loading["spans"]
    return labels


def span_hex(span) -> str:
    return f"{span.context.span_id:016x}"


def test_every_failing_trace_has_one_labelled_raising_span(shop):
    labels, spans = shop
    cause_types = {exception_type(cause) for cause in CAUSES}
    by_trace = defaultdict(list)
    for span in spans:
        by_trace[f"{span.context.trace_id:032x}"].append(span)
    assert set(by_trace) == {label.trace_id for label in labels}
    assert {label.cause for label in labels} - {None} == cause_types
    assert {str(span.resource.attributes["service.name"]) for span in spans} == set(SERVICES)
    root_status_by_cause = defaultdict(set)
    for label in labels:
        trace = by_trace[label.trace_id]
        raised = {
            span_hex(span)
            for span in trace
            for event in span.events
            if event.name == "exception" and event.attributes["exception.type"] in cause_types
        }
        root = next(span for span in trace if span.parent is None)
        if label.cause is None:
            assert not raised, label
            continue
        by_id = {span_hex(span): span for span in trace}
        origin = by_id[label.span_id]
        assert origin.status.is_ok is False
        assert [e.attributes["exception.type"] for e in origin.events if e.name == "exception"] == [label.cause]
        assert str(origin.resource.attributes["service.name"]) == label.service
        # The spans that re-record the same exception on the way up are its ancestors: the label is the deepest.
        for span_id in raised - {label.span_id}:
            ancestor = by_id[label.span_id]
            while ancestor.parent is not None and span_hex(ancestor) != span_id:
                ancestor = by_id[f"{ancestor.parent.span_id:016x}"]
            assert span_hex(ancestor) == span_id
        # The failure reaches the frontend through 2-4 services, each with an ERROR span.
        failing_services = {str(s.resource.attributes["service.name"]) for s in trace if not s.status.is_ok}
        assert 2 <= len(failing_services) <= 4, (label, failing_services)
        assert root.attributes["http.response.status_code"] >= 400
        root_status_by_cause[root.attributes["http.response.status_code"]].add(label.cause)
    assert len(root_status_by_cause[502]) >= 4  # distinct causes behind the same status


def test_the_same_seed_makes_the_same_traces(shop):
    labels, spans = shop
    again, again_spans = generate(TRACES, seed=SEED, error_rate=ERROR_RATE)
    assert again == labels
    assert [(s.name, s.start_time, span_hex(s)) for s in again_spans] == [
        (s.name, s.start_time, span_hex(s)) for s in spans
    ]


def test_questions_do_not_use_the_words_of_their_cause(shop, conn: psycopg.Connection):
    """No stem of a question is a stem of its cause's exception type (split into words) or messages."""
    _, spans = shop

    def stems(text: str) -> set[str]:
        row = conn.execute("select tsvector_to_array(to_tsvector('english', %s))", (text,)).fetchone()
        assert row is not None
        return set(row[0])

    own: dict[str, set[str]] = defaultdict(set)
    for span in spans:
        for event in span.events:
            if event.name == "exception":
                kind = str(event.attributes["exception.type"])
                words = re.sub(r"([a-z])([A-Z])", r"\1 \2", kind).replace(".", " ")
                own[kind] |= stems(f"{words} {event.attributes['exception.message']}")
    assert len(quality.QUESTIONS) >= 20
    for question, cause in quality.QUESTIONS:
        assert own[exception_type(cause)], cause
        assert not stems(question) & own[exception_type(cause)], question


def test_precision_at_k():
    assert quality.precision_at_k("A", ["A"] * 5) == 1.0
    assert quality.precision_at_k("A", ["B", None, "B", "B", "B"]) == 0.0
    assert quality.precision_at_k("A", ["A", "B", "A"]) == 0.4  # empty places count as misses
    assert quality.precision_at_k("A", ["A"] * 7) == 1.0  # only the first k count
    summary = quality.summarize(
        [
            quality.Ranking("A", ["A"] * 5, [0.9] * 5),
            quality.Ranking("B", ["A"] * 5, [0.5] * 5),
            quality.Ranking("B", [], []),
        ]
    )
    assert summary["precision_at_5"] == round(1 / 3, 4)
    assert summary["per_cause"] == {"A": 1.0, "B": 0.0}
    assert (summary["fewer_than_k"], summary["empty"]) == (1, 1)
    assert summary["score_of_matches"]["median"] == 0.9
    assert summary["score_of_misses"]["max"] == 0.5


def test_trace_rankings_never_count_the_query_itself():
    labels = {t: Label(t, "checkout", c) for t, c in [("q", "A"), ("a", "A"), ("b", "B")]}
    rankings = quality.trace_rankings(lambda t: [("q", 1.0), ("a", 0.9), ("b", 0.8)], [labels["q"]], labels)
    assert rankings == [quality.Ranking("A", ["A", "B"], [0.9, 0.8])]


def test_root_cause_baselines():
    spans = [
        quality.SpanRow("root", None, "ERROR", 1),
        quality.SpanRow("client", "root", "ERROR", 2),
        quality.SpanRow("server", "client", "UNSET", 3),
        quality.SpanRow("raiser", "server", "ERROR", 4),
        quality.SpanRow("sibling", "root", "UNSET", 5),
    ]
    assert quality.deepest_error(spans) == "raiser"
    assert quality.first_error(spans) == "root"
    assert quality.deepest_error([spans[2], spans[4]]) is None


def test_metrics_on_a_tiny_database(loaded: list[Label], conn: psycopg.Connection):
    failing = [label for label in loaded if label.cause is not None]
    hits = quality.root_cause_hits(conn, failing)
    declined = next(label for label in failing if label.cause == exception_type(CardDeclined))
    assert hits["root_cause"][declined.trace_id]
    assert hits["deepest_error_span"][declined.trace_id]
    assert not hits["first_error_span"][declined.trace_id]  # the frontend's server span started first
    by_trace = {label.trace_id: label for label in loaded}
    figures = quality.accuracy(hits["first_error_span"], by_trace)
    assert (figures["accuracy"], figures["traces"]) == (0.0, len(failing))

    # The lexical baselines: the error text of each failing trace, searched by its own words.
    conn.execute("create extension if not exists pg_trgm")
    conn.execute(quality.ERROR_TEXT)
    row = conn.execute("select doc from error_text where trace_id = %s", (declined.trace_id,)).fetchone()
    assert row is not None
    doc = row[0]
    assert "Card Declined" in doc and "declined by issuer" in doc
    found = quality.full_text(conn, quality.WEBSEARCH)("card declined")
    assert found and {by_trace[t].cause for t, _ in found} == {declined.cause}
    lexical = quality.lexical_by_trace(conn)(declined.trace_id)
    assert declined.trace_id not in [t for t, _ in lexical]
    assert [score for _, score in lexical] == sorted((score for _, score in lexical), reverse=True)


@pytest.mark.skipif(not (MODEL_DIR / "model.onnx").exists(), reason="no model in models/onnx: run `make model`")
def test_similar_traces_on_the_embedded_tiny_database(loaded: list[Label], dsn: str, conn: psycopg.Connection):
    embedding = quality.embed(dsn)
    assert embedding["model"] == "all-MiniLM-L6-v2"
    assert embedding["embedded"] == embedding["signatures"] > 0
    query = next(label for label in loaded if label.cause is not None)
    hits = quality.similar_by_trace(conn, -1.0)(query.trace_id)
    assert len(hits) == quality.K and query.trace_id not in [t for t, _ in hits]
    result = quality.evaluate(dsn, loaded, sample=5)
    assert result["trace_to_trace"]["similar_traces_min_similarity_-1"]["fewer_than_k"] == 0
    assert result["questions"]["similar_traces_min_similarity_-1"]["queries"] == len(quality.QUESTIONS)
    assert result["root_cause"]["root_cause"]["traces"] == sum(label.cause is not None for label in loaded)
