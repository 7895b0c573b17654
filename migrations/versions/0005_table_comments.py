"""Every table says what it holds (`comment on table`), so that `\\dt+ otel.*` documents the schema.

Revision ID: 0005
Revises: 0004
"""

from migrations.schema import execute_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_sql("""
comment on table otel.traces is
    'One row per span, as the OpenTelemetry Collector''s ClickHouse exporter stores them: ids in lower-case hex, kind and status by name, attributes, events and links as jsonb; unique by (trace_id, span_id), partitioned by day of start_time';
comment on table otel.trace_summaries is
    'One row per trace, kept by the flush as spans arrive: time span, root service and operation, span and error counts, services involved';
comment on table otel.logs is
    'One row per log record: body as text (non-string bodies as JSON text), severity, the trace and span it belongs to, attributes as jsonb; full-text searchable; partitioned by day of time';
comment on table otel.metrics is
    'One row per metric data point: gauge and sum values, histogram counts and bounds, summary quantiles, labels as jsonb; partitioned by day of time';
comment on table otel.traces_staging is
    'Spans as writers COPY them: the columns of otel.traces as text (times as RFC 3339 or Unix nanoseconds, JSON as JSON text, kind and status by name or number); moved by otel.flush()';
comment on table otel.logs_staging is
    'Log records as writers COPY them: the columns of otel.logs as text; moved by otel.flush()';
comment on table otel.metrics_staging is
    'Metric data points as writers COPY them: the columns of otel.metrics as text; moved by otel.flush()';
comment on table otel.otlp_staging is
    'OTLP/JSON export requests, one per row, as the Collector''s file exporter writes them; load with CSV format and quote and delimiter characters that never occur; moved by otel.flush()';
comment on table otel.claimed_otlp is
    'OTLP/JSON requests claimed by the running flush; internal';
comment on table otel.claimed_traces is
    'Spans claimed by the running flush; internal';
comment on table otel.claimed_logs is
    'Log records claimed by the running flush; internal';
comment on table otel.claimed_metrics is
    'Metric data points claimed by the running flush; internal';
comment on table otel.telemetry_dlq is
    'The dead-letter queue: one row per rejected input row (or rejected record of an OTLP request), with the reason; otel.retry_dlq() validates them again';
comment on table otel.flush_runs is
    'One row per completed otel.flush(): when, how long, rows moved per kind, rows dead-lettered, duplicates dropped';
comment on table otel.retention is
    'How long each kind of telemetry is kept (otel.set_retention()); otel.maintain() drops whole partitions past it';
comment on table otel.span_signatures is
    'One row per distinct normalised span text (service, kind, name, status, exception, HTTP, database, messaging): its all-MiniLM-L6-v2 embedding, the model that made it, and the embedding queue''s attempts';
""")


def downgrade() -> None:
    execute_sql("""
comment on table otel.traces is null;
comment on table otel.trace_summaries is null;
comment on table otel.logs is null;
comment on table otel.metrics is null;
comment on table otel.traces_staging is null;
comment on table otel.logs_staging is null;
comment on table otel.metrics_staging is null;
comment on table otel.otlp_staging is null;
comment on table otel.claimed_otlp is null;
comment on table otel.claimed_traces is null;
comment on table otel.claimed_logs is null;
comment on table otel.claimed_metrics is null;
comment on table otel.telemetry_dlq is null;
comment on table otel.flush_runs is null;
comment on table otel.retention is null;
comment on table otel.span_signatures is null;
""")
