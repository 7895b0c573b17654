"""Writes docs/sql-reference.md from the catalog of a fresh install: the `comment on` texts are its source.

    .venv/bin/python scripts/sql_reference.py [URL]     (default: OTEL_STORAGE_CONNECTION_STRING)

It makes a scratch database beside URL's (otel_sql_reference), runs `alembic
upgrade head` there, renders the page and drops the database, so that what an
existing database carries beyond the migrations never shows. `make docs` runs
it; tests/test_sql_reference.py fails when the committed page differs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "sql-reference.md"
SCRATCH = "otel_sql_reference"
ROLES = ("otel_writer", "otel_reader", "otel_admin")

HEADER = """\
# SQL reference

Every table, view, function and procedure of the schema `otel`, as a fresh
`alembic upgrade head` installs them. Made from the database catalog by
`scripts/sql_reference.py` (`make docs`): the descriptions are the objects'
`comment on` texts, so `\\d+` and `\\df+` in psql say the same. Do not edit
this page; change the comment in `sql/` (and a new revision) instead.

Bad arguments raise SQLSTATE 22023 (`invalid_parameter_value`). Roles:
`otel_writer` stages, `otel_reader` reads, `otel_admin` runs the pipeline
(see [operations](operations.md)); nothing is granted to PUBLIC.
"""

RELATIONS_SQL = """
select c.oid, c.relname, c.relkind, obj_description(c.oid, 'pg_class') as comment
  from pg_class as c
 where c.relnamespace = 'otel'::regnamespace and c.relkind in ('r', 'p', 'v', 'm') and not c.relispartition
 order by c.relname
"""

COLUMNS_SQL = """
select a.attname, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid) as default_value, a.attgenerated,
       col_description(a.attrelid, a.attnum) as comment
  from pg_attribute as a
  left join pg_attrdef as d on d.adrelid = a.attrelid and d.adnum = a.attnum
 where a.attrelid = %s and a.attnum > 0 and not a.attisdropped
 order by a.attnum
"""

INDEXES_SQL = """
select i.relname, pg_get_indexdef(i.oid) as definition
  from pg_index as x
  join pg_class as i on i.oid = x.indexrelid
 where x.indrelid = %s
 order by i.relname
"""

ROUTINES_SQL = """
select p.oid, p.proname, p.prokind, pg_get_function_arguments(p.oid) as arguments,
       pg_get_function_identity_arguments(p.oid) as identity, pg_get_function_result(p.oid) as result,
       p.prosecdef, p.provolatile, obj_description(p.oid, 'pg_proc') as comment
  from pg_proc as p
 where p.pronamespace = 'otel'::regnamespace
 order by p.proname, pg_get_function_identity_arguments(p.oid)
"""

KINDS = {"r": "table", "p": "table, partitioned by day", "v": "view", "m": "materialized view"}
VOLATILITY = {"i": "immutable", "s": "stable", "v": "volatile"}


def one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def granted(conn: psycopg.Connection, check: str, oid: int, privilege: str) -> list[str]:
    return [role for role in ROLES if conn.execute(f"select {check}(%s, %s, %s)", (role, oid, privilege)).fetchone()[0]]


def relation(conn: psycopg.Connection, oid: int, name: str, kind: str, comment: str | None) -> list[str]:
    lines = [f"### `otel.{name}`", "", f"*{KINDS[kind]}.* {one_line(comment) or '(no description)'}", ""]
    lines += ["| column | type | null | default |", "|---|---|---|---|"]
    for column, type_, not_null, default, generated, column_comment in conn.execute(COLUMNS_SQL, (oid,)):
        shown = f"generated: `{default}`" if generated else (f"`{default}`" if default else "")
        note = f" ({one_line(column_comment)})" if column_comment else ""
        lines.append(f"| `{column}`{note} | `{type_}` | {'' if not_null else 'null'} | {shown} |")
    indexes = conn.execute(INDEXES_SQL, (oid,)).fetchall()
    if indexes:
        lines += ["", "Indexes:", ""]
        lines += [f"- `{index}`: `{definition.split(' USING ', 1)[-1]}`" for index, definition in indexes]
    access = {p: granted(conn, "has_table_privilege", oid, p) for p in ("select", "insert")}
    readers = ", ".join(access["select"]) or "none of the three roles"
    lines += ["", f"Select: {readers}. Insert: {', '.join(access['insert']) or 'none of the three roles'}.", ""]
    return lines


def routine(conn: psycopg.Connection, row: tuple) -> list[str]:
    oid, name, kind, arguments, _, result, definer, volatility, comment = row
    call = f"call otel.{name}({arguments})" if kind == "p" else f"otel.{name}({arguments})"
    callers = ", ".join(granted(conn, "has_function_privilege", oid, "execute")) or "none of the three roles"
    traits = [VOLATILITY[volatility]] + (["security definer"] if definer else [])
    lines = [f"### `otel.{name}`", "", "```sql", call + ("" if kind == "p" else f"\n  returns {result}"), "```", ""]
    lines += [one_line(comment) or "(no description)", "", f"*{', '.join(traits)}; may be called by {callers}.*", ""]
    return lines


def is_internal(comment: str | None) -> bool:
    text = one_line(comment).lower()
    return "internal to" in text or text.startswith("event trigger")


def render(conn: psycopg.Connection) -> str:
    lines = [HEADER, "## Tables and views", ""]
    for oid, name, kind, comment in conn.execute(RELATIONS_SQL).fetchall():
        lines += relation(conn, oid, name, kind, comment)
    routines = conn.execute(ROUTINES_SQL).fetchall()
    lines += ["## Functions and procedures", ""]
    for row in routines:
        if not is_internal(row[8]):
            lines += routine(conn, row)
    lines += [
        "## Internal routines",
        "",
        "Used by the functions above and by the flush; not an interface.",
        "",
        "| routine | what it does |",
        "|---|---|",
    ]
    lines += [f"| `otel.{row[1]}({row[4]})` | {one_line(row[8])} |" for row in routines if is_internal(row[8])]
    return "\n".join(lines).rstrip() + "\n"


def beside(url: str, dbname: str) -> str:
    """The connection URL of another database on the same server."""
    return urlsplit(url)._replace(path=f"/{dbname}").geturl()


def fresh_install(url: str) -> str:
    """A new database beside `url`'s, migrated to head; its URL."""
    with psycopg.connect(beside(url, "postgres"), autocommit=True) as admin:
        admin.execute(f"drop database if exists {SCRATCH} with (force)")
        admin.execute(f"create database {SCRATCH}")
    config = Config(str(ROOT / "alembic.ini"))
    config.cmd_opts = argparse.Namespace(x=[f"url={beside(url, SCRATCH)}"])
    command.upgrade(config, "head")
    return beside(url, SCRATCH)


def main(argv: list[str]) -> int:
    url = argv[0] if argv else os.environ.get("OTEL_STORAGE_CONNECTION_STRING", "")
    if not url.startswith(("postgresql://", "postgres://")):
        print("usage: sql_reference.py postgresql://… (or set OTEL_STORAGE_CONNECTION_STRING)", file=sys.stderr)
        return 2
    scratch = fresh_install(url)
    try:
        with psycopg.connect(scratch) as conn:
            PAGE.write_text(render(conn), encoding="utf-8")
    finally:
        with psycopg.connect(beside(url, "postgres"), autocommit=True) as admin:
            admin.execute(f"drop database {SCRATCH} with (force)")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
