"""`otel-db serve` end to end against the typed path: `python -m bench serve_throughput`.

Side by side in one run, on the same spans (OTEL_DB_BENCH_SERVE_SPANS,
default 200,000), for requests of 100 and of 1,000 spans:

- typed path: COPY of typed rows into otel.traces_staging, then
  `call otel.flush()` (bench.flush_throughput.copy_and_flush);
- end to end: 8 clients send the spans as OTLP/HTTP protobuf requests to
  `otel-db serve`, which stages and flushes them (every second); timed from
  the first request to the last span in otel.traces;
- receiver alone: the same, with `--no-flush`, timed until the last request
  is acknowledged (committed to staging).

Then peak memory: 32 clients sending 4 MiB requests at once to `serve
--no-flush`, over HTTP and then over gRPC; the server's peak resident set
(VmHWM) is read from /proc.

The clients are threads of this process sending prepared bodies over
keep-alive connections, so they cost little beside the server; a client
that gets 503 waits its Retry-After and sends the request again.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.common import ROOT, drop_database, fresh_database, otlp_lines, span_dicts
from bench.flush_throughput import copy_and_flush, copy_typed

CLIENTS = 8
REQUEST_SIZES = (100, 1000)
MEMORY_CLIENTS = 32
MEMORY_REQUEST_BYTES = 4 * 2**20
MEMORY_REQUESTS_EACH = 2
CLEAN = "truncate otel.traces, otel.trace_summaries, otel.span_signatures, otel.flush_runs, otel.traces_staging"


def protobuf_bodies(spans: int, per_request: int) -> list[bytes]:
    """The bench spans as serialised ExportTraceServiceRequests of `per_request` spans."""
    bodies = []
    for line in otlp_lines(span_dicts(spans), per_request):
        request = json.loads(line)
        for resource in request["resourceSpans"]:
            for span in resource["scopeSpans"][0]["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
        bodies.append(json_format.ParseDict(request, ExportTraceServiceRequest()).SerializeToString())
    return bodies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    grpc_port: int

    def peak_rss_bytes(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        [peak] = [line for line in status.splitlines() if line.startswith("VmHWM:")]
        return int(peak.split()[1]) * 1024


@contextmanager
def serving(url: str, *options: str, query_port: int | None = None) -> Iterator[Server]:
    """`otel-db serve` on a free port (the query API on `query_port`, else off) until the block ends (then SIGTERM)."""
    port, grpc_port = free_port(), free_port()
    query = ("--query", f"127.0.0.1:{query_port}") if query_port else ("--no-query",)
    command = [
        *(sys.executable, "-c", "import sys; from otel_db.cli import main; sys.exit(main(sys.argv[1:]))"),
        *("--dsn", url, "serve", "--http", f"127.0.0.1:{port}", "--grpc", f"127.0.0.1:{grpc_port}", *query),
        *("--no-embed", "--max-backlog", "0", *options),
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Server(process, port, grpc_port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"otel-db serve did not start: {process.stderr.read().decode()}") from None
                time.sleep(0.05)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)


def send_all(port: int, bodies: list[bytes], clients: int) -> float:
    """Send every body over OTLP/HTTP from `clients` threads; seconds until all are answered 200."""

    def client(work: Callable[[], bytes | None]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Content-Type": "application/x-protobuf"}
        while (body := work()) is not None:
            while True:
                connection.request("POST", "/v1/traces", body, headers)
                answer = connection.getresponse()
                answer.read()
                if answer.status == 200:
                    break
                if answer.status != 503:
                    raise RuntimeError(f"HTTP {answer.status}")
                time.sleep(float(answer.getheader("Retry-After", "1")))
        connection.close()

    return _clients(client, bodies, clients)


def send_all_grpc(port: int, bodies: list[bytes], clients: int) -> float:
    """Send every body over OTLP/gRPC from `clients` threads; seconds until all are answered OK."""
    retried = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)

    def client(work: Callable[[], bytes | None]) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", -1)]) as channel:
            export = trace_service_pb2_grpc.TraceServiceStub(channel).Export
            while (body := work()) is not None:
                request = ExportTraceServiceRequest.FromString(body)
                while True:
                    try:
                        export(request, timeout=120)
                        break
                    except grpc.RpcError as exc:
                        if exc.code() not in retried:
                            raise
                        time.sleep(1)

    return _clients(client, bodies, clients)


def _clients(client: Callable[[Callable[[], bytes | None]], None], bodies: list[bytes], clients: int) -> float:
    """Run `clients` threads of `client`, which take bodies from one queue until it is empty; their seconds."""
    work: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for body in bodies:
        work.put(body)
    failures: list[BaseException] = []

    def next_body() -> bytes | None:
        try:
            return work.get_nowait()
        except queue.Empty:
            return None

    def run_client() -> None:
        try:
            client(next_body)
        except Exception as exc:  # reported below, after every thread has ended
            failures.append(exc)

    threads = [threading.Thread(target=run_client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"requests refused: {failures[:3]}")
    return time.perf_counter() - started


def wait_for_flushed(conn: psycopg.Connection, spans: int, patience: float = 600.0) -> None:
    deadline = time.monotonic() + patience
    while conn.execute("select coalesce(sum(spans), 0) from otel.flush_runs").fetchone()[0] < spans:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the spans were not flushed within {patience} s")
        time.sleep(0.05)


def end_to_end(conn: psycopg.Connection, url: str, bodies: list[bytes], spans: int) -> float:
    """Spans a second from the first request to the last span in otel.traces, with serve flushing every second."""
    conn.execute(CLEAN)
    with serving(url, "--flush-interval", "1") as server:
        started = time.perf_counter()
        send_all(server.port, bodies, CLIENTS)
        wait_for_flushed(conn, spans)
        seconds = time.perf_counter() - started
    stored = conn.execute("select count(*) from otel.traces").fetchone()[0]
    assert stored == spans, f"{stored} of {spans} spans stored"
    return spans / seconds


def receiver_alone(conn: psycopg.Connection, url: str, bodies: list[bytes], spans: int) -> float:
    """Spans a second acknowledged (committed to staging) by `serve --no-flush`."""
    conn.execute(CLEAN)
    with serving(url, "--no-flush") as server:
        seconds = send_all(server.port, bodies, CLIENTS)
    staged = conn.execute("select count(*) from otel.traces_staging").fetchone()[0]
    assert staged == spans, f"{staged} of {spans} spans staged"
    conn.execute(CLEAN)
    return spans / seconds


def typed_path(conn: psycopg.Connection, spans: int) -> float:
    copy_seconds, flush_seconds = copy_and_flush(conn, copy_typed, spans)
    return spans / (copy_seconds + flush_seconds)


def peak_memory(conn: psycopg.Connection, url: str) -> dict:
    """Peak RSS of `serve --no-flush` while 32 clients each send 4 MiB requests, over HTTP and over gRPC."""
    [body] = protobuf_bodies(30_000, 30_000)
    spans_per_body = 30_000 * MEMORY_REQUEST_BYTES // len(body)
    [body] = protobuf_bodies(spans_per_body, spans_per_body)
    bodies = [body] * (MEMORY_CLIENTS * MEMORY_REQUESTS_EACH)
    measured: dict = {"clients": MEMORY_CLIENTS, "request_bytes": len(body), "requests": len(bodies)}
    for protocol, send in (("http", send_all), ("grpc", send_all_grpc)):
        conn.execute(CLEAN)
        with serving(url, "--no-flush") as server:
            idle = server.peak_rss_bytes()
            seconds = send(server.grpc_port if protocol == "grpc" else server.port, bodies, MEMORY_CLIENTS)
            peak = server.peak_rss_bytes()
        measured[protocol] = {
            "seconds": round(seconds, 1),
            "rss_at_start_mb": round(idle / 2**20),
            "peak_rss_mb": round(peak / 2**20),
        }
    conn.execute(CLEAN)
    return measured


def run() -> dict:
    spans = int(os.environ.get("OTEL_DB_BENCH_SERVE_SPANS", "200000"))
    url = fresh_database("otel_bench")
    rates: dict[str, dict[str, float]] = {}
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for size in REQUEST_SIZES:
                bodies = protobuf_bodies(spans, size)
                typed = typed_path(conn, spans)
                e2e = end_to_end(conn, url, bodies, spans)
                alone = receiver_alone(conn, url, bodies, spans)
                rates[f"{size}_spans_per_request"] = {
                    "typed_path_spans_per_s": round(typed),
                    "end_to_end_spans_per_s": round(e2e),
                    "receiver_alone_spans_per_s": round(alone),
                    "end_to_end_vs_typed": round(e2e / typed, 3),
                    "receiver_vs_end_to_end": round(alone / e2e, 2),
                }
            memory = peak_memory(conn, url)
    finally:
        drop_database("otel_bench")
    return {
        "spans": spans,
        "clients": CLIENTS,
        "rates": rates,
        "memory": memory,
        "goals": {
            "end_to_end_vs_typed": ">= 0.6",
            "receiver_vs_end_to_end": ">= 2",
            "peak_rss_mb": "< 400 with 32 clients sending 4 MiB requests (each protocol)",
        },
    }
