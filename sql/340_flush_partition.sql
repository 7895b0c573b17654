-- Stage 4, partition: the daily partitions the valid rows need.

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

create or replace function otel.partition_working_set(kind text, time_column text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Creates the partitions the valid rows of pg_temp.otel_<kind> need, at
-- most new_days_limit new days in one flush: a batch spread over thousands
-- of days would otherwise exhaust the lock table and fail every flush. Rows
-- of the days left over get err (so a dead letter that otel.retry_dlq()
-- loads in a later run). Records the batch's extent in
-- pg_temp.otel_batch_extent, which the steps after it read instead of
-- scanning every row again.
declare
    new_days_limit constant integer := 32;
    extent text := format('select min(%1$I) filter (where err is null), max(%1$I) filter (where err is null),
                                  count(*) filter (where err is not null)
                             from pg_temp.%2$I', time_column, 'otel_' || kind);
    first_time timestamptz;
    last_time timestamptz;
    invalid_rows bigint;
    first_day date;
    last_day date;
    days date[];
begin
    execute extent into first_time, last_time, invalid_rows;
    first_day := (first_time at time zone 'UTC')::date;
    last_day := (last_time at time zone 'UTC')::date;
    -- Batches usually span a day or two: then those days are the candidates,
    -- found without computing the day of every row (an empty day between
    -- the first and the last gets its partition too). Otherwise the days
    -- that have rows, and only those.
    if first_day is null then
        days := '{}';  -- no valid rows
    elsif last_day - first_day <= 2 then
        days := array(select d::date from generate_series(first_day, last_day, interval '1 day') as d);
    else
        execute format('select array_agg(distinct (%I at time zone ''UTC'')::date) from pg_temp.%I where err is null',
                       time_column, 'otel_' || kind) into days;
    end if;
    days := array(select day from unnest(days) as day
                   where to_regclass(format('otel.%I', kind || '_p' || to_char(day, 'YYYYMMDD'))) is null
                   order by day);
    perform otel.ensure_partitions(kind, days[1:new_days_limit]);
    if cardinality(days) > new_days_limit then
        execute format($sql$
            update pg_temp.%1$I
               set err = format('no partition for %%s: one flush creates at most %%s new days; otel.retry_dlq() loads it later',
                                (%2$I at time zone 'UTC')::date, %3$s)
             where err is null and (%2$I at time zone 'UTC')::date = any ($1)
        $sql$, 'otel_' || kind, time_column, new_days_limit) using days[new_days_limit + 1:];
        execute extent into first_time, last_time, invalid_rows;
    end if;
    insert into pg_temp.otel_batch_extent values (kind, first_time, last_time, invalid_rows);
end
$$;
comment on function otel.partition_working_set(text, text) is
    'Creates the partitions the rows of a flush need, at most 32 new days at a time; internal to otel.flush()';
