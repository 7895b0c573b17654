"""The flush as a whole: summaries, signatures, staging space, concurrency, invariants."""

import json
import subprocess
import threading

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import flush, scalar, stage_otlp
from tests.otlp import attribute, hex_id, log_record, logs_request, span, traces_request


def test_trace_summary_follows_spans_across_flushes(conn):
    trace = hex_id(32)
    root = span(traceId=trace, name="POST /checkout", startTimeUnixNano="1764000000000000000")
    stage_otlp(
        conn, [traces_request(span(traceId=trace, parentSpanId=root["spanId"], status={"code": 2}), service="payment")]
    )
    flush(conn)
    stage_otlp(conn, [traces_request(root, service="frontend")])
    flush(conn)
    summary = conn.execute(
        "select root_service, root_name, span_count, error_count, services, duration_ms from otel.trace_summaries"
    ).fetchone()
    assert summary == ("frontend", "POST /checkout", 2, 1, ["frontend", "payment"], 250.0)


def test_trace_summary_names_the_earliest_of_several_roots(conn):
    # The later root sorts first by name and service: only its start time may decide.
    trace = hex_id(32)
    late = span(traceId=trace, name="a late root")
    late.update(startTimeUnixNano="1764000000500000000", endTimeUnixNano="1764000000600000000")
    early = span(traceId=trace, name="z early root", startTimeUnixNano="1764000000000000000")
    stage_otlp(conn, [traces_request(late, service="a-service"), traces_request(early, service="z-service")])
    flush(conn)
    summary = conn.execute("select root_service, root_name, span_count, services from otel.trace_summaries").fetchone()
    assert summary == ("z-service", "z early root", 2, ["a-service", "z-service"])


@pytest.mark.parametrize(("days_apart", "partitioned"), [(2, ["24", "25", "26"]), (3, ["24", "27"])])
def test_a_batch_gets_the_partitions_of_its_days(conn, days_apart, partitioned):
    """Two or three consecutive days are taken whole; days further apart only where they have rows."""
    day_ns = 86_400 * 10**9
    first = 1_764_000_000 * 10**9  # 2025-11-24
    spans = [
        span(startTimeUnixNano=str(start), endTimeUnixNano=str(start + 10**6))
        for start in (first, first + days_apart * day_ns)
    ]
    stage_otlp(conn, [traces_request(*spans)])
    assert flush(conn)["spans"] == 2
    created = conn.execute(
        "select right(c.relname, 2) from pg_inherits as i join pg_class as c on c.oid = i.inhrelid"
        " where i.inhparent = 'otel.traces'::regclass and c.relname like 'traces_p202511%' order by 1"
    ).fetchall()
    assert [day for (day,) in created] == partitioned


def test_spans_differing_only_in_ids_and_numbers_share_a_signature(conn):
    failing = [
        span(
            name=f"GET /orders/{n}",
            status={"code": 2, "message": f"timeout after {n * 100} ms talking to 10.0.0.{n}:5432"},
            attributes=[attribute("http.request.method", {"stringValue": "GET"})],
        )
        for n in range(1, 6)
    ]
    stage_otlp(conn, [traces_request(*failing, span(name="healthcheck"))])
    flush(conn)
    signatures = conn.execute("select text, span_count from otel.span_signatures order by span_count desc").fetchall()
    assert len(signatures) == 2
    text, count = signatures[0]
    assert count == 5
    assert text == "checkout | server GET /orders/<num> | error: timeout after <num> ms talking to <ip> | GET"
    assert scalar(conn, "select count(distinct signature_id) from otel.traces") == 2


def test_flush_truncates_idle_staging_tables(conn):
    stage_otlp(conn, [traces_request(*[span() for _ in range(200)])])
    run = flush(conn)
    assert run["truncated_staging"] == ["otlp_staging", "traces_staging", "logs_staging", "metrics_staging"]
    assert scalar(conn, "select pg_relation_size('otel.otlp_staging')") == 0


def test_uncommitted_rows_wait_for_the_next_flush(conn, dsn):
    with psycopg.connect(dsn) as writer:
        stage_otlp(writer, [traces_request(span())])
        first = flush(conn)  # the writer has not committed: nothing to take, nothing blocked
        writer.commit()
    second = flush(conn)
    assert (first["spans"], second["spans"]) == (0, 1)


def test_a_second_flush_waits_for_the_first_and_takes_the_rest(conn, dsn):
    stage_otlp(conn, [traces_request(span())])
    with psycopg.connect(dsn) as first:
        first.execute("lock table otel.flush_lock in exclusive mode")  # a flush in progress
        stage_otlp(conn, [traces_request(span())])
        second = threading.Thread(target=lambda: flush(psycopg.connect(dsn, autocommit=True)))
        second.start()
        second.join(timeout=1)
        assert second.is_alive(), "the second flush should wait for the first"
        first.commit()
    second.join(timeout=30)
    assert not second.is_alive()
    assert scalar(conn, "select count(*) from otel.traces") == 2
    assert scalar(conn, "select sum(spans) from otel.flush_runs") == 2


def test_concurrent_writers_and_flushes_lose_and_double_nothing(conn, dsn):
    writers, batches, per_batch = 4, 15, 40
    errors: list[BaseException] = []
    done = threading.Event()

    def write(seed: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                for _ in range(batches):
                    stage_otlp(c, [traces_request(*[span() for _ in range(per_batch)])])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    def flush_until_done() -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                while not done.is_set():
                    c.execute("call otel.flush()")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    flushers = [threading.Thread(target=flush_until_done) for _ in range(2)]
    writer_threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in flushers + writer_threads:
        thread.start()
    for thread in writer_threads:
        thread.join()
    done.set()
    for thread in flushers:
        thread.join()
    flush(conn)
    assert errors == []
    expected = writers * batches * per_batch
    assert scalar(conn, "select count(*) from otel.traces") == expected
    assert scalar(conn, "select count(distinct (trace_id, span_id)) from otel.traces") == expected
    assert scalar(conn, "select sum(spans) from otel.flush_runs") == expected
    assert scalar(conn, "select sum(duplicates) + sum(dead_lettered) from otel.flush_runs") == 0


def psql_copy(dsn: str, path) -> None:
    """The documented command for writers without Python."""
    command = f"\\copy otel.otlp_staging (payload) from '{path}' with (format csv, quote e'\\x01', delimiter e'\\x02')"
    subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", command], check=True, capture_output=True)


def test_psql_copy_loads_otlp_json_byte_exactly(conn, dsn, tmp_path):
    tricky = ["back\\slash", "\\N", "\\.", 'quote " and tab \t', "ümlaut ✓", "comma, semicolon;"]
    records = [log_record(body={"stringValue": text}) for text in tricky]
    path = tmp_path / "logs.jsonl"
    path.write_text(
        "\n".join(json.dumps(logs_request(r), ensure_ascii=False) for r in records) + "\n", encoding="utf-8"
    )
    psql_copy(dsn, path)
    run = flush(conn)
    assert run["logs"] == len(tricky)
    assert sorted(r[0] for r in conn.execute("select body from otel.logs")) == sorted(tricky)


def test_psql_copy_stops_at_a_bare_end_of_data_line(conn, dsn, tmp_path):
    # PostgreSQL 15 reads an unquoted line "\." as the end of COPY data, in CSV
    # mode too: what follows is not loaded. No OTLP/JSON line looks like
    # that; the README warns, and `otel-db ingest` quotes every line instead.
    path = tmp_path / "cut.jsonl"
    lines = [json.dumps(logs_request(log_record())), "\\.", json.dumps(logs_request(log_record()))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    psql_copy(dsn, path)
    assert scalar(conn, "select count(*) from otel.otlp_staging") == 1


SPAN_FIELDS = {
    "trace_id": st.sampled_from(["0af7651916cd43dd8448eb211c80319c", "", "xyz", "0" * 32, "ABCDEF" * 5 + "ab"]),
    "kind": st.sampled_from(["SERVER", "2", "bogus", None]),
    "start_time": st.sampled_from(["1764000000000000000", "2025-11-24T10:00:00Z", "2025-02-30T00:00:00Z", "x"]),
    "end_time": st.sampled_from(["1764000001000000000", "2025-11-24T10:00:01Z", "0", None]),
    "attributes": st.sampled_from(['{"a": 1}', "{broken", "[]", None, '{"big": 18446744073709551615}']),
    "name": st.sampled_from(["op", None, "x" * 5000]),
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.fixed_dictionaries(SPAN_FIELDS), min_size=1, max_size=40))
def test_every_staged_row_ends_exactly_once_in_a_table_or_the_queue(conn, rows):
    conn.execute("truncate otel.traces, otel.trace_summaries, otel.telemetry_dlq, otel.flush_runs")
    columns = ["span_id", *SPAN_FIELDS]
    with conn.cursor().copy(f"copy otel.traces_staging ({', '.join(columns)}) from stdin") as copy:
        for number, row in enumerate(rows, start=1):
            copy.write_row([f"{number:016x}", *row.values()])
    run = flush(conn)
    stored = scalar(conn, "select count(*) from otel.traces")
    letters = scalar(conn, "select count(*) from otel.telemetry_dlq")
    assert stored + letters + run["duplicates"] == len(rows)
    assert (run["spans"], run["dead_lettered"]) == (stored, letters)
    assert scalar(conn, "select count(*) from otel.traces_staging") == 0


def test_flush_commits_in_between_so_refuses_a_transaction_block(dsn):
    with psycopg.connect(dsn) as inside, pytest.raises(psycopg.errors.InvalidTransactionTermination):
        inside.execute("call otel.flush()")


def test_rows_claimed_by_an_interrupted_flush_land_with_the_next(conn):
    stage_otlp(conn, [traces_request(span(), span())])
    truncated = scalar(conn, "select otel.flush_claim()")  # the first transaction only, then "a crash"
    assert "otlp_staging" in truncated
    assert scalar(conn, "select count(*) from otel.claimed_otlp") == 1
    stage_otlp(conn, [traces_request(span())])
    run = flush(conn)
    assert run["spans"] == 3
    assert scalar(conn, "select count(*) from otel.claimed_otlp") == 0


def stage_typed(conn, *rows: dict) -> None:
    columns = sorted({key for row in rows for key in row})
    with conn.cursor().copy(f"copy otel.traces_staging ({', '.join(columns)}) from stdin") as copy:
        for row in rows:
            copy.write_row([row.get(c) for c in columns])


def typed(span_id: str, name: str, **extra) -> dict:
    return {
        "trace_id": "ab" * 16,
        "span_id": span_id,
        "name": name,
        "start_time": "2025-11-24T10:00:00Z",
        "end_time": "2025-11-24T10:00:01Z",
        **extra,
    }


@pytest.mark.parametrize("fallback", [False, True], ids=["typed in place", "working set"])
def test_of_two_duplicate_staged_spans_the_first_is_kept_on_either_path(conn, fallback):
    rows = [typed("00000000000000aa", "first"), typed("00000000000000aa", "second")]
    if fallback:  # an unreadable row sends the whole claim through the working set
        rows.append(typed("00000000000000bb", "bad", attributes="{bad"))
    stage_typed(conn, *rows)
    run = flush(conn)
    assert (run["spans"], run["duplicates"]) == (1, 1)
    assert scalar(conn, "select name from otel.traces") == "first"


def test_a_repeatable_read_flush_never_truncates_claims_it_cannot_see(conn, dsn):
    """A flush whose snapshot predates another flush's claim leaves that claim for later."""
    stage_typed(conn, typed("0000000000000001", "claimed earlier"))
    conn.execute("select otel.flush_claim()")
    stage_typed(conn, typed("0000000000000002", "claimed meanwhile"))
    with psycopg.connect(dsn) as claimer, psycopg.connect(dsn) as processor:
        claimer.execute("select otel.flush_claim()")  # holds the flush lock until commit
        processor.execute("set transaction isolation level repeatable read")
        processor.execute("select 1")  # its snapshot: without the second claim
        done = threading.Event()

        def process() -> None:
            processor.execute("select otel.flush_process(now(), '{}')")
            processor.commit()
            done.set()

        worker = threading.Thread(target=process)
        worker.start()
        assert not done.wait(0.5), "the processing flush should wait for the claiming one"
        claimer.commit()
        worker.join(30)
        assert done.is_set()
    flush(conn)
    assert sorted(r[0] for r in conn.execute("select name from otel.traces")) == [
        "claimed earlier",
        "claimed meanwhile",
    ]


def stack_trace(n: int) -> str:
    """A Python traceback of some 4 kB: a value PostgreSQL compresses."""
    return "".join(
        f'  File "/app/orders/step_{i}.py", line {i * 7}, in handle_{i}\n    fetch({n}, {i})\n' for i in range(60)
    )


def test_large_values_are_compressed_with_lz4_from_staging_to_the_final_tables(conn):
    raised = {
        "name": "exception",
        "timeUnixNano": "1764000000100000000",
        "attributes": [attribute("exception.stacktrace", {"stringValue": stack_trace(1)})],
    }
    stage_otlp(conn, [traces_request(span(events=[raised]))])
    with conn.cursor().copy(
        "copy otel.traces_staging (trace_id, span_id, name, start_time, end_time, events) from stdin"
    ) as copy:
        copy.write_row(
            [
                hex_id(32),
                hex_id(16),
                "typed",
                "1764000000000000000",
                "1764000000250000000",
                json.dumps([{"name": "exception", "attributes": {"exception.stacktrace": stack_trace(2)}}]),
            ]
        )
    assert scalar(conn, "select pg_column_compression(events) from otel.traces_staging") == "lz4"
    assert flush(conn)["spans"] == 2
    stored = conn.execute("select name, pg_column_compression(events) from otel.traces order by name").fetchall()
    assert stored == [("GET /users/{id}", "lz4"), ("typed", "lz4")]
