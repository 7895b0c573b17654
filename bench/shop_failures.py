"""A shop of seven services, instrumented with the OpenTelemetry SDK, whose failures travel up the call tree.

Every service has its own TracerProvider (resource `service.name`); spans are
made through the API with parents passed in the context, as instrumented
services do across HTTP and gRPC (a client span in the caller, a server span
in the callee). Span times follow a simulated clock. The finished spans are
exported with otel_db's own `SpanExporter`, as an application would.

Requests:

- checkout: frontend POST /api/checkout -> checkout POST /orders, which
  inserts the order (postgresql), asks shipping for a quote (gRPC), reserves
  stock in inventory (HTTP; postgresql below it) and charges the card in
  payment (HTTP), which asks fraud for a score (HTTP) and calls the acme-pay
  gateway (gRPC);
- browse: frontend GET /products/{id} -> catalog, which tries its cache
  (redis) and reads postgresql;
- orders: frontend GET /account/orders -> checkout, which reads postgresql.

A failure is raised in one span (an exception event and status ERROR) and
travels up as real services pass it on: a handler that lets the exception
escape records it again on its server span (status 500); one that maps it to
an HTTP status answers 4xx (server span status unset, as the semantic
conventions say) or 5xx; the caller's client span gets ERROR with that
status; checkout wraps what its callees answered in an UpstreamServiceError
(502), the frontend answers 502 for any 5xx behind it. Different causes thus
end in the same status at the frontend (CardDeclined, FraudSuspected,
PaymentGatewayTimeout and CarrierUnavailable all as 502).

Noise that is not a failure: catalog cache misses record a handled KeyError
(status left unset), and a product that does not exist is a 404 (the
frontend's client span gets ERROR, nothing raised).

Each trace's ground truth (the exception type that started the failure and
the span that raised it) is returned as a `Label`; nothing in the data marks
it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

SERVICES = ("frontend", "checkout", "payment", "fraud", "inventory", "catalog", "shipping")
START_NS = 1_793_491_200_000_000_000  # 2026-11-01 00:00 UTC
SKUS = ("SKU-1001", "SKU-2040", "SKU-3310", "SKU-4125", "SKU-5002", "SKU-6718", "SKU-7090")
HTTP_REASONS = {402: "Payment Required", 403: "Forbidden", 409: "Conflict", 500: "Internal Server Error"}
HTTP_REASONS |= {502: "Bad Gateway", 504: "Gateway Timeout", 404: "Not Found"}


FLOWS = {
    "checkout": ("POST", "/api/checkout"),
    "browse": ("GET", "/products/{id}"),
    "orders": ("GET", "/account/orders"),
}
GRPC_NAMES = {0: "OK", 4: "DEADLINE_EXCEEDED", 14: "UNAVAILABLE"}


# The causes, as the services' code would raise them.
class CardDeclined(Exception):
    __module__ = "shop.payment.errors"


class FraudSuspected(Exception):
    __module__ = "shop.fraud.errors"


class PaymentGatewayTimeout(Exception):
    __module__ = "shop.payment.errors"


class OutOfStock(Exception):
    __module__ = "shop.inventory.errors"


class ReservationConflict(Exception):
    __module__ = "shop.inventory.errors"


class InventoryDbTimeout(Exception):
    __module__ = "shop.inventory.errors"


class CarrierUnavailable(Exception):
    __module__ = "shop.shipping.errors"


class QueryCanceled(Exception):
    __module__ = "psycopg.errors"


class DeadlockDetected(Exception):
    __module__ = "psycopg.errors"


class UpstreamServiceError(Exception):
    """How checkout passes on what a callee answered (not a cause of its own)."""

    __module__ = "shop.checkout.errors"


# ConnectionRefusedError is Python's own.
CAUSES: tuple[type[Exception], ...] = (
    CardDeclined,
    FraudSuspected,
    PaymentGatewayTimeout,
    OutOfStock,
    ReservationConflict,
    InventoryDbTimeout,
    CarrierUnavailable,
    QueryCanceled,
    DeadlockDetected,
    ConnectionRefusedError,
)
# Where a database failure may happen: (flow, the database span's place).
DB_PLACES = {
    QueryCanceled: ("browse", "orders"),
    DeadlockDetected: ("checkout",),
    ConnectionRefusedError: ("browse", "orders", "checkout"),
}


def exception_type(cause: type[BaseException]) -> str:
    """The exception.type the SDK records for an exception of this class."""
    module = cause.__module__
    return f"{module}.{cause.__qualname__}" if module and module != "builtins" else cause.__qualname__


def short_name(type_name: str | None) -> str:
    return "none" if type_name is None else type_name.rsplit(".", 1)[-1]


@dataclass
class Label:
    """A trace's ground truth: what failed first and where (None for a trace that did not fail)."""

    trace_id: str
    flow: str
    cause: str | None = None  # the exception.type recorded by the span that raised
    span_id: str | None = None
    service: str | None = None


class SeededIds(IdGenerator):
    """Trace and span ids from a seeded generator, so that a run gives the same ids every time."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def generate_span_id(self) -> int:
        return self.rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self.rng.getrandbits(128) or 1


@dataclass
class Outcome:
    """How a call ended, as its caller sees it."""

    end: int
    http_status: int = 200
    grpc_status: int = 0
    error: BaseException | None = None  # what escaped (re-recorded by the spans it passes through)


@dataclass
class Failure:
    """The failure planned for the current trace."""

    cause: type[Exception]
    place: str = ""
    label: Label | None = None


def _raised(error: BaseException) -> BaseException:
    """The exception with a traceback, as code that raised and caught it holds it."""
    try:
        raise error
    except BaseException as caught:
        return caught


@dataclass
class ShopFailures:
    """The simulated shop; `run(n)` makes n traces and returns their labels."""

    seed: int = 7
    error_rate: float = 0.3
    start_ns: int = START_NS
    rng: random.Random = field(init=False)
    clock: int = field(init=False)
    memory: InMemorySpanExporter = field(init=False)
    providers: dict[str, TracerProvider] = field(init=False)
    failure: Failure | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.clock = self.start_ns
        self.memory = InMemorySpanExporter()
        ids = SeededIds(self.seed + 1)
        self.providers = {}
        for name in SERVICES:
            resource = Resource.create(
                {"service.name": name, "service.version": "2.3.1", "deployment.environment.name": "bench"}
            )
            provider = TracerProvider(resource=resource, id_generator=ids)
            provider.add_span_processor(SimpleSpanProcessor(self.memory))
            self.providers[name] = provider
        self.tracers = {name: p.get_tracer(f"shop.{name}", "2.3.1") for name, p in self.providers.items()}

    # ------------------------------------------------------------------ spans

    def ms(self, low: float, high: float) -> int:
        return int(self.rng.uniform(low, high) * 1_000_000)

    def start(self, service: str, name: str, parent: Span | None, kind: SpanKind, attributes: dict, at: int) -> Span:
        context = trace.set_span_in_context(parent) if parent is not None else None
        return self.tracers[service].start_span(name, context=context, kind=kind, attributes=attributes, start_time=at)

    def raise_in(self, span: Span, service: str, error: BaseException, end: int) -> BaseException:
        """`span` raises `error`: an exception event and status ERROR; the trace's label points at it."""
        error = _raised(error)
        span.record_exception(error, timestamp=end - 1000, escaped=True)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        failure = self.failure
        if failure is not None and failure.label is not None and isinstance(error, failure.cause):
            failure.label.cause = exception_type(type(error))
            failure.label.span_id = f"{span.get_span_context().span_id:016x}"
            failure.label.service = service
        return error

    def escaped(self, span: Span, error: BaseException, end: int) -> None:
        """An exception passes through `span` (a `with start_as_current_span(...)` block): recorded again."""
        span.record_exception(error, timestamp=end - 500, escaped=True)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))

    def fails(self, place: str) -> type[Exception] | None:
        """The cause planned for `place` in this trace, if any."""
        failure = self.failure
        return failure.cause if failure is not None and failure.place == place else None

    def http_call(self, caller: str, callee: str, method: str, route: str, path: str, parent: Span, at: int, handler):
        """An HTTP call: the caller's client span, the callee's server span, `handler(server_span, start)`."""
        client = self.start(
            caller,
            method,
            parent,
            SpanKind.CLIENT,
            {
                "http.request.method": method,
                "server.address": callee,
                "server.port": 8080,
                "url.full": f"http://{callee}:8080{path}",
            },
            at,
        )
        server_start = at + self.ms(0.3, 1.2)
        server = self.start(
            callee,
            f"{method} {route}",
            client,
            SpanKind.SERVER,
            {"http.request.method": method, "http.route": route, "url.path": path, "url.scheme": "http"},
            server_start,
        )
        outcome: Outcome = handler(server, server_start + self.ms(0.1, 0.5))
        server_end = outcome.end + self.ms(0.1, 0.6)
        server.set_attribute("http.response.status_code", outcome.http_status)
        if outcome.error is not None:
            self.escaped(server, outcome.error, server_end)  # the framework records what escaped the handler
        elif outcome.http_status >= 500:
            server.set_status(Status(StatusCode.ERROR))
        server.end(end_time=server_end)
        client_end = server_end + self.ms(0.3, 1.2)
        client.set_attribute("http.response.status_code", outcome.http_status)
        if outcome.http_status >= 400:
            client.set_attribute("error.type", str(outcome.http_status))
            client.set_status(Status(StatusCode.ERROR))
        client.end(end_time=client_end)
        return Outcome(client_end, outcome.http_status)

    def grpc_call(self, caller: str, callee: str, service: str, method: str, parent: Span, at: int, handler):
        """A gRPC call: client span in the caller, server span in the callee."""
        name = f"{service}/{method}"
        rpc = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
        client = self.start(caller, name, parent, SpanKind.CLIENT, {**rpc, "server.address": callee}, at)
        server_start = at + self.ms(0.3, 1.0)
        server = self.start(callee, name, client, SpanKind.SERVER, rpc, server_start)
        outcome: Outcome = handler(server, server_start + self.ms(0.1, 0.4))
        server_end = outcome.end + self.ms(0.1, 0.5)
        server.set_attribute("rpc.grpc.status_code", outcome.grpc_status)
        if outcome.error is not None:
            self.escaped(server, outcome.error, server_end)
        server.end(end_time=server_end)
        client_end = server_end + self.ms(0.3, 1.0)
        client.set_attribute("rpc.grpc.status_code", outcome.grpc_status)
        if outcome.grpc_status != 0:
            client.set_status(Status(StatusCode.ERROR, f"StatusCode.{GRPC_NAMES[outcome.grpc_status]}"))
        client.end(end_time=client_end)
        return Outcome(client_end, grpc_status=outcome.grpc_status)

    def db_call(self, service: str, place: str, operation: str, table: str, query: str, parent: Span, at: int):
        """A postgresql client span; it raises the cause planned for `place`."""
        span = self.start(
            service,
            f"{operation} shop.{table}",
            parent,
            SpanKind.CLIENT,
            {
                "db.system.name": "postgresql",
                "db.operation.name": operation,
                "db.collection.name": table,
                "db.namespace": "shop",
                "db.query.text": query,
                "server.address": f"{service}-db",
                "server.port": 5432,
            },
            at,
        )
        cause = self.fails(place)
        if cause is None:
            end = at + self.ms(0.4, 6)
            span.end(end_time=end)
            return Outcome(end)
        if cause is QueryCanceled:
            error: Exception = QueryCanceled("canceling statement due to statement timeout")
            end = at + self.ms(5000, 5004)
        elif cause is DeadlockDetected:
            first, second = self.rng.randrange(1000, 60000), self.rng.randrange(1000, 60000)
            error = DeadlockDetected(
                f"deadlock detected\nDETAIL:  Process {first} waits for ShareLock on transaction "
                f"{self.rng.randrange(10**6, 10**7)}; blocked by process {second}.\n"
                f"Process {second} waits for ShareLock on transaction {self.rng.randrange(10**6, 10**7)}; "
                f"blocked by process {first}."
            )
            end = at + self.ms(1000, 1010)
        elif cause is ConnectionRefusedError:
            error = ConnectionRefusedError(
                f'connection to server at "10.0.{self.rng.randrange(1, 9)}.{self.rng.randrange(2, 250)}", port 5432 '
                "failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?"
            )
            end = at + self.ms(1, 3)
        else:  # InventoryDbTimeout: the inventory repository wraps the driver's cancellation
            sku = self.rng.choice(SKUS)
            error = InventoryDbTimeout(f"stock update for {sku} timed out after 5000 ms")
            end = at + self.ms(5000, 5004)
        raised = self.raise_in(span, service, error, end)
        span.end(end_time=end)
        return Outcome(end, 500, error=raised)

    # ------------------------------------------------------------------ flows

    def checkout(self, root: Span, at: int) -> Outcome:
        """checkout POST /orders, inside the frontend's call."""

        def orders(server: Span, t: int) -> Outcome:
            order = f"{self.rng.getrandbits(32):08x}"
            server.set_attribute("app.order.id", order)
            insert = self.db_call(
                "checkout",
                "checkout",
                "INSERT",
                "orders",
                "insert into orders (id, customer_id, total) values ($1, $2, $3)",
                server,
                t,
            )
            if insert.error is not None:
                return insert  # unhandled: the server span records it again and answers 500
            quote = self.grpc_call(
                "checkout",
                "shipping",
                "shipping.v1.ShippingService",
                "GetQuote",
                server,
                insert.end + self.ms(0.2, 1),
                self.shipping_quote,
            )
            if quote.grpc_status != 0:
                return self.upstream(server, "shipping", f"StatusCode.{GRPC_NAMES[quote.grpc_status]}", quote.end, 502)
            reserve = self.http_call(
                "checkout",
                "inventory",
                "POST",
                "/reservations",
                "/reservations",
                server,
                quote.end + self.ms(0.2, 1),
                self.reserve,
            )
            if reserve.http_status == 409:
                return Outcome(reserve.end + self.ms(0.2, 1), 409)  # a handled conflict: 409 to the frontend
            if reserve.http_status >= 400:
                return self.upstream(server, "inventory", self.status_text(reserve.http_status), reserve.end, 502)
            charge = self.http_call(
                "checkout",
                "payment",
                "POST",
                "/charges",
                "/charges",
                server,
                reserve.end + self.ms(0.2, 1),
                self.charge,
            )
            if charge.http_status >= 400:
                return self.upstream(server, "payment", self.status_text(charge.http_status), charge.end, 502)
            return Outcome(charge.end + self.ms(0.5, 2), 201)

        return self.http_call("frontend", "checkout", "POST", "/orders", "/orders", root, at, orders)

    def upstream(self, server: Span, callee: str, answer: str, at: int, status: int) -> Outcome:
        """checkout's error handler: what a callee answered becomes an UpstreamServiceError and a 502."""
        end = at + self.ms(0.2, 1)
        error = _raised(UpstreamServiceError(f"{callee} answered {answer}"))
        server.record_exception(error, timestamp=end - 100)
        server.set_status(Status(StatusCode.ERROR, f"UpstreamServiceError: {error}"))
        return Outcome(end, status)

    @staticmethod
    def status_text(status: int) -> str:
        return f"{status} {HTTP_REASONS.get(status, '')}".strip()

    def shipping_quote(self, server: Span, t: int) -> Outcome:
        carrier = self.rng.choice(("dhl-express", "ups-ground", "fedex-2day", "postnord"))
        quote = self.start("shipping", "quote carrier", server, SpanKind.INTERNAL, {"app.carrier": carrier}, t)
        rates = self.start(
            "shipping",
            "GET",
            quote,
            SpanKind.CLIENT,
            {
                "http.request.method": "GET",
                "server.address": f"rates.{carrier}.example",
                "url.full": f"https://rates.{carrier}.example/v2/quotes",
            },
            t + self.ms(0.1, 0.3),
        )
        if self.fails("checkout.shipping"):
            rates_end = t + self.ms(300, 900)
            rates.set_attribute("http.response.status_code", 503)
            rates.set_status(Status(StatusCode.ERROR))
            rates.end(end_time=rates_end)
            end = rates_end + self.ms(0.1, 0.5)
            error = self.raise_in(
                quote,
                "shipping",
                CarrierUnavailable(
                    f"carrier {carrier} rates API answered 503 after {self.rng.randrange(2, 4)} attempts"
                ),
                end,
            )
            quote.end(end_time=end)
            return Outcome(end, grpc_status=14, error=error)
        rates_end = t + self.ms(20, 80)
        rates.set_attribute("http.response.status_code", 200)
        rates.end(end_time=rates_end)
        end = rates_end + self.ms(0.1, 0.5)
        quote.end(end_time=end)
        return Outcome(end)

    def reserve(self, server: Span, t: int) -> Outcome:
        sku = self.rng.choice(SKUS)
        wanted = self.rng.randint(1, 4)
        span = self.start(
            "inventory", "reserve stock", server, SpanKind.INTERNAL, {"app.sku": sku, "app.quantity": wanted}, t
        )
        cause = self.fails("checkout.inventory")
        if cause is OutOfStock or cause is ReservationConflict:
            end = t + self.ms(1, 4)
            if cause is OutOfStock:
                error: Exception = OutOfStock(f"{sku}: requested {wanted}, available {self.rng.randrange(0, wanted)}")
            else:
                version = self.rng.randrange(2, 400)
                error = ReservationConflict(
                    f"reservation of {sku} for order {self.rng.getrandbits(32):08x} lost to a concurrent update "
                    f"(version {version + 1}, expected {version})"
                )
            self.raise_in(span, "inventory", error, end)
            span.end(end_time=end)
            return Outcome(end + self.ms(0.1, 0.4), 409)  # the handler maps it to 409 Conflict
        update = self.db_call(
            "inventory",
            "checkout.inventory.db",
            "UPDATE",
            "stock",
            "update stock set reserved = reserved + $1 where sku = $2 and qty - reserved >= $1",
            span,
            t + self.ms(0.5, 1.5),
        )
        end = update.end + self.ms(0.1, 0.4)
        if update.error is not None:
            self.escaped(span, update.error, end)
            span.end(end_time=end)
            return Outcome(end, 500, error=update.error)
        span.end(end_time=end)
        return Outcome(end, 201)

    def charge(self, server: Span, t: int) -> Outcome:
        amount = round(self.rng.uniform(5, 400), 2)
        score = self.http_call("payment", "fraud", "POST", "/scores", "/scores", server, t, self.fraud_score)
        if score.http_status == 403:
            return Outcome(score.end + self.ms(0.2, 1), 403)  # payment refuses the charge as fraud did
        card = f"{self.rng.randrange(10_000):04d}"
        authorize = self.start(
            "payment",
            "authorize card",
            server,
            SpanKind.INTERNAL,
            {"app.payment.provider": "acme-pay", "app.payment.amount": amount, "app.card.last4": card},
            score.end + self.ms(0.2, 1),
        )
        gateway_start = score.end + self.ms(1.5, 3)
        gateway = self.start(
            "payment",
            "acme.pay.v1.Gateway/Authorize",
            authorize,
            SpanKind.CLIENT,
            {
                "rpc.system": "grpc",
                "rpc.service": "acme.pay.v1.Gateway",
                "rpc.method": "Authorize",
                "server.address": "api.acme-pay.example",
            },
            gateway_start,
        )
        cause = self.fails("checkout.payment")
        if cause is PaymentGatewayTimeout:
            end = gateway_start + self.ms(3000, 3003)
            gateway.set_attribute("rpc.grpc.status_code", 4)
            error = self.raise_in(
                gateway,
                "payment",
                PaymentGatewayTimeout(f"acme-pay Authorize did not answer within the 3000 ms deadline ({card})"),
                end,
            )
            gateway.end(end_time=end)
            self.escaped(authorize, error, end + self.ms(0.1, 0.3))  # it escapes "authorize card" as well
            authorize.end(end_time=end + self.ms(0.1, 0.3))
            return Outcome(end + self.ms(0.4, 1), 504)  # mapped to 504 by payment's error handler
        gateway_end = gateway_start + self.ms(60, 240)
        gateway.set_attribute("rpc.grpc.status_code", 0)
        gateway.end(end_time=gateway_end)
        end = gateway_end + self.ms(0.1, 0.5)
        if cause is CardDeclined:
            reason = self.rng.choice(("insufficient funds", "do not honor", "expired card", "lost or stolen card"))
            self.raise_in(authorize, "payment", CardDeclined(f"card ending {card} declined by issuer: {reason}"), end)
            authorize.end(end_time=end)
            return Outcome(end + self.ms(0.2, 1), 402)
        authorize.end(end_time=end)
        return Outcome(end + self.ms(0.5, 2), 201)

    def fraud_score(self, server: Span, t: int) -> Outcome:
        span = self.start("fraud", "score transaction", server, SpanKind.INTERNAL, {"app.model": "gbm-v7"}, t)
        end = t + self.ms(4, 15)
        if self.fails("checkout.fraud"):
            value = self.rng.uniform(0.91, 0.999)
            self.raise_in(
                span,
                "fraud",
                FraudSuspected(f"transaction blocked: fraud score {value:.3f} above threshold 0.900"),
                end,
            )
            span.end(end_time=end)
            return Outcome(end + self.ms(0.1, 0.4), 403)
        span.end(end_time=end)
        return Outcome(end + self.ms(0.1, 0.4), 200)

    def browse(self, root: Span, at: int) -> Outcome:
        product = self.rng.choice(SKUS)
        missing = self.failure is None and self.rng.random() < 0.05

        def product_page(server: Span, t: int) -> Outcome:
            cache = self.start(
                "catalog",
                "GET",
                server,
                SpanKind.CLIENT,
                {"db.system.name": "redis", "db.operation.name": "GET", "server.address": "catalog-cache"},
                t,
            )
            cache_end = t + self.ms(0.2, 1)
            hit = self.rng.random() < 0.7 and self.fails("browse") is None  # a failing read follows a miss
            if not hit:  # a handled cache miss, recorded but not an error
                cache.record_exception(_raised(KeyError(f"product:{product}")), timestamp=cache_end - 100)
            cache.end(end_time=cache_end)
            if hit:
                return Outcome(cache_end + self.ms(0.3, 2), 404 if missing else 200)
            read = self.db_call(
                "catalog",
                "browse",
                "SELECT",
                "products",
                "select id, name, price from products where sku = $1",
                server,
                cache_end + self.ms(0.1, 0.5),
            )
            if read.error is not None:
                return read
            return Outcome(read.end + self.ms(0.3, 2), 404 if missing else 200)

        return self.http_call(
            "frontend", "catalog", "GET", "/products/{id}", f"/products/{product}", root, at, product_page
        )

    def orders(self, root: Span, at: int) -> Outcome:
        customer = self.rng.randrange(10**6)

        def history(server: Span, t: int) -> Outcome:
            read = self.db_call(
                "checkout",
                "orders",
                "SELECT",
                "orders",
                "select * from orders where customer_id = $1 order by created_at desc limit 20",
                server,
                t,
            )
            if read.error is not None:
                return read
            return Outcome(read.end + self.ms(0.5, 3), 200)

        return self.http_call(
            "frontend", "checkout", "GET", "/orders", f"/orders?customer={customer}", root, at, history
        )

    def plan(self) -> tuple[str, Failure | None]:
        """The flow of the next trace and the failure planned in it (a tenth of the error rate per cause)."""
        if self.rng.random() >= self.error_rate:
            flow = self.rng.choices(("checkout", "browse", "orders"), weights=(45, 35, 20))[0]
            return flow, None
        cause = self.rng.choice(CAUSES)
        if cause in DB_PLACES:
            flow = self.rng.choice(DB_PLACES[cause])
            return flow, Failure(cause, flow)
        place = {
            CardDeclined: "checkout.payment",
            PaymentGatewayTimeout: "checkout.payment",
            FraudSuspected: "checkout.fraud",
            OutOfStock: "checkout.inventory",
            ReservationConflict: "checkout.inventory",
            InventoryDbTimeout: "checkout.inventory.db",
            CarrierUnavailable: "checkout.shipping",
        }[cause]
        return "checkout", Failure(cause, place)

    def request(self) -> Label:
        flow, self.failure = self.plan()
        method, route = FLOWS[flow]
        start = self.clock
        root = self.start(
            "frontend",
            f"{method} {route}",
            None,
            SpanKind.SERVER,
            {"http.request.method": method, "http.route": route, "url.scheme": "https"},
            start,
        )
        label = Label(f"{root.get_span_context().trace_id:032x}", flow)
        if self.failure is not None:
            self.failure.label = label
        call = {"checkout": self.checkout, "browse": self.browse, "orders": self.orders}[flow]
        outcome = call(root, start + self.ms(0.5, 2))
        status = outcome.http_status if outcome.http_status < 500 else 502  # the gateway answers 502 for any 5xx
        root.set_attribute("http.response.status_code", status)
        if status >= 500:
            root.set_status(Status(StatusCode.ERROR))
        root.end(end_time=outcome.end + self.ms(0.2, 1))
        self.failure = None
        return label

    def run(self, traces: int) -> list[Label]:
        labels = []
        for _ in range(traces):
            labels.append(self.request())
            self.clock += self.ms(50, 400)
        return labels

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.memory.get_finished_spans()

    def shutdown(self) -> None:
        for provider in self.providers.values():
            provider.shutdown()


def generate(traces: int, seed: int = 7, error_rate: float = 0.3) -> tuple[list[Label], tuple[ReadableSpan, ...]]:
    """`traces` traces of the shop: their labels and their finished SDK spans."""
    shop = ShopFailures(seed=seed, error_rate=error_rate)
    try:
        labels = shop.run(traces)
        return labels, shop.spans()
    finally:
        shop.shutdown()


def export(dsn: str, spans: Sequence[ReadableSpan], batch: int = 512) -> None:
    """Export the spans with otel_db's SpanExporter, one exporter per service, in BatchSpanProcessor-sized batches."""
    from otel_db.exporters import SpanExporter

    by_service: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        by_service.setdefault(str(span.resource.attributes["service.name"]), []).append(span)
    for service, group in by_service.items():
        exporter = SpanExporter(dsn, timeout=60.0)
        try:
            for first in range(0, len(group), batch):
                if exporter.export(group[first : first + batch]) is not SpanExportResult.SUCCESS:
                    raise RuntimeError(f"exporting the spans of {service} failed")
        finally:
            exporter.shutdown()
