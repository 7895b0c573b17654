"""Test fixtures: a real PostgreSQL, the project cluster on 127.0.0.1 at OTEL_DB_PGPORT (54329).

`alembic upgrade head` runs once per session into a template database;
every test gets a fresh clone of it (pytest-postgresql's noproc factory).
The suite uses its own databases (otel_test*) and never connects to the
user's `otel` database; the pg_cron tests run on a private cluster of their
own (tests/test_cron.py).
"""

import argparse
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from pytest_postgresql import factories

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


def migrate(host: str, port: int, user: str, dbname: str, **_: object) -> None:
    """pytest-postgresql loader: the template database gets the full schema."""
    command.upgrade(alembic_config(database_url(dbname)), "head")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Drop what an interrupted run may have left, so the template can be made again."""
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        for (name,) in admin.execute(
            "select datname from pg_database"
            " where datname in ('otel_test', 'otel_test_tmpl') or datname like 'otel\\_test\\_empty\\_%'"
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
    """Makes new, empty databases (otel_test_empty_1, _2, ...) and drops them afterwards."""
    made: list[str] = []

    def make() -> str:
        name = f"otel_test_empty_{len(made) + 1}"
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
