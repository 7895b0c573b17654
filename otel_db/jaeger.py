"""The Jaeger-compatible query API of `otel-db serve`, for Grafana's Jaeger data source and the Jaeger UI.

The endpoints and parameters are those of Jaeger's HTTP handler
(`cmd/query/app/http_handler.go`, `query_parser.go`), the JSON that of its
`model/json`, and spans become Jaeger spans as the OpenTelemetry Collector's
OTLP-to-Jaeger translator makes them: resource attributes become a process,
kind, status and scope become tags, events logs, the parent a CHILD_OF and
links FOLLOWS_FROM references.

Rows become JSON in pure functions (`jaeger_traces`, `trace_query`, ...);
the aiohttp app at the end reads through the SQL functions, each request in
a read-only transaction as otel_reader (`set local role`, as
`Client.sql()`), rolled back, so that even a superuser's DSN cannot write
through it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import psycopg
from aiohttp import web
from multidict import MultiMapping
from psycopg.rows import dict_row

from otel_db import queries
from otel_db.client import DEFAULT_SQL_TIMEOUT
from otel_db.queries import Call
from otel_db.results import TraceSummary, json_value
from otel_db.staging_writer import connection_params, one_line

log = logging.getLogger("otel_db.serve.query")

T = TypeVar("T")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# Jaeger's defaults: a search without `start` looks two days back for at most 100 traces; dependencies one day.
DEFAULT_SEARCH_LOOKBACK = timedelta(days=2)
DEFAULT_SEARCH_LIMIT = 100
DEFAULT_DEPENDENCIES_LOOKBACK = timedelta(days=1)
# What the Collector's translator names a process whose resource has no service.name.
EMPTY_SERVICE_NAME = "OTLP_EMPTY_SERVICE_NAME"
READER_CONNECTIONS = 4

SPAN_KIND_TAGS = {
    "SERVER": "server",
    "CLIENT": "client",
    "PRODUCER": "producer",
    "CONSUMER": "consumer",
    "INTERNAL": "internal",
}

# Every stored column of the spans of some traces, by trace and start time.
TRACE_EXPORT_SQL = """
select t.*
  from unnest(%(trace_ids)s::text[]) with ordinality as wanted(trace_id, position)
 cross join lateral otel.trace_export(wanted.trace_id) as t
 order by wanted.position
"""

_GO_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNIT_NANOSECONDS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_LOOKBACK = re.compile(r"([0-9]+)([smhdw])")
_LOOKBACK_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_HEX = re.compile(r"[0-9a-fA-F]{1,32}")


class BadParameter(ValueError):
    """A query parameter Jaeger would refuse with 400."""


# ---------------------------------------------------------------- JSON model


def envelope(data: Any, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Jaeger's structuredResponse; `total` counts the items of a list."""
    total = len(data) if isinstance(data, list) else 0
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors or None}


def error_envelope(code: int, message: str) -> dict[str, Any]:
    return envelope(None, [{"code": code, "msg": message}])


def microseconds(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND


def tag(key: str, value: Any) -> dict[str, Any]:
    """A typed Jaeger key-value; arrays and maps as their JSON text, as the Collector's translator does."""
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if isinstance(value, str):
        return {"key": key, "type": "string", "value": value}
    text = "" if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return {"key": key, "type": "string", "value": text}


def tags(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [tag(key, value) for key, value in (attributes or {}).items()]


def span_tags(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The span's attributes, then what the translator adds: scope, kind, status, trace state."""
    status = row["status_code"]
    added = [
        ("otel.scope.name", row["scope_name"]),
        ("otel.scope.version", row["scope_version"]),
        ("span.kind", SPAN_KIND_TAGS.get(row["kind"])),
        ("otel.status_code", None if status == "UNSET" else status),
        ("error", True if status == "ERROR" else None),
        ("otel.status_description", row["status_message"]),
        ("w3c.tracestate", row["trace_state"]),
    ]
    return tags(row["attributes"]) + [tag(key, value) for key, value in added if value not in (None, "")]


def span_logs(events: Iterable[Any] | None) -> list[dict[str, Any]]:
    """Events as logs: the event's name as the field `event`, then its attributes.

    Typed staging only checks that events are an array: an entry that is
    not an object with a time is left out rather than failing the trace.
    """
    logs = []
    for event in events or ():
        try:
            timestamp = microseconds(datetime.fromisoformat(event["time"]))
        except (TypeError, KeyError, ValueError):
            continue
        fields = [tag("event", event["name"])] if event.get("name") else []
        attributes = event.get("attributes")
        logs.append(
            {"timestamp": timestamp, "fields": fields + tags(attributes if isinstance(attributes, dict) else {})}
        )
    return logs


def span_references(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The parent as CHILD_OF, then each link as FOLLOWS_FROM."""
    references = []
    parent = row["parent_span_id"]
    if parent and parent != row["span_id"]:
        references.append({"refType": "CHILD_OF", "traceID": row["trace_id"], "spanID": parent})
    for link in row["links"] or ():
        if isinstance(link, dict) and link.get("trace_id") and link.get("span_id"):  # as span_logs: no failing trace
            references.append({"refType": "FOLLOWS_FROM", "traceID": link["trace_id"], "spanID": link["span_id"]})
    return references


def process(row: Mapping[str, Any]) -> dict[str, Any]:
    resource = {key: value for key, value in (row["resource_attributes"] or {}).items() if key != "service.name"}
    return {"serviceName": row["service_name"] or EMPTY_SERVICE_NAME, "tags": tags(resource)}


def jaeger_span(row: Mapping[str, Any], process_id: str) -> dict[str, Any]:
    return {
        "traceID": row["trace_id"],
        "spanID": row["span_id"],
        "operationName": row["name"],
        "references": span_references(row),
        "startTime": microseconds(row["start_time"]),
        "duration": (row["end_time"] - row["start_time"]) // MICROSECOND,
        "tags": span_tags(row),
        "logs": span_logs(row["events"]),
        "processID": process_id,
        "warnings": None,
        "flags": (row["flags"] or 0) & 0xFF,  # the W3C trace flags; the bits above are OTLP's own
    }


def jaeger_trace(trace_id: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One Jaeger trace from the rows of otel.trace_export(): one process per distinct service and resource."""
    processes: dict[str, dict[str, Any]] = {}
    process_ids: dict[str, str] = {}
    spans = []
    for row in rows:
        found = process(row)
        identity = json.dumps(found, sort_keys=True)
        if identity not in process_ids:
            process_ids[identity] = f"p{len(process_ids) + 1}"
            processes[process_ids[identity]] = found
        spans.append(jaeger_span(row, process_ids[identity]))
    return {"traceID": trace_id, "spans": spans, "processes": processes, "warnings": None}


def jaeger_traces(trace_ids: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The traces among `trace_ids` that have rows, in that order."""
    by_trace: dict[str, list[Mapping[str, Any]]] = {trace_id: [] for trace_id in trace_ids}
    for row in rows:
        by_trace[row["trace_id"]].append(row)
    return [jaeger_trace(trace_id, spans) for trace_id, spans in by_trace.items() if spans]


# ---------------------------------------------------------------- OTLP/JSON (/api/v3)

OTLP_SPAN_KINDS = {"UNSPECIFIED": 0, "INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
OTLP_STATUS_CODES = {"UNSET": 0, "OK": 1, "ERROR": 2}


def any_value(value: Any) -> dict[str, Any]:
    """A stored attribute value as an OTLP/JSON AnyValue: objects are key-value lists, arrays arrays."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # 64-bit integers are strings in OTLP/JSON
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": key_values(value)}}
    return {}


def key_values(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [{"key": key, "value": any_value(value)} for key, value in (attributes or {}).items()]


def nanoseconds(moment: datetime) -> str:
    return str(microseconds(moment) * 1000)


def otlp_span(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored span as OTLP/JSON; empty fields left out, as the protobuf JSON mapping does."""
    span: dict[str, Any] = {
        "traceId": row["trace_id"],
        "spanId": row["span_id"],
        "parentSpanId": row["parent_span_id"],
        "traceState": row["trace_state"],
        "flags": row["flags"],
        "name": row["name"],
        "kind": OTLP_SPAN_KINDS.get(row["kind"], 0),
        "startTimeUnixNano": nanoseconds(row["start_time"]),
        "endTimeUnixNano": nanoseconds(row["end_time"]),
        "attributes": key_values(row["attributes"]),
        "events": otlp_events(row["events"]),
        "links": otlp_links(row["links"]),
        "status": {"code": OTLP_STATUS_CODES.get(row["status_code"], 0), "message": row["status_message"]},
    }
    return _without_empty(span)


def otlp_events(events: Iterable[Any] | None) -> list[dict[str, Any]]:
    """The events span_logs() keeps (objects with a time), in OTLP/JSON."""
    found = []
    for event in events or ():
        logs = span_logs([event])
        if logs:
            attributes = event.get("attributes")
            found.append(
                _without_empty(
                    {
                        "timeUnixNano": str(logs[0]["timestamp"] * 1000),
                        "name": event.get("name"),
                        "attributes": key_values(attributes if isinstance(attributes, dict) else {}),
                    }
                )
            )
    return found


def otlp_links(links: Iterable[Any] | None) -> list[dict[str, Any]]:
    """The links span_references() keeps (objects with both ids), in OTLP/JSON."""
    return [
        _without_empty(
            {
                "traceId": link["trace_id"],
                "spanId": link["span_id"],
                "traceState": link.get("trace_state"),
                "attributes": key_values(link["attributes"] if isinstance(link.get("attributes"), dict) else {}),
            }
        )
        for link in links or ()
        if isinstance(link, dict) and link.get("trace_id") and link.get("span_id")
    ]


def _without_empty(document: dict[str, Any]) -> dict[str, Any]:
    """The fields that say something: no null, empty text or list, zero flags or status code, empty object."""
    cleaned = {key: _without_empty(value) if isinstance(value, dict) else value for key, value in document.items()}
    return {
        key: value
        for key, value in cleaned.items()
        if value not in (None, "", [], {}) and not (key in ("flags", "code") and value == 0)
    }


def otlp_traces(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Rows of otel.trace_export() as OTLP/JSON TracesData: spans grouped by resource, then by scope."""
    resources: dict[str, dict[str, dict[str, Any]]] = {}
    documents: dict[str, dict[str, Any]] = {}
    for row in rows:
        resource = json.dumps(row["resource_attributes"] or {}, sort_keys=True)
        scope = json.dumps([row["scope_name"], row["scope_version"]])
        if resource not in documents:
            documents[resource] = {"resource": {"attributes": key_values(row["resource_attributes"])}, "scopeSpans": []}
            resources[resource] = {}
        scopes = resources[resource]
        if scope not in scopes:
            scopes[scope] = _without_empty({"scope": {"name": row["scope_name"], "version": row["scope_version"]}})
            scopes[scope]["spans"] = []
            documents[resource]["scopeSpans"].append(scopes[scope])
        scopes[scope]["spans"].append(otlp_span(row))
    return {"resourceSpans": list(documents.values())}


# ---------------------------------------------------------------- parameters


def go_duration(text: str) -> timedelta:
    """A Go duration such as 1.2s, 500ms, 1h30m (Go's time.ParseDuration, without a sign)."""
    if text == "0":
        return timedelta(0)
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise BadParameter(f"expected a duration such as 1.2s or 500ms, got {text!r}")
    nanoseconds = sum(float(number) * _GO_UNIT_NANOSECONDS[unit] for number, unit in parts)
    try:
        return timedelta(microseconds=nanoseconds / 1000)
    except OverflowError:
        raise BadParameter(f"a duration out of range: {text!r}") from None


def lookback(text: str) -> timedelta:
    """The Jaeger UI's lookback: 1h, 12h, 2d, 1w."""
    match = _LOOKBACK.fullmatch(text)
    if match is None:
        raise BadParameter(f"unable to parse param 'lookback': expected 1h, 2d or the like, got {text!r}")
    try:
        return timedelta(**{_LOOKBACK_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        raise BadParameter(f"unable to parse param 'lookback': out of range, got {text!r}") from None


def trace_id(text: str) -> str:
    """A trace id as stored: up to 32 hex digits, left-padded with zeros as Jaeger does for 64-bit ids."""
    if _HEX.fullmatch(text) is None:
        raise BadParameter(f"cannot parse traceID param: expected up to 32 hex digits, got {text!r}")
    return text.lower().zfill(32)


def _integer(query: MultiMapping[str], name: str) -> int | None:
    text = query.get(name, "")
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise BadParameter(f"unable to parse param '{name}': expected an integer, got {text!r}") from None


def _duration(query: MultiMapping[str], name: str) -> timedelta | None:
    text = query.get(name, "")
    try:
        return go_duration(text) if text else None
    except BadParameter as exc:
        raise BadParameter(f"unable to parse param '{name}': {exc}") from None


def _epoch(value: int, unit: timedelta) -> datetime:
    try:
        return EPOCH + value * unit
    except OverflowError:
        raise BadParameter(f"a time out of range: {value}") from None


def search_tags(query: MultiMapping[str]) -> dict[str, str]:
    """`tag=key:value` (repeated) and `tags={"key": "value"}` (the Jaeger UI's), as Jaeger merges them."""
    found: dict[str, str] = {}
    for text in query.getall("tag", []):
        key, colon, value = text.partition(":")
        if not colon:
            raise BadParameter(f"malformed 'tag' parameter, expecting key:value, received: {text}")
        found[key] = value
    for text in query.getall("tags", []):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadParameter(f"malformed 'tags' parameter, cannot unmarshal JSON: {exc}") from None
        if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
            raise BadParameter("malformed 'tags' parameter: expected a JSON object of strings")
        found.update(document)
    return found


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """A search of /api/traces; with `trace_ids`, those traces instead."""

    service: str | None
    operation: str | None
    attributes: dict[str, str]
    min_duration: timedelta | None
    max_duration: timedelta | None
    since: datetime
    until: datetime
    limit: int
    trace_ids: list[str] = field(default_factory=list)


def trace_query(query: MultiMapping[str], now: datetime, service_required: bool = True) -> TraceQuery:
    """The parameters of /api/traces as Jaeger's query parser reads them; `lookback` stands in for `start`."""
    trace_ids = list(dict.fromkeys(trace_id(text) for text in query.getall("traceID", [])))
    service = query.get("service") or None
    if service is None and not trace_ids and service_required:
        raise BadParameter("parameter 'service' is required")
    end = _integer(query, "end")
    until = now if end is None else _epoch(end, MICROSECOND)
    start = _integer(query, "start")
    if start is not None:
        since = _epoch(start, MICROSECOND)
    else:
        back = lookback(query["lookback"]) if query.get("lookback", "custom") != "custom" else DEFAULT_SEARCH_LOOKBACK
        try:
            since = until - back
        except OverflowError:
            raise BadParameter("unable to parse param 'lookback': it reaches before year 1") from None
    min_duration, max_duration = _duration(query, "minDuration"), _duration(query, "maxDuration")
    if min_duration and max_duration and max_duration < min_duration:
        raise BadParameter("'maxDuration' should be greater than 'minDuration'")
    limit = _integer(query, "limit")
    if limit is not None and limit > 2**31 - 1:  # Jaeger reads it as a 32-bit integer
        raise BadParameter(f"unable to parse param 'limit': out of range, got {limit}")
    return TraceQuery(
        service=service,
        operation=query.get("operation") or None,
        attributes=search_tags(query),
        min_duration=min_duration,
        max_duration=max_duration,
        since=since,
        until=until,
        limit=DEFAULT_SEARCH_LIMIT if limit is None or limit <= 0 else limit,
        trace_ids=trace_ids,
    )


def dependencies_window(query: MultiMapping[str], now: datetime) -> tuple[datetime, datetime]:
    """/api/dependencies: `endTs` (default now) and `lookback` (default a day), both in milliseconds."""
    end, back = _integer(query, "endTs"), _integer(query, "lookback")
    until = now if end is None else _epoch(end, timedelta(milliseconds=1))
    try:
        return until - (DEFAULT_DEPENDENCIES_LOOKBACK if back is None else timedelta(milliseconds=back)), until
    except OverflowError:
        raise BadParameter(f"unable to parse param 'lookback': out of range, got {back}") from None


def find_call(search: TraceQuery) -> Call[TraceSummary]:
    """otel.find_traces() for a search; the status is a tag of the spans (otel.status_code), a column in storage."""
    attributes = dict(search.attributes)
    status = attributes.pop("otel.status_code", None)
    return queries.find_traces(
        search.service,
        search.operation,
        attributes,
        search.min_duration,
        search.max_duration,
        status,
        search.since,
        search.until,
        search.limit,
    )


# ---------------------------------------------------------------- the server


class ReaderConnections:
    """A few connections on which each request reads in a read-only transaction as otel_reader, rolled back."""

    def __init__(self, dsn: str, size: int = READER_CONNECTIONS, timeout: float = DEFAULT_SQL_TIMEOUT) -> None:
        self.dsn = dsn
        self._setup = queries.read_only_transaction(timeout)
        self._slots = asyncio.Semaphore(size)
        self._idle: list[psycopg.AsyncConnection] = []

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[psycopg.AsyncConnection]:
        async with self._slots:
            if self._idle:
                conn = self._idle.pop()
            else:
                conn = await psycopg.AsyncConnection.connect(**connection_params(self.dsn, "query"))
            try:
                async with conn.transaction(force_rollback=True):
                    await conn.execute(self._setup.sql, self._setup.params)
                    yield conn
            finally:
                if conn.broken or conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    await conn.close()
                else:
                    self._idle.append(conn)

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()


async def fetch(conn: psycopg.AsyncConnection, call: Call[T]) -> list[T]:
    async with conn.cursor(row_factory=call.row_factory) as cur:
        await cur.execute(call.sql, call.params)
        return await cur.fetchall()


async def _export_rows(conn: psycopg.AsyncConnection, trace_ids: list[str]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(TRACE_EXPORT_SQL, {"trace_ids": trace_ids})
        return await cur.fetchall()


async def _export(conn: psycopg.AsyncConnection, trace_ids: list[str]) -> list[dict[str, Any]]:
    return jaeger_traces(trace_ids, await _export_rows(conn, trace_ids))


def answer(document: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(document, status=status, dumps=partial(json.dumps, ensure_ascii=False, default=json_value))


Handler = Callable[[psycopg.AsyncConnection, web.Request], Awaitable[web.Response]]


async def _services(conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
    return answer(envelope([s.service for s in await fetch(conn, queries.services(None, None))]))


async def _service_operations(conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
    found = await fetch(conn, queries.operations(request.match_info["service"], None, None, None))
    return answer(envelope(sorted({operation.name for operation in found})))


async def _operations(conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
    service = request.query.get("service")
    if not service:
        raise BadParameter("parameter 'service' is required")
    found = await fetch(conn, queries.operations(service, request.query.get("spanKind") or None, None, None))
    return answer(envelope([{"name": o.name, "spanKind": SPAN_KIND_TAGS.get(o.kind, "")} for o in found]))


async def _traces(conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
    search = trace_query(request.query, datetime.now(UTC))
    if search.trace_ids:
        traces = await _export(conn, search.trace_ids)
        found = {trace["traceID"] for trace in traces}
        missing = [
            {"code": 404, "msg": "trace not found", "traceID": trace_id}
            for trace_id in search.trace_ids
            if trace_id not in found
        ]
        return answer(envelope(traces, missing))
    summaries = await fetch(conn, find_call(search))
    return answer(envelope(await _export(conn, [summary.trace_id for summary in summaries])))


async def _trace(conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
    traces = await _export(conn, [trace_id(request.match_info["trace_id"])])
    if not traces:
        return answer(error_envelope(404, "trace not found"), 404)
    return answer(envelope(traces))


async def _otlp_trace(conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
    """Jaeger's API v3: the trace as OTLP/JSON in its gRPC gateway's `result` wrapper."""
    rows = await _export_rows(conn, [trace_id(request.match_info["trace_id"])])
    if not rows:
        return answer({"error": {"httpCode": 404, "message": "trace not found"}}, 404)
    return answer({"result": otlp_traces(rows)})


async def _dependencies(conn: psycopg.AsyncConnection, request: web.Request) -> web.Response:
    since, until = dependencies_window(request.query, datetime.now(UTC))
    calls = await fetch(conn, queries.service_dependencies(since, until))
    return answer(envelope([{"parent": c.parent, "child": c.child, "callCount": c.call_count} for c in calls]))


ROUTES: dict[str, Handler] = {
    "/api/services": _services,
    "/api/services/{service}/operations": _service_operations,
    "/api/operations": _operations,
    "/api/traces": _traces,
    "/api/traces/{trace_id}": _trace,
    "/api/dependencies": _dependencies,
    "/api/v3/traces/{trace_id}": _otlp_trace,
}


async def answering(request: web.Request, work: Callable[[], Awaitable[web.Response]]) -> web.Response:
    """The answer of `work`, or Jaeger's error envelope.

    400 for a parameter it refuses, 504 for a statement that ran out of
    time, 503 when the database fails, 500 for anything else.
    """
    try:
        return await work()
    except BadParameter as exc:
        return answer(error_envelope(400, str(exc)), 400)
    except psycopg.errors.InvalidParameterValue as exc:
        return answer(error_envelope(400, one_line(exc)), 400)
    except psycopg.errors.QueryCanceled:
        return answer(error_envelope(504, "the query ran out of time (its statement timeout); narrow it down"), 504)
    except psycopg.Error as exc:
        # The details (a host, a role) are for the server's log, not for whoever asks.
        log.warning("query API: %s failed: %s", request.path, one_line(exc))
        return answer(error_envelope(503, "the database did not answer; see the server's log"), 503)
    except Exception:
        log.exception("query API: %s failed", request.path)
        return answer(error_envelope(500, "internal error; see the server's log"), 500)


def unauthorized() -> web.Response:
    response = answer(error_envelope(401, "a bearer token is required"), 401)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def build_query_app(
    connections: ReaderConnections,
    authorized: Callable[[str | None], bool],
    routes: Mapping[str, Handler] = ROUTES,
) -> web.Application:
    """GET `routes` (the Jaeger query API by default), each read as otel_reader; all need the bearer token if set."""

    async def handle(handler: Handler, request: web.Request) -> web.Response:
        if not authorized(request.headers.get("Authorization")):
            return unauthorized()

        async def read() -> web.Response:
            async with connections.reading() as conn:
                return await handler(conn, request)

        return await answering(request, read)

    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, partial(handle, handler))
    return app
