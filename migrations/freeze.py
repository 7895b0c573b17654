"""`make freeze`: copy `sql/` into the frozen set of the newest revision.

A revision runs `migrations/sql/<revision>/*.sql`, never the live `sql/`.
The newest revision's set follows `sql/` until a newer revision exists;
older sets are frozen for good, and `migrations/sql/CHECKSUMS` (checked by
the test suite) keeps them so.
"""

import hashlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "sql"
FROZEN = ROOT / "migrations" / "sql"
CHECKSUMS = FROZEN / "CHECKSUMS"


def newest_revision() -> str:
    revisions = sorted(p.name.split("_", 1)[0] for p in (ROOT / "migrations" / "versions").glob("[0-9]*_*.py"))
    if not revisions:
        sys.exit("no revisions in migrations/versions")
    return revisions[-1]


def checksum_lines(revision: str) -> list[str]:
    """Recorded checksums of older revisions as they are, fresh ones for `revision`."""
    kept = []
    if CHECKSUMS.exists():
        kept = [
            line
            for line in CHECKSUMS.read_text(encoding="utf-8").splitlines()
            if line and not line.split("  ", 1)[1].startswith(f"{revision}/")
        ]
    fresh = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(FROZEN).as_posix()}"
        for path in sorted((FROZEN / revision).glob("*.sql"))
    ]
    return sorted(kept + fresh, key=lambda line: line.split("  ", 1)[1])


def main() -> None:
    revision = newest_revision()
    target = FROZEN / revision
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for path in sorted(SOURCE.glob("*.sql")):
        shutil.copy2(path, target / path.name)
    CHECKSUMS.write_text("\n".join(checksum_lines(revision)) + "\n", encoding="utf-8")
    print(f"froze {len(list(target.glob('*.sql')))} files into {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
