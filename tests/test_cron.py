"""pg_cron scheduling, on a private cluster of its own.

pg_cron keeps one job table per cluster, in one database. So that the suite
never reads or changes the project cluster's jobs, these tests run on the
private cluster (tests/conftest.py), whose pg_cron lives in its database
`otel`, as a user's cluster may have it. A second database there, `other`,
schedules its jobs through dblink.
"""

import asyncio
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command

from otel_db import AsyncClient, Client, InvalidArgument, Settings, queries
from tests.conftest import PrivateCluster, alembic_config, database_url
from tests.helpers import scalar


@pytest.fixture(scope="session")
def cron_cluster(private_cluster: PrivateCluster) -> int:
    """The port of the private cluster (pg_cron in its database otel), with otel and other migrated."""
    with psycopg.connect(database_url("postgres", private_cluster.port), autocommit=True) as admin:
        admin.execute("create database other")
    for database in ("otel", "other"):
        command.upgrade(alembic_config(database_url(database, private_cluster.port)), "head")
    return private_cluster.port


@pytest.fixture
def cron_db(cron_cluster) -> Iterator[psycopg.Connection]:
    """The cron database (otel) of the private cluster; its jobs are removed afterwards."""
    with psycopg.connect(database_url("otel", cron_cluster), autocommit=True) as conn:
        yield conn
        conn.execute("select cron.unschedule(jobid) from cron.job")


@pytest.fixture
def other_db(cron_cluster, cron_db) -> Iterator[psycopg.Connection]:
    """Another migrated database of the private cluster, reaching pg_cron through dblink."""
    with psycopg.connect(database_url("other", cron_cluster), autocommit=True) as conn:
        yield conn


def jobs(cron_db: psycopg.Connection) -> list[tuple]:
    return cron_db.execute(
        "select jobid, jobname, schedule, command, database, username, active from cron.job order by jobid"
    ).fetchall()


def cron_takes_seconds(conn: psycopg.Connection) -> bool:
    """pg_cron 1.5 and later (Debian 13) schedule in seconds; 1.4 (Debian 12) by the minute."""
    version = scalar(conn, "select extversion from pg_extension where extname = 'pg_cron'")
    return tuple(int(part) for part in version.split("-")[0].split(".")) >= (1, 5)


def test_schedule_flush_from_another_database_goes_through_schedule_in_database(cron_db, other_db):
    job_id = scalar(other_db, "select otel.schedule_flush()")
    assert job_id > 0
    default = "5 seconds" if cron_takes_seconds(cron_db) else "* * * * *"
    assert [job[1:5] for job in jobs(cron_db)] == [
        ("otel-flush", default, "call otel.flush()", "other"),
        ("otel-maintenance", "17 * * * *", "call otel.maintain()", "other"),
    ]
    scalar(other_db, "select otel.schedule_flush('5 minutes')")
    assert jobs(cron_db)[0][2] == "*/5 * * * *"
    assert scalar(other_db, "select otel.unschedule_flush()") is True
    assert jobs(cron_db) == []
    assert scalar(other_db, "select otel.unschedule_flush()") is False


def test_schedule_flush_in_the_cron_database_itself(cron_db):
    cron_db.execute("select otel.schedule_flush('2 minutes')")
    assert [job[2:7] for job in jobs(cron_db) if job[1] == "otel-flush"] == [
        ("*/2 * * * *", "call otel.flush()", "otel", "postgres", True)
    ]


def test_another_database_leaves_the_cron_databases_job_alone(cron_cluster, cron_db, other_db):
    """A user's job survives what another database does: schedule, unschedule, downgrade and upgrade."""
    cron_db.execute("select otel.schedule_flush('3 minutes')")
    before = jobs(cron_db)
    with pytest.raises(psycopg.Error, match="already belongs to another database") as info:
        other_db.execute("select otel.schedule_flush()")
    assert info.value.sqlstate == "55006"
    assert scalar(other_db, "select otel.unschedule_flush()") is False
    config = alembic_config(database_url("other", cron_cluster))
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    assert jobs(cron_db) == before


def test_downgrade_base_removes_the_databases_jobs(cron_cluster, cron_db, other_db):
    other_db.execute("select otel.schedule_flush()")
    config = alembic_config(database_url("other", cron_cluster))
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    assert jobs(cron_db) == []


@pytest.mark.parametrize(
    ("every", "message"),
    [
        ("5 seconds", "schedules by the minute at best"),
        ("90 minutes", "minutes must be between 1 and 59"),
        ("99999999999 minutes", "minutes must be between 1 and 59, got 99999999999"),
        ("whenever", "every must be"),
        ("@reboot", "a cron expression that repeats"),
        ("99 * * * *", "invalid schedule"),
    ],
)
def test_schedule_flush_rejects_what_pg_cron_cannot_do(cron_db, other_db, every, message):
    if every == "5 seconds" and cron_takes_seconds(cron_db):
        every, message = "61 seconds", "seconds must be between 1 and 59"
    with pytest.raises(psycopg.Error, match=message) as info:
        other_db.execute("select otel.schedule_flush(%s)", (every,))
    assert info.value.sqlstate == "22023"
    assert jobs(cron_db) == []


def test_schedule_flush_says_why_without_dblink(cron_db, other_db):
    """From a database other than pg_cron's, dblink is the way there: without it, a clear error."""
    other_db.execute("drop extension dblink")
    try:
        with pytest.raises(psycopg.Error, match="needs the dblink extension") as info:
            other_db.execute("select otel.schedule_flush()")
        assert info.value.sqlstate == "0A000"
    finally:
        other_db.execute("create extension dblink")
    assert jobs(cron_db) == []


def test_client_schedules_at_the_flush_interval_setting(cron_cluster, cron_db, other_db):
    with Client(database_url("other", cron_cluster), settings=Settings(flush_interval=120)) as client:
        job_id = client.schedule_flush()
        assert [job[:3] for job in jobs(cron_db) if job[1] == "otel-flush"] == [(job_id, "otel-flush", "*/2 * * * *")]
        assert client.unschedule_flush() is True
        assert client.unschedule_flush() is False
    assert jobs(cron_db) == []


def test_client_default_interval_follows_what_pg_cron_can_do(cron_cluster, cron_db, other_db):
    """The default flush_interval is 5 seconds: pg_cron 1.5 and later run it, 1.4 flushes every minute instead."""

    async def schedule() -> int:
        async with AsyncClient(database_url("other", cron_cluster), settings=Settings()) as client:
            return await client.schedule_flush()

    asyncio.run(schedule())
    expected = "5 seconds" if cron_takes_seconds(cron_db) else "* * * * *"
    assert [job[2] for job in jobs(cron_db) if job[1] == "otel-flush"] == [expected]


def test_client_refuses_a_sub_minute_interval_where_pg_cron_cannot_do_it(cron_cluster, cron_db, other_db):
    if cron_takes_seconds(cron_db):
        pytest.skip("pg_cron 1.5 and later schedule in seconds: nothing to refuse")
    with (
        Client(database_url("other", cron_cluster), settings=Settings(flush_interval=10)) as client,
        pytest.raises(InvalidArgument, match="schedules by the minute at best"),
    ):
        client.schedule_flush()
    assert jobs(cron_db) == []


@pytest.mark.parametrize("seconds", [0, 0.5, 61, 90, 3600])
def test_client_refuses_an_interval_pg_cron_cannot_repeat(seconds):
    with pytest.raises(ValueError, match="not one pg_cron repeats"):
        queries.schedule_flush(seconds)
