"""Bytes-level handling of OTLP/JSON lines: splitting, screening, bytea escape.

Nothing here touches the database, so every rule about what a real file can
hold is testable on its own. The rules follow from how the lines are loaded:
`COPY … (format csv, quote e'\\x01', delimiter e'\\x02')` into a `text`
column of a UTF-8 database.

- A line ends at `\\n`; one trailing `\\r` is part of the terminator (CRLF
  files), a UTF-8 byte-order mark at the start of the stream is not data.
- PostgreSQL text cannot hold NUL or invalid UTF-8, and such a byte fails the
  whole COPY at the server. Bytes 0x01 and 0x02 are the CSV quote and
  delimiter of that COPY: inside data they would break the framing. Lines
  with any of these are "unstorable": they are dead-lettered, not sent.
- Everything else is sent byte-exact, each line wrapped in the 0x01 quote.
  Quoting is what makes a line that is just `\\.` data rather than the
  end-of-copy marker, and a stray `\\r` inside a line data rather than a
  line break (unquoted, CSV COPY rejects it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

UTF8_BOM = b"\xef\xbb\xbf"

# The COPY framing bytes (see the module docstring).
COPY_QUOTE = b"\x01"
COPY_DELIMITER = b"\x02"

# A line longer than this is not buffered: PostgreSQL's jsonb cannot hold a
# value over 256 MB anyway, and buffering one unbounded line is how a 1 GB
# file without newlines would exhaust memory. OTLP exporters send requests
# of a few MB at most.
DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024

# How much of an oversize line is kept for the dead-letter queue.
OVERSIZE_KEEP_BYTES = 64 * 1024

_FORBIDDEN = (
    (0x00, "a NUL byte"),
    (0x01, "byte 0x01 (the COPY quote character)"),
    (0x02, "byte 0x02 (the COPY delimiter)"),
)

# bytea 'escape' output format: printable ASCII as is, backslash doubled,
# every other byte as a backslash and three octal digits.
_BYTEA_ESCAPES = {b: f"\\{b:03o}" for b in range(256) if not 0x20 <= b <= 0x7E}
_BYTEA_ESCAPES[0x5C] = "\\\\"


@dataclass(frozen=True, slots=True)
class Oversize:
    """A line longer than the limit: only its start and its length survive."""

    prefix: bytes
    size: int
    limit: int


def bytea_escape(data: bytes) -> str:
    """Encode bytes in PostgreSQL's bytea 'escape' format.

    The result is pure ASCII, so it can be stored as `text` even when `data`
    holds NUL or invalid UTF-8, and `decode(result, 'escape')` gives `data`
    back exactly.
    """
    return data.decode("latin-1").translate(_BYTEA_ESCAPES)


def unstorable_reason(line: bytes) -> str | None:
    """Why `line` cannot go through the OTLP COPY, or None when it can.

    Names the earliest offending byte by its offset in the line, so that a
    person can find it with `cut -b` or a hex editor.
    """
    problems: list[tuple[int, str]] = []
    for byte, label in _FORBIDDEN:
        pos = line.find(byte)
        if pos >= 0:
            problems.append((pos, f"contains {label} at offset {pos}"))
    if not line.isascii():
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append((exc.start, f"invalid UTF-8 at byte offset {exc.start}"))
    return min(problems)[1] if problems else None


def is_blank(line: bytes) -> bool:
    """Empty or only ASCII whitespace: skipped rather than sent or dead-lettered."""
    return not line or line.isspace()


def strip_bom(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Drop a UTF-8 BOM at the start of the stream, even when split across chunks."""
    it = iter(chunks)
    head = b""
    for chunk in it:
        head += chunk
        if len(head) >= len(UTF8_BOM):
            break
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM) :]
    if head:
        yield head
    yield from it


class _LineBuffer:
    """The unfinished line between chunks, bounded by the line limit."""

    def __init__(self, limit: int, keep: int) -> None:
        self.limit = limit
        self.keep = keep
        self.buf = bytearray()
        self.size = 0

    def add(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size <= self.limit:
            self.buf += piece
        elif len(self.buf) > self.keep:
            del self.buf[self.keep :]
        else:
            self.buf += piece[: self.keep - len(self.buf)]

    def take(self) -> bytes | Oversize:
        if self.size > self.limit:
            line: bytes | Oversize = Oversize(bytes(self.buf), self.size, self.limit)
        else:
            if self.buf.endswith(b"\r"):
                del self.buf[-1]
            line = bytes(self.buf)
        self.buf = bytearray()
        self.size = 0
        return line


def split_lines(
    chunks: Iterable[bytes],
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    keep_bytes: int = OVERSIZE_KEEP_BYTES,
) -> Iterator[bytes | Oversize]:
    """Yield the lines of a byte stream, without their `\\n` or `\\r\\n`.

    Memory stays bounded by the chunk size plus `max_line_bytes`: a longer
    line is yielded as `Oversize` instead of being buffered. A last line
    without a final newline is still yielded. The BOM is not handled here
    (see `strip_bom`).
    """
    keep_bytes = min(keep_bytes, max_line_bytes)
    pending = _LineBuffer(max_line_bytes, keep_bytes)
    for chunk in chunks:
        parts = chunk.split(b"\n")
        if len(parts) == 1:
            pending.add(chunk)
            continue
        pending.add(parts[0])
        yield pending.take()
        for part in parts[1:-1]:
            if len(part) > max_line_bytes:
                yield Oversize(part[:keep_bytes], len(part), max_line_bytes)
            else:
                yield part[:-1] if part.endswith(b"\r") else part
        pending.add(parts[-1])
    if pending.size:
        yield pending.take()


def read_chunks(stream: IO[bytes], chunk_size: int = 4 * 1024 * 1024) -> Iterator[bytes]:
    """Read a file in chunks, never the whole file at once; from a pipe, each chunk as soon as it arrives.

    `os.read` on the descriptor gives what one read gets (a full chunk from a
    regular file, what was written so far to a pipe), where `stream.read`
    would wait for a full chunk. It also takes no lock of the file object, so
    a thread blocked in it (see `otel_db.live`) does not abort interpreter
    shutdown; and such a thread, left reading after its file was closed,
    must not read the descriptor number again once another file has it.
    """
    fd = stream.fileno()
    while not stream.closed and (chunk := os.read(fd, chunk_size)):
        yield chunk
