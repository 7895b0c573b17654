"""The lock that serialises flushes, retries and maintenance: only otel roles take it, and no wait lasts for ever."""

import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import database_url
from tests.helpers import flush, scalar, stage_otlp
from tests.otlp import span, traces_request


@pytest.fixture
def stranger(conn) -> Iterator[psycopg.Connection]:
    """A login role with no otel grant at all, connected to the test database (roles are the cluster's: a new name)."""
    name = f"otel_test_stranger_{uuid.uuid4().hex[:8]}"
    conn.execute(f"create role {name} login")
    try:
        with psycopg.connect(database_url(conn.info.dbname), user=name, autocommit=True) as other:
            yield other
    finally:
        conn.execute(f"drop role {name}")


def test_a_role_without_grants_cannot_stop_the_pipeline(conn, stranger):
    # What used to serialise the flush: an advisory lock that any role could take and hold.
    stranger.execute("select pg_advisory_lock(hashtext('otel.flush'))")
    conn.execute("set statement_timeout = '20s'")  # a wait here would fail the test, not hang it
    stage_otlp(conn, [traces_request(span())])
    assert flush(conn)["spans"] == 1
    conn.execute("call otel.retry_dlq()")
    conn.execute("call otel.maintain()")


def test_the_flush_lock_takes_otel_grants(stranger):
    with pytest.raises(psycopg.errors.InsufficientPrivilege), stranger.transaction():
        stranger.execute("lock table otel.flush_lock in access share mode")


def test_a_flush_behind_a_stuck_holder_gives_up_after_otel_lock_timeout(conn, dsn):
    with psycopg.connect(dsn) as holder:  # a transaction left open while holding the lock
        holder.execute("lock table otel.flush_lock in exclusive mode")
        conn.execute("set otel.lock_timeout = '200ms'")
        stage_otlp(conn, [traces_request(span())])
        with pytest.raises(psycopg.errors.LockNotAvailable):
            conn.execute("call otel.flush()")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            conn.execute("call otel.maintain()")
        holder.rollback()
    assert flush(conn)["spans"] == 1


def test_maintenance_does_not_stall_readers_behind_a_reader_left_open(conn, dsn):
    ten_days_ago = int((time.time() - 10 * 86400) * 1e9)
    stage_otlp(conn, [traces_request(span(startTimeUnixNano=str(ten_days_ago), endTimeUnixNano=str(ten_days_ago)))])
    assert flush(conn)["spans"] == 1
    partition = scalar(conn, "select tableoid::regclass::text from otel.traces")
    conn.execute("select otel.set_retention('traces', interval '7 days')")

    def maintain() -> None:
        with psycopg.connect(dsn, autocommit=True) as maintainer:
            maintainer.execute("call otel.maintain()")

    with psycopg.connect(dsn) as idle_reader:  # a transaction left open after a read of otel.traces
        idle_reader.execute("select count(*) from otel.traces")
        maintenance = threading.Thread(target=maintain)
        maintenance.start()
        reads: list[float] = []
        with psycopg.connect(dsn, autocommit=True) as reader:
            reader.execute("set statement_timeout = '3s'")  # a read stuck behind the drop fails the test
            while maintenance.is_alive():
                started = time.monotonic()
                reader.execute("select count(*) from otel.traces")
                reads.append(time.monotonic() - started)
        maintenance.join()
        assert reads and max(reads) < 3
        assert scalar(conn, "select to_regclass(%s) is not null", (partition,))  # in use: kept for next time
    conn.execute("call otel.maintain()")
    assert scalar(conn, "select to_regclass(%s) is null", (partition,))
