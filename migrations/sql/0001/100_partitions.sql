-- Daily partitions of otel.traces, otel.logs and otel.metrics.

create or replace function otel.ensure_partitions(parent text, days date[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Creates the missing daily partitions (UTC days) of otel.<parent>, named
-- otel.<parent>_pYYYYMMDD. Returns how many it created.
declare
    day date;
    created integer := 0;
begin
    if parent not in ('traces', 'logs', 'metrics') then
        raise exception 'unknown partitioned table "%": allowed are traces, logs, metrics', parent
            using errcode = 'invalid_parameter_value';
    end if;
    foreach day in array coalesce(days, '{}') loop
        continue when to_regclass(format('otel.%I', parent || '_p' || to_char(day, 'YYYYMMDD'))) is not null;
        execute format('create table otel.%I partition of otel.%I for values from (%L) to (%L)',
                       parent || '_p' || to_char(day, 'YYYYMMDD'), parent,
                       day::timestamp at time zone 'UTC', (day + 1)::timestamp at time zone 'UTC');
        created := created + 1;
    end loop;
    return created;
end
$$;
comment on function otel.ensure_partitions(text, date[]) is
    'Creates the missing daily partitions (UTC) of otel.traces, otel.logs or otel.metrics for the given days';

create or replace procedure otel.maintain(days_ahead integer default 3)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Creates partitions from yesterday to days_ahead days ahead, so that a
-- flush in steady state never has to create one.
declare
    kind text;
begin
    if days_ahead is null or days_ahead not between 0 and 366 then
        raise exception 'days_ahead must be between 0 and 366, got %', days_ahead
            using errcode = 'invalid_parameter_value';
    end if;
    perform pg_advisory_xact_lock(hashtext('otel.flush'));  -- flushes create partitions too
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        perform otel.ensure_partitions(kind, array(
            select d::date from generate_series((now() at time zone 'UTC')::date - 1,
                                                (now() at time zone 'UTC')::date + days_ahead,
                                                interval '1 day') as d));
    end loop;
end
$$;
comment on procedure otel.maintain(integer) is
    'Creates daily partitions from yesterday to days_ahead days ahead; run by the pg_cron job otel-maintenance';
