"""scripts/citus-cluster.sh: a coordinator and two workers on this machine, and what scale-out needs of them.

Citus is built from ../shared/vendor/citus (`make citus`, which `make test` runs); where that directory is
absent, or Citus is not installed, these tests are skipped and say why. The cluster runs on free ports with
its data in /tmp, and is stopped and removed afterwards.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from alembic import command
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from bench.shop_failures import export, generate
from otel_db.client import Client
from otel_db.embed import embed_pending
from otel_db.embedding import Embedder
from otel_db.typed_spans import TYPED_SPANS_COPY_SQL, typed_spans
from tests.conftest import ROOT, alembic_config, database_url
from tests.helpers import Server, free_port, stage_otlp, start_serve
from tests.otlp import attribute, gauge, log_record, logs_request, metrics_request, number_point, span, traces_request

CITUS_SOURCE = ROOT.parent / "shared" / "vendor" / "citus"
DATABASE = "scaleout"
SERVE_DATABASE = "scaleout_serve"
SIGNALS_DATABASE = "scaleout_signals"
UPGRADE_DATABASE = "scaleout_upgrade"
COLD_DATABASE = "scaleout_cold"
SLICED_DATABASE = "scaleout_sliced"
CLAIM_DATABASE = "scaleout_claim"
TIMES_DATABASE = "scaleout_times"
REQUESTS_DATABASE = "scaleout_requests"

# One worker runs them all, so that the suite starts one cluster of three nodes.
pytestmark = pytest.mark.xdist_group("citus")


def citus_installed(major: int) -> bool:
    sharedir = subprocess.run(
        [f"/usr/lib/postgresql/{major}/bin/pg_config", "--sharedir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return (Path(sharedir) / "extension" / "citus.control").exists()


@dataclass
class CitusCluster:
    ports: list[int]
    env: dict[str, str]

    def url(self, node: int = 0) -> str:
        return database_url(DATABASE, self.ports[node])

    def script(self, *arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [ROOT / "scripts" / "citus-cluster.sh", *arguments],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )


@pytest.fixture(scope="module")
def citus() -> Iterator[CitusCluster]:
    if not CITUS_SOURCE.is_dir():
        pytest.skip(f"no Citus source in {CITUS_SOURCE}: the Citus tests are skipped (CI has it)")
    with psycopg.connect(database_url("postgres")) as project:
        major = project.execute("select current_setting('server_version_num')::int / 10000").fetchone()[0]
    if not citus_installed(major):
        pytest.skip(
            f"Citus is not installed for PostgreSQL {major}: `make citus` (as root) builds it from {CITUS_SOURCE}"
        )
    ports = [free_port(), free_port(), free_port()]
    data = Path(tempfile.mkdtemp(prefix="otel_db-citus-", dir="/tmp"))
    env = {
        **os.environ,
        "OTEL_DB_CITUS_PORT": str(ports[0]),
        "OTEL_DB_CITUS_WORKER_PORTS": f"{ports[1]} {ports[2]}",
        "OTEL_DB_CITUS_DATA": str(data),
        "OTEL_DB_PGMAJOR": str(major),
    }
    cluster = CitusCluster(ports, env)
    try:
        for arguments in (("start",), ("createdb", DATABASE)):
            done = cluster.script(*arguments)
            assert done.returncode == 0, f"citus-cluster.sh {' '.join(arguments)}: {done.stderr}"
        yield cluster
    finally:
        cluster.script("stop")
        shutil.rmtree(data, ignore_errors=True)


def test_the_coordinator_sees_both_workers(citus):
    with psycopg.connect(citus.url()) as conn:
        workers = conn.execute("select node_port from citus_get_active_worker_nodes() order by 1").fetchall()
        assert [port for (port,) in workers] == sorted(citus.ports[1:])
        for extension in ("citus", "vector"):
            assert conn.execute("select count(*) from pg_extension where extname = %s", (extension,)).fetchone() == (1,)
    for port in citus.ports[1:]:
        with psycopg.connect(database_url(DATABASE, port)) as worker:
            assert worker.execute("select count(*) from pg_extension where extname = 'vector'").fetchone() == (1,)


def test_a_partitioned_table_distributed_by_trace_id_loads_through_colocated_staging(citus):
    with psycopg.connect(citus.url(), autocommit=True) as conn:
        conn.execute(
            "create table spans (trace_id text not null, span_id text not null, start_time timestamptz not null,"
            " name text) partition by range (start_time)"
        )
        conn.execute(
            "create table spans_p20251124 partition of spans"
            " for values from ('2025-11-24 00:00+00') to ('2025-11-25 00:00+00')"
        )
        conn.execute("select create_distributed_table('spans', 'trace_id')")
        conn.execute("create unlogged table spans_staging (like spans)")
        conn.execute("select create_distributed_table('spans_staging', 'trace_id', colocate_with => 'spans')")
        with conn.cursor().copy("copy spans_staging from stdin") as copy:
            for n in range(1000):
                copy.write_row([f"{n % 100:032x}", f"{n:016x}", "2025-11-24 12:00+00", f"op {n % 7}"])

        move = "insert into spans select * from spans_staging"
        plan = "\n".join(row for (row,) in conn.execute(f"explain {move}"))
        # Pushed down, each worker moving its own shards' rows: no "INSERT/SELECT method" (pull to
        # coordinator, or repartition) in the plan.
        assert "Custom Scan (Citus Adaptive)" in plan and "INSERT/SELECT method" not in plan
        conn.execute(move)
        assert conn.execute("select count(*), count(distinct trace_id) from spans").fetchone() == (1000, 100)

        shard_nodes = conn.execute(
            "select count(distinct nodeport) from citus_shards where table_name = 'spans'::regclass"
        ).fetchone()[0]
        assert shard_nodes == 2
        trace = f"{42:032x}"
        router = "\n".join(row for (row,) in conn.execute("explain select * from spans where trace_id = %s", (trace,)))
        assert "Task Count: 1" in router
        assert conn.execute("select count(*) from spans where trace_id = %s", (trace,)).fetchone() == (10,)


def test_a_reference_table_answers_nearest_neighbours_through_its_hnsw_index(citus):
    with psycopg.connect(citus.url(), autocommit=True) as conn:
        conn.execute("create table signatures (id bigint primary key, embedding vector(3))")
        conn.execute("select create_reference_table('signatures')")
        conn.execute("create index on signatures using hnsw (embedding vector_cosine_ops)")
        conn.execute("insert into signatures values (1, '[1,0,0]'), (2, '[0.9,0.1,0]'), (3, '[0,1,0]'), (4, '[0,0,1]')")
        nearest = conn.execute("select id from signatures order by embedding <=> '[1,0.05,0]' limit 2").fetchall()
        assert nearest == [(1,), (2,)]
        placements = conn.execute(
            "select count(distinct nodeport) from citus_shards where table_name = 'signatures'::regclass"
        ).fetchone()[0]
        assert placements == 3  # a copy on the coordinator and on each worker


def test_otel_db_distributed_by_trace_id_answers_as_one_node_does(citus, dsn):
    """The shop's SDK spans (errors across services) into both through otel_db's exporter, flushed, embedded, read."""
    command.upgrade(alembic_config(citus.url()), "head")
    with psycopg.connect(citus.url(), autocommit=True) as conn:
        assert [row for (row,) in conn.execute("select * from otel.distribute(4)")] == [
            "otel.traces: distributed by trace_id",
            "otel.trace_summaries: distributed by trace_id",
            "otel.cold_trace_summaries: distributed by trace_id",
            "otel.span_signatures: reference",
            "otel.operation_catalog: reference",
            "otel.logs: distributed by shard_key",
            "otel.metrics: distributed by series_key",
            "otel.otlp_staging: distributed by row_id, and otel.claimed_otlp with it",
            "otel.flush_otlp: distributed by row_id, beside otel.claimed_otlp",
            "otel.traces_staging: distributed by row_id, and otel.claimed_traces with it",
            "otel.flush_spans: distributed by trace_id",
            "otel.logs_staging: distributed by row_id, and otel.claimed_logs with it",
            "otel.flush_logs: distributed by n, beside otel.claimed_logs",
            "otel.metrics_staging: distributed by row_id, and otel.claimed_metrics with it",
            "otel.flush_metrics: distributed by n, beside otel.claimed_metrics",
            "otel_reader: may log in on the workers",
            "otel_writer: may log in on the workers",
            "otel_admin: may log in on the workers",
        ]
        assert conn.execute("select * from otel.distribute(4)").fetchall() == []
        can_log_in = (
            "select array_agg(rolcanlogin order by rolname) from pg_roles"
            " where rolname in ('otel_reader', 'otel_admin')"
        )
        assert conn.execute(can_log_in).fetchone() == ([False, False],)
    for port in citus.ports[1:]:
        with psycopg.connect(database_url(DATABASE, port)) as worker:
            assert worker.execute(can_log_in).fetchone() == ([True, True],)
    with psycopg.connect(citus.url(), autocommit=True) as conn:
        conn.execute("call otel.maintain()")
    labels, spans = generate(120, seed=11)
    embedder = Embedder()
    # Half of the traces as otel_db's exporter stages them (OTLP/JSON requests), half as `otel-db serve`
    # does (rows of otel.traces_staging): both parsed, decoded and typed on the workers.
    as_requests = [s for s in spans if s.context.trace_id % 2]
    as_rows = [s for s in spans if not s.context.trace_id % 2]
    assert as_requests and as_rows
    for url in (citus.url(), dsn):
        export(url, as_requests)
        with psycopg.connect(url, autocommit=True) as conn:
            stage_rows(conn, as_rows)
            if url == citus.url():
                assert workers_holding_rows(conn, "otel.traces_staging") == 2
                assert workers_holding_rows(conn, "otel.otlp_staging") == 2
                assert flush_on_workers(conn, SPANS_ON_WORKERS | REQUESTS_ON_WORKERS) == set(
                    SPANS_ON_WORKERS | REQUESTS_ON_WORKERS
                )
            else:
                conn.execute("call otel.flush()")
            assert embed_pending(conn, embedder, 100).failed == 0
    first = datetime.fromtimestamp(min(s.start_time for s in spans) / 1e9, UTC)
    last = datetime.fromtimestamp(max(s.end_time for s in spans) / 1e9, UTC) + timedelta(seconds=1)
    traces = sorted(label.trace_id for label in labels)
    failing = sorted(label.trace_id for label in labels if label.cause)
    healthy = sorted(label.trace_id for label in labels if not label.cause)

    questions = [
        "[" + ",".join(map(str, vector)) + "]"
        for vector in embedder.embed(["the card was declined by the bank", "the database query timed out"])
    ]

    def answers(url: str) -> dict:
        with psycopg.connect(url) as conn:
            return {
                "spans": conn.execute("select count(*) from otel.traces").fetchone(),
                "trace_spans": [conn.execute("select * from otel.trace_spans(%s)", (t,)).fetchall() for t in traces],
                "root_cause": [conn.execute("select * from otel.root_cause(%s)", (t,)).fetchall() for t in failing],
                "find_traces": conn.execute(
                    "select * from otel.find_traces(service => 'payment', since => %s, until => %s, lim => 1000)",
                    (first, last),
                ).fetchall(),
                "find_errors": conn.execute(
                    "select * from otel.find_traces(status => 'error', since => %s, until => %s, lim => 1000)",
                    (first, last),
                ).fetchall(),
                "traces_by_error": conn.execute(
                    "select * from otel.traces_by_error(%s, %s, lim => 1000) order by trace_id, span_id", (first, last)
                ).fetchall(),
                "similar_traces": [
                    conn.execute(
                        "select * from otel.similar_traces(%s, k => 5, min_similarity => 0.5)", (t,)
                    ).fetchall()
                    for t in failing[:8]
                ],
                "similar_to_words": [
                    conn.execute(
                        "select * from otel.similar_traces(%s::vector, k => 5, min_similarity => 0.2)", (vector,)
                    ).fetchall()
                    for vector in questions
                ],
                "compare_traces": [
                    conn.execute("select * from otel.compare_traces(%s, %s)", (a, b)).fetchall()
                    for a, b in zip(failing[:6], healthy[:6], strict=True)
                ],
                "explain_trace": [
                    conn.execute("select * from otel.explain_trace(%s)", (t,)).fetchall() for t in failing[:6]
                ],
                "suspect_attributes": conn.execute(
                    "select * from otel.suspect_attributes('payment', 'authorize card', %s, %s)", (first, last)
                ).fetchall(),
                "services": conn.execute("select * from otel.services()").fetchall(),
                "dependencies": conn.execute(
                    "select * from otel.service_dependencies(%s, %s)", (first, last)
                ).fetchall(),
            }

    one_node = answers(dsn)
    assert one_node["spans"] == (len(spans),) and len(failing) > 10
    assert all(len(found) == 5 for found in one_node["similar_traces"] + one_node["similar_to_words"])
    assert all(one_node["compare_traces"]) and all(one_node["explain_trace"]) and one_node["suspect_attributes"]
    assert answers(citus.url()) == one_node
    with psycopg.connect(citus.url(), autocommit=True) as conn:
        assert workers_holding_rows(conn, "otel.traces") == 2
        router = "\n".join(
            row for (row,) in conn.execute("explain select * from otel.traces where trace_id = %s", (traces[0],))
        )
        assert "Task Count: 1" in router
        # Maintenance made today's partition: Citus gave each of its shards the six indexes.
        today = conn.execute("select 'otel.traces_p' || to_char(now() at time zone 'UTC', 'YYYYMMDD')").fetchone()[0]
        indexes = conn.execute(
            "select array_agg(distinct result) from run_command_on_shards(%s,"
            " 'select count(*) from pg_index where indrelid = ''%%s''::regclass')",
            (today,),
        ).fetchone()[0]
        assert indexes == ["6"]
        export(citus.url(), spans)  # sent again: every span is a repeat
        conn.execute("call otel.flush()")
        assert conn.execute("select spans, duplicates from otel.flush_runs order by id desc limit 1").fetchone() == (
            0,
            len(spans),
        )
        # A day past its retention goes from every worker, with its summaries; the shop's days stay.
        old = span(traceId="ab" * 16, startTimeUnixNano="1704067200000000000", endTimeUnixNano="1704067201000000000")
        stage_otlp(conn, [traces_request(old)])  # 2024-01-01
        conn.execute("call otel.flush()")
        assert conn.execute("select count(*) from otel.traces_p20240101").fetchone() == (1,)
        keep = (datetime.now(UTC).date() - first.date()).days + 2
        conn.execute("select otel.set_retention('traces', make_interval(days => %s))", (keep,))
        conn.execute("call otel.maintain()")
        assert conn.execute("select to_regclass('otel.traces_p20240101')").fetchone() == (None,)
        summaries = "select count(*) from otel.trace_summaries where trace_id = %s"
        assert conn.execute(summaries, ("ab" * 16,)).fetchone() == (0,)
        assert conn.execute("select count(*) from otel.traces").fetchone() == (len(spans),)
        # A failed embedding is recorded on the reference table, with its retry 30 s on.
        pending = conn.execute(
            "update otel.span_signatures set embedding = null, embedding_model = null"
            " where id = (select min(id) from otel.span_signatures) returning id"
        ).fetchone()[0]
        conn.execute("select otel.embedding_failed(array[%s::bigint], 'model unavailable')", (pending,))
        assert conn.execute(
            "select attempts, last_error, next_attempt_at - now() between interval '29 s' and interval '31 s'"
            " from otel.span_signatures where id = %s",
            (pending,),
        ).fetchone() == (1, "model unavailable", True)


def test_sdk_writers_through_serve_and_two_flushes_lose_nothing_and_the_jaeger_api_answers_as_one_node(
    citus, dsn, tmp_path
):
    """Three threads send the shop's spans with the SDK's OTLP/HTTP exporter to `otel-db serve` on the coordinator
    while two sessions flush; then the Jaeger API of a serve on the cluster and of one on one node."""
    done = citus.script("createdb", SERVE_DATABASE)
    assert done.returncode == 0, done.stderr
    url = database_url(SERVE_DATABASE, citus.ports[0])
    command.upgrade(alembic_config(url), "head")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select otel.distribute(4)")
    labels, spans = generate(150, seed=23)
    servers: list[Server] = []
    try:
        cluster = start_serve(url, tmp_path / "cluster.log", "--no-flush")
        servers.append(cluster)
        one_node = start_serve(dsn, tmp_path / "one-node.log", "--no-flush")
        servers.append(one_node)
        with ThreadPoolExecutor(max_workers=6) as pool:
            writers = [pool.submit(send, cluster.url, spans[part::3]) for part in range(3)]
            writers.append(pool.submit(send, one_node.url, spans))
            flushes = [pool.submit(flush_while, url, writers[:3]) for _ in range(2)]
            for writer in writers:
                writer.result(timeout=120)  # raises what the thread raised
            assert all(flush.result(timeout=120) >= 1 for flush in flushes)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("call otel.flush()")
        with psycopg.connect(url) as conn:
            assert conn.execute("select count(*), count(distinct (trace_id, span_id)) from otel.traces").fetchone() == (
                len(spans),
                len(spans),
            )
            assert conn.execute("select count(*) from otel.telemetry_dlq").fetchone() == (0,)

        first = min(s.start_time for s in spans) // 1000
        last = max(s.end_time for s in spans) // 1000 + 1
        paths = [
            "/api/services",
            *(f"/api/services/{service}/operations" for service in ("frontend", "checkout", "payment", "inventory")),
            f"/api/traces?service=checkout&start={first}&end={last}&limit=1000",
            f"/api/traces?service=payment&tags=%7B%22error%22%3A%22true%22%7D&start={first}&end={last}&limit=1000",
            *(f"/api/traces/{label.trace_id}" for label in labels[:12]),
            f"/api/dependencies?endTs={last // 1000}&lookback={(last - first) // 1000 + 1}",
        ]

        def jaeger(server: Server) -> list:
            answers = []
            for path in paths:
                with urllib.request.urlopen(server.query_url + path, timeout=30) as response:
                    answers.append(json.loads(response.read()))
            return answers

        on_one_node = jaeger(one_node)
        assert all(answer["data"] for answer in on_one_node), "every path finds something on one node"
        assert jaeger(cluster) == on_one_node
    finally:
        for server in servers:
            server.kill()


def stage_rows(conn: psycopg.Connection, spans: Sequence[ReadableSpan]) -> None:
    """COPY the spans into otel.traces_staging as `otel-db serve` does with a protobuf request."""
    typed = typed_spans(encode_spans(spans))
    assert typed is not None
    with conn.cursor() as cur, cur.copy(TYPED_SPANS_COPY_SQL) as copy:
        copy.write(typed[0])


def flush_on_workers(conn: psycopg.Connection, statements: dict[str, str]) -> set[str]:
    """`call otel.flush()`; which of `statements` (name: pattern) the coordinator sent to the workers' shards.

    The commands it sends (citus.log_remote_commands) show each statement's plan: a statement run on the
    shards names them (otel.flush_spans_102040); one pulled through the coordinator would reach them as
    read_intermediate_result() instead.
    """
    sent: list[str] = []
    conn.add_notice_handler(lambda notice: sent.append(notice.message_primary or ""))
    conn.execute("set citus.log_remote_commands = on")
    try:
        conn.execute("call otel.flush()")
    finally:
        conn.execute("reset citus.log_remote_commands")
    return {name for name, pattern in statements.items() for command in sent if re.search(pattern, command, re.DOTALL)}


# The flush of spans staged as rows: the claim, co-located; the typing, run on the claim table's shards and
# repartitioned by trace id; the repeated spans, the summaries and the spans' insert on the shards of
# otel.flush_spans.
SPANS_ON_WORKERS = {
    "claim": r"INSERT INTO otel\.claimed_traces_\d+ .* FROM otel\.traces_staging_\d+",
    "typing": r"worker_partition_query_result\(.*FROM otel\.claimed_traces_\d+",
    "repeated": r"DELETE FROM otel\.flush_spans_\d+ b USING \(SELECT .* FROM otel\.flush_spans_\d+",
    "stored": r"DELETE FROM otel\.flush_spans_\d+ b WHERE .*EXISTS \(SELECT FROM otel\.traces_\d+",
    "summaries": r"INSERT INTO otel\.trace_summaries_\d+ .* FROM otel\.flush_spans_\d+",
    "spans": r"INSERT INTO otel\.traces_\d+ .* FROM \(otel\.flush_spans_\d+",
}
# OTLP/JSON requests: claimed and parsed on the shards of their staging, their records decoded and typed there,
# then repartitioned into the working table of their kind.
DECODING = r"worker_partition_query_result\(.*FROM otel\.flush_otlp_\d+ .*otlp_request_records\(\w+\.doc, '+{kind}'"
REQUESTS_ON_WORKERS = {
    "claim requests": r"INSERT INTO otel\.claimed_otlp_\d+ .* FROM otel\.otlp_staging_\d+",
    "parse requests": r"INSERT INTO otel\.flush_otlp_\d+ .* FROM otel\.claimed_otlp_\d+",
    "decode spans": DECODING.format(kind="traces"),
}
DECODED_ON_WORKERS = REQUESTS_ON_WORKERS | {
    f"decode {kind}": DECODING.format(kind=kind) for kind in ("logs", "metrics")
}
# Log records and points staged as rows: typed on the shards of their claim, then repartitioned by their
# final table's key.
SIGNALS_ON_WORKERS = {
    f"{kind} {step}": pattern.format(kind=kind)
    for kind in ("logs", "metrics")
    for step, pattern in (
        ("claim", r"INSERT INTO otel\.claimed_{kind}_\d+ .* FROM otel\.{kind}_staging_\d+"),
        ("typing", r"INSERT INTO otel\.flush_{kind}_\d+ .* FROM otel\.claimed_{kind}_\d+"),
        ("insert", r"worker_partition_query_result\(.*FROM otel\.flush_{kind}_\d+"),
    )
}


def workers_holding_rows(conn: psycopg.Connection, table: str) -> int:
    """How many workers hold rows of the distributed table in their shards."""
    return conn.execute(
        "select count(distinct s.nodeport)"
        "  from run_command_on_shards(%s, 'select count(*) from %%s') as r"
        "  join citus_shards as s on s.shardid = r.shardid"
        " where r.success and r.result::bigint > 0",
        (table,),
    ).fetchone()[0]


def send(otlp_url: str, spans: Sequence[ReadableSpan]) -> None:
    """The SDK's OTLP/HTTP span exporter, in batches as a BatchSpanProcessor sends them."""
    exporter = OTLPSpanExporter(endpoint=f"{otlp_url}/v1/traces")
    try:
        for first in range(0, len(spans), 128):
            assert exporter.export(spans[first : first + 128]) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()


def flush_while(url: str, writers: list[Future]) -> int:
    """`call otel.flush()` until the writers are done and nothing is staged; returns how many flushes it ran."""
    staged = "select (select count(*) from otel.otlp_staging) + (select count(*) from otel.traces_staging)"
    flushes = 0
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            writing = not all(writer.done() for writer in writers)
            conn.execute("call otel.flush()")
            flushes += 1
            if not writing and conn.execute(staged).fetchone() == (0,):
                return flushes
            time.sleep(0.05)


def test_sdk_logs_and_metrics_read_on_the_cluster_as_on_one_node(citus, dsn, tmp_path):
    """Logs (in spans and outside them) and metrics from the SDK's OTLP/HTTP exporters, sent to `otel-db serve`
    on the coordinator and on one node alike; logs beside their traces (or spread by a hash), points by series."""
    done = citus.script("createdb", SIGNALS_DATABASE)
    assert done.returncode == 0, done.stderr
    url = database_url(SIGNALS_DATABASE, citus.ports[0])
    command.upgrade(alembic_config(url), "head")
    with psycopg.connect(url, autocommit=True) as conn:
        layout = [row for (row,) in conn.execute("select * from otel.distribute(4)")]
        assert {"otel.logs: distributed by shard_key", "otel.metrics: distributed by series_key"} <= set(layout)
    servers: list[Server] = []
    try:
        servers.append(start_serve(url, tmp_path / "cluster.log"))
        servers.append(start_serve(dsn, tmp_path / "one-node.log"))
        started = datetime.now(UTC) - timedelta(minutes=1)
        trace_ids = send_logs_and_metrics([server.url for server in servers])
        # And rows, as writers COPY them: typed on the workers on Citus.
        log_rows, point_rows = staged_logs(trace_ids[:4]), staged_points(started)
        for database in (url, dsn):
            with Client(database) as client:
                client.copy_rows("logs", log_rows)
                client.copy_rows("metrics", point_rows)
            with psycopg.connect(database, autocommit=True) as conn:
                if database == url:
                    on_workers = SIGNALS_ON_WORKERS | DECODED_ON_WORKERS
                    assert flush_on_workers(conn, on_workers) == set(on_workers)
                else:
                    conn.execute("call otel.flush()")
    finally:
        for server in servers:
            server.kill()
    until = datetime.now(UTC) + timedelta(minutes=1)
    letters = "select telemetry_type, source, raw_data, raw_format, error_message from otel.telemetry_dlq order by 1, 3"
    with psycopg.connect(url) as cluster, psycopg.connect(dsn) as one:
        assert [row[0] for row in one.execute(letters)] == ["logs", "metrics"]
        assert cluster.execute(letters).fetchall() == one.execute(letters).fetchall()

    def answers(database: str) -> dict:
        with psycopg.connect(database) as conn:
            conn.execute("set role otel_reader")  # as the query API reads: Citus reaches the workers as the reader
            return {
                "counts": conn.execute(
                    "select (select count(*) from otel.logs), (select count(*) from otel.metrics)"
                ).fetchone(),
                "trace_logs": [conn.execute("select * from otel.trace_logs(%s)", (t,)).fetchall() for t in trace_ids],
                "search_logs": conn.execute("select * from otel.search_logs('declined', lim => 5)").fetchall(),
                "search_staged": conn.execute("select * from otel.search_logs('backed', lim => 20)").fetchall(),
                "search_errors": conn.execute(
                    "select * from otel.search_logs('card', service => 'payment', min_severity => 17)"
                ).fetchall(),
                "metric_names": conn.execute("select * from otel.metric_names(%s, %s)", (started, until)).fetchall(),
                "series": [
                    conn.execute(
                        "select * from otel.metric_series(%s, '1 minute', %s, %s, labels => %s, agg => %s)",
                        (name, started, until, labels, agg),
                    ).fetchall()
                    for name, labels, agg in (
                        ("orders", None, "sum"),
                        ("orders", '{"region": "eu"}', "rate"),
                        ("latency", None, "p99"),
                        ("temperature", None, "max"),
                        ("queue_depth", '{"queue": "b"}', "max"),
                    )
                ],
            }

    one_node = answers(dsn)
    assert one_node["counts"] == (30 + 4, 7 + 12)
    assert [len(logs) for logs in one_node["trace_logs"]] == [3] * 4 + [2] * (len(trace_ids) - 4)
    assert len(one_node["search_logs"]) == 5 and len(one_node["search_errors"]) == 10 and all(one_node["series"])
    assert len(one_node["search_staged"]) == 4
    assert answers(url) == one_node
    with psycopg.connect(url) as conn:
        for table in ("otel.logs", "otel.metrics"):
            assert workers_holding_rows(conn, table) == 2, f"{table} has rows on both workers"
    # A day of logs past its retention goes from every worker; today's stay.
    with psycopg.connect(url, autocommit=True) as conn:
        stage_otlp(conn, [logs_request(log_record(timeUnixNano="1704067200000000000"))])  # 2024-01-01
        conn.execute("call otel.flush()")
        assert conn.execute("select count(*) from otel.logs_p20240101").fetchone() == (1,)
        # Cold storage does not touch a distributed table: it says so, and the day stays in row format.
        notices: list[str] = []
        conn.add_notice_handler(lambda notice: notices.append(notice.message_primary or ""))
        conn.execute("select otel.set_cold_storage('logs', interval '1 day')")
        conn.execute("call otel.maintain()")
        assert any("distributed by Citus" in notice for notice in notices), notices
        access_method = (
            "select a.amname from pg_class as c join pg_am as a on a.oid = c.relam where c.oid = %s::regclass"
        )
        assert conn.execute(access_method, ("otel.logs_p20240101",)).fetchone() == ("heap",)
        conn.execute("select otel.set_retention('logs', interval '30 days')")
        conn.execute("call otel.maintain()")
        assert conn.execute("select to_regclass('otel.logs_p20240101')").fetchone() == (None,)
        assert conn.execute("select count(*) from otel.logs").fetchone() == (34,)


def staged_logs(trace_ids: list[str]) -> list[dict]:
    """A log record staged as a row in each of the traces, and one whose time is no time."""
    rows = [
        {
            "time": (datetime.now(UTC) - timedelta(seconds=n)).isoformat(),
            "severity_number": "13",
            "body": f"queue {n} backed up",
            "trace_id": trace_id,
            "service_name": "queue",
            "attributes": json.dumps({"queue.depth": 100 + n}),
        }
        for n, trace_id in enumerate(trace_ids)
    ]
    unreadable = {**rows[0], "time": "yesterday-ish", "body": "unreadable time", "trace_id": None}
    return [*rows, unreadable]


def staged_points(started: datetime) -> list[dict]:
    """Twelve gauge points of two queues, 10 s apart, staged as rows, and one of no metric type."""
    rows = [
        {
            "time": (started + timedelta(seconds=10 * n)).isoformat(),
            "name": "queue_depth",
            "type": "gauge",
            "value": str(n * 3 % 7),
            "service_name": "queue",
            "labels": json.dumps({"queue": "ab"[n % 2]}),
        }
        for n in range(12)
    ]
    return [*rows, {**rows[0], "type": "meter"}]


def pod_requests(pods: int = 40) -> list[dict]:
    """An OTLP request with a gauge `requests` of one series a pod, two points each (2025-11-24 16:00 and 16:01 UTC)."""
    points = [
        {
            **number_point(pod * 10 + minute, time=f"{1764000000 + 60 * minute}000000000"),
            "attributes": [attribute("pod", {"stringValue": f"pod-{pod}"})],
        }
        for pod in range(pods)
        for minute in (0, 1)
    ]
    return [metrics_request(gauge("requests", *points))]


def traces_with_logs(trace_ids: list[str]) -> list[dict]:
    """A span of each trace, two log records in each trace, and one record outside any trace a trace."""
    spans = [span(traceId=trace_id) for trace_id in trace_ids]
    records = [
        log_record(traceId=trace_id, body={"stringValue": f"{word} {trace_id}"})
        for trace_id in trace_ids
        for word in ("charging", "declined")
    ] + [log_record(body={"stringValue": f"queue at {n} items"}) for n in range(len(trace_ids))]
    return [traces_request(*spans), logs_request(*records)]


def test_logs_and_points_distributed_by_an_earlier_release_are_redistributed_by_trace_and_series(citus):
    """A cluster distributed at revision 0051 (logs by time, metric points by name), upgraded: otel.distribute()
    keys the rows stored before and redistributes them, logs beside their traces' spans and points by series;
    reads answer as before, rows flushed afterwards land by their keys, and a metric's series spread."""
    done = citus.script("createdb", UPGRADE_DATABASE)
    assert done.returncode == 0, done.stderr
    url = database_url(UPGRADE_DATABASE, citus.ports[0])
    trace_ids = [f"{n:032x}" for n in range(1, 21)]

    def answers(conn: psycopg.Connection) -> dict:
        return {
            "series": [
                conn.execute(
                    "select * from otel.metric_series('requests', '1 minute', '2025-11-24 00:00+00',"
                    " '2025-11-25 00:00+00', labels => %s, agg => %s)",
                    (labels, agg),
                ).fetchall()
                for labels in (None, '{"pod": "pod-7"}')
                for agg in ("sum", "max", "count")
            ],
            "trace_logs": [conn.execute("select * from otel.trace_logs(%s)", (t,)).fetchall() for t in trace_ids],
            "search_logs": conn.execute("select * from otel.search_logs('declined', lim => 50)").fetchall(),
        }

    table_indexes = (
        "select indexdef from pg_indexes where tablename in ('logs_p20251124', 'metrics_p20251124') order by indexdef"
    )
    command.upgrade(alembic_config(url), "0051")
    with psycopg.connect(url, autocommit=True) as conn:
        layout = [row for (row,) in conn.execute("select * from otel.distribute(4)")]
        assert {"otel.logs: distributed by time", "otel.metrics: distributed by name"} <= set(layout)
        stage_otlp(conn, [*pod_requests(), *traces_with_logs(trace_ids)])
        conn.execute("call otel.flush()")
        before = answers(conn)
        assert all(before["series"]) and all(before["trace_logs"]) and len(before["search_logs"]) == 20
        assert workers_holding_rows(conn, "otel.metrics") == 1, "one metric, one shard"
        indexes = conn.execute(table_indexes).fetchall()
        assert len(indexes) == 7, indexes
    command.upgrade(alembic_config(url), "head")
    comments = "select obj_description('otel.logs'::regclass), obj_description('otel.metrics'::regclass)"
    with psycopg.connect(url, autocommit=True) as conn:
        described = conn.execute(comments).fetchone()  # as head tells the new columns
        assert all("shard_key" in text or "series_key" in text for text in described)
        layout = [row for (row,) in conn.execute("select * from otel.distribute(4)")]
        assert {
            "otel.logs: distributed by shard_key instead of time",
            "otel.metrics: distributed by series_key instead of name",
        } <= set(layout)
        assert conn.execute("select * from otel.distribute(4)").fetchall() == [], "nothing left to change"
        assert conn.execute("select otel.distribution_column('otel.metrics')").fetchone() == ("series_key",)
        assert conn.execute(table_indexes).fetchall() == indexes
        conn.execute("set role otel_reader")  # the grants came along
        assert answers(conn) == before
        conn.execute("reset role")
        # Rows flushed now carry their keys and land beside the older ones of their trace or series.
        stage_otlp(conn, [*pod_requests(), *traces_with_logs(trace_ids)])
        conn.execute("call otel.flush()")
        keys = "select count(*), count(series_key), count(distinct series_key) from otel.metrics"
        assert conn.execute(keys).fetchone() == (160, 160, 40)
        assert conn.execute("select count(*), count(shard_key) from otel.logs").fetchone() == (120, 120)
        assert workers_holding_rows(conn, "otel.metrics") == 2, "the series of one metric on both workers"
        series_a_shard = conn.execute(
            "select r.result::int from run_command_on_shards('otel.metrics',"
            " 'select count(distinct labels) from %s') as r where r.success"
        ).fetchall()
        assert sum(count for (count,) in series_a_shard) == 40, "each series on one shard"
        logs_apart = conn.execute(
            "select r.result::int from run_command_on_colocated_placements('otel.logs', 'otel.traces',"
            " 'select count(*) from %s as l where l.trace_id is not null"
            "   and not exists (select from %s as t where t.trace_id = l.trace_id)') as r where r.success"
        ).fetchall()
        assert len(logs_apart) == 4 and sum(count for (count,) in logs_apart) == 0, "logs beside their spans"
        # A trace's logs are read from its one shard: a query of several would fail here.
        conn.execute("set citus.multi_task_query_log_level = 'error'")
        assert len(conn.execute("select * from otel.trace_logs(%s)", (trace_ids[0],)).fetchall()) == 4
        conn.execute("reset citus.multi_task_query_log_level")
        assert conn.execute(comments).fetchone() == described, "the tables keep their comments"


def test_distribute_refuses_columnar_partitions_it_would_have_to_key(citus):
    """A node that made a day of logs cold, then distributed: the records' keys cannot be written into a
    columnar partition, and otel.distribute() says so, changing nothing."""
    done = citus.script("createdb", COLD_DATABASE)
    assert done.returncode == 0, done.stderr
    url = database_url(COLD_DATABASE, citus.ports[0])
    command.upgrade(alembic_config(url), "head")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension if not exists citus_columnar")
        stage_otlp(conn, [logs_request(log_record(timeUnixNano="1704067200000000000"))])  # 2024-01-01
        conn.execute("call otel.flush()")
        assert conn.execute("select otel.convert_to_columnar('logs', 'logs_p20240101')").fetchone() == (True,)
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="logs_p20240101"):
            conn.execute("select * from otel.distribute(4)")
        assert conn.execute("select otel.distributed('otel.traces')").fetchone() == (False,)


def test_distribute_refuses_a_cold_day_of_spans_in_slices_until_it_is_one_table(citus):
    """Citus distributes no table with a partitioned partition, which a cold day of many spans is: otel.distribute()
    names the day, and distributes once the day is one columnar table again (its hint), moving the day's cold
    trace summaries back to otel.trace_summaries."""
    done = citus.script("createdb", SLICED_DATABASE)
    assert done.returncode == 0, done.stderr
    url = database_url(SLICED_DATABASE, citus.ports[0])
    command.upgrade(alembic_config(url), "head")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("create extension if not exists citus_columnar")
        spans = [
            span(
                traceId=f"{n % 256:02x}{n + 1:030x}",
                spanId=f"{n + 1:016x}",
                startTimeUnixNano="1704067200000000000",  # 2024-01-01
                endTimeUnixNano="1704067201000000000",
            )
            for n in range(1_200)
        ]
        stage_otlp(conn, [traces_request(*spans)])
        conn.execute("call otel.flush()")
        conn.execute("set otel.cold_slice_spans = 1000")  # 1,200 spans: two slices
        assert conn.execute("select otel.convert_to_columnar('traces', 'traces_p20240101')").fetchone() == (True,)
        with pytest.raises(
            psycopg.errors.ObjectNotInPrerequisiteState, match="its cold days traces_p20240101 are split into slices"
        ):
            conn.execute("select * from otel.distribute(4)")
        assert conn.execute("select otel.distributed('otel.traces')").fetchone() == (False,)
        conn.execute("select set_config('otel.cold_slice_spans', '999999999999999999', false)")
        assert conn.execute("select otel.convert_to_columnar('traces', 'traces_p20240101')").fetchone() == (True,)
        assert conn.execute("select otel.move_summaries_to_cold('2024-01-01')").fetchone() == (1_200,)
        before = conn.execute("select * from otel.trace_spans(%s)", (spans[7]["traceId"],)).fetchall()
        assert len(before) == 1
        changes = [row for (row,) in conn.execute("select * from otel.distribute(4)")]
        assert changes[0] == "otel.cold_trace_summaries: 1200 summaries moved back to otel.trace_summaries"
        assert conn.execute("select otel.distributed('otel.traces')").fetchone() == (True,)
        assert conn.execute("select count(*) from otel.traces").fetchone() == (1_200,)
        assert conn.execute("select count(*) from otel.trace_summaries").fetchone() == (1_200,)
        assert conn.execute("select count(*) from otel.cold_trace_summaries").fetchone() == (0,)
        assert conn.execute("select * from otel.trace_spans(%s)", (spans[7]["traceId"],)).fetchall() == before


def test_a_writer_holding_the_staging_keeps_its_rows_and_the_claim_runs_on_the_workers(citus):
    """A COPY still open when the flush starts: its rows wait for the next flush, and the committed rows are
    claimed shard by shard on the workers (the staging cannot be truncated), not pulled through the
    coordinator."""
    done = citus.script("createdb", CLAIM_DATABASE)
    assert done.returncode == 0, done.stderr
    url = database_url(CLAIM_DATABASE, citus.ports[0])
    command.upgrade(alembic_config(url), "head")
    columns = "trace_id, span_id, name, kind, start_time, end_time, status_code"
    start = datetime.now(UTC).replace(microsecond=0)
    rows = [
        (
            f"{n + 1:032x}",
            f"{n + 1:016x}",
            "GET /",
            "SERVER",
            start.isoformat(),
            (start + timedelta(seconds=1)).isoformat(),
            "OK",
        )
        for n in range(40)
    ]
    with psycopg.connect(url, autocommit=True) as conn, psycopg.connect(url) as writer:
        conn.execute("select * from otel.distribute(4)")
        with conn.cursor().copy(f"copy otel.traces_staging ({columns}) from stdin") as copy:
            for row in rows[:-1]:
                copy.write_row(row)
        with writer.cursor().copy(f"copy otel.traces_staging ({columns}) from stdin") as copy:
            copy.write_row(rows[-1])  # not committed yet
        on_shards = {
            "claim": r"with claimed as \(delete from otel\.traces_staging_\d+ returning \*\) insert into otel\.claimed"
        }
        assert flush_on_workers(conn, on_shards) == set(on_shards)
        last_run = (
            "select spans, 'traces_staging' = any (truncated_staging) from otel.flush_runs order by id desc limit 1"
        )
        assert conn.execute(last_run).fetchone() == (len(rows) - 1, False)
        writer.commit()
        conn.execute("call otel.flush()")
        assert conn.execute(last_run).fetchone() == (1, True)
        assert conn.execute("select count(*), count(distinct trace_id) from otel.traces").fetchone() == (
            len(rows),
            len(rows),
        )
        assert conn.execute("select sum(duplicates) from otel.flush_runs").fetchone() == (0,)
        # A working table of another shape than this release types (an earlier release made it): the
        # coordinator types the rows, with a warning, until otel.distribute() makes it again.
        conn.execute("alter table otel.flush_spans add column made_by_an_earlier_release int")
        warnings: list[str] = []
        conn.add_notice_handler(lambda notice: warnings.append(notice.message_primary or ""))
        later = (f"{len(rows) + 1:032x}", *rows[0][1:])
        with conn.cursor().copy(f"copy otel.traces_staging ({columns}) from stdin") as copy:
            copy.write_row(later)
        conn.execute("call otel.flush()")
        assert conn.execute(last_run).fetchone() == (1, True)
        assert any("otel.flush_spans is not shaped as this release types traces" in w for w in warnings), warnings
        assert conn.execute("select * from otel.distribute(4)").fetchall() == [
            ("otel.flush_spans: distributed by trace_id, made again for this release's typing",)
        ]
        with conn.cursor().copy(f"copy otel.traces_staging ({columns}) from stdin") as copy:
            copy.write_row((f"{len(rows) + 2:032x}", *rows[0][1:]))
        assert flush_on_workers(conn, {"spans": SPANS_ON_WORKERS["spans"]}) == {"spans"}


def test_times_typed_on_workers_in_another_time_zone_read_as_on_one_node(citus, dsn):
    """Staged times without an offset, rows outside the accepted window and more new days than one flush
    makes, typed by workers whose time zone is not UTC: stored and dead-lettered as on one node."""
    done = citus.script("createdb", TIMES_DATABASE)
    assert done.returncode == 0, done.stderr
    url = database_url(TIMES_DATABASE, citus.ports[0])
    command.upgrade(alembic_config(url), "head")
    now = datetime.now(UTC).replace(microsecond=0)
    hour = (now - timedelta(hours=3)).replace(minute=0, second=0)  # a day otel.maintain() makes: today or yesterday

    def span_row(n: int, start: datetime | str, end: datetime | str) -> tuple:
        times = [t.isoformat() if isinstance(t, datetime) else t for t in (start, end)]
        return (f"{n:032x}", f"{n:016x}", f"op {n}", "SERVER", *times, "OK")

    rows = [
        span_row(n + 1, now - timedelta(days=n, hours=1), now - timedelta(days=n, hours=1) + timedelta(seconds=1))
        for n in range(40)
    ]
    rows += [
        span_row(41, now + timedelta(days=5), now + timedelta(days=5, seconds=1)),  # past otel.future_margin
        span_row(42, now - timedelta(days=500), now - timedelta(days=500) + timedelta(seconds=1)),  # past retention
        span_row(43, f"{hour:%Y-%m-%dT%H:%M:%S}", f"{hour + timedelta(seconds=1):%Y-%m-%dT%H:%M:%S}.5"),  # no offset
        span_row(44, f"{hour:%Y-%m-%dT%H:%M:%S}Z", f"{hour - timedelta(hours=1):%Y-%m-%dT%H:%M:%S}"),  # ends first
    ]
    columns = "trace_id, span_id, name, kind, start_time, end_time, status_code"
    bound = re.compile(r"(is before|is after) [0-9-]+ [0-9:.]+\+00")  # now() - retention, now() + margin: per flush

    def stored(database: str) -> tuple[list, list]:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("select otel.set_retention('traces', interval '400 days')")
            conn.execute("call otel.maintain()")  # the same partitions on both: today's
            with conn.cursor().copy(f"copy otel.traces_staging ({columns}) from stdin") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.execute("call otel.flush()")
            spans = conn.execute("select trace_id, start_time, end_time from otel.traces order by trace_id").fetchall()
            letters = [
                (raw, bound.sub(r"\1 …", message))
                for raw, message in conn.execute("select raw_data, error_message from otel.telemetry_dlq order by id")
            ]
            return spans, letters

    for port in citus.ports[1:]:
        with psycopg.connect(database_url("postgres", port), autocommit=True) as worker:
            worker.execute("alter system set timezone = 'America/New_York'")
            worker.execute("select pg_reload_conf()")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("select * from otel.distribute(4)")
            assert conn.execute("select distinct result from run_command_on_workers('show timezone')").fetchall() == [
                ("America/New_York",)
            ]
        on_cluster = stored(url)
    finally:
        for port in citus.ports[1:]:
            with psycopg.connect(database_url("postgres", port), autocommit=True) as worker:
                worker.execute("alter system reset timezone")
                worker.execute("select pg_reload_conf()")
    one_node = stored(dsn)
    assert on_cluster == one_node
    spans, letters = one_node
    assert (f"{43:032x}", hour, hour + timedelta(seconds=1.5)) in spans
    reasons = [message.split(" ")[0] for _, message in letters]
    assert (reasons.count("end_time"), reasons.count("start_time")) == (1, 2), letters
    assert reasons.count("no") == len(letters) - 3 > 0, letters  # "no partition for …": past 32 new days


def otlp_request(kind: str, records: list[dict]) -> str:
    """One OTLP/JSON export request of `kind` (traces, logs, metrics) from service "shop", holding `records`."""
    resource_key, scope_key, record_key = {
        "traces": ("resourceSpans", "scopeSpans", "spans"),
        "logs": ("resourceLogs", "scopeLogs", "logRecords"),
        "metrics": ("resourceMetrics", "scopeMetrics", "metrics"),
    }[kind]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]}
    scope = {"scope": {"name": "s"}, record_key: records}
    return json.dumps({resource_key: [{"resource": resource, scope_key: [scope]}]})


def test_otlp_requests_decoded_on_the_workers_or_else_on_the_coordinator_store_as_one_node(citus, dsn):
    """OTLP/JSON requests of every kind, with records that fail validation, a request that is no request and
    a span sent twice: parsed, decoded and typed on the workers, stored and dead-lettered as on one node. A record
    that cannot be decoded at all sends the flush's requests to the coordinator, which isolates it as on one node."""
    done = citus.script("createdb", REQUESTS_DATABASE)
    assert done.returncode == 0, done.stderr
    url = database_url(REQUESTS_DATABASE, citus.ports[0])
    command.upgrade(alembic_config(url), "head")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select * from otel.distribute(4)")
    now = time.time_ns()

    def span(n: int, name: str | int, **fields: object) -> dict:
        times = {"startTimeUnixNano": str(now - 2_000_000_000 + n), "endTimeUnixNano": str(now)}
        return {"traceId": f"{1 + n // 3:032x}", "spanId": f"{n + 1:016x}", "name": name, "kind": 2, **times, **fields}

    def point(value: object) -> dict:
        return {"timeUnixNano": str(now), "asDouble": value, "attributes": [{"key": "k", "value": {"intValue": 1}}]}

    attribute = [{"key": "attempt", "value": {"stringValue": "first"}}]
    decodable = [
        otlp_request("traces", [span(n, f"op {n}", attributes=attribute) for n in range(9)]),
        "[1, 2, 3]",
        otlp_request("traces", [span(4, "op 4", attributes=[{"key": "attempt", "value": {"stringValue": "again"}}])]),
        otlp_request("traces", [span(20, "op 20", endTimeUnixNano="soon")]),
        otlp_request(
            "logs",
            [
                {"timeUnixNano": str(now), "body": {"stringValue": "card declined"}, "traceId": f"{1:032x}"},
                {"timeUnixNano": "yesterday", "body": {"stringValue": "when?"}},
            ],
        ),
        otlp_request("metrics", [{"name": "temperature", "gauge": {"dataPoints": [point(21.5), point("warm")]}}]),
        None,
    ]
    undecodable = [
        otlp_request("traces", [span(30, "op 30"), span(31, 31)]),  # a name that is not a string
        otlp_request("logs", [{"timeUnixNano": str(now), "body": {"stringValue": "after the bad span"}}]),
    ]
    results = (
        "select trace_id, span_id, name, attributes from otel.traces order by 1, 2",
        "select body, trace_id from otel.logs order by 1",
        "select name, value, labels from otel.metrics order by 2",
        "select telemetry_type, source, raw_data, raw_format, error_message from otel.telemetry_dlq order by 1, 3, 5",
    )

    # The records' moves out of the working tables, which run only for what was decoded on the workers.
    moved = {
        "spans": SPANS_ON_WORKERS["spans"],
        "logs insert": SIGNALS_ON_WORKERS["logs insert"],
        "metrics insert": SIGNALS_ON_WORKERS["metrics insert"],
    }
    # The coordinator's way: it takes the claimed requests into its working set.
    redone = {"redone on the coordinator": r"DELETE FROM otel\.claimed_otlp_\d+"}

    def flush(database: str, requests: list[str | None], on_workers: set[str]) -> list[list[tuple]]:
        with psycopg.connect(database, autocommit=True) as conn:
            before = conn.execute("select otel.staging_bytes()").fetchone()[0]
            with conn.cursor().copy("copy otel.otlp_staging (payload) from stdin") as copy:
                for request in requests:  # None: a blank line through COPY … csv
                    copy.write_row((request,))
            assert conn.execute("select otel.staging_bytes()").fetchone()[0] > before  # on the workers too
            if database == url:
                assert flush_on_workers(conn, DECODED_ON_WORKERS | moved | redone) == on_workers
                left = "select (select count(*) from otel.claimed_otlp) + (select count(*) from otel.flush_otlp)"
                assert conn.execute(left).fetchone() == (0,)
            else:
                conn.execute("call otel.flush()")
            last_run = "select otlp_requests from otel.flush_runs order by id desc limit 1"
            assert conn.execute(last_run).fetchone() == (len(requests),)
            return [conn.execute(query).fetchall() for query in results]

    on_cluster = flush(url, decodable, set(DECODED_ON_WORKERS | moved))
    one_node = flush(dsn, decodable, set())
    assert on_cluster == one_node
    spans, logs, points, letters = one_node
    assert len(spans) == 9 and {row[3]["attempt"] for row in spans} == {"first"}  # the first of a span sent twice
    assert (logs, [row[:2] for row in points]) == ([("card declined", f"{1:032x}")], [("temperature", 21.5)])
    not_json = "not valid JSON (an OTLP/JSON request is one JSON object per line)"
    assert [(row[0], row[2][:2], row[4].split(":")[0]) for row in letters] == [
        ("logs", '{"', "invalid OTLP timeUnixNano (not Unix nanoseconds, 0 to 2^64-1)"),
        ("metrics", '{"', 'value "warm" is not a number'),
        ("otlp", "", not_json),
        ("otlp", "[1", "not an OTLP/JSON export request"),
        ("traces", '{"', "invalid OTLP endTimeUnixNano (not Unix nanoseconds, 0 to 2^64-1)"),
    ]

    # A request that is not JSON fails the parsing on the workers, a span name that is a number the decoding:
    # each time the flush is done again on the coordinator, the logs' request too, and nothing moves out of
    # the working tables on the workers.
    for requests, tried in (
        (["{not json", *undecodable[1:]], {"claim requests", "parse requests", *redone}),
        (undecodable, set(REQUESTS_ON_WORKERS) | set(redone)),
    ):
        on_cluster = flush(url, requests, tried)
        one_node = flush(dsn, requests, set())
        assert on_cluster == one_node
    spans, logs, _, letters = one_node
    assert (len(spans), len(logs), len(letters)) == (10, 3, 5 + 2)
    assert ("otlp", "{not json", not_json) in [(row[0], row[2], row[4]) for row in letters]
    rejected = [row for row in letters if "rejected record" in row[4]]
    assert len(rejected) == 1 and '"name": 31' in rejected[0][2]


def send_logs_and_metrics(otlp_urls: list[str]) -> list[str]:
    """Ten traces with two log records each, ten logs outside any span, and a counter and a histogram exported
    twice and a gauge, each exported by the SDK to every URL; returns the trace ids."""
    resource = Resource({"service.name": "payment"})
    tracer_provider = TracerProvider(resource=resource)
    logger_provider = LoggerProvider(resource=resource)
    exporters = [OTLPMetricExporter(endpoint=f"{otlp_url}/v1/metrics") for otlp_url in otlp_urls]
    reader = PeriodicExportingMetricReader(EveryExporter(exporters), export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    for otlp_url in otlp_urls:
        logger_provider.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{otlp_url}/v1/logs"))
        )
    tracer = tracer_provider.get_tracer("shop.payment")
    logger = logger_provider.get_logger("shop.payment")
    meter = meter_provider.get_meter("shop.payment")
    orders = meter.create_counter("orders")
    latency = meter.create_histogram("latency", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1.0])
    trace_ids = []
    for order in range(10):
        with tracer.start_as_current_span(f"charge {order}") as span:
            trace_ids.append(format(span.get_span_context().trace_id, "032x"))
            logger.emit(severity_number=SeverityNumber.INFO, severity_text="INFO", body=f"charging order {order}")
            logger.emit(
                severity_number=SeverityNumber.ERROR,
                severity_text="ERROR",
                body=f"card declined for order {order}",
                attributes={"order": order},
            )
        logger.emit(severity_number=SeverityNumber.WARN, severity_text="WARN", body=f"retry queue at {order} items")
        orders.add(1, {"region": "eu" if order % 2 else "us"})
        latency.record(0.05 * (order + 1))
        if order == 4:  # a first export of the cumulative points: rates and percentiles need two
            meter_provider.force_flush()
    meter.create_gauge("temperature").set(21.5, {"room": "a"})
    tracer_provider.shutdown()
    logger_provider.shutdown()
    meter_provider.shutdown()
    return trace_ids


class EveryExporter(MetricExporter):
    """Exports each collection with each of the exporters: the same points, to every server."""

    def __init__(self, exporters: list[OTLPMetricExporter]) -> None:
        super().__init__()  # cumulative, as the OTLP exporters' default
        self.exporters = exporters

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
        results = [exporter.export(metrics_data, timeout_millis) for exporter in self.exporters]
        ok = all(result is MetricExportResult.SUCCESS for result in results)
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return all([exporter.force_flush(timeout_millis) for exporter in self.exporters])

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        for exporter in self.exporters:
            exporter.shutdown()
