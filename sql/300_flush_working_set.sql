-- The working set of one flush, and the stages' shared helpers. A flush
-- (370_flush.sql) runs these stages, each in a file of its own:
--   claim (310) → decode OTLP/JSON (320) → type and validate (330) →
--   partition (340) → move spans, logs, points (350-352) → dead-letter
--   (360) → record the run (370).
-- The working set is temporary tables, dropped at commit:
--   pg_temp.otel_otlp            claimed OTLP/JSON requests, parsed once
--   pg_temp.otel_<kind>_rows     rows as text, numbered n = 1, 2, … (staging
--                                rows and records decoded from requests)
--   pg_temp.otel_<kind>          the same rows typed, or with err set; also
--                                the rows of a claim table typed in place
--                                (n < 0, claimed = their ctid)
--   pg_temp.otel_batch_extent    per kind: first and last time of the valid
--                                rows, how many rows are invalid
--   pg_temp.otel_rejects         everything bound for the dead-letter queue
-- dlq_id is set on rows that otel.retry_dlq() took back from the queue.

create or replace function otel.take_flush_lock()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Serialises flushes, retries and maintenance on otel.flush_lock. From here
-- to the end of the transaction every lock waits at most otel.lock_timeout
-- (a setting; default 10 minutes), then fails with 55P03 instead of
-- waiting for ever behind a stuck holder.
begin
    perform set_config('lock_timeout', coalesce(nullif(current_setting('otel.lock_timeout', true), ''), '10min'), true);
    lock table otel.flush_lock in exclusive mode;
end
$$;
comment on function otel.take_flush_lock() is
    'Takes the lock that serialises flushes, retries and maintenance, with lock_timeout set from otel.lock_timeout (default 10min); internal';

create or replace function otel.flush_prepare()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
-- "does not exist, skipping" for each table below would reach psql on every flush.
set client_min_messages = warning
as $$
begin
    -- Always new tables: these functions run as their owner, so a table of
    -- these names made beforehand by the caller (with a trigger, say) must
    -- never be used.
    drop table if exists pg_temp.otel_otlp, pg_temp.otel_rejects, pg_temp.otel_traces_rows,
        pg_temp.otel_logs_rows, pg_temp.otel_metrics_rows, pg_temp.otel_traces, pg_temp.otel_logs,
        pg_temp.otel_metrics, pg_temp.otel_signature_ids, pg_temp.otel_signature_inputs,
        pg_temp.otel_repeated_keys, pg_temp.otel_batch_extent, pg_temp.otel_retried;
    create temp table otel_otlp (
        id bigint generated always as identity,
        dlq_id bigint,
        payload text,
        doc jsonb
    ) on commit drop;
    -- Requests are large and live for one transaction: compressing them
    -- (the default for TOASTed values) would cost more than it saves.
    alter table pg_temp.otel_otlp alter column payload set storage external, alter column doc set storage external;
    -- Per kind: the first and last time of the valid rows, and how many
    -- rows are invalid (otel.partition_working_set()).
    create temp table otel_batch_extent (
        kind text primary key,
        first_time timestamptz,
        last_time timestamptz,
        invalid_rows bigint
    ) on commit drop;
    create temp table otel_rejects (
        dlq_id bigint,
        telemetry_type text,
        source text,
        raw_data text,
        raw_format text,
        error_message text
    ) on commit drop;
    create temp table otel_traces_rows (
        n bigint generated always as identity, dlq_id bigint,
        payload_id bigint, rs int, ss int, rec int, dp int,
        like otel.traces_staging,
        -- A decoded OTLP span's JSON values as they are (its text columns
        -- for them stay null): typing them does not parse them again.
        attributes_jsonb jsonb, resource_attributes_jsonb jsonb, events_jsonb jsonb, links_jsonb jsonb
    ) on commit drop;
    create temp table otel_logs_rows (
        n bigint generated always as identity, dlq_id bigint,
        payload_id bigint, rs int, ss int, rec int, dp int,
        like otel.logs_staging) on commit drop;
    create temp table otel_metrics_rows (
        n bigint generated always as identity, dlq_id bigint,
        payload_id bigint, rs int, ss int, rec int, dp int,
        like otel.metrics_staging) on commit drop;
    -- Typed rows, shaped by the typing queries themselves.
    execute format('create temp table otel_traces on commit drop as %s with no data',
                   otel.typing_query('traces', otel.claim_table_rows('traces')));
    execute format('create temp table otel_logs on commit drop as %s with no data',
                   otel.typing_query('logs', otel.claim_table_rows('logs')));
    execute format('create temp table otel_metrics on commit drop as %s with no data',
                   otel.typing_query('metrics', otel.claim_table_rows('metrics')));
end
$$;
comment on function otel.flush_prepare() is
    'Creates the temporary tables one flush or retry works in (dropping any of the same names first); internal';

create or replace function otel.working_set_rows(kind text)
returns text
language sql immutable
as $$
    -- The rows n = $1 .. $2; claimed is null: they are not in a claim table.
    select format('(select w.*, null::tid as claimed from pg_temp.%I as w where w.n between $1 and $2) as r',
                  'otel_' || kind || '_rows')
$$;
comment on function otel.working_set_rows(text) is
    'The rows $1 .. $2 of pg_temp.otel_<kind>_rows as a source of the typing query; internal to otel.flush()';

create or replace function otel.claim_table_rows(kind text)
returns text
language sql immutable
as $$
    -- A claim table row's n comes from its physical position (block and
    -- 16-bit line pointer): unique, rising in physical order like the
    -- working set's numbering (so the first of two duplicates is kept
    -- either way), and negative, so that it never meets the n of a
    -- working-set row (1, 2, ...). The point (block, line) times
    -- (65536, -1), as complex numbers, is block * 65536 + line: one
    -- conversion of the ctid instead of two. claimed keeps the position
    -- for the dead letter of a rejected row.
    -- payload_id is null: staged rows, not decoded records. Span rows also
    -- get the (null) JSON columns of decoded spans.
    select format('(select ((c.ctid::text::point) * point ''(65536,-1)'')[0]::bigint - 4611686018427387904 as n,
                           c.ctid as claimed, null::bigint as payload_id, c.*%s
                      from otel.%I as c) as r',
                  case when kind = 'traces' then ', null::jsonb as attributes_jsonb, null::jsonb as resource_attributes_jsonb,
                           null::jsonb as events_jsonb, null::jsonb as links_jsonb' else '' end,
                  'claimed_' || kind)
$$;
comment on function otel.claim_table_rows(text) is
    'otel.claimed_<kind> as a source of the typing query; internal to otel.flush()';

create or replace function otel.is_server_trouble(state text)
returns boolean
language sql immutable parallel safe
as $$
    -- Errors of the server, not of the data (insufficient resources,
    -- operator intervention, system errors): the slow paths re-raise them
    -- instead of dead-lettering every row they were working on.
    select left(state, 2) in ('53', '57', '58', 'XX')
$$;
comment on function otel.is_server_trouble(text) is
    'True for SQLSTATE classes that mean server trouble (53, 57, 58, XX) rather than bad data';
