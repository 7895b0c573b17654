"""Shared pieces of the benchmarks: a fresh migrated database, data, timing."""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config

from otel_db.ingest import OTLP_COPY_SQL

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SERVER = os.environ.get(
    "OTEL_DB_BENCH_SERVER", f"postgresql://postgres@127.0.0.1:{os.environ.get('OTEL_DB_PGPORT', '54329')}"
)

SERVICES = ["frontend", "checkout", "payment", "inventory", "catalog", "shipping"]
ROUTES = ["/users/{id}", "/orders/{id}", "/cart", "/products/{id}", "/checkout", "/health"]
ERRORS = [
    ("CardDeclined", "card {n} declined for order {n}"),
    ("TimeoutError", "timeout after {n} ms connecting to 10.0.{n}.12:5432"),
    ("NotFound", "product {n} not found"),
]


def fresh_database(name: str) -> str:
    """Drop and create database `name`, migrate it to head, return its URL."""
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")
        admin.execute(f"create database {name}")
    url = f"{SERVER}/{name}"
    migrate(url)
    return url


def migrate(url: str) -> None:
    """`alembic upgrade head` on the database at `url`."""
    config = Config(str(ROOT / "alembic.ini"))
    config.cmd_opts = type("Options", (), {"x": [f"url={url}"]})()
    command.upgrade(config, "head")


def drop_database(name: str) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f"drop database if exists {name} with (force)")


@dataclass
class Timer:
    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timer]:
    timer = Timer()
    start = time.perf_counter()
    yield timer
    timer.seconds = time.perf_counter() - start


def environment() -> dict:
    """What a result was measured on: the commit, Python, PostgreSQL, the machine's cores."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    with psycopg.connect(f"{SERVER}/postgres") as conn:
        postgresql = conn.execute("show server_version").fetchone()[0]
    return {
        "commit": commit or None,
        "python": platform.python_version(),
        "postgresql": postgresql,
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
    }


def save(name: str, result: dict, command: str | None = None) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": name,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": command or f"python -m bench {name}",
        **environment(),
        **result,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


NARROW_ATTRIBUTES = ("http.request.method", "http.route", "http.response.status_code")


def span_dicts(
    count: int, seed: int = 7, base_ns: int = 1_764_000_000_000_000_000, narrow: bool = False
) -> Iterator[dict]:
    """Realistic spans: traces of 1-8 spans over six services, ~3 % errors.

    `narrow`: three attributes a span and a resource of its service name
    alone, where the flush's fixed costs per span weigh most.
    """
    rng = random.Random(seed)
    produced = 0
    while produced < count:
        trace_id = f"{rng.getrandbits(128):032x}"
        start = base_ns + rng.randrange(0, 3_600_000_000_000)
        parent = None
        for _ in range(min(rng.randint(1, 8), count - produced)):
            span_id = f"{rng.getrandbits(64):016x}"
            service = rng.choice(SERVICES)
            route = rng.choice(ROUTES)
            status = rng.choice([200, 200, 200, 201, 404, 500])
            duration = rng.randrange(100_000, 900_000_000)
            attributes = {
                "http.request.method": rng.choice(["GET", "POST"]),
                "http.route": route,
                "http.response.status_code": status,
                "url.path": route.replace("{id}", str(rng.randrange(10**6))),
                "user.id": rng.randrange(10**9),
            }
            error = rng.random() < 0.03
            events = []
            message = None
            if error:
                kind, template = rng.choice(ERRORS)
                message = template.replace("{n}", str(rng.randrange(10**4)))
                events = [
                    {
                        "name": "exception",
                        "time": None,
                        "attributes": {"exception.type": kind, "exception.message": message},
                    }
                ]
            if narrow:
                attributes = {key: attributes[key] for key in NARROW_ATTRIBUTES}
            yield {
                "trace_id": trace_id,
                "span_id": span_id,
                "parent_span_id": parent,
                "name": f"{attributes['http.request.method']} {route}",
                "kind": rng.choice(["SERVER", "CLIENT", "INTERNAL"]),
                "start_ns": start,
                "end_ns": start + duration,
                "status_code": "ERROR" if error else "UNSET",
                "status_message": message,
                "service_name": service,
                "attributes": attributes,
                "resource_attributes": {"service.name": service}
                if narrow
                else {"service.name": service, "host.name": f"host-{rng.randrange(20)}"},
                "events": events,
            }
            parent = span_id
            produced += 1


def typed_row(span: dict) -> list:
    """A span as a row of otel.traces_staging (see TYPED_COLUMNS)."""
    return [
        span["trace_id"],
        span["span_id"],
        span["parent_span_id"],
        span["name"],
        span["kind"],
        str(span["start_ns"]),
        str(span["end_ns"]),
        span["status_code"],
        span["status_message"],
        span["service_name"],
        json.dumps(span["attributes"]),
        json.dumps(span["resource_attributes"]),
        json.dumps(span["events"]),
    ]


TYPED_COLUMNS = (
    "trace_id, span_id, parent_span_id, name, kind, start_time, end_time, status_code, status_message,"
    " service_name, attributes, resource_attributes, events"
)


def typed_line(span: dict) -> str:
    """A span as a line of COPY's text format for otel.traces_staging (TYPED_COLUMNS), for a file to COPY later."""

    def copy_text(value: str | None) -> str:
        return "\\N" if value is None else value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

    return "\t".join(copy_text(value) for value in typed_row(span)) + "\n"


def otlp_copy_line(line: str) -> str:
    """An OTLP/JSON request as a line of the CSV-framed COPY into otel.otlp_staging (otel_db.ingest.OTLP_COPY_SQL)."""
    return "\x01" + line + "\x01\n"


def copy_staging_file(conn: psycopg.Connection, path: Path) -> None:
    """COPY a file of typed_line()s into otel.traces_staging, or of otlp_copy_line()s (*.otlp) into
    otel.otlp_staging, a block at a time."""
    sql = OTLP_COPY_SQL if path.suffix == ".otlp" else f"copy otel.traces_staging ({TYPED_COLUMNS}) from stdin"
    with conn.cursor().copy(sql) as copy, path.open("rb") as f:
        while block := f.read(1 << 20):
            copy.write(block)


def otlp_value(value: object) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    return {"stringValue": str(value)}


def otlp_lines(spans: Iterator[dict], per_request: int = 200) -> Iterator[str]:
    """OTLP/JSON export requests, one line each, spans grouped by service."""
    batch: list[dict] = []
    for span in spans:
        batch.append(span)
        if len(batch) == per_request:
            yield _otlp_request(batch)
            batch = []
    if batch:
        yield _otlp_request(batch)


def _otlp_request(spans: list[dict]) -> str:
    by_service: dict[str, list[dict]] = {}
    for span in spans:
        by_service.setdefault(span["service_name"], []).append(span)
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [
                            {"key": k, "value": otlp_value(v)} for k, v in group[0]["resource_attributes"].items()
                        ]
                    },
                    "scopeSpans": [{"scope": {"name": "bench"}, "spans": [_otlp_span(s) for s in group]}],
                }
                for group in by_service.values()
            ]
        },
        separators=(",", ":"),
    )


def _otlp_span(span: dict) -> dict:
    body = {
        "traceId": span["trace_id"],
        "spanId": span["span_id"],
        "name": span["name"],
        "kind": {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3}[span["kind"]],
        "startTimeUnixNano": str(span["start_ns"]),
        "endTimeUnixNano": str(span["end_ns"]),
        "attributes": [{"key": k, "value": otlp_value(v)} for k, v in span["attributes"].items()],
        "status": {"code": 2, "message": span["status_message"]} if span["status_code"] == "ERROR" else {},
    }
    if span["parent_span_id"]:
        body["parentSpanId"] = span["parent_span_id"]
    if span["events"]:
        body["events"] = [
            {
                "name": "exception",
                "timeUnixNano": str(span["end_ns"]),
                "attributes": [{"key": k, "value": otlp_value(v)} for k, v in span["events"][0]["attributes"].items()],
            }
        ]
    return body
