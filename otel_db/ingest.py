r"""Streaming ingestion into the staging tables with COPY.

Two inputs:

- OTLP/JSON lines (what the Collector's file exporter writes) go to
  `otel.otlp_staging (payload)` through
  `copy … with (format csv, quote e'\x01', delimiter e'\x02')`: text-format
  COPY would interpret backslashes in the JSON. Lines PostgreSQL cannot store
  (see `otel_db.lines`) are dead-lettered with `otel.dead_letter(…)` in the
  same transaction instead of failing the whole COPY.
- CSV with a header of staging column names goes to `otel.<signal>_staging`
  with `copy … (format csv, header true)`.

Both read the input in binary chunks and commit every `commit_bytes` or
`commit_seconds`, so memory stays bounded and a huge file is not one giant
transaction that `otel.flush()` cannot see until the end (and that holds back
vacuum). A live input (`tail -F x | otel-db ingest -`) is read ahead on a
thread (`otel_db.live`), so that a quiet pipe does not keep lines already
read from being committed; a transaction is opened only when data is there
to write, so a quiet pipe holds none open.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psycopg
from psycopg import sql

from otel_db.lines import (
    COPY_QUOTE,
    DEFAULT_MAX_LINE_BYTES,
    OVERSIZE_KEEP_BYTES,
    Oversize,
    bytea_escape,
    is_blank,
    read_chunks,
    split_lines,
    strip_bom,
    unstorable_reason,
)
from otel_db.live import Idle, read_ahead_if_live
from otel_db.queries import QUERIES

OTLP_COPY_SQL = (
    "copy otel.otlp_staging (payload) from stdin"
    r" with (format csv, quote e'\x01', delimiter e'\x02')"
)

SIGNALS = ("traces", "logs", "metrics")

# Commit this often (bytes of input, or seconds for a slow stream such as
# `tail -F x | otel-db ingest -`), so that a flush sees the rows early. The
# command passes its --commit-interval (default 1 s) as the seconds.
DEFAULT_COMMIT_BYTES = 64 * 1024 * 1024
DEFAULT_COMMIT_SECONDS = 10.0
# Size of each COPY write: large enough to amortise the per-call overhead,
# small enough to keep memory flat.
WRITE_BYTES = 4 * 1024 * 1024
# Unstorable lines wait in memory until the COPY is paused to dead-letter
# them; these bound that wait.
DEAD_LETTER_BATCH_BYTES = 16 * 1024 * 1024
DEAD_LETTER_BATCH_LINES = 1000
# A live input is read this far ahead of the COPY (see `otel_db.live.ReadAhead`: twice this at most).
READ_AHEAD_BYTES = 2 * WRITE_BYTES
# How often a quiet live input is checked against the commit deadline, per
# commit interval: a commit comes at most a tenth of the interval late.
IDLE_CHECKS_PER_INTERVAL = 10

Progress = Callable[[int], object]


class IngestError(ValueError):
    """An input the database cannot take as a whole (bad CSV header, rejected COPY)."""


@dataclass(slots=True)
class IngestReport:
    """What happened to one input.

    lines_read = lines_sent + lines_dead_lettered + blank_lines for OTLP
    input. For CSV, lines_read counts physical data lines and lines_sent the
    rows COPY accepted (a quoted field may span lines).
    """

    source: str = ""
    lines_read: int = 0
    lines_sent: int = 0
    lines_dead_lettered: int = 0
    blank_lines: int = 0
    bytes_read: int = 0


@dataclass(frozen=True, slots=True)
class _DeadLetter:
    line_no: int
    raw: bytes
    reason: str


# --------------------------------------------------------------------------- OTLP


def ingest_otlp_file(
    conn: psycopg.Connection,
    path: str | Path,
    *,
    source: str = "otel-db ingest",
    progress: Progress | None = None,
    commit_bytes: int = DEFAULT_COMMIT_BYTES,
    commit_seconds: float = DEFAULT_COMMIT_SECONDS,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    chunk_size: int = WRITE_BYTES,
) -> IngestReport:
    """Stream an OTLP/JSON lines file (`-` for stdin) into otel.otlp_staging.

    What was read is committed at least every `commit_seconds`, also from a
    pipe that delivers slowly; a line is sent only once its newline has
    arrived (or the input has ended). Raises OSError when the file cannot be
    read; lines the database cannot store are dead-lettered and counted,
    never raised.
    """
    report = IngestReport(source=str(path))
    with open_input(path) as stream:
        chunks = _counted(read_chunks(stream, chunk_size), report, progress)
        lines = split_lines(strip_bom(chunks), max_line_bytes)
        with read_ahead_if_live(
            stream, lines, size=_line_size, max_bytes=READ_AHEAD_BYTES, idle_seconds=_idle_seconds(commit_seconds)
        ) as live_lines:
            copy_otlp_lines(
                conn,
                live_lines,
                source=source,
                report=report,
                commit_bytes=commit_bytes,
                commit_seconds=commit_seconds,
            )
    return report


def _line_size(line: bytes | Oversize) -> int:
    return len(line.prefix) if isinstance(line, Oversize) else len(line)


def _idle_seconds(commit_seconds: float) -> float:
    return commit_seconds / IDLE_CHECKS_PER_INTERVAL


def copy_otlp_records(
    conn: psycopg.Connection,
    records: Iterable[bytes | str | Mapping[str, object]],
    *,
    source: str = "Client.copy_otlp",
    commit_bytes: int = DEFAULT_COMMIT_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> IngestReport:
    """COPY OTLP/JSON requests given one per item (a dict is JSON-encoded).

    Each item is one record: a trailing newline is dropped, an inner one is
    kept (the quoted CSV field carries it). Screening and dead-lettering are
    as for files.
    """
    report = IngestReport(source=source)
    lines = record_lines(records, report, max_line_bytes)
    return copy_otlp_lines(conn, lines, source=source, report=report, commit_bytes=commit_bytes)


def copy_otlp_lines(
    conn: psycopg.Connection,
    lines: Iterable[bytes | Oversize | Idle],
    *,
    source: str,
    report: IngestReport | None = None,
    commit_bytes: int = DEFAULT_COMMIT_BYTES,
    commit_seconds: float = DEFAULT_COMMIT_SECONDS,
) -> IngestReport:
    """The OTLP load loop: one COPY per transaction, paused only to dead-letter.

    A COPY occupies the connection, so unstorable lines are held back (a
    bounded batch) and written with `otel.dead_letter` between two COPY
    statements of the same transaction. Either everything up to a commit
    point lands (in staging or in the DLQ) or nothing of it does. On a
    connection that is already inside a transaction the batches are
    savepoints and committing is the caller's. What to write and when to
    commit is decided by `otlp_copy_steps`; this is only its I/O. Each
    transaction begins once its first step is there, so waiting for input
    (a quiet pipe) holds no transaction open.
    """
    report = report if report is not None else IngestReport(source=source)
    check_encoding(conn)
    steps = otlp_copy_steps(lines, report, commit_bytes=commit_bytes, commit_seconds=commit_seconds)
    step = next(steps)
    while True:
        with conn.transaction():
            while True:
                with conn.cursor() as cur:
                    with cur.copy(OTLP_COPY_SQL) as copy:
                        while isinstance(step, bytes):
                            copy.write(step)
                            step = next(steps)
                    end = step
                    if end.dead:
                        cur.executemany(DEAD_LETTER_SQL, dead_letter_rows("otlp", source, end.dead))
                if end.commit or end.done:
                    break
                step = next(steps)
        if end.done:
            return report
        step = next(steps)


@dataclass(frozen=True, slots=True)
class CopyEnd:
    """The end of one COPY: dead-letter `dead`, then commit if `commit`; `done` marks the last."""

    dead: list[_DeadLetter]
    commit: bool
    done: bool


def otlp_copy_steps(
    lines: Iterable[bytes | Oversize | Idle],
    report: IngestReport,
    *,
    commit_bytes: int = DEFAULT_COMMIT_BYTES,
    commit_seconds: float = DEFAULT_COMMIT_SECONDS,
) -> Iterator[bytes | CopyEnd]:
    """The decisions of the OTLP load loop, without I/O (shared by the sync and async drivers).

    Yields the framed data of the current COPY in pieces of about
    WRITE_BYTES, then a `CopyEnd` that closes it; the next piece opens a new
    COPY (in a new transaction after a commit). Counts into `report` as the
    lines are judged. The commit deadline starts with the first line of a
    transaction, so time spent waiting for input does not count. An `Idle`
    item (a live input went quiet) commits what is held once the deadline
    has passed.
    """
    it = iter(lines)
    done = False
    while not done:
        in_tx = 0
        deadline = math.inf
        while True:
            commit = False
            dead: list[_DeadLetter] = []
            out = _CopyFramer()
            dead_bytes = 0
            for line in it:
                if isinstance(line, Idle):
                    if time.monotonic() >= deadline:
                        commit = True
                        break
                    continue
                report.lines_read += 1
                letter = None
                if isinstance(line, Oversize):
                    letter = _oversize_letter(report.lines_read, line)
                    size = line.size
                elif is_blank(line):
                    report.blank_lines += 1
                    continue
                else:
                    size = len(line)
                    if reason := unstorable_reason(line):
                        letter = _DeadLetter(report.lines_read, line, reason)
                    else:
                        yield from out.add(line)
                        report.lines_sent += 1
                if not in_tx:
                    deadline = time.monotonic() + commit_seconds
                in_tx += size
                if letter is not None:
                    dead.append(letter)
                    dead_bytes += len(letter.raw)
                commit = in_tx >= commit_bytes or time.monotonic() >= deadline
                if commit or dead_bytes >= DEAD_LETTER_BATCH_BYTES or len(dead) >= DEAD_LETTER_BATCH_LINES:
                    break
            else:
                done = True
            yield from out.flush()
            report.lines_dead_lettered += len(dead)
            yield CopyEnd(dead, commit, done)
            if done or commit:
                break


class _CopyFramer:
    """Frames lines as quoted CSV fields and hands them out in WRITE_BYTES pieces."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.size = 0

    def add(self, line: bytes) -> Iterator[bytes]:
        if len(line) >= WRITE_BYTES:
            # A big line is written as is, in three pieces, so that it is
            # never copied into a framed buffer.
            yield from self.flush()
            yield COPY_QUOTE
            yield line
            yield COPY_QUOTE + b"\n"
            return
        self.lines.append(line)
        self.size += len(line) + 3
        if self.size >= WRITE_BYTES:
            yield from self.flush()

    def flush(self) -> Iterator[bytes]:
        if self.lines:
            data = b"\x01" + b"\x01\n\x01".join(self.lines) + b"\x01\n"
            self.lines = []
            self.size = 0
            yield data


def _oversize_letter(line_no: int, line: Oversize) -> _DeadLetter:
    return _DeadLetter(
        line_no,
        line.prefix,
        f"{line.size} bytes is longer than the {line.limit}-byte line limit; "
        f"raw_data keeps only the first {len(line.prefix)} bytes",
    )


DEAD_LETTER_SQL = "select otel.dead_letter(%s, %s, %s, %s, %s)"


def dead_letter_rows(telemetry_type: str, source: str, letters: list[_DeadLetter]) -> list[tuple[str, ...]]:
    """`DEAD_LETTER_SQL` parameters for held-back lines, bytes kept exact in bytea 'escape' format."""
    return [
        (telemetry_type, source, bytea_escape(d.raw), "bytea-escape", f"line {d.line_no}: {d.reason}") for d in letters
    ]


def record_lines(
    records: Iterable[bytes | str | Mapping[str, object]],
    report: IngestReport,
    max_line_bytes: int,
) -> Iterator[bytes | Oversize]:
    for item in records:
        if isinstance(item, Mapping):
            data = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
        elif isinstance(item, str):
            # Lone surrogates become invalid UTF-8 and are dead-lettered.
            data = item.encode("utf-8", "surrogatepass")
        elif isinstance(item, bytes | bytearray | memoryview):
            data = bytes(item)
        else:
            raise TypeError(f"copy_otlp takes bytes, str or dict items, got {type(item).__name__}")
        report.bytes_read += len(data)
        if data.endswith(b"\n"):
            data = data[:-2] if data.endswith(b"\r\n") else data[:-1]
        if len(data) > max_line_bytes:
            keep = min(OVERSIZE_KEEP_BYTES, max_line_bytes)
            yield Oversize(data[:keep], len(data), max_line_bytes)
        else:
            yield data


# --------------------------------------------------------------------------- CSV


def staging_columns(conn: psycopg.Connection, signal: str) -> list[str]:
    """The columns of otel.<signal>_staging, in table order."""
    if signal not in SIGNALS:
        raise IngestError(f"unknown signal {signal!r}: use one of {', '.join(SIGNALS)}")
    rows = conn.execute(QUERIES["staging_columns"], {"table": f"{signal}_staging"}).fetchall()
    if not rows:
        raise IngestError(f"table otel.{signal}_staging not found: is the schema migrated (alembic upgrade head)?")
    return [r[0] for r in rows]


def check_columns(names: list[str], allowed: list[str], table: str) -> None:
    """Refuse unknown or repeated column names, listing what is allowed."""
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise IngestError(
            f"unknown column(s) {', '.join(map(repr, unknown))} for {table}; allowed: {', '.join(allowed)}"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise IngestError(f"column(s) {', '.join(map(repr, repeated))} given more than once")
    if not names or names == [""]:
        raise IngestError(f"the header line is empty: it must name columns of {table}")


def ingest_csv_file(
    conn: psycopg.Connection,
    path: str | Path,
    signal: str,
    *,
    progress: Progress | None = None,
    commit_bytes: int = DEFAULT_COMMIT_BYTES,
    commit_seconds: float = DEFAULT_COMMIT_SECONDS,
    chunk_size: int = WRITE_BYTES,
) -> IngestReport:
    """Stream a CSV file whose header names staging columns into otel.<signal>_staging.

    The header is checked against information_schema first, so a typo gives
    the list of allowed names rather than a COPY error. The data goes to the
    server unparsed; when COPY rejects it, the IngestError names the line of
    the file (batches committed before it stay committed). As for OTLP, what
    was read is committed at least every `commit_seconds`, at a record
    boundary: a record whose end has not arrived waits for it.
    """
    check_encoding(conn)
    allowed = staging_columns(conn, signal)
    table = f"otel.{signal}_staging"
    report = IngestReport(source=str(path))
    with open_input(path) as stream:
        chunks = strip_bom(_counted(read_chunks(stream, chunk_size), report, progress))
        header, rest = _read_header(chunks, path)
        names = _parse_header(header, path)
        try:
            check_columns(names, allowed, table)
        except IngestError as exc:
            raise IngestError(f"{path}: {exc}") from None
        statement = sql.SQL("copy {} ({}) from stdin with (format csv, header true)").format(
            sql.Identifier("otel", f"{signal}_staging"),
            sql.SQL(", ").join(map(sql.Identifier, names)),
        )
        with read_ahead_if_live(
            stream, rest, size=len, max_bytes=READ_AHEAD_BYTES, idle_seconds=_idle_seconds(commit_seconds)
        ) as live_rest:
            data = _drop_trailing_blank_lines(live_rest, report)
            _copy_csv(conn, statement, header, data, report, commit_bytes, commit_seconds, path)
    return report


def _read_header(chunks: Iterable[bytes], path: str | Path) -> tuple[bytes, Iterator[bytes]]:
    """Split off the header line (with its newline); the rest stays a stream."""
    it = iter(chunks)
    head = b""
    for chunk in it:
        head += chunk
        if b"\n" in head:
            break
        if len(head) > 1024 * 1024:
            raise IngestError(f"{path}: no newline in the first MB: not a CSV header")
    if not head.strip():
        raise IngestError(f"{path}: empty file: expected a header line of column names")
    pos = head.find(b"\n")
    if pos < 0:
        header, remainder = head + b"\n", b""
    else:
        header, remainder = head[: pos + 1], head[pos + 1 :]

    def rest() -> Iterator[bytes]:
        if remainder:
            yield remainder
        yield from it

    return header, rest()


def _drop_trailing_blank_lines(chunks: Iterable[bytes | Idle], report: IngestReport) -> Iterator[bytes | Idle]:
    """Drop empty lines at the end of a CSV stream, keeping one line terminator.

    Editors and `echo >>` leave them, and COPY reads an empty line as a row
    with one NULL column and rejects it. Inside an open quoted field the
    newlines are data and are kept. When a live input goes quiet (`Idle`),
    the held terminator goes out, so that the last record can be committed;
    blank lines after it stay held.
    """
    hold = b""
    odd_quotes = False
    terminated = False  # the terminator of the last record went out on Idle
    for chunk in chunks:
        if isinstance(chunk, Idle):
            if hold and not odd_quotes and not terminated:
                end = 2 if hold.startswith(b"\r\n") else 1
                yield hold[:end]
                hold = hold[end:]
                terminated = True
            yield chunk
            continue
        data = hold + chunk
        body = data.rstrip(b"\r\n")
        hold = data[len(body) :]
        if body:
            odd_quotes ^= body.count(b'"') % 2 == 1
            terminated = False
            yield body
    if not hold:
        return
    if odd_quotes:
        yield hold
        return
    blank = len(hold.splitlines()) if terminated else max(len(hold.splitlines()) - 1, 0)
    report.blank_lines += blank
    report.lines_read += blank
    if not terminated:
        yield b"\r\n" if hold.startswith(b"\r\n") else hold[:1]


def _parse_header(header: bytes, path: str | Path) -> list[str]:
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path}: header is not valid UTF-8 at byte {exc.start}") from None
    row = next(csv.reader([text.rstrip("\r\n")]), [])
    return [name.strip() for name in row]


def _copy_csv(
    conn: psycopg.Connection,
    statement: sql.Composed,
    header: bytes,
    chunks: Iterable[bytes | Idle],
    report: IngestReport,
    commit_bytes: int,
    commit_seconds: float,
    path: str | Path,
) -> None:
    """COPY the data, committing at a record boundary every commit_bytes or commit_seconds.

    A newline ends a record only outside quotes; since `""` inside a quoted
    field is two quote characters, quote parity tells which newlines do (as
    PostgreSQL's own CSV line reader decides). Each batch is its own COPY
    with the header sent again, begun when its first data is there, so that
    a quiet live input holds no transaction open; on `Idle` the batch is
    committed when its deadline has passed and the data sent ends a record.
    """
    it = iter(chunks)
    odd_quotes = False
    open_line = False  # the last byte sent was not a newline
    lines_before = 1  # file lines before the current batch's data (the header)
    pending = b""
    done = False
    while not done:
        chunk: bytes | Idle = pending or _next_data(it)
        pending = b""
        if not chunk:
            break
        deadline = time.monotonic() + commit_seconds
        batch_lines = 0
        sent = 0
        try:
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(statement) as copy:
                    copy.write(header)
                    while True:
                        if isinstance(chunk, Idle):
                            if not odd_quotes and not open_line and time.monotonic() >= deadline:
                                break
                        else:
                            cut = None
                            if sent + len(chunk) >= commit_bytes or time.monotonic() >= deadline:
                                cut = _record_boundary(chunk, odd_quotes)
                            if cut is not None:
                                chunk, pending = chunk[: cut + 1], chunk[cut + 1 :]
                            copy.write(chunk)
                            sent += len(chunk)
                            batch_lines += chunk.count(b"\n")
                            odd_quotes ^= chunk.count(b'"') % 2 == 1
                            open_line = not chunk.endswith(b"\n")
                            if cut is not None:
                                break
                        chunk = next(it, b"")
                        if not chunk:
                            done = True
                            break
                report.lines_sent += max(cur.rowcount, 0)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            raise IngestError(_copy_error_message(exc, path, lines_before, report)) from None
        lines_before += batch_lines
        report.lines_read += batch_lines
    if open_line:  # a last line without a final newline is a line too
        report.lines_read += 1


def _next_data(chunks: Iterator[bytes | Idle]) -> bytes:
    """The next chunk of data, however long the input stays quiet; b"" at its end."""
    for chunk in chunks:
        if not isinstance(chunk, Idle):
            return chunk
    return b""


def _record_boundary(chunk: bytes, odd_quotes: bool) -> int | None:
    """Offset of the first newline in chunk that lies outside quotes, if any."""
    pos = chunk.find(b"\n")
    start = 0
    while pos >= 0:
        odd_quotes ^= chunk.count(b'"', start, pos) % 2 == 1
        if not odd_quotes:
            return pos
        start = pos
        pos = chunk.find(b"\n", pos + 1)
    return None


_COPY_LINE = re.compile(r"line (\d+)")


def _copy_error_message(exc: psycopg.Error, path: str | Path, lines_before: int, report: IngestReport) -> str:
    diag = exc.diag
    message = diag.message_primary or str(exc).strip()
    where = ""
    match = _COPY_LINE.search(diag.context or "")
    if match:
        # Line 1 of every batch is the header (the file's, or sent again).
        where = f" at line {lines_before + int(match.group(1)) - 1}"
    committed = f"; {report.lines_sent} rows before it were committed" if report.lines_sent else ""
    return f"{path}: COPY rejected the data{where}: {message}{committed}"


# --------------------------------------------------------------------------- helpers


@contextmanager
def open_input(path: str | Path) -> Iterator[IO[bytes]]:
    """Open a file in binary (or stdin for `-`); OSError when unreadable."""
    if str(path) == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as stream:
        yield stream


def _counted(chunks: Iterable[bytes], report: IngestReport, progress: Progress | None) -> Iterator[bytes]:
    for chunk in chunks:
        report.bytes_read += len(chunk)
        if progress is not None:
            progress(len(chunk))
        yield chunk


def check_encoding(conn: psycopg.Connection | psycopg.AsyncConnection) -> None:
    """Screening assumes UTF-8 on both ends; refuse anything else clearly."""
    server = conn.info.parameter_status("server_encoding")
    client = conn.info.parameter_status("client_encoding")
    if server != "UTF8" or client != "UTF8":
        raise IngestError(
            f"otel_db needs a UTF8 database and client_encoding UTF8; got server {server}, client {client}"
        )
