-- otel.retry_dlq(): give dead letters another chance.

create or replace procedure otel.retry_dlq(max_retries integer default 3)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set jit = off
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
