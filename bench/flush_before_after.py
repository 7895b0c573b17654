"""The flush before and after a change, alternately in one database: `python -m bench flush_before_after`.

"Before" is the flush as a git revision had it (OTEL_DB_BENCH_BEFORE, by
default the last commit before the checks of the nothing-lost work: retention
and schedule arguments, the flush lock, the staging modes, the accepted time
window, OTLP validation); "after" is sql/ as it is now. Both sides are the
routines of sql/2*.sql and sql/3*.sql (parsing, decoding, typing, moving),
created over the same tables in turn, so each round flushes the same spans
through one side and then the other, in one sitting on one server. Tables,
indexes and data are shared; only the code differs.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess

import psycopg

from bench.common import ROOT, drop_database, fresh_database
from bench.flush_throughput import copy_and_flush, copy_otlp, copy_typed

DEFAULT_BEFORE = "80d71ba"
FLUSH_FILES = ("2", "3")  # sql/2xx parsing and decoding helpers, sql/3xx the flush


def routines_at(revision: str) -> list[str]:
    """The text of each flush file of sql/ at a git revision, in load order."""
    names = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "--name-only", revision, "sql/"], check=True, capture_output=True, text=True
    ).stdout.split()
    return [
        subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{revision}:{name}"], check=True, capture_output=True, text=True
        ).stdout
        for name in sorted(names)
        if name.removeprefix("sql/").startswith(FLUSH_FILES) and name.endswith(".sql")
    ]


def routines_now() -> list[str]:
    return [
        path.read_text(encoding="utf-8")
        for path in sorted((ROOT / "sql").glob("*.sql"))
        if path.name.startswith(FLUSH_FILES)
    ]


def defined_routines(texts: list[str]) -> set[str]:
    """The names of the otel functions and procedures the texts create."""
    return {
        name
        for text in texts
        for name in re.findall(r"^create or replace (?:function|procedure) otel\.(\w+)\(", text, re.MULTILINE)
    }


def drop_routines(conn: psycopg.Connection, names: set[str]) -> None:
    """Every overload of the named otel routines: a side whose routine takes other arguments than the other
    side's would otherwise leave both, and calls that fit both would be ambiguous."""
    for (routine,) in conn.execute(
        "select p.oid::regprocedure::text from pg_proc as p"
        " where p.pronamespace = 'otel'::regnamespace and p.prokind in ('f', 'p') and p.proname = any (%s)",
        (sorted(names),),
    ).fetchall():
        conn.execute(f"drop routine {routine}")


def run(spans: int = 300_000, rounds: int = 4) -> dict:
    before_revision = os.environ.get("OTEL_DB_BENCH_BEFORE", DEFAULT_BEFORE)
    sides = {"before": routines_at(before_revision), "after": routines_now()}
    names = defined_routines(sides["before"] + sides["after"])
    measured: dict[str, dict[str, list[int]]] = {side: {"typed": [], "otlp": []} for side in sides}
    url = fresh_database("otel_bench")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for round_number in range(rounds):
                # Alternate which side goes first, so that neither always follows the other.
                for side in ("before", "after") if round_number % 2 == 0 else ("after", "before"):
                    drop_routines(conn, names)
                    for text in sides[side]:
                        conn.execute(text)
                    for path, copy in (("typed", copy_typed), ("otlp", copy_otlp)):
                        _, flush_seconds = copy_and_flush(conn, copy, spans)
                        measured[side][path].append(round(spans / flush_seconds))
    finally:
        drop_database("otel_bench")
    medians = {
        side: {path: statistics.median(rates) for path, rates in paths.items()} for side, paths in measured.items()
    }
    return {
        "spans": spans,
        "rounds": rounds,
        "before": before_revision,
        "flush_spans_per_s": measured,
        "median_flush_spans_per_s": medians,
        "after_vs_before": {
            path: round(medians["after"][path] / medians["before"][path], 3) for path in ("typed", "otlp")
        },
        "goals": {"after_vs_before": "no regression beyond run-to-run noise"},
    }
