"""The Jaeger-compatible query API of `otel-db serve`, over HTTP, on spans the OpenTelemetry SDK sent through serve."""

import asyncio
import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import psycopg
import pytest
from multidict import MultiDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from otel_db import jaeger
from otel_db.jaeger import BadParameter, ReaderConnections, go_duration, lookback, search_tags, trace_id
from tests.helpers import flush, free_port
from tests.test_serve import get, serve  # noqa: F401 (serve is a fixture)

# The JSON fields of jaegertracing/jaeger's model/json/model.go (Trace, Span, Reference, Process, Log, KeyValue,
# DependencyLink), always present here.
TRACE_FIELDS = {"traceID", "spans", "processes", "warnings"}
SPAN_FIELDS = {
    "traceID",
    "spanID",
    "flags",
    "operationName",
    "references",
    "startTime",
    "duration",
    "tags",
    "logs",
    "processID",
    "warnings",
}
REFERENCE_FIELDS = {"refType", "traceID", "spanID"}
PROCESS_FIELDS = {"serviceName", "tags"}
LOG_FIELDS = {"timestamp", "fields"}
TAG_FIELDS = {"key", "type", "value"}
DEPENDENCY_FIELDS = {"parent", "child", "callCount"}
# cmd/query/app/http_handler.go: structuredResponse.
ENVELOPE_FIELDS = {"data", "total", "limit", "offset", "errors"}

BIG = 2**63 - 1
TOKEN = "s3cret"


@dataclass
class QueryApi:
    url: str

    def answer(self, path: str, token: str | None = None) -> tuple[int, dict]:
        answer = get(self.url + path, {"Authorization": f"Bearer {token}"} if token else None)
        assert answer.headers["Content-Type"].startswith("application/json")
        document = json.loads(answer.body)
        assert set(document) == ENVELOPE_FIELDS
        return answer.status, document

    def data(self, path: str) -> list:
        status, document = self.answer(path)
        assert (status, document["errors"], document["limit"], document["offset"]) == (200, None, 0, 0), document
        assert document["total"] == len(document["data"])
        return document["data"]

    def refused(self, path: str, status: int) -> str:
        answered, document = self.answer(path)
        assert answered == status
        assert document["data"] is None
        [error] = document["errors"]
        assert error["code"] == status
        return error["msg"]


@dataclass
class Shop:
    """Two traces: checkout calls payment, whose charge fails; the checkout links to an earlier cache warm-up."""

    api: QueryApi
    start_ns: int
    trace_id: str
    warm_trace_id: str
    span_ids: dict[str, str]


@pytest.fixture
def query_api(serve) -> Callable[..., QueryApi]:  # noqa: F811 (the fixture)
    def start(*options: str, env: dict[str, str] | None = None, prelude: str = "") -> QueryApi:
        port = free_port()
        serve("--no-flush", "--query", f"127.0.0.1:{port}", *options, env=env, prelude=prelude)
        return QueryApi(f"http://127.0.0.1:{port}")

    return start


def send_shop_spans(otlp_url: str, start_ns: int) -> tuple[str, str, dict[str, str]]:
    """The SDK's OTLP/HTTP exporter sends the spans; returns the trace ids and span ids by name."""
    providers = []

    def tracer(resource: dict, scope: str, version: str | None = None) -> trace.Tracer:
        provider = TracerProvider(resource=Resource(resource))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_url}/v1/traces")))
        providers.append(provider)
        return provider.get_tracer(scope, version)

    checkout = tracer(
        {"service.name": "checkout", "deployment.id": BIG, "host.name": "web-1"}, "shop.checkout", "1.2.3"
    )
    payment = tracer({"service.name": "payment", "host.name": "pay-1"}, "shop.payment")
    ms = 1_000_000
    warm = checkout.start_span("warm cache", kind=SpanKind.INTERNAL, start_time=start_ns - 1000 * ms)
    warm.end(end_time=start_ns - 995 * ms)
    root = checkout.start_span(
        "POST /checkout",
        kind=SpanKind.SERVER,
        start_time=start_ns,
        attributes={"http.request.method": "POST", "http.response.status_code": 502, "ratio": 0.25, "retry": False},
        links=[Link(warm.get_span_context(), {"why": "cache"})],
    )
    root.set_attribute("items", ["a", "b"])
    call = checkout.start_span("POST", trace.set_span_in_context(root), SpanKind.CLIENT, start_time=start_ns + ms)
    charge = payment.start_span(
        "POST /charges", trace.set_span_in_context(call), SpanKind.SERVER, start_time=start_ns + 2 * ms
    )
    charge.add_event(
        "exception", {"exception.type": "CardDeclined", "exception.message": "card declined"}, start_ns + 3 * ms
    )
    charge.set_status(Status(StatusCode.ERROR, "card declined"))
    charge.end(end_time=start_ns + 4 * ms + 500_000)
    call.end(end_time=start_ns + 5 * ms)
    root.end(end_time=start_ns + 7 * ms + 250_000)
    for provider in providers:
        provider.shutdown()
    spans = {"warm cache": warm, "POST /checkout": root, "POST": call, "POST /charges": charge}
    ids = {name: format(span.get_span_context().span_id, "016x") for name, span in spans.items()}
    trace_ids = (format(root.get_span_context().trace_id, "032x"), format(warm.get_span_context().trace_id, "032x"))
    return *trace_ids, ids


@pytest.fixture
def shop(serve, conn: psycopg.Connection) -> Shop:  # noqa: F811 (the fixture)
    query_port = free_port()
    server = serve("--no-flush", "--query", f"127.0.0.1:{query_port}")
    start_ns = (time.time_ns() - 600 * 10**9) // 1000 * 1000  # ten minutes ago, in whole microseconds
    checkout_trace, warm_trace, span_ids = send_shop_spans(server.url, start_ns)
    flush(conn)
    return Shop(QueryApi(f"http://127.0.0.1:{query_port}"), start_ns, checkout_trace, warm_trace, span_ids)


def by_name(trace_document: dict) -> dict[str, dict]:
    return {span["operationName"]: span for span in trace_document["spans"]}


def tag_values(tags: list[dict]) -> dict[str, tuple[str, object]]:
    return {tag["key"]: (tag["type"], tag["value"]) for tag in tags}


def search(shop: Shop, **parameters: str) -> list[str]:
    """The trace ids /api/traces finds, newest first."""
    return [found["traceID"] for found in shop.api.data("/api/traces?" + urllib.parse.urlencode(parameters))]


# --------------------------------------------------------------------------- services and operations


def test_services_lists_every_service(shop):
    assert shop.api.data("/api/services") == ["checkout", "payment"]


def test_service_operations_lists_span_names(shop):
    assert shop.api.data("/api/services/checkout/operations") == ["POST", "POST /checkout", "warm cache"]
    assert shop.api.data("/api/services/nobody/operations") == []


def test_operations_carry_their_span_kind(shop):
    found = shop.api.data("/api/operations?service=checkout")
    assert sorted(found, key=lambda o: o["name"]) == [
        {"name": "POST", "spanKind": "client"},
        {"name": "POST /checkout", "spanKind": "server"},
        {"name": "warm cache", "spanKind": "internal"},
    ]
    assert shop.api.data("/api/operations?service=checkout&spanKind=server") == [
        {"name": "POST /checkout", "spanKind": "server"}
    ]


def test_operations_refuse_a_missing_service_or_an_unknown_kind(shop):
    assert shop.api.refused("/api/operations", 400) == "parameter 'service' is required"
    assert "span_kind" in shop.api.refused("/api/operations?service=checkout&spanKind=sideways", 400)


# --------------------------------------------------------------------------- one trace


def test_a_trace_has_the_fields_of_jaegers_json_model(shop):
    [found] = shop.api.data(f"/api/traces/{shop.trace_id}")
    assert set(found) == TRACE_FIELDS
    assert found["traceID"] == shop.trace_id and found["warnings"] is None
    assert len(found["spans"]) == 3
    for span in found["spans"]:
        assert set(span) == SPAN_FIELDS
        assert span["traceID"] == shop.trace_id and span["warnings"] is None and isinstance(span["flags"], int)
        assert all(set(reference) == REFERENCE_FIELDS for reference in span["references"])
        assert all(set(tag) == TAG_FIELDS for tag in span["tags"])
        assert all(set(log) == LOG_FIELDS for log in span["logs"])
        assert all(set(tag) == TAG_FIELDS for log in span["logs"] for tag in log["fields"])
    assert all(set(process) == PROCESS_FIELDS for process in found["processes"].values())


def test_span_times_are_microseconds(shop):
    spans = by_name(shop.api.data(f"/api/traces/{shop.trace_id}")[0])
    start = shop.start_ns // 1000
    assert (spans["POST /checkout"]["startTime"], spans["POST /checkout"]["duration"]) == (start, 7250)
    assert (spans["POST"]["startTime"], spans["POST"]["duration"]) == (start + 1000, 4000)
    assert (spans["POST /charges"]["startTime"], spans["POST /charges"]["duration"]) == (start + 2000, 2500)


def test_parents_are_child_of_and_links_follows_from(shop):
    spans = by_name(shop.api.data(f"/api/traces/{shop.trace_id}")[0])
    ids = shop.span_ids
    assert spans["POST /checkout"]["references"] == [
        {"refType": "FOLLOWS_FROM", "traceID": shop.warm_trace_id, "spanID": ids["warm cache"]}
    ]
    assert spans["POST"]["references"] == [
        {"refType": "CHILD_OF", "traceID": shop.trace_id, "spanID": ids["POST /checkout"]}
    ]
    assert spans["POST /charges"]["references"] == [
        {"refType": "CHILD_OF", "traceID": shop.trace_id, "spanID": ids["POST"]}
    ]
    assert {span["spanID"] for span in spans.values()} == {ids["POST /checkout"], ids["POST"], ids["POST /charges"]}


def test_tags_are_typed_and_carry_kind_scope_and_status(shop):
    spans = by_name(shop.api.data(f"/api/traces/{shop.trace_id}")[0])
    assert tag_values(spans["POST /checkout"]["tags"]) == {
        "http.request.method": ("string", "POST"),
        "http.response.status_code": ("int64", 502),
        "ratio": ("float64", 0.25),
        "retry": ("bool", False),
        "items": ("string", '["a","b"]'),
        "otel.scope.name": ("string", "shop.checkout"),
        "otel.scope.version": ("string", "1.2.3"),
        "span.kind": ("string", "server"),
    }
    assert tag_values(spans["POST /charges"]["tags"]) == {
        "otel.scope.name": ("string", "shop.payment"),
        "span.kind": ("string", "server"),
        "otel.status_code": ("string", "ERROR"),
        "error": ("bool", True),
        "otel.status_description": ("string", "card declined"),
    }


def test_events_become_logs(shop):
    spans = by_name(shop.api.data(f"/api/traces/{shop.trace_id}")[0])
    assert spans["POST /charges"]["logs"] == [
        {
            "timestamp": shop.start_ns // 1000 + 3000,
            "fields": [
                {"key": "event", "type": "string", "value": "exception"},
                {"key": "exception.type", "type": "string", "value": "CardDeclined"},
                {"key": "exception.message", "type": "string", "value": "card declined"},
            ],
        }
    ]
    assert spans["POST"]["logs"] == []


def test_one_process_per_service_and_resource(shop):
    [found] = shop.api.data(f"/api/traces/{shop.trace_id}")
    spans = by_name(found)
    processes = found["processes"]
    assert set(processes) == {"p1", "p2"}
    checkout = processes[spans["POST /checkout"]["processID"]]
    assert spans["POST"]["processID"] == spans["POST /checkout"]["processID"]
    assert checkout["serviceName"] == "checkout"
    assert tag_values(checkout["tags"]) == {
        "deployment.id": ("int64", BIG),
        "host.name": ("string", "web-1"),
    }
    payment = processes[spans["POST /charges"]["processID"]]
    assert payment["serviceName"] == "payment"
    assert tag_values(payment["tags"])["host.name"] == ("string", "pay-1")


def test_trace_ids_are_case_insensitive_and_64_bit_ids_are_padded(shop):
    assert shop.api.data(f"/api/traces/{shop.trace_id.upper()}")[0]["traceID"] == shop.trace_id
    assert shop.api.refused(f"/api/traces/{shop.trace_id[16:]}", 404) == "trace not found"


def test_an_unknown_trace_is_404_in_jaegers_envelope(shop):
    status, document = shop.api.answer("/api/traces/" + "ab" * 16)
    assert status == 404
    assert document == {
        "data": None,
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": [{"code": 404, "msg": "trace not found"}],
    }


def test_a_malformed_trace_id_is_400(shop):
    assert "traceID" in shop.api.refused("/api/traces/not-hex", 400)


# --------------------------------------------------------------------------- search


def test_search_finds_traces_of_a_service_newest_first(shop):
    assert search(shop, service="checkout") == [shop.trace_id, shop.warm_trace_id]
    assert search(shop, service="payment") == [shop.trace_id]
    assert search(shop, service="nobody") == []


def test_search_returns_whole_traces(shop):
    [found] = shop.api.data("/api/traces?service=payment")
    assert set(found) == TRACE_FIELDS
    assert set(by_name(found)) == {"POST /checkout", "POST", "POST /charges"}


def test_search_by_operation_and_limit(shop):
    assert search(shop, service="checkout", operation="warm cache") == [shop.warm_trace_id]
    assert search(shop, service="checkout", limit="1") == [shop.trace_id]


def test_search_by_tags_as_the_jaeger_ui_and_the_tag_parameter_send_them(shop):
    assert search(shop, service="checkout", tags=json.dumps({"http.response.status_code": "502"})) == [shop.trace_id]
    assert search(shop, service="checkout", tags=json.dumps({"http.response.status_code": "200"})) == []
    assert search(shop, service="payment", tag="error:true") == [shop.trace_id]
    assert search(shop, service="checkout", tag="error:true") == []
    assert search(shop, service="checkout", tag="host.name:web-1", operation="warm cache") == [shop.warm_trace_id]


def test_search_by_duration(shop):
    assert search(shop, service="checkout", minDuration="7ms") == [shop.trace_id]
    assert search(shop, service="checkout", minDuration="4.5ms", maxDuration="6ms") == [shop.warm_trace_id]
    assert search(shop, service="payment", maxDuration="2ms") == []
    assert search(shop, service="checkout", minDuration="1s") == []


def test_search_window_in_microseconds_or_lookback(shop):
    start = shop.start_ns // 1000
    assert search(shop, service="checkout", start=str(start - 10), end=str(start + 10)) == [shop.trace_id]
    assert search(shop, service="checkout", end=str(start - 2_000_000)) == []
    assert search(shop, service="checkout", lookback="1h") == [shop.trace_id, shop.warm_trace_id]
    assert search(shop, service="checkout", lookback="5m") == []


def test_search_by_the_status_tag_jaeger_spans_carry(shop):
    assert search(shop, service="payment", tag="otel.status_code:ERROR") == [shop.trace_id]
    assert search(shop, service="checkout", tag="otel.status_code:ERROR") == []


def test_search_by_a_repeated_trace_id_returns_it_once(shop):
    found = shop.api.data(f"/api/traces?traceID={shop.warm_trace_id}&traceID={shop.warm_trace_id.upper()}")
    assert [trace["traceID"] for trace in found] == [shop.warm_trace_id]


def test_search_by_trace_ids_names_the_missing_ones(shop):
    missing = "cd" * 16
    status, document = shop.api.answer(f"/api/traces?traceID={shop.warm_trace_id}&traceID={missing}")
    assert status == 200
    assert [found["traceID"] for found in document["data"]] == [shop.warm_trace_id]
    assert document["errors"] == [{"code": 404, "msg": "trace not found", "traceID": missing}]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "parameter 'service' is required"),
        ("service=checkout&minDuration=fast", "unable to parse param 'minDuration'"),
        ("service=checkout&minDuration=2s&maxDuration=1s", "'maxDuration' should be greater than 'minDuration'"),
        ("service=checkout&start=yesterday", "unable to parse param 'start'"),
        ("service=checkout&limit=many", "unable to parse param 'limit'"),
        ("service=checkout&limit=20000", "lim"),
        ("service=checkout&lookback=forever", "unable to parse param 'lookback'"),
        ("service=checkout&tags=[1]", "malformed 'tags' parameter"),
        ("service=checkout&tags={", "malformed 'tags' parameter, cannot unmarshal JSON"),
        ("service=checkout&tag=nocolon", "malformed 'tag' parameter, expecting key:value"),
        ("traceID=xyz", "cannot parse traceID param"),
        ("service=checkout&limit=99999999999", "unable to parse param 'limit': out of range"),
        ("service=checkout&lookback=99999999999d", "unable to parse param 'lookback'"),
        ("service=checkout&minDuration=9999999999999h", "a duration out of range"),
        ("service=checkout&start=99999999999999999999", "a time out of range"),
    ],
)
def test_search_refuses_bad_parameters_with_400(shop, query, message):
    assert message in shop.api.refused(f"/api/traces?{query}", 400)


# --------------------------------------------------------------------------- API v3 (OTLP/JSON)


def otlp_trace(shop: Shop, trace: str) -> tuple[int, dict]:
    answer = get(f"{shop.api.url}/api/v3/traces/{trace}")
    assert answer.headers["Content-Type"].startswith("application/json")
    return answer.status, json.loads(answer.body)


def test_api_v3_gives_the_trace_as_otlp_json_grouped_by_resource_and_scope(shop):
    status, document = otlp_trace(shop, shop.trace_id.upper())
    assert status == 200 and set(document) == {"result"}
    resources = {
        next(a["value"]["stringValue"] for a in r["resource"]["attributes"] if a["key"] == "service.name"): r
        for r in document["result"]["resourceSpans"]
    }
    assert set(resources) == {"checkout", "payment"}
    [checkout_scope] = resources["checkout"]["scopeSpans"]
    assert checkout_scope["scope"] == {"name": "shop.checkout", "version": "1.2.3"}
    spans = {span["name"]: span for r in resources.values() for scope in r["scopeSpans"] for span in scope["spans"]}
    assert set(spans) == {"POST /checkout", "POST", "POST /charges"}
    ids = shop.span_ids
    root, call, charge = spans["POST /checkout"], spans["POST"], spans["POST /charges"]
    assert (root["traceId"], root["spanId"], root["kind"]) == (shop.trace_id, ids["POST /checkout"], 2)
    assert "parentSpanId" not in root and (call["parentSpanId"], call["kind"]) == (ids["POST /checkout"], 3)
    assert root["startTimeUnixNano"] == str(shop.start_ns)
    assert root["endTimeUnixNano"] == str(shop.start_ns + 7_250_000)
    assert {a["key"]: a["value"] for a in root["attributes"]} == {
        "http.request.method": {"stringValue": "POST"},
        "http.response.status_code": {"intValue": "502"},
        "ratio": {"doubleValue": 0.25},
        "retry": {"boolValue": False},
        "items": {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}},
    }
    assert root["links"] == [
        {
            "traceId": shop.warm_trace_id,
            "spanId": ids["warm cache"],
            "attributes": [{"key": "why", "value": {"stringValue": "cache"}}],
        }
    ]
    assert charge["status"] == {"code": 2, "message": "card declined"} and "status" not in call
    assert charge["events"] == [
        {
            "timeUnixNano": str(shop.start_ns + 3_000_000),
            "name": "exception",
            "attributes": [
                {"key": "exception.type", "value": {"stringValue": "CardDeclined"}},
                {"key": "exception.message", "value": {"stringValue": "card declined"}},
            ],
        }
    ]


def test_api_v3_answers_404_for_an_unknown_trace_and_400_for_a_bad_id(shop):
    assert otlp_trace(shop, "cd" * 16) == (404, {"error": {"httpCode": 404, "message": "trace not found"}})
    status, document = otlp_trace(shop, "xyz")
    assert status == 400 and "cannot parse traceID" in document["errors"][0]["msg"]


def test_otlp_values_keep_their_type():
    assert jaeger.any_value({"a": [1, 2.5, True, None], "b": {"c": "d"}}) == {
        "kvlistValue": {
            "values": [
                {
                    "key": "a",
                    "value": {
                        "arrayValue": {"values": [{"intValue": "1"}, {"doubleValue": 2.5}, {"boolValue": True}, {}]}
                    },
                },
                {"key": "b", "value": {"kvlistValue": {"values": [{"key": "c", "value": {"stringValue": "d"}}]}}},
            ]
        }
    }


# --------------------------------------------------------------------------- dependencies


def test_dependencies_count_calls_between_services(shop):
    found = shop.api.data("/api/dependencies")
    assert found == [{"parent": "checkout", "child": "payment", "callCount": 1}]
    assert set(found[0]) == DEPENDENCY_FIELDS


def test_dependencies_window_is_in_milliseconds(shop):
    end_ms = shop.start_ns // 1_000_000
    assert len(shop.api.data(f"/api/dependencies?endTs={end_ms + 60_000}&lookback=120000")) == 1
    assert shop.api.data(f"/api/dependencies?endTs={end_ms - 60_000}&lookback=60000") == []
    assert "unable to parse param 'endTs'" in shop.api.refused("/api/dependencies?endTs=soon", 400)
    assert "31 days" in shop.api.refused(f"/api/dependencies?lookback={40 * 86_400_000}", 400)


# --------------------------------------------------------------------------- serving


def test_a_token_is_required_when_set(query_api):
    api = query_api(env={"OTEL_STORAGE_SERVE_TOKEN": TOKEN})
    paths = [route.replace("{service}", "checkout").replace("{trace_id}", "ab" * 16) for route in jaeger.ROUTES]
    assert len(paths) == 7
    for path in paths:
        status, document = api.answer(path)
        assert status == 401
        assert document["errors"] == [{"code": 401, "msg": "a bearer token is required"}]
        assert api.answer(path, token="wrong")[0] == 401
    assert api.answer("/api/services", token=TOKEN) == (
        200,
        {"data": [], "total": 0, "limit": 0, "offset": 0, "errors": None},
    )


def test_no_query_turns_the_api_off(serve, dsn):  # noqa: F811 (the fixture)
    port = free_port()
    serve("--no-flush", "--query", f"127.0.0.1:{port}", "--no-query")
    with pytest.raises(OSError):
        get(f"http://127.0.0.1:{port}/api/services")


def test_reads_run_read_only_as_otel_reader(dsn):
    async def check() -> tuple[str, str]:
        readers = ReaderConnections(dsn)
        try:
            async with readers.reading() as conn:
                cur = await conn.execute("select current_user, current_setting('transaction_read_only')")
                role, read_only = await cur.fetchone()
                with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                    await conn.execute("create table otel.scribble (x int)")
            return role, read_only
        finally:
            await readers.close()

    assert asyncio.run(check()) == ("otel_reader", "on")


# --------------------------------------------------------------------------- parameters


def test_go_durations():
    assert go_duration("1.5s") == timedelta(seconds=1.5)
    assert go_duration("500ms") == timedelta(milliseconds=500)
    assert go_duration("1h30m") == timedelta(minutes=90)
    assert go_duration("250us") == go_duration("250µs") == timedelta(microseconds=250)
    assert go_duration("0") == timedelta(0)
    for bad in ("", "1", "1.5", "ms", "1d", "-1s", "1s garbage"):
        with pytest.raises(BadParameter):
            go_duration(bad)


def test_lookbacks_and_trace_ids():
    assert lookback("2d") == timedelta(days=2)
    assert lookback("12h") == timedelta(hours=12)
    with pytest.raises(BadParameter):
        lookback("1.5h")
    assert trace_id("ABCDEF") == "0" * 26 + "abcdef"
    with pytest.raises(BadParameter):
        trace_id("0" * 33)


def test_tag_parameters_merge_with_tags_json_last():
    query = MultiDict([("tag", "a:1"), ("tag", "url:http://x"), ("tags", '{"a": "2", "b": "3"}')])
    assert search_tags(query) == {"a": "2", "url": "http://x", "b": "3"}


def test_events_and_links_that_are_not_objects_are_left_out():
    assert jaeger.span_logs([{"name": "ok", "time": "2026-12-01T00:00:00+00:00"}, {"name": "no time"}, 7, None]) == [
        {"timestamp": 1796083200000000, "fields": [{"key": "event", "type": "string", "value": "ok"}]}
    ]
    row = {"parent_span_id": None, "span_id": "a" * 16, "trace_id": "b" * 32, "links": [{"trace_id": "c" * 32}, 3]}
    assert jaeger.span_references(row) == []
