"""Foundation: schema otel, final, staging and queue tables, roles, flush pipeline.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from migrations.sqlfiles import execute_sql, run_frozen_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = r"""
create extension if not exists vector;

-- pg_cron is optional: installed when this is its database (cron.database_name);
-- from any other database the jobs are registered there through dblink.
do $$
begin
    if current_setting('cron.database_name', true) = current_database() then
        create extension if not exists pg_cron;
    elsif current_setting('cron.database_name', true) is not null
      and exists (select 1 from pg_available_extensions where name = 'dblink') then
        create extension if not exists dblink;
    end if;
end
$$;

create schema otel;
comment on schema otel is 'otel_db: OpenTelemetry traces, logs and metrics';

-- Final tables, partitioned by day (UTC). otel.ensure_partitions() creates
-- partitions ahead of time and on demand during a flush.
create table otel.traces (
    trace_id text not null,
    span_id text not null,
    parent_span_id text,
    trace_state text,
    flags bigint,
    name text not null,
    kind text not null,
    start_time timestamptz not null,
    end_time timestamptz not null,
    duration_ms double precision not null,
    status_code text not null,
    status_message text,
    service_name text,
    scope_name text,
    scope_version text,
    attributes jsonb not null default '{}',
    resource_attributes jsonb not null default '{}',
    events jsonb not null default '[]',
    links jsonb not null default '[]',
    signature_id bigint,
    constraint traces_kind_check check (kind in ('UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER')),
    constraint traces_status_check check (status_code in ('UNSET', 'OK', 'ERROR'))
) partition by range (start_time);
create index traces_start_time_idx on otel.traces using brin (start_time);
create index traces_service_time_idx on otel.traces (service_name, start_time desc);
create index traces_trace_span_idx on otel.traces (trace_id, span_id);
create index traces_errors_idx on otel.traces (start_time desc) where status_code = 'ERROR';
create index traces_attributes_idx on otel.traces using gin (attributes jsonb_path_ops);
create index traces_signature_idx on otel.traces (signature_id);

create table otel.trace_summaries (
    trace_id text primary key,
    start_time timestamptz not null,
    end_time timestamptz not null,
    duration_ms double precision not null,
    root_service text,
    root_name text,
    span_count bigint not null,
    error_count bigint not null,
    services text[] not null default '{}'
);
create index trace_summaries_start_time_idx on otel.trace_summaries (start_time desc);

create table otel.logs (
    time timestamptz not null,
    observed_time timestamptz,
    severity_number integer,
    severity_text text,
    body text,
    trace_id text,
    span_id text,
    flags bigint,
    service_name text,
    scope_name text,
    scope_version text,
    attributes jsonb not null default '{}',
    resource_attributes jsonb not null default '{}',
    event_name text
) partition by range (time);
create index logs_time_idx on otel.logs using brin (time);
create index logs_service_time_idx on otel.logs (service_name, time desc);
create index logs_trace_idx on otel.logs (trace_id, time) where trace_id is not null;
-- A bounded prefix: a tsvector is limited to 1 MB, and one huge body must not fail a flush.
create index logs_body_fts_idx on otel.logs using gin (to_tsvector('english', left(coalesce(body, ''), 65536)));

create table otel.metrics (
    time timestamptz not null,
    start_time timestamptz,
    name text not null,
    description text,
    type text not null,
    unit text,
    value double precision,
    int_value numeric,
    count numeric,
    sum double precision,
    min double precision,
    max double precision,
    bucket_counts numeric[],
    explicit_bounds double precision[],
    quantiles jsonb,
    exponential jsonb,
    exemplars jsonb,
    temporality text,
    is_monotonic boolean,
    flags bigint,
    labels jsonb not null default '{}',
    resource_attributes jsonb not null default '{}',
    service_name text,
    scope_name text,
    scope_version text,
    constraint metrics_type_check check (type in ('gauge', 'sum', 'histogram', 'exponential_histogram', 'summary')),
    constraint metrics_temporality_check check (temporality in ('unspecified', 'delta', 'cumulative'))
) partition by range (time);
create index metrics_time_idx on otel.metrics using brin (time);
create index metrics_name_time_idx on otel.metrics (name, time desc);
create index metrics_labels_idx on otel.metrics using gin (labels jsonb_path_ops);

-- Staging tables: UNLOGGED and all text, so COPY never fails on a value;
-- otel.flush() judges every row. Autovacuum is eager here because these
-- tables churn completely on every flush.
create unlogged table otel.traces_staging (
    trace_id text, span_id text, parent_span_id text, trace_state text, flags text,
    name text, kind text, start_time text, end_time text,
    status_code text, status_message text,
    service_name text, scope_name text, scope_version text,
    attributes text, resource_attributes text, events text, links text
) with (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_cost_delay = 0);

create unlogged table otel.logs_staging (
    time text, observed_time text, severity_number text, severity_text text, body text,
    trace_id text, span_id text, flags text,
    service_name text, scope_name text, scope_version text,
    attributes text, resource_attributes text, event_name text
) with (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_cost_delay = 0);

create unlogged table otel.metrics_staging (
    time text, start_time text, name text, description text, type text, unit text,
    value text, count text, sum text, min text, max text,
    bucket_counts text, explicit_bounds text, quantiles text, exponential text, exemplars text,
    temporality text, is_monotonic text, flags text,
    labels text, resource_attributes text, service_name text, scope_name text, scope_version text
) with (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_cost_delay = 0);

create unlogged table otel.otlp_staging (
    payload text
) with (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 100,
        autovacuum_vacuum_cost_delay = 0);

-- Claim tables: a flush first moves staged rows here in a short
-- transaction, then processes them in a second one (see otel.flush()).
create unlogged table otel.claimed_otlp (like otel.otlp_staging);
create unlogged table otel.claimed_traces (like otel.traces_staging);
create unlogged table otel.claimed_logs (like otel.logs_staging);
create unlogged table otel.claimed_metrics (like otel.metrics_staging);

create table otel.telemetry_dlq (
    id bigint generated always as identity primary key,
    telemetry_type text not null,
    source text not null,
    raw_data text not null,
    raw_format text not null default 'text',
    error_message text not null,
    created_at timestamptz not null default now(),
    processed_at timestamptz,
    retry_count integer not null default 0,
    constraint telemetry_dlq_type_check check (telemetry_type in ('traces', 'logs', 'metrics', 'otlp')),
    constraint telemetry_dlq_format_check check (raw_format in ('text', 'row-json', 'bytea-escape'))
);
create index telemetry_dlq_pending_idx on otel.telemetry_dlq (created_at) where processed_at is null;
comment on column otel.telemetry_dlq.raw_data is
    'The rejected input. raw_format text: as received; row-json: a staging row as a JSON object of its columns; bytea-escape: bytes PostgreSQL cannot store as text, recover them with decode(raw_data, ''escape'')';

create table otel.flush_runs (
    id bigint generated always as identity primary key,
    started_at timestamptz not null,
    duration interval not null,
    spans bigint not null default 0,
    logs bigint not null default 0,
    metric_points bigint not null default 0,
    otlp_requests bigint not null default 0,
    dead_lettered bigint not null default 0,
    duplicates bigint not null default 0,
    truncated_staging text[] not null default '{}'
);
create index flush_runs_started_at_idx on otel.flush_runs (started_at desc);

create table otel.span_signatures (
    id bigint generated always as identity primary key,
    text text not null,
    text_hash uuid generated always as (md5(text)::uuid) stored unique,
    embedding vector(384),
    embedding_model text,
    embedded_at timestamptz,
    attempts integer not null default 0,
    last_error text,
    next_attempt_at timestamptz,
    created_at timestamptz not null default now(),
    span_count bigint not null default 0
);
create index span_signatures_pending_idx on otel.span_signatures (id) where embedding is null;

create table otel.retention (
    kind text primary key check (kind in ('traces', 'logs', 'metrics')),
    keep interval not null check (keep > interval '0')
);
"""

ROLES = r"""
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'otel_writer') then
        create role otel_writer nologin;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'otel_reader') then
        create role otel_reader nologin;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'otel_admin') then
        create role otel_admin nologin;
    end if;
end
$$;
"""

DROP_ALL = r"""
-- Remove this database's pg_cron jobs, wherever pg_cron lives; without
-- pg_cron (or dblink to reach it) there are none to remove.
do $$
begin
    perform otel.unschedule_flush();
exception when feature_not_supported then
    raise notice 'otel_db: no pg_cron jobs removed: %', sqlerrm;
end
$$;
drop schema otel cascade;
"""


def upgrade() -> None:
    execute_sql(ROLES)
    execute_sql(TABLES)
    run_frozen_sql("0001")


def downgrade() -> None:
    execute_sql(DROP_ALL)
