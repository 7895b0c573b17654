"""Maintenance that never stalls readers: partitions are created and dropped with short lock waits (otel.run_with_short_locks()), and what readers keep from being done now is done by the next run.

Creating or dropping a partition locks its parent exclusively; while that
lock request waits, new readers queue behind it, so behind a reader left idle
in its transaction otel.maintain() stalled every read of the table. Each such
statement now waits at most 200 ms for its locks, three times; a table still
in use keeps its partitions as they are (with a notice) until the next
maintenance.

Revision ID: 0011
Revises: 0010
"""

from migrations.schema import execute_sql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = r"""
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

create or replace procedure otel.maintain(days_ahead integer default 3)
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
comment on procedure otel.maintain(integer) is
    'Creates daily partitions from yesterday to days_ahead days ahead and drops those past their retention; run by the pg_cron job otel-maintenance';

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
begin
    for expired in
        select r.kind, c.relname, c.oid::regclass as partition
          from otel.retention as r
          join pg_inherits as i on i.inhparent = format('otel.%I', r.kind)::regclass
          join pg_class as c on c.oid = i.inhrelid
         where c.relname ~ '_p[0-9]{8}$'
           and (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp at time zone 'UTC' <= now() - r.keep
         order by c.relname
    loop
        continue when expired.kind = any (busy);
        if otel.run_with_short_locks(format('drop table otel.%I', expired.relname)) then
            return next expired.partition::text;
        else
            busy := busy || expired.kind;
            raise notice 'otel_db: otel.% is in use; % and older partitions are dropped by the next maintenance',
                         expired.kind, expired.partition;
        end if;
    end loop;
    delete from otel.trace_summaries as s
     using otel.retention as r
     where r.kind = 'traces' and s.end_time < now() - r.keep - interval '1 day';
end
$$;
comment on function otel.drop_expired_partitions() is
    'Drops the daily partitions of otel.traces, otel.logs and otel.metrics past their retention (otel.retention); returns their names';

revoke all on function otel.run_with_short_locks(text) from public;
"""

DOWNGRADE = r"""
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
    perform otel.take_flush_lock();  -- flushes create partitions too
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        perform otel.ensure_partitions(kind, array(
            select d::date from generate_series((now() at time zone 'UTC')::date - 1,
                                                (now() at time zone 'UTC')::date + days_ahead,
                                                interval '1 day') as d));
    end loop;
    perform otel.drop_expired_partitions();
end
$$;
comment on procedure otel.maintain(integer) is
    'Creates daily partitions from yesterday to days_ahead days ahead and drops those past their retention; run by the pg_cron job otel-maintenance';

create or replace function otel.drop_expired_partitions()
returns setof text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- A daily partition goes once its whole day is older than now() - keep, so
-- nothing younger than keep is ever dropped. Returns the dropped tables.
declare
    expired record;
begin
    for expired in
        select c.relname, c.oid::regclass as partition
          from otel.retention as r
          join pg_inherits as i on i.inhparent = format('otel.%I', r.kind)::regclass
          join pg_class as c on c.oid = i.inhrelid
         where c.relname ~ '_p[0-9]{8}$'
           and (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp at time zone 'UTC' <= now() - r.keep
         order by c.relname
    loop
        execute format('drop table otel.%I', expired.relname);
        return next expired.partition::text;
    end loop;
    delete from otel.trace_summaries as s
     using otel.retention as r
     where r.kind = 'traces' and s.end_time < now() - r.keep - interval '1 day';
end
$$;
comment on function otel.drop_expired_partitions() is
    'Drops the daily partitions of otel.traces, otel.logs and otel.metrics past their retention (otel.retention); returns their names';

drop function otel.run_with_short_locks(text);
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
