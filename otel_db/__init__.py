"""otel_db: a PostgreSQL store for OpenTelemetry traces, logs and metrics.

The database does the work; this package is the thin client around it.
"""

from otel_db.aio import AsyncClient
from otel_db.client import Client, InvalidArgument, OtelDbError, QueryTimeout, ReadOnlyQueryError, TooManyRows
from otel_db.ingest import IngestError, IngestReport
from otel_db.results import (
    ErrorSpan,
    LogRecord,
    MetricPoint,
    RootCause,
    SpanNode,
    SuspectAttribute,
    TraceContext,
    TraceDifference,
    TraceExplanation,
    TraceResult,
)
from otel_db.settings import Settings

__all__ = [
    "AsyncClient",
    "Client",
    "ErrorSpan",
    "IngestError",
    "IngestReport",
    "InvalidArgument",
    "LogRecord",
    "MetricPoint",
    "OtelDbError",
    "QueryTimeout",
    "ReadOnlyQueryError",
    "RootCause",
    "Settings",
    "SpanNode",
    "SuspectAttribute",
    "TooManyRows",
    "TraceContext",
    "TraceDifference",
    "TraceExplanation",
    "TraceResult",
]
