"""The query functions for readers, on data staged through the typed tables."""

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.helpers import flush, scalar

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def stage(conn, kind: str, rows: list[dict]) -> None:
    columns = sorted({key for row in rows for key in row})
    with conn.cursor().copy(f"copy otel.{kind}_staging ({', '.join(columns)}) from stdin") as copy:
        for row in rows:
            copy.write_row([json.dumps(v) if isinstance(v, dict | list) else v for v in (row.get(c) for c in columns)])


def a_span(trace: str, span_id: str, parent: str | None, start: float, name: str, **extra) -> dict:
    return {
        "trace_id": trace,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "kind": "SERVER",
        "start_time": at(start),
        "end_time": at(start + 0.5),
        "service_name": "shop",
        **extra,
    }


TRACE = "ab" * 16


@pytest.fixture
def shop(conn):
    stage(
        conn,
        "traces",
        [
            a_span(TRACE, "0000000000000001", None, 0, "GET /checkout"),
            a_span(
                TRACE,
                "0000000000000003",
                "0000000000000001",
                2,
                "charge card",
                status_code="ERROR",
                status_message="declined",
                service_name="payment",
                events=[
                    {
                        "name": "exception",
                        "attributes": {"exception.type": "CardDeclined", "exception.message": "card 1 declined"},
                    }
                ],
            ),
            a_span(TRACE, "0000000000000002", "0000000000000001", 1, "load cart"),
            a_span(TRACE, "0000000000000004", "0000000000000002", 1.5, "SELECT cart"),
            a_span(TRACE, "0000000000000005", "00000000000000ff", 3, "orphan callback"),
            a_span("cd" * 16, "0000000000000006", None, 10, "GET /health", status_code="ERROR", service_name="edge"),
        ],
    )
    stage(
        conn,
        "logs",
        [
            {
                "time": at(2.1),
                "severity_number": "17",
                "body": "card declined by issuer",
                "trace_id": TRACE,
                "span_id": "0000000000000003",
                "service_name": "payment",
            },
            {
                "time": at(1.2),
                "severity_number": "9",
                "body": "cart loaded with 3 items",
                "trace_id": TRACE,
                "service_name": "shop",
            },
            {
                "time": at(20),
                "severity_number": "13",
                "body": "slow disk on host-2, retrying write",
                "service_name": "storage",
            },
            {"time": at(30), "severity_number": "9", "body": "card payment accepted", "service_name": "payment"},
        ],
    )
    flush(conn)


def test_trace_spans_is_the_tree_depth_first(conn, shop):
    rows = conn.execute("select span_id, parent_span_id, depth, name from otel.trace_spans(%s)", (TRACE.upper(),))
    assert [(r[0][-1], r[2], r[3]) for r in rows] == [
        ("1", 0, "GET /checkout"),
        ("2", 1, "load cart"),
        ("4", 2, "SELECT cart"),
        ("3", 1, "charge card"),
        ("5", 0, "orphan callback"),  # its parent never arrived: shown as a root
    ]


def test_unknown_trace_gives_no_rows_and_null_is_an_error(conn, shop):
    assert scalar(conn, "select count(*) from otel.trace_spans(%s)", ("0" * 31 + "1",)) == 0
    assert scalar(conn, "select count(*) from otel.trace_logs(%s)", ("0" * 31 + "1",)) == 0
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="trace_id must be 32 hex digits"):
        conn.execute("select * from otel.trace_spans(null)")


def test_trace_logs_are_the_trace_s_by_time(conn, shop):
    rows = conn.execute("select body, span_id from otel.trace_logs(%s)", (TRACE,)).fetchall()
    assert rows == [("cart loaded with 3 items", None), ("card declined by issuer", "0000000000000003")]


def test_traces_by_error_newest_first_with_exception(conn, shop):
    rows = conn.execute("select trace_id, name, exception_type from otel.traces_by_error(%s)", (at(-60),)).fetchall()
    assert rows == [("cd" * 16, "GET /health", None), (TRACE, "charge card", "CardDeclined")]
    assert [r[1] for r in conn.execute("select * from otel.traces_by_error(%s, service => 'payment')", (at(-60),))] == [
        "0000000000000003"
    ]
    assert scalar(conn, "select count(*) from otel.traces_by_error(%s, lim => 1)", (at(-60),)) == 1
    assert scalar(conn, "select count(*) from otel.traces_by_error(%s, %s)", (at(-60), at(5))) == 1


def test_search_logs_ranks_matches_and_takes_websearch_syntax(conn, shop):
    def bodies(*args, **named) -> list[str]:
        params = ", ".join(["%s"] * len(args) + [f"{k} => %s" for k in named])
        return [r[0] for r in conn.execute(f"select body from otel.search_logs({params})", (*args, *named.values()))]

    assert set(bodies("card")) == {"card declined by issuer", "card payment accepted"}
    assert bodies('"card declined"') == ["card declined by issuer"]
    assert bodies("card -declined") == ["card payment accepted"]
    assert set(bodies("disk or cart")) == {"slow disk on host-2, retrying write", "cart loaded with 3 items"}
    assert bodies("card", min_severity=17) == ["card declined by issuer"]
    assert bodies("card", service="payment", since=at(25)) == ["card payment accepted"]
    assert bodies("the") == []  # only stop words


def test_search_logs_without_since_ranks_the_newest_days_holding_enough_matches(conn):
    # 2025-01-02 holds 1,000 plain matches; the best match, the day before, is
    # beyond them unless the window, a filter or lim reaches back to it.
    conn.execute("select otel.ensure_partitions('logs', array['2025-01-01', '2025-01-02']::date[])")
    conn.execute(
        "insert into otel.logs (time, severity_number, body, service_name)"
        " select '2025-01-02 00:00+00'::timestamptz + n * interval '1 s', 9, 'disk full on host-' || n, 'store'"
        "   from generate_series(1, 1000) as n"
        " union all select '2025-01-01 12:00+00', 17, 'disk full: disk quota, disk write refused', 'store'"
    )
    best = "disk full: disk quota, disk write refused"

    def top(**named) -> str:
        params = "".join(f", {key} => %s" for key in named)
        return scalar(conn, f"select body from otel.search_logs('disk'{params}, lim => 1)", tuple(named.values()))

    assert top().startswith("disk full on host-")
    assert top(since="2025-01-01 00:00+00") == best
    assert top(min_severity=17) == best  # no match on the newer day: the walk goes on
    assert top(until="2025-01-02 00:00+00") == best
    assert scalar(conn, "select body from otel.search_logs('disk', lim => 1001)") == best
    assert scalar(conn, "select count(*) from otel.search_logs('disk', lim => 10000)") == 1001


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("otel.traces_by_error(null)", "since must be a timestamp"),
        ("otel.traces_by_error(now(), now() - interval '1 day')", "is after until"),
        ("otel.traces_by_error(now(), lim => 0)", "lim must be between 1 and 10000, got 0"),
        ("otel.search_logs('  ')", "query must be words"),
        ("otel.search_logs('x', min_severity => 30)", "min_severity must be"),
        ("otel.search_logs('x', lim => -1)", "lim must be between 1 and 10000"),
        ("otel.metric_series('m', interval '0 s', now())", "bucket must be an interval"),
        ("otel.metric_series('m', interval '1 month', now() - interval '1 year')", "fixed length"),
        ("otel.metric_series('m', interval '1 s', now() - interval '1 year')", "more than 100000 buckets"),
        ("otel.metric_series('m', interval '1 min', now(), agg => 'median')", "agg must be one of"),
        ("otel.metric_series('m', interval '1 min', now(), labels => '[1]')", "labels must be a JSON object"),
        ("otel.metric_series(null, interval '1 min', now())", "name must name a metric"),
        ("otel.set_retention('spans', interval '7 days')", "kind must be traces, logs or metrics"),
        ("otel.set_retention('logs', interval '1 hour')", "keep must be whole days"),
        ("otel.set_retention('logs', interval '-2 mons +61 days')", r"keep must be whole days.*got -2 mons \+61 days"),
        ("otel.set_retention('logs', interval '1 day -1 hour')", "keep must be whole days"),
        ("otel.set_retention('logs', interval '36 hours')", "keep must be whole days"),
        ("otel.set_retention('logs', interval '0 days')", "at least 1 day"),
        ("otel.metric_series('m', interval '1 min', '-infinity')", "finite timestamps"),
        ("otel.search_logs('x', until => 'infinity')", "finite timestamps"),
        ("otel.similar_traces(array_fill(0, array[384])::vector)", "zero vector"),
        ("otel.metric_series('m', interval '1 year', now() - interval '5 years')", "fixed length"),
        ("otel.traces_by_error(now(), null)", "until must be a timestamp"),
        # The per-aggregate functions behind metric_series check their arguments too: readers may call them.
        ("otel.metric_series_values('m', interval '1 s', now() - interval '1 year', now(), null, 'avg')", "100000"),
        ("otel.metric_series_values('m', interval '1 min', now(), now(), null, 'rate')", "avg, min, max, sum, count"),
        ("otel.metric_series_rate('m', interval '1 month', now() - interval '1 year', now(), null)", "fixed length"),
        ("otel.metric_series_quantile('m', interval '1 min', now(), now(), null, 'avg')", "p50, p90, p99"),
        ("otel.metric_series_quantile(null, interval '1 min', now(), now(), null, 'p50')", "name must name"),
    ],
)
def test_bad_arguments_raise_invalid_parameter_value(conn, call, message):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
        conn.execute(f"select * from {call}")


# ---------------------------------------------------------------- metrics


def point(name: str, seconds: float, **fields) -> dict:
    return {"name": name, "time": at(seconds), "type": "gauge", **{k: str(v) for k, v in fields.items()}}


def series(conn, *args, **named) -> list[tuple[float, float]]:
    params = ", ".join(["%s"] * len(args) + [f"{k} => %s" for k in named])
    rows = conn.execute(f"select bucket_start, value from otel.metric_series({params})", (*args, *named.values()))
    return [((b - T0).total_seconds(), round(v, 9)) for b, v in rows]


def test_gauge_aggregates_per_bucket(conn):
    stage(
        conn,
        "metrics",
        [point("cpu", s, value=v) for s, v in [(0, 1), (20, 3), (70, 10), (80, 2)]]
        + [{**point("cpu", 30, value=100), "labels": {"host": "b"}}],
    )
    flush(conn)
    window = ("cpu", timedelta(minutes=1), T0, T0 + timedelta(minutes=5))
    assert series(conn, *window, labels=json.dumps({"host": "b"})) == [(0, 100)]
    assert series(conn, *window) == [(0, round(104 / 3, 9)), (60, 6)]
    assert series(conn, *window, agg="max") == [(0, 100), (60, 10)]
    assert series(conn, *window, agg="count") == [(0, 3), (60, 2)]


def test_the_key_of_a_series_names_it_and_is_left_empty_on_one_node(conn):
    """otel.metric_series_key(), by which Citus spreads points: equal for the points of one series, whatever the
    order of their labels' keys, and different for another label value, resource, service or metric. On one node
    the flush leaves series_key null, as it leaves the logs' shard_key."""
    one_series = [
        {**point("cpu", 0, value=1), "labels": {"host": "a", "core": 1}, "service_name": "api"},
        {**point("cpu", 10, value=2), "labels": {"core": 1, "host": "a"}, "service_name": "api"},
    ]
    others = [
        {**point("cpu", 0, value=3), "labels": {"host": "b", "core": 1}, "service_name": "api"},
        {**point("cpu", 0, value=4), "labels": {"host": "a", "core": 1}, "service_name": "web"},
        {
            **point("cpu", 0, value=5),
            "labels": {"host": "a", "core": 1},
            "service_name": "api",
            "resource_attributes": {"host.name": "n2"},
        },
        {**point("memory", 0, value=6), "labels": {"host": "a", "core": 1}, "service_name": "api"},
    ]
    stage(conn, "metrics", one_series + others)
    stage(conn, "logs", [{"time": at(0), "body": "outside any trace"}])
    flush(conn)
    assert conn.execute("select count(series_key) from otel.metrics").fetchone() == (0,)
    assert conn.execute("select count(shard_key) from otel.logs").fetchone() == (0,)
    keys = dict(
        conn.execute(
            "select value, otel.metric_series_key(name, service_name, labels, resource_attributes) from otel.metrics"
        ).fetchall()
    )
    assert keys[1] == keys[2]
    assert len({keys[value] for value in (1, 3, 4, 5, 6)}) == 5


def test_the_distribution_keys_are_fixed_values(conn):
    """The keys Citus places rows by are stored: a change to their functions would split a series, or part a
    trace's logs from its spans, so their values are pinned. A log record in a trace is keyed by its trace id;
    one outside any trace by up to 16 hex digits, whatever the session's time zone."""
    conn.execute("set timezone = 'Asia/Tokyo'")
    keys = conn.execute(
        "select otel.log_shard_key(null, '2025-11-24 16:00:00+00', 'queue at 3 items'),"
        " otel.log_shard_key('0af7651916cd43dd8448eb211c80319c', now(), 'charging'),"
        """ otel.metric_series_key('requests', 'shop', '{"pod": "pod-7"}', '{"service.name": "shop"}')"""
    ).fetchone()
    assert keys == ("ff7ea60fa8f32b3", "0af7651916cd43dd8448eb211c80319c", 2914737690209464821)


def test_rate_handles_cumulative_counters_and_resets(conn):
    start = at(-100)
    points = [(0, 100), (30, 160), (60, 220), (90, 40), (120, 100)]  # reset (restart) before 90
    stage(
        conn,
        "metrics",
        [
            {
                **point("requests", s, value=v),
                "type": "sum",
                "temporality": "cumulative",
                "is_monotonic": "true",
                "start_time": start if s < 90 else at(85),
            }
            for s, v in points
        ],
    )
    flush(conn)
    # 0-60: +60 (0 -> 30; the first point has no predecessor in range); 60-120: +60, then 40 after the reset
    assert series(conn, "requests", timedelta(minutes=1), T0, T0 + timedelta(minutes=3), agg="rate") == [
        (0, 1.0),
        (60, round(100 / 60, 9)),
        (120, 1.0),
    ]


def test_rate_of_delta_counters_sums_the_increases(conn):
    stage(
        conn,
        "metrics",
        [{**point("jobs", s, value=v), "type": "sum", "temporality": "delta"} for s, v in [(0, 6), (30, 6), (60, 12)]],
    )
    flush(conn)
    assert series(conn, "jobs", timedelta(minutes=1), T0, T0 + timedelta(minutes=2), agg="rate") == [
        (0, 0.2),
        (60, 0.2),
    ]


def test_percentiles_from_histogram_buckets(conn):
    bounds = [10, 100, 1000]
    delta = [
        {
            **point("latency", s),
            "type": "histogram",
            "temporality": "delta",
            "bucket_counts": json.dumps(c),
            "explicit_bounds": json.dumps(bounds),
            "count": str(sum(c)),
        }
        for s, c in [(0, [50, 40, 10, 0]), (30, [50, 40, 10, 0])]
    ]
    cumulative = [
        {
            **point("latency_c", s),
            "type": "histogram",
            "temporality": "cumulative",
            "start_time": at(-10),
            "bucket_counts": json.dumps(c),
            "explicit_bounds": json.dumps(bounds),
            "count": str(sum(c)),
        }
        for s, c in [(-5, [10, 0, 0, 0]), (0, [60, 40, 10, 0]), (30, [110, 80, 20, 0])]
    ]
    stage(conn, "metrics", delta + cumulative)
    flush(conn)
    window = (timedelta(minutes=1), T0, T0 + timedelta(minutes=1))
    # 200 observations: 100 under 10, 80 in 10..100, 20 in 100..1000
    assert series(conn, "latency", *window, agg="p50") == [(0, 10.0)]
    assert series(conn, "latency", *window, agg="p90") == [(0, 100.0)]
    assert series(conn, "latency", *window, agg="p99") == [(0, 910.0)]
    # the same observations as increments of a cumulative histogram
    assert series(conn, "latency_c", *window, agg="p50") == [(0, 10.0)]
    assert series(conn, "latency_c", *window, agg="p99") == [(0, 910.0)]


def test_maintenance_drops_partitions_past_retention(conn):
    old_day = (datetime.now(UTC) - timedelta(days=10)).replace(hour=12)
    stage(
        conn,
        "traces",
        [
            a_span(
                "ef" * 16,
                "0000000000000001",
                None,
                0,
                "old",
                start_time=old_day.isoformat(),
                end_time=old_day.isoformat(),
            )
        ],
    )
    flush(conn)
    conn.execute("call otel.maintain()")
    partition = f"otel.traces_p{old_day:%Y%m%d}"
    assert scalar(conn, "select to_regclass(%s) is not null", (partition,))
    conn.execute("select otel.set_retention('traces', interval '7 days')")
    conn.execute("call otel.maintain()")
    assert scalar(conn, "select to_regclass(%s) is null", (partition,))
    assert scalar(conn, "select count(*) from otel.trace_summaries where trace_id = %s", ("ef" * 16,)) == 0
    yesterday = f"otel.traces_p{datetime.now(UTC) - timedelta(days=1):%Y%m%d}"
    assert scalar(conn, "select to_regclass(%s) is not null", (yesterday,))
    conn.execute("select otel.set_retention('traces', null)")
    assert scalar(conn, "select count(*) from otel.retention") == 0


@pytest.mark.parametrize(
    ("keep", "stored"),
    [("7 days", "7 days"), ("1 mon", "30 days"), ("2 years", "720 days"), ("1 mon 2 days", "32 days")],
)
def test_retention_is_kept_as_whole_days(conn, keep, stored):
    conn.execute("select otel.set_retention('logs', %s::interval)", (keep,))
    assert scalar(conn, "select keep::text from otel.retention where kind = 'logs'") == stored


@pytest.mark.parametrize(
    "call",
    [
        "otel.search_logs(repeat('x', 10000000))",
        "otel.normalize_trace_id(repeat(' ', 10000000))",
        "otel.similar_traces(repeat('x', 10000000))",
        "otel.metric_series(repeat('x', 10000000), interval '1 min', now(), agg => 'median')",
        "otel.metric_series('m', interval '1 min', now(), agg => repeat('x', 10000000))",
    ],
)
def test_a_huge_argument_is_not_echoed_whole(conn, call):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
        conn.execute(f"select * from {call}")
    assert len(info.value.diag.message_primary) < 400


def test_a_flush_says_nothing_when_all_is_well(conn):
    notices: list[str] = []
    conn.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary))
    stage(conn, "traces", [a_span("34" * 16, "0000000000000001", None, 0, "quiet")])
    flush(conn)
    conn.execute("call otel.retry_dlq()")
    assert notices == []


def test_a_self_parented_span_and_a_cycle_still_show(conn):
    trace = "12" * 16
    stage(
        conn,
        "traces",
        [
            a_span(trace, "0000000000000001", "0000000000000001", 0, "own parent"),
            a_span(trace, "0000000000000002", "0000000000000003", 1, "cycle a"),
            a_span(trace, "0000000000000003", "0000000000000002", 2, "cycle b"),
        ],
    )
    flush(conn)
    rows = conn.execute("select name, depth from otel.trace_spans(%s)", (trace,)).fetchall()
    assert sorted(rows) == [("cycle a", 0), ("cycle b", 0), ("own parent", 0)]


def test_percentiles_refuse_to_mix_bucket_bounds(conn):
    stage(
        conn,
        "metrics",
        [
            {
                **point("lat", 0),
                "type": "histogram",
                "temporality": "delta",
                "bucket_counts": "[0, 10, 0]",
                "explicit_bounds": "[1000, 2000]",
                "service_name": "a",
            },
            {
                **point("lat", 1),
                "type": "histogram",
                "temporality": "delta",
                "bucket_counts": "[10, 0, 0, 0]",
                "explicit_bounds": "[10, 20, 30]",
                "service_name": "b",
            },
        ],
    )
    flush(conn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="different bucket bounds"):
        series(conn, "lat", timedelta(minutes=1), T0, T0 + timedelta(minutes=1), agg="p90")


def test_rate_leaves_out_non_monotonic_sums(conn):
    stage(
        conn,
        "metrics",
        [
            {
                **point("queue", s, value=v),
                "type": "sum",
                "temporality": "cumulative",
                "is_monotonic": "false",
                "start_time": at(-100),
            }
            for s, v in [(0, 5), (30, 3), (60, 8)]
        ],
    )
    flush(conn)
    assert series(conn, "queue", timedelta(minutes=1), T0, T0 + timedelta(minutes=2), agg="rate") == []


def test_rate_finds_the_predecessor_of_the_first_point_beyond_one_bucket(conn):
    stage(
        conn,
        "metrics",
        [
            {
                **point("exports", s, value=v),
                "type": "sum",
                "temporality": "cumulative",
                "is_monotonic": "true",
                "start_time": at(-600),
            }
            for s, v in [(-30, 100), (30, 160), (90, 220)]
        ],
    )
    flush(conn)
    # points a minute apart, buckets of 10 s: the point at +30 s still has its predecessor at -30 s
    assert series(conn, "exports", timedelta(seconds=10), T0, T0 + timedelta(minutes=2), agg="rate") == [
        (30, 6.0),
        (90, 6.0),
    ]
