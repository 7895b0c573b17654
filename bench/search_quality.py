"""Search quality on labelled failures: otel.similar_traces() and otel.root_cause() against lexical baselines.

The data: bench/shop_failures.py, a shop of seven services instrumented
with the OpenTelemetry SDK, whose failures travel up through 2-4 services
and several causes end in the same HTTP status. Each trace's ground truth
(the exception type that started its failure, the span that raised it)
stays in Python. The traces are exported with otel_db's SpanExporter into a
fresh database, flushed, and their signatures embedded.

Figures, each with its baseline, in one run:

- trace to trace, precision@5: for a sample of failing traces, the share of
  the 5 traces `otel.similar_traces(trace_id)` returns whose root-cause
  exception type is the query's (fewer than 5 rows count as misses).
  Baseline: the 5 traces whose error text (status messages, exception types
  and messages) is most similar by pg_trgm.
- questions, precision@5: questions in words that are not the error's own,
  each about one cause, through `Client.similar_traces(text, k=5)`.
  Baseline: PostgreSQL full-text search (websearch_to_tsquery) over the
  traces' status messages and exception types (split into words) and
  messages; also with the question's words OR-ed.
- free-text threshold: the similarity of each question's first right
  trace, against the best any trace reaches for questions about nothing
  the shop stores (OFF_TOPIC); the default (the text_similarity_threshold
  setting) should keep the first and drop the second.
- root cause: the share of failing traces whose first `otel.root_cause()`
  row is the span that raised. Baselines: the deepest ERROR span, the first
  ERROR span by start time.

- a second shop, not used to tune anything: scripts/generate_sample.py
  (six other services, other causes, written for the demo data), its
  traces labelled by the exception that was recorded first in time (the
  spans above record it again later, or answer with a status): trace to
  trace precision@5 and root-cause accuracy.

OTEL_DB_BENCH_QUALITY_TRACES sets the number of traces (default 4000),
OTEL_DB_BENCH_QUALITY_QUERIES the trace-to-trace sample (default 200).
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from bench.common import drop_database, fresh_database
from bench.shop_failures import (
    CAUSES,
    SERVICES,
    CardDeclined,
    CarrierUnavailable,
    DeadlockDetected,
    FraudSuspected,
    InventoryDbTimeout,
    Label,
    OutOfStock,
    PaymentGatewayTimeout,
    QueryCanceled,
    ReservationConflict,
    exception_type,
    export,
    generate,
    short_name,
)

if TYPE_CHECKING:
    from otel_db.client import Client

DATABASE = "otel_bench_search_quality"
SECOND_SHOP_DATABASE = "otel_bench_search_quality_second_shop"
SECOND_SHOP_TRACES = 6000
GENERATOR = Path(__file__).resolve().parent.parent / "scripts" / "generate_sample.py"
K = 5
SEED = 7
ERROR_RATE = 0.3
GOALS = {"trace_to_trace": 0.95, "questions": 0.85, "root_cause": 0.95}

# Questions about one cause each, in words that are not the cause's own
# (neither its exception type nor its messages).
QUESTIONS: list[tuple[str, type[BaseException]]] = [
    ("customers could not pay because their bank said no", CardDeclined),
    ("the shopper's bank rejected the purchase", CardDeclined),
    ("buyers without enough money in their account were turned away", CardDeclined),
    ("purchases stopped because they looked like a scam", FraudSuspected),
    ("the risk system thought the buyer was a criminal", FraudSuspected),
    ("anti-abuse model refused suspicious orders", FraudSuspected),
    ("the card processor took too long to respond", PaymentGatewayTimeout),
    ("external billing provider was slow and never replied in time", PaymentGatewayTimeout),
    ("charging customers hung waiting on the third-party processor", PaymentGatewayTimeout),
    ("nothing left in the warehouse", OutOfStock),
    ("the product is sold out", OutOfStock),
    ("customers ordered more units than we have on the shelves", OutOfStock),
    ("two shoppers tried to grab the same item at the same moment", ReservationConflict),
    ("simultaneous purchases clashed while holding the same goods", ReservationConflict),
    ("a race between parallel purchases editing the same item record", ReservationConflict),
    ("the warehouse database was too slow to change quantities", InventoryDbTimeout),
    ("saving the new item counts took ages and gave up", InventoryDbTimeout),
    ("holding goods for a purchase hung on a slow storage write", InventoryDbTimeout),
    ("could not get a delivery price because the courier was down", CarrierUnavailable),
    ("the parcel company's service is offline", CarrierUnavailable),
    ("no postage quote since the logistics partner had an outage", CarrierUnavailable),
    ("a SQL command ran too long and the server aborted it", QueryCanceled),
    ("slow database read was stopped by the server's time limit", QueryCanceled),
    ("postgres gave up on a long-running select", QueryCanceled),
    ("two database sessions were each holding what the other needed", DeadlockDetected),
    ("a lock cycle between concurrent writers in postgres", DeadlockDetected),
    ("the database killed one of two sessions stuck on each other's locks", DeadlockDetected),
    ("could not reach the database machine at all", ConnectionRefusedError),
    ("nobody was listening on the database's network address", ConnectionRefusedError),
    ("the app was unable to open a link to its SQL backend", ConnectionRefusedError),
]

# Questions about nothing the shop stores: at the default free-text
# threshold they should find nothing.
OFF_TOPIC = [
    "what will the weather be like in Paris tomorrow",
    "how do I bake sourdough bread at home",
    "who won the football world cup",
    "recommend a good science fiction novel",
    "the cat sat on the mat",
    "how to translate hello into Spanish",
    "best hiking trails in the Alps",
    "what is the boiling point of water",
    "learn to play the guitar in a month",
    "when did the Roman empire fall",
]

# One text per trace for the lexical baselines: the status messages and
# exception types (also split into words: CardDeclined -> Card Declined) and
# messages of its spans.
ERROR_TEXT = """
create temp table error_text as
select trace_id, doc
  from (select t.trace_id,
               string_agg(concat_ws(' ', t.status_message, e.attributes ->> 'exception.type',
                                    regexp_replace(regexp_replace(e.attributes ->> 'exception.type',
                                                                  '([a-z])([A-Z])', '\\1 \\2', 'g'), '[._]', ' ', 'g'),
                                    e.attributes ->> 'exception.message'), ' ') as doc
          from otel.traces as t
         cross join lateral (select otel.exception_event_attributes(t.events) as attributes) as e
         where t.status_code = 'ERROR' or e.attributes is not null
         group by t.trace_id) as d
 where btrim(doc) <> ''
"""


@dataclass
class Ranking:
    """What a search returned for one query: the causes of the traces it ranked, and their scores."""

    cause: str
    found: list[str | None]
    scores: list[float] = field(default_factory=list)


Hit = tuple[str, float]  # a trace id and its score (similarity, or the baseline's rank value)


def precision_at_k(wanted: str, found: Sequence[str | None], k: int = K) -> float:
    """The share of k places filled by a trace of the wanted cause; places left empty count as misses."""
    return sum(1 for cause in found[:k] if cause == wanted) / k


def summarize(rankings: Sequence[Ranking], k: int = K) -> dict:
    """Precision@k over all queries and per cause, and how many queries got fewer than k results."""
    per_cause: dict[str, list[float]] = defaultdict(list)
    for ranking in rankings:
        per_cause[ranking.cause].append(precision_at_k(ranking.cause, ranking.found, k))
    scores = [score for values in per_cause.values() for score in values]
    matches = [v for r in rankings for c, v in zip(r.found, r.scores, strict=False) if c == r.cause]
    misses = [v for r in rankings for c, v in zip(r.found, r.scores, strict=False) if c != r.cause]
    return {
        f"precision_at_{k}": round(sum(scores) / len(scores), 4) if scores else None,
        "queries": len(rankings),
        "fewer_than_k": sum(1 for ranking in rankings if len(ranking.found) < k),
        "empty": sum(1 for ranking in rankings if not ranking.found),
        "per_cause": {
            short_name(cause): round(sum(values) / len(values), 4)
            for cause, values in sorted(per_cause.items(), key=lambda item: short_name(item[0]))
        },
        "score_of_matches": spread(matches),
        "score_of_misses": spread(misses),
    }


def spread(values: Sequence[float]) -> dict | None:
    """Minimum, quartiles and maximum of the scores the results had."""
    if not values:
        return None
    ordered = sorted(values)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
    return {
        "count": len(ordered),
        "min": round(ordered[0], 4),
        "p25": round(quartiles[0], 4),
        "median": round(quartiles[1], 4),
        "p75": round(quartiles[2], 4),
        "max": round(ordered[-1], 4),
    }


def accuracy(hits: dict[str, bool], labels: dict[str, Label]) -> dict:
    """Share of traces whose pick was right, overall and per cause."""
    per_cause: dict[str, list[bool]] = defaultdict(list)
    for trace_id, hit in hits.items():
        per_cause[short_name(labels[trace_id].cause)].append(hit)
    total = list(hits.values())
    return {
        "accuracy": round(sum(total) / len(total), 4) if total else None,
        "traces": len(total),
        "per_cause": {cause: round(sum(values) / len(values), 4) for cause, values in sorted(per_cause.items())},
    }


# --------------------------------------------------------------------------- searches


def ranking(cause: str, hits: list[Hit], labels: dict[str, Label]) -> Ranking:
    hits = hits[:K]
    return Ranking(cause, [labels[t].cause if t in labels else None for t, _ in hits], [v for _, v in hits])


def trace_rankings(
    search: Callable[[str], list[Hit]], queries: Iterable[Label], labels: dict[str, Label]
) -> list[Ranking]:
    """Rank traces like each query trace; a trace never counts as like itself."""
    rankings = []
    for query in queries:
        assert query.cause is not None
        rankings.append(ranking(query.cause, [h for h in search(query.trace_id) if h[0] != query.trace_id], labels))
    return rankings


def similar_by_trace(conn: psycopg.Connection, min_similarity: float | None) -> Callable[[str], list[Hit]]:
    def search(trace_id: str) -> list[Hit]:
        if min_similarity is None:
            rows = conn.execute(
                "select trace_id, similarity from otel.similar_traces(%s::text, k => %s)", (trace_id, K)
            )
        else:
            rows = conn.execute(
                "select trace_id, similarity from otel.similar_traces(%s::text, k => %s, min_similarity => %s)",
                (trace_id, K, min_similarity),
            )
        return [(row[0], row[1]) for row in rows]

    return search


def lexical_by_trace(conn: psycopg.Connection) -> Callable[[str], list[Hit]]:
    """The traces whose error text shares the most character trigrams with the query trace's."""

    def search(trace_id: str) -> list[Hit]:
        rows = conn.execute(
            "select d.trace_id, similarity(d.doc, q.doc)"
            " from error_text as d, (select doc from error_text where trace_id = %s) as q"
            " where d.trace_id <> %s order by similarity(d.doc, q.doc) desc, d.trace_id limit %s",
            (trace_id, trace_id, K),
        )
        return [(row[0], row[1]) for row in rows]

    return search


def question_rankings(search: Callable[[str], list[Hit]], labels: dict[str, Label]) -> list[Ranking]:
    return [ranking(exception_type(cause), search(question), labels) for question, cause in QUESTIONS]


def full_text(conn: psycopg.Connection, tsquery: str) -> Callable[[str], list[Hit]]:
    """Full-text search over the traces' error text, ranked by ts_rank; `tsquery` turns %s into a tsquery."""

    def search(question: str) -> list[Hit]:
        rows = conn.execute(
            f"select trace_id, ts_rank(to_tsvector('english', doc), w.q) from error_text, (select {tsquery} as q) as w"
            " where to_tsvector('english', doc) @@ w.q"
            " order by ts_rank(to_tsvector('english', doc), w.q) desc, trace_id limit %s",
            (question, K),
        )
        return [(row[0], row[1]) for row in rows]

    return search


WEBSEARCH = "websearch_to_tsquery('english', %s)"
ANY_WORD = "nullif(replace(plainto_tsquery('english', %s)::text, '&', '|'), '')::tsquery"


# --------------------------------------------------------------------------- root cause


@dataclass
class SpanRow:
    span_id: str
    parent_span_id: str | None
    status_code: str
    start_time: object


def deepest_error(spans: Sequence[SpanRow]) -> str | None:
    """The ERROR span farthest from the root (the earlier on a tie)."""
    parents = {s.span_id: s.parent_span_id for s in spans}

    def depth(span_id: str) -> int:
        steps, seen = 0, {span_id}
        parent = parents.get(span_id)
        while parent is not None and parent in parents and parent not in seen:
            seen.add(parent)
            steps += 1
            parent = parents[parent]
        return steps

    errors = [s for s in spans if s.status_code == "ERROR"]
    if not errors:
        return None
    return min(errors, key=lambda s: (-depth(s.span_id), s.start_time, s.span_id)).span_id


def first_error(spans: Sequence[SpanRow]) -> str | None:
    """The ERROR span that started first."""
    errors = [s for s in spans if s.status_code == "ERROR"]
    return min(errors, key=lambda s: (s.start_time, s.span_id)).span_id if errors else None


def trace_spans(conn: psycopg.Connection, trace_ids: list[str]) -> dict[str, list[SpanRow]]:
    spans: dict[str, list[SpanRow]] = defaultdict(list)
    for trace_id, span_id, parent, status, start in conn.execute(
        "select trace_id, span_id, parent_span_id, status_code, start_time from otel.traces where trace_id = any (%s)",
        (trace_ids,),
    ):
        spans[trace_id].append(SpanRow(span_id, parent, status, start))
    return spans


def root_cause_hits(conn: psycopg.Connection, failing: Sequence[Label]) -> dict[str, dict[str, bool]]:
    """For each method, whether its pick is the span that raised, trace by trace."""
    spans = trace_spans(conn, [label.trace_id for label in failing])
    hits: dict[str, dict[str, bool]] = {"root_cause": {}, "deepest_error_span": {}, "first_error_span": {}}
    for label in failing:
        row = conn.execute(
            "select span_id from otel.root_cause(%s) order by rank limit 1", (label.trace_id,)
        ).fetchone()
        hits["root_cause"][label.trace_id] = row is not None and row[0] == label.span_id
        hits["deepest_error_span"][label.trace_id] = deepest_error(spans[label.trace_id]) == label.span_id
        hits["first_error_span"][label.trace_id] = first_error(spans[label.trace_id]) == label.span_id
    return hits


# --------------------------------------------------------------------------- the run


def load(dsn: str, traces: int, seed: int = SEED, error_rate: float = ERROR_RATE) -> tuple[list[Label], dict]:
    """Generate the shop's traces, export them into `dsn` and flush; the labels and what it took."""
    started = time.perf_counter()
    labels, spans = generate(traces, seed=seed, error_rate=error_rate)
    generated = time.perf_counter()
    export(dsn, spans)
    exported = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("call otel.flush()")
        stored = conn.execute("select count(*) from otel.traces").fetchone()[0]  # type: ignore[index]
    flushed = time.perf_counter()
    return labels, {
        "spans": len(spans),
        "spans_stored": stored,
        "generate_seconds": round(generated - started, 2),
        "export_seconds": round(exported - generated, 2),
        "flush_seconds": round(flushed - exported, 2),
    }


def embed(dsn: str) -> dict:
    """Embed every pending signature as `otel-db embed` does."""
    from otel_db.embed import embed_pending
    from otel_db.embedding import Embedder

    embedder = Embedder()
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        report = embed_pending(conn, embedder, 100)
        signatures = conn.execute("select count(*) from otel.span_signatures").fetchone()[0]  # type: ignore[index]
    return {
        "model": embedder.model_name,
        "signatures": signatures,
        "embedded": report.embedded,
        "failed": report.failed,
        "embed_seconds": round(time.perf_counter() - started, 2),
    }


def evaluate(dsn: str, labels: list[Label], sample: int, seed: int = SEED) -> dict:
    """Every figure and its baselines on a loaded, embedded database."""
    from otel_db.client import Client

    by_trace = {label.trace_id: label for label in labels}
    failing = [label for label in labels if label.cause is not None]
    queries = random.Random(seed).sample(failing, min(sample, len(failing)))
    result: dict = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create extension if not exists pg_trgm")
        conn.execute(ERROR_TEXT)

        started = time.perf_counter()
        similar = summarize(trace_rankings(similar_by_trace(conn, None), queries, by_trace))
        similar["seconds"] = round(time.perf_counter() - started, 2)
        similar_any = summarize(trace_rankings(similar_by_trace(conn, -1.0), queries, by_trace))
        lexical = summarize(trace_rankings(lexical_by_trace(conn), queries, by_trace))
        result["trace_to_trace"] = {
            "goal": GOALS["trace_to_trace"],
            "met": (similar[f"precision_at_{K}"] or 0) >= GOALS["trace_to_trace"],
            "similar_traces": similar,
            "similar_traces_min_similarity_-1": similar_any,
            "baseline_pg_trgm": lexical,
        }

        websearch = summarize(question_rankings(full_text(conn, WEBSEARCH), by_trace))
        any_word = summarize(question_rankings(full_text(conn, ANY_WORD), by_trace))
        with Client(dsn) as client:
            low = summarize(
                question_rankings(
                    lambda q: [(r.trace_id, r.similarity) for r in client.similar_traces(q, k=K, min_similarity=-1.0)],
                    by_trace,
                )
            )
            default = summarize(
                question_rankings(
                    lambda q: [(r.trace_id, r.similarity) for r in client.similar_traces(q, k=K)], by_trace
                )
            )
            threshold = client.settings.text_similarity_threshold
            calibration = calibrate(client, by_trace, threshold)
        best_baseline = max(websearch[f"precision_at_{K}"] or 0, any_word[f"precision_at_{K}"] or 0)
        precision = low[f"precision_at_{K}"] or 0
        result["questions"] = {
            "goal": f">= {GOALS['questions']} and above full-text search",
            "met": precision >= GOALS["questions"] and precision > best_baseline,
            "similar_traces_min_similarity_-1": low,
            "similar_traces_default_min_similarity": {"min_similarity": threshold, **default},
            "threshold_calibration": calibration,
            "baseline_websearch_to_tsquery": websearch,
            "baseline_any_word_tsquery": any_word,
            "questions": [{"question": q, "cause": short_name(exception_type(c))} for q, c in QUESTIONS],
        }

        hits = root_cause_hits(conn, failing)
        figures = {method: accuracy(picks, by_trace) for method, picks in hits.items()}
        result["root_cause"] = {
            "goal": GOALS["root_cause"],
            "met": (figures["root_cause"]["accuracy"] or 0) >= GOALS["root_cause"],
            **figures,
        }
    return result


def calibrate(client: Client, by_trace: dict[str, Label], threshold: float) -> dict:
    """Where the free-text threshold falls: for each question, the best similarity a span of a trace with its
    cause reaches, against the best any span reaches for questions about nothing stored."""
    from otel_db.queries import vector_literal

    traces_by_cause: dict[str, list[str]] = defaultdict(list)
    for label in by_trace.values():
        if label.cause is not None:
            traces_by_cause[label.cause].append(label.trace_id)
    conn = client.connection()
    right = []
    for question, cause in QUESTIONS:
        vector = vector_literal(client.embedder().embed([question])[0])
        best = conn.execute(
            "select max(1 - (g.embedding <=> %s::vector)) from otel.span_signatures as g"
            " where g.id in (select t.signature_id from otel.traces as t where t.trace_id = any (%s))",
            (vector, traces_by_cause[exception_type(cause)]),
        ).fetchone()[0]
        right.append(best)
    off_topic = [client.similar_traces(q, k=1, min_similarity=-1.0)[0].similarity for q in OFF_TOPIC]
    return {
        "threshold": threshold,
        "best_right_similarity": spread(right),
        "questions_whose_right_traces_pass": sum(v >= threshold for v in right),
        "off_topic_best_similarity": spread(off_topic),
        "off_topic_questions_answered": sum(v >= threshold for v in off_topic),
        "off_topic_questions": len(OFF_TOPIC),
    }


# Each failing trace of the second shop and the exception recorded first in
# it (the origin; the spans it travels through record it again later).
FIRST_EXCEPTIONS = """
select distinct on (t.trace_id) t.trace_id, t.span_id, e.event -> 'attributes' ->> 'exception.type'
  from otel.traces as t
 cross join lateral jsonb_array_elements(t.events) as e (event)
 where e.event ->> 'name' = 'exception'
 order by t.trace_id, (e.event ->> 'time')::timestamptz, t.start_time desc
"""


def second_shop(traces: int = SECOND_SHOP_TRACES, sample: int = 200, seed: int = SEED) -> dict:
    """Trace to trace and root cause on the demo shop's generator, labelled from its data."""
    from otel_db.client import Client

    dsn = fresh_database(SECOND_SHOP_DATABASE)
    try:
        lines = subprocess.run(
            [sys.executable, str(GENERATOR), "--traces", str(traces), "--seed", str(seed), "--out", "-", "-q"],
            check=True,
            capture_output=True,
        ).stdout.splitlines()
        with Client(dsn) as client:
            client.copy_otlp(lines)
            client.flush()
        loading = embed(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            first = {t: (span, kind) for t, span, kind in conn.execute(FIRST_EXCEPTIONS)}
            labels = {t: Label(t, "second shop", cause=kind, span_id=span) for t, (span, kind) in first.items()}
            failing = sorted(labels.values(), key=lambda label: label.trace_id)
            queries = random.Random(seed).sample(failing, min(sample, len(failing)))
            similar = summarize(trace_rankings(similar_by_trace(conn, None), queries, labels))
            causes = {
                label.trace_id: conn.execute(
                    "select span_id from otel.root_cause(%s) where rank = 1", (label.trace_id,)
                ).fetchone()
                for label in labels.values()
            }
        hits = {t: row is not None and row[0] == labels[t].span_id for t, row in causes.items()}
    finally:
        drop_database(SECOND_SHOP_DATABASE)
    counts: dict[str, int] = defaultdict(int)
    for label in labels.values():
        counts[short_name(label.cause or "")] += 1
    return {
        "traces": traces,
        "failing_traces_with_an_exception": len(labels),
        "causes": dict(sorted(counts.items())),
        "load": loading,
        "trace_to_trace": similar,
        "root_cause": accuracy(hits, labels),
    }


def describe(labels: list[Label], traces: int, error_rate: float) -> dict:
    causes: dict[str, int] = defaultdict(int)
    flows: dict[str, int] = defaultdict(int)
    for label in labels:
        flows[label.flow] += 1
        if label.cause is not None:
            causes[short_name(label.cause)] += 1
    return {
        "traces": traces,
        "failing_traces": sum(causes.values()),
        "seed": SEED,
        "error_rate": error_rate,
        "services": list(SERVICES),
        "causes": {short_name(exception_type(c)): causes[short_name(exception_type(c))] for c in CAUSES},
        "flows": dict(sorted(flows.items())),
    }


def headline(result: dict) -> list[str]:
    t2t, questions, root = result["trace_to_trace"], result["questions"], result["root_cause"]
    calibration = questions["threshold_calibration"]
    p = f"precision_at_{K}"

    def met(flag: bool) -> str:
        return "met" if flag else "NOT met"

    return [
        f"trace to trace p@5: similar_traces {t2t['similar_traces'][p]} (min_similarity -1: "
        f"{t2t['similar_traces_min_similarity_-1'][p]}), pg_trgm baseline {t2t['baseline_pg_trgm'][p]}; "
        f"goal >= {t2t['goal']}: {met(t2t['met'])}",
        f"questions p@5: similar_traces {questions['similar_traces_min_similarity_-1'][p]} (min_similarity -1), "
        f"full text {questions['baseline_websearch_to_tsquery'][p]} (websearch), "
        f"{questions['baseline_any_word_tsquery'][p]} (any word); "
        f"at the default free-text min_similarity {calibration['threshold']}: "
        f"{questions['similar_traces_default_min_similarity'][p]}, {calibration['off_topic_questions_answered']} of "
        f"{calibration['off_topic_questions']} off-topic questions answered; "
        f"goal {questions['goal']}: {met(questions['met'])}",
        f"root cause accuracy: root_cause {root['root_cause']['accuracy']}, deepest ERROR span "
        f"{root['deepest_error_span']['accuracy']}, first ERROR span {root['first_error_span']['accuracy']}; "
        f"goal >= {root['goal']}: {met(root['met'])}",
    ]


def run(traces: int | None = None, sample: int | None = None) -> dict:
    traces = traces or int(os.environ.get("OTEL_DB_BENCH_QUALITY_TRACES", "4000"))
    sample = sample or int(os.environ.get("OTEL_DB_BENCH_QUALITY_QUERIES", "200"))
    started = time.perf_counter()
    dsn = fresh_database(DATABASE)
    try:
        labels, loading = load(dsn, traces)
        loading.update(embed(dsn))
        figures = evaluate(dsn, labels, sample)
    finally:
        drop_database(DATABASE)
    figures["second_shop"] = second_shop(sample=sample)
    result = {
        "data": describe(labels, traces, ERROR_RATE),
        "load": loading,
        **figures,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    result["summary"] = headline(result)
    for line in result["summary"]:
        print(line)
    return result
