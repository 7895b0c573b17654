r"""Streaming ingestion: what a real OTLP/JSON lines or CSV file can hold.

The screening rules are tested without a database; everything about what
lands where runs against the real schema (the `dsn` fixture): byte-exact
payloads in otel.otlp_staging, recoverable bytes in otel.telemetry_dlq.
"""

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from otel_db.client import connect
from otel_db.ingest import (
    IngestError,
    copy_otlp_records,
    ingest_csv_file,
    ingest_otlp_file,
)
from otel_db.lines import (
    Oversize,
    bytea_escape,
    split_lines,
    strip_bom,
    unstorable_reason,
)
from tests.otlp import span, traces_request

OTEL_DB = Path(sys.executable).parent / "otel-db"
OURS = ("otlp", "otel-db ingest", "bytea-escape")  # telemetry_type, source, raw_format


def payloads(conn: psycopg.Connection) -> list[bytes]:
    """Every staged payload as UTF-8 bytes (order of arrival is not kept)."""
    rows = conn.execute("select convert_to(payload, 'UTF8') from otel.otlp_staging").fetchall()
    return sorted(bytes(r[0]) for r in rows)


def letters(conn: psycopg.Connection) -> list[tuple]:
    """(error_message, original bytes, telemetry_type, source, raw_format), oldest first."""
    return conn.execute(
        "select error_message, decode(raw_data, 'escape'), telemetry_type, source, raw_format"
        "  from otel.telemetry_dlq order by id"
    ).fetchall()


@pytest.fixture
def db(dsn: str):
    """A connection as the client opens it (autocommit, UTF-8)."""
    with connect(dsn) as conn:
        yield conn


# ------------------------------------------------------------------ lines, no database


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_split_lines_strips_crlf_and_keeps_truncated_last_line():
    data = b'{"a":1}\r\n{"b":2}\n\n{"c":'
    assert list(split_lines([data])) == [b'{"a":1}', b'{"b":2}', b"", b'{"c":']


def test_split_lines_keeps_a_carriage_return_inside_a_line():
    assert list(split_lines([b"a\rb\r\r\n"])) == [b"a\rb\r"]


@given(
    st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=20),
    st.integers(min_value=1, max_value=17),
)
def test_split_lines_is_independent_of_chunk_boundaries(lines, size):
    data = b"\n".join(lines)
    parts = data.split(b"\n")
    if parts[-1] == b"":  # after the final newline: no line
        parts.pop()
    expected = [part.removesuffix(b"\r") for part in parts]
    assert list(split_lines(chunked(data, size))) == expected


def test_split_lines_replaces_an_oversize_line_by_its_prefix():
    data = b"short\n" + b"x" * 100 + b"\nafter\n"
    lines = list(split_lines(chunked(data, 7), max_line_bytes=50, keep_bytes=10))
    assert lines == [b"short", Oversize(b"x" * 10, 100, 50), b"after"]


def test_strip_bom_only_at_the_start_even_when_split():
    bom = b"\xef\xbb\xbf"
    assert b"".join(strip_bom([bom[:1], bom[1:2], bom[2:] + b"{}", bom])) == b"{}" + bom


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"a":"x\x00y"}', "contains a NUL byte at offset 7"),
        (b'{"a":"\xff"}', "invalid UTF-8 at byte offset 6"),
        (b'{"a":"\xed\xa0\x80"}', "invalid UTF-8 at byte offset 6"),  # a surrogate
        (b'{"a":"\xc3"}', "invalid UTF-8 at byte offset 6"),  # truncated sequence
        (b"ab\x01", "contains byte 0x01 (the COPY quote character) at offset 2"),
        (b"\x02", "contains byte 0x02 (the COPY delimiter) at offset 0"),
        (b"\xff\x00", "invalid UTF-8 at byte offset 0"),  # the earliest problem wins
    ],
)
def test_unstorable_reason_names_the_first_bad_byte(line, reason):
    assert unstorable_reason(line) == reason


@pytest.mark.parametrize("line", [b"", b'{"a":"\\u0000 \\\\N"}', "caf\u00e9 \U0001f600".encode(), b"\\.", b"a\rb\t"])
def test_unstorable_reason_accepts_what_text_can_hold(line):
    assert unstorable_reason(line) is None


def test_bytea_escape_format():
    assert bytea_escape(b"a\\b\x00\xff ~\x7f\n") == "a\\\\b\\000\\377 ~\\177\\012"


# ------------------------------------------------------------------ bytea escape vs PostgreSQL


def test_bytea_escape_round_trips_through_postgres_decode(db):
    every_byte = bytes(range(256)) * 2 + b"\\\\000\\"
    got = db.execute("select decode(%s, 'escape')", [bytea_escape(every_byte)]).fetchone()[0]
    assert bytes(got) == every_byte


# ------------------------------------------------------------------ OTLP lines files


def write(tmp_path: Path, data: bytes, name: str = "in.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_ingest_lands_backslashes_and_copy_markers_byte_exact(db, tmp_path):
    lines = [
        rb'{"path":"C:\\temp\\new","null":"\\N","quote":"\"x\""}',
        rb"\N",
        rb"\.",  # the end-of-copy marker in an unquoted COPY stream
        rb'{"after":"the marker"}',
        rb"\\.",
        b'"quoted","csv"',
        b"tab\there\rand a carriage return",
        "caf\u00e9 \U0001f600".encode(),
    ]
    report = ingest_otlp_file(db, write(tmp_path, b"\n".join(lines) + b"\n"))
    assert payloads(db) == sorted(lines)
    assert (report.lines_read, report.lines_sent, report.lines_dead_lettered) == (8, 8, 0)


def test_ingest_strips_crlf_and_bom(db, tmp_path):
    data = b'\xef\xbb\xbf{"first":1}\r\n{"second":2}\r\n'
    report = ingest_otlp_file(db, write(tmp_path, data))
    assert payloads(db) == [b'{"first":1}', b'{"second":2}']
    assert report.bytes_read == len(data)


def test_ingest_skips_and_counts_blank_lines(db, tmp_path):
    report = ingest_otlp_file(db, write(tmp_path, b"\n{}\n   \n\r\n{}\n\n"))
    assert payloads(db) == [b"{}", b"{}"]
    assert (report.lines_read, report.lines_sent, report.blank_lines) == (6, 2, 4)


def test_ingest_dead_letters_nul_and_invalid_utf8_recoverably(db, tmp_path):
    nul = b'{"resourceSpans":[],"x":"a\x00b"}'
    latin1 = b'{"resourceSpans":[],"x":"caf\xe9"}'
    data = b"{}\n" + nul + b"\r\n" + b"[1]\n" + latin1 + b"\n" + b"{}"
    report = ingest_otlp_file(db, write(tmp_path, data))
    assert payloads(db) == [b"[1]", b"{}", b"{}"]
    nul_at, bad_at = nul.index(b"\x00"), latin1.index(b"\xe9")
    assert letters(db) == [
        (f"line 2: contains a NUL byte at offset {nul_at}", nul, *OURS),
        (f"line 4: invalid UTF-8 at byte offset {bad_at}", latin1, *OURS),
    ]
    assert (report.lines_read, report.lines_sent, report.lines_dead_lettered) == (5, 3, 2)


def test_ingest_dead_letters_the_copy_framing_bytes(db, tmp_path):
    data = b"{}\n" + b'{"x":"\x01"}\n' + b'{"x":"\x02"}\n'
    ingest_otlp_file(db, write(tmp_path, data))
    assert payloads(db) == [b"{}"]
    assert [(m, raw) for m, raw, *_ in letters(db)] == [
        ("line 2: contains byte 0x01 (the COPY quote character) at offset 6", b'{"x":"\x01"}'),
        ("line 3: contains byte 0x02 (the COPY delimiter) at offset 6", b'{"x":"\x02"}'),
    ]


def test_ingest_multi_megabyte_line_lands_whole(db, tmp_path):
    big = b'{"pad":"' + b"0123456789\\\\" * 1_000_000 + b'"}'  # 12 MB
    report = ingest_otlp_file(db, write(tmp_path, b"{}\n" + big + b"\n{}\n"), chunk_size=1 << 20)
    got = db.execute(
        "select length(payload), md5(payload) from otel.otlp_staging order by length(payload) desc"
    ).fetchall()
    assert got[0] == (len(big), hashlib.md5(big).hexdigest())
    assert len(got) == 3
    assert report.lines_sent == 3


def test_ingest_dead_letters_an_oversize_line_with_its_start(db, tmp_path):
    data = b"{}\n" + b"x" * 5000 + b"\n{}"
    report = ingest_otlp_file(db, write(tmp_path, data), max_line_bytes=1000, chunk_size=256)
    assert payloads(db) == [b"{}", b"{}"]
    [(message, raw, *_)] = letters(db)
    assert message.startswith("line 2: 5000 bytes is longer than the 1000-byte line limit")
    assert raw == b"x" * 1000
    assert report.lines_dead_lettered == 1


def test_ingest_sends_a_truncated_last_line_and_flush_dead_letters_it(db, tmp_path):
    good = json.dumps(traces_request(span())).encode()
    truncated = b'{"resourceSpans":[{"resource":'
    report = ingest_otlp_file(db, write(tmp_path, good + b"\n" + truncated))
    assert report.lines_sent == 2
    assert payloads(db) == sorted([good, truncated])
    db.execute("call otel.flush()")
    assert db.execute("select count(*) from otel.traces").fetchone()[0] == 1
    [(message, raw)] = db.execute("select error_message, raw_data from otel.telemetry_dlq").fetchall()
    assert raw == truncated.decode()
    assert "JSON" in message


def test_ingest_commits_every_commit_bytes(db, tmp_path):
    data = b"".join(b'{"n":%d}\n' % i for i in range(1000))
    report = ingest_otlp_file(db, write(tmp_path, data), commit_bytes=1000, chunk_size=512)
    transactions = db.execute("select count(distinct xmin::text) from otel.otlp_staging")
    assert transactions.fetchone()[0] > 5
    assert len(payloads(db)) == report.lines_sent == 1000


def test_ingest_keeps_earlier_batches_and_dead_letters_in_the_same_transaction(db, tmp_path):
    data = b"".join(b'{"n":%d}\n' % i for i in range(100)) + b"bad\x00\n{}\n"
    ingest_otlp_file(db, write(tmp_path, data), commit_bytes=10**9)
    staged = db.execute("select distinct xmin::text from otel.otlp_staging").fetchall()
    letter = db.execute("select xmin::text from otel.telemetry_dlq").fetchall()
    assert len(staged) == 1
    assert letter == staged


def test_ingest_of_a_missing_file_raises_oserror(db, tmp_path):
    with pytest.raises(FileNotFoundError):
        ingest_otlp_file(db, tmp_path / "missing.jsonl")


def test_copy_otlp_records_takes_dicts_str_and_bytes(db):
    request = traces_request(span())
    report = copy_otlp_records(db, [request, '{"s":"\\\\N"}\n', b"{}\r\n", b"", "x\x00"])
    assert payloads(db) == sorted([json.dumps(request, separators=(",", ":")).encode(), b'{"s":"\\\\N"}', b"{}"])
    assert (report.lines_sent, report.blank_lines, report.lines_dead_lettered) == (3, 1, 1)
    [(message, raw, kind, source, _)] = letters(db)
    assert (message, raw, kind, source) == (
        "line 5: contains a NUL byte at offset 1",
        b"x\x00",
        "otlp",
        "Client.copy_otlp",
    )


# ------------------------------------------------------------------ CSV typed ingest


def test_csv_ingest_loads_the_header_columns(db, tmp_path):
    csv_text = (
        "\ufefftrace_id, span_id,name,attributes\r\n"
        'aa,01,"GET ""/x""\nsecond line","{""k"": ""v\\\\N""}"\r\n'
        "bb,02,,\r\n"
        "\r\n"
    )
    path = write(tmp_path, csv_text.encode(), "spans.csv")
    report = ingest_csv_file(db, path, "traces")
    rows = db.execute("select trace_id, span_id, name, attributes, kind from otel.traces_staging order by 1").fetchall()
    assert rows == [
        ("aa", "01", 'GET "/x"\nsecond line', '{"k": "v\\\\N"}', None),
        ("bb", "02", None, None, None),
    ]
    assert (report.lines_sent, report.blank_lines) == (2, 1)


def test_csv_ingest_commits_in_batches_at_record_boundaries(db, tmp_path):
    rows = "".join(f'{i},s,"a ""quoted"" name\nover two lines"\n' for i in range(500))
    path = write(tmp_path, ("trace_id,span_id,name\n" + rows).encode(), "spans.csv")
    report = ingest_csv_file(db, path, "traces", commit_bytes=2000, chunk_size=700)
    got = db.execute(
        "select count(*), count(distinct name), count(distinct xmin::text) from otel.traces_staging"
    ).fetchone()
    assert got[:2] == (500, 1)
    assert got[2] > 5
    assert report.lines_sent == 500


def test_csv_ingest_rejects_an_unknown_column_listing_the_allowed_ones(db, tmp_path):
    path = write(tmp_path, b"trace_id,spanid\n1,2\n", "spans.csv")
    with pytest.raises(IngestError) as err:
        ingest_csv_file(db, path, "traces")
    assert "unknown column(s) 'spanid' for otel.traces_staging" in str(err.value)
    assert "allowed: trace_id, span_id, parent_span_id" in str(err.value)
    assert db.execute("select count(*) from otel.traces_staging").fetchone()[0] == 0


def test_csv_ingest_rejects_a_repeated_column(db, tmp_path):
    path = write(tmp_path, b"time,body,body\n", "logs.csv")
    with pytest.raises(IngestError, match="'body' given more than once"):
        ingest_csv_file(db, path, "logs")


def test_csv_ingest_rejects_an_empty_file(db, tmp_path):
    with pytest.raises(IngestError, match="empty file"):
        ingest_csv_file(db, write(tmp_path, b"", "m.csv"), "metrics")


def test_csv_ingest_names_the_file_line_copy_rejected(db, tmp_path):
    body = "".join(f"{i},s\n" for i in range(50)) + "x,y,z\n"
    path = write(tmp_path, ("trace_id,span_id\n" + body).encode(), "spans.csv")
    with pytest.raises(IngestError, match="at line 52: extra data after last expected column"):
        ingest_csv_file(db, path, "traces", commit_bytes=100, chunk_size=64)


def test_csv_ingest_names_the_line_of_bytes_text_cannot_hold(db, tmp_path):
    path = write(tmp_path, b"trace_id,span_id\na,1\nb,\xff\n", "spans.csv")
    with pytest.raises(IngestError, match="at line 3: invalid byte sequence"):
        ingest_csv_file(db, path, "traces")
    assert db.execute("select count(*) from otel.traces_staging").fetchone()[0] == 0


# ------------------------------------------------------------------ the command


def otel_db(*args: str, dsn: str | None = None, stdin: bytes | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_STORAGE_")}
    if dsn:
        env["OTEL_STORAGE_CONNECTION_STRING"] = dsn
    return subprocess.run([str(OTEL_DB), *args], input=stdin, capture_output=True, env=env, timeout=120)


def test_cli_ingest_flushes_and_prints_the_counters(dsn, tmp_path):
    requests = [json.dumps(traces_request(span(), span())) for _ in range(3)]
    path = write(tmp_path, ("\n".join(requests) + "\n\nnot json\n").encode() + b"\xff\n")
    done = otel_db("ingest", str(path), dsn=dsn)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr
    assert "6 lines read, 4 sent, 1 dead-lettered, 1 blank" in out
    assert "flush: 6 spans, 0 logs, 0 metric points, 1 dead-lettered, 0 duplicates" in out
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from otel.traces").fetchone()[0] == 6
        assert conn.execute("select count(*) from otel.telemetry_dlq").fetchone()[0] == 2


def test_cli_ingest_no_flush_only_stages(dsn, tmp_path):
    done = otel_db("ingest", "--no-flush", str(write(tmp_path, b"{}\n{}\n")), dsn=dsn)
    assert done.returncode == 0, done.stderr
    assert "flush:" not in done.stdout.decode()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select count(*) from otel.otlp_staging").fetchone()[0] == 2


def test_cli_ingest_reads_stdin(dsn):
    done = otel_db("ingest", "--no-flush", "-", dsn=dsn, stdin=b"{}\n{}\n{}")
    assert done.returncode == 0, done.stderr
    assert "3 lines read, 3 sent" in done.stdout.decode()


def test_cli_ingest_reads_a_named_pipe(dsn, tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(b"{}\n" * 3,))
    writer.start()
    done = otel_db("ingest", "--no-flush", str(fifo), dsn=dsn)
    writer.join(timeout=10)
    assert done.returncode == 0, done.stderr
    assert "3 lines read, 3 sent" in done.stdout.decode()


def test_cli_missing_file_exits_2_without_traceback(dsn, tmp_path):
    done = otel_db("ingest", str(tmp_path / "nope.jsonl"), dsn=dsn)
    err = done.stderr.decode()
    assert done.returncode == 2
    missing = tmp_path / "nope.jsonl"
    assert err == f"otel-db: error: cannot read {missing}: No such file or directory\n"
    assert "Traceback" not in err


def test_cli_unreachable_database_exits_2_without_traceback(tmp_path):
    path = write(tmp_path, b"{}\n")
    done = otel_db("--dsn", "postgresql://postgres@127.0.0.1:1/otel", "ingest", str(path))
    err = done.stderr.decode()
    assert done.returncode == 2
    assert err.startswith("otel-db: error: database unavailable:")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_cli_csv_header_error_exits_1_with_the_allowed_names(dsn, tmp_path):
    path = write(tmp_path, b"time,bogus\n", "logs.csv")
    done = otel_db("ingest", "--signal", "logs", str(path), dsn=dsn)
    err = done.stderr.decode()
    assert done.returncode == 1
    assert "unknown column(s) 'bogus' for otel.logs_staging; allowed: time," in err
    assert "Traceback" not in err


def test_cli_progress_bar_goes_to_stderr_when_asked(dsn, tmp_path):
    done = otel_db("ingest", "--no-flush", "--progress", str(write(tmp_path, b"{}\n")), dsn=dsn)
    assert done.returncode == 0
    assert "in.jsonl" in done.stderr.decode()
    assert "B/s" in done.stderr.decode() or "it/s" in done.stderr.decode()


def test_cli_stats_shows_counts_backlog_dead_letters_and_flushes(dsn, tmp_path):
    otel_db("ingest", str(write(tmp_path, b"[]\nbad\x00\n")), dsn=dsn)
    done = otel_db("stats", dsn=dsn)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr
    for expected in [
        "otel.traces",
        "otel.trace_summaries",
        "otel.otlp_staging",
        "dead letters (unprocessed): 2",
        "line N: contains a NUL byte at offset N",
        "last flushes:",
        "embeddings:",
        "sizes:",
    ]:
        assert expected in out
