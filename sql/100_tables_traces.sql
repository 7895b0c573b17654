-- Spans and one summary row per trace. Final tables are partitioned by
-- day (UTC); otel.ensure_partitions() creates the partitions ahead of time
-- and on demand during a flush, each with its own indexes. Columns that can hold large values (over
-- 2 kB PostgreSQL compresses them) use lz4: it compresses stack traces and
-- long attribute values in half pglz's time, for about a tenth more bytes
-- (`python -m bench toast_compression`). A new partition takes its
-- columns' compression from otel.traces.

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
    status_message text compression lz4,
    service_name text,
    scope_name text,
    scope_version text,
    attributes jsonb compression lz4 not null default '{}',
    resource_attributes jsonb compression lz4 not null default '{}',
    events jsonb compression lz4 not null default '[]',
    links jsonb compression lz4 not null default '[]',
    signature_id bigint,
    constraint traces_kind_check check (kind in ('UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER')),
    constraint traces_status_check check (status_code in ('UNSET', 'OK', 'ERROR'))
) partition by range (start_time);
comment on table otel.traces is
    'One row per span: trace_id, span_id, parent_span_id (null for a root), trace_state, flags, name, kind, start_time, end_time, duration_ms, status_code, status_message, service_name, scope_name, scope_version, attributes, resource_attributes, events (`[{name, time, attributes}]`), links (`[{trace_id, span_id, trace_state, attributes}]`), signature_id. Indexes, on each partition in row format (otel.index_partition()): BRIN (start_time); (service_name, start_time desc); (trace_id); (start_time desc) where status_code = ''ERROR''; GIN `jsonb_path_ops` (attributes), for `@>`; (signature_id, start_time desc). A cold partition (otel.set_cold_storage()) is columnar, without indexes; a cold day of many spans is split by trace id into columnar slices (<partition>_t00 …, otel.cold_trace_slices())';

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
comment on table otel.trace_summaries is
    'One row per trace, kept current by the flush: trace_id (primary key), start_time, end_time, duration_ms, root_service, root_name, span_count, error_count, services. Indexes: (start_time desc); (root_service, root_name, start_time). The summaries of cold days move to otel.cold_trace_summaries';

create index trace_summaries_start_time_idx on otel.trace_summaries (start_time desc);
-- The traces of one root operation near a time, for otel.explain_trace().
create index trace_summaries_root_operation_idx on otel.trace_summaries (root_service, root_name, start_time);

-- The summaries of cold days: otel.maintain() moves a day's there once its
-- spans are columnar (otel.move_summaries_to_cold()).
create table otel.cold_trace_summaries (like otel.trace_summaries including defaults) partition by range (start_time);
comment on table otel.cold_trace_summaries is
    'The summaries of the traces that started and ended on a cold day of spans (otel.set_cold_storage()), as in otel.trace_summaries: one columnar partition a day (cold_trace_summaries_pYYYYMMDD), rows ordered by trace_id, without indexes. A trace found in otel.trace_summaries is read from there: a summary a flush changed while its day was moved, or that late spans brought back, stays there';

-- Which cold day holds a trace whose summary is cold, without opening
-- every day's partition (a millisecond each).
create table otel.cold_trace_days (
    day date not null,
    bucket text not null,
    bloom bytea not null,
    primary key (bucket, day)
);
comment on table otel.cold_trace_days is
    'Which day of otel.cold_trace_summaries may hold a trace: for each day and each first three hex digits of the trace ids (bucket), a Bloom filter of the day''s trace ids (otel.bloom_bits(): ten bits a trace, three hashes, about 2 % false positives), kept by otel.move_summaries_to_cold() and retention';

create table otel.operation_catalog (
    service_name text not null,
    name text not null,
    span_kind text not null,
    first_seen timestamptz not null,
    last_seen timestamptz not null,
    resource_keys text[] not null default '{}',
    primary key (service_name, name, span_kind)
);
comment on table otel.operation_catalog is
    'Every service, span name and kind stored, with the start of its first and last span and the resource attribute keys seen with it: kept by the flush, pruned with the spans by retention; read by otel.services(), otel.operations() and otel.find_traces()';
