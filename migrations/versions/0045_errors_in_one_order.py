"""otel.traces_by_error() orders spans that start at the same time by trace_id, span_id.

Newest first left spans with the same start time in whatever order a plan
read them, and `lim` could cut between them differently on one node and on
Citus, or from one run to the next.

Revision ID: 0045
Revises: 0044
"""

from migrations.schema import execute_sql

revision = "0045"
down_revision = "0044"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.traces_by_error(
    since timestamptz, until timestamptz default now(), service text default null, lim integer default 100)
returns table (
    trace_id text, span_id text, parent_span_id text, service_name text, name text, kind text,
    start_time timestamptz, duration_ms double precision, status_message text,
    exception_type text, exception_message text, attributes jsonb)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    perform otel.check_time_range(since, until, true);
    perform otel.check_limit(lim);
    return query
        select t.trace_id, t.span_id, t.parent_span_id, t.service_name, t.name, t.kind, t.start_time,
               t.duration_ms, t.status_message,
               otel.exception_attribute(t.events, 'exception.type'),
               otel.exception_attribute(t.events, 'exception.message'),
               t.attributes
          from otel.traces as t
         where t.status_code = 'ERROR'
           and t.start_time >= since and t.start_time < until
           and (service is null or t.service_name = service)
         order by t.start_time desc, t.trace_id, t.span_id  -- ties in one order, on one node or many
         limit lim;
end
$$;
comment on function otel.traces_by_error(timestamptz, timestamptz, text, integer) is
    'Error spans started in [since, until), newest first (then by trace_id, span_id): trace_id, span_id, parent_span_id, service_name, name, kind, start_time, duration_ms, status_message, exception_type, exception_message, attributes';
"""

# Never re-created since the baseline: its text as released there.
TRACES_BY_ERROR_0004 = r"""
create or replace function otel.traces_by_error(
    since timestamptz, until timestamptz default now(), service text default null, lim integer default 100)
returns table (
    trace_id text, span_id text, parent_span_id text, service_name text, name text, kind text,
    start_time timestamptz, duration_ms double precision, status_message text,
    exception_type text, exception_message text, attributes jsonb)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    perform otel.check_time_range(since, until, true);
    perform otel.check_limit(lim);
    return query
        select t.trace_id, t.span_id, t.parent_span_id, t.service_name, t.name, t.kind, t.start_time,
               t.duration_ms, t.status_message,
               otel.exception_attribute(t.events, 'exception.type'),
               otel.exception_attribute(t.events, 'exception.message'),
               t.attributes
          from otel.traces as t
         where t.status_code = 'ERROR'
           and t.start_time >= since and t.start_time < until
           and (service is null or t.service_name = service)
         order by t.start_time desc
         limit lim;
end
$$;
comment on function otel.traces_by_error(timestamptz, timestamptz, text, integer) is
    'Error spans started in [since, until), newest first: trace_id, span_id, parent_span_id, service_name, name, kind, start_time, duration_ms, status_message, exception_type, exception_message, attributes';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(TRACES_BY_ERROR_0004)
