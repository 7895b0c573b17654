-- otel.flush(): the stages in order, in two transactions, and a row in
-- otel.flush_runs for each run.

create or replace function otel.process_working_set()
returns table (kind text, moved bigint, duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Decode, validate, cast and move everything in the working set; queue
-- the rejects. Shared by otel.flush() and otel.retry_dlq().
declare
    k text;
    result record;
begin
    insert into pg_temp.otel_rejects
    select dlq_id, 'otlp', 'otel.otlp_staging', payload, 'text', otel.otlp_request_error(doc)
      from pg_temp.otel_otlp
     where otel.otlp_request_error(doc) is not null;

    foreach k in array array['traces', 'logs', 'metrics'] loop
        perform otel.decode_otlp(k);
        perform otel.type_rows(k);
        perform otel.partition_working_set(k, case k when 'traces' then 'start_time' else 'time' end);
        perform otel.reject_invalid_rows(k);
        case k
            when 'traces' then select * into result from otel.move_traces();
            when 'logs' then select * into result from otel.move_logs();
            when 'metrics' then select * into result from otel.move_metrics();
        end case;
        kind := k;
        moved := result.moved;
        duplicates := result.duplicates;
        return next;
    end loop;
end
$$;
comment on function otel.process_working_set() is
    'Decodes, validates and moves the working set of a flush or a retry; internal';

create or replace function otel.flush_process(started_at timestamptz, truncated text[], use_workers boolean default true)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set jit = off  -- compiling these statements costs more than it saves
-- The working tables compress large values as the final tables do: a
-- value compressed once is stored as it is (sql/100_tables_traces.sql).
set default_toast_compression = 'lz4'
as $$
-- The second transaction of a flush: the claimed rows to their final
-- tables or the dead-letter queue, and a row in otel.flush_runs. On Citus
-- the workers do most of it, unless use_workers is false (see
-- otel.flush()).
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
    on_workers text[] := '{}';
    decoded_on_workers text[];
begin
    perform otel.take_flush_lock();
    -- A batch of a million spans groups some 200,000 traces: with less
    -- memory, grouping them and building their summaries spill to disk
    -- (a tenth more time). Smaller batches use what they need, no more.
    if pg_size_bytes(current_setting('work_mem')) < pg_size_bytes('128MB') then
        perform set_config('work_mem', '128MB', true);
    end if;
    perform otel.flush_prepare();
    if to_regclass('pg_catalog.pg_dist_partition') is not null then
        -- The workers type and check times too, and store what they decode:
        -- Citus sends them this function's time zone (UTC: a staged time
        -- without an offset is UTC, messages show UTC), TOAST compression
        -- and jit (compiling the typing query took seconds a shard) only as
        -- a set local.
        set local citus.propagate_set_commands = 'local';
        set local timezone = 'UTC';
        set local default_toast_compression = 'lz4';
        set local jit = off;
    end if;
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        -- On Citus, where staging is distributed, on the workers
        -- (otel.type_on_workers()); else in place when it can be.
        if use_workers and otel.type_on_workers(kind) then
            on_workers := on_workers || kind;
            typed_in_place := typed_in_place || kind;
        elsif otel.type_claimed(kind) then
            typed_in_place := typed_in_place || kind;
        end if;
    end loop;
    -- OTLP/JSON requests too, on Citus; their records join the typed rows.
    if use_workers then
        decoded_on_workers := otel.decode_on_workers(on_workers);
    end if;
    if decoded_on_workers is not null then
        typed_in_place := typed_in_place || 'otlp'::text;
        on_workers := on_workers || array(select k from unnest(decoded_on_workers) as k where k <> all (on_workers));
    end if;
    requests := otel.load_claimed(typed_in_place);
    -- The rows typed on the workers first (a union runs its parts in
    -- turn), then the working set's, whose spans find them stored.
    for counts in
        select u.kind, w.moved, w.duplicates
          from unnest(on_workers) as u (kind)
         cross join lateral otel.move_on_workers(u.kind) as w
        union all
        select * from otel.process_working_set()
    loop
        case counts.kind
            when 'traces' then spans := spans + counts.moved;
            when 'logs' then logs := logs + counts.moved;
            when 'metrics' then points := points + counts.moved;
        end case;
        duplicates := duplicates + counts.duplicates;
    end loop;
    dead_lettered := otel.store_rejects();
    foreach kind in array typed_in_place loop
        execute format('truncate otel.%I', 'claimed_' || kind);  -- every row of it is moved or queued now
    end loop;
    if decoded_on_workers is not null then
        truncate otel.flush_otlp;
    end if;
    insert into otel.flush_runs (started_at, duration, spans, logs, metric_points, otlp_requests,
                                 dead_lettered, duplicates, truncated_staging)
    values (started_at, clock_timestamp() - started_at, spans, logs, points, requests,
            dead_lettered, duplicates, truncated);
end
$$;
comment on function otel.flush_process(timestamptz, text[], boolean) is
    'Moves the claimed rows to their final tables or the dead-letter queue and records the flush; the second transaction of otel.flush()';

create or replace function otel.flush_may_redo(state text, message text)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Whether otel.flush() may do again on the coordinator the second
-- transaction that failed with state: on Citus, where the workers type
-- and decode the staged rows and requests, when a value defeated that
-- (classes 22 and 54; logged, as the whole batch is done twice), or when
-- Citus would not run a statement there (0A, with a warning: every flush
-- then does its work twice). Anything else (a lock that timed out, server
-- trouble, a worker out of reach) fails the flush, as on one node.
begin
    if not otel.distributed('otel.claimed_traces') or left(state, 2) not in ('22', '54', '0A') then
        return false;
    end if;
    if left(state, 2) = '0A' then
        raise warning 'otel_db: the workers could not do their part of the flush (%: %): the coordinator does it',
                      state, message;
    else
        raise log 'otel_db: a value the workers could not read (%: %): the coordinator does the flush again', state, message;
    end if;
    return true;
end
$$;
comment on function otel.flush_may_redo(text, text) is
    'Whether otel.flush() may redo on the Citus coordinator a second transaction that failed on the workers: for a value that defeated them (logged) or a statement Citus would not run there (warning); internal';

create or replace procedure otel.flush()
language plpgsql
as $$
-- Two transactions, so that a staging table is locked only while its rows
-- are copied (the first), never while they are processed (the second).
-- Hence: call it outside a transaction block, as pg_cron, psql in
-- autocommit and otel_db.Client do. A row is always in exactly one of
-- staging, claim table, final table or dead-letter queue. On Citus, a row
-- or request that fails the workers' statements (a value that defeats the
-- casts or the decoding) makes the second transaction roll back, and a
-- third does its work on the coordinator, which isolates the bad one as on
-- one node: in a transaction of its own, as Citus does not reliably take
-- up its connections to the workers again after a statement that failed
-- there was rolled back to a savepoint.
declare
    started_at timestamptz := clock_timestamp();
    truncated text[];
    redo boolean := false;
begin
    truncated := otel.flush_claim();
    commit;
    begin
        perform otel.flush_process(started_at, truncated);
    exception when others then
        if not otel.flush_may_redo(sqlstate, sqlerrm) then
            raise;
        end if;
        redo := true;
    end;
    if redo then
        rollback;  -- nothing to keep, and no commit over the connections that failed
        perform otel.flush_process(started_at, truncated, use_workers => false);
    end if;
end
$$;
comment on procedure otel.flush() is
    'Moves every row staged before it started to otel.traces, otel.logs, otel.metrics or otel.telemetry_dlq; never loses or duplicates a row; safe beside writers and another flush; records itself in otel.flush_runs. Call it outside a transaction block: it commits after claiming the staged rows (and on Citus before doing again on the coordinator what failed on the workers)';
