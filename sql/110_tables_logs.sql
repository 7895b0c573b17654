-- Log records, partitioned by day (UTC) of their time. Large values are
-- compressed with lz4, as in otel.traces.

create table otel.logs (
    time timestamptz not null,
    observed_time timestamptz,
    severity_number integer,
    severity_text text,
    body text compression lz4,
    trace_id text,
    span_id text,
    flags bigint,
    service_name text,
    scope_name text,
    scope_version text,
    attributes jsonb compression lz4 not null default '{}',
    resource_attributes jsonb compression lz4 not null default '{}',
    event_name text,
    -- Stored, so that otel.search_logs() ranks matches without parsing every
    -- matching body again. A bounded prefix: a tsvector is limited to 1 MB,
    -- and one huge body must not fail a flush.
    body_tsv tsvector generated always as (to_tsvector('english', left(coalesce(body, ''), 65536))) stored,
    -- By which Citus spreads the records (otel.distribute()): a record in a
    -- trace beside the trace's spans. Null on one node.
    shard_key text
) partition by range (time);
comment on table otel.logs is
    'One row per log record, partitioned by day of time: time, observed_time, severity_number, severity_text, body (text; a non-string body as JSON text), trace_id, span_id, flags, service_name, scope_name, scope_version, attributes, resource_attributes, event_name, body_tsv, shard_key (on Citus, the distribution key: otel.log_shard_key(), the trace id of a record in a trace, so that it lies beside the trace''s spans; null on one node). Indexes, on each partition in row format (otel.index_partition()): BRIN (time); (service_name, time desc); (trace_id, time) where trace_id is not null; GIN full text on the stored column `body_tsv` = `to_tsvector(''english'', left(coalesce(body, ''''), 65536))` (the first 64 Ki characters: a tsvector holds at most 1 MB); query it as `body_tsv @@ websearch_to_tsquery(''english'', …)`. A cold partition (otel.set_cold_storage()) is columnar, without indexes';
