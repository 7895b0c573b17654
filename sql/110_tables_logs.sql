-- Log records, partitioned by day (UTC) of their time.

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
    event_name text,
    -- Stored, so that otel.search_logs() ranks matches without parsing every
    -- matching body again. A bounded prefix: a tsvector is limited to 1 MB,
    -- and one huge body must not fail a flush.
    body_tsv tsvector generated always as (to_tsvector('english', left(coalesce(body, ''), 65536))) stored
) partition by range (time);
comment on table otel.logs is
    'One row per log record: body as text (non-string bodies as JSON text), severity, the trace and span it belongs to, attributes as jsonb; full-text searchable; partitioned by day of time';

create index logs_time_idx on otel.logs using brin (time);
create index logs_service_time_idx on otel.logs (service_name, time desc);
create index logs_trace_idx on otel.logs (trace_id, time) where trace_id is not null;
create index logs_body_fts_idx on otel.logs using gin (body_tsv);
