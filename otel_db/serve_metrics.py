"""The Prometheus metrics of `otel-db serve`, in a registry of their own.

prometheus_client is the reference client library; a private
CollectorRegistry (rather than the module-global one) keeps two servers in
one process, or a test, from sharing counters, and leaves out the
process/platform collectors that an embedding application registers itself.
"""

from __future__ import annotations

import math
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServeMetrics:
    """Counters the receivers and the writer update, gauges the database watcher sets."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "otel_db_serve_requests",
            "OTLP export requests answered, by signal, protocol (http, grpc) and status (HTTP code or gRPC code name)",
            ["signal", "protocol", "status"],
            registry=registry,
        )
        self.records = Counter(
            "otel_db_serve_records",
            "Spans, log records and metric data points committed to staging",
            ["signal"],
            registry=registry,
        )
        self.received_bytes = Counter(
            "otel_db_serve_received_bytes",
            "Request bytes received (HTTP: the body as sent, compressed or not; gRPC: the decoded message)",
            ["signal", "protocol"],
            registry=registry,
        )
        self.refused = Counter(
            "otel_db_serve_refused_requests",
            "Requests answered 503 / UNAVAILABLE, by reason (overloaded, backlog, database, stopping)",
            ["reason"],
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "otel_db_serve_commit_seconds",
            "Time to COPY and commit one batch of requests",
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.batch_requests = Histogram(
            "otel_db_serve_batch_requests",
            "Requests committed together in one transaction (group commit)",
            registry=registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.failed_batches = Counter(
            "otel_db_serve_failed_batches", "Batches the database did not store", registry=registry
        )
        self.inflight_bytes = Gauge(
            "otel_db_serve_inflight_bytes", "Bytes of received requests not yet committed", registry=registry
        )
        self.backlog_bytes = Gauge(
            "otel_db_serve_staging_backlog_bytes",
            "Size of the staging tables (otel.staging_bytes(), on every worker on Citus): what waits for otel.flush()",
            registry=registry,
        )
        self.embedding_pending = Gauge(
            "otel_db_serve_embedding_pending_signatures",
            "Span signatures waiting for an embedding (otel.embedding_status.pending): the embedding lag",
            registry=registry,
        )
        self.last_flush_end = math.nan  # Unix time of the last completed otel.flush(), from otel.flush_runs
        Gauge(
            "otel_db_serve_flush_lag_seconds",
            "Seconds since the last completed otel.flush() of this database, by any process (NaN: none yet)",
            registry=registry,
        ).set_function(lambda: time.time() - self.last_flush_end)

    def observe_batch(self, requests: int, seconds: float, committed: bool) -> None:
        """The staging writer's report of one batch."""
        if committed:
            self.commit_seconds.observe(seconds)
            self.batch_requests.observe(requests)
        else:
            self.failed_batches.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
