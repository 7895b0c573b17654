"""Test fixtures: a real PostgreSQL, the project cluster on 127.0.0.1 at OTEL_DB_PGPORT (54329).

`alembic upgrade head` runs once per session into a template database;
every test gets a fresh clone of it (pytest-postgresql's noproc factory).
The suite uses its own databases (otel_test*) and never connects to the
user's `otel` database; the pg_cron tests and the crash test run on a
private cluster of their own (`private_cluster` below).

The suite runs in pytest-xdist workers (pyproject's addopts; `-n 0` runs it
in one process). Each worker has its own template and test databases
(otel_testgw0, otel_testgw0_tmpl, otel_test_empty_gw0_1, ...) and, when its
tests need one, its own private cluster; what belongs to the project
cluster as a whole, roles and ports, is named or picked so that workers
never meet.
"""

import argparse
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from pytest_postgresql import factories

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PORT = int(os.environ.get("OTEL_DB_PGPORT", "54329"))
USER = "postgres"


def database_url(dbname: str, port: int = PORT) -> str:
    return f"postgresql://{USER}@{HOST}:{port}/{dbname}"


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.cmd_opts = argparse.Namespace(x=[f"url={url}"])
    return config


# The xdist worker this process is (gw0, gw1, ...), "" when the suite runs in one process.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
# Held while a worker builds its template: the first build in a cluster creates the
# roles otel_reader, otel_writer and otel_admin, and two at once would both create them.
MIGRATION_LOCK = 7_142_001


def migrate(host: str, port: int, user: str, dbname: str, **_: object) -> None:
    """pytest-postgresql loader: the template database gets the full schema."""
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        admin.execute("select pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            command.upgrade(alembic_config(database_url(dbname)), "head")
        finally:
            admin.execute("select pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Drop what an interrupted run may have left, so the templates can be made again.

    Only in the process that starts the workers (or runs the tests itself), before any worker
    starts: a worker doing it would drop the databases the other workers are using.
    """
    if WORKER:
        return
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        for (name,) in admin.execute(
            "select datname from pg_database"
            " where datname ~ '^otel_test(gw[0-9]+)?(_tmpl)?$' or datname like 'otel\\_test\\_empty\\_%'"
        ).fetchall():
            admin.execute(f"alter database {name} is_template false")
            admin.execute(f"drop database {name} with (force)")


postgresql_noproc_fixture = factories.postgresql_noproc(
    host=HOST, port=PORT, user=USER, dbname="otel_test", load=[migrate]
)
postgresql = factories.postgresql("postgresql_noproc_fixture")


@pytest.fixture
def dsn(postgresql: psycopg.Connection) -> str:
    """A connection string to a fresh, fully migrated database."""
    return database_url(postgresql.info.dbname)


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test database, as a superuser."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture
def new_database(postgresql_noproc_fixture) -> Iterator[Callable[[], str]]:
    """Makes new, empty databases (otel_test_empty_1, _2, ...; otel_test_empty_gw0_1 in worker gw0) and drops them."""
    made: list[str] = []

    def make() -> str:
        name = "_".join(["otel_test_empty", *([WORKER] if WORKER else []), str(len(made) + 1)])
        with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
            admin.execute(f"drop database if exists {name} with (force)")
            admin.execute(f"create database {name}")
        made.append(name)
        return database_url(name)

    yield make
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        for name in made:
            admin.execute(f"drop database if exists {name} with (force)")


@pytest.fixture
def empty_database(new_database) -> str:
    """The URL of a new, empty database (for migration tests)."""
    return new_database()


@dataclass
class PrivateCluster:
    """A second cluster made by scripts/pg-cluster.sh, for what the project cluster must not see or suffer."""

    port: int
    data: Path
    env: dict[str, str]

    def run(self, action: str) -> None:
        done = subprocess.run(
            [ROOT / "scripts" / "pg-cluster.sh", action], env=self.env, capture_output=True, text=True
        )
        if done.returncode != 0:
            server_log = self.data / "server.log"
            pytest.fail(
                f"pg-cluster.sh {action} failed: {done.stderr.strip()}"
                + (f"\n{server_log.read_text()}" if server_log.exists() else "")
            )

    def crash(self) -> None:
        """Stop the server as a crash would (immediate shutdown: no checkpoint, recovery at the next start)."""
        pg_ctl = [f"/usr/lib/postgresql/{self.env['OTEL_DB_PGMAJOR']}/bin/pg_ctl", "-D", str(self.data)]
        as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_owner, *pg_ctl, "-m", "immediate", "-w", "stop"], check=True, capture_output=True)


@pytest.fixture(scope="session")
def private_cluster(postgresql_noproc_fixture) -> Iterator[PrivateCluster]:
    """A private cluster like the project's, on a free port, its data in /tmp; pg_cron lives in its database otel.

    The cluster runs as the postgres OS user when the suite runs as root: /tmp is reachable to it.
    Each xdist worker that runs a test needing it starts its own: the tests stop and crash it.
    """
    with psycopg.connect(database_url("postgres")) as project:
        major = project.execute("select current_setting('server_version_num')::int / 10000").fetchone()[0]
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="otel_db-private-", dir="/tmp"))
    env = {
        **os.environ,
        "OTEL_DB_PGPORT": str(port),
        "OTEL_DB_PGDATA": str(data),
        "OTEL_DB_CRON_DATABASE": "otel",
        "OTEL_DB_PGMAJOR": str(major),
    }
    cluster = PrivateCluster(port, data, env)
    cluster.run("start")
    try:
        yield cluster
    finally:
        subprocess.run([ROOT / "scripts" / "pg-cluster.sh", "stop"], env=env, check=False, capture_output=True)
        shutil.rmtree(data, ignore_errors=True)
