-- What the pipeline keeps about itself: rejected input, one row per flush,
-- and the retention of each kind of telemetry.

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
comment on table otel.telemetry_dlq is
    'The dead-letter queue: one row per rejected input row (or rejected record of an OTLP request), with the reason; otel.retry_dlq() validates them again';
comment on column otel.telemetry_dlq.raw_data is
    'The rejected input. raw_format text: as received; row-json: a staging row as a JSON object of its columns; bytea-escape: bytes PostgreSQL cannot store as text, recover them with decode(raw_data, ''escape'')';

create index telemetry_dlq_pending_idx on otel.telemetry_dlq (created_at) where processed_at is null;

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
comment on table otel.flush_runs is
    'One row per completed otel.flush(): when, how long, rows moved per kind, rows dead-lettered, duplicates dropped';

create index flush_runs_started_at_idx on otel.flush_runs (started_at desc);

-- Flushes, retries and maintenance serialise on a lock of this table, which
-- only roles with otel grants may take (any role could take an advisory
-- lock and hold it). It holds no rows.
create table otel.flush_lock ();
comment on table otel.flush_lock is
    'Holds no rows: otel.flush(), otel.retry_dlq() and otel.maintain() serialise on its lock (otel.take_flush_lock())';

create table otel.retention (
    kind text primary key check (kind in ('traces', 'logs', 'metrics')),
    keep interval not null check (keep > interval '0')
);
comment on table otel.retention is
    'How long each kind of telemetry is kept (otel.set_retention()); otel.maintain() drops whole partitions past it';

create table otel.cold_storage (
    kind text primary key check (kind in ('traces', 'logs', 'metrics')),
    older_than interval not null check (older_than > interval '0')
);
comment on table otel.cold_storage is
    'After how long the daily partitions of each kind of telemetry become columnar (otel.set_cold_storage()); otel.maintain() converts them';
