"""Durable staging: in logged mode a crash in the middle of a flush loses and duplicates nothing."""

import threading
import time

import psycopg
import pytest
from alembic import command

from tests.conftest import PrivateCluster, alembic_config, database_url
from tests.helpers import scalar

SPANS = 200_000

# Typed spans made by the server itself: quicker than sending them.
STAGE_SPANS = f"""
insert into otel.traces_staging (trace_id, span_id, name, kind, start_time, end_time, status_code, service_name)
select lpad(to_hex(i / 4 + 1), 32, '0'), lpad(to_hex(i), 16, '0'), 'span ' || (i % 50), 'SERVER',
       (1764000000000000000 + i::bigint * 1000000)::text, (1764000000000000000 + i::bigint * 1000000 + 500000)::text,
       'OK', 'shop'
  from generate_series(1, {SPANS}) as i
"""


def test_staging_mode_switches_both_ways(conn):
    assert scalar(conn, "select otel.staging_mode()") == "unlogged"
    assert scalar(conn, "select otel.set_staging_mode('logged')") == "logged"
    assert scalar(conn, "select relpersistence from pg_class where oid = 'otel.claimed_traces'::regclass") == "p"
    assert scalar(conn, "select otel.set_staging_mode('unlogged')") == "unlogged"
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="mode must be logged or unlogged"):
        conn.execute("select otel.set_staging_mode('durable')")


def test_staging_bytes_is_what_waits_in_every_staging_table_until_the_flush(conn):
    sizes = (
        "select otel.staging_bytes(), pg_total_relation_size('otel.otlp_staging')"
        " + pg_total_relation_size('otel.traces_staging') + pg_total_relation_size('otel.logs_staging')"
        " + pg_total_relation_size('otel.metrics_staging')"
    )
    empty, total = conn.execute(sizes).fetchone()
    assert empty == total
    conn.execute("insert into otel.logs_staging (time, body) select now()::text, 'x' from generate_series(1, 1000)")
    staged, total = conn.execute(sizes).fetchone()
    assert staged == total > empty
    conn.execute("call otel.flush()")
    assert scalar(conn, "select otel.staging_bytes()") < staged
    conn.execute("set role otel_writer")  # as `otel-db serve` asks it
    assert scalar(conn, "select otel.staging_bytes()") >= 0


def test_a_crash_in_the_middle_of_a_logged_flush_loses_and_duplicates_nothing(private_cluster: PrivateCluster):
    url = database_url("postgres", private_cluster.port)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("drop database if exists crash with (force)")
        admin.execute("create database crash")
    crash_url = database_url("crash", private_cluster.port)
    command.upgrade(alembic_config(crash_url), "head")
    with psycopg.connect(crash_url, autocommit=True) as conn:
        assert scalar(conn, "select otel.set_staging_mode('logged')") == "logged"
        conn.execute(STAGE_SPANS)

    def flush() -> None:
        try:
            with psycopg.connect(crash_url, autocommit=True) as flusher:
                flusher.execute("call otel.flush()")
        except psycopg.OperationalError:
            pass  # the crash ends it

    flusher = threading.Thread(target=flush)
    flusher.start()
    # The claim has committed once the staged rows are in the claim table: the
    # second, long transaction is then moving them.
    with psycopg.connect(crash_url, autocommit=True) as watcher:
        deadline = time.monotonic() + 60
        while scalar(watcher, "select count(*) from otel.claimed_traces") < SPANS and time.monotonic() < deadline:
            time.sleep(0.02)
        assert scalar(watcher, "select count(*) from otel.flush_runs") == 0, "the flush ended before the crash"
    private_cluster.crash()
    flusher.join(timeout=30)
    private_cluster.run("start")

    with psycopg.connect(crash_url, autocommit=True) as conn:
        assert scalar(conn, "select otel.staging_mode()") == "logged"
        assert scalar(conn, "select count(*) from otel.traces") == 0  # the processing was rolled back
        assert scalar(conn, "select count(*) from otel.claimed_traces") == SPANS  # and its rows kept
        conn.execute("call otel.flush()")
        assert scalar(conn, "select count(*) from otel.traces") == SPANS
        assert scalar(conn, "select count(distinct (trace_id, span_id)) from otel.traces") == SPANS
        assert scalar(conn, "select count(*) from otel.claimed_traces") == 0
        assert scalar(conn, "select count(*) from otel.telemetry_dlq") == 0
