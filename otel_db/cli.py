"""`otel-db`: load files, flush, and look at the store from a shell.

Exit codes: 0 when every input was read (dead-lettered lines are data
judged, not a failure); 1 when the database refused something (a bad CSV
header, a schema that is not migrated, a failed flush); 2 when an input
cannot be read or the database cannot be reached. Errors are one line on
stderr, never a traceback: the command is run by people and by scripts.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import errors, sql
from tabulate import tabulate
from tqdm import tqdm

from otel_db.client import Client, is_trace_id
from otel_db.embed import EmbedReport, embed_pending, pending_count, watch
from otel_db.ingest import (
    SIGNALS,
    IngestError,
    IngestReport,
    ingest_csv_file,
    ingest_otlp_file,
)
from otel_db.results import LogRecord, SpanNode, json_value
from otel_db.serve_options import add_serve_arguments, options_from_args, positive_float
from otel_db.settings import Settings

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNAVAILABLE = 2

# Short, so that `tail -F x.jsonl | otel-db ingest -` stages lines within a second.
DEFAULT_COMMIT_INTERVAL = 1.0


class CommandError(Exception):
    """A failure to report as one line, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


@contextmanager
def _arguments_refused() -> Iterator[None]:
    """An argument the client or the server refused (ValueError, InvalidArgument) as a one-line failure."""
    try:
        yield
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-db",
        description="OpenTelemetry data in PostgreSQL: load, flush, embed, search, inspect.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples:
  otel-db ingest app.jsonl                 load OTLP/JSON lines and flush
  otel-db flush                            move what is staged into the tables now
  otel-db embed --watch                    keep the span signatures embedded
  otel-db services --since 1d
  otel-db find --service payment --tag http.response.status_code=503
  otel-db find --operation "POST /charge" --min-duration 2s --since 6h --json
  otel-db find --tag error=true --limit 5
  otel-db trace 5b8efff798038103d269b633813fc60c
  otel-db logs card declined --service payment --since 6h
  otel-db similar "customers could not pay"
  otel-db similar 5b8efff798038103d269b633813fc60c
  otel-db root-cause 5b8efff798038103d269b633813fc60c
  otel-db explain 5b8efff798038103d269b633813fc60c
  otel-db suspects payment "POST /charge" --since 6h
  otel-db stats
  otel-db serve                            receive OTLP (HTTP :4318, gRPC :4317), flush and embed

exit codes: 0 done (dead-lettered lines are judged data), 1 the database
refused something, 2 an input or the database cannot be reached.
settings: OTEL_STORAGE_* environment variables (see the README).""",
    )
    parser.add_argument(
        "--dsn",
        metavar="URL",
        help="PostgreSQL connection string (default: OTEL_STORAGE_CONNECTION_STRING)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = commands.add_parser(
        "ingest",
        help="load OTLP/JSON lines files (or CSV with --signal) and flush",
        description="Load OTLP/JSON lines files (one export request per line, as the "
        "Collector's file exporter writes them) into otel.otlp_staging, or CSV files whose "
        "header names staging columns into otel.<signal>_staging; then call otel.flush(). "
        "Use - for standard input. What was read is committed at least every --commit-interval "
        "seconds, however slowly a pipe delivers it, so a live pipe is staged as it grows "
        "(a line only once its newline has arrived). The flush runs when every input has ended, "
        "which a live pipe never does: for one, use --no-flush and let pg_cron flush "
        "(select otel.schedule_flush()). Interrupted (Ctrl-C), the command exits without "
        "flushing; what was committed stays staged.",
        epilog="example: tail -F collector.jsonl | otel-db ingest --no-flush -",
    )
    ingest.add_argument("files", nargs="+", metavar="FILE")
    ingest.add_argument("--signal", choices=SIGNALS, help="the files are CSV for otel.<signal>_staging")
    ingest.add_argument("--no-flush", action="store_true", help="only stage, do not flush")
    ingest.add_argument(
        "--commit-interval",
        type=positive_float,
        default=DEFAULT_COMMIT_INTERVAL,
        metavar="SECONDS",
        help=f"commit at least this often (default {DEFAULT_COMMIT_INTERVAL:g})",
    )
    ingest.add_argument("--progress", action="store_true", help="show the progress bar even when not on a TTY")
    ingest.set_defaults(run=cmd_ingest)

    flush = commands.add_parser(
        "flush",
        help="move the staged rows into the tables now",
        description="Call otel.flush() once: parse, validate and move what is staged into the typed tables "
        "(what pg_cron or `otel-db serve` otherwise do periodically), and print the counters of the run.",
    )
    _add_json_argument(flush, "the otel.flush_runs row of the run (its duration in seconds)")
    flush.set_defaults(run=cmd_flush)

    stats = commands.add_parser("stats", help="row counts, staging backlog, DLQ, embeddings, recent flushes")
    stats.set_defaults(run=cmd_stats)

    embed = commands.add_parser(
        "embed",
        help="embed the span signatures waiting for a vector",
        description="Embed every span signature waiting in the queue (otel.embedding_status) with "
        "all-MiniLM-L6-v2 through ONNX Runtime, then exit; with --watch, keep waiting for new "
        "signatures. Several workers may run at once.",
    )
    embed.add_argument("--watch", action="store_true", help="keep going: wait for new signatures (LISTEN)")
    embed.add_argument("--batch-size", type=_positive_int, metavar="N", help="signatures per transaction")
    embed.add_argument(
        "--progress", action="store_true", help="show the progress bar even when not on a TTY (not with --watch)"
    )
    embed.set_defaults(run=cmd_embed)

    services = commands.add_parser(
        "services",
        help="the services with stored spans",
        description="List the services with stored spans, with their number of operations and their first and "
        "last span start (otel.services(), from the catalog the flush keeps); --since and --until keep the "
        "services seen in that window.",
    )
    _add_window_arguments(services, since=None)
    _add_json_argument(services, "the services")
    services.set_defaults(run=cmd_services)

    find = commands.add_parser(
        "find",
        help="traces by service, operation, tags, duration and status, as a Jaeger search",
        description="Find the newest traces with a span started in the window that matches every criterion at "
        "once (otel.find_traces()): service, operation (span name), tags (the span's attributes or its "
        "resource's, equal to the value or to the number or boolean it spells; error=true for failing spans), "
        "duration and status.",
    )
    find.add_argument("--service", help="a span of this service")
    find.add_argument("--operation", help="a span of this name")
    find.add_argument(
        "--tag",
        dest="tags",
        type=_tag,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an attribute value of the span or its resource (repeatable; error=true: failing spans)",
    )
    find.add_argument(
        "--min-duration", type=_duration, metavar="DURATION", help="a span at least this long (250ms, 1.5s, 1m, 1h)"
    )
    find.add_argument("--max-duration", type=_duration, metavar="DURATION", help="a span at most this long")
    find.add_argument("--status", help="a span of this status: error, ok or unset")
    _add_window_arguments(find, since="1h")
    find.add_argument(
        "--limit", type=_positive_int, default=20, metavar="N", help="how many traces (default 20, at most 10000)"
    )
    _add_json_argument(find, "the traces")
    find.set_defaults(run=cmd_find)

    trace = commands.add_parser(
        "trace",
        help="the span tree and the logs of a trace",
        description="Show trace TRACE_ID: its spans as a tree (otel.trace_spans()) with their service, duration "
        "and status, failing spans marked, then its log records (otel.trace_logs()).",
    )
    trace.add_argument("trace_id", metavar="TRACE_ID")
    _add_json_argument(trace, "the trace: an object of trace_id, spans and logs")
    trace.set_defaults(run=cmd_trace)

    logs = commands.add_parser(
        "logs",
        help="log records whose body matches some words",
        description="Search the log bodies for WORDS (otel.search_logs(): full text, web-search syntax: words, "
        '"a phrase", or, -word), best ranked first, then newest.',
    )
    logs.add_argument("words", nargs="+", metavar="WORDS")
    _add_window_arguments(logs, since=None)
    logs.add_argument("--service", help="only records of this service")
    logs.add_argument(
        "--limit", type=_positive_int, default=20, metavar="N", help="how many records (default 20, at most 10000)"
    )
    _add_json_argument(logs, "the records")
    logs.set_defaults(run=cmd_logs)

    similar = commands.add_parser(
        "similar",
        help="traces that mean the same as some text, or resemble a trace",
        description="Find traces whose spans are most similar to QUERY: free text, or a trace id "
        "(32 hex digits) for traces that fail or run like that one.",
    )
    similar.add_argument("query", metavar="QUERY")
    similar.add_argument("-k", type=_positive_int, default=10, help="how many traces (default 10, at most 1000)")
    similar.add_argument(
        "--min-similarity",
        type=float,
        metavar="X",
        help="cosine similarity floor (default: 0.2 for text, 0.85 for a trace id; "
        "OTEL_STORAGE_TEXT_SIMILARITY_THRESHOLD, OTEL_STORAGE_SIMILARITY_THRESHOLD)",
    )
    similar.add_argument("--service", help="only spans of this service")
    similar.set_defaults(run=cmd_similar)

    root_cause = commands.add_parser(
        "root-cause",
        help="the spans where a trace's failure originates, best first",
        description="Show where the failure of trace TRACE_ID originates (otel.root_cause()): the failing "
        "spans with nothing failing below them, those that raised an exception first, each with the "
        "reason it was chosen.",
    )
    root_cause.add_argument("trace_id", metavar="TRACE_ID")
    root_cause.set_defaults(run=cmd_root_cause)

    compare = commands.add_parser(
        "compare",
        help="what differs between two traces, span by span",
        description="Align traces A and B by operation (service, span name with ids replaced, the path above "
        "it) and show what differs (otel.compare_traces()): spans failing in one only first, then spans of "
        "one trace only, slower or faster spans (ratio B/A), differing attributes.",
    )
    compare.add_argument("a", metavar="A")
    compare.add_argument("b", metavar="B")
    compare.add_argument("--all", action="store_true", help="also show the spans where nothing differs")
    compare.set_defaults(run=cmd_compare)

    explain = commands.add_parser(
        "explain",
        help="what sets a failing or slow trace apart from healthy ones like it",
        description="Compare trace TRACE_ID with the K nearest traces of the same root operation that did not "
        "fail (or, for a trace that did not fail, were faster) and show the differences that hold in most "
        "comparisons (otel.explain_trace()), best first.",
    )
    explain.add_argument("trace_id", metavar="TRACE_ID")
    explain.add_argument(
        "-k", type=_positive_int, default=5, help="how many traces to compare with (default 5, at most 100)"
    )
    explain.set_defaults(run=cmd_explain)

    suspects = commands.add_parser(
        "suspects",
        help="attribute values that failing (or slow) spans of a service share",
        description="Show the attribute values over-represented in the failing spans of SERVICE (and "
        "OPERATION) against its other spans in a time window (otel.suspect_attributes()), best first; "
        "with --slow P, in its spans slower than the P percentile instead.",
    )
    suspects.add_argument("service", metavar="SERVICE")
    suspects.add_argument("operation", metavar="OPERATION", nargs="?", help="a span name (default: all)")
    _add_window_arguments(suspects, since="1h", limit="; at most 31 days")
    suspects.add_argument(
        "--slow", type=float, metavar="P", help="look at the spans slower than the P percentile (0.95, say)"
    )
    suspects.set_defaults(run=cmd_suspects)

    demo = commands.add_parser(
        "demo",
        help="run an instrumented shop through the exporters, then query what landed",
        description="Run a small shop instrumented with the OpenTelemetry SDK (four services, nested "
        "spans, failures with exceptions, correlated logs, metrics) exporting through otel_db's "
        "exporters; flush, embed, and show similar traces for a question, the span tree and logs of "
        "a failing trace, a log search and a metric series.",
    )
    demo.add_argument("--requests", type=_positive_int, default=400, help="simulated requests (default 400)")
    demo.set_defaults(run=cmd_demo)

    serve = commands.add_parser(
        "serve",
        help="receive OTLP over HTTP and gRPC into staging; flush and embed",
        description="Receive OTLP export requests over HTTP (/v1/traces, /v1/logs, /v1/metrics) and gRPC, "
        "commit each to otel.otlp_staging before acknowledging it, call otel.flush() periodically and embed "
        "new span signatures; /healthz and /metrics on the HTTP port. SIGTERM or SIGINT drains and exits 0.",
    )
    add_serve_arguments(serve)
    serve.set_defaults(run=cmd_serve)
    return parser


def _add_window_arguments(command: argparse.ArgumentParser, since: str | None, limit: str = "") -> None:
    """--since and --until, each an age or a timestamp; `since` is the default start, None for none."""
    default = f"default {since}" if since else "default: no start"
    command.add_argument(
        "--since",
        type=_time_ago,
        default=since,
        metavar="WHEN",
        help=f"start of the window: an age (30m, 6h, 2d) or a timestamp ({default}{limit})",
    )
    command.add_argument("--until", type=_time_ago, metavar="WHEN", help="end of the window (default now)")


def _add_json_argument(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument(
        "--json", action="store_true", help=f"print {what} as one JSON document (times in ISO 8601), for scripts"
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _time_ago(text: str) -> datetime:
    """An age (30m, 6h, 2d: that long before now) or an ISO 8601 timestamp (UTC unless it says otherwise)."""
    value = text.strip()
    if value[:-1].isdigit() and value[-1:] in _AGE_UNITS:
        return datetime.now(UTC) - timedelta(**{_AGE_UNITS[value[-1]]: int(value[:-1])})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an age (30m, 6h, 2d) or a timestamp, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_DURATION_UNITS = {"ms": "milliseconds", **_AGE_UNITS}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(" + "|".join(_DURATION_UNITS) + ")")


def _duration(text: str) -> timedelta:
    """A number and a unit: 250ms, 2s, 1.5s, 1m, 1h (or d)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a duration such as 250ms, 2s, 1.5s, 1m or 1h, got {text!r}")
    return timedelta(**{_DURATION_UNITS[match[2]]: float(match[1])})


def _tag(text: str) -> tuple[str, str]:
    """KEY=VALUE; the value stays text (find_traces also matches the number or boolean it spells)."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (http.response.status_code=503, say), got {text!r}")
    return key.strip(), value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        dsn = args.dsn or Settings.from_env().connection_string
    except ValueError as exc:  # an OTEL_STORAGE_* variable is invalid
        return _fail(str(exc), EXIT_UNAVAILABLE)
    try:
        with Client(dsn, settings=replace(Settings.from_env(), connection_string=dsn)) as client:
            return args.run(client, args)
    except CommandError as exc:
        return _fail(str(exc), exc.code)
    except psycopg.OperationalError as exc:
        return _fail(f"database unavailable: {_one_line(exc)}", EXIT_UNAVAILABLE)
    except (errors.UndefinedTable, errors.UndefinedFunction, errors.InvalidSchemaName) as exc:
        return _fail(
            f"{_one_line(exc)} (is the otel schema installed? run `alembic upgrade head`)",
            EXIT_FAILED,
        )
    except psycopg.Error as exc:
        return _fail(f"database error: {_one_line(exc)}", EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


# --------------------------------------------------------------------------- ingest


def cmd_ingest(client: Client, args: argparse.Namespace) -> int:
    sizes = [_readable_size(f) for f in args.files]
    conn = client.connection()
    total = None if None in sizes else sum(s for s in sizes if s is not None)
    show = args.progress or sys.stderr.isatty()
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=not show,
        dynamic_ncols=True,
    ) as bar:
        for path in args.files:
            bar.set_description(Path(path).name)
            report = _ingest_one(conn, path, args.signal, args.commit_interval, bar.update)
            bar.write(_report_line(report, args.signal), file=sys.stdout)
    if not args.no_flush:
        print(_flush_line(_flush(client)))
    return EXIT_OK


def cmd_flush(client: Client, args: argparse.Namespace) -> int:
    run = _flush(client)
    if args.json:
        _print_json(run)
    else:
        print(_flush_line(run))
    return EXIT_OK


def _flush(client: Client) -> dict[str, Any]:
    """`client.flush()`, a refusal of the database reported as a failed flush."""
    try:
        return client.flush()
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:
        raise CommandError(f"flush failed: {_one_line(exc)}") from None


def _readable_size(path: str) -> int | None:
    """Fail before any loading when an input cannot be read; its size for the bar.

    Only regular files are opened here: opening and closing a FIFO (as in
    `otel-db ingest <(zcat x.gz)`) would disturb its writer.
    """
    if path == "-":
        return None
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat.S_ISREG(info.st_mode):
            if not os.access(path, os.R_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
            return None
        with open(path, "rb"):
            return info.st_size
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}", EXIT_UNAVAILABLE) from None


def _ingest_one(
    conn: psycopg.Connection,
    path: str,
    signal: str | None,
    commit_seconds: float,
    progress: Callable[[int], object],
) -> IngestReport:
    try:
        if signal:
            return ingest_csv_file(conn, path, signal, progress=progress, commit_seconds=commit_seconds)
        return ingest_otlp_file(conn, path, progress=progress, commit_seconds=commit_seconds)
    except IngestError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}", EXIT_UNAVAILABLE) from None


def _report_line(report: IngestReport, signal: str | None) -> str:
    size = _human_bytes(report.bytes_read)
    if signal:
        return (
            f"{report.source}: {report.lines_read:,} lines read, {report.lines_sent:,} rows "
            f"sent to otel.{signal}_staging ({size})"
        )
    return (
        f"{report.source}: {report.lines_read:,} lines read, {report.lines_sent:,} sent, "
        f"{report.lines_dead_lettered:,} dead-lettered, {report.blank_lines:,} blank ({size})"
    )


def _flush_line(run: dict[str, Any]) -> str:
    if not run:
        return "flush: done (no otel.flush_runs row recorded)"
    seconds = run["duration"].total_seconds() if run.get("duration") is not None else 0.0
    return (
        f"flush: {run.get('spans', 0):,} spans, {run.get('logs', 0):,} logs, "
        f"{run.get('metric_points', 0):,} metric points, "
        f"{run.get('dead_lettered', 0):,} dead-lettered, "
        f"{run.get('duplicates', 0):,} duplicates in {seconds:.3f} s"
    )


# --------------------------------------------------------------------------- stats

_COUNTS = """
select 'otel.traces' as "table", (select count(*) from otel.traces) as rows
union all select 'otel.logs', (select count(*) from otel.logs)
union all select 'otel.metrics', (select count(*) from otel.metrics)
union all select 'otel.trace_summaries', (select count(*) from otel.trace_summaries)
union all select 'otel.cold_trace_summaries', (select count(*) from otel.cold_trace_summaries)
"""

_BACKLOG = """
select 'otel.otlp_staging' as "staging table", (select count(*) from otel.otlp_staging) as rows
union all select 'otel.traces_staging', (select count(*) from otel.traces_staging)
union all select 'otel.logs_staging', (select count(*) from otel.logs_staging)
union all select 'otel.metrics_staging', (select count(*) from otel.metrics_staging)
"""

# Messages carry line numbers and offsets; grouping on them with the digits
# masked shows the kinds of failure rather than one row per letter.
_DLQ_TOP = """
select count(*) as letters,
       regexp_replace(error_message, '(?<![[:alnum:]_.-])[0-9]+(?![[:alnum:]_.])', 'N', 'g')
         as error
  from otel.telemetry_dlq
 where processed_at is null
 group by 2
 order by 1 desc, 2
 limit 5
"""

_FLUSHES = """
select started_at, duration, spans, logs, metric_points, otlp_requests,
       dead_lettered, duplicates
  from otel.flush_runs
 order by id desc
 limit 5
"""


def cmd_stats(client: Client, args: argparse.Namespace) -> int:
    conn = client.connection()
    print(_table(conn, _COUNTS))
    print()
    print(_table(conn, _BACKLOG))
    print()
    pending = conn.execute("select count(*) from otel.telemetry_dlq where processed_at is null").fetchone()
    print(f"dead letters (unprocessed): {pending[0] if pending else 0:,}")
    print(_table(conn, _DLQ_TOP, empty="  (none)"))
    print()
    print("embeddings:")
    print(_table(conn, "select * from otel.embedding_status"))
    print()
    print("last flushes:")
    print(_table(conn, _FLUSHES, empty="  (none)"))
    print()
    print("sizes:")
    print(_table(conn, _SIZES))
    return EXIT_OK


# Every table of a partition tree: a cold day of spans is itself partitioned (slices by trace id). A table
# that is not partitioned has no tree, only itself.
_SIZES = """
select format('otel.%s', t.name) as "table",
       pg_size_pretty(sum(pg_table_size(coalesce(p.relid, format('otel.%I', t.name)::regclass)))) as data,
       pg_size_pretty(sum(pg_indexes_size(coalesce(p.relid, format('otel.%I', t.name)::regclass)))) as indexes,
       count(*) filter (where p.level = 1) as partitions
  from unnest(array['traces', 'logs', 'metrics', 'trace_summaries', 'cold_trace_summaries', 'span_signatures',
                    'telemetry_dlq']) as t (name)
  left join lateral pg_partition_tree(format('otel.%I', t.name)::regclass) as p on true
 group by t.name
 order by t.name
"""


# --------------------------------------------------------------------------- embed


def cmd_embed(client: Client, args: argparse.Namespace) -> int:
    conn = client.connection()
    embedder = client.embedder()
    if embedder.model_name == "fallback-hash":
        print(
            "otel-db: warning: no model in models/onnx (run `make model`); embedding with the "
            "fallback hash, which only matches near-identical text",
            file=sys.stderr,
        )
    batch_size = args.batch_size or client.settings.batch_size
    if args.watch:
        print(
            f"embed: watching for new span signatures ({pending_count(conn):,} pending), embedding with "
            f"{embedder}; Ctrl-C stops",
            flush=True,
        )

        def say(done: EmbedReport, seconds: float) -> None:
            print(
                f"{datetime.now():%Y-%m-%d %H:%M:%S} embedded {done.embedded:,} signatures in {seconds:.1f} s"
                f"{done.failures()}; {pending_count(conn):,} pending",
                flush=True,
            )

        watch(conn, embedder, batch_size, on_round=say)  # until interrupted
        return EXIT_OK
    show = args.progress or sys.stderr.isatty()
    with tqdm(total=pending_count(conn), unit="sig", file=sys.stderr, disable=not show, dynamic_ncols=True) as bar:
        report = embed_pending(conn, embedder, batch_size, progress=bar.update)
    print(f"embed: {report.embedded:,} signatures embedded with {embedder}{report.failures()}")
    return EXIT_OK


# --------------------------------------------------------------------------- demo

_DEMO_QUESTION = "why was the customer's card declined?"


def cmd_demo(client: Client, args: argparse.Namespace) -> int:
    try:
        from otel_db.demo import run_workload
    except ImportError as exc:
        raise CommandError(f"the demo needs the OpenTelemetry SDK: pip install 'otel_db[exporters]' ({exc})") from None
    conn = client.connection()
    print(f"running the shop: {args.requests} requests over four services, exported through otel_db ...")
    run_workload(client.dsn, requests=args.requests)
    print(_flush_line(client.flush()))
    report = embed_pending(conn, client.embedder(), client.settings.batch_size)
    print(f"embed: {report.embedded:,} new signatures embedded with {client.embedder()}")

    _heading(f'similar traces: "{_DEMO_QUESTION}"')
    results = client.similar_traces(_DEMO_QUESTION, k=5)
    print(
        _render(
            ["trace", "service", "span", "status", "message", "similarity"],
            [
                (r.trace_id, r.service or "", r.name, r.status, (r.status_message or "")[:50], f"{r.similarity:.3f}")
                for r in results
            ],
            empty="  (none)",
        )
    )

    failing = results[0].trace_id if results else None
    if failing is None:
        row = conn.execute("select trace_id from otel.traces_by_error(now() - interval '1 day', lim => 1)").fetchone()
        failing = row[0] if row else None
    if failing is not None:
        _heading(f"span tree of trace {failing}")
        print(
            _table(
                conn,
                sql.SQL(
                    "select repeat('  ', depth) || name as span, service_name as service, status_code as status,"
                    " round(duration_ms::numeric, 1) as ms from otel.trace_spans({})"
                ).format(sql.Literal(failing)),
            )
        )
        _heading("its logs")
        print(
            _table(
                conn,
                sql.SQL(
                    "select to_char(time, 'HH24:MI:SS.MS') as time, severity_text as severity, service_name as service,"
                    " body from otel.trace_logs({})"
                ).format(sql.Literal(failing)),
                empty="  (none)",
            )
        )

    _heading("log search: declined or timeout")
    print(
        _table(
            conn,
            "select to_char(time, 'HH24:MI:SS.MS') as time, severity_text as severity,"
            " service_name as service, body, round(rank::numeric, 3) as rank"
            " from otel.search_logs('declined or timeout', lim => 5)",
            empty="  (none)",
        )
    )

    _heading("p90 of http.server.request.duration (s), per minute, last hour")
    print(
        _table(
            conn,
            "select to_char(bucket_start, 'HH24:MI') as minute, round(value::numeric, 3) as p90_s"
            " from otel.metric_series('http.server.request.duration', '1 minute',"
            " now() - interval '1 hour', agg => 'p90')",
            empty="  (none)",
        )
    )
    return EXIT_OK


# --------------------------------------------------------------------------- serve


def cmd_serve(client: Client, args: argparse.Namespace) -> int:
    try:
        from otel_db.serve import run
    except ImportError as exc:
        raise CommandError(f"serve needs the serve extra: pip install 'otel_db[serve]' ({exc})") from None
    try:
        return run(client.dsn, client.settings, options_from_args(args, client.settings))
    except OSError as exc:
        raise CommandError(f"cannot listen: {exc.strerror or exc}", EXIT_UNAVAILABLE) from None


def _heading(title: str) -> None:
    print()
    print(title)
    print("=" * len(title))


# --------------------------------------------------------------------------- similar


def cmd_similar(client: Client, args: argparse.Namespace) -> int:
    with _arguments_refused():
        results = client.similar_traces(args.query, k=args.k, min_similarity=args.min_similarity, service=args.service)
    if not results:
        print(_nothing_similar(client, args))
        return EXIT_OK
    rows = [
        (r.trace_id, r.service or "", r.name, r.status, _milliseconds(r.duration_ms), f"{r.similarity:.3f}")
        for r in results
    ]
    print(_render(["trace", "service", "span", "status", "duration", "similarity"], rows))
    return EXIT_OK


def _nothing_similar(client: Client, args: argparse.Namespace) -> str:
    """Why `similar` found nothing, and what to try: the closest trace below the floor, or what is missing."""
    by_trace = is_trace_id(args.query)
    floor = args.min_similarity
    if floor is None:
        floor = client.settings.similarity_threshold if by_trace else client.settings.text_similarity_threshold
    pending = pending_count(client.connection())
    waiting = f"; {pending:,} span signatures wait to be embedded (`otel-db embed`)" if pending else ""
    closest = client.similar_traces(args.query, k=1, min_similarity=-1.0, service=args.service)
    if closest:
        best = closest[0]
        lower = max(-1.0, math.floor(best.similarity * 20) / 20)
        return (
            f"no trace scores {floor:.2f} or more; the closest is trace {best.trace_id} "
            f"({best.service or '?'}: {best.name}) at {best.similarity:.3f}: try --min-similarity {lower:.2f}"
            + ("" if by_trace else ", or other words")
            + waiting
        )
    if by_trace:
        return (
            f"nothing to compare with: trace {args.query.strip()} is not stored, or its spans are not embedded yet"
            + (waiting or " (`otel-db embed`)")
        )
    scope = f" of service {args.service}" if args.service else ""
    return f"no span{scope} is embedded yet" + (waiting or ": store some traces, then run `otel-db embed`")


# --------------------------------------------------------------------------- root-cause


def cmd_root_cause(client: Client, args: argparse.Namespace) -> int:
    with _arguments_refused():
        causes = client.root_cause(args.trace_id)
    if not causes:
        print(f"no failing spans in trace {args.trace_id.strip()} (or no such trace)")
        return EXIT_OK
    rows = [
        (
            c.rank,
            c.span_id,
            c.service or "",
            c.name,
            c.depth,
            c.score,
            f"{c.exception_type}: {c.exception_message or ''}" if c.exception_type else c.status_message or "",
            c.reason,
        )
        for c in causes
    ]
    print(_render(["rank", "span id", "service", "span", "depth", "score", "error", "reason"], rows))
    return EXIT_OK


# --------------------------------------------------------------------------- compare, explain


def cmd_compare(client: Client, args: argparse.Namespace) -> int:
    with _arguments_refused():
        differences = client.compare_traces(args.a, args.b)
    if not differences:
        print(f"nothing to compare: trace {args.a.strip()} or {args.b.strip()} is not stored")
        return EXIT_OK
    shown = [d for d in differences if args.all or d.differences]
    if not shown:
        print(f"no differences: the {len(differences)} spans align one for one")
        return EXIT_OK
    rows = [
        (
            d.rank,
            "  " * d.depth + f"{d.service or ''}/{d.name}",
            d.span_id_a or "",
            d.span_id_b or "",
            _status(d.status_a, d.exception_type_a),
            _status(d.status_b, d.exception_type_b),
            "" if d.duration_ratio is None else f"{d.duration_ratio:.2f}",
            ", ".join(d.differences),
            ", ".join(f"{key}: {_json(a)} → {_json(b)}" for key, (a, b) in (d.attributes or {}).items()),
        )
        for d in shown
    ]
    headers = ["rank", "span", "in A", "in B", "status A", "status B", "B/A", "differs", "attributes"]
    print(_render(headers, rows))
    return EXIT_OK


def cmd_explain(client: Client, args: argparse.Namespace) -> int:
    with _arguments_refused():
        explanations = client.explain_trace(args.trace_id, k=args.k)
    if not explanations:
        print(
            f"no difference holds in most comparisons for trace {args.trace_id.strip()} (or no healthy trace of"
            " its root operation to compare with, or no such trace)"
        )
        return EXIT_OK
    rows = [(e.rank, f"{e.holds_in}/{e.compared}", e.kind, e.span_id or "", e.description) for e in explanations]
    print(_render(["rank", "holds", "kind", "span id", "difference"], rows))
    return EXIT_OK


# --------------------------------------------------------------------------- suspects


def cmd_suspects(client: Client, args: argparse.Namespace) -> int:
    with _arguments_refused():
        found = client.suspect_attributes(
            args.service, args.operation, since=args.since, until=args.until, slower_than_percentile=args.slow
        )
    flagged = "slow" if args.slow is not None else "failing"
    if not found:
        print(f"no attribute value is more common in {flagged} spans of {args.service} than in the others")
        return EXIT_OK
    rows = [
        (
            s.key,
            s.value,
            f"{s.failing:,} ({s.failing_share:.0%})",
            f"{s.others:,} ({s.others_share or 0:.0%})",
            f"{s.score:.1f}",
        )
        for s in found
    ]
    print(_render(["attribute", "value", flagged, "others", "score"], rows))
    return EXIT_OK


# --------------------------------------------------------------------------- services, find, trace, logs


def cmd_services(client: Client, args: argparse.Namespace) -> int:
    with _arguments_refused():
        services = client.services(args.since, args.until)
    window = " in that window" if args.since or args.until else ""
    return _print_results(
        args.json,
        services,
        ["service", "operations", "first seen", "last seen"],
        lambda s: (s.service, s.operations, _when(s.first_seen), _when(s.last_seen)),
        nothing=f"no service has spans stored{window}",
    )


def cmd_find(client: Client, args: argparse.Namespace) -> int:
    with _arguments_refused():
        traces = client.find_traces(
            args.service,
            args.operation,
            attributes=dict(args.tags) or None,
            min_duration=args.min_duration,
            max_duration=args.max_duration,
            status=args.status,
            since=args.since,
            until=args.until,
            limit=args.limit,
        )
    return _print_results(
        args.json,
        traces,
        ["trace", "root service", "root span", "start", "duration", "spans", "errors", "services"],
        lambda t: (
            t.trace_id,
            t.root_service,
            t.root_name,
            _when(t.start_time),
            _milliseconds(t.duration_ms),
            t.span_count,
            t.error_count,
            ", ".join(t.services),
        ),
        nothing="no trace has a span started in the window that matches",
    )


def cmd_trace(client: Client, args: argparse.Namespace) -> int:
    with _arguments_refused():
        trace = client.trace_context(args.trace_id)
    if args.json:
        _print_json(asdict(trace))
        return EXIT_OK
    if not trace.spans and not trace.logs:
        print(f"nothing stored of trace {args.trace_id.strip()}")
        return EXIT_OK
    # Dots mark the depth, so that it shows wherever the table is pasted.
    spans = [("· " * s.depth + s.name, s.service, _milliseconds(s.duration_ms), _span_status(s)) for s in trace.spans]
    print(_render(["span", "service", "duration", "status"], spans, empty="(no spans stored, only logs)"))
    print()
    print("logs:")
    print(_render(["time", "severity", "service", "body"], [_log_row(r) for r in trace.logs], empty="  (none)"))
    return EXIT_OK


def _span_status(span: SpanNode) -> str:
    if span.status != "ERROR":
        return span.status or ""
    return "✗ ERROR" + (f": {span.status_message}" if span.status_message else "")


def cmd_logs(client: Client, args: argparse.Namespace) -> int:
    query = " ".join(args.words)
    with _arguments_refused():
        records = client.search_logs(query, args.since, args.until, args.service, limit=args.limit)
    return _print_results(
        args.json,
        records,
        ["time", "severity", "service", "body"],
        _log_row,
        nothing=f"no log record matches {query!r}",
    )


def _log_row(record: LogRecord) -> tuple[object, ...]:
    return (_when(record.time), record.severity_text or record.severity_number, record.service, _shorten(record.body))


Result = TypeVar("Result", bound="DataclassInstance")


def _print_results(
    as_json: bool,
    results: Sequence[Result],
    headers: Sequence[str],
    row: Callable[[Result], Sequence[object]],
    nothing: str,
) -> int:
    """As one JSON list, or as a table of `row` of each (`nothing` when there are none)."""
    if as_json:
        _print_json([asdict(r) for r in results])
    elif results:
        print(_render(headers, [row(r) for r in results]))
    else:
        print(nothing)
    return EXIT_OK


def _print_json(document: object) -> None:
    print(json.dumps(document, indent=2, default=json_value))


def _when(moment: datetime) -> str:
    """UTC to the millisecond, in a form --since and --until take back."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _milliseconds(duration_ms: float | None) -> str:
    return "" if duration_ms is None else f"{duration_ms:,.1f} ms"


def _shorten(text: str | None, width: int = 80) -> str:
    """On one line (white space collapsed), cut to `width` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _status(status: str | None, exception_type: str | None) -> str:
    return " ".join(part for part in (status, exception_type) if part)


def _json(value: object) -> str:
    return "absent" if value is None else json.dumps(value, ensure_ascii=False)


def _table(conn: psycopg.Connection, query: str | sql.Composed, empty: str = "") -> str:
    """A query result as aligned plain text (numbers right-aligned)."""
    cur = conn.execute(query)
    return _render([d.name for d in cur.description or []], cur.fetchall(), empty)


def _render(names: Sequence[str], rows: Sequence[Sequence[object]], empty: str = "") -> str:
    """Rows as an aligned plain-text table: numeric columns right-aligned, every value printed as it is."""
    if not rows and empty:
        return empty
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(names))]
    return tabulate(
        [[_cell(v) for v in row] for row in rows],
        headers=list(names),
        colalign=["right" if n else "left" for n in numeric],
        disable_numparse=True,  # text that looks like a number ('1.10') stays as it is
        preserve_whitespace=True,  # the indentation of span trees
    )


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    text = str(value)
    return text if len(text) <= 100 else text[:97] + "..."


# --------------------------------------------------------------------------- helpers


def _fail(message: str, code: int) -> int:
    print(f"otel-db: error: {message}", file=sys.stderr)
    return code


def _one_line(exc: BaseException) -> str:
    """The message without the server's multi-line detail (LINE 2: … ^)."""
    text = str(exc)
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        text = exc.diag.message_primary
    return " ".join(text.split()) or type(exc).__name__


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


if __name__ == "__main__":
    sys.exit(main())
