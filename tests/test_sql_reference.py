"""docs/sql-reference.md is what scripts/sql_reference.py makes of a fresh install's catalog."""

import importlib.util

import psycopg

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("sql_reference", ROOT / "scripts" / "sql_reference.py")
assert spec is not None and spec.loader is not None
sql_reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sql_reference)


def test_the_sql_reference_page_is_current(conn: psycopg.Connection):
    committed = sql_reference.PAGE.read_text(encoding="utf-8")
    assert committed == sql_reference.render(conn), "docs/sql-reference.md is stale: run `make docs` and commit it"


def test_every_routine_and_relation_readers_and_writers_use_is_described(conn: psycopg.Connection):
    page = sql_reference.render(conn)
    assert "(no description)" not in page
    for name in ("find_traces", "similar_traces", "root_cause", "metric_series", "dead_letter_reasons", "flush"):
        assert f"### `otel.{name}`" in page
