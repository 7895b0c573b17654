#!/usr/bin/env python3
"""Generate OTLP/JSON lines with the real OpenTelemetry Python SDK.

A small simulated shop (frontend, catalog, inventory, checkout, payment and an
order-worker fed by a Kafka topic) is instrumented with the OpenTelemetry SDK:
one TracerProvider, LoggerProvider and MeterProvider per service, all exporting
to in-memory exporters. Each batch of finished spans/log records and each metric
collection is encoded by ``otel_db.otlp_json`` (the OTLP protobuf encoders of
``opentelemetry-exporter-otlp-proto-common``, turned into OTLP/JSON with
``google.protobuf.json_format``: camelCase names, integer enums, 64-bit integers
as decimal strings, ids as lowercase hex, as the OTLP/JSON spec requires). One
export request is written per line, as the Collector's file exporter does.

The output is deterministic for a given ``--seed`` and ``--start``: the workload,
the trace/span ids and every timestamp (including the metric SDK's clock) come
from the seeded simulation, not from the wall clock.

    python scripts/generate_sample.py                      # examples/sample.jsonl, 30 traces
    python scripts/generate_sample.py --traces 50000 --out /tmp/big.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.context import Context
from opentelemetry.metrics import Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.sdk.version import __version__ as SDK_VERSION
from opentelemetry.trace import Link, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState

from otel_db.otlp_json import dumps, logs_request, metrics_request, spans_request

try:  # opentelemetry-sdk >= 1.39 renamed the exporter; the old name is a deprecated alias
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter as InMemoryLogExporter
except ImportError:  # pragma: no cover - older SDKs
    from opentelemetry.sdk._logs.export import InMemoryLogExporter

try:
    from opentelemetry.sdk.metrics import TraceBasedExemplarFilter
except ImportError:  # pragma: no cover - older SDKs
    TraceBasedExemplarFilter = None

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "examples" / "sample.jsonl"

MS = 1_000_000  # nanoseconds per millisecond
SEC = 1_000_000_000
BIG_INT = 9007199254740993  # 2**53 + 1: not exactly representable as a float64
INSTR_VERSION = "0.59b0"
PROPAGATOR = TraceContextTextMapPropagator()
HTTP_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    402: "Payment Required",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
DB_HOSTS = {"catalog": "10.0.0.12", "checkout": "10.0.0.14", "inventory": "10.0.0.15"}


# --------------------------------------------------------------------------- SDK plumbing


class SimClock:
    """The simulated wall clock; also installed as the metric SDK's clock."""

    def __init__(self, now: int) -> None:
        self.now = now

    def time_ns(self) -> int:
        return self.now


def install_metric_clock(clock: SimClock) -> None:
    """Make the metrics SDK read timestamps from the simulation (deterministic output).

    The SDK imports ``time_ns`` into these private modules; replacing the module
    global is enough. If a future SDK moves things around, metrics simply keep the
    real clock and the rest of the output stays deterministic.
    """
    for name in ("instrument", "metric_reader_storage", "_view_instrument_match"):
        try:
            mod = importlib.import_module(f"opentelemetry.sdk.metrics._internal.{name}")
        except ImportError:  # pragma: no cover
            continue
        if hasattr(mod, "time_ns"):
            mod.time_ns = clock.time_ns


class SeededIdGenerator(IdGenerator):
    def __init__(self, rng: random.Random) -> None:
        self._bits = rng.getrandbits

    def generate_span_id(self) -> int:
        v = self._bits(64)
        while not v:
            v = self._bits(64)
        return v

    def generate_trace_id(self) -> int:
        v = self._bits(128)
        while not v:
            v = self._bits(128)
        return v

    def is_trace_id_random(self) -> bool:
        return True


class TenantSampler(Sampler):
    """Samples everything; a third of the roots get a W3C trace state, children inherit it."""

    def should_sample(
        self,
        parent_context,
        trace_id,
        name,
        kind=None,
        attributes=None,
        links=None,
        trace_state=None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if parent.is_valid:
            state = parent.trace_state
        elif trace_id % 3 == 0:
            state = TraceState([("shop", f"tenant:{trace_id % 97}"), ("ot", "th:0")])
        else:
            state = None
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)

    def get_description(self) -> str:
        return "TenantSampler"


def make_exception(module: str, name: str, message: str) -> Exception:
    cls = type(name, (Exception,), {"__module__": module})
    return cls(message)


def fake_stack(exc: Exception, frames: Iterable[tuple[str, int, str]]) -> str:
    lines = ["Traceback (most recent call last):"]
    for path, line, func in frames:
        lines.append(f'  File "{path}", line {line}, in {func}')
    t = type(exc)
    lines.append(f"{t.__module__}.{t.__qualname__}: {exc}")
    return "\n".join(lines) + "\n"


def record_failure(
    span: Any, exc: Exception, timestamp: int, frames: Iterable[tuple[str, int, str]], **attributes: Any
) -> None:
    """record_exception with a plausible stack trace (and any extra attributes after it)."""
    span.record_exception(
        exc, timestamp=timestamp, attributes={"exception.stacktrace": fake_stack(exc, frames), **attributes}
    )


class Service:
    """One simulated service: its resource, tracers, logger and meter."""

    def __init__(self, sim: Simulation, name: str, version: str, port: int) -> None:
        rng = sim.ids_rng
        self.name = name
        self.port = port
        self.host = name
        pod = f"{name}-{rng.getrandbits(32):08x}"[: len(name) + 7] + f"-{rng.getrandbits(20):05x}"
        self.resource = Resource(
            {
                "service.name": name,
                "service.namespace": "shop",
                "service.version": version,
                "service.instance.id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "deployment.environment.name": "production",
                "host.name": f"node-{rng.randint(1, 6)}.eu-west-1.compute.internal",
                "k8s.namespace.name": "shop",
                "k8s.pod.name": pod,
                "telemetry.sdk.name": "opentelemetry",
                "telemetry.sdk.language": "python",
                "telemetry.sdk.version": SDK_VERSION,
            }
        )
        self.tracer_provider = TracerProvider(
            resource=self.resource,
            id_generator=sim.id_generator,
            sampler=sim.sampler,
            shutdown_on_exit=False,
        )
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(sim.span_exporter))
        tp = self.tracer_provider
        self.t_server = tp.get_tracer("opentelemetry.instrumentation.flask", INSTR_VERSION)
        self.t_client = tp.get_tracer("opentelemetry.instrumentation.requests", INSTR_VERSION)
        self.t_pg = tp.get_tracer("opentelemetry.instrumentation.psycopg", INSTR_VERSION)
        self.t_redis = tp.get_tracer("opentelemetry.instrumentation.redis", INSTR_VERSION)
        self.t_kafka = tp.get_tracer("opentelemetry.instrumentation.confluent_kafka", INSTR_VERSION)
        self.t_app = tp.get_tracer(f"shop.{name}", version)

        self.logger_provider = LoggerProvider(resource=self.resource, shutdown_on_exit=False)
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(sim.log_exporter))
        self.logger = self.logger_provider.get_logger(f"shop.{name}", version)

        self.reader = InMemoryMetricReader(preferred_temporality=sim.temporality_for(name))
        kwargs: dict[str, Any] = {}
        if TraceBasedExemplarFilter is not None:
            kwargs["exemplar_filter"] = TraceBasedExemplarFilter()
        self.meter_provider = MeterProvider(
            resource=self.resource,
            metric_readers=[self.reader],
            views=[
                View(
                    instrument_name="db.client.operation.duration",
                    aggregation=ExponentialBucketHistogramAggregation(max_size=40),
                ),
            ],
            shutdown_on_exit=False,
            **kwargs,
        )
        meter = self.meter_provider.get_meter(f"shop.{name}", version)
        self.meter = meter
        self.m_server_duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=HTTP_BUCKETS_S,
        )
        self.m_client_duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=HTTP_BUCKETS_S,
        )
        self.m_db_duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of database client operations.",
        )
        self.cpu_seconds = 0.0
        self.pool_used = 0
        meter.create_observable_counter(
            "process.cpu.time",
            callbacks=[self._observe_cpu],
            unit="s",
            description="CPU time used by the process.",
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.count",
            callbacks=[self._observe_pool],
            unit="{connection}",
            description="Connections in the pool by state.",
        )

    def _observe_cpu(self, _options):
        yield Observation(round(self.cpu_seconds, 6), {"cpu.mode": "user"})
        yield Observation(round(self.cpu_seconds * 0.18, 6), {"cpu.mode": "system"})

    def _observe_pool(self, _options):
        pool = {"db.client.connection.pool.name": f"{self.name}-pool"}
        yield Observation(self.pool_used, {**pool, "db.client.connection.state": "used"})
        yield Observation(10 - self.pool_used, {**pool, "db.client.connection.state": "idle"})

    def emit(
        self,
        span,
        t: int,
        severity: SeverityNumber,
        body: Any,
        attributes: dict | None = None,
        exception: BaseException | None = None,
        event_name: str | None = None,
        delay_ns: int = 0,
    ) -> None:
        self.logger.emit(
            timestamp=t,
            observed_timestamp=t + delay_ns + 180_000,
            context=trace.set_span_in_context(span) if span is not None else Context(),
            severity_number=severity,
            severity_text=SEVERITY_TEXT[severity],
            body=body,
            attributes=attributes,
            exception=exception,
            event_name=event_name,
        )

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()


SEVERITY_TEXT = {
    SeverityNumber.DEBUG: "DEBUG",
    SeverityNumber.INFO: "INFO",
    SeverityNumber.WARN: "WARNING",
    SeverityNumber.ERROR: "ERROR",
    SeverityNumber.FATAL: "CRITICAL",
}


# --------------------------------------------------------------------------- the workload

PRODUCT_NAMES = [
    "Desk lamp",
    "Café crème mug",
    "Walnut cutting board",
    "Linen apron",
    "Espresso tamper",
    "Wool throw — grey",
    "Ceramic teapot",
    "Cast iron skillet",
    "Bamboo steamer",
    "Chef's knife 21 cm",
]
SEARCH_TERMS = ["lamp", "mug", "teapot", "knife", "apron", "skillet", "steamer", "gift ideas"]
CARRIERS = ["dhl", "ups", "postnl", "dpd"]
CARDS = ["4242", "0002", "9995", "1881", "0341"]
USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "shop-android/5.12.1 okhttp/4.12.0",
]


class Outcome:
    """Result of a handler: end time, HTTP status, and an optional error description."""

    __slots__ = ("end", "error_type", "message", "status")

    def __init__(self, end: int, status: int, error_type: str | None = None, message: str = ""):
        self.end = end
        self.status = status
        self.error_type = error_type
        self.message = message


class Simulation:
    def __init__(self, seed: int, start_ns: int, rate: float) -> None:
        self.rng = random.Random(seed)
        self.ids_rng = random.Random(f"ids-{seed}")
        random.seed(seed)  # the SDK's exemplar reservoirs use the global generator
        self.clock = SimClock(start_ns)
        install_metric_clock(self.clock)
        self.next_arrival = start_ns
        self.rate = rate
        self.id_generator = SeededIdGenerator(self.ids_rng)
        self.sampler = TenantSampler()
        self.span_exporter = InMemorySpanExporter()
        self.log_exporter = InMemoryLogExporter()
        self.order_seq = 0
        self.kafka_offset = 1_730_000_000
        self.shipment_seq = 120_000
        self.last_failed_checkout: trace.SpanContext | None = None
        self.force: str | None = None
        self.n_requests = 0
        self.deck = [
            ("product", "db_timeout"),
            ("product", "not_found"),
            ("checkout", "out_of_stock"),
            ("checkout", "card_declined"),
            ("checkout", "payment_timeout"),
            ("checkout", "duplicate_shipment"),
        ] * 2
        self.rng.shuffle(self.deck)
        self.recent_orders: list[str] = []
        self.stock = {f"SKU-{10000 + i}": 40 + (i * 7) % 60 for i in range(24)}
        self.products = {
            1000 + i * 37: (PRODUCT_NAMES[i % len(PRODUCT_NAMES)], 900 + (i * 613) % 12000) for i in range(60)
        }

        self.frontend = Service(self, "frontend", "2.14.0", 8080)
        self.catalog = Service(self, "catalog", "1.9.3", 8080)
        self.inventory = Service(self, "inventory", "1.4.0", 8080)
        self.checkout = Service(self, "checkout", "3.2.1", 8080)
        self.payment = Service(self, "payment", "1.22.0", 8080)
        self.worker = Service(self, "order-worker", "0.8.5", 0)
        self.services = [
            self.frontend,
            self.catalog,
            self.inventory,
            self.checkout,
            self.payment,
            self.worker,
        ]

        m = self.checkout.meter
        self.m_orders = m.create_counter("app.orders.placed", unit="{order}")
        self.m_cart_items = self.frontend.meter.create_up_down_counter(
            "app.cart.items", unit="{item}", description="Items sitting in shopping carts."
        )
        self.m_reserved = self.inventory.meter.create_up_down_counter(
            "app.inventory.reserved", unit="{item}", description="Units reserved for orders."
        )
        self.inventory.meter.create_observable_gauge(
            "app.inventory.stock_level",
            callbacks=[self._observe_stock],
            unit="{item}",
            description="Units in stock per warehouse.",
        )
        self.m_payment_amount = self.payment.meter.create_histogram(
            "app.payment.amount",
            unit="EUR",
            explicit_bucket_boundaries_advisory=(10, 25, 50, 100, 250, 500, 1000),
        )
        wm = self.worker.meter
        self.m_sent = self.checkout.meter.create_counter("messaging.client.sent.messages", unit="{message}")
        self.m_consumed = wm.create_counter("messaging.client.consumed.messages", unit="{message}")
        self.m_process = wm.create_histogram(
            "messaging.process.duration",
            unit="s",
            explicit_bucket_boundaries_advisory=HTTP_BUCKETS_S,
        )
        self.m_shipments = wm.create_counter("app.shipments.created", unit="{shipment}")

        # carts that were already filled before the simulated period
        self.m_cart_items.add(self.rng.randint(80, 200), {"app.cart.source": "web"})

        t = start_ns - 5 * SEC
        for svc in self.services:
            t += self.rng.randint(50, 900) * MS
            where = (
                f"listening on 0.0.0.0:{svc.port}, 4 workers"
                if svc.port
                else "consuming topic orders as group fulfillment"
            )
            svc.emit(
                None,
                t,
                SeverityNumber.INFO,
                f"{svc.name} {svc.resource.attributes['service.version']} started, {where}",
                {"code.function.name": "main", "process.pid": self.rng.randint(7, 60)},
            )

    @staticmethod
    def temporality_for(service: str) -> dict[type, AggregationTemporality] | None:
        if service != "order-worker":
            return None  # the SDK default: cumulative for everything
        delta = AggregationTemporality.DELTA
        return {
            Counter: delta,
            Histogram: delta,
            ObservableCounter: delta,
            UpDownCounter: AggregationTemporality.CUMULATIVE,
            ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
            ObservableGauge: AggregationTemporality.CUMULATIVE,
        }

    def _observe_stock(self, _options):
        total = sum(self.stock.values())
        yield Observation(int(total * 0.62), {"app.warehouse": "ams-1"})
        yield Observation(total - int(total * 0.62), {"app.warehouse": "fra-2"})

    # ------------------------------------------------------------------ helpers

    def fails(self, scenario: str, probability: float) -> bool:
        """Whether this request hits ``scenario``: forced by the deck, else by chance."""
        if self.force is not None:
            return self.force == scenario
        return self.rng.random() < probability

    def dur(self, lo_ms: float, hi_ms: float) -> int:
        """A right-skewed duration in ns between lo and (mostly) hi milliseconds."""
        r = self.rng.random()
        return int((lo_ms + (hi_ms - lo_ms) * r * r) * MS)

    def new_order_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def http(
        self,
        caller: Service,
        parent,
        callee: Service | None,
        method: str,
        route: str,
        path: str,
        t0: int,
        handler: Callable[[Any, int], Outcome] | None,
        timeout_ms: int | None = None,
        host: str | None = None,
    ) -> Outcome:
        """A CLIENT span in ``caller`` and, if ``callee`` is given, its SERVER span.

        The trace context crosses the hop through W3C traceparent/tracestate headers,
        so the server's parent is a remote span context, as in a real deployment.
        """
        rng = self.rng
        host = host or callee.host
        port = 443 if callee is None else callee.port
        scheme = "https" if callee is None else "http"
        url = f"{scheme}://{host}{'' if callee is None else f':{port}'}{path}"
        cspan = caller.t_client.start_span(
            method,
            context=trace.set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            start_time=t0,
            attributes={
                "http.request.method": method,
                "url.full": url,
                "server.address": host,
                "server.port": port,
            },
        )
        latency = rng.randint(200, 1500) * 1000
        if callee is not None:
            headers: dict[str, str] = {}
            PROPAGATOR.inject(headers, context=trace.set_span_in_context(cspan))
            ctx = PROPAGATOR.extract(headers)
            ts = t0 + latency
            sspan = callee.t_server.start_span(
                f"{method} {route}",
                context=ctx,
                kind=SpanKind.SERVER,
                start_time=ts,
                attributes={
                    "http.request.method": method,
                    "http.route": route,
                    "url.path": path,
                },
            )
            out = handler(sspan, ts + rng.randint(50, 400) * 1000) if handler else None
            if out is None:
                out = Outcome(ts + self.dur(0.5, 4), 200)
            self.finish_server(callee, sspan, method, route, out)
            callee.cpu_seconds += (out.end - ts) / SEC * 0.3
        else:  # an external API: no server span of ours
            out = handler(None, t0) if handler else Outcome(t0 + self.dur(80, 400), 200)

        c_end = out.end + rng.randint(200, 1500) * 1000
        status = out.status
        if timeout_ms is not None and c_end - t0 > timeout_ms * MS:
            c_end = t0 + timeout_ms * MS
            exc = make_exception(
                "requests.exceptions",
                "ReadTimeout",
                f"upstream request timeout after {timeout_ms} ms: {method} {url}",
            )
            record_failure(
                cspan,
                exc,
                c_end,
                [
                    (f"/app/{caller.name}/clients.py", 57, "call"),
                    ("/usr/local/lib/python3.12/site-packages/requests/adapters.py", 713, "send"),
                ],
            )
            cspan.set_attribute("error.type", "requests.exceptions.ReadTimeout")
            cspan.set_status(StatusCode.ERROR, f"ReadTimeout: {exc}")
            status = 504
            out = Outcome(c_end, 504, "requests.exceptions.ReadTimeout", str(exc))
        else:
            cspan.set_attribute("http.response.status_code", status)
            if status >= 400:
                cspan.set_attribute("error.type", str(status))
                cspan.set_status(StatusCode.ERROR)
        cspan.end(end_time=c_end)
        self.clock.now = c_end
        if callee is None:  # client-side duration only for third-party APIs (keeps it small)
            attrs = {
                "http.request.method": method,
                "server.address": host,
                "http.response.status_code": status,
            }
            caller.m_client_duration.record((c_end - t0) / SEC, attrs, context=trace.set_span_in_context(cspan))
        return Outcome(c_end, status, out.error_type, out.message)

    def finish_server(self, svc: Service, span, method: str, route: str, out: Outcome) -> None:
        span.set_attribute("http.response.status_code", out.status)
        if out.status >= 500:
            span.set_attribute("error.type", out.error_type or str(out.status))
            span.set_status(StatusCode.ERROR, out.message or None)
        span.end(end_time=out.end)
        self.clock.now = out.end
        ctx = trace.set_span_in_context(span)
        attrs = {
            "http.request.method": method,
            "http.route": route,
            "http.response.status_code": out.status,
            "url.scheme": span.attributes.get("url.scheme", "http"),
        }
        start = span.start_time
        svc.m_server_duration.record((out.end - start) / SEC, attrs, context=ctx)

    def db(
        self,
        svc: Service,
        parent,
        t0: int,
        operation: str,
        table: str,
        query: str,
        lo_ms: float = 0.4,
        hi_ms: float = 6.0,
        fail: Exception | None = None,
        rows: int | None = None,
        fail_ms: float = 3000,
    ) -> tuple[int, Any]:
        """A PostgreSQL CLIENT span (stable and old database semconv, as 'dup' mode emits)."""
        host = DB_HOSTS.get(svc.name, "10.0.0.16")
        end = t0 + (int(fail_ms * MS) if fail is not None else self.dur(lo_ms, hi_ms))
        attrs = {
            "db.system": "postgresql",
            "db.operation.name": operation,
            "db.collection.name": table,
            "db.query.text": query,
            "server.address": host,
            "server.port": 5432,
        }
        if rows is not None and rows != 1:
            attrs["db.response.returned_rows"] = rows
        span = svc.t_pg.start_span(
            f"{operation} shop.{table}",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            start_time=t0,
            attributes=attrs,
        )
        if fail is not None:
            t = type(fail)
            record_failure(
                span,
                fail,
                end,
                [
                    (f"/app/{svc.name}/repository.py", 42, "fetch_one"),
                    ("/usr/local/lib/python3.12/site-packages/psycopg/cursor.py", 97, "execute"),
                ],
            )
            span.set_attribute("error.type", f"{t.__module__}.{t.__qualname__}")
            span.set_status(StatusCode.ERROR, str(fail))
        span.end(end_time=end)
        self.clock.now = end
        svc.m_db_duration.record(
            (end - t0) / SEC,
            {
                "db.system": "postgresql",
                "db.operation.name": operation,
                "db.collection.name": table,
            },
            context=trace.set_span_in_context(span),
        )
        return end, span

    def redis(self, svc: Service, parent, t0: int, command: str, key: str, extra: str = "") -> int:
        end = t0 + self.dur(0.1, 1.5)
        span = svc.t_redis.start_span(
            command,
            context=trace.set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            start_time=t0,
            attributes={
                "db.system": "redis",
                "db.operation.name": command,
                "db.query.text": f"{command} {key}{extra}",
                "server.address": "redis-cart",
            },
        )
        span.end(end_time=end)
        return end

    # ------------------------------------------------------------------ requests

    def run_request(self) -> None:
        rng = self.rng
        self.next_arrival += int(rng.expovariate(self.rate) * SEC) + 1
        t0 = self.next_arrival
        self.clock.now = t0
        # the first requests play through a shuffled deck of scenarios, so that even a
        # small sample holds every failure mode (twice, with different ids); the rest
        # of the run is random with realistic error rates
        self.force = None
        self.n_requests += 1
        if self.deck and self.n_requests % 2 == 1:
            kind, self.force = self.deck.pop()
            r = {"product": 0.0, "checkout": 0.8}[kind]
        else:
            r = rng.random()
        if r < 0.42:
            self.req_product(t0)
        elif r < 0.54:
            self.req_search(t0)
        elif r < 0.74:
            self.req_add_to_cart(t0)
        elif r < 0.94:
            self.req_checkout(t0)
        else:
            self.req_order_status(t0)

    def root(self, method: str, route: str, path: str, t0: int, links=None, query: str = ""):
        rng = self.rng
        attrs = {
            "http.request.method": method,
            "http.route": route,
            "url.path": path,
            "url.scheme": "https",
            "server.address": "shop.example.com",
            "server.port": 443,
            "client.address": f"203.0.113.{rng.randint(1, 254)}",
            "user_agent.original": rng.choice(USER_AGENTS),
        }
        if query:
            attrs["url.query"] = query
        return self.frontend.t_server.start_span(
            f"{method} {route}",
            context=Context(),
            kind=SpanKind.SERVER,
            start_time=t0,
            attributes=attrs,
            links=links,
        )

    def finish_root(self, span, method: str, route: str, path: str, out: Outcome) -> None:
        fe = self.frontend
        self.finish_server(fe, span, method, route, out)
        fe.cpu_seconds += (out.end - span.start_time) / SEC * 0.05
        ms = (out.end - span.start_time) / MS
        sev = (
            SeverityNumber.ERROR
            if out.status >= 500
            else SeverityNumber.WARN
            if out.status >= 400
            else SeverityNumber.INFO
        )
        fe.emit(
            span,
            out.end,
            sev,
            f'"{method} {path} HTTP/2" {out.status} {REASONS.get(out.status, "")} {ms:.1f} ms',
            {"http.request.method": method, "http.response.status_code": out.status},
        )

    def catalog_lookup(self, parent, t: int, product_id: int) -> Outcome:
        """catalog: GET /api/products/{id} -> PostgreSQL (may time out)."""
        cat = self.catalog
        if self.fails("db_timeout", 0.05):
            host = DB_HOSTS["catalog"]
            exc = make_exception(
                "psycopg",
                "OperationalError",
                f"connection timeout after 3000 ms connecting to {host}:5432",
            )
            end, _ = self.db(
                cat,
                parent,
                t,
                "SELECT",
                "products",
                "SELECT id, name, price_cents, stock FROM products WHERE id = $1",
                fail=exc,
            )
            cat.emit(
                parent,
                end,
                SeverityNumber.ERROR,
                f"database unavailable while loading product {product_id}: "
                f"timeout after 3000 ms connecting to {host}:5432",
                {"app.product.id": product_id},
                exception=exc,
            )
            parent.record_exception(exc, timestamp=end + 100_000, escaped=True)
            return Outcome(end + 300_000, 503, "psycopg.OperationalError", f"OperationalError: {exc}")
        end, _ = self.db(
            cat,
            parent,
            t,
            "SELECT",
            "products",
            "SELECT id, name, price_cents, stock FROM products WHERE id = $1",
            rows=1 if product_id in self.products else 0,
        )
        if product_id not in self.products:
            cat.emit(parent, end, SeverityNumber.DEBUG, f"product {product_id} not found", None)
            return Outcome(end + 200_000, 404)
        end2 = end
        if self.rng.random() < 0.3:
            end2, _ = self.db(
                cat,
                parent,
                end + 50_000,
                "SELECT",
                "reviews",
                "SELECT avg(stars), count(*) FROM reviews WHERE product_id = $1",
            )
        parent.set_attribute("app.product.name", self.products[product_id][0])
        return Outcome(end2 + self.dur(0.2, 2), 200)

    def req_product(self, t0: int) -> None:
        rng = self.rng
        missing = self.fails("not_found", 0.05)
        pid = rng.randint(1, 999) if missing else rng.choice(list(self.products))
        path = f"/products/{pid}"
        root = self.root("GET", "/products/{id}", path, t0)
        t = t0 + rng.randint(100, 600) * 1000
        t = self.redis(self.frontend, root, t, "GET", f"product:{pid}")
        if self.force is None and rng.random() < 0.4:
            root.set_attribute("app.cache.hit", True)
            out = Outcome(t + self.dur(1, 4), 200)
        else:
            root.set_attribute("app.cache.hit", False)
            root.add_event("cache.miss", {"cache.key": f"product:{pid}"}, timestamp=t)
            out = self.http(
                self.frontend,
                root,
                self.catalog,
                "GET",
                "/api/products/{id}",
                f"/api/products/{pid}",
                t,
                lambda span, ts: self.catalog_lookup(span, ts, pid),
            )
            if out.status >= 500:
                out = Outcome(out.end + 200_000, 502, out.error_type, f"catalog returned {out.status}")
            else:
                out = Outcome(out.end + self.dur(1, 6), out.status)
        root.set_attribute("app.product.id", pid)
        self.finish_root(root, "GET", "/products/{id}", path, out)

    def req_search(self, t0: int) -> None:
        rng = self.rng
        term = rng.choice(SEARCH_TERMS)
        page = rng.randint(1, 4)
        root = self.root("GET", "/search", "/search", t0, query=f"q={term}&page={page}")

        def handler(span, ts):
            rows = rng.randint(0, 24)
            end, _ = self.db(
                self.catalog,
                span,
                ts,
                "SELECT",
                "products",
                "SELECT id, name, price_cents FROM products WHERE name ILIKE $1 ORDER BY rank DESC LIMIT 24 OFFSET $2",
                2,
                40,
                rows=rows,
            )
            span.set_attribute("app.search.results", rows)
            return Outcome(end + self.dur(0.3, 3), 200)

        out = self.http(
            self.frontend,
            root,
            self.catalog,
            "GET",
            "/api/search",
            "/api/search",
            t0 + 300_000,
            handler,
        )
        root.set_attribute("app.search.page", page)
        self.finish_root(root, "GET", "/search", "/search", Outcome(out.end + self.dur(1, 5), out.status))

    def req_add_to_cart(self, t0: int) -> None:
        rng = self.rng
        sku = rng.choice(list(self.stock))
        qty = rng.randint(1, 3)
        user = rng.randint(100_000, 999_999)
        path = f"/cart/{user}/items"
        root = self.root("POST", "/cart/{user_id}/items", path, t0)
        root.set_attributes({"app.user.id": user, "app.cart.sku": sku, "app.cart.quantity": qty})

        def stock_handler(span, ts):
            end = self.redis(self.inventory, span, ts, "HGET", f"stock:{sku}", " available")
            span.set_attribute("app.inventory.available", self.stock[sku])
            return Outcome(end + self.dur(0.2, 1.5), 200)

        out = self.http(
            self.frontend,
            root,
            self.inventory,
            "GET",
            "/api/stock/{sku}",
            f"/api/stock/{sku}",
            t0 + 200_000,
            stock_handler,
        )
        t = self.redis(self.frontend, root, out.end + 100_000, "HINCRBY", f"cart:{user}", f" {sku} {qty}")
        self.clock.now = t
        self.m_cart_items.add(qty, {"app.cart.source": "web"}, context=trace.set_span_in_context(root))
        self.finish_root(root, "POST", "/cart/{user_id}/items", path, Outcome(t + self.dur(0.5, 3), 201))

    def req_order_status(self, t0: int) -> None:
        rng = self.rng
        order_id = rng.choice(self.recent_orders) if self.recent_orders else self.new_order_id()
        path = f"/orders/{order_id}"
        root = self.root("GET", "/orders/{order_id}", path, t0)

        def handler(span, ts):
            found = order_id in self.recent_orders
            end, _ = self.db(
                self.checkout,
                span,
                ts,
                "SELECT",
                "orders",
                "SELECT o.id, o.status, o.total_cents, s.carrier FROM orders o "
                "LEFT JOIN shipments s ON s.order_id = o.id WHERE o.id = $1",
                rows=int(found),
            )
            return Outcome(end + self.dur(0.2, 2), 200 if found else 404)

        out = self.http(
            self.frontend,
            root,
            self.checkout,
            "GET",
            "/api/orders/{order_id}",
            f"/api/orders/{order_id}",
            t0 + 250_000,
            handler,
        )
        self.finish_root(root, "GET", "/orders/{order_id}", path, Outcome(out.end + self.dur(0.5, 3), out.status))

    # ------------------------------------------------------------------ checkout

    def req_checkout(self, t0: int) -> None:
        rng = self.rng
        links = None
        if self.last_failed_checkout is not None and rng.random() < 0.6:
            links = [
                Link(
                    self.last_failed_checkout,
                    {"app.link.reason": "client_retry", "app.retry.attempt": 2},
                )
            ]
            self.last_failed_checkout = None
        root = self.root("POST", "/checkout", "/checkout", t0, links=links)
        user = rng.randint(100_000, 999_999)
        n = rng.randint(1, 3)
        skus = rng.sample(list(self.stock), n)
        qtys = [rng.randint(1, 3) for _ in skus]
        total = round(sum(rng.randint(500, 9000) for _ in skus) / 100 * 1.21, 2)
        order_id = self.new_order_id()
        self.order_seq += 1
        root.set_attributes({"app.user.id": user, "app.cart.is_guest": rng.random() < 0.25})

        out = self.http(
            self.frontend,
            root,
            self.checkout,
            "POST",
            "/api/orders",
            "/api/orders",
            t0 + rng.randint(300, 900) * 1000,
            lambda span, ts: self.checkout_handler(span, ts, order_id, user, skus, qtys, total),
            timeout_ms=10_000,
        )
        status = out.status
        if status >= 500:
            status = 502 if status != 504 else 504
        final = Outcome(out.end + self.dur(1, 8), status, out.error_type, out.message)
        if status >= 400:
            self.last_failed_checkout = root.get_span_context()
        self.finish_root(root, "POST", "/checkout", "/checkout", final)

    def checkout_handler(self, span, t, order_id, user, skus, qtys, total) -> Outcome:
        rng = self.rng
        co = self.checkout
        ctx_attrs = {
            "app.order.id": order_id,
            "app.order.sequence": BIG_INT + self.order_seq * 2,
            "app.order.total": total,
            "app.order.currency": "EUR",
        }
        span.set_attributes(ctx_attrs)
        # the cart, with arrays of every scalar type
        span.set_attributes(
            {
                "app.cart.item_count": len(skus),
                "app.cart.item_skus": skus,
                "app.cart.quantities": qtys,
                "app.cart.unit_prices": [round(rng.uniform(4, 90), 2) for _ in skus],
                "app.cart.gift_wrap": [rng.random() < 0.1 for _ in skus],
            }
        )
        t = t + self.dur(0.1, 1.2)

        # reserve stock
        def reserve(ispan, ts):
            inv = self.inventory
            for sku, q in zip(skus, qtys, strict=True):
                if self.stock[sku] < q or self.fails("out_of_stock", 0.01):
                    avail = min(self.stock[sku], q - 1)
                    exc = make_exception(
                        "inventory.errors",
                        "OutOfStockError",
                        f"insufficient stock for sku {sku}: requested {q}, available {avail}",
                    )
                    ispan.record_exception(exc, timestamp=ts, attributes={"app.cart.sku": sku})
                    ispan.set_status(StatusCode.ERROR, str(exc))
                    inv.emit(ispan, ts, SeverityNumber.WARN, str(exc), {"app.order.id": order_id})
                    return Outcome(ts + self.dur(0.2, 1), 409)
            ts, _ = self.db(
                inv,
                ispan,
                ts,
                "UPDATE",
                "stock",
                "UPDATE stock SET reserved = reserved + q.qty "
                "FROM unnest($1::text[], $2::int[]) AS q(sku, qty) WHERE stock.sku = q.sku",
                rows=len(skus),
            )
            units = sum(qtys)
            for sku, q in zip(skus, qtys, strict=True):
                self.stock[sku] -= q
                if self.stock[sku] < 5:
                    self.stock[sku] += 50  # a delivery arrived
            ictx = trace.set_span_in_context(ispan)
            self.m_reserved.add(units, {"app.warehouse": "ams-1"}, context=ictx)
            inv.emit(
                ispan,
                ts,
                SeverityNumber.INFO,
                f"reserved {units} units of {len(skus)} skus for order {order_id}",
                {"app.order.id": order_id, "app.inventory.delta": -units},
            )
            return Outcome(ts + self.dur(0.2, 1), 201)

        out = self.http(co, span, self.inventory, "POST", "/api/reservations", "/api/reservations", t, reserve)
        if out.status != 201:
            self.m_orders.add(1, {"app.outcome": "out_of_stock", "app.payment.method": "card"})
            return Outcome(out.end + self.dur(0.3, 2), 409)

        # charge the card
        card = rng.choice(CARDS)
        out = self.http(
            co,
            span,
            self.payment,
            "POST",
            "/api/charges",
            "/api/charges",
            out.end + 100_000,
            lambda pspan, ts: self.payment_handler(pspan, ts, order_id, card, total),
            timeout_ms=5000,
        )
        if out.status == 504:
            co.emit(
                span,
                out.end,
                SeverityNumber.ERROR,
                f"payment call failed for order {order_id}: {out.message}",
                {"app.order.id": order_id},
            )
            self.m_orders.add(1, {"app.outcome": "payment_timeout", "app.payment.method": "card"})
            return Outcome(out.end + 300_000, 504, out.error_type, out.message)
        if out.status == 402:
            self.m_orders.add(1, {"app.outcome": "declined", "app.payment.method": "card"})
            return Outcome(out.end + 200_000, 402)

        # persist and publish
        t, _ = self.db(
            co,
            span,
            out.end + 80_000,
            "INSERT",
            "orders",
            "INSERT INTO orders (id, user_id, total_cents, currency, status) VALUES ($1, $2, $3, $4, 'paid')",
            rows=1,
        )
        self.recent_orders.append(order_id)
        del self.recent_orders[:-50]
        ctx = trace.set_span_in_context(span)
        self.clock.now = t
        self.m_orders.add(1, {"app.outcome": "placed", "app.payment.method": "card"}, context=ctx)
        self.m_cart_items.add(-sum(qtys), {"app.cart.source": "web"}, context=ctx)
        span.add_event("order.created", {"app.order.id": order_id, "app.order.total": total}, t)
        co.emit(
            span,
            t,
            SeverityNumber.INFO,
            {
                "message": "order created",
                "order_id": order_id,
                "user_id": user,
                "items": [{"sku": s, "qty": q} for s, q in zip(skus, qtys, strict=True)],
                "total": total,
                "currency": "EUR",
                "paid": True,
            },
            {"app.order.id": order_id},
            event_name="shop.order.created",
        )
        t = self.publish_order(span, t + 50_000, order_id, user, len(skus))
        return Outcome(t + self.dur(0.3, 2), 201)

    def payment_handler(self, span, t, order_id, card, total) -> Outcome:
        rng = self.rng
        pay = self.payment
        charge = pay.t_app.start_span(
            "charge card",
            context=trace.set_span_in_context(span),
            start_time=t,
            attributes={
                "payment.ledger.account_id": BIG_INT,
                "payment.amount_cents": round(total * 100),
                "payment.currency": "EUR",
                "payment.card.last4": card,
                "payment.card.network": "visa" if card.startswith("4") else "mastercard",
                "payment.3ds.required": total > 150,
                "app.order.id": order_id,
            },
        )
        score = round(rng.random() * 0.6, 3)
        charge.add_event("fraud.check", {"fraud.score": score, "fraud.rules_evaluated": 37}, t + 200_000)
        slow = self.fails("payment_timeout", 0.035)
        declined = not slow and self.fails("card_declined", 0.07)

        def gateway(_none, ts):
            end = ts + (self.dur(5200, 7000) if slow else self.dur(90, 450))
            return Outcome(end, 402 if declined else 200)

        out = self.http(
            pay,
            charge,
            None,
            "POST",
            "",
            "/v1/charges",
            t + 300_000,
            gateway,
            host="api.payments.example",
        )
        t = out.end
        ctx = trace.set_span_in_context(charge)
        if declined:
            exc = make_exception(
                "payment.gateway",
                "CardDeclinedError",
                f"card {card} declined for order {order_id}: insufficient_funds",
            )
            record_failure(
                charge,
                exc,
                t,
                [
                    ("/app/payment/api.py", 131, "create_charge"),
                    ("/app/payment/gateway.py", 88, "charge"),
                ],
                **{"payment.decline_code": "insufficient_funds"},
            )
            charge.set_status(StatusCode.ERROR, str(exc))
            pay.emit(
                charge,
                t,
                SeverityNumber.WARN,
                str(exc),
                {"app.order.id": order_id, "payment.decline_code": "insufficient_funds"},
                exception=exc,
            )
            charge.end(end_time=t + 100_000)
            return Outcome(t + 300_000, 402)
        charge.add_event("payment.authorized", {"payment.authorization_code": f"A{rng.randint(10000, 99999)}"}, t)
        charge.end(end_time=t + 100_000)
        self.clock.now = t
        self.m_payment_amount.record(total, {"payment.currency": "EUR"}, context=ctx)
        charge_id = f"ch_{rng.getrandbits(64):016x}"
        pay.emit(
            charge,
            t,
            SeverityNumber.INFO,
            f"charge {charge_id} authorized for order {order_id}: {total:.2f} EUR",
            {"app.order.id": order_id},
        )
        return Outcome(t + self.dur(0.5, 3), 200)

    def publish_order(self, parent, t: int, order_id: str, user: int, items: int) -> int:
        rng = self.rng
        co = self.checkout
        self.kafka_offset += rng.randint(1, 40)
        partition = rng.randint(0, 5)
        msg_id = f"{order_id}:{self.order_seq}"
        prod = co.t_kafka.start_span(
            "send orders",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.PRODUCER,
            start_time=t,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": "orders",
                "messaging.operation.type": "send",
                "messaging.operation.name": "send",
                "messaging.destination.partition.id": str(partition),
                "messaging.kafka.message.key": order_id,
                "messaging.message.id": msg_id,
                "messaging.message.body.size": 310 + items * 48,
                "server.address": "kafka-0.kafka",
                "server.port": 9092,
            },
        )
        end = t + self.dur(0.8, 6)
        prod.end(end_time=end)
        self.clock.now = end
        self.m_sent.add(1, {"messaging.system": "kafka", "messaging.destination.name": "orders"})

        # the message crosses Kafka in its headers; the worker continues the trace and
        # links the producer's context, as the messaging conventions recommend
        headers: dict[str, str] = {}
        PROPAGATOR.inject(headers, context=trace.set_span_in_context(prod))
        ctx = PROPAGATOR.extract(headers)
        producer_ctx = trace.get_current_span(ctx).get_span_context()
        self.consume_order(ctx, producer_ctx, end + self.dur(3, 400), order_id, msg_id, partition)
        return end

    def consume_order(self, ctx, producer_ctx, t: int, order_id: str, msg_id: str, partition: int):
        rng = self.rng
        wk = self.worker
        span = wk.t_kafka.start_span(
            "process orders",
            context=ctx,
            kind=SpanKind.CONSUMER,
            start_time=t,
            links=[Link(producer_ctx, {"messaging.message.id": msg_id})],
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": "orders",
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
                "messaging.consumer.group.name": "fulfillment",
                "messaging.destination.partition.id": str(partition),
                "messaging.kafka.offset": self.kafka_offset,
                "messaging.message.id": msg_id,
            },
        )
        t2 = t + self.dur(0.2, 2)
        carrier = rng.choice(CARRIERS)
        dims = [round(rng.uniform(10, 60), 1) for _ in range(3)]
        span.set_attributes({"app.shipping.carrier": carrier, "app.shipping.box_dims_cm": dims})
        t2 += self.dur(1, 20)
        duplicate = self.fails("duplicate_shipment", 0.04)
        if duplicate:
            exc = make_exception(
                "psycopg.errors",
                "UniqueViolation",
                'duplicate key value violates unique constraint "shipments_order_id_key"\n'
                f"DETAIL:  Key (order_id)=({order_id}) already exists.",
            )
            t2, _ = self.db(
                wk,
                span,
                t2,
                "INSERT",
                "shipments",
                "INSERT INTO shipments (id, order_id, carrier) VALUES ($1, $2, $3)",
                fail=exc,
                fail_ms=self.dur(0.6, 4) / MS,
            )
            span.record_exception(exc, timestamp=t2)
            span.set_status(StatusCode.ERROR, f"UniqueViolation: {str(exc).splitlines()[0]}")
            wk.emit(
                span,
                t2,
                SeverityNumber.ERROR,
                f"could not create shipment for order {order_id} (offset {self.kafka_offset})",
                {"app.order.id": order_id, "messaging.kafka.offset": self.kafka_offset},
                exception=exc,
            )
        else:
            self.shipment_seq += 1
            t2, _ = self.db(
                wk,
                span,
                t2,
                "INSERT",
                "shipments",
                "INSERT INTO shipments (id, order_id, carrier) VALUES ($1, $2, $3)",
                rows=1,
            )
            wk.emit(
                span,
                t2,
                SeverityNumber.INFO,
                f"shipment {self.shipment_seq} created for order {order_id} via {carrier}",
                {"app.order.id": order_id, "app.shipping.carrier": carrier},
            )
        span.add_event("message.acknowledged", {"messaging.kafka.offset": self.kafka_offset}, t2)
        end = t2 + self.dur(0.2, 1.5)
        span.end(end_time=end)
        self.clock.now = end
        sctx = trace.set_span_in_context(span)
        labels = {"messaging.system": "kafka", "messaging.destination.name": "orders"}
        self.m_consumed.add(1, labels, context=sctx)
        self.m_process.record((end - t) / SEC, labels, context=sctx)
        if not duplicate:
            self.m_shipments.add(1, {"app.shipping.carrier": carrier}, context=sctx)
        wk.cpu_seconds += (end - t) / SEC * 0.4

    # ------------------------------------------------------------------ export

    def collect_metrics(self) -> MetricsData:
        self.clock.now = max(self.clock.now, self.next_arrival) + 1 * SEC
        for svc in self.services:
            svc.pool_used = self.rng.randint(0, 6)
        resource_metrics = []
        for svc in self.services:
            data = svc.reader.get_metrics_data()
            if data is not None:
                resource_metrics.extend(data.resource_metrics)
        return MetricsData(resource_metrics=resource_metrics)

    def shutdown(self) -> None:
        for svc in self.services:
            svc.shutdown()


# --------------------------------------------------------------------------- CLI


def parse_start(value: str | None, traces: int, rate: float) -> int:
    if value is None or value == "now":
        # end the simulated period around now, so 'last hour' queries find the data
        now = time.time_ns() // SEC * SEC
        return now - int(traces / rate * SEC) if value is None else now
    if value.lstrip("-").isdigit():
        n = int(value)
        return n if n > 10**14 else n * SEC  # Unix nanoseconds, or seconds
    ts = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return int(ts.timestamp()) * SEC + ts.microsecond * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Generate OTLP/JSON lines (one export request per line) with the OpenTelemetry Python SDK."
    )
    p.add_argument("--traces", type=int, default=30, help="simulated requests (traces)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output file ('-' for stdout)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--start",
        default=None,
        help="simulated start: RFC 3339 time, Unix seconds/nanoseconds or 'now' "
        "(default: so that the data ends about now; fix it for reproducible output)",
    )
    p.add_argument("--rate", type=float, default=2.0, help="requests per simulated second")
    p.add_argument("--batch", type=int, default=20, help="traces per spans/logs request line")
    p.add_argument(
        "--metrics-every",
        type=int,
        default=1000,
        help="collect metrics every N traces (and always once at the end)",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.traces < 0 or args.batch < 1 or args.rate <= 0:
        p.error("--traces must be >= 0, --batch >= 1, --rate > 0")

    start_ns = parse_start(args.start, args.traces, args.rate)
    began = time.perf_counter()
    sim = Simulation(args.seed, start_ns, args.rate)
    counts = {"lines": 0, "spans": 0, "logs": 0, "metric_points": 0, "metric_lines": 0}
    encode_s = 0.0

    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    try:

        def write(d: dict) -> None:
            out.write(dumps(d))
            out.write("\n")
            counts["lines"] += 1

        def flush_batch() -> None:
            nonlocal encode_s
            t = time.perf_counter()
            spans = sim.span_exporter.get_finished_spans()
            sim.span_exporter.clear()
            logs = sim.log_exporter.get_finished_logs()
            sim.log_exporter.clear()
            if spans:
                write(spans_request(spans))
                counts["spans"] += len(spans)
            if logs:
                write(logs_request(logs))
                counts["logs"] += len(logs)
            encode_s += time.perf_counter() - t

        def flush_metrics() -> None:
            nonlocal encode_s
            t = time.perf_counter()
            d, points = metrics_request(sim.collect_metrics())
            if points:
                write(d)
                counts["metric_points"] += points
                counts["metric_lines"] += 1
            encode_s += time.perf_counter() - t

        for i in range(1, args.traces + 1):
            sim.run_request()
            if i % args.batch == 0:
                flush_batch()
            if args.metrics_every and i % args.metrics_every == 0 and i != args.traces:
                flush_batch()
                flush_metrics()
        flush_batch()
        flush_metrics()
    finally:
        if out is not sys.stdout:
            out.close()
        sim.shutdown()

    elapsed = time.perf_counter() - began
    if not args.quiet:
        rate = counts["spans"] / elapsed if elapsed else 0.0
        print(
            f"wrote {counts['lines']} lines to {args.out}: {args.traces} traces, "
            f"{counts['spans']} spans, {counts['logs']} log records, "
            f"{counts['metric_points']} metric points in {counts['metric_lines']} export(s); "
            f"{elapsed:.2f} s ({rate:,.0f} spans/s, of which encoding {encode_s:.2f} s)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. `--out - | head`
        sys.stderr.close()
        sys.exit(1)
