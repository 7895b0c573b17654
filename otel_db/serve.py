"""`otel-db serve`: an OTLP receiver in front of the staging tables, which also flushes and embeds.

One asyncio process:

- OTLP/HTTP (`otel_db.serve_http`, aiohttp) and OTLP/gRPC
  (`otel_db.serve_grpc`, grpc.aio) receive export requests; a protobuf
  request of spans becomes rows of otel.traces_staging (`otel_db.typed_spans`),
  any other request one OTLP/JSON line of otel.otlp_staging
  (`otel_db.otlp_requests`).
- `otel_db.staging_writer` admits them within the in-flight and backlog
  bounds and group-commits them; a request is acknowledged only after its
  COMMIT.
- A watcher looks at the database once a second (reachable? staging
  backlog, flush and embedding lag) for admission, /healthz and /metrics.
- A flusher calls otel.flush() every flush interval on its own connection,
  and skips a round while another process's flush holds the flush lock, so
  that several servers on one database do not queue flushes behind each
  other.
- The Jaeger-compatible query API (`otel_db.jaeger`, aiohttp) reads
  through the SQL functions as otel_reader, on connections of its own.
- A thread embeds new span signatures (`otel_db.embed.watch`), when the
  embedding extra and the model are installed.

SIGTERM or SIGINT drains: the listeners close, requests already received
are committed and answered, then the process exits 0. Nothing acknowledged
is lost; a request cut off mid-way was not acknowledged, and its client
sends it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import psycopg
from aiohttp import web

from otel_db.embed import NoModel, installed_model, watch
from otel_db.jaeger import ROUTES as JAEGER_ROUTES
from otel_db.jaeger import ReaderConnections, build_query_app
from otel_db.receiver import Receiver
from otel_db.serve_grpc import build_server
from otel_db.serve_http import build_app, listen, runner, stop_listening
from otel_db.serve_metrics import ServeMetrics
from otel_db.serve_options import ServeOptions
from otel_db.settings import Settings
from otel_db.staging_writer import StagingWriter, connection_params, one_line
from otel_db.web import PageApi, add_page

if TYPE_CHECKING:
    from otel_db.embedding import Embedder

log = logging.getLogger("otel_db.serve")

# How long requests in flight get to finish when the server is told to stop.
DRAIN_SECONDS = 30.0
# How long the flush at stop (the one in progress, then a last one for what
# the drain committed) gets before it is cancelled (it rolls back; the rows
# it claimed are taken by the next flush).
FLUSH_STOP_SECONDS = 10.0
WATCH_INTERVAL = 1.0
WATCH_TIMEOUT = 3.0
EMBED_POLL_SECONDS = 1.0
EMBED_RETRY_SECONDS = 5.0

_BACKLOG_SQL = "select otel.staging_bytes()"
_LAGS_SQL = """
select (select extract(epoch from started_at + duration)::float8 from otel.flush_runs order by id desc limit 1),
       (select pending from otel.embedding_status)
"""
# The exclusive lock otel.take_flush_lock() takes (a reader such as pg_dump holds a weaker one), in this
# database: relation OIDs repeat across databases, one cloned from another has the same.
_FLUSH_RUNNING_SQL = """
select exists (select from pg_locks
                where locktype = 'relation' and relation = 'otel.flush_lock'::regclass and granted
                  and mode = 'ExclusiveLock'
                  and database = (select oid from pg_database where datname = current_database()))
"""


def run(dsn: str, settings: Settings, options: ServeOptions) -> int:
    """Serve until SIGTERM or SIGINT; 0 after a clean drain."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(serve(dsn, settings, options))


async def serve(dsn: str, settings: Settings, options: ServeOptions) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    service = Service(dsn, settings, options)
    try:
        await service.start()
        await stop.wait()
    finally:
        await service.stop()
    return 0


class Service:
    """The parts of a running server, started and stopped in order."""

    def __init__(self, dsn: str, settings: Settings, options: ServeOptions) -> None:
        self.options = options
        self.metrics = ServeMetrics()
        self.writer = StagingWriter(
            dsn,
            max_inflight=options.max_inflight,
            max_backlog=options.max_backlog or None,
            observe=self.metrics.observe_batch,
        )
        self.metrics.inflight_bytes.set_function(lambda: self.writer.inflight_bytes)
        self.receiver = Receiver(self.writer, self.metrics, options.token)
        self.watcher = DatabaseWatcher(dsn, self.writer, self.metrics)
        self.http = runner(build_app(self.receiver, options.max_body, self.watcher.health))
        self.grpc = build_server(self.receiver, options.max_body)
        self.readers = ReaderConnections(dsn)
        self.query = runner(self._query_app(dsn, settings), cancel_on_disconnect=True) if options.query else None
        self.flusher = Flusher(dsn, options.flush_interval) if options.flush else None
        self.embedding = EmbeddingThread(dsn, settings) if options.embed else None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = False

    def _query_app(self, dsn: str, settings: Settings) -> web.Application:
        """The Jaeger API and the web page's own endpoints, read as otel_reader; the page itself."""
        page = PageApi(dsn, settings, self.readers, self.receiver.authorized, self.options.admin_token)
        app = build_query_app(self.readers, self.receiver.authorized, {**JAEGER_ROUTES, **page.routes()})
        add_page(app, page)
        return app

    async def start(self) -> None:
        await self.watcher.check()
        await self.writer.open()
        http_host, http_port = self.options.http
        # The query API first: once /healthz answers on the OTLP port, both listen.
        if self.query is not None and self.options.query is not None:
            await listen(self.query, *self.options.query)
        await listen(self.http, http_host, http_port)
        grpc_host, grpc_port = self.options.grpc
        try:
            grpc_port = self.grpc.add_insecure_port(_host_port(grpc_host, grpc_port))
        except RuntimeError as exc:  # grpc says only "Failed to bind"
            raise OSError(f"{_host_port(grpc_host, grpc_port)} (OTLP/gRPC): {exc}") from None
        await self.grpc.start()
        self._listening = True
        self._tasks.append(asyncio.create_task(self.watcher.run(self._stop), name="database watcher"))
        if self.flusher is not None:
            self._tasks.append(asyncio.create_task(self.flusher.run(self._stop), name="flusher"))
        if self.embedding is not None:
            self.embedding.start()
        log.info(
            "listening: OTLP/HTTP on %s (/v1/traces, /v1/logs, /v1/metrics, /healthz, /metrics), OTLP/gRPC on %s;"
            " Jaeger query API and web page %s; flush %s; embedding %s; bearer token %s; max body %d bytes,"
            " max in flight %d bytes, max backlog %s",
            _urls(self.http),
            _host_port(grpc_host, grpc_port),
            f"on {_urls(self.query)} (/api/..., the page at /)" if self.query else "off",
            f"every {self.options.flush_interval:g} s" if self.flusher else "off",
            "on" if self.embedding else "off",
            "required" if self.options.token else "not required",
            self.options.max_body,
            self.options.max_inflight,
            f"{self.options.max_backlog} bytes" if self.options.max_backlog else "unlimited",
        )

    async def stop(self) -> None:
        """Drain: stop listening, answer what was received, commit it; then stop the pipeline's tasks."""
        if self._listening:
            log.info("stopping: no new requests; committing those received (at most %g s)", DRAIN_SECONDS)
        await stop_listening(self.http)
        if self.query is not None:
            await stop_listening(self.query)
        grpc_stopped = asyncio.create_task(self.grpc.stop(DRAIN_SECONDS))
        await self.receiver.drained(DRAIN_SECONDS)
        await asyncio.gather(self.http.cleanup(), grpc_stopped, *([self.query.cleanup()] if self.query else []))
        await self.readers.close()
        await self.writer.close()
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(task, FLUSH_STOP_SECONDS)
        if self.embedding is not None:
            await asyncio.to_thread(self.embedding.stop)
        await self.watcher.close()
        if self._listening:
            log.info(
                "stopped: %d requests answered, %d records stored",
                self._total("otel_db_serve_requests_total"),
                self._total("otel_db_serve_records_total"),
            )

    def _total(self, name: str) -> int:
        return int(sum(s.value for metric in self.metrics.registry.collect() for s in metric.samples if s.name == name))


def _urls(http_runner: web.AppRunner) -> str:
    return ", ".join(f"http://{_host_port(*a[:2])}" for a in http_runner.addresses)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class DatabaseWatcher:
    """Looks at the database at most once a second, for admission, /healthz and the lag gauges.

    The flush and embedding lags need read access to otel.flush_runs and
    otel.embedding_status; a role without it (a writer that does not flush)
    gets the backlog alone, and a log line saying so.
    """

    def __init__(self, dsn: str, writer: StagingWriter, metrics: ServeMetrics) -> None:
        self.dsn = dsn
        self.writer = writer
        self.metrics = metrics
        self._conn: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self._checked_at = -math.inf
        self._error: str | None = "not checked yet"
        self._read_lags = True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.check()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WATCH_INTERVAL):
                    await stop.wait()

    async def check(self) -> None:
        """Query the database unless that was done less than a second ago."""
        async with self._lock:
            if time.monotonic() - self._checked_at < WATCH_INTERVAL:
                return
            try:
                async with asyncio.timeout(WATCH_TIMEOUT):
                    await self._query()
            except (psycopg.Error, OSError, TimeoutError) as exc:
                error = f"no answer within {WATCH_TIMEOUT:g} s" if isinstance(exc, TimeoutError) else one_line(exc)
                if self._error is None:
                    log.warning("the database is unreachable: %s", error)
                self._error = error
                await self._discard()
            else:
                if self._error is not None and self._checked_at > -math.inf:
                    log.info("the database is reachable again")
                self._error = None
            self._checked_at = time.monotonic()

    async def _query(self) -> None:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await psycopg.AsyncConnection.connect(**connection_params(self.dsn, "watcher"))
        cur = await self._conn.execute(_BACKLOG_SQL)
        row = await cur.fetchone()
        self.writer.backlog_bytes = row[0] if row else 0
        self.metrics.backlog_bytes.set(self.writer.backlog_bytes)
        if self._read_lags:
            try:
                cur = await self._conn.execute(_LAGS_SQL)
            except psycopg.errors.InsufficientPrivilege as exc:
                log.info("no flush or embedding lag in /metrics: %s", one_line(exc))
                self._read_lags = False
                return
            last_flush_end, pending = await cur.fetchone() or (None, None)
            self.metrics.last_flush_end = math.nan if last_flush_end is None else last_flush_end
            self.metrics.embedding_pending.set(math.nan if pending is None else pending)

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """/healthz: healthy when the database answers and the backlog is within bounds."""
        await self.check()
        writer = self.writer
        backlog_ok = not writer.max_backlog or writer.backlog_bytes <= writer.max_backlog
        healthy = self._error is None and backlog_ok
        flush_lag = time.time() - self.metrics.last_flush_end
        report = {
            "status": "ok" if healthy else "unavailable",
            "database": "reachable" if self._error is None else f"unreachable: {self._error}",
            "staging_backlog_bytes": writer.backlog_bytes,
            "max_backlog_bytes": writer.max_backlog,
            "inflight_bytes": writer.inflight_bytes,
            "flush_lag_seconds": None if math.isnan(flush_lag) else round(flush_lag, 3),
        }
        return healthy, report

    async def close(self) -> None:
        async with self._lock:
            await self._discard()

    async def _discard(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


class Flusher:
    """Calls otel.flush() every `interval` seconds, on its own connection.

    otel.flush() serialises on the otel.flush_lock table; a round in which
    some flush (another server's, pg_cron's) holds it is skipped rather
    than queued behind it: that flush takes what is staged anyway.
    """

    def __init__(self, dsn: str, interval: float) -> None:
        self.dsn = dsn
        self.interval = interval
        self._conn: psycopg.AsyncConnection | None = None
        self._failing = False

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every interval until `stop`, then once more: what the drain committed becomes searchable."""
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval):
                        await stop.wait()
                if not stop.is_set():
                    await self.flush_once()
            # `stop` is set once the drain has committed everything: this flush takes all of it.
            await self.flush_once()
        finally:
            if self._conn is not None:
                await self._conn.close()

    async def flush_once(self) -> None:
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = await psycopg.AsyncConnection.connect(**connection_params(self.dsn, "flush"))
            cur = await self._conn.execute(_FLUSH_RUNNING_SQL)
            if (row := await cur.fetchone()) and row[0]:
                log.debug("flush skipped: another flush is running")
                return
            await self._conn.execute("call otel.flush()")
        except psycopg.Error as exc:
            if not self._failing:
                log.warning("otel.flush() failed (retrying every %g s): %s", self.interval, one_line(exc))
            self._failing = True
            return
        if self._failing:
            log.info("otel.flush() works again")
        self._failing = False


class EmbeddingThread:
    """Embeds new span signatures on a thread (ONNX Runtime releases the GIL while it computes).

    Without the embedding extra, or without the model files, it says so
    once and does nothing: receiving and flushing go on.
    """

    def __init__(self, dsn: str, settings: Settings) -> None:
        self.dsn = dsn
        self.settings = settings
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="otel-db serve embedding", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(EMBED_POLL_SECONDS + FLUSH_STOP_SECONDS)

    def _run(self) -> None:
        embedder = self._load()
        if embedder is None:
            return
        log.info("embedding new span signatures with %s", embedder)
        while not self._stopping.is_set():
            try:
                with psycopg.connect(**connection_params(self.dsn, "embedding")) as conn:
                    watch(
                        conn,
                        embedder,
                        self.settings.batch_size,
                        poll_seconds=EMBED_POLL_SECONDS,
                        keep_going=lambda: not self._stopping.is_set(),
                        on_round=lambda done, seconds: log.info(
                            "embedded %d span signatures in %.1f s%s", done.embedded, seconds, done.failures()
                        ),
                    )
            except psycopg.Error as exc:
                log.warning("embedding paused for %g s: %s", EMBED_RETRY_SECONDS, one_line(exc))
                self._stopping.wait(EMBED_RETRY_SECONDS)

    def _load(self) -> Embedder | None:
        try:
            return installed_model(self.settings)
        except NoModel as exc:
            log.warning("not embedding: %s", exc)
            return None
