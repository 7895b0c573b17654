"""pg_cron scheduling and the three roles."""

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import database_url
from tests.helpers import flush, scalar, stage_otlp
from tests.otlp import span, traces_request

CRON_DATABASE = "otel"  # cron.database_name of the project cluster


def cron_jobs(database: str) -> list[tuple]:
    with psycopg.connect(database_url(CRON_DATABASE)) as cron:
        return cron.execute(
            "select jobname, schedule, command, database from cron.job where database = %s order by jobname",
            (database,),
        ).fetchall()


def cron_takes_seconds(conn: psycopg.Connection) -> bool:
    """pg_cron 1.5 and later (Debian 13) schedule in seconds; 1.4 (Debian 12) by the minute."""
    version = scalar(
        conn,
        "select j->>'extversion' from otel.cron_query('select extversion from pg_extension"
        " where extname = ''pg_cron''') as j",
    )
    return tuple(int(part) for part in version.split("-")[0].split(".")) >= (1, 5)


def test_schedule_flush_from_another_database_goes_through_schedule_in_database(conn):
    database = conn.info.dbname
    try:
        job_id = scalar(conn, "select otel.schedule_flush()")
        assert job_id > 0
        default = "5 seconds" if cron_takes_seconds(conn) else "* * * * *"
        assert cron_jobs(database) == [
            ("otel-flush", default, "call otel.flush()", database),
            ("otel-maintenance", "17 * * * *", "call otel.maintain()", database),
        ]
        scalar(conn, "select otel.schedule_flush('5 minutes')")
        assert cron_jobs(database)[0][1] == "*/5 * * * *"
        assert scalar(conn, "select otel.unschedule_flush()") is True
        assert cron_jobs(database) == []
        assert scalar(conn, "select otel.unschedule_flush()") is False
    finally:
        conn.execute("select otel.unschedule_flush()")


@pytest.fixture
def cron_database_schedule() -> Iterator[psycopg.Connection]:
    """The cron database itself (migrated by `make migrate`), its jobs restored afterwards."""
    with psycopg.connect(database_url(CRON_DATABASE), autocommit=True) as cron:
        saved = cron.execute(
            "select jobname, schedule, command from cron.job where database = current_database()"
            " and jobname in ('otel-flush', 'otel-maintenance')"
        ).fetchall()
        yield cron
        cron.execute("select otel.unschedule_flush()")
        for name, schedule, command in saved:
            cron.execute("select cron.schedule(%s, %s, %s)", (name, schedule, command))


def test_schedule_flush_in_the_cron_database_itself(cron_database_schedule):
    cron = cron_database_schedule
    cron.execute("select otel.schedule_flush('2 minutes')")
    rows = cron.execute(
        "select schedule, command, active from cron.job where jobname = 'otel-flush' and database = current_database()"
    ).fetchall()
    assert rows == [("*/2 * * * *", "call otel.flush()", True)]


@pytest.mark.parametrize(
    ("every", "message"),
    [
        ("5 seconds", "schedules by the minute at best"),
        ("90 minutes", "minutes must be between 1 and 59"),
        ("whenever", "every must be"),
    ],
)
def test_schedule_flush_rejects_what_pg_cron_cannot_do(conn, every, message):
    if every == "5 seconds" and cron_takes_seconds(conn):
        every, message = "61 seconds", "seconds must be between 1 and 59"
    with pytest.raises(psycopg.Error, match=message) as info:
        conn.execute("select otel.schedule_flush(%s)", (every,))
    assert info.value.sqlstate == "22023"


def test_schedule_flush_says_why_without_dblink(conn):
    conn.execute("drop extension dblink")
    with pytest.raises(psycopg.Error, match="needs the dblink extension") as info:
        conn.execute("select otel.schedule_flush()")
    assert info.value.sqlstate == "0A000"


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
    assert scalar(admin, "select count(*) from otel.traces") == 1


def test_public_can_execute_nothing(conn):
    executable = scalar(
        conn,
        "select count(*) from pg_proc where pronamespace = 'otel'::regnamespace"
        " and has_function_privilege('public', oid, 'execute')",
    )
    assert executable == 0
