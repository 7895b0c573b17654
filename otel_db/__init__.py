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
    OperationSummary,
    RootCause,
    ServiceCall,
    ServiceSummary,
    SpanNode,
    SuspectAttribute,
    TraceContext,
    TraceDifference,
    TraceExplanation,
    TraceResult,
    TraceSummary,
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
    "OperationSummary",
    "OtelDbError",
    "QueryTimeout",
    "ReadOnlyQueryError",
    "RootCause",
    "ServiceCall",
    "ServiceSummary",
    "Settings",
    "SpanNode",
    "SuspectAttribute",
    "TooManyRows",
    "TraceContext",
    "TraceDifference",
    "TraceExplanation",
    "TraceResult",
    "TraceSummary",
]
