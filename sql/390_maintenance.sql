-- Partitions ahead of time, and retention by whole partitions.

create or replace function otel.run_with_short_locks(statement text)
returns boolean
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Runs statement waiting at most 200 ms for its locks, three times with
-- pauses between; false when every attempt found them taken. For the
-- maintenance that locks a partitioned table exclusively (creating or
-- dropping a partition): while such a lock request waits, new readers
-- queue behind it, so behind a reader left idle in its transaction a plain
-- wait would stall every read of the table.
declare
    lock_timeout_before text := current_setting('lock_timeout');
begin
    for attempt in 1..3 loop
        begin
            perform set_config('lock_timeout', '200ms', true);
            execute statement;
            perform set_config('lock_timeout', lock_timeout_before, true);
            return true;
        exception when lock_not_available then
            perform pg_sleep(0.1 * attempt);
        end;
    end loop;
    perform set_config('lock_timeout', lock_timeout_before, true);
    return false;
end
$$;
comment on function otel.run_with_short_locks(text) is
    'Runs a statement that locks a partitioned table exclusively, waiting at most 200 ms for locks, three times; false when it could not; internal to otel.maintain()';

create or replace function otel.maintain_partitions(days_ahead integer)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Creates partitions from yesterday to days_ahead days ahead, so that a
-- flush in steady state never has to create one. Neither that nor dropping
-- expired partitions waits behind readers (otel.run_with_short_locks()):
-- what a table's readers keep it from doing now, the next run does.
declare
    kind text;
    day date;
begin
    if days_ahead is null or days_ahead not between 0 and 366 then
        raise exception 'days_ahead must be between 0 and 366, got %', days_ahead
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.take_flush_lock();  -- flushes create partitions too
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        foreach day in array array(select d::date from generate_series((now() at time zone 'UTC')::date - 1,
                                                                       (now() at time zone 'UTC')::date + days_ahead,
                                                                       interval '1 day') as d) loop
            if not otel.run_with_short_locks(format('select otel.ensure_partitions(%L, array[%L::date])', kind, day)) then
                raise notice 'otel_db: otel.% is in use; its partitions from % on are made by the next maintenance',
                             kind, day;
                exit;
            end if;
        end loop;
    end loop;
    perform otel.drop_expired_partitions();
end
$$;
comment on function otel.maintain_partitions(integer) is
    'Creates daily partitions from yesterday to days_ahead days ahead and drops those past their retention; the first step of otel.maintain()';

create or replace procedure otel.maintain(days_ahead integer default 3)
language plpgsql
as $$
-- Partitions ahead and retention first (otel.maintain_partitions()), then
-- the partitions due for cold storage, each converted in a transaction of
-- its own (otel.convert_to_columnar()), so that no lock outlives one
-- partition's conversion, then the trace summaries of each cold day of
-- spans (otel.move_summaries_to_cold()), a transaction each. With
-- partitions to convert or summaries to move it commits, so it must then
-- be called outside a transaction block, as pg_cron does. A conversion or
-- move that fails is a warning: the others go on. No `set` clause
-- and not security definer, which would forbid the commits; the functions
-- that do the work pin their settings.
declare
    due record;
    day date;
begin
    perform otel.maintain_partitions(days_ahead);
    for due in select * from otel.cold_partitions_due() loop
        commit;
        begin
            perform otel.convert_to_columnar(due.kind, due.partition_name);
        exception when others then
            raise warning 'otel_db: otel.% stays in row format: %', due.partition_name, sqlerrm;
        end;
    end loop;
    for day in select * from otel.cold_summaries_due() loop
        commit;
        begin
            perform otel.move_summaries_to_cold(day);
        exception when others then
            raise warning 'otel_db: the trace summaries of % stay in row format: %', day, sqlerrm;
        end;
    end loop;
end
$$;
comment on procedure otel.maintain(integer) is
    'Creates daily partitions from yesterday to days_ahead days ahead, drops those past their retention, then converts those due for cold storage (otel.set_cold_storage()) to columnar and moves the trace summaries of each cold day of spans to otel.cold_trace_summaries, one transaction each; run by the pg_cron job otel-maintenance, outside a transaction block';

create or replace function otel.whole_days(value interval, argument text, consequence text)
returns integer
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
-- value must be whole days, months or years, none of them negative, at
-- least one day in all (a month counts 30 days and a year 360,
-- justify_interval()'s rule). PostgreSQL compares intervals by such a
-- total, so '-2 mons +61 days' would pass a plain "> 1 day" check and mean
-- a different age every month. Stored as plain days, which now() - value
-- subtracts exactly.
declare
    days numeric := (extract(year from value) * 12 + extract(month from value)) * 30 + extract(day from value);
begin
    if value <> date_trunc('day', value) or extract(year from value) < 0 or extract(month from value) < 0
       or extract(day from value) < 0 or days < 1 then
        raise exception '% must be whole days, months or years, none negative, at least 1 day in all (%), got %',
                        argument, consequence, value
            using errcode = 'invalid_parameter_value';
    end if;
    return days;
end
$$;
comment on function otel.whole_days(interval, text, text) is
    'An age given as whole days, months or years (a month 30 days, a year 360) in days, or an error naming the argument and the consequence; internal to otel.set_retention() and otel.set_cold_storage()';

create or replace function otel.set_retention(kind text, keep interval)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- keep null removes the limit (keep everything). Otherwise whole days,
-- months or years, stored as days (otel.whole_days()).
begin
    if kind is null or kind not in ('traces', 'logs', 'metrics') then
        raise exception 'kind must be traces, logs or metrics, got %', otel.argument_text(kind)
            using errcode = 'invalid_parameter_value';
    end if;
    if keep is null then
        delete from otel.retention as r where r.kind = set_retention.kind;
        return;
    end if;
    insert into otel.retention as r (kind, keep)
    values (set_retention.kind, make_interval(days => otel.whole_days(keep, 'keep', 'whole daily partitions are dropped')))
    on conflict on constraint retention_pkey do update set keep = excluded.keep;
end
$$;
comment on function otel.set_retention(text, interval) is
    'Keep `traces`, `logs` or `metrics` for `keep` (whole days, months or years, at least 1 day, stored as days; null: forever); `call otel.maintain()`, the pg_cron job `otel-maintenance`, drops whole daily partitions older than that';

create or replace function otel.drop_expired_partitions()
returns setof text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- A daily partition goes once its whole day is older than now() - keep, so
-- nothing younger than keep is ever dropped. Returns the dropped tables; a
-- partition that readers keep from being dropped (otel.run_with_short_locks())
-- is left, with the rest of its table's, for the next run.
declare
    expired record;
    busy text[] := '{}';  -- tables whose readers kept a partition from being dropped
    traces_cutoff timestamptz;
begin
    for expired in
        select r.kind, p.name, format('otel.%I', p.name) as partition
          from otel.retention as r
         cross join lateral otel.daily_partitions(r.kind) as p
         where (p.day + 1)::timestamp at time zone 'UTC' <= now() - r.keep
         order by p.name
    loop
        continue when expired.kind = any (busy);
        if otel.run_with_short_locks(format('drop table otel.%I', expired.name)) then
            return next expired.partition;
        else
            busy := busy || expired.kind;
            raise notice 'otel_db: otel.% is in use; % and older partitions are dropped by the next maintenance',
                         expired.kind, expired.partition;
        end if;
    end loop;
    -- The cutoff as a value, not now() in the deletes: Citus cannot send a
    -- stable function to the workers within a distributed delete.
    select now() - r.keep - interval '1 day' into traces_cutoff from otel.retention as r where r.kind = 'traces';
    if found then
        delete from otel.trace_summaries as s where s.end_time < traces_cutoff;
        delete from otel.operation_catalog as c where c.last_seen < traces_cutoff;
        -- A cold day's summaries all ended on that day.
        for expired in
            select p.name, p.day, format('otel.%I', p.name) as partition
              from otel.daily_partitions('cold_trace_summaries') as p
             where (p.day + 1)::timestamp at time zone 'UTC' <= traces_cutoff
             order by p.name
        loop
            exit when not otel.run_with_short_locks(format('drop table otel.%I', expired.name));
            delete from otel.cold_trace_days as d where d.day = expired.day;
            return next expired.partition;
        end loop;
    end if;
end
$$;
comment on function otel.drop_expired_partitions() is
    'Drops the daily partitions of otel.traces, otel.logs and otel.metrics past their retention (otel.retention), and the trace summaries (hot, and the cold days'' partitions) and catalogued operations last seen before it; returns the partitions'' names';
