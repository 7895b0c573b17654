"""Query functions for readers (errors, span trees, trace logs, log search, metric series) and retention.

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

UNDO = r"""
drop index otel.logs_body_fts_idx;
alter table otel.logs drop column body_tsv;
create index logs_body_fts_idx on otel.logs using gin (to_tsvector('english', left(coalesce(body, ''), 65536)));

drop function otel.traces_by_error(timestamptz, timestamptz, text, integer);
drop function otel.trace_spans(text);
drop function otel.trace_logs(text);
drop function otel.search_logs(text, timestamptz, timestamptz, text, integer, integer);
drop function otel.metric_series(text, interval, timestamptz, timestamptz, jsonb, text);
drop function otel.histogram_quantile(double precision, numeric[], double precision[]);
drop function otel.check_limit(integer);
drop function otel.check_time_range(timestamptz, timestamptz, boolean);
drop function otel.normalize_trace_id(text);
drop function otel.set_retention(text, interval);
drop function otel.drop_expired_partitions();
"""


def upgrade() -> None:
    execute_sql(LOG_SEARCH)
    run_frozen_sql("0003")


def downgrade() -> None:
    execute_sql(UNDO)
    run_frozen_sql("0002")
