-- otel.retry_dlq(): give dead letters another chance.

create or replace procedure otel.retry_dlq(max_retries integer default 3)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set jit = off
set default_toast_compression = 'lz4'  -- as otel.flush_process()
as $$
-- Re-validates every unprocessed letter tried fewer than max_retries times
-- (after a fix to the data, or to otel_db). Letters that pass move to their
-- final table and are marked processed; the others count the attempt.
-- Letters of bytes PostgreSQL cannot store as text only count the attempt.
declare
    kind text;
begin
    if max_retries is null or max_retries < 1 then
        raise exception 'max_retries must be a positive integer, got %', coalesce(max_retries::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.take_flush_lock();
    perform otel.flush_prepare();

    create temp table otel_retried on commit drop as
        select id, telemetry_type, source, raw_data, raw_format
          from otel.telemetry_dlq
         where processed_at is null and retry_count < max_retries
         order by id
           for update skip locked;

    insert into pg_temp.otel_otlp (dlq_id, payload, doc)
    select id, raw_data, otel.otlp_json_names(otel.try_jsonb(raw_data))
      from otel_retried
     where raw_format = 'text';
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        execute format($sql$
            insert into pg_temp.%2$I (dlq_id, %4$s)
            select r.id, %4$s
              from otel_retried as r
             cross join lateral jsonb_populate_record(null::otel.%3$I, otel.try_jsonb(r.raw_data)) as s
             where r.raw_format = 'row-json' and r.telemetry_type = %1$L
               and jsonb_typeof(otel.try_jsonb(r.raw_data)) = 'object'
        $sql$, kind, 'otel_' || kind || '_rows', kind || '_staging', otel.staging_columns(kind));
    end loop;
    insert into pg_temp.otel_rejects
    select id, telemetry_type, source, raw_data, raw_format,
           'this row-json letter cannot be read back as a staging row (not a JSON object, or it holds \u0000): repair raw_data'
      from otel_retried
     where raw_format = 'row-json'
       and (telemetry_type not in ('traces', 'logs', 'metrics')
            or jsonb_typeof(otel.try_jsonb(raw_data)) is distinct from 'object');
    insert into pg_temp.otel_rejects
    select id, telemetry_type, source, raw_data, raw_format,
           'bytes that PostgreSQL cannot store as text: fix the source and load it again'
      from otel_retried
     where raw_format = 'bytea-escape';

    perform otel.process_working_set();
    perform otel.store_rejects();
    update otel.telemetry_dlq as d
       set processed_at = now()
      from otel_retried as r
     where d.id = r.id
       and not exists (select 1 from pg_temp.otel_rejects as x where x.dlq_id = r.id);
    drop table otel_retried;
end
$$;
comment on procedure otel.retry_dlq(integer) is
    'Re-validates unprocessed dead letters tried fewer than max_retries times: moves the good ones, counts the attempt on the rest';

create or replace function otel.dead_letter_reason(error_message text)
returns text
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
    -- The rule without the rejected value: quoted values and timestamps
    -- become "…", and 'invalid OTLP <field>: <value>' keeps the field.
    select regexp_replace(
               regexp_replace(
                   regexp_replace(error_message, '"[^"]*"', '"…"', 'g'),
                   '^((?:rejected record: )?invalid OTLP [^:]+): .*$', '\1', 's'),
               '\d{4}-\d\d-\d\d[ T][0-9:.+-]+', '…', 'g')
$$;
comment on function otel.dead_letter_reason(text) is
    'A dead letter''s error message without the rejected value, so that letters rejected by the same rule group together';

create or replace function otel.dead_letter_reasons(
    since timestamptz default now() - interval '7 days',
    until timestamptz default now(),
    samples integer default 3)
returns table (telemetry_type text, reason text, letters bigint, pending bigint,
               first_seen timestamptz, last_seen timestamptz, sample_letters jsonb)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
-- Security definer: readers see why rows were rejected (and a few of them,
-- cut to 2,000 characters) without SELECT on the queue itself.
begin
    perform otel.check_time_range(since, until, true);
    if samples is null or samples not between 0 and 100 then
        raise exception 'samples must be between 0 and 100, got %', coalesce(samples::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    -- Each letter's rule is worked out once, its raw data read only for the
    -- samples: a large queue costs one sort, not a scan per rule.
    return query
        with letters as materialized (
            select x.*, row_number() over (partition by x.telemetry_type, x.rule order by x.id desc) as newest
              from (select d.id, d.telemetry_type, otel.dead_letter_reason(d.error_message) as rule,
                           d.created_at, d.processed_at is null as pending
                      from otel.telemetry_dlq as d
                     where d.created_at >= dead_letter_reasons.since and d.created_at < dead_letter_reasons.until
                   ) as x
        ),
        groups as (
            select l.telemetry_type, l.rule, count(*) as letters, count(*) filter (where l.pending) as pending,
                   min(l.created_at) as first_seen, max(l.created_at) as last_seen
              from letters as l
             group by l.telemetry_type, l.rule
        ),
        samples as (
            select l.telemetry_type, l.rule,
                   jsonb_agg(jsonb_build_object(
                       'id', d.id, 'created_at', d.created_at, 'source', d.source,
                       'error_message', d.error_message, 'raw_format', d.raw_format,
                       'raw_data', left(d.raw_data, 2000), 'retry_count', d.retry_count,
                       'processed', d.processed_at is not null) order by d.id desc) as sample_letters
              from letters as l
              join otel.telemetry_dlq as d on d.id = l.id
             where l.newest <= dead_letter_reasons.samples
             group by l.telemetry_type, l.rule
        )
        select g.telemetry_type, g.rule, g.letters, g.pending, g.first_seen, g.last_seen,
               coalesce(s.sample_letters, '[]')
          from groups as g
          left join samples as s on s.telemetry_type = g.telemetry_type and s.rule = g.rule
         order by g.pending desc, g.letters desc, g.rule;
end
$$;
comment on function otel.dead_letter_reasons(timestamptz, timestamptz, integer) is
    'Dead letters created in [since, until) by kind and rule: how many, how many still pending, first and last, and the newest few (raw data cut to 2,000 characters)';
