"""How a revision runs SQL, and how a fresh database is built from `sql/`.

`sql/` is the current schema. A revision carries only what it changed (see
migrations/README.md), so there are two ways to reach a revision:

- from the revision below it, by its `upgrade()`;
- from an empty database, by `build_revision()`: every file of `sql/` in
  order (the head, each object created once), then the `downgrade()` of
  each revision above the one asked for, newest first.

env.py takes the second way whenever an upgrade starts from an empty
database, so `alembic upgrade head` on a new database runs `sql/` and
nothing else, online and with `--sql` alike.

A revision that changes a routine again need not copy its previous text:
its downgrade can restore it from the released revision that holds it
(`released_routine()`); released revisions never change.
"""

import re
from pathlib import Path

from alembic import op
from sqlalchemy import text

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"

# `:word` is a bind parameter to SQLAlchemy; casts (`::`) are not.
_BARE_COLON = re.compile(r"(?<![:\w\\]):(?=\w)")


def sqlalchemy_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def execute_sql(sql: str) -> None:
    """Run SQL as written (online, or into the `--sql` script)."""
    op.execute(text(_BARE_COLON.sub(r"\\:", sql)))


def schema_files() -> list[Path]:
    """The files of `sql/`, in load order."""
    return sorted(SQL_DIR.glob("*.sql"))


def build_revision(revision: str) -> None:
    """Build `revision` in an empty database: `sql/`, then step down to it."""
    for path in schema_files():
        execute_sql(path.read_text(encoding="utf-8"))
    scripts = op.get_context().script
    assert scripts is not None  # Alembic's commands always give the context their script directory
    for newer in scripts.walk_revisions(base=revision, head="heads"):
        if newer.revision == revision:
            break
        newer.module.downgrade()


def released_routine(revision: str, routine: str, part: str = "UPGRADE") -> str:
    """The definition of `routine` (say "otel.flush_process") in a released revision's UPGRADE or DOWNGRADE.

    Its `create or replace` statement and the `comment on` after it, for a
    later revision's downgrade to restore. An overloaded routine is named
    with its argument types as its comment gives them, say
    "otel.similar_traces(text, integer, double precision, text, timestamptz)"
    (types with parentheses of their own, numeric(10,2), are not supported).
    Released revisions never change (migrations/released.sha256), so the
    text is the one that revision left.
    """
    return _released(revision, routine, part, r"^create or replace (function|procedure) {name}\(.*?^comment on \1")


def released_comment(revision: str, routine: str, part: str = "UPGRADE") -> str:
    """The `comment on` statement for `routine` in a released revision that changed only its comment."""
    return _released(revision, routine, part, r"^comment on (function|procedure)")


def _released(revision: str, routine: str, part: str, start: str) -> str:
    """The first statement of a released revision's `part` from `start` to `routine`'s comment."""
    scripts = op.get_context().script
    assert scripts is not None  # Alembic's commands always give the context their script directory
    module = scripts.get_revision(revision).module
    name, _, arguments = routine.partition("(")
    name = re.escape(name)
    for definition in re.finditer(
        start.format(name=name) + rf" {name}\((?P<arguments>[^)]*)\).*?';$",
        getattr(module, part),
        re.MULTILINE | re.DOTALL,
    ):
        if not arguments or definition["arguments"] == arguments.removesuffix(")"):
            return definition.group(0)
    raise LookupError(f"revision {revision} defines no {routine} in its {part}")
