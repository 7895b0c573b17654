"""OTLP/HTTP for `otel-db serve`: POST /v1/traces, /v1/logs, /v1/metrics; GET /healthz and /metrics.

Built on aiohttp: a mature asyncio HTTP/1.1 server that streams request
bodies (so the size limit holds before a body is buffered), drains in-flight
handlers on shutdown, and needs no ASGI layer between it and the handlers.
Its automatic request decompression is switched off: the body is inflated
here, bounded, so the limit applies to the decompressed size and a gzip bomb
is stopped at it.

Answers follow the OTLP/HTTP specification: 200 with an empty (or
partial-success) Export*ServiceResponse in the request's content type, 400
with a google.rpc.Status for a body that is no request, 413 over the size
limit, 415 for another content type or encoding, 503 with Retry-After when
the request was not stored (retry it), 401 without the bearer token.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web

from otel_db.otlp_requests import (
    CONTENT_TYPES,
    INVALID_ARGUMENT,
    JSON,
    PROTOBUF,
    SIGNALS,
    UNAUTHENTICATED,
    UNAVAILABLE,
    BoundedBody,
    MalformedRequest,
    RequestTooLarge,
    Signal,
    record_from_json,
    record_from_protobuf,
    response_body,
    status_body,
)
from otel_db.receiver import Receiver
from otel_db.serve_metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from otel_db.staging_writer import Unavailable

# google.rpc.Code for a request over the size limit.
RESOURCE_EXHAUSTED = 8
# Seconds the connections left after the drain get to close.
CLOSE_SECONDS = 2.0

Health = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


def build_app(receiver: Receiver, max_body: int, health: Health) -> web.Application:
    app = web.Application()
    for signal in SIGNALS:
        app.router.add_post(signal.path, partial(_export, receiver, max_body, signal))
    app.router.add_get("/healthz", partial(_healthz, health))
    app.router.add_get("/metrics", partial(_metrics, receiver))
    return app


def runner(app: web.Application, cancel_on_disconnect: bool = False) -> web.AppRunner:
    """The app's runner: no access log (one line per export would drown the log), bodies left compressed.

    `cancel_on_disconnect` is for reads: a client that goes away (a closed
    browser tab) cancels its handler, and with it the query on the server.

    Its shutdown timeout is short because the server drains before it shuts
    the runner down (`stop_listening`, then `Receiver.drained`): what is left
    then is idle connections, and connections aiohttp accepted just before
    it stopped listening, whose request it ignores once it is closing.
    """
    return web.AppRunner(
        app,
        access_log=None,
        auto_decompress=False,
        shutdown_timeout=CLOSE_SECONDS,
        handler_cancellation=cancel_on_disconnect,
    )


async def listen(http_runner: web.AppRunner, host: str, port: int) -> None:
    """Set the runner up (once) and listen on host:port."""
    if http_runner.server is None:
        await http_runner.setup()
    await web.TCPSite(http_runner, host, port).start()


async def stop_listening(http_runner: web.AppRunner) -> None:
    """Close the listening sockets; requests on connections already open go on."""
    for site in list(http_runner.sites):
        await site.stop()


async def _export(receiver: Receiver, max_body: int, signal: Signal, request: web.Request) -> web.Response:
    content_type = request.content_type
    answer_type = content_type if content_type in CONTENT_TYPES else JSON

    def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
        receiver.metrics.requests.labels(signal.name, "http", str(status)).inc()
        return web.Response(status=status, body=body, content_type=answer_type, headers=headers)

    def refuse(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return answer(status, status_body(answer_type, code, message), headers)

    if not receiver.authorized(request.headers.get("Authorization")):
        return refuse(401, UNAUTHENTICATED, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
    if content_type not in CONTENT_TYPES:
        return refuse(415, INVALID_ARGUMENT, f"Content-Type must be {PROTOBUF} or {JSON}, not {content_type!r}")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("gzip", "identity"):
        return refuse(415, INVALID_ARGUMENT, f"Content-Encoding must be gzip or none, not {encoding!r}")
    body = BoundedBody(encoding, max_body)
    try:
        if request.content_length is not None and request.content_length > body.raw_limit:
            raise RequestTooLarge(f"the request body is larger than the {max_body}-byte limit")
        # Refused before it is read when the server is stopping, behind or
        # has too many bytes in flight; held in flight until it is stored.
        with receiver.holding(request.content_length or 0) as hold:
            try:
                async for piece in request.content.iter_any():
                    body.feed(piece)
                    # A gzip or chunked body counts as it grows, not as announced.
                    hold.resize(max(hold.size, body.size))
            finally:
                receiver.metrics.received_bytes.labels(signal.name, "http").inc(body.raw_size)
            data = body.finish()
            hold.resize(len(data))
            decode = record_from_protobuf if content_type == PROTOBUF else record_from_json
            receipt = await receiver.store(signal, partial(decode, signal, data), len(data))
    except Unavailable as exc:
        return refuse(503, UNAVAILABLE, str(exc), {"Retry-After": str(exc.retry_after)})
    except MalformedRequest as exc:
        return refuse(400, INVALID_ARGUMENT, str(exc))
    except RequestTooLarge as exc:
        return refuse(413, RESOURCE_EXHAUSTED, str(exc))
    return answer(200, response_body(signal, answer_type, receipt.rejected, receipt.reason))


async def _healthz(health: Health, request: web.Request) -> web.Response:
    healthy, report = await health()
    return web.json_response(report, status=200 if healthy else 503, dumps=json.dumps)


async def _metrics(receiver: Receiver, request: web.Request) -> web.Response:
    if not receiver.authorized(request.headers.get("Authorization")):
        return web.Response(status=401, text="a bearer token is required\n", headers={"WWW-Authenticate": "Bearer"})
    response = web.Response(body=receiver.metrics.render())
    response.headers["Content-Type"] = METRICS_CONTENT_TYPE
    return response
