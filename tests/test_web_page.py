"""The web page of `otel-db serve`, in headless Chromium, on telemetry the OpenTelemetry SDK sent through serve.

Each test does what a person would (opens a view, picks a service, clicks a span) and checks what is on
screen. Screenshots are kept in build/screenshots/.
"""

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode

from bench import browser
from tests.conftest import ROOT
from tests.helpers import Server, flush, free_port, scalar, stage_spans_with_ids
from tests.otlp import gauge, log_record, logs_request, metrics_request, number_point
from tests.test_serve import post, serve  # noqa: F401 (serve is a fixture)

if (absent := browser.missing()) is not None:
    if os.environ.get("CI"):  # the project's set-up installs the browser: its absence in CI is a failure
        pytest.fail(f"the browser tests cannot run: {absent}", pytrace=False)
    pytest.skip(f"the browser tests need a browser: {absent}", allow_module_level=True)

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

SCREENSHOTS = ROOT / "build" / "screenshots"
ADMIN_TOKEN = "admin-s3cret"
MS = 1_000_000


@pytest.fixture(scope="module")
def chromium() -> Iterator[WebDriver]:
    with browser.chromium() as driver:
        yield driver


@dataclass
class Page:
    """The page of one `otel-db serve`, opened in the module's Chromium."""

    url: str
    server: Server
    driver: WebDriver

    def open(self, path: str, screenshot: str | None = None) -> str:
        state = browser.open_view(self.driver, self.url + path)
        self.keep(screenshot)
        return state

    def keep(self, screenshot: str | None) -> None:
        if screenshot:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(SCREENSHOTS / f"{screenshot}.png"))

    def settled_after(self, action: Callable[[], object]) -> None:
        """Do `action`, which loads a new page (a form sent, a link followed), and wait until it has shown it."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        action()
        WebDriverWait(self.driver, 30).until(lambda d: _stale(old) and d.execute_script(browser.SETTLED))

    def texts(self, css: str) -> list[str]:
        return [element.text for element in self.driver.find_elements(By.CSS_SELECTOR, css)]

    def text(self, css: str) -> str:
        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def wait_for_text(self, css: str, wanted: str) -> str:
        WebDriverWait(self.driver, 30).until(lambda d: wanted in self.text(css))
        return self.text(css)


def _stale(element) -> bool:
    try:
        element.tag_name  # noqa: B018 (raises once the page it belongs to is gone)
    except Exception:
        return True
    return False


@pytest.fixture
def page(serve, chromium) -> Callable[..., Page]:  # noqa: F811 (the fixture)
    def start(*options: str, embed: bool = False, prelude: str = "") -> Page:
        port = free_port()
        server = serve("--no-flush", "--query", f"127.0.0.1:{port}", *options, embed=embed, prelude=prelude)
        chromium.delete_all_cookies()
        chromium.get("about:blank")
        return Page(f"http://127.0.0.1:{port}", server, chromium)

    return start


@dataclass
class Checkout:
    trace_id: str
    span_ids: dict[str, str]
    declined: bool


def send_checkouts(otlp_url: str, start_ns: int, declined: list[bool]) -> list[Checkout]:
    """One checkout trace per entry, a second apart, through the SDK's OTLP/HTTP exporter.

    checkout `POST /checkout` (server) → `POST` (client) → payment `POST /charges` (server). A declined
    card: the charge raises CardDeclined (an exception event, status ERROR), the client gets 402 and the
    checkout fails.
    """
    providers = []

    def tracer(resource: dict, scope: str) -> trace.Tracer:
        provider = TracerProvider(resource=Resource(resource))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_url}/v1/traces")))
        providers.append(provider)
        return provider.get_tracer(scope)

    checkout = tracer({"service.name": "checkout", "host.name": "web-1"}, "shop.checkout")
    payment = tracer({"service.name": "payment", "host.name": "pay-1"}, "shop.payment")
    sent = []
    for n, fails in enumerate(declined):
        start = start_ns + n * 1000 * MS
        status = 402 if fails else 201
        root = checkout.start_span("POST /checkout", kind=SpanKind.SERVER, start_time=start)
        root.set_attribute("http.response.status_code", 500 if fails else 200)
        call = checkout.start_span("POST", trace.set_span_in_context(root), SpanKind.CLIENT, start_time=start + MS)
        call.set_attribute("http.response.status_code", status)
        charge = payment.start_span(
            "POST /charges", trace.set_span_in_context(call), SpanKind.SERVER, start_time=start + 2 * MS
        )
        charge.set_attribute("http.response.status_code", status)
        charge.set_attribute("payment.card.network", "visa")
        if fails:
            charge.add_event(
                "exception",
                {"exception.type": "CardDeclined", "exception.message": "card declined: insufficient funds"},
                start + 3 * MS,
            )
            for span, message in ((charge, "card declined"), (call, "402 Payment Required"), (root, "checkout failed")):
                span.set_status(Status(StatusCode.ERROR, message))
        charge.end(end_time=start + 40 * MS)
        call.end(end_time=start + 42 * MS)
        root.end(end_time=start + 45 * MS)
        spans = {"POST /checkout": root, "POST": call, "POST /charges": charge}
        ids = {name: format(span.get_span_context().span_id, "016x") for name, span in spans.items()}
        sent.append(Checkout(format(root.get_span_context().trace_id, "032x"), ids, fails))
    for provider in providers:
        provider.shutdown()
    return sent


def minutes_ago(minutes: float) -> int:
    return (time.time_ns() - int(minutes * 60 * 10**9)) // 1000 * 1000  # whole microseconds, as Jaeger's


def send_charge_logs(otlp_url: str, checkout: Checkout, start_ns: int) -> list[str]:
    """Two log records of the charge span, through serve's OTLP/HTTP endpoint."""
    bodies = ["charging card ending 4242", "card declined by the issuer: insufficient funds"]
    records = [
        log_record(
            timeUnixNano=str(start_ns + (3 + n) * MS),
            severityNumber=17 if n else 9,
            severityText="ERROR" if n else "INFO",
            body={"stringValue": body},
            traceId=checkout.trace_id,
            spanId=checkout.span_ids["POST /charges"],
        )
        for n, body in enumerate(bodies)
    ]
    assert post(f"{otlp_url}/v1/logs", json.dumps(logs_request(*records, service="payment")).encode()).status == 200
    return bodies


# --------------------------------------------------------------------------- search and the trace view


def test_a_person_finds_the_failing_checkout_and_reads_its_trace(page, conn):
    shop = page()
    start = minutes_ago(10)
    failing, _ = send_checkouts(shop.server.url, start, [True, False])
    bodies = send_charge_logs(shop.server.url, failing, start)
    flush(conn)

    assert shop.open("/") == "ready"
    form = shop.driver.find_element(By.ID, "search")
    Select(form.find_element(By.NAME, "service")).select_by_visible_text("checkout")
    operations = form.find_element(By.NAME, "operation")
    WebDriverWait(shop.driver, 10).until(lambda d: "POST /checkout" in operations.text)
    form.find_element(By.NAME, "tags").send_keys("error=true")
    shop.settled_after(form.find_element(By.TAG_NAME, "button").click)
    shop.keep("search")

    [row] = shop.driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
    assert cells[1:] == ["checkout: POST /checkout", "45.0 ms", "3", "3", "checkout, payment"]

    shop.settled_after(row.find_element(By.TAG_NAME, "a").click)
    assert shop.driver.current_url.endswith(f"/trace/{failing.trace_id}")
    shop.keep("trace")
    assert shop.texts("#waterfall .span .operation") == ["POST /checkout", "POST", "POST /charges"]
    assert shop.texts("#waterfall .span .service") == ["checkout", "checkout", "payment"]
    assert all("✗ error" in text for text in shop.texts("#waterfall .span.error .name"))
    assert len(shop.texts("#waterfall .span.error")) == 3
    assert shop.texts("#waterfall .span.root-cause .operation") == ["POST /charges"]
    assert "3 errors" in shop.text(".trace-head")
    cause = shop.text("#root-cause")
    assert all(
        part in cause for part in ("payment: POST /charges", "CardDeclined", "card declined: insufficient funds")
    )
    logs = shop.text("#logs")
    assert all(body in logs for body in bodies)

    shop.driver.find_elements(By.CSS_SELECTOR, "#waterfall .span .operation")[2].click()
    detail = shop.text("#waterfall .detail")
    assert "exception.type=CardDeclined" in detail
    assert "http.response.status_code 402" in detail
    assert "host.name pay-1" in detail
    assert f"parent span id {failing.span_ids['POST']}" in detail
    shop.keep("span-detail")

    # Collapsing the client span hides the charge below it.
    shop.driver.find_elements(By.CSS_SELECTOR, "#waterfall .span .toggle")[1].click()
    assert [row.is_displayed() for row in shop.driver.find_elements(By.CSS_SELECTOR, "#waterfall .span")] == [
        True,
        True,
        False,
    ]


def test_a_question_in_words_finds_the_declined_cards_and_a_trace_shows_its_like(page, conn):
    shop = page(embed=True)
    declined_1, declined_2, _healthy = send_checkouts(shop.server.url, minutes_ago(10), [True, True, False])
    flush(conn)
    deadline = time.monotonic() + 60
    while scalar(conn, "select pending from otel.embedding_status") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert scalar(conn, "select pending from otel.embedding_status") == 0

    assert shop.open("/?q=why+was+the+card+declined&lookback=1h", "question") == "ready"
    rows = shop.driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    first = [cell.text for cell in rows[0].find_elements(By.TAG_NAME, "td")]
    assert first[1] in (declined_1.trace_id, declined_2.trace_id)
    assert first[2:4] == ["payment", "POST /charges"]

    assert shop.open(f"/trace/{declined_1.trace_id}") == "ready"
    similar = shop.driver.find_elements(By.CSS_SELECTOR, "#similar tbody tr")
    assert similar[0].find_elements(By.TAG_NAME, "td")[1].text == declined_2.trace_id
    assert declined_1.trace_id not in shop.text("#similar")

    shop.driver.find_element(By.ID, "explain-button").click()
    explained = shop.wait_for_text("#explain", "span payment/POST /charges failed with CardDeclined")
    assert "comparisons" in explained
    shop.keep("explain")


def test_a_trace_that_is_not_stored_and_an_id_that_is_not_one(page):
    shop = page()
    assert shop.open(f"/trace/{'ab' * 16}") == "ready"
    assert "is not stored" in shop.text("#view")
    assert shop.open("/trace/not-a-trace") == "error"
    assert "not a trace ID" in shop.text("#problem")


def test_names_and_attributes_from_the_telemetry_are_shown_as_text_and_links_lead_to_their_trace(page, conn):
    shop = page()
    hostile = {
        "name": '<img src=x onerror="alert(1)">',
        "service": "<b>svc</b>",
        "attribute": "<script>alert(2)</script>",
        "exception": "<i>HostileError</i>",
        "message": "<svg onload=alert(3)>",
        "log": "<iframe src=/></iframe>",
    }
    provider = TracerProvider(resource=Resource({"service.name": hostile["service"]}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{shop.server.url}/v1/traces")))
    linked = SpanContext(int("ab" * 16, 16), int("cd" * 8, 16), is_remote=True)
    span = provider.get_tracer("t").start_span(
        hostile["name"], attributes={"note": hostile["attribute"]}, links=[Link(linked)]
    )
    span.add_event("exception", {"exception.type": hostile["exception"], "exception.message": hostile["message"]})
    span.set_status(Status(StatusCode.ERROR, hostile["message"]))
    span.end()
    provider.shutdown()
    trace_id = f"{span.get_span_context().trace_id:032x}"
    record = log_record(body={"stringValue": hostile["log"]}, traceId=trace_id, timeUnixNano=str(time.time_ns()))
    assert post(f"{shop.server.url}/v1/logs", json.dumps(logs_request(record)).encode()).status == 200
    flush(conn)

    assert shop.open(f"/trace/{trace_id}") == "ready"
    shop.driver.find_element(By.CSS_SELECTOR, "#waterfall .span .operation").click()
    assert shop.texts("#waterfall .span .operation") == [hostile["name"]]
    assert shop.texts("#waterfall .span .service") == [hostile["service"]]
    assert hostile["attribute"] in shop.text("#waterfall .detail")
    assert hostile["exception"] in shop.text("#root-cause") and hostile["message"] in shop.text("#root-cause")
    assert hostile["log"] in shop.text("#logs")
    [link] = shop.driver.find_elements(By.CSS_SELECTOR, "#waterfall .detail a")
    assert (link.text, link.get_attribute("href")) == ("ab" * 16, f"{shop.url}/trace/{'ab' * 16}")
    assert shop.driver.find_elements(By.CSS_SELECTOR, "#view img, #view script, #view b, #view i, #view iframe") == []
    assert shop.driver.find_elements(By.CSS_SELECTOR, "#view svg") == []


def test_with_a_bearer_token_the_page_asks_for_it(page):
    shop = page("--token", "s3cret")
    assert shop.open("/") == "error"
    assert shop.text("#problem") == "a bearer token is required"
    form = shop.driver.find_element(By.ID, "token")
    assert form.is_displayed()
    form.find_element(By.NAME, "token").send_keys("s3cret")
    shop.settled_after(form.find_element(By.TAG_NAME, "button").click)
    assert shop.driver.execute_script("return document.body.dataset.state") == "ready"
    assert not shop.driver.find_element(By.ID, "problem").is_displayed()


# --------------------------------------------------------------------------- dead letters and metrics


def test_dead_letters_by_reason_and_a_retry_with_the_admin_token(page, conn):
    shop = page("--admin-token", ADMIN_TOKEN)
    stage_spans_with_ids(conn, ["not-a-trace-id", "xyz"])
    flush(conn)
    good_row = {
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "name": "GET /retried",
        "start_time": "1764000000000000000",
        "end_time": "1764000000100000000",
    }
    conn.execute(
        "select otel.dead_letter('traces', 'a writer', %s, 'row-json', 'the database was down')",
        (json.dumps(good_row),),
    )

    assert shop.open("/dead-letters", "dead-letters") == "ready"
    reasons = [row.text for row in shop.driver.find_elements(By.CSS_SELECTOR, "#letters tr.reason")]
    assert len(reasons) == 2
    assert reasons[0].startswith('traces trace_id "…" is not 32 hex digits 2 2')
    assert reasons[1].startswith("traces the database was down 1 1")
    shop.driver.find_element(By.CSS_SELECTOR, "#letters details summary").click()
    assert "not-a-trace-id" in shop.text("#letters details")

    retry = shop.driver.find_element(By.ID, "retry")
    retry.find_element(By.NAME, "token").send_keys("wrong")
    retry.find_element(By.TAG_NAME, "button").click()
    assert shop.wait_for_text("#retry-result", "admin token") == "That is not the admin token."
    assert scalar(conn, "select count(*) from otel.traces") == 0

    token = retry.find_element(By.NAME, "token")
    token.clear()
    token.send_keys(ADMIN_TOKEN)
    retry.find_element(By.TAG_NAME, "button").click()
    assert shop.wait_for_text("#retry-result", "Moved") == "Moved 1; 2 still pending."
    shop.keep("dead-letters-retried")
    assert scalar(conn, "select name from otel.traces") == "GET /retried"
    letters = conn.execute("select retry_count, processed_at is not null from otel.telemetry_dlq order by id")
    assert letters.fetchall() == [(1, False), (1, False), (0, True)]


def test_a_metric_chart_of_the_last_hour(page, conn):
    """An hour of a gauge: a point 50 minutes ago, then ten in a row, one per 30-second bucket, 20 minutes ago."""
    shop = page()
    now = time.time_ns()
    early = number_point(100.0, str(now - 50 * 60 * 10**9))
    run = [number_point(float(n * n), str(now - (20 * 60 - 30 * n) * 10**9)) for n in range(10)]
    request = metrics_request(gauge("shop.queue.depth", early, *run), gauge("shop.workers", number_point(4, str(now))))
    assert post(f"{shop.server.url}/v1/metrics", json.dumps(request).encode()).status == 200
    flush(conn)

    assert shop.open("/metrics?name=shop.queue.depth&lookback=1h&agg=max", "metrics") == "ready"
    names = Select(shop.driver.find_element(By.NAME, "name"))
    assert [o.text for o in names.options] == ["shop.queue.depth", "shop.workers"]
    assert names.first_selected_option.text == "shop.queue.depth"
    assert shop.text("#chart h2") == "shop.queue.depth · max by 30s (1)"
    assert len(shop.driver.find_elements(By.CSS_SELECTOR, "#chart svg circle")) == 11
    line = shop.driver.find_element(By.CSS_SELECTOR, "#chart svg path").get_attribute("d")
    assert (line.count("M"), line.count("L")) == (2, 9)  # the lone point, then the run joined up
    assert "11 buckets with a value; the latest 81." in shop.text("#chart")


def test_retry_is_refused_when_serve_has_no_admin_token(page):
    shop = page()
    assert shop.open("/dead-letters") == "ready"
    retry = shop.driver.find_element(By.ID, "retry")
    retry.find_element(By.NAME, "token").send_keys("anything")
    retry.find_element(By.TAG_NAME, "button").click()
    assert "--admin-token" in shop.wait_for_text("#retry-result", "admin")
