"""Storage against ClickHouse: bytes per span, ingest and lookups of otel_db and of ClickHouse, same spans, one run.

The same generated spans (bench.common.span_dicts: narrow, then realistic; OTEL_DB_BENCH_SPANS_STORAGE,
default 1,000,000) go

- into otel_db: COPY of a file of typed rows into otel.traces_staging, then `call otel.flush()`;
- into ClickHouse embedded in Python (chdb, a benchmark-only dependency: `pip install chdb`) with the
  OpenTelemetry Collector ClickHouse exporter's span table (MergeTree partitioned by day, ZSTD codecs,
  LowCardinality, bloom filters on TraceId and the attribute maps) and its trace-id lookup table, filled by
  its materialized view: `INSERT … SELECT` from a JSONEachRow file of the same spans.

Ingest: spans a second of each, three rounds into empty tables, the medians. Bytes per span once stored
(otel_db after `vacuum analyze`: heap, TOAST and each index of otel.traces, and the trace summaries; ClickHouse
after `OPTIMIZE … FINAL`: the compressed parts of both tables). Trace by id: `otel.trace_spans()` against the
exporter's lookup-then-read query (as Grafana's ClickHouse data source runs it), p50 over 50 stored traces, both
returning every span; and a selective `otel.find_traces()` against a ClickHouse query for the same traces.
Index use: which read functions scan each index of the spans and trace summaries (their statistics reset
before each read, READS), beside each index's bytes.

Cold: where citus_columnar is installed (`make citus`), `otel.set_cold_storage('traces', '7 days')` and
`call otel.maintain()` then rewrite the spans' day as a columnar partition (zstd, rows ordered by trace id, no
index; a million spans in 64 slices by trace id, otel.cold_trace_slices()), and the same figures are taken
again through the same functions: bytes per span (the columnar partition, the day's trace summaries, which
the same maintenance moves to a columnar partition of otel.cold_trace_summaries, the day's Bloom filters of
trace ids in otel.cold_trace_days, and the rows citus_columnar keeps about the chunks of both), trace by id
and find_traces, and the conversion's rate (spans and summaries).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bench.common import copy_staging_file, drop_database, fresh_database, span_dicts, timed, typed_line
from bench.flush_throughput import settle
from bench.trace_search import figures

DATABASE = "otel_bench_storage"
BASE_NS = 1_764_000_000_000_000_000  # span_dicts' default: 2025-11-24 16:00 UTC, spans within the hour
START = datetime.fromtimestamp(BASE_NS / 1e9, UTC)
# An index named without its partition's day (otel.traces_trace_idx for each day's), so that the days' add up
# as one: c is its pg_class row.
INDEX_NAME = "'otel.' || regexp_replace(c.relname, '^traces_p[0-9]{8}_', 'traces_')"
LOOKUPS = 50
ROUNDS = 3

# The Collector's ClickHouse exporter's trace tables (exporter/clickhouseexporter/internal/sql_templates),
# without TTL: nothing expires within a benchmark.
CLICKHOUSE_TABLES = [
    """CREATE TABLE bench.otel_traces (
        Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
        TraceId String CODEC(ZSTD(1)),
        SpanId String CODEC(ZSTD(1)),
        ParentSpanId String CODEC(ZSTD(1)),
        TraceState String CODEC(ZSTD(1)),
        SpanName LowCardinality(String) CODEC(ZSTD(1)),
        SpanKind LowCardinality(String) CODEC(ZSTD(1)),
        ServiceName LowCardinality(String) CODEC(ZSTD(1)),
        ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
        ScopeName String CODEC(ZSTD(1)),
        ScopeVersion String CODEC(ZSTD(1)),
        SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
        Duration UInt64 CODEC(ZSTD(1)),
        StatusCode LowCardinality(String) CODEC(ZSTD(1)),
        StatusMessage String CODEC(ZSTD(1)),
        Events Nested (Timestamp DateTime64(9), Name LowCardinality(String),
                       Attributes Map(LowCardinality(String), String)) CODEC(ZSTD(1)),
        Links Nested (TraceId String, SpanId String, TraceState String,
                      Attributes Map(LowCardinality(String), String)) CODEC(ZSTD(1)),
        INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
        INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
        INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
        INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
        INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
        INDEX idx_duration Duration TYPE minmax GRANULARITY 1
    ) ENGINE = MergeTree
    PARTITION BY toDate(Timestamp)
    ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
    SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1""",
    """CREATE TABLE bench.otel_traces_trace_id_ts (
        TraceId String CODEC(ZSTD(1)),
        Start DateTime CODEC(Delta, ZSTD(1)),
        End DateTime CODEC(Delta, ZSTD(1)),
        INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
    ) ENGINE = MergeTree
    PARTITION BY toDate(Start)
    ORDER BY (TraceId, Start)
    SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1""",
    """CREATE MATERIALIZED VIEW bench.otel_traces_trace_id_ts_mv TO bench.otel_traces_trace_id_ts
    AS SELECT TraceId, min(Timestamp) AS Start, max(Timestamp) AS End
         FROM bench.otel_traces WHERE TraceId != '' GROUP BY TraceId""",
]

# The columns the file gives, with the types it is read as.
CLICKHOUSE_COLUMNS = [
    ("Timestamp", "DateTime64(9)"),
    ("TraceId", "String"),
    ("SpanId", "String"),
    ("ParentSpanId", "String"),
    ("SpanName", "String"),
    ("SpanKind", "String"),
    ("ServiceName", "String"),
    ("ResourceAttributes", "Map(String, String)"),
    ("ScopeName", "String"),
    ("SpanAttributes", "Map(String, String)"),
    ("Duration", "UInt64"),
    ("StatusCode", "String"),
    ("StatusMessage", "String"),
    ("Events.Timestamp", "Array(DateTime64(9))"),
    ("Events.Name", "Array(String)"),
    ("Events.Attributes", "Array(Map(String, String))"),
]

# Grafana's ClickHouse data source reads a trace by id this way: its time range from the lookup table, then
# the spans of that range.
CLICKHOUSE_TRACE = """
WITH '{trace_id}' AS trace_id,
     (SELECT min(Start) FROM bench.otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_start,
     (SELECT max(End) + 1 FROM bench.otel_traces_trace_id_ts WHERE TraceId = trace_id) AS trace_end
SELECT TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, Timestamp, Duration, StatusCode,
       StatusMessage, SpanAttributes, ResourceAttributes, Events.Timestamp, Events.Name, Events.Attributes
  FROM bench.otel_traces
 WHERE TraceId = trace_id AND Timestamp >= trace_start AND Timestamp <= trace_end
"""

FIND_SERVICE, FIND_OPERATION, FIND_STATUS = "payment", "POST /checkout", 500
CLICKHOUSE_FIND = """
SELECT TraceId, min(Timestamp) AS start
  FROM bench.otel_traces
 WHERE ServiceName = '{service}' AND SpanName = '{operation}'
   AND SpanAttributes['http.response.status_code'] = '{status}'
   AND Timestamp >= '{since}' AND Timestamp < '{until}'
 GROUP BY TraceId ORDER BY start DESC LIMIT 20
"""


def spans_from_env() -> int:
    return int(os.environ.get("OTEL_DB_BENCH_SPANS_STORAGE", "1000000"))


def clickhouse_time(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}"


def clickhouse_row(span: dict) -> dict:
    """A span as the exporter writes it: attribute values as strings, events as parallel arrays."""
    return {
        "Timestamp": clickhouse_time(span["start_ns"]),
        "TraceId": span["trace_id"],
        "SpanId": span["span_id"],
        "ParentSpanId": span["parent_span_id"] or "",
        "SpanName": span["name"],
        "SpanKind": span["kind"],
        "ServiceName": span["service_name"],
        "ResourceAttributes": {k: str(v) for k, v in span["resource_attributes"].items()},
        "ScopeName": "bench",
        "SpanAttributes": {k: str(v) for k, v in span["attributes"].items()},
        "Duration": span["end_ns"] - span["start_ns"],
        "StatusCode": span["status_code"],
        "StatusMessage": span["status_message"] or "",
        "Events.Timestamp": [clickhouse_time(span["start_ns"]) for _ in span["events"]],
        "Events.Name": [event["name"] for event in span["events"]],
        "Events.Attributes": [{k: str(v) for k, v in event["attributes"].items()} for event in span["events"]],
    }


def write_files(directory: Path, count: int, narrow: bool) -> tuple[Path, Path, list[str]]:
    """The spans as typed staging rows (tab-separated, COPY's text format) and as JSONEachRow; some trace ids."""
    typed, clickhouse = directory / "typed.tsv", directory / "clickhouse.jsonl"
    trace_ids: list[str] = []
    with typed.open("w") as tsv, clickhouse.open("w") as jsonl:
        for n, span in enumerate(span_dicts(count, narrow=narrow)):
            tsv.write(typed_line(span))
            jsonl.write(json.dumps(clickhouse_row(span)) + "\n")
            if n % max(1, count // LOOKUPS) == 0 and len(trace_ids) < LOOKUPS:
                trace_ids.append(span["trace_id"])
    return typed, clickhouse, trace_ids


def otel_ingest(conn: psycopg.Connection, typed: Path, count: int) -> float:
    """Spans a second of COPY from the file and the flush, into empty tables."""
    conn.execute("truncate otel.traces, otel.trace_summaries, otel.span_signatures, otel.operation_catalog")
    settle(conn)
    with timed() as ingest:
        copy_staging_file(conn, typed)
        conn.execute("call otel.flush()")
    stored = conn.execute("select count(*) from otel.traces").fetchone()[0]
    assert stored == count, f"otel_db stored {stored} of {count} spans"
    return count / ingest.seconds


def clickhouse_ingest(session, jsonl: Path, count: int) -> float:
    """Spans a second of INSERT … SELECT from the file, into empty tables (the view fills the lookup table)."""
    session.query("DROP DATABASE IF EXISTS bench")
    session.query("CREATE DATABASE bench")
    for statement in CLICKHOUSE_TABLES:
        session.query(statement)
    columns = ", ".join(f"`{name}`" for name, _ in CLICKHOUSE_COLUMNS)
    structure = ", ".join(f"`{name}` {kind}" for name, kind in CLICKHOUSE_COLUMNS)
    with timed() as ingest:
        session.query(
            f"INSERT INTO bench.otel_traces ({columns}) SELECT * FROM file('{jsonl}', 'JSONEachRow', '{structure}')"
        )
    stored = int(session.query("SELECT count() FROM bench.otel_traces", "CSV").bytes())
    assert stored == count, f"ClickHouse stored {stored} of {count} spans"
    return count / ingest.seconds


def otel_bytes(conn: psycopg.Connection, count: int) -> dict:
    conn.execute("vacuum analyze otel.traces, otel.trace_summaries")
    heap, toast = conn.execute(
        "select sum(pg_relation_size(p.relid))::bigint,"
        " sum(coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0))::bigint"
        "  from pg_partition_tree('otel.traces') as p join pg_class as c on c.oid = p.relid where p.isleaf"
    ).fetchone()
    # Each partition's indexes (otel.index_partition()), summed by their name without the partition's.
    indexes = dict(
        conn.execute(
            f"select {INDEX_NAME},"
            "       sum(pg_relation_size(i.indexrelid))::bigint"
            "  from pg_partition_tree('otel.traces') as p"
            "  join pg_index as i on i.indrelid = p.relid join pg_class as c on c.oid = i.indexrelid"
            " where p.isleaf group by 1 order by 1"
        ).fetchall()
    )
    summaries = conn.execute("select pg_total_relation_size('otel.trace_summaries')").fetchone()[0]
    spans_table = heap + toast + sum(indexes.values())
    return {
        "heap": round(heap / count, 1),
        "toast": round(toast / count, 1),
        "indexes": {name: round(size / count, 1) for name, size in indexes.items()},
        "spans_table": round(spans_table / count, 1),
        "trace_summaries": round(summaries / count, 1),
        "total": round((spans_table + summaries) / count, 1),
    }


def clickhouse_bytes(session, count: int) -> dict:
    session.query("OPTIMIZE TABLE bench.otel_traces FINAL")
    session.query("OPTIMIZE TABLE bench.otel_traces_trace_id_ts FINAL")
    rows = json.loads(
        session.query(
            "SELECT table, sum(bytes_on_disk) AS bytes FROM system.parts"
            " WHERE database = 'bench' AND active GROUP BY table",
            "JSON",
        ).bytes()
    )["data"]
    by_table = {row["table"]: int(row["bytes"]) for row in rows}
    return {
        "spans_table": round(by_table["otel_traces"] / count, 1),
        "trace_id_lookup": round(by_table["otel_traces_trace_id_ts"] / count, 1),
        "total": round(sum(by_table.values()) / count, 1),
    }


def timed_each(calls: list[Callable[[], int]]) -> dict:
    """p50/p95 of the calls after one warm-up, and the median number of rows they returned."""
    calls[0]()
    seconds, rows = [], []
    for call in calls:
        started = time.perf_counter()
        rows.append(call())
        seconds.append(time.perf_counter() - started)
    return {**figures(seconds), "rows_median": statistics.median(rows)}


def windows() -> list[tuple[datetime, datetime]]:
    return [(START + timedelta(minutes=n), START + timedelta(minutes=n + 10)) for n in range(0, 50, 5)]


def otel_lookups(conn: psycopg.Connection, trace_ids: list[str]) -> dict:
    """`otel.trace_spans()` for each trace, and the selective `otel.find_traces()` in each window."""

    def otel_rows(query: str, args: tuple) -> int:
        return len(conn.execute(query, args).fetchall())

    find = (
        "select * from otel.find_traces(service => %s, operation => %s, attributes => %s::jsonb,"
        " since => %s, until => %s)"
    )
    return {
        "trace_by_id": timed_each(
            [lambda t=t: otel_rows("select * from otel.trace_spans(%s)", (t,)) for t in trace_ids]
        ),
        "find_traces": timed_each(
            [
                lambda w=w: otel_rows(
                    find, (FIND_SERVICE, FIND_OPERATION, json.dumps({"http.response.status_code": FIND_STATUS}), *w)
                )
                for w in windows()
            ]
        ),
    }


# What each read function is asked in index_use(): a trace's spans, root cause, explanation and similar traces
# for ten traces; searches over the hour the spans start in.
HOUR = (START.isoformat(), (START + timedelta(hours=1)).isoformat())
READS = {
    "trace_spans": ("select * from otel.trace_spans(%s)", "trace"),
    "root_cause": ("select * from otel.root_cause(%s)", "trace"),
    "explain_trace": ("select * from otel.explain_trace(%s)", "trace"),
    "similar_traces": ("select * from otel.similar_traces(%s, min_similarity => 0.5)", "trace"),
    "find_traces newest": ("select * from otel.find_traces(since => %s, until => %s)", "hour"),
    "find_traces by service": (
        "select * from otel.find_traces(service => 'payment', since => %s, until => %s)",
        "hour",
    ),
    "find_traces by attribute": (
        """select * from otel.find_traces(attributes => '{"http.route": "/cart"}', since => %s, until => %s)""",
        "hour",
    ),
    "find_traces selective": (
        f"select * from otel.find_traces(service => '{FIND_SERVICE}', operation => '{FIND_OPERATION}',"
        f" attributes => '{{\"http.response.status_code\": {FIND_STATUS}}}', since => %s, until => %s)",
        "hour",
    ),
    "traces_by_error": ("select * from otel.traces_by_error(%s, %s)", "hour"),
    "service_dependencies": ("select * from otel.service_dependencies(%s, %s)", "hour"),
}


def index_use(conn: psycopg.Connection, trace_ids: list[str]) -> dict:
    """For each index of the spans and trace summaries (a partition's named as otel_bytes() names it): the read
    functions that scanned it, from its statistics reset before each read and flushed after it. The signatures get
    one vector, all the same, so that similar_traces has neighbours to read."""
    conn.execute(
        "update otel.span_signatures set embedding = array_fill(0, array[383]) || array[1]::real[],"
        " embedding_model = 'all-MiniLM-L6-v2', embedded_at = now()"
    )
    indexes = (
        f"select i.indexrelid, {INDEX_NAME} as name"
        "  from pg_index as i join pg_class as c on c.oid = i.indexrelid"
        " where i.indrelid in (select relid from pg_partition_tree('otel.traces') where isleaf"
        "                      union all select 'otel.trace_summaries'::regclass)"
    )
    used: dict[str, list[str]] = {name: [] for (name,) in conn.execute(f"select distinct name from ({indexes}) as i")}
    for read, (query, argument) in READS.items():
        conn.execute(f"select pg_stat_reset_single_table_counters(indexrelid) from ({indexes}) as i")
        for trace_id in trace_ids[:10] if argument == "trace" else [None]:
            conn.execute(query, (trace_id,) if argument == "trace" else HOUR).fetchall()
        conn.execute("select pg_stat_force_next_flush()")  # this session's counts, reported when it is idle
        for (name,) in conn.execute(
            "select distinct i.name from pg_stat_user_indexes as s"
            f" join ({indexes}) as i on i.indexrelid = s.indexrelid where s.idx_scan > 0"
        ):
            used[name].append(read)
    return {name: ", ".join(reads) or "none" for name, reads in sorted(used.items())}


def clickhouse_lookups(session, trace_ids: list[str]) -> dict:
    """The exporter's trace lookup for each trace, and a query for the same traces as find_traces'."""

    def clickhouse_rows(query: str) -> int:
        return len(json.loads(session.query(query, "JSONCompact").bytes())["data"])

    return {
        "trace_by_id": timed_each(
            [lambda t=t: clickhouse_rows(CLICKHOUSE_TRACE.format(trace_id=t)) for t in trace_ids]
        ),
        "find_traces": timed_each(
            [
                lambda w=w: clickhouse_rows(
                    CLICKHOUSE_FIND.format(
                        service=FIND_SERVICE,
                        operation=FIND_OPERATION,
                        status=FIND_STATUS,
                        since=w[0].strftime("%Y-%m-%d %H:%M:%S"),
                        until=w[1].strftime("%Y-%m-%d %H:%M:%S"),
                    )
                )
                for w in windows()
            ]
        ),
    }


def lookups(conn: psycopg.Connection, session, trace_ids: list[str]) -> dict:
    otel, clickhouse = otel_lookups(conn, trace_ids), clickhouse_lookups(session, trace_ids)
    return {
        "trace_by_id": {"otel_db": otel["trace_by_id"], "clickhouse": clickhouse["trace_by_id"]},
        "trace_by_id_clickhouse_vs_otel_p50": round(
            clickhouse["trace_by_id"]["p50_ms"] / otel["trace_by_id"]["p50_ms"], 1
        ),
        "find_traces": {"otel_db": otel["find_traces"], "clickhouse": clickhouse["find_traces"]},
    }


def cold(conn: psycopg.Connection, count: int, trace_ids: list[str], clickhouse_trace_p50_ms: float) -> dict | None:
    """The stored day made cold by otel.maintain(): bytes per span, the conversion's rate, the same lookups."""
    if not conn.execute("select exists (select from pg_available_extensions where name = 'citus_columnar')").fetchone()[
        0
    ]:
        print("bench storage: citus_columnar is not installed (make citus): no cold figures")
        return None
    conn.execute("select otel.set_cold_storage('traces', interval '7 days')")
    with timed() as converting:
        conn.execute("call otel.maintain()")
    cold_days, slices = conn.execute(
        "select count(*),"
        "       sum((select count(*) from pg_partition_tree(format('otel.%I', p.name)) as t where t.isleaf))::bigint"
        "  from otel.daily_partitions('traces') as p where p.columnar"
    ).fetchone()
    assert cold_days == 1, f"{cold_days} days of otel.traces are columnar, not the spans' one day"
    stored = otel_bytes(conn, count)
    # The day's trace summaries, moved to a columnar partition (those of traces that crossed midnight stay
    # in otel.trace_summaries, whose emptied pages new summaries take).
    cold_summaries, day_filters, summaries_left = conn.execute(
        "select (select sum(pg_total_relation_size(p.relid))::bigint"
        "          from pg_partition_tree('otel.cold_trace_summaries') as p where p.isleaf),"
        "       pg_total_relation_size('otel.cold_trace_days'),"
        "       (select count(*) from otel.trace_summaries)"
    ).fetchone()
    # citus_columnar keeps each chunk's minimum, maximum and place in rows of its own tables (a line
    # pointer each besides): the bytes of the cold day's rows there, spans and summaries.
    metadata = conn.execute(
        "with day as (select s.storage_id"
        "               from (select relid, isleaf from pg_partition_tree('otel.traces')"
        "                     union all"
        "                     select relid, isleaf from pg_partition_tree('otel.cold_trace_summaries')) as p"
        "               join columnar.storage as s on s.relation = p.relid where p.isleaf)"
        " select (select sum(pg_column_size(c.*) + 4) from columnar_internal.chunk as c"
        "          where c.storage_id in (select storage_id from day))"
        "      + (select sum(pg_column_size(g.*) + 4) from columnar_internal.chunk_group as g"
        "          where g.storage_id in (select storage_id from day))"
        "      + (select sum(pg_column_size(s.*) + 4) from columnar_internal.stripe as s"
        "          where s.storage_id in (select storage_id from day))"
    ).fetchone()[0]
    found = otel_lookups(conn, trace_ids)
    return {
        "slices": slices,
        "bytes_per_span": {
            "spans_table": stored["spans_table"],
            "trace_summaries": round(cold_summaries / count, 1),
            "trace_day_filters": round(day_filters / count, 1),
            "columnar_metadata": round(metadata / count, 1),
            "total": round(stored["spans_table"] + (cold_summaries + day_filters + metadata) / count, 1),
        },
        "trace_summaries_left_in_row_format": summaries_left,
        "conversion_spans_per_s": round(count / converting.seconds),
        **found,
        "trace_by_id_clickhouse_vs_otel_p50": round(clickhouse_trace_p50_ms / found["trace_by_id"]["p50_ms"], 1),
    }


def one_set(count: int, narrow: bool) -> dict:
    try:
        from chdb import session as chdb_session
    except ImportError:
        raise SystemExit("bench storage compares with ClickHouse through chdb: pip install -e '.[bench]'") from None

    with tempfile.TemporaryDirectory(prefix="otel_db-storage-") as scratch:
        directory = Path(scratch)
        typed, jsonl, trace_ids = write_files(directory, count, narrow)
        session = chdb_session.Session(str(directory / "clickhouse"))
        url = fresh_database(DATABASE)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("select otel.set_retention('traces', null)")
                rounds = [
                    {"otel_db": otel_ingest(conn, typed, count), "clickhouse": clickhouse_ingest(session, jsonl, count)}
                    for _ in range(ROUNDS)
                ]
                otel_rate = statistics.median(r["otel_db"] for r in rounds)
                clickhouse_rate = statistics.median(r["clickhouse"] for r in rounds)
                measured = {
                    "spans": count,
                    "bytes_per_span": {
                        "otel_db": otel_bytes(conn, count),
                        "clickhouse": clickhouse_bytes(session, count),
                    },
                    "ingest_spans_per_s": {"otel_db": round(otel_rate), "clickhouse": round(clickhouse_rate)},
                    "ingest_otel_vs_clickhouse": round(otel_rate / clickhouse_rate, 3),
                    "ingest_rounds": [{k: round(v) for k, v in r.items()} for r in rounds],
                    **lookups(conn, session, trace_ids),
                    "index_use": index_use(conn, trace_ids),
                }
                cold_figures = cold(conn, count, trace_ids, measured["trace_by_id"]["clickhouse"]["p50_ms"])
                return measured | ({"cold": cold_figures} if cold_figures else {})
        finally:
            session.close()
            drop_database(DATABASE)


def run(spans: int | None = None) -> dict:
    count = spans_from_env() if spans is None else spans
    narrow = one_set(count, narrow=True)
    realistic = one_set(count, narrow=False)
    return {
        "narrow": narrow,
        "realistic": realistic,
        "narrow_bytes_vs_clickhouse": round(
            narrow["bytes_per_span"]["otel_db"]["total"] / narrow["bytes_per_span"]["clickhouse"]["total"], 1
        ),
        "goals": {
            "narrow.bytes_per_span.otel_db.total": "<= 150",
            "narrow.ingest_otel_vs_clickhouse": ">= 0.25",
            "narrow.trace_by_id_clickhouse_vs_otel_p50": ">= 10",
        },
    }
