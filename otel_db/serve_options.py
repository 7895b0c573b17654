"""The options of `otel-db serve`, without its dependencies.

Kept apart from `otel_db.serve` so that the `otel-db` command (and its
`--help`) works where the serve extra (aiohttp, grpcio) is not installed.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from otel_db.settings import DEFAULT_FLUSH_INTERVAL, PREFIX, Settings

# The bearer token clients must send; an environment variable, so that it stays out of `ps`.
TOKEN_VARIABLE = PREFIX + "SERVE_TOKEN"
ADMIN_TOKEN_VARIABLE = PREFIX + "SERVE_ADMIN_TOKEN"

MiB = 2**20
DEFAULT_HTTP = ("127.0.0.1", 4318)
DEFAULT_GRPC = ("127.0.0.1", 4317)
DEFAULT_QUERY = ("127.0.0.1", 16686)
DEFAULT_MAX_BODY = 20 * MiB
DEFAULT_MAX_INFLIGHT = 64 * MiB
DEFAULT_MAX_BACKLOG = 1024 * MiB

_SIZE = re.compile(r"\s*(\d+)\s*(|b|k|kb|kib|m|mb|mib|g|gb|gib)\s*", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}


@dataclass(frozen=True, slots=True)
class ServeOptions:
    http: tuple[str, int] = DEFAULT_HTTP
    grpc: tuple[str, int] = DEFAULT_GRPC
    query: tuple[str, int] | None = DEFAULT_QUERY  # None: no query API
    max_body: int = DEFAULT_MAX_BODY
    max_inflight: int = DEFAULT_MAX_INFLIGHT
    max_backlog: int = DEFAULT_MAX_BACKLOG  # 0: no limit
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    flush: bool = True
    embed: bool = True
    token: str | None = None
    admin_token: str | None = None  # None: the web page cannot retry dead letters


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--http", type=address, default=DEFAULT_HTTP, metavar="HOST:PORT", help="OTLP/HTTP (default 127.0.0.1:4318)"
    )
    parser.add_argument(
        "--grpc", type=address, default=DEFAULT_GRPC, metavar="HOST:PORT", help="OTLP/gRPC (default 127.0.0.1:4317)"
    )
    parser.add_argument(
        "--query",
        type=address,
        default=DEFAULT_QUERY,
        metavar="HOST:PORT",
        help="the Jaeger-compatible query API and the web page (default 127.0.0.1:16686);"
        " they read as otel_reader, and only the admin token may retry dead letters",
    )
    parser.add_argument("--no-query", action="store_true", help="do not serve the query API and the web page")
    parser.add_argument(
        "--max-body",
        type=positive_size,
        default=DEFAULT_MAX_BODY,
        metavar="BYTES",
        help="largest request, after decompression (default 20MiB); larger ones get 413",
    )
    parser.add_argument(
        "--max-inflight",
        type=positive_size,
        default=DEFAULT_MAX_INFLIGHT,
        metavar="BYTES",
        help="requests received but not yet committed, as OTLP/JSON (default 64MiB); beyond it 503",
    )
    parser.add_argument(
        "--max-backlog",
        type=size,
        default=DEFAULT_MAX_BACKLOG,
        metavar="BYTES",
        help="refuse (503) while the staging tables hold more than this (default 1GiB; 0: no limit)",
    )
    parser.add_argument(
        "--flush-interval",
        type=positive_float,
        metavar="SECONDS",
        help="call otel.flush() this often (default OTEL_STORAGE_FLUSH_INTERVAL, 5)",
    )
    parser.add_argument("--no-flush", action="store_true", help="do not flush (pg_cron or another process does)")
    parser.add_argument("--no-embed", action="store_true", help="do not embed new span signatures")
    parser.add_argument(
        "--token",
        help=f"require `Authorization: Bearer TOKEN` here and on the query API (default {TOKEN_VARIABLE});"
        " /healthz stays open",
    )
    parser.add_argument(
        "--admin-token",
        help="let the web page retry dead letters (as otel_admin) with `Authorization: Bearer ADMIN_TOKEN`"
        f" (default {ADMIN_TOKEN_VARIABLE}, better: a command line shows in `ps`; without it nobody can)",
    )


def options_from_args(
    args: argparse.Namespace, settings: Settings, environ: Mapping[str, str] | None = None
) -> ServeOptions:
    env = os.environ if environ is None else environ
    return ServeOptions(
        http=args.http,
        grpc=args.grpc,
        query=None if args.no_query else args.query,
        max_body=args.max_body,
        max_inflight=args.max_inflight,
        max_backlog=args.max_backlog,
        flush_interval=args.flush_interval or settings.flush_interval,
        flush=not args.no_flush,
        embed=not args.no_embed,
        token=args.token or env.get(TOKEN_VARIABLE, "").strip() or None,
        admin_token=args.admin_token or env.get(ADMIN_TOKEN_VARIABLE, "").strip() or None,
    )


def address(text: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or :PORT (all interfaces) as (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host or "0.0.0.0", int(port)


def size(text: str) -> int:
    """A byte count: 1048576, 64KiB, 20MiB, 1GiB (k, M, G and KB, MB, GB mean the same powers of 1024)."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a size such as 1048576, 512KiB or 20MiB, got {text!r}")
    return int(match[1]) * _UNITS[match[2][:1].lower()]


def positive_size(text: str) -> int:
    value = size(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a size of at least one byte, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value
