"""Test fixtures: a real PostgreSQL (the project cluster on 127.0.0.1:54329).

`alembic upgrade head` runs once per session into a template database;
every test gets a fresh clone of it (pytest-postgresql's noproc factory).
"""

import argparse
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from pytest_postgresql import factories

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
HOST = os.environ.get("OTEL_DB_TEST_HOST", "127.0.0.1")
PORT = int(os.environ.get("OTEL_DB_TEST_PORT", "54329"))
USER = "postgres"


def database_url(dbname: str) -> str:
    return f"postgresql://{USER}@{HOST}:{PORT}/{dbname}"


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
            "select datname from pg_database where datname in ('otel_test', 'otel_test_tmpl', 'otel_test_empty')"
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
def empty_database(postgresql_noproc_fixture) -> Iterator[str]:
    """The URL of a new, empty database (for migration tests)."""
    name = "otel_test_empty"
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")
        admin.execute(f"create database {name}")
    yield database_url(name)
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")
