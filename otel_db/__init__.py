"""otel_db: a PostgreSQL store for OpenTelemetry traces, logs and metrics.

The database does the work; this package is the thin client around it.
"""

from otel_db.client import Client
from otel_db.ingest import IngestError, IngestReport
from otel_db.settings import Settings

__all__ = ["Client", "IngestError", "IngestReport", "Settings"]
