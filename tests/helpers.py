"""Small helpers shared by the tests."""

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from otel_db.ingest import OTLP_COPY_SQL


def stage_otlp(conn: psycopg.Connection, requests: Iterable[dict | str]) -> None:
    """COPY OTLP/JSON requests into otel.otlp_staging, one per line."""
    with conn.cursor().copy(OTLP_COPY_SQL) as copy:
        for request in requests:
            line = request if isinstance(request, str) else json.dumps(request)
            copy.write(line.encode() + b"\n")


def flush(conn: psycopg.Connection) -> dict:
    """call otel.flush() and return its otel.flush_runs row."""
    conn.execute("call otel.flush()")
    cur = conn.execute("select * from otel.flush_runs order by id desc limit 1")
    names = [c.name for c in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))


def scalar(conn: psycopg.Connection, query: str, params: tuple | dict | None = None):
    return conn.execute(query, params).fetchone()[0]


def dead_letters(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """(telemetry_type, error_message, raw_data) of every letter, oldest first."""
    return conn.execute("select telemetry_type, error_message, raw_data from otel.telemetry_dlq order by id").fetchall()


def stage_spans_with_ids(conn: psycopg.Connection, trace_ids: Iterable[str], kind: str = "SERVER") -> None:
    """COPY one span per trace id into otel.traces_staging (typed columns), whatever the ids are."""
    columns = "trace_id, span_id, name, kind, start_time, end_time"
    with conn.cursor().copy(f"copy otel.traces_staging ({columns}) from stdin") as copy:
        for trace_id in trace_ids:
            copy.write_row([trace_id, "00f067aa0ba902b7", "GET /", kind, "1764000000000000000", "1764000000100000000"])


def _port_candidates() -> Iterator[int]:
    """This process's ports for servers, from a random start: below the kernel's range for local ports.

    A port picked by binding port 0 comes from the range the kernel also gives the outgoing
    connections of every process (ip_local_port_range): one of them may take it between the
    probe and the server's bind. Below that range no connection takes a port unasked. Each
    xdist worker draws from its own share of it, and a process never hands out a port twice.
    """
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    ports = range(10_000, low) if low >= 12_000 else range(high + 1, 65_536)
    if len(ports) < 1_000:  # the local range takes nearly every port: any port then, each checked by a bind
        ports = range(1_024, 65_536)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    share = ports[int(worker) % workers :: workers] if worker.isdigit() else ports
    start = random.SystemRandom().randrange(len(share))
    return itertools.chain(share[start:], share[:start])


_ports = _port_candidates()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, for a server the test starts."""
    for port in _ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port left for the tests' servers")


@dataclass
class Server:
    """One `otel-db serve` process."""

    process: subprocess.Popen
    http_port: int
    grpc_port: int
    query_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"otel-db serve did not stop within {timeout} s:\n{self.output()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# The `otel-db` command, after `prelude` (Python that prepares the process, such as an import blocker).
CLI = "{prelude}\nimport sys\nfrom otel_db.cli import main\nsys.exit(main(sys.argv[1:]))"


def start_serve(
    dsn: str, log: Path, *options: str, env: dict[str, str] | None = None, embed: bool = False, prelude: str = ""
) -> Server:
    """`otel-db serve` on free ports (without embedding unless asked), once /healthz answers; the caller stops it.

    `options` come last, so that a `--query` among them overrides the free port chosen here.
    """
    http_port, grpc_port, query_port = free_port(), free_port(), free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                *(sys.executable, "-c", CLI.format(prelude=prelude), "--dsn", dsn, "serve"),
                *("--http", f"127.0.0.1:{http_port}", "--grpc", f"127.0.0.1:{grpc_port}"),
                *("--query", f"127.0.0.1:{query_port}", *options),
                *([] if embed else ["--no-embed"]),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=Path(__file__).resolve().parent.parent,
        )
    server = Server(process, http_port, grpc_port, query_port, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"otel-db serve exited with {process.returncode}:\n{server.output()}")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=1):
                return server
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.05)
    server.kill()
    pytest.fail(f"otel-db serve did not answer /healthz within 30 s:\n{server.output()}")
