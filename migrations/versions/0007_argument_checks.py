"""Arguments that cannot go wrong: retention in whole days, schedules that repeat, finite time ranges, a query vector with a direction, long arguments shortened in messages, and a flush without notices.

otel.set_retention() takes whole days, months (30 days) or years (360 days),
none negative, at least a day, and stores plain days; stored retentions are
converted the same way, and one that breaks the rule (such as
'-2 mons +61 days') is removed, which keeps everything, with a notice.
otel.schedule_flush() refuses @reboot and answers 22023 for any number;
otel.check_time_range() refuses infinite times; otel.similar_traces() refuses
the zero vector; otel.search_logs() takes at most 10,000 characters; messages
show arguments through otel.argument_text() (at most 100 characters);
otel.flush_prepare() no longer sends a notice per table it drops.

Revision ID: 0007
Revises: 0006
"""

from migrations.schema import execute_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.argument_text(value text)
returns text
language sql immutable parallel safe
as $$
    -- For error messages: quoted, and at most 100 characters of it, so that
    -- a huge argument is neither echoed to the client nor written whole to
    -- the server log.
    select case when value is null then 'null'
                when length(value) <= 100 then quote_literal(value)
                else quote_literal(left(value, 100)) || format('... (%s characters)', length(value)) end
$$;
comment on function otel.argument_text(text) is
    'An argument as an error message shows it: quoted, at most 100 characters, or null';

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

create or replace function otel.set_retention(kind text, keep interval)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- keep null removes the limit (keep everything). Otherwise it must be whole
-- days, months or years, none of them negative, at least one day in all
-- (a month counts 30 days and a year 360, justify_interval()'s rule).
-- PostgreSQL compares intervals by such a total, so '-2 mons +61 days'
-- would pass a plain "> 1 day" check and mean a different age every
-- month. It is stored as plain days, which now() - keep subtracts exactly.
declare
    days numeric;
begin
    if kind is null or kind not in ('traces', 'logs', 'metrics') then
        raise exception 'kind must be traces, logs or metrics, got %', otel.argument_text(kind)
            using errcode = 'invalid_parameter_value';
    end if;
    if keep is null then
        delete from otel.retention as r where r.kind = set_retention.kind;
        return;
    end if;
    days := (extract(year from keep) * 12 + extract(month from keep)) * 30 + extract(day from keep);
    if keep <> date_trunc('day', keep) or extract(year from keep) < 0 or extract(month from keep) < 0
       or extract(day from keep) < 0 or days < 1 then
        raise exception 'keep must be whole days, months or years, none negative, at least 1 day in all (whole daily partitions are dropped), got %', keep
            using errcode = 'invalid_parameter_value';
    end if;
    insert into otel.retention as r (kind, keep) values (set_retention.kind, make_interval(days => days::int))
    on conflict on constraint retention_pkey do update set keep = excluded.keep;
end
$$;
comment on function otel.set_retention(text, interval) is
    'Keeps traces, logs or metrics for keep: whole days, months (30 days) or years (360 days), at least 1 day, stored as days (null: forever); otel.maintain() drops whole daily partitions older than that';

create or replace function otel.schedule_flush(every text default null)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Registers the pg_cron job otel-flush ("call otel.flush()" in this
-- database) and otel-maintenance (partitions ahead, hourly). every: 'N
-- seconds' (pg_cron 1.5 and later), 'N minutes', or a cron expression that
-- repeats (five fields, or @hourly … @yearly; not @reboot, which would
-- flush once); default every 5 seconds, or every minute on pg_cron 1.4.
declare
    version text;
    second_schedules boolean;
    schedule text;
    seconds numeric;
    minutes numeric;
    job_id bigint;
begin
    select j ->> 'extversion' into version
      from otel.cron_query('select extversion from pg_extension where extname = ''pg_cron''') as j;
    second_schedules := string_to_array(split_part(version, '-', 1), '.')::int[] >= array[1, 5];
    every := lower(trim(every));
    if every is null then
        schedule := case when second_schedules then '5 seconds' else '* * * * *' end;
    elsif every ~ '^[0-9]+ ?(s|sec|secs|second|seconds)$' then
        seconds := substring(every from '^[0-9]+')::numeric;
        if not second_schedules then
            raise exception 'pg_cron % schedules by the minute at best; use ''1 minute'' or a cron expression', version
                using errcode = 'invalid_parameter_value';
        elsif seconds not between 1 and 59 then
            raise exception 'every: seconds must be between 1 and 59, got %', seconds
                using errcode = 'invalid_parameter_value';
        end if;
        schedule := seconds || ' seconds';
    elsif every ~ '^[0-9]+ ?(m|min|mins|minute|minutes)$' then
        minutes := substring(every from '^[0-9]+')::numeric;
        if minutes not between 1 and 59 then
            raise exception 'every: minutes must be between 1 and 59, got %', minutes
                using errcode = 'invalid_parameter_value';
        end if;
        schedule := case minutes when 1 then '* * * * *' else '*/' || minutes || ' * * * *' end;
    elsif every ~ '^\S+( \S+){4}$'
       or every in ('@hourly', '@daily', '@midnight', '@weekly', '@monthly', '@yearly', '@annually') then
        schedule := every;  -- pg_cron checks the fields (22023 'invalid schedule')
    else
        raise exception 'every must be ''N seconds'', ''N minutes'' or a cron expression that repeats (not @reboot), got %',
                        otel.argument_text(every)
            using errcode = 'invalid_parameter_value';
    end if;

    if exists (select 1 from otel.cron_query(
                   'select database from cron.job where jobname in (''otel-flush'', ''otel-maintenance'')') as j
                where j ->> 'database' <> current_database()) then
        raise exception 'the pg_cron job otel-flush already belongs to another database; unschedule it there first'
            using errcode = 'object_in_use';
    end if;
    select (j ->> 'id')::bigint into job_id
      from otel.cron_query(format('select cron.schedule_in_database(%L, %L, %L, %L) as id',
                                  'otel-flush', schedule, 'call otel.flush()', current_database())) as j;
    perform otel.cron_query(format('select cron.schedule_in_database(%L, %L, %L, %L) as id',
                                   'otel-maintenance', '17 * * * *', 'call otel.maintain()', current_database()));
    return job_id;
end
$$;
comment on function otel.schedule_flush(text) is
    'Registers the pg_cron jobs otel-flush (default every 5 seconds, every minute on pg_cron 1.4) and otel-maintenance; returns the otel-flush job id';

create or replace function otel.similar_traces(
    query vector, k integer default 10, min_similarity double precision default 0.85,
    service text default null, since timestamptz default null, model text default 'all-MiniLM-L6-v2')
returns table (
    trace_id text, span_id text, service_name text, name text, status_code text, status_message text,
    duration_ms double precision, start_time timestamptz, attributes jsonb, similarity double precision)
language plpgsql stable
set search_path = pg_catalog, public, pg_temp
as $$
begin
    if query is null then
        raise exception 'query must be a vector of 384 dimensions, got null' using errcode = 'invalid_parameter_value';
    end if;
    if vector_dims(query) <> 384 then
        raise exception 'query has % dimensions; span signatures are embedded in 384 (all-MiniLM-L6-v2)',
                        vector_dims(query)
            using errcode = 'invalid_parameter_value';
    end if;
    if vector_norm(query) = 0 then
        raise exception 'query is the zero vector, which has no direction to compare by cosine: embed some text'
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_similarity_arguments(k, min_similarity);
    if model is null or model = '' then
        raise exception 'model must name the model that embedded the query, e.g. all-MiniLM-L6-v2'
            using errcode = 'invalid_parameter_value';
    end if;
    return query select * from otel.similar_traces_search(query, k, min_similarity, service, since, model, null);
end
$$;
comment on function otel.similar_traces(vector, integer, double precision, text, timestamptz, text) is
    'Traces whose spans are most similar to the query embedding (384 dimensions, made by model), one row per trace (its most similar span), best first; only signatures embedded by the same model are compared';

create or replace function otel.similar_traces(
    of_trace text, k integer default 10, min_similarity double precision default 0.85,
    service text default null, since timestamptz default null)
returns table (
    trace_id text, span_id text, service_name text, name text, status_code text, status_message text,
    duration_ms double precision, start_time timestamptz, attributes jsonb, similarity double precision)
language plpgsql stable
set search_path = pg_catalog, public, pg_temp
as $$
-- (The parameter is of_trace: trace_id names a result column.)
-- The query is the mean of the embeddings of the trace's most telling
-- spans: its error spans when it has any, else its root span (or its first
-- span when the root is missing). Model vectors win over fallback ones.
declare
    wanted text := lower(trim(of_trace));
    telling bigint[];
    model text;
    query vector;
begin
    if wanted is null or wanted !~ '^[0-9a-f]{32}$' then
        raise exception 'trace_id must be a trace id (32 hex digits), got %', otel.argument_text(of_trace)
            using errcode = 'invalid_parameter_value',
                  hint = 'to search by an embedding, cast it: otel.similar_traces(''[…]''::vector)';
    end if;
    perform otel.check_similarity_arguments(k, min_similarity);
    with spans as (
        select t.signature_id, t.status_code, t.parent_span_id, t.start_time
          from otel.traces as t
         where t.trace_id = wanted
    )
    select coalesce(nullif(array_agg(s.signature_id) filter (where s.status_code = 'ERROR'), '{}'),
                    (array_agg(s.signature_id order by s.parent_span_id is not null, s.start_time))[1:1])
      into telling
      from spans as s;
    select g.embedding_model into model
      from otel.span_signatures as g
     where g.id = any (telling) and g.embedding is not null
     order by g.embedding_model = 'fallback-hash', g.embedding_model
     limit 1;
    if model is null then
        return;  -- an unknown trace, or one whose signatures are not embedded yet
    end if;
    select avg(g.embedding) into query
      from otel.span_signatures as g
     where g.id = any (telling) and g.embedding_model = model;
    return query select * from otel.similar_traces_search(query, k, min_similarity, service, since, model, wanted);
end
$$;
comment on function otel.similar_traces(text, integer, double precision, text, timestamptz) is
    'Traces that resemble the given one: its error spans (else its root span) are the query; one row per trace, best first, never the trace itself; empty for an unknown trace';

create or replace function otel.check_time_range(since timestamptz, until timestamptz, since_required boolean)
returns void
language plpgsql immutable
as $$
begin
    if since_required and since is null then
        raise exception 'since must be a timestamp, got null' using errcode = 'invalid_parameter_value';
    end if;
    if since_required and until is null then
        raise exception 'until must be a timestamp, got null' using errcode = 'invalid_parameter_value';
    end if;
    if not isfinite(since) or not isfinite(until) then
        raise exception 'since and until must be finite timestamps, got % and %', since, until
            using errcode = 'invalid_parameter_value';
    end if;
    if since > until then
        raise exception 'since (%) is after until (%)', since, until using errcode = 'invalid_parameter_value';
    end if;
end
$$;
comment on function otel.check_time_range(timestamptz, timestamptz, boolean) is
    'Raises 22023 when since or until is missing (if required) or infinite, or since is after until';

create or replace function otel.normalize_trace_id(trace_id text)
returns text
language plpgsql immutable
as $$
begin
    if trace_id is null or trim(trace_id) = '' then
        raise exception 'trace_id must be 32 hex digits, got %', otel.argument_text(trace_id)
            using errcode = 'invalid_parameter_value';
    end if;
    return lower(trim(trace_id));
end
$$;
comment on function otel.normalize_trace_id(text) is
    'A trace id as stored (trimmed, lower case); 22023 for null or empty';

create or replace function otel.search_logs(
    query text, since timestamptz default null, until timestamptz default null, service text default null,
    min_severity integer default null, lim integer default 100)
returns table (
    "time" timestamptz, severity_number integer, severity_text text, service_name text, body text,
    trace_id text, span_id text, rank real)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- websearch_to_tsquery syntax ("quoted phrase", or, -not), on the stored
-- body_tsv and its full-text index.
declare
    tsquery tsquery;
begin
    if query is null or trim(query) = '' then
        raise exception 'query must be words to search for (websearch syntax), got %', otel.argument_text(query)
            using errcode = 'invalid_parameter_value';
    end if;
    if length(query) > 10000 then
        raise exception 'query must be at most 10000 characters of words to search for, got %', otel.argument_text(query)
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_time_range(since, until, false);
    perform otel.check_limit(lim);
    if min_severity is not null and min_severity not between 1 and 24 then
        raise exception 'min_severity must be an OTLP severity number 1..24 (9 = INFO, 17 = ERROR), got %', min_severity
            using errcode = 'invalid_parameter_value';
    end if;
    tsquery := websearch_to_tsquery('english', query);
    if numnode(tsquery) = 0 then
        return;  -- only stop words
    end if;
    return query
        select l.time, l.severity_number, l.severity_text, l.service_name, l.body, l.trace_id, l.span_id,
               ts_rank(l.body_tsv, tsquery)
          from otel.logs as l
         where l.body_tsv @@ tsquery
           and (since is null or l.time >= since)
           and (until is null or l.time < until)
           and (service is null or l.service_name = service)
           and (min_severity is null or l.severity_number >= min_severity)
         order by 8 desc, l.time desc
         limit lim;
end
$$;
comment on function otel.search_logs(text, timestamptz, timestamptz, text, integer, integer) is
    'Full-text search of log bodies (websearch syntax), best ranked first, then newest; optional time range, service and minimum severity; at most lim (1..10000)';

create or replace function otel.check_metric_series_arguments(
    name text, bucket interval, since timestamptz, until timestamptz, labels jsonb, agg text)
returns void
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if name is null or name = '' then
        raise exception 'name must name a metric, got %', otel.argument_text(name)
            using errcode = 'invalid_parameter_value';
    end if;
    if bucket is null or bucket < interval '1 second' or bucket > interval '366 days' then
        raise exception 'bucket must be an interval from 1 second to 366 days, got %', coalesce(bucket::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if bucket <> justify_hours(bucket) or extract(month from bucket) <> 0 or extract(year from bucket) <> 0 then
        raise exception 'bucket must be a fixed length (seconds, minutes, hours or days), got %', bucket
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_time_range(since, until, true);
    if (extract(epoch from until - since) / extract(epoch from bucket)) > 100000 then
        raise exception 'since to until holds more than 100000 buckets of %; choose a larger bucket', bucket
            using errcode = 'invalid_parameter_value';
    end if;
    if labels is not null and jsonb_typeof(labels) <> 'object' then
        raise exception 'labels must be a JSON object of label values to match, got %', otel.argument_text(labels::text)
            using errcode = 'invalid_parameter_value';
    end if;
    if agg is null or agg not in ('avg', 'min', 'max', 'sum', 'count', 'rate', 'p50', 'p90', 'p99') then
        raise exception 'agg must be one of avg, min, max, sum, count, rate, p50, p90, p99, got %',
                        otel.argument_text(agg)
            using errcode = 'invalid_parameter_value';
    end if;
end
$$;
comment on function otel.check_metric_series_arguments(text, interval, timestamptz, timestamptz, jsonb, text) is
    'Raises 22023 unless the arguments of otel.metric_series() make sense; internal to otel.metric_series()';

revoke all on function otel.argument_text(text) from public;

grant execute on function otel.argument_text(text) to otel_reader, otel_admin;

do $$
declare
    rule record;
begin
    -- Stored retentions by the new rule: plain days, or removed (keep everything).
    for rule in select kind, keep from otel.retention loop
        if rule.keep <> date_trunc('day', rule.keep) or extract(year from rule.keep) < 0
           or extract(month from rule.keep) < 0 or extract(day from rule.keep) < 0
           or (extract(year from rule.keep) * 12 + extract(month from rule.keep)) * 30 + extract(day from rule.keep) < 1 then
            delete from otel.retention where kind = rule.kind;
            raise notice 'otel_db: the retention of % (%) is not whole days; removed, so % are kept until set again',
                         rule.kind, rule.keep, rule.kind;
        else
            update otel.retention
               set keep = make_interval(days => ((extract(year from rule.keep) * 12 + extract(month from rule.keep)) * 30
                                                 + extract(day from rule.keep))::int)
             where kind = rule.kind;
        end if;
    end loop;
end
$$;
"""

DOWNGRADE = r"""
create or replace function otel.flush_prepare()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
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

create or replace function otel.set_retention(kind text, keep interval)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- keep null removes the limit (keep everything).
begin
    if kind is null or kind not in ('traces', 'logs', 'metrics') then
        raise exception 'kind must be traces, logs or metrics, got %', coalesce(quote_literal(kind), 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if keep is null then
        delete from otel.retention as r where r.kind = set_retention.kind;
        return;
    end if;
    if keep < interval '1 day' then
        raise exception 'keep must be at least 1 day (whole partitions are dropped), got %', keep
            using errcode = 'invalid_parameter_value';
    end if;
    insert into otel.retention as r (kind, keep) values (set_retention.kind, keep)
    on conflict on constraint retention_pkey do update set keep = excluded.keep;
end
$$;
comment on function otel.set_retention(text, interval) is
    'Keeps traces, logs or metrics for at least keep (1 day or more; null: forever); otel.maintain() drops whole daily partitions older than that';

create or replace function otel.schedule_flush(every text default null)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Registers the pg_cron job otel-flush ("call otel.flush()" in this
-- database) and otel-maintenance (partitions ahead, hourly). every: 'N
-- seconds' (pg_cron 1.5 and later), 'N minutes', or a cron expression;
-- default every 5 seconds, or every minute on pg_cron 1.4.
declare
    version text;
    second_schedules boolean;
    schedule text;
    seconds integer;
    minutes integer;
    job_id bigint;
begin
    select j ->> 'extversion' into version
      from otel.cron_query('select extversion from pg_extension where extname = ''pg_cron''') as j;
    second_schedules := string_to_array(split_part(version, '-', 1), '.')::int[] >= array[1, 5];
    every := lower(trim(every));
    if every is null then
        schedule := case when second_schedules then '5 seconds' else '* * * * *' end;
    elsif every ~ '^[0-9]+ ?(s|sec|secs|second|seconds)$' then
        seconds := substring(every from '^[0-9]+')::int;
        if not second_schedules then
            raise exception 'pg_cron % schedules by the minute at best; use ''1 minute'' or a cron expression', version
                using errcode = 'invalid_parameter_value';
        elsif seconds not between 1 and 59 then
            raise exception 'every: seconds must be between 1 and 59, got %', seconds
                using errcode = 'invalid_parameter_value';
        end if;
        schedule := seconds || ' seconds';
    elsif every ~ '^[0-9]+ ?(m|min|mins|minute|minutes)$' then
        minutes := substring(every from '^[0-9]+')::int;
        if minutes not between 1 and 59 then
            raise exception 'every: minutes must be between 1 and 59, got %', minutes
                using errcode = 'invalid_parameter_value';
        end if;
        schedule := case minutes when 1 then '* * * * *' else '*/' || minutes || ' * * * *' end;
    elsif every ~ '^\S+( \S+){4}$' or every ~ '^@' then
        schedule := every;
    else
        raise exception 'every must be ''N seconds'', ''N minutes'' or a cron expression, got %', every
            using errcode = 'invalid_parameter_value';
    end if;

    if exists (select 1 from otel.cron_query(
                   'select database from cron.job where jobname in (''otel-flush'', ''otel-maintenance'')') as j
                where j ->> 'database' <> current_database()) then
        raise exception 'the pg_cron job otel-flush already belongs to another database; unschedule it there first'
            using errcode = 'object_in_use';
    end if;
    select (j ->> 'id')::bigint into job_id
      from otel.cron_query(format('select cron.schedule_in_database(%L, %L, %L, %L) as id',
                                  'otel-flush', schedule, 'call otel.flush()', current_database())) as j;
    perform otel.cron_query(format('select cron.schedule_in_database(%L, %L, %L, %L) as id',
                                   'otel-maintenance', '17 * * * *', 'call otel.maintain()', current_database()));
    return job_id;
end
$$;
comment on function otel.schedule_flush(text) is
    'Registers the pg_cron jobs otel-flush (default every 5 seconds, every minute on pg_cron 1.4) and otel-maintenance; returns the otel-flush job id';

create or replace function otel.similar_traces(
    query vector, k integer default 10, min_similarity double precision default 0.85,
    service text default null, since timestamptz default null, model text default 'all-MiniLM-L6-v2')
returns table (
    trace_id text, span_id text, service_name text, name text, status_code text, status_message text,
    duration_ms double precision, start_time timestamptz, attributes jsonb, similarity double precision)
language plpgsql stable
set search_path = pg_catalog, public, pg_temp
as $$
begin
    if query is null then
        raise exception 'query must be a vector of 384 dimensions, got null' using errcode = 'invalid_parameter_value';
    end if;
    if vector_dims(query) <> 384 then
        raise exception 'query has % dimensions; span signatures are embedded in 384 (all-MiniLM-L6-v2)',
                        vector_dims(query)
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_similarity_arguments(k, min_similarity);
    if model is null or model = '' then
        raise exception 'model must name the model that embedded the query, e.g. all-MiniLM-L6-v2'
            using errcode = 'invalid_parameter_value';
    end if;
    return query select * from otel.similar_traces_search(query, k, min_similarity, service, since, model, null);
end
$$;
comment on function otel.similar_traces(vector, integer, double precision, text, timestamptz, text) is
    'Traces whose spans are most similar to the query embedding (384 dimensions, made by model), one row per trace (its most similar span), best first; only signatures embedded by the same model are compared';

create or replace function otel.similar_traces(
    of_trace text, k integer default 10, min_similarity double precision default 0.85,
    service text default null, since timestamptz default null)
returns table (
    trace_id text, span_id text, service_name text, name text, status_code text, status_message text,
    duration_ms double precision, start_time timestamptz, attributes jsonb, similarity double precision)
language plpgsql stable
set search_path = pg_catalog, public, pg_temp
as $$
-- (The parameter is of_trace: trace_id names a result column.)
-- The query is the mean of the embeddings of the trace's most telling
-- spans: its error spans when it has any, else its root span (or its first
-- span when the root is missing). Model vectors win over fallback ones.
declare
    wanted text := lower(trim(of_trace));
    telling bigint[];
    model text;
    query vector;
begin
    if wanted is null or wanted !~ '^[0-9a-f]{32}$' then
        raise exception 'trace_id must be a trace id (32 hex digits), got %', coalesce(quote_literal(left(of_trace, 100)), 'null')
            using errcode = 'invalid_parameter_value',
                  hint = 'to search by an embedding, cast it: otel.similar_traces(''[…]''::vector)';
    end if;
    perform otel.check_similarity_arguments(k, min_similarity);
    with spans as (
        select t.signature_id, t.status_code, t.parent_span_id, t.start_time
          from otel.traces as t
         where t.trace_id = wanted
    )
    select coalesce(nullif(array_agg(s.signature_id) filter (where s.status_code = 'ERROR'), '{}'),
                    (array_agg(s.signature_id order by s.parent_span_id is not null, s.start_time))[1:1])
      into telling
      from spans as s;
    select g.embedding_model into model
      from otel.span_signatures as g
     where g.id = any (telling) and g.embedding is not null
     order by g.embedding_model = 'fallback-hash', g.embedding_model
     limit 1;
    if model is null then
        return;  -- an unknown trace, or one whose signatures are not embedded yet
    end if;
    select avg(g.embedding) into query
      from otel.span_signatures as g
     where g.id = any (telling) and g.embedding_model = model;
    return query select * from otel.similar_traces_search(query, k, min_similarity, service, since, model, wanted);
end
$$;
comment on function otel.similar_traces(text, integer, double precision, text, timestamptz) is
    'Traces that resemble the given one: its error spans (else its root span) are the query; one row per trace, best first, never the trace itself; empty for an unknown trace';

create or replace function otel.check_time_range(since timestamptz, until timestamptz, since_required boolean)
returns void
language plpgsql immutable
as $$
begin
    if since_required and since is null then
        raise exception 'since must be a timestamp, got null' using errcode = 'invalid_parameter_value';
    end if;
    if since_required and until is null then
        raise exception 'until must be a timestamp, got null' using errcode = 'invalid_parameter_value';
    end if;
    if since > until then
        raise exception 'since (%) is after until (%)', since, until using errcode = 'invalid_parameter_value';
    end if;
end
$$;
comment on function otel.check_time_range(timestamptz, timestamptz, boolean) is
    'Raises 22023 when since or until is missing (if required) or since is after until';

create or replace function otel.normalize_trace_id(trace_id text)
returns text
language plpgsql immutable
as $$
begin
    if trace_id is null or trim(trace_id) = '' then
        raise exception 'trace_id must be 32 hex digits, got %', coalesce(quote_literal(trace_id), 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    return lower(trim(trace_id));
end
$$;
comment on function otel.normalize_trace_id(text) is
    'A trace id as stored (trimmed, lower case); 22023 for null or empty';

create or replace function otel.search_logs(
    query text, since timestamptz default null, until timestamptz default null, service text default null,
    min_severity integer default null, lim integer default 100)
returns table (
    "time" timestamptz, severity_number integer, severity_text text, service_name text, body text,
    trace_id text, span_id text, rank real)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- websearch_to_tsquery syntax ("quoted phrase", or, -not), on the stored
-- body_tsv and its full-text index.
declare
    tsquery tsquery;
begin
    if query is null or trim(query) = '' then
        raise exception 'query must be words to search for (websearch syntax), got %',
                        coalesce(quote_literal(query), 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_time_range(since, until, false);
    perform otel.check_limit(lim);
    if min_severity is not null and min_severity not between 1 and 24 then
        raise exception 'min_severity must be an OTLP severity number 1..24 (9 = INFO, 17 = ERROR), got %', min_severity
            using errcode = 'invalid_parameter_value';
    end if;
    tsquery := websearch_to_tsquery('english', query);
    if numnode(tsquery) = 0 then
        return;  -- only stop words
    end if;
    return query
        select l.time, l.severity_number, l.severity_text, l.service_name, l.body, l.trace_id, l.span_id,
               ts_rank(l.body_tsv, tsquery)
          from otel.logs as l
         where l.body_tsv @@ tsquery
           and (since is null or l.time >= since)
           and (until is null or l.time < until)
           and (service is null or l.service_name = service)
           and (min_severity is null or l.severity_number >= min_severity)
         order by 8 desc, l.time desc
         limit lim;
end
$$;
comment on function otel.search_logs(text, timestamptz, timestamptz, text, integer, integer) is
    'Full-text search of log bodies (websearch syntax), best ranked first, then newest; optional time range, service and minimum severity; at most lim (1..10000)';

create or replace function otel.check_metric_series_arguments(
    name text, bucket interval, since timestamptz, until timestamptz, labels jsonb, agg text)
returns void
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if name is null or name = '' then
        raise exception 'name must name a metric, got %', coalesce(quote_literal(name), 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if bucket is null or bucket < interval '1 second' or bucket > interval '366 days' then
        raise exception 'bucket must be an interval from 1 second to 366 days, got %', coalesce(bucket::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if bucket <> justify_hours(bucket) or extract(month from bucket) <> 0 or extract(year from bucket) <> 0 then
        raise exception 'bucket must be a fixed length (seconds, minutes, hours or days), got %', bucket
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_time_range(since, until, true);
    if (extract(epoch from until - since) / extract(epoch from bucket)) > 100000 then
        raise exception 'since to until holds more than 100000 buckets of %; choose a larger bucket', bucket
            using errcode = 'invalid_parameter_value';
    end if;
    if labels is not null and jsonb_typeof(labels) <> 'object' then
        raise exception 'labels must be a JSON object of label values to match, got %', labels
            using errcode = 'invalid_parameter_value';
    end if;
    if agg is null or agg not in ('avg', 'min', 'max', 'sum', 'count', 'rate', 'p50', 'p90', 'p99') then
        raise exception 'agg must be one of avg, min, max, sum, count, rate, p50, p90, p99, got %',
                        coalesce(quote_literal(agg), 'null')
            using errcode = 'invalid_parameter_value';
    end if;
end
$$;
comment on function otel.check_metric_series_arguments(text, interval, timestamptz, timestamptz, jsonb, text) is
    'Raises 22023 unless the arguments of otel.metric_series() make sense; internal to otel.metric_series()';

drop function otel.argument_text(text);
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
