"""The three roles: what each may and may not do."""

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import database_url
from tests.helpers import flush, scalar, stage_otlp
from tests.otlp import span, traces_request


@pytest.fixture
def login_role(conn) -> Iterator:
    """Makes NOLOGIN-group members: login_role('otel_writer') → a connection as a new login role."""
    created: list[str] = []
    connections: list[psycopg.Connection] = []

    def make(group: str) -> psycopg.Connection:
        name = f"test_{group}_{uuid.uuid4().hex[:8]}"
        conn.execute(f"create role {name} login in role {group}")
        created.append(name)
        connection = psycopg.connect(database_url(conn.info.dbname), user=name, autocommit=True)
        connections.append(connection)
        return connection

    yield make
    for connection in connections:
        connection.close()
    for name in created:
        conn.execute(f"drop role {name}")


def test_writer_stages_but_cannot_read_or_flush(conn, login_role):
    writer = login_role("otel_writer")
    stage_otlp(writer, [traces_request(span())])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        writer.execute("select count(*) from otel.traces")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        writer.execute("select count(*) from otel.otlp_staging")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        writer.execute("call otel.flush()")
    assert flush(conn)["spans"] == 1


def test_reader_reads_but_cannot_write(conn, login_role):
    stage_otlp(conn, [traces_request(span())])
    flush(conn)
    reader = login_role("otel_reader")
    assert reader.execute("select count(*) from otel.traces").fetchone()[0] == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        stage_otlp(reader, [traces_request(span())])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        reader.execute("delete from otel.traces")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        reader.execute("call otel.retry_dlq()")


def test_admin_runs_the_pipeline(conn, login_role):
    admin = login_role("otel_admin")
    stage_otlp(conn, [traces_request(span())])
    admin.execute("call otel.flush()")
    admin.execute("call otel.retry_dlq()")
    admin.execute("call otel.resign_spans()")
    assert scalar(admin, "select count(*) from otel.traces") == 1


def test_public_can_execute_nothing(conn):
    executable = scalar(
        conn,
        "select count(*) from pg_proc where pronamespace = 'otel'::regnamespace"
        " and has_function_privilege('public', oid, 'execute')",
    )
    assert executable == 0


def test_a_routine_added_to_otel_later_is_not_executable_by_public(conn, login_role):
    conn.execute("create function otel.added_later() returns int language sql as 'select 1'")
    conn.execute("create function public.not_ours() returns int language sql as 'select 1'")
    writer = login_role("otel_writer")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        writer.execute("select otel.added_later()")
    assert scalar(writer, "select public.not_ours()") == 1  # routines elsewhere keep PostgreSQL's default
