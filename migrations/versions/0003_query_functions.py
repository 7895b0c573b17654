"""Query functions for readers (errors, span trees, trace logs, log search, metric series), retention, and uncompressed OTLP staging.

Revision ID: 0003
Revises: 0002
"""

from migrations.sqlfiles import execute_sql, run_frozen_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LOG_SEARCH = r"""
-- The full-text vector of a log body, stored: otel.search_logs() ranks its
-- matches by it without parsing every matching body again.
drop index otel.logs_body_fts_idx;
alter table otel.logs add column body_tsv tsvector
    generated always as (to_tsvector('english', left(coalesce(body, ''), 65536))) stored;
create index logs_body_fts_idx on otel.logs using gin (body_tsv);
"""

STAGING_STORAGE = r"""
-- OTLP/JSON requests are large and transient: compressing them on their way
-- through staging costs writers and the flush more than the space it saves.
alter table otel.otlp_staging alter column payload set storage external;
alter table otel.claimed_otlp alter column payload set storage external;
"""

UNDO = r"""
alter table otel.otlp_staging alter column payload set storage extended;
alter table otel.claimed_otlp alter column payload set storage extended;
drop index otel.logs_body_fts_idx;
alter table otel.logs drop column body_tsv;
create index logs_body_fts_idx on otel.logs using gin (to_tsvector('english', left(coalesce(body, ''), 65536)));

drop function otel.traces_by_error(timestamptz, timestamptz, text, integer);
drop function otel.trace_spans(text);
drop function otel.trace_logs(text);
drop function otel.search_logs(text, timestamptz, timestamptz, text, integer, integer);
drop function otel.metric_series(text, interval, timestamptz, timestamptz, jsonb, text);
drop function otel.histogram_quantile(double precision, numeric[], double precision[]);
drop function otel.metric_series_mixed_bounds(text, timestamptz);
drop function otel.check_limit(integer);
drop function otel.check_time_range(timestamptz, timestamptz, boolean);
drop function otel.normalize_trace_id(text);
drop function otel.set_retention(text, interval);
drop function otel.drop_expired_partitions();
"""


def upgrade() -> None:
    execute_sql(LOG_SEARCH)
    execute_sql(STAGING_STORAGE)
    run_frozen_sql("0003")


def downgrade() -> None:
    execute_sql(UNDO)
    run_frozen_sql("0002")
