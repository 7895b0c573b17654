"""Bad input goes to the dead-letter queue with a clear message; neighbours land."""

import json

import psycopg
import pytest

from tests.helpers import dead_letters, flush, scalar, stage_otlp
from tests.otlp import attribute, log_record, logs_request, span, traces_request

GOOD = traces_request(span())


def stage_typed_spans(conn, rows: list[dict]) -> None:
    columns = sorted({key for row in rows for key in row})
    with conn.cursor().copy(f"copy otel.traces_staging ({', '.join(columns)}) from stdin") as copy:
        for row in rows:
            copy.write_row([row.get(c) for c in columns])


def typed_span(**overrides) -> dict:
    row = {
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331",
        "name": "SELECT orders",
        "kind": "CLIENT",
        "start_time": "2025-11-24T10:00:00.000001Z",
        "end_time": "2025-11-24T10:00:00.250Z",
        "status_code": "OK",
        "attributes": '{"db.system": "postgresql"}',
    }
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"resourceSpans": [', "not valid JSON"),
        ("[1, 2, 3]", "not an OTLP/JSON export request"),
        ('"resourceSpans"', "not an OTLP/JSON export request"),
        ('{"resourceSpans": {"not": "an array"}}', "not a valid OTLP/JSON traces request"),
    ],
)
def test_unreadable_request_is_dead_lettered_whole(conn, payload, message):
    stage_otlp(conn, [json.dumps(GOOD), payload, json.dumps(traces_request(span()))])
    run = flush(conn)
    assert run["spans"] == 2
    [(kind, error, raw)] = dead_letters(conn)
    assert kind == "otlp"
    assert message in error
    assert raw == payload


@pytest.mark.parametrize(
    ("bad_span", "message"),
    [
        (span(traceId="xyz"), 'trace_id "xyz" is not 32 hex digits'),
        (span(traceId="0" * 31), f'trace_id "{"0" * 31}" is not 32 hex digits'),
        (span(traceId=" " * 32), "trace_id is missing, empty or all zeros"),
        (span(traceId="0" * 32), "trace_id is missing, empty or all zeros"),
        (span(spanId=""), "span_id is missing"),
        (span(spanId="g" * 16), f'span_id "{"g" * 16}" is not 16 hex digits'),
        (span(parentSpanId="12345"), 'parent_span_id "12345" is not 16 hex digits'),
        (span(kind=9), 'kind "9" is not a span kind'),
        (span(status={"code": 7}), 'status_code "7" is not a status'),
        (
            span(startTimeUnixNano="18446744073709551616"),
            "invalid OTLP startTimeUnixNano (not Unix nanoseconds, 0 to 2^64-1): 18446744073709551616",
        ),
        (span(endTimeUnixNano="1763999999000000000"), "is before start_time"),
        (span(attributes=[attribute("n", {"intValue": "notAndInt123"})]), "invalid OTLP intValue"),
        (span(attributes={"not": "a list"}), "rejected record"),
    ],
)
def test_bad_span_is_dead_lettered_and_its_siblings_land(conn, bad_span, message):
    request = traces_request(span(), bad_span, span())
    stage_otlp(conn, [request])
    run = flush(conn)
    assert run["spans"] == 2
    assert run["dead_lettered"] == 1
    [(kind, error, raw)] = dead_letters(conn)
    assert kind == "traces"
    assert message in error
    # The letter is a request holding just the bad span, with its resource and scope.
    letter = json.loads(raw)
    [resource] = letter["resourceSpans"]
    assert resource["resource"] == request["resourceSpans"][0]["resource"]
    assert resource["scopeSpans"][0]["spans"] == [bad_span]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"attributes": "{not json"}, "unreadable row: invalid input syntax for type json"),
        ({"start_time": "2025-13-45T00:00:00Z"}, "unreadable row"),
        ({"start_time": "yesterday"}, 'start_time "yesterday" is neither'),
        ({"kind": "SIDEWAYS"}, 'kind "SIDEWAYS"'),
        ({"attributes": "[1]"}, "attributes is not a JSON object"),
        ({"name": None}, "name is missing"),
        ({"service_name": "s" * 2000}, "service_name is longer than 1024 bytes"),
    ],
)
def test_bad_typed_row_is_dead_lettered_as_row_json(conn, overrides, message):
    rows = [typed_span(span_id=f"{i:016x}") for i in range(1, 2500)]
    rows[1200] = typed_span(span_id="00000000000004b1", **overrides)
    stage_typed_spans(conn, rows)
    run = flush(conn)
    assert run["spans"] == 2498
    [(kind, error, raw)] = dead_letters(conn)
    assert kind == "traces"
    assert message in error
    letter = json.loads(raw)
    assert letter["span_id"] == "00000000000004b1"
    for key, value in overrides.items():
        assert letter.get(key) == value


def test_duplicate_spans_are_dropped_and_counted(conn):
    twin = span()
    stage_otlp(conn, [traces_request(twin, twin)])
    first = flush(conn)
    stage_otlp(conn, [traces_request({**twin, "spanId": twin["spanId"].upper()})])
    second = flush(conn)
    assert (first["spans"], first["duplicates"]) == (1, 1)
    assert (second["spans"], second["duplicates"]) == (0, 1)
    assert scalar(conn, "select count(*) from otel.traces") == 1
    assert scalar(conn, "select count(*) from otel.telemetry_dlq") == 0


def test_a_trace_sent_again_with_new_spans_keeps_only_the_new_ones(conn):
    first, second = span(spanId="0000000000000001"), span(spanId="0000000000000002")
    same_trace = {"traceId": first["traceId"]}
    stage_otlp(conn, [traces_request(first, {**second, **same_trace})])
    flush(conn)
    # Again, with a new span of that trace and a trace of its own.
    later = {**span(spanId="0000000000000003", startTimeUnixNano="1764000000100000000"), **same_trace}
    stage_otlp(conn, [traces_request(first, {**second, **same_trace}, later, span())])
    again = flush(conn)
    assert (again["spans"], again["duplicates"]) == (2, 2)
    assert scalar(conn, "select count(*) from otel.traces where trace_id = %s", (first["traceId"],)) == 3
    assert scalar(conn, "select count(*) from otel.traces") == 4


def test_retry_moves_a_repaired_letter_and_counts_the_rest(conn):
    stage_typed_spans(
        conn,
        [typed_span(kind="SIDEWAYS"), typed_span(span_id="1111111111111111", start_time="never")],
    )
    flush(conn)
    conn.execute(
        "update otel.telemetry_dlq set raw_data = replace(raw_data, 'SIDEWAYS', 'SERVER')"
        " where error_message like 'kind%'"
    )
    conn.execute("call otel.retry_dlq()")
    letters = conn.execute(
        "select error_message, retry_count, processed_at is not null from otel.telemetry_dlq order by id"
    ).fetchall()
    assert [(r[1], r[2]) for r in letters] == [(0, True), (1, False)]
    assert scalar(conn, "select kind from otel.traces") == "SERVER"
    conn.execute("call otel.retry_dlq(2)")
    conn.execute("call otel.retry_dlq(2)")
    assert scalar(conn, "select max(retry_count) from otel.telemetry_dlq") == 2


def test_retry_of_an_otlp_record_letter(conn):
    bad = span(endTimeUnixNano="1")
    stage_otlp(conn, [traces_request(bad)])
    flush(conn)
    conn.execute(
        'update otel.telemetry_dlq set raw_data = replace(raw_data, \'"endTimeUnixNano": "1"\','
        ' \'"endTimeUnixNano": "1764000000300000000"\')'
    )
    conn.execute("call otel.retry_dlq()")
    assert scalar(conn, "select count(*) from otel.traces") == 1
    assert scalar(conn, "select count(*) from otel.telemetry_dlq where processed_at is null") == 0


def test_retry_rejects_a_bad_argument(conn):
    with pytest.raises(Exception, match="max_retries must be a positive integer") as info:
        conn.execute("call otel.retry_dlq(0)")
    assert info.value.sqlstate == "22023"


def test_dead_letter_function_keeps_bytes_recoverable(conn):
    raw = b'{"a": "\x00\xff"}'
    escaped = "".join(
        chr(b) if 0x20 <= b < 0x7F and b != 0x5C else ("\\\\" if b == 0x5C else f"\\{b:03o}") for b in raw
    )
    conn.execute(
        "select otel.dead_letter('otlp', 'test', %s, 'bytea-escape', 'contains a NUL byte')",
        (escaped,),
    )
    assert scalar(conn, "select decode(raw_data, 'escape') from otel.telemetry_dlq") == raw


def test_null_payload_is_a_dead_letter_not_a_stuck_flush(conn):
    conn.execute("insert into otel.otlp_staging (payload) values (null)")
    stage_otlp(conn, [GOOD])
    run = flush(conn)
    assert run["spans"] == 1
    assert dead_letters(conn) == [("otlp", "not valid JSON (an OTLP/JSON request is one JSON object per line)", "")]


def test_only_the_broken_signal_of_a_mixed_request_is_dead_lettered(conn):
    request = {**logs_request(log_record()), "resourceSpans": {"not": "an array"}}
    stage_otlp(conn, [request])
    run = flush(conn)
    assert run["logs"] == 1
    [(kind, _, raw)] = dead_letters(conn)
    assert kind == "otlp"
    assert json.loads(raw) == {"resourceSpans": {"not": "an array"}}


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"traceId": "xyz"}, 'trace_id "xyz" is not 32 hex digits'),
        ({"spanId": "1234567890abcdef0"}, 'span_id "1234567890abcdef0" is not 16 hex digits'),
        ({"traceId": "0" * 32, "spanId": ""}, None),  # no trace context: the record lands without one
    ],
)
def test_a_log_trace_context_is_an_id_or_nothing(conn, context, message):
    stage_otlp(conn, [logs_request(log_record(**context))])
    run = flush(conn)
    if message is None:
        assert run["logs"] == 1
        assert conn.execute("select trace_id, span_id from otel.logs").fetchone() == (None, None)
    else:
        assert run["logs"] == 0
        [(kind, error, _raw)] = dead_letters(conn)
        assert (kind, error) == ("logs", message)


def test_a_log_body_beyond_the_text_search_limit_still_lands(conn):
    body = " ".join(f"word{n}" for n in range(300_000))  # far more than a 1 MB tsvector
    stage_otlp(conn, [logs_request(log_record(body={"stringValue": body}))])
    assert flush(conn)["logs"] == 1


def test_dead_letter_refuses_row_json_that_is_not_a_row(conn):
    with pytest.raises(psycopg.Error, match="row-json letter") as info:
        conn.execute("select otel.dead_letter('traces', 'test', '[1]', 'row-json', 'x')")
    assert info.value.sqlstate == "22023"


def test_a_batch_spread_over_many_days_creates_a_bounded_number_of_partitions(conn):
    day_ns = 86_400 * 10**9
    spans = [
        span(
            startTimeUnixNano=str(1_700_000_000 * 10**9 + n * day_ns),
            endTimeUnixNano=str(1_700_000_001 * 10**9 + n * day_ns),
        )
        for n in range(40)
    ]
    stage_otlp(conn, [traces_request(*spans)])
    run = flush(conn)
    assert (run["spans"], run["dead_lettered"]) == (32, 8)
    assert all("one flush creates at most 32 new days" in error for _, error, _ in dead_letters(conn))
    conn.execute("call otel.retry_dlq()")
    assert scalar(conn, "select count(*) from otel.traces") == 40


def span_at(nanos: int) -> dict:
    """A span that starts at Unix time `nanos` and lasts a millisecond."""
    return span(startTimeUnixNano=str(nanos), endTimeUnixNano=str(nanos + 1_000_000))


def unix_nanos(conn, expression: str) -> int:
    """The database's value of a timestamptz expression, in Unix nanoseconds."""
    return int(scalar(conn, f"select (extract(epoch from {expression}) * 1e9)::bigint"))


def test_spans_further_ahead_than_the_future_margin_are_dead_lettered(conn):
    in_an_hour = unix_nanos(conn, "now() + interval '1 hour'")
    in_a_week = unix_nanos(conn, "now() + interval '7 days'")
    partition_in_a_week = (
        "select to_regclass('otel.traces_p' || to_char(now() at time zone 'UTC' + interval '7 days', 'YYYYMMDD'))"
    )
    stage_otlp(conn, [traces_request(span_at(in_an_hour), span_at(in_a_week))])
    run = flush(conn)
    assert (run["spans"], run["dead_lettered"]) == (1, 1)
    [(_, error, _)] = dead_letters(conn)
    assert "more than otel.future_margin ahead of the database clock" in error
    assert scalar(conn, partition_in_a_week) is None, "no partition is made for a rejected day"

    conn.execute("set otel.future_margin = '8 days'")
    conn.execute("call otel.retry_dlq()")
    assert scalar(conn, "select count(*) from otel.traces") == 2


def test_records_older_than_the_retention_are_dead_lettered_and_old_data_loads_without_one(conn):
    a_month_ago = unix_nanos(conn, "now() - interval '30 days'")
    yesterday = unix_nanos(conn, "now() - interval '1 day'")
    stage_otlp(conn, [logs_request(log_record(timeUnixNano=str(a_month_ago)))])
    assert flush(conn)["logs"] == 1, "with no retention set, old data loads"

    conn.execute("select otel.set_retention('logs', '7 days')")
    stage_otlp(conn, [logs_request(log_record(timeUnixNano=str(a_month_ago)), log_record(timeUnixNano=str(yesterday)))])
    stage_otlp(conn, [traces_request(span_at(a_month_ago))])
    run = flush(conn)
    assert (run["logs"], run["spans"], run["dead_lettered"]) == (1, 1, 1)
    [(kind, error, _)] = dead_letters(conn)
    assert kind == "logs"
    assert "the oldest time the logs retention keeps" in error


@pytest.mark.parametrize("margin", ["-1 day", "soon", "infinity"])
def test_a_future_margin_that_is_not_a_non_negative_interval_stops_the_flush_with_22023(conn, margin):
    stage_otlp(conn, [GOOD])
    conn.execute("select set_config('otel.future_margin', %s, false)", [margin])
    with pytest.raises(psycopg.Error, match=f"otel.future_margin '{margin}'") as info:
        conn.execute("call otel.flush()")
    assert info.value.sqlstate == "22023"
    conn.execute("reset otel.future_margin")
    assert flush(conn)["spans"] == 1, "the staged span waited for the next flush"


def test_a_large_claim_is_typed_in_parallel_with_its_bad_rows_dead_lettered(conn):
    padding = json.dumps({"db.system": "postgresql", "db.query.text": "x" * 400})
    rows = [typed_span(span_id=f"{i:016x}", attributes=padding) for i in range(1, 30_001)]
    rows[7] = typed_span(span_id=f"{8:016x}", kind="SIDEWAYS")
    rows[15_000] = typed_span(span_id=f"{15_001:016x}", end_time="2025-11-24T09:00:00Z")
    rows[29_999] = typed_span(span_id=f"{30_000:016x}", trace_id="not-hex")
    rows += [rows[100], rows[20_000]]
    stage_typed_spans(conn, rows)
    conn.execute("select otel.flush_claim()")
    conn.execute("set parallel_tuple_cost = 0")  # as otel.create_typed() has it
    conn.execute("set parallel_setup_cost = 100")
    query = scalar(conn, "select otel.typing_query('traces', otel.claim_table_rows('traces'))")
    plan = json.dumps(scalar(conn, f"explain (format json) {query}"))
    assert '"Node Type": "Gather"' in plan, "the typing query should run in parallel workers"

    run = flush(conn)
    assert (run["spans"], run["duplicates"], run["dead_lettered"]) == (29_997, 2, 3)
    letters = {json.loads(raw)["span_id"]: error for _, error, raw in dead_letters(conn)}
    assert 'kind "SIDEWAYS"' in letters[f"{8:016x}"]
    assert "is before start_time" in letters[f"{15_001:016x}"]
    assert 'trace_id "not-hex"' in letters[f"{30_000:016x}"]
    assert scalar(conn, "select count(*) from otel.claimed_traces") == 0


def test_a_large_otlp_batch_is_typed_in_parallel_with_its_bad_spans_dead_lettered(conn):
    padding = attribute("db.query.text", {"stringValue": "x" * 400})
    spans = [span(spanId=f"{i:016x}", attributes=[padding]) for i in range(1, 30_001)]
    spans[7] = span(spanId=f"{8:016x}", kind=9)
    spans[15_000] = span(spanId=f"{15_001:016x}", endTimeUnixNano="1763999999000000000")
    spans[29_999] = span(spanId=f"{30_000:016x}", traceId="not-hex")
    spans += [spans[100], spans[20_000]]
    stage_otlp(conn, [traces_request(*spans[i : i + 1000]) for i in range(0, len(spans), 1000)])
    conn.execute("select otel.flush_claim()")
    with conn.transaction():
        # The flush's first steps, to see that this batch takes the parallel path.
        conn.execute("select otel.flush_prepare()")
        conn.execute("select otel.load_claimed('{}')")
        conn.execute("select otel.decode_otlp('traces')")
        assert scalar(conn, "select otel.type_rows_in_parallel('traces')") is True
        raise psycopg.Rollback()
    run = flush(conn)
    assert (run["spans"], run["duplicates"], run["dead_lettered"]) == (29_997, 2, 3)
    letters = {
        json.loads(raw)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"]: error
        for _, error, raw in dead_letters(conn)
    }
    assert 'kind "9"' in letters[f"{8:016x}"]
    assert "is before start_time" in letters[f"{15_001:016x}"]
    assert 'trace_id "not-hex"' in letters[f"{30_000:016x}"]


def test_the_parallel_typing_of_a_working_set_steps_aside_for_what_it_cannot_do(conn):
    # Each transaction is a working set of its own (dropped at commit).
    rows = (
        "insert into pg_temp.otel_traces_rows (trace_id, span_id, name, start_time, end_time, attributes)"
        " select md5(g::text), right(md5(g::text), 16), 'GET /', '1764000000000000000', '1764000000500000000', %s"
        " from generate_series(1, 20000) as g"
    )
    with conn.transaction():
        conn.execute("select otel.flush_prepare()")
        conn.execute(rows, (json.dumps({"padding": "x" * 400}),))
        assert scalar(conn, "select otel.type_rows_in_parallel('traces')") is True
        assert scalar(conn, "select count(*) from pg_temp.otel_traces where err is null") == 20_000
        assert scalar(conn, "select to_regclass('otel.typing_traces_rows')") is None
        # Rows typed already (a claim typed in place): left to the serial path.
        assert scalar(conn, "select otel.type_rows_in_parallel('traces')") is False
    with conn.transaction():
        conn.execute("select otel.flush_prepare()")
        conn.execute(rows, (json.dumps({"padding": "x" * 400}),))
        conn.execute("update pg_temp.otel_traces_rows set attributes = '{not json' where n = 777")
        # Malformed JSON text: the serial path isolates it; nothing was changed.
        assert scalar(conn, "select otel.type_rows_in_parallel('traces')") is False
        assert scalar(conn, "select count(*) from pg_temp.otel_traces") == 0
    # Too few rows for parallel workers.
    with conn.transaction():
        conn.execute("select otel.flush_prepare()")
        conn.execute(rows.replace("20000", "10"), (json.dumps({}),))
        assert scalar(conn, "select otel.type_rows_in_parallel('traces')") is False
