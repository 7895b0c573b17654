"""`Client.sql()` / `AsyncClient.sql()`, the escape hatch, tried as an attacker would with a superuser DSN.

Each statement runs on a connection of its own, in a read-only transaction
that is always rolled back, as otel_reader, with a statement timeout and a
row cap: nothing it does may outlive the call or reach past otel_reader.
"""

import asyncio
import contextlib
import uuid

import psycopg
import pytest

from otel_db import AsyncClient, Client, OtelDbError, ReadOnlyQueryError, TooManyRows
from tests.helpers import scalar


@pytest.fixture
def client(dsn: str):
    with Client(dsn) as c:
        yield c


def test_a_large_object_does_not_outlive_the_call(client, conn):
    before = scalar(conn, "select count(*) from pg_largeobject_metadata")
    # PostgreSQL 17 refuses lo_from_bytea() in a read-only transaction; 15 makes it, and the rollback removes it.
    with contextlib.suppress(ReadOnlyQueryError):
        client.sql("select lo_from_bytea(0, convert_to(repeat('x', 1000000), 'UTF8')) as oid")
    assert scalar(conn, "select count(*) from pg_largeobject_metadata") == before


def test_an_advisory_lock_does_not_outlive_the_call(client, conn):
    client.sql("select pg_advisory_lock(hashtext('otel.flush')) is null as locked")
    client.sql("select pg_advisory_lock(42) is null as locked")
    free = "select pg_try_advisory_lock(%s) and pg_advisory_unlock(%s)"
    assert scalar(conn, free, (42, 42)) is True
    flush_key = scalar(conn, "select hashtext('otel.flush')")
    assert scalar(conn, free, (flush_key, flush_key)) is True


def test_role_and_settings_do_not_outlive_the_call(client):
    client.sql("select set_config('search_path', 'pg_catalog', false), set_config('role', 'otel_reader', false)")
    client.sql("set search_path = pg_catalog")
    assert client.sql("select current_setting('search_path') as path") == [{"path": '"$user", public'}]
    shared = client.connection()
    assert shared.execute("select current_user, current_setting('search_path')").fetchone() == (
        "postgres",
        '"$user", public',
    )
    assert client.similar_traces("0" * 32) == []  # the shared connection still finds pgvector's types


def test_another_backend_cannot_be_terminated(client, dsn):
    with psycopg.connect(dsn, autocommit=True) as victim:
        pid = victim.info.backend_pid
        with pytest.raises(ReadOnlyQueryError, match="otel_reader"):
            client.sql("select pg_terminate_backend(%s)", (pid,))
        assert victim.execute("select 1").fetchone() == (1,)


def test_no_program_runs_and_no_server_file_is_read(client, tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(ReadOnlyQueryError, match="otel_reader"):
        client.sql(f"copy (select 1) to program 'touch {marker}'")
    assert not marker.exists()
    with pytest.raises(ReadOnlyQueryError, match="permission denied for function pg_read_file"):
        client.sql("select pg_read_file('PG_VERSION')")
    with pytest.raises(ReadOnlyQueryError, match="otel_reader"):
        client.sql("select * from otel.telemetry_dlq")  # not otel_reader's to read


def test_rows_are_capped_without_reading_them_all(client):
    assert len(client.sql("select generate_series(1, 10000) as n")) == 10_000
    with pytest.raises(TooManyRows, match="more than 10,000 rows"):
        client.sql("select generate_series(1, 100000000) as n")  # streamed: stopped at row 10,001
    assert client.sql("select generate_series(1, 3) as n", max_rows=3) == [{"n": 1}, {"n": 2}, {"n": 3}]
    with pytest.raises(TooManyRows, match="more than 2 rows"):
        client.sql("select generate_series(1, 3) as n", max_rows=2)
    with pytest.raises(ValueError, match="max_rows"):
        client.sql("select 1", max_rows=0)


def test_a_statement_without_rows_gives_none_and_an_error_stays_an_error(client):
    assert client.sql("set search_path = pg_catalog") == []
    with pytest.raises(psycopg.errors.SyntaxError):
        client.sql("selec 1")


def test_a_role_that_cannot_take_otel_reader_is_told_what_to_grant(conn, dsn):
    name = f"otel_test_outsider_{uuid.uuid4().hex[:8]}"  # roles are the cluster's: one no other test uses
    conn.execute(f"create role {name} login")
    try:
        outsider = psycopg.conninfo.make_conninfo(dsn, user=name)
        with Client(outsider) as client, pytest.raises(OtelDbError, match="grant otel_reader to it"):
            client.sql("select 1")
    finally:
        conn.execute(f"drop role {name}")


def test_the_async_client_is_contained_too(dsn, conn):
    async def escape() -> list[dict]:
        async with AsyncClient(dsn) as client:
            await client.sql("select pg_advisory_lock(43) is null as locked")
            with pytest.raises(TooManyRows):
                await client.sql("select generate_series(1, 20) as n", max_rows=10)
            return await client.sql("select current_user as who, current_setting('transaction_read_only') as ro")

    assert asyncio.run(escape()) == [{"who": "otel_reader", "ro": "on"}]
    assert scalar(conn, "select pg_try_advisory_lock(43)") is True
