"""otel.resign_spans(): stored spans move to the signatures a flush gives them now."""

from tests.helpers import flush, scalar, stage_otlp
from tests.otlp import attribute, span, traces_request
from tests.test_signatures import grpc_call

DAY = "2025-11-24"  # the spans' day (tests.otlp.span())


def declined() -> dict:
    return span(
        name="charge",
        status={"code": 2, "message": "card declined"},
        events=[{"name": "exception", "attributes": [attribute("exception.type", {"stringValue": "CardDeclined"})]}],
    )


def signatures(conn) -> dict[str, int]:
    """Signature text by span, for the spans stored."""
    rows = conn.execute(
        "select t.span_id, g.text from otel.traces t join otel.span_signatures g on g.id = t.signature_id"
    ).fetchall()
    return dict(rows)


def store_as_an_older_release_signed(conn) -> tuple[dict[str, str], int]:
    """Spans flushed now, then their signatures put back as the release before 0020 wrote them.

    Then the exception's class name was not in words, and spans differing
    only in their gRPC status shared a signature (the first one's, without
    the code). Returns the current signatures by span and the id of the
    signature that needs no change.
    """
    plain = span(name="GET /")
    spans = [declined(), declined(), grpc_call(0), grpc_call(14), plain]
    stage_otlp(conn, [traces_request(*spans)])
    flush(conn)
    current = signatures(conn)
    conn.execute(
        "update otel.span_signatures set text = replace(text, ' (card declined)', ''),"
        " embedding = array_fill(0.1, array[384])::vector, embedding_model = 'all-MiniLM-L6-v2'"
    )
    shared = scalar(conn, "select signature_id from otel.traces where span_id = %s", (spans[2]["spanId"],))
    conn.execute(
        "update otel.traces set signature_id = %s where name = 'shop.Shipping/Quote'",
        (shared,),
    )
    conn.execute("delete from otel.span_signatures where text like '%%grpc 14%%'")
    conn.execute(
        "update otel.span_signatures set text = replace(text, ' | grpc 0 ok', ''), span_count = 2 where id = %s",
        (shared,),
    )
    unchanged = scalar(conn, "select signature_id from otel.traces where span_id = %s", (plain["spanId"],))
    return current, unchanged


def test_resign_moves_spans_to_the_signatures_a_flush_gives_now(conn):
    current, unchanged = store_as_an_older_release_signed(conn)
    assert signatures(conn) != current
    conn.execute("call otel.resign_spans()")
    assert signatures(conn) == current
    counts = dict(conn.execute("select text, span_count from otel.span_signatures").fetchall())
    assert counts == {text: list(current.values()).count(text) for text in current.values()}
    # The signature that said the same keeps its id and its vector; the new
    # ones wait for the embedding worker; the old ones without spans are gone.
    assert scalar(conn, "select embedding is not null from otel.span_signatures where id = %s", (unchanged,))
    assert scalar(conn, "select count(*) from otel.span_signatures where embedding is null") == 3
    assert scalar(conn, "select count(*) from otel.span_signatures") == 4


def test_resign_again_changes_nothing(conn):
    store_as_an_older_release_signed(conn)
    conn.execute("call otel.resign_spans()")
    before = conn.execute("select id, text, span_count from otel.span_signatures order by id").fetchall()
    assert scalar(conn, "select otel.resign_partition(%s)", (DAY,)) == 0
    conn.execute("call otel.resign_spans()")
    assert conn.execute("select id, text, span_count from otel.span_signatures order by id").fetchall() == before


def test_resign_since_leaves_older_days_and_their_signatures(conn):
    current, _ = store_as_an_older_release_signed(conn)
    stale = signatures(conn)
    next_day = [dict(declined(), startTimeUnixNano="1764090000000000000", endTimeUnixNano="1764090000100000000")]
    stage_otlp(conn, [traces_request(*next_day)])
    flush(conn)
    old_text = next(text for text in stale.values() if "CardDeclined |" in text)
    old_id = scalar(conn, "select id from otel.span_signatures where text = %s", (old_text,))
    conn.execute("update otel.traces set signature_id = %s where span_id = %s", (old_id, next_day[0]["spanId"]))
    conn.execute("update otel.span_signatures set span_count = 3 where id = %s", (old_id,))
    conn.execute("call otel.resign_spans('2025-11-25T00:00:00Z')")  # the next day only
    new_text = next(text for text in current.values() if "(card declined)" in text)
    assert signatures(conn) == {**stale, next_day[0]["spanId"]: new_text}
    # the old signature keeps the two spans of the day before, and counts them
    assert scalar(conn, "select span_count from otel.span_signatures where id = %s", (old_id,)) == 2
    assert scalar(conn, "select otel.resign_partition(%s)", (DAY,)) == 4
    assert scalar(conn, "select count(*) from otel.span_signatures where id = %s", (old_id,)) == 0


def test_resign_of_a_day_without_partition_moves_nothing(conn):
    assert scalar(conn, "select otel.resign_partition('1999-01-01')") == 0
    conn.execute("call otel.resign_spans()")
