"""otel.similar_traces() and the embedding queue, on vectors made to measure.

The vectors here are built by hand (unit vectors along chosen axes) so that
every expected ranking is exact; tests/test_semantic_search.py does the
same with the real model and real words.
"""

import threading

import numpy as np
import psycopg
import pytest

from otel_db.client import Client
from otel_db.embed import embed_pending
from otel_db.embedding import Embedder
from otel_db.settings import Settings
from tests.helpers import flush, scalar, stage_otlp
from tests.otlp import hex_id, span, traces_request

MODEL = "all-MiniLM-L6-v2"


def axis_vector(*weights: tuple[int, float]) -> str:
    """A unit vector of 384 dimensions with the given (axis, weight) parts."""
    vector = np.zeros(384, dtype=np.float32)
    for axis, weight in weights:
        vector[axis] = weight
    vector /= np.linalg.norm(vector)
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


def store_trace(conn, name: str, service: str = "checkout", *, error: bool = False, start: int = 0) -> str:
    """One trace of one span named `name`; returns its trace id."""
    trace_id = hex_id(32)
    status = {"code": 2, "message": "failed"} if error else {}
    started = 1_764_000_000_000_000_000 + start * 1_000_000_000
    body = span(
        traceId=trace_id,
        name=name,
        status=status,
        startTimeUnixNano=str(started),
        endTimeUnixNano=str(started + 250_000_000),
    )
    stage_otlp(conn, [traces_request(body, service=service)])
    return trace_id


def word(n: int) -> str:
    """A distinct lower-case word for n (signatures replace digits by placeholders)."""
    return "".join(chr(ord("a") + int(d)) for d in f"{n:03d}")


def embed_by_name(conn, vectors: dict[str, str], model: str = MODEL) -> None:
    """Give each signature whose text contains a key the key's vector."""
    for key, vector in vectors.items():
        conn.execute(
            "update otel.span_signatures set embedding = %s::vector, embedding_model = %s, embedded_at = now()"
            " where text like %s",
            (vector, model, f"%{key}%"),
        )


def similar(conn, query: str, *args, **named) -> list[tuple]:
    params = ", ".join(["%s::vector", *["%s"] * len(args), *[f"{k} => %s" for k in named]])
    return conn.execute(
        f"select trace_id, similarity from otel.similar_traces({params})", (query, *args, *named.values())
    ).fetchall()


@pytest.fixture
def catalogue(conn):
    """Traces of three kinds: refunds (axis 0), logins (axis 1), uploads (axis 2)."""
    traces = {
        "refund": [store_trace(conn, "refund order", start=i) for i in range(3)],
        "login": [store_trace(conn, "login user", start=i) for i in range(2)],
        "upload": [store_trace(conn, "upload avatar", service="media", start=i) for i in range(2)],
    }
    flush(conn)
    embed_by_name(
        conn, {"refund": axis_vector((0, 1)), "login": axis_vector((1, 1)), "upload": axis_vector((0, 0.5), (2, 1))}
    )
    return traces


def test_results_are_one_row_per_trace_best_first(conn, catalogue):
    rows = similar(conn, axis_vector((0, 1), (2, 0.1)), 10, 0.3)
    ids = [trace_id for trace_id, _ in rows]
    assert set(ids[:3]) == set(catalogue["refund"])
    assert set(ids[3:]) == set(catalogue["upload"])
    assert len(ids) == len(set(ids))
    assert [s for _, s in rows] == sorted((s for _, s in rows), reverse=True)


def test_min_similarity_and_k_bound_the_answer(conn, catalogue):
    assert len(similar(conn, axis_vector((0, 1)), 2, 0.3)) == 2
    assert {t for t, _ in similar(conn, axis_vector((0, 1)), 10, 0.99)} == set(catalogue["refund"])


def test_service_and_since_filter_spans(conn, catalogue):
    assert {t for t, _ in similar(conn, axis_vector((0, 1)), 10, 0.1, "media")} == set(catalogue["upload"])
    newest = similar(conn, axis_vector((0, 1)), 10, 0.99, None, "2025-11-24T16:00:01Z")
    assert {t for t, _ in newest} == set(catalogue["refund"][1:])


def test_filters_keep_recall_on_the_index(conn):
    """A service whose spans rank far down still gets all its k traces (iterative index scan)."""
    rng = np.random.default_rng(7)

    def near(axis: int, spread: float) -> str:
        vector = np.zeros(384)
        vector[axis] = 1
        vector += rng.normal(0, spread, 384)
        return "[" + ",".join(f"{x:.7g}" for x in vector / np.linalg.norm(vector)) + "]"

    crowd = [store_trace(conn, f"crowd {word(i)}", service="crowd") for i in range(300)]
    wanted = [store_trace(conn, f"rare {word(i)}", service="rare") for i in range(5)]
    flush(conn)
    for i in range(len(crowd)):
        embed_by_name(conn, {f"crowd {word(i)}": near(0, 0.01)})
    for i in range(len(wanted)):
        embed_by_name(conn, {f"rare {word(i)}": near(0, 0.04)})
    conn.execute("set enable_seqscan = off")  # answer from the HNSW index
    rows = similar(conn, axis_vector((0, 1)), 5, 0.5, "rare")
    assert {t for t, _ in rows} == set(wanted)
    assert len(similar(conn, axis_vector((0, 1)), 1000, 0.5)) == 305


def test_a_trace_finds_traces_like_it_never_itself(conn, catalogue):
    first, *others = catalogue["refund"]
    rows = conn.execute("select trace_id from otel.similar_traces(%s, 10, 0.99)", (first.upper(),)).fetchall()
    assert {r[0] for r in rows} == set(others)


def test_a_failing_trace_without_an_exception_is_searched_by_its_error_span(conn):
    trace_id = hex_id(32)
    root = span(traceId=trace_id, name="checkout cart")
    failing = span(traceId=trace_id, name="charge card", parentSpanId=root["spanId"], status={"code": 2})
    stage_otlp(conn, [traces_request(root, failing)])
    declined = [store_trace(conn, "charge card", error=True, start=i) for i in range(2)]
    carts = [store_trace(conn, "checkout cart", start=i) for i in range(2)]
    flush(conn)
    embed_by_name(conn, {"charge card": axis_vector((5, 1)), "checkout cart": axis_vector((6, 1))})
    found = {r[0] for r in conn.execute("select trace_id from otel.similar_traces(%s, 10, 0.9)", (trace_id,))}
    assert found == set(declined)
    assert not found & set(carts)


def propagated(conn, raised: str, exception: str, start: int) -> tuple[str, str]:
    """A gateway answers 502 because a checkout call answered 500 because `raised` raised `exception`.

    Returns the trace id and the id of the span that raised.
    """
    trace_id = hex_id(32)
    started = 1_764_000_000_000_000_000 + start * 1_000_000_000
    times = {"startTimeUnixNano": str(started), "endTimeUnixNano": str(started + 250_000_000)}

    def http(code: int) -> list[dict]:
        return [{"key": "http.response.status_code", "value": {"intValue": str(code)}}]

    gateway = span(traceId=trace_id, name="POST /orders", status={"code": 2}, attributes=http(502), **times)
    call = span(
        traceId=trace_id,
        name="POST",
        kind=3,
        parentSpanId=gateway["spanId"],
        status={"code": 2},
        attributes=http(500),
        **times,
    )
    server = span(
        traceId=trace_id,
        name="POST /charge",
        parentSpanId=call["spanId"],
        status={"code": 2},
        attributes=http(500),
        **times,
    )
    cause = span(
        traceId=trace_id,
        name=raised,
        kind=1,
        parentSpanId=server["spanId"],
        status={"code": 2, "message": f"{exception}: no"},
        attributes=[],
        events=[{"name": "exception", "attributes": [{"key": "exception.type", "value": {"stringValue": exception}}]}],
        **times,
    )
    stage_otlp(conn, [traces_request(gateway, call, server, cause)])
    return trace_id, cause["spanId"]


def test_a_failing_trace_is_searched_by_where_its_failure_began(conn):
    """Three generic error spans (502, 500, 500) above the one that raised must not decide the answer."""
    query, _ = propagated(conn, "authorize card", "CardDeclined", 0)
    same = [propagated(conn, "authorize card", "CardDeclined", i) for i in range(1, 3)]
    other = [propagated(conn, "reserve stock", "OutOfStock", i) for i in range(3, 6)]
    flush(conn)
    embed_by_name(
        conn,
        {
            "| internal authorize card": axis_vector((5, 1)),
            "| internal reserve stock": axis_vector((7, 1)),
            "POST": axis_vector((6, 1)),  # the gateway's, the call's and the server's spans
        },
    )
    rows = conn.execute(
        "select trace_id, span_id, similarity from otel.similar_traces(%s, 10, 0.5)", (query,)
    ).fetchall()
    # each like trace once, by the span that raised, and nothing else: the
    # mean of the four error spans would have found the OutOfStock traces too
    assert sorted((t, s) for t, s, _ in rows) == sorted(same)
    assert [round(v, 6) for _, _, v in rows] == [1.0, 1.0]
    assert not {t for t, _, _ in rows} & {t for t, _ in other}


def test_unknown_or_unembedded_traces_give_nothing(conn, catalogue):
    assert scalar(conn, "select count(*) from otel.similar_traces(%s)", ("f" * 32,)) == 0
    pending = store_trace(conn, "not embedded yet")
    flush(conn)
    assert scalar(conn, "select count(*) from otel.similar_traces(%s)", (pending,)) == 0


def test_fallback_vectors_are_never_compared_with_model_vectors(conn, catalogue):
    conn.execute("update otel.span_signatures set embedding_model = 'fallback-hash' where text like '%login%'")
    assert not {t for t, _ in similar(conn, axis_vector((1, 1)), 10, 0.5)} & set(catalogue["login"])
    found = similar(conn, axis_vector((1, 1)), 10, 0.5, None, None, "fallback-hash")
    assert {t for t, _ in found} == set(catalogue["login"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("otel.similar_traces('[1,2,3]'::vector)", "query has 3 dimensions"),
        ("otel.similar_traces(null::vector)", "query must be a vector"),
        ("otel.similar_traces(%(v)s::vector, 0)", "k must be between 1 and 1000, got 0"),
        ("otel.similar_traces(%(v)s::vector, 1001)", "k must be between 1 and 1000"),
        ("otel.similar_traces(%(v)s::vector, null)", "k must be between 1 and 1000, got null"),
        ("otel.similar_traces(%(v)s::vector, 10, 1.5)", "min_similarity must be"),
        ("otel.similar_traces(%(v)s::vector, 10, 'NaN')", "min_similarity must be"),
        ("otel.similar_traces(null::text)", "trace_id must be a trace id"),
        (f"otel.similar_traces('{'a' * 32}', -1)", "k must be between 1 and 1000, got -1"),
        ("otel.similar_traces('abc')", "trace_id must be a trace id"),
        ("otel.similar_traces('[0.1, 0.2]')", "trace_id must be a trace id"),
    ],
)
def test_bad_arguments_raise_invalid_parameter_value(conn, call, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        conn.execute(f"select * from {call}", {"v": axis_vector((0, 1))})


# ---------------------------------------------------------------- the queue


def fallback_embedder(tmp_path) -> Embedder:
    return Embedder(tmp_path / "no-model", cache_size=0)


def test_workers_at_once_never_embed_a_signature_twice(dsn, conn, tmp_path):
    stage_otlp(conn, [traces_request(*[span(name=f"operation {word(i)}") for i in range(400)])])
    flush(conn)
    total = scalar(conn, "select count(*) from otel.span_signatures")
    seen: list[list[str]] = [[], []]

    class Recording(Embedder):
        def __init__(self, log: list[str]) -> None:
            super().__init__(tmp_path / "no-model", cache_size=0)
            self.log = log

        def embed(self, texts):
            self.log.extend(texts)
            return super().embed(texts)

    def work(log: list[str]) -> None:
        with psycopg.connect(dsn, autocommit=True) as own:
            embed_pending(own, Recording(log), batch_size=7)

    threads = [threading.Thread(target=work, args=(log,)) for log in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(seen[0]) & set(seen[1])
    assert len(seen[0]) + len(seen[1]) == total
    assert seen[0] and seen[1], "both workers should have had batches"
    status = conn.execute("select pending, fallback, embedded, failed from otel.embedding_status").fetchone()
    assert status == (0, total, 0, 0)


def test_a_failing_batch_counts_an_attempt_and_waits(conn, tmp_path):
    stage_otlp(conn, [traces_request(span(name="flaky one"), span(name="flaky two"))])
    flush(conn)

    class Broken(Embedder):
        def embed(self, texts):
            raise RuntimeError("model exploded")

    report = embed_pending(conn, Broken(tmp_path / "no-model"), batch_size=10)
    assert (report.embedded, report.failed) == (0, 2)
    rows = conn.execute(
        "select attempts, last_error, next_attempt_at > now() + interval '25 seconds' from otel.span_signatures"
    ).fetchall()
    assert rows == [(1, "RuntimeError: model exploded", True)] * 2
    assert embed_pending(conn, fallback_embedder(tmp_path), batch_size=10).embedded == 0  # still backing off
    conn.execute("update otel.span_signatures set next_attempt_at = now() - interval '1 second'")
    assert embed_pending(conn, fallback_embedder(tmp_path), batch_size=10).embedded == 2
    assert scalar(conn, "select count(*) from otel.span_signatures where last_error is not null") == 0


def test_signatures_out_of_attempts_count_as_failed(conn):
    stage_otlp(conn, [traces_request(span(name="doomed"), span(name="fine"))])
    flush(conn)
    conn.execute(
        "update otel.span_signatures set attempts = otel.embedding_max_attempts() where text like '%%doomed%%'"
    )
    conn.execute("update otel.span_signatures set attempts = 2 where text like '%%fine%%'")
    assert conn.execute("select pending, retrying, failed from otel.embedding_status").fetchone() == (1, 1, 1)
    assert [r[1] for r in conn.execute("select * from otel.claim_signatures(10, 'm')")] == [
        scalar(conn, "select text from otel.span_signatures where text like '%%fine%%'")
    ]


def test_storing_a_vector_of_the_wrong_dimension_is_refused(conn):
    conn.execute("create temp table otel_embeddings (id bigint, embedding real[])")
    conn.execute("insert into otel_embeddings values (1, array[1, 2, 3])")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="has 3 dimensions"):
        conn.execute("select otel.store_embeddings('m')")


def test_a_real_model_worker_replaces_fallback_vectors(conn, tmp_path):
    stage_otlp(conn, [traces_request(span(name="resize image"))])
    flush(conn)
    embed_pending(conn, fallback_embedder(tmp_path), batch_size=10)
    claimed = conn.execute("select count(*) from otel.claim_signatures(10, %s)", (MODEL,)).fetchone()[0]
    assert claimed == 1
    assert scalar(conn, "select count(*) from otel.claim_signatures(10, 'fallback-hash')") == 0


def test_client_passes_text_through_its_embedder(dsn, conn, tmp_path):
    store_trace(conn, "archive mailbox")
    flush(conn)
    with Client(dsn, settings=Settings(connection_string=dsn, model_dir=str(tmp_path / "no-model"))) as client:
        embed_pending(client.connection(), client.embedder(), batch_size=10)
        [result] = client.similar_traces("checkout | server archive mailbox", min_similarity=0.3)
        assert result.name == "archive mailbox" and result.service == "checkout"
        with pytest.raises(ValueError, match="query is empty"):
            client.similar_traces("  ")


class Refusing(Embedder):
    """A model that returns vectors the server refuses (NaN)."""

    def embed(self, texts):
        return np.full((len(texts), 384), np.nan, dtype=np.float32)


def test_vectors_the_server_refuses_fail_the_batch_not_the_worker(conn, tmp_path):
    stage_otlp(conn, [traces_request(span(name="nan maker"))])
    flush(conn)
    report = embed_pending(conn, Refusing(tmp_path / "no-model"), batch_size=10)
    assert (report.embedded, report.failed) == (0, 1)
    error = scalar(conn, "select last_error from otel.span_signatures")
    assert error.startswith("the database refused the vectors")


def test_a_failing_model_over_fallback_vectors_counts_attempts_and_stops(conn, tmp_path):
    stage_otlp(conn, [traces_request(span(name="first fallback"))])
    flush(conn)
    embed_pending(conn, fallback_embedder(tmp_path), batch_size=10)

    class BrokenModel(Embedder):
        def __init__(self, model_dir) -> None:
            super().__init__(model_dir)
            self.model_name = MODEL  # a worker of the real model

        def embed(self, texts):
            raise RuntimeError("model exploded")

    report = embed_pending(conn, BrokenModel(tmp_path / "no-model"), batch_size=10)  # returns: nothing claimable twice
    assert (report.embedded, report.failed) == (0, 1)
    assert scalar(conn, "select attempts from otel.span_signatures") == 1
