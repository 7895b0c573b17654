"""Run frozen SQL files from a migration, online or offline.

A revision never reads the live `sql/` directory: it runs its own frozen
copy in `migrations/sql/<revision>/`, so that an old revision keeps its
meaning when `sql/` moves on. `make freeze` writes those copies and the
checksum list that a test holds them to.
"""

import re
from pathlib import Path

from alembic import op
from sqlalchemy import text

FROZEN_ROOT = Path(__file__).resolve().parent / "sql"

# `:word` is a bind parameter to SQLAlchemy; casts (`::`) are not.
_BARE_COLON = re.compile(r"(?<![:\w\\]):(?=\w)")


def sqlalchemy_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def execute_sql(sql: str) -> None:
    op.execute(text(_BARE_COLON.sub(r"\\:", sql)))


def frozen_files(revision: str) -> list[Path]:
    folder = FROZEN_ROOT / revision
    files = sorted(folder.glob("*.sql"))
    if not files:
        raise FileNotFoundError(f"no frozen SQL in {folder}: run `make freeze`")
    return files


def run_frozen_sql(revision: str) -> None:
    """Run every frozen file of `revision`, in file-name order."""
    for path in frozen_files(revision):
        execute_sql(path.read_text(encoding="utf-8"))
