-- Durable staging, as a choice. Unlogged (the default) is fast, and crash
-- recovery empties the staging and claim tables: a crash loses what was
-- staged or claimed since the last completed flush. Logged, a crash at any
-- moment of a flush loses and duplicates nothing: claimed rows survive, and
-- the next flush processes them.

create or replace function otel.staging_mode()
returns text
language sql stable
as $$
    select case when bool_and(c.relpersistence = 'p') then 'logged'
                when bool_and(c.relpersistence = 'u') then 'unlogged'
                else 'mixed' end
      from pg_class as c
     where c.oid in ('otel.otlp_staging'::regclass, 'otel.traces_staging'::regclass,
                     'otel.logs_staging'::regclass, 'otel.metrics_staging'::regclass,
                     'otel.claimed_otlp'::regclass, 'otel.claimed_traces'::regclass,
                     'otel.claimed_logs'::regclass, 'otel.claimed_metrics'::regclass)
$$;
comment on function otel.staging_mode() is
    'logged or unlogged: whether the staging and claim tables survive a crash (mixed only if changed by hand)';

create or replace function otel.staging_bytes()
returns bigint
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
-- What waits for otel.flush(), for writers that hold back when it grows
-- (`otel-db serve`): on every worker where Citus distributes the staging
-- tables, whose tables on the coordinator are then empty.
declare
    staging regclass;
    total bigint := 0;
begin
    foreach staging in array array['otel.otlp_staging', 'otel.traces_staging', 'otel.logs_staging',
                                   'otel.metrics_staging']::regclass[] loop
        if otel.distributed(staging) then
            total := total + citus_total_relation_size(staging);
        else
            total := total + pg_total_relation_size(staging);
        end if;
    end loop;
    return total;
end
$$;
comment on function otel.staging_bytes() is
    'The bytes of the staging tables (OTLP/JSON requests, spans, logs, points), indexes and TOAST included, on every worker on Citus: what waits for otel.flush()';

create or replace function otel.set_staging_mode(mode text)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Rewrites the staging and claim tables (they are small between flushes),
-- between two flushes: it takes the flush lock, and each table's lock waits
-- at most otel.lock_timeout.
declare
    staging text;
begin
    if mode is null or mode not in ('logged', 'unlogged') then
        raise exception 'mode must be logged or unlogged, got %', otel.argument_text(mode)
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.take_flush_lock();
    foreach staging in array array['otlp_staging', 'traces_staging', 'logs_staging', 'metrics_staging',
                                   'claimed_otlp', 'claimed_traces', 'claimed_logs', 'claimed_metrics'] loop
        execute format(case mode when 'logged' then 'alter table otel.%I set logged'
                                 else 'alter table otel.%I set unlogged' end, staging);
    end loop;
    return otel.staging_mode();
end
$$;
comment on function otel.set_staging_mode(text) is
    'logged: the staging and claim tables survive a crash (slower COPY and flush); unlogged (the default): a crash loses what was staged or claimed since the last completed flush. Returns the mode';
