"""The web page of `otel-db serve`, on the query API's port: search, a trace view, dead letters, metric charts.

The page is three static files in `otel_db/page/` (HTML, a script and a
style sheet, no build step, nothing fetched from elsewhere) served at `/`,
`/trace/{traceID}`, `/dead-letters` and `/metrics`. It reads a trace
through the Jaeger API (`/api/traces/{traceID}`) and everything else
through the JSON endpoints here, under `/api/otel/`, which answer as the
Jaeger API does (`{"data": ...}`, errors in `errors`), read as otel_reader.

The one write, retrying dead letters, needs the admin token
(`--admin-token`) and runs `otel.retry_dlq()` as otel_admin.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from aiohttp import web
from multidict import MultiMapping

from otel_db import queries
from otel_db.client import similar_call
from otel_db.embed import NoModel, installed_model
from otel_db.jaeger import (
    BadParameter,
    Handler,
    ReaderConnections,
    answer,
    answering,
    envelope,
    error_envelope,
    fetch,
    find_call,
    go_duration,
    lookback,
    trace_id,
    trace_query,
    unauthorized,
)
from otel_db.receiver import bearer_matches
from otel_db.settings import Settings
from otel_db.staging_writer import connection_params

if TYPE_CHECKING:
    from otel_db.embedding import Embedder

log = logging.getLogger("otel_db.serve.page")

PAGE_DIR = Path(__file__).parent / "page"
PAGES = ("/", "/trace/{trace_id}", "/dead-letters", "/metrics")
# The page's script and styles only from here; styles inline too (the waterfall positions its bars with them).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DEFAULT_WINDOW = timedelta(hours=1)
DEAD_LETTER_WINDOW = timedelta(days=7)
DEAD_LETTER_SAMPLES = 3
SIMILAR_TRACES = 10
EXPLANATIONS = 5


def window(query: MultiMapping[str], default: timedelta, now: datetime) -> tuple[datetime, datetime]:
    """`lookback` (1h, 2d) before now, or the default."""
    text = query.get("lookback", "")
    back = lookback(text) if text else default
    try:
        return now - back, now
    except OverflowError:
        raise BadParameter(f"unable to parse param 'lookback': it reaches before year 1, got {text!r}") from None


def positive_integer(query: MultiMapping[str], name: str, default: int, highest: int) -> int:
    text = query.get(name, "")
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= highest:
        raise BadParameter(f"unable to parse param '{name}': expected an integer from 1 to {highest}, got {text!r}")
    return int(text)


def labels(query: MultiMapping[str]) -> dict[str, Any] | None:
    text = query.get("labels", "")
    if not text:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadParameter(f"malformed 'labels' parameter, cannot unmarshal JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadParameter("malformed 'labels' parameter: expected a JSON object")
    return document


def rows(found: list[Any]) -> web.Response:
    return answer(envelope([asdict(row) for row in found]))


class TextModel:
    """The embedding model for free-text questions, loaded on the first one (on a thread: it takes a second).

    A model that cannot be loaded is not tried again for a minute: each
    question would otherwise repeat the manifest check.
    """

    RETRY_SECONDS = 60.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._model: Embedder | None = None
        self._failed: tuple[float, NoModel] | None = None

    def get(self) -> Embedder:
        with self._lock:
            if self._model is None:
                if self._failed is not None and time.monotonic() - self._failed[0] < self.RETRY_SECONDS:
                    raise self._failed[1]
                try:
                    self._model = installed_model(self.settings)
                except NoModel as exc:
                    log.warning("questions in words cannot be answered: %s", exc)
                    self._failed = (time.monotonic(), exc)
                    raise
            return self._model


class PageApi:
    """The page's reads (`routes()`, GET, as otel_reader) and its one write (`retry`, with the admin token)."""

    def __init__(
        self,
        dsn: str,
        settings: Settings,
        readers: ReaderConnections,
        authorized: Callable[[str | None], bool],
        admin_token: str | None,
    ) -> None:
        self.dsn = dsn
        self.settings = settings
        self.readers = readers
        self.authorized = authorized
        self.model = TextModel(settings)
        self._admin_token = admin_token

    def routes(self) -> dict[str, Handler]:
        return {
            "/api/otel/traces": self.find,
            "/api/otel/traces/{trace_id}/logs": self.trace_logs,
            "/api/otel/traces/{trace_id}/root-cause": self.root_cause,
            "/api/otel/traces/{trace_id}/similar": self.similar_to_trace,
            "/api/otel/traces/{trace_id}/explain": self.explain,
            "/api/otel/dead-letters": self.dead_letters,
            "/api/otel/metrics": self.metric_names,
            "/api/otel/metric-series": self.metric_series,
        }

    async def find(self, conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
        """A trace search with the parameters of Jaeger's /api/traces (service optional); summaries, not spans."""
        search = trace_query(request.query, datetime.now(UTC), service_required=False)
        if search.trace_ids:
            raise BadParameter("traceID is not a search parameter here: GET /api/traces/{traceID} reads a trace")
        return rows(await fetch(conn, find_call(search)))

    async def similar(self, request: web.Request) -> web.Response:
        """`q`: a question in words or a trace id; `service`, `lookback` and `k` narrow it.

        The question is embedded before a reader connection is taken, so
        that loading the model (the first time) holds none of them.
        """
        if not self.authorized(request.headers.get("Authorization")):
            return unauthorized()

        async def answer_question() -> web.Response:
            question = request.query.get("q", "").strip()
            if not question:
                raise BadParameter("parameter 'q' is required: a question in words or a trace id")
            k = positive_integer(request.query, "k", SIMILAR_TRACES, 1000)
            since = (
                window(request.query, DEFAULT_WINDOW, datetime.now(UTC))[0] if request.query.get("lookback") else None
            )
            service = request.query.get("service") or None
            try:
                call = await asyncio.to_thread(
                    similar_call, question, k, None, service, since, None, self.settings, self.model.get
                )
            except NoModel:
                message = "questions in words need the embedding model, which this server cannot load (see its log)"
                return answer(error_envelope(503, message), 503)
            async with self.readers.reading() as conn:
                return rows(await fetch(conn, call))

        return await answering(request, answer_question)

    async def trace_logs(self, conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
        return rows(await fetch(conn, queries.trace_logs(trace_id(request.match_info["trace_id"]))))

    async def root_cause(self, conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
        return rows(await fetch(conn, queries.root_cause(trace_id(request.match_info["trace_id"]))))

    async def similar_to_trace(self, conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
        wanted = trace_id(request.match_info["trace_id"])
        call = queries.similar_traces_by_trace(wanted, SIMILAR_TRACES, self.settings.similarity_threshold, None, None)
        return rows(await fetch(conn, call))

    async def explain(self, conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
        return rows(await fetch(conn, queries.explain_trace(trace_id(request.match_info["trace_id"]), EXPLANATIONS)))

    async def dead_letters(self, conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
        since, until = window(request.query, DEAD_LETTER_WINDOW, datetime.now(UTC))
        return rows(await fetch(conn, queries.dead_letter_reasons(since, until, DEAD_LETTER_SAMPLES)))

    async def metric_names(self, conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
        return rows(await fetch(conn, queries.metric_names(*window(request.query, DEFAULT_WINDOW, datetime.now(UTC)))))

    async def metric_series(self, conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
        """One metric (`name`) by `bucket` (a Go duration, default 1m) over `lookback`, with `agg` and `labels`."""
        name = request.query.get("name", "")
        if not name:
            raise BadParameter("parameter 'name' is required")
        bucket = go_duration(request.query.get("bucket", "") or "1m")
        since, until = window(request.query, DEFAULT_WINDOW, datetime.now(UTC))
        agg = request.query.get("agg", "") or "avg"
        points = await fetch(conn, queries.metric_series(name, bucket, since, until, labels(request.query), agg))
        # JSON has no NaN or infinity (a gauge may hold them): null, as a bucket without a value.
        return rows([p if p.value is None or math.isfinite(p.value) else replace(p, value=None) for p in points])

    def is_admin(self, authorization: str | None) -> bool:
        return self._admin_token is not None and bearer_matches(authorization, self._admin_token.encode())

    async def retry(self, request: web.Request) -> web.Response:
        """POST: `otel.retry_dlq()` as otel_admin; how many dead letters it moved and how many are still pending."""
        if self._admin_token is None:
            message = "retrying dead letters is off: start `otel-db serve` with an admin token (--admin-token)"
            return answer(error_envelope(403, message), 403)
        if not self.is_admin(request.headers.get("Authorization")):
            return unauthorized()

        async def run_retry() -> web.Response:
            connect = psycopg.AsyncConnection.connect(**connection_params(self.dsn, "query admin"))
            async with await connect as conn, conn.transaction():
                try:
                    await conn.execute(queries.QUERIES["as_otel_admin"])
                except psycopg.errors.InsufficientPrivilege:
                    log.warning("retrying dead letters: role %s is not a member of otel_admin", conn.info.user)
                    message = "the database role of `otel-db serve` is not a member of otel_admin"
                    return answer(error_envelope(403, message), 403)
                await conn.execute(queries.QUERIES["retry_dead_letters"])
                counted = await (await conn.execute(queries.QUERIES["retried_dead_letters"])).fetchone()
            assert counted is not None
            moved, pending = counted
            return answer(envelope({"moved": moved, "pending": pending}))

        # Shielded: a browser that leaves does not roll the retry back (reads are cancelled with it).
        return await asyncio.shield(answering(request, run_retry))


async def _page(request: web.Request) -> web.FileResponse:
    response = web.FileResponse(PAGE_DIR / "index.html")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


async def _revalidate_static(request: web.Request, response: web.StreamResponse) -> None:
    # Asked again (a 304 when unchanged), so that an upgraded server never runs with an old script.
    if request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-cache"


def add_page(app: web.Application, api: PageApi) -> None:
    """The page's views and its static files (no token needed: they hold no data), questions and the retry."""
    for path in PAGES:
        app.router.add_get(path, _page)
    app.router.add_static("/static/", PAGE_DIR, append_version=False)
    app.on_response_prepare.append(_revalidate_static)
    app.router.add_get("/api/otel/similar", api.similar)
    app.router.add_post("/api/otel/dead-letters/retry", api.retry)
