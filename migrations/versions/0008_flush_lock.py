"""Flushes, retries and maintenance serialise on a lock only otel roles can take, and every lock they take waits at most otel.lock_timeout.

Before, they serialised on pg_advisory_xact_lock(hashtext('otel.flush')),
which any role that can connect could take and hold, stopping every flush.
Now otel.take_flush_lock() locks the table otel.flush_lock (no rows; only
roles with otel grants may lock it) after setting lock_timeout from the
otel.lock_timeout setting (default 10 minutes) for the rest of the
transaction.

Revision ID: 0008
Revises: 0007
"""

from migrations.schema import execute_sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = r"""
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

create or replace function otel.flush_claim()
returns text[]
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- The first, short transaction of a flush: every committed staging row
-- moves to its claim table (otel.claimed_*). When no writer holds a staging
-- table (lock taken with nowait, never queueing in front of writers), its
-- rows are copied and the table truncated: its file shrinks to nothing,
-- with no dead tuples left for vacuum. Otherwise delete … returning takes
-- the committed rows, leaving uncommitted ones for the next flush, and
-- vacuum reclaims the space. Returns the staging tables it truncated.
declare
    kind text;
    truncated text[] := '{}';
begin
    perform otel.take_flush_lock();
    foreach kind in array array['otlp', 'traces', 'logs', 'metrics'] loop
        begin
            -- Copy-and-truncate is only right when this statement's snapshot
            -- sees every committed row: read committed, not a snapshot taken
            -- before the flush lock was granted.
            if current_setting('transaction_isolation') <> 'read committed' then
                raise lock_not_available;
            end if;
            execute format('lock table otel.%I in access exclusive mode nowait', kind || '_staging');
            execute format('insert into otel.%I select * from otel.%I', 'claimed_' || kind, kind || '_staging');
            execute format('truncate otel.%I', kind || '_staging');
            truncated := truncated || (kind || '_staging');
        exception when lock_not_available then
            execute format('with claimed as (delete from otel.%I returning *) insert into otel.%I select * from claimed',
                           kind || '_staging', 'claimed_' || kind);
        end;
    end loop;
    return truncated;
end
$$;
comment on function otel.flush_claim() is
    'Moves every committed staging row to the claim tables, truncating the staging tables no writer holds; the first transaction of otel.flush()';

create or replace function otel.flush_process(started_at timestamptz, truncated text[])
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set jit = off  -- compiling these statements costs more than it saves
as $$
-- The second transaction of a flush: the claimed rows to their final
-- tables or the dead-letter queue, and a row in otel.flush_runs.
declare
    requests bigint;
    counts record;
    spans bigint := 0;
    logs bigint := 0;
    points bigint := 0;
    duplicates bigint := 0;
    dead_lettered bigint;
    kind text;
    typed_in_place text[] := '{}';
begin
    perform otel.take_flush_lock();
    -- A batch of a million spans groups some 200,000 traces: with less
    -- memory, grouping them and building their summaries spill to disk
    -- (a tenth more time). Smaller batches use what they need, no more.
    if pg_size_bytes(current_setting('work_mem')) < pg_size_bytes('128MB') then
        perform set_config('work_mem', '128MB', true);
    end if;
    perform otel.flush_prepare();
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        if otel.type_claimed(kind) then
            typed_in_place := typed_in_place || kind;
        end if;
    end loop;
    requests := otel.load_claimed(typed_in_place);
    for counts in select * from otel.process_working_set() loop
        case counts.kind
            when 'traces' then spans := counts.moved;
            when 'logs' then logs := counts.moved;
            when 'metrics' then points := counts.moved;
        end case;
        duplicates := duplicates + counts.duplicates;
    end loop;
    dead_lettered := otel.store_rejects();
    foreach kind in array typed_in_place loop
        execute format('truncate otel.%I', 'claimed_' || kind);  -- every row of it is moved or queued now
    end loop;
    insert into otel.flush_runs (started_at, duration, spans, logs, metric_points, otlp_requests,
                                 dead_lettered, duplicates, truncated_staging)
    values (started_at, clock_timestamp() - started_at, spans, logs, points, requests,
            dead_lettered, duplicates, truncated);
end
$$;
comment on function otel.flush_process(timestamptz, text[]) is
    'Moves the claimed rows to their final tables or the dead-letter queue and records the flush; the second transaction of otel.flush()';

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
    select id, raw_data, otel.try_jsonb(raw_data)
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

revoke all on function otel.take_flush_lock() from public;

create table otel.flush_lock ();
comment on table otel.flush_lock is
    'Holds no rows: otel.flush(), otel.retry_dlq() and otel.maintain() serialise on its lock (otel.take_flush_lock())';
grant select, insert, update, delete, truncate on otel.flush_lock to otel_admin;
"""

DOWNGRADE = r"""
drop table otel.flush_lock;

create or replace function otel.flush_claim()
returns text[]
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- The first, short transaction of a flush: every committed staging row
-- moves to its claim table (otel.claimed_*). When no writer holds a staging
-- table (lock taken with nowait, never queueing in front of writers), its
-- rows are copied and the table truncated: its file shrinks to nothing,
-- with no dead tuples left for vacuum. Otherwise delete … returning takes
-- the committed rows, leaving uncommitted ones for the next flush, and
-- vacuum reclaims the space. Returns the staging tables it truncated.
declare
    kind text;
    truncated text[] := '{}';
begin
    perform pg_advisory_xact_lock(hashtext('otel.flush'));
    foreach kind in array array['otlp', 'traces', 'logs', 'metrics'] loop
        begin
            -- Copy-and-truncate is only right when this statement's snapshot
            -- sees every committed row: read committed, not a snapshot taken
            -- before the flush lock was granted.
            if current_setting('transaction_isolation') <> 'read committed' then
                raise lock_not_available;
            end if;
            execute format('lock table otel.%I in access exclusive mode nowait', kind || '_staging');
            execute format('insert into otel.%I select * from otel.%I', 'claimed_' || kind, kind || '_staging');
            execute format('truncate otel.%I', kind || '_staging');
            truncated := truncated || (kind || '_staging');
        exception when lock_not_available then
            execute format('with claimed as (delete from otel.%I returning *) insert into otel.%I select * from claimed',
                           kind || '_staging', 'claimed_' || kind);
        end;
    end loop;
    return truncated;
end
$$;
comment on function otel.flush_claim() is
    'Moves every committed staging row to the claim tables, truncating the staging tables no writer holds; the first transaction of otel.flush()';

create or replace function otel.flush_process(started_at timestamptz, truncated text[])
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set jit = off  -- compiling these statements costs more than it saves
as $$
-- The second transaction of a flush: the claimed rows to their final
-- tables or the dead-letter queue, and a row in otel.flush_runs.
declare
    requests bigint;
    counts record;
    spans bigint := 0;
    logs bigint := 0;
    points bigint := 0;
    duplicates bigint := 0;
    dead_lettered bigint;
    kind text;
    typed_in_place text[] := '{}';
begin
    perform pg_advisory_xact_lock(hashtext('otel.flush'));
    -- A batch of a million spans groups some 200,000 traces: with less
    -- memory, grouping them and building their summaries spill to disk
    -- (a tenth more time). Smaller batches use what they need, no more.
    if pg_size_bytes(current_setting('work_mem')) < pg_size_bytes('128MB') then
        perform set_config('work_mem', '128MB', true);
    end if;
    perform otel.flush_prepare();
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        if otel.type_claimed(kind) then
            typed_in_place := typed_in_place || kind;
        end if;
    end loop;
    requests := otel.load_claimed(typed_in_place);
    for counts in select * from otel.process_working_set() loop
        case counts.kind
            when 'traces' then spans := counts.moved;
            when 'logs' then logs := counts.moved;
            when 'metrics' then points := counts.moved;
        end case;
        duplicates := duplicates + counts.duplicates;
    end loop;
    dead_lettered := otel.store_rejects();
    foreach kind in array typed_in_place loop
        execute format('truncate otel.%I', 'claimed_' || kind);  -- every row of it is moved or queued now
    end loop;
    insert into otel.flush_runs (started_at, duration, spans, logs, metric_points, otlp_requests,
                                 dead_lettered, duplicates, truncated_staging)
    values (started_at, clock_timestamp() - started_at, spans, logs, points, requests,
            dead_lettered, duplicates, truncated);
end
$$;
comment on function otel.flush_process(timestamptz, text[]) is
    'Moves the claimed rows to their final tables or the dead-letter queue and records the flush; the second transaction of otel.flush()';

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
    perform pg_advisory_xact_lock(hashtext('otel.flush'));
    perform otel.flush_prepare();

    create temp table otel_retried on commit drop as
        select id, telemetry_type, source, raw_data, raw_format
          from otel.telemetry_dlq
         where processed_at is null and retry_count < max_retries
         order by id
           for update skip locked;

    insert into pg_temp.otel_otlp (dlq_id, payload, doc)
    select id, raw_data, otel.try_jsonb(raw_data)
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
    perform otel.drop_expired_partitions();
end
$$;
comment on procedure otel.maintain(integer) is
    'Creates daily partitions from yesterday to days_ahead days ahead and drops those past their retention; run by the pg_cron job otel-maintenance';

drop function otel.take_flush_lock();
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
