"""`otel-db demo`: a small shop instrumented with the OpenTelemetry SDK.

Four services (frontend, checkout, payment, inventory) each have a tracer,
logger and meter provider exporting through otel_db's own exporters, as an
application would. Requests browse products or check out; some fail (a
declined card, a database timeout, a missing product) with exceptions and
correlated logs. Span times follow a simulated clock over the last minutes,
so durations look real without sleeping.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_db.exporters import LogExporter, MetricExporter, SpanExporter

SERVICES = ("frontend", "checkout", "payment", "inventory")
SKUS = ("SKU-1001", "SKU-2040", "SKU-3310", "SKU-4125", "SKU-5002")
DECLINES = ("card ending {card} declined: insufficient funds", "card ending {card} declined: do not honor")


@dataclass
class Service:
    """One instrumented service: its providers and instruments."""

    name: str
    dsn: str
    tracer_provider: TracerProvider = field(init=False)
    logger_provider: LoggerProvider = field(init=False)
    meter_provider: MeterProvider = field(init=False)

    def __post_init__(self) -> None:
        resource = Resource.create(
            {"service.name": self.name, "service.version": "1.4.2", "deployment.environment.name": "demo"}
        )
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer_provider.add_span_processor(BatchSpanProcessor(SpanExporter(self.dsn)))
        self.logger_provider = LoggerProvider(resource=resource)
        self.logger_provider.add_log_record_processor(BatchLogRecordProcessor(LogExporter(self.dsn)))
        # Exported when the demo asks (force_flush), not on a timer.
        self.reader = PeriodicExportingMetricReader(MetricExporter(self.dsn), export_interval_millis=3_600_000)
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[self.reader])
        self.tracer = self.tracer_provider.get_tracer("otel_db.demo", "1.0")
        meter = self.meter_provider.get_meter("otel_db.demo", "1.0")
        self.requests = meter.create_counter("app.requests", unit="{request}", description="Requests handled")
        self.duration = meter.create_histogram(
            "http.server.request.duration", unit="s", description="Duration of HTTP server requests"
        )
        self.log = logging.getLogger(f"otel_db.demo.{self.name}")
        self.log.propagate = False
        self.log.setLevel(logging.INFO)
        self.log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=self.logger_provider))

    def shutdown(self) -> None:
        for handler in list(self.log.handlers):
            self.log.removeHandler(handler)
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()


class Shop:
    """The simulated requests; `clock` is the simulated time in nanoseconds."""

    def __init__(self, dsn: str, seed: int, start_ns: int) -> None:
        self.rng = random.Random(seed)
        self.clock = start_ns
        self.services = {name: Service(name, dsn) for name in SERVICES}

    def ms(self, low: float, high: float) -> int:
        return int(self.rng.uniform(low, high) * 1_000_000)

    @contextmanager
    def span(self, service: str, name: str, parent, kind: SpanKind, attributes: dict, start: int) -> Iterator:
        tracer = self.services[service].tracer
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = tracer.start_span(name, context=context, kind=kind, attributes=attributes, start_time=start)
        with trace.use_span(span, end_on_exit=False):
            yield span

    def finish(self, span, end: int, error: Exception | None = None) -> None:
        if error is not None:
            span.record_exception(error, timestamp=end - 1000)
            span.set_status(Status(StatusCode.ERROR, str(error)))
        span.end(end_time=end)

    def server(self, service: str, method: str, route: str, parent, start: int):
        attributes = {"http.request.method": method, "http.route": route, "url.scheme": "https"}
        return self.span(service, f"{method} {route}", parent, SpanKind.SERVER, attributes, start)

    def record(self, service: str, route: str, status: int, seconds: float) -> None:
        attributes: dict[str, str | int] = {"http.route": route, "http.response.status_code": status}
        self.services[service].requests.add(1, attributes)
        self.services[service].duration.record(seconds, attributes)

    def browse(self) -> None:
        start = self.clock
        product = self.rng.choice(SKUS)
        with self.server("frontend", "GET", "/products/{id}", None, start) as root:
            root.set_attribute("url.path", f"/products/{product}")
            db_start = start + self.ms(1, 3)
            with self.span(
                "inventory",
                "SELECT shop.stock",
                root,
                SpanKind.CLIENT,
                {
                    "db.system.name": "postgresql",
                    "db.operation.name": "SELECT",
                    "db.collection.name": "stock",
                    "db.query.text": "select qty from stock where sku = $1",
                },
                db_start,
            ) as query:
                self.finish(query, db_start + self.ms(0.5, 4))
            missing = self.rng.random() < 0.08
            status = 404 if missing else 200
            root.set_attribute("http.response.status_code", status)
            if missing:
                self.services["frontend"].log.info("product %s not found", product)
            end = db_start + self.ms(5, 20)
            self.finish(root, end)
        self.record("frontend", "/products/{id}", status, (end - start) / 1e9)

    def checkout(self) -> None:
        start = self.clock
        order = f"{self.rng.getrandbits(32):08x}"
        card = f"{self.rng.randrange(10_000):04d}"
        status = 201
        error: Exception | None = None
        with self.server("frontend", "POST", "/checkout", None, start) as root:
            call = start + self.ms(1, 2)
            with self.server("checkout", "POST", "/api/orders", root, call) as orders:
                orders.set_attribute("app.order.id", order)
                reserve = call + self.ms(1, 3)
                with self.span(
                    "inventory",
                    "UPDATE shop.stock",
                    orders,
                    SpanKind.CLIENT,
                    {"db.system.name": "postgresql", "db.operation.name": "UPDATE", "db.collection.name": "stock"},
                    reserve,
                ) as update:
                    if self.rng.random() < 0.05:
                        error = TimeoutError("canceling statement due to statement timeout after 5000 ms")
                        self.services["inventory"].log.error("stock reservation for order %s timed out", order)
                        self.finish(update, reserve + self.ms(5000, 5010), error)
                        status, end = 503, reserve + self.ms(5012, 5020)
                    else:
                        self.finish(update, reserve + self.ms(2, 8))
                        self.services["inventory"].log.info("reserved stock for order %s", order)
                if error is None:
                    pay = reserve + self.ms(10, 12)
                    with self.server("payment", "POST", "/api/charges", orders, pay) as charge:
                        with self.span(
                            "payment",
                            "charge card",
                            charge,
                            SpanKind.INTERNAL,
                            {"app.payment.provider": "acme-pay", "app.payment.amount": 42.5},
                            pay + 100_000,
                        ) as card_span:
                            end = pay + self.ms(80, 240)
                            if self.rng.random() < 0.1:
                                message = self.rng.choice(DECLINES).format(card=card)
                                error = PermissionError(message)
                                self.services["payment"].log.warning("%s (order %s)", message, order)
                                self.finish(card_span, end - 200_000, error)
                                status = 402
                            else:
                                self.finish(card_span, end - 200_000)
                        charge.set_attribute("http.response.status_code", status)
                        self.finish(charge, end, error)
                orders.set_attribute("http.response.status_code", status)
                self.finish(orders, end + self.ms(1, 2), error if status >= 500 else None)
            root.set_attribute("http.response.status_code", status)
            end = end + self.ms(2, 4)
            self.finish(root, end)
        self.record("frontend", "/checkout", status, (end - start) / 1e9)

    def run(self, requests: int) -> None:
        for number in range(requests):
            (self.checkout if self.rng.random() < 0.4 else self.browse)()
            self.clock += self.ms(50, 400)
            if number % 100 == 99:  # metric points every 100 requests
                for service in self.services.values():
                    service.reader.force_flush()

    def shutdown(self) -> None:
        for service in self.services.values():
            service.shutdown()


def run_workload(dsn: str, requests: int = 400, seed: int = 7) -> None:
    """Run the shop for `requests` requests and export everything through otel_db's exporters."""
    # Simulated span times end about now, so the demo's queries can say "the last hour".
    shop = Shop(dsn, seed, start_ns=time.time_ns() - requests * 250_000_000)
    try:
        shop.run(requests)
    finally:
        shop.shutdown()
