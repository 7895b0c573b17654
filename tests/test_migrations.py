"""Migrations: up/down/up, offline SQL, frozen copies and drift from sql/."""

import hashlib
import subprocess
import sys

import psycopg
from alembic import command

from tests.conftest import ROOT, alembic_config
from tests.helpers import scalar

FROZEN = ROOT / "migrations" / "sql"


def schema_dump(url: str) -> str:
    """pg_dump --schema-only of the otel schema, without its random \\restrict keys."""
    dump = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", "-n", "otel", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return "\n".join(line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def test_upgrade_downgrade_upgrade_gives_the_same_schema(empty_database):
    config = alembic_config(empty_database)
    command.upgrade(config, "head")
    first = schema_dump(empty_database)
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    assert schema_dump(empty_database) == first
    assert "create unlogged table otel.traces_staging" in first.lower()


def test_downgrade_removes_every_otel_object_and_keeps_the_roles(empty_database):
    config = alembic_config(empty_database)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    with psycopg.connect(empty_database) as conn:
        assert scalar(conn, "select count(*) from pg_namespace where nspname = 'otel'") == 0
        assert scalar(conn, "select count(*) from pg_proc where proname like 'otel%'") == 0
        assert scalar(conn, "select count(*) from otel_db_alembic_version") == 0
        roles = {r for (r,) in conn.execute("select rolname from pg_roles where rolname like 'otel_%'")}
        assert {"otel_writer", "otel_reader", "otel_admin"} <= roles


def test_offline_sql_applied_with_psql_equals_online_mode(empty_database, dsn):
    script = subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-x",
            f"url={empty_database}",
            "upgrade",
            "head",
            "--sql",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", empty_database],
        input=script,
        check=True,
        capture_output=True,
        text=True,
    )
    assert schema_dump(empty_database) == schema_dump(dsn)


def test_frozen_sql_matches_its_checksums():
    recorded = dict(reversed(line.split("  ", 1)) for line in (FROZEN / "CHECKSUMS").read_text().splitlines() if line)
    actual = {
        path.relative_to(FROZEN).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(FROZEN.glob("*/*.sql"))
    }
    assert actual == recorded, "a frozen migration file changed: frozen files must never change"


CATALOG = """
select p.oid::regprocedure::text,
       case when p.prokind = 'a' then (select a::text from pg_aggregate as a where a.aggfnoid = p.oid)
            else pg_get_functiondef(p.oid) end,
       p.proacl::text,
       obj_description(p.oid, 'pg_proc')
  from pg_proc as p
 where p.pronamespace = 'otel'::regnamespace
 order by 1
"""


def test_catalog_after_upgrade_equals_the_sql_sources(conn):
    migrated = conn.execute(CATALOG).fetchall()
    for path in sorted((ROOT / "sql").glob("*.sql")):
        conn.execute(path.read_text(encoding="utf-8"))
    assert conn.execute(CATALOG).fetchall() == migrated, "sql/ differs from the migrations: run `make freeze`"
