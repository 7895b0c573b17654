-- Scale-out on Citus (docs/scale-out.md): otel.distribute() spreads the
-- spans and their trace summaries over the workers by trace id, after
-- `alembic upgrade head` on a Citus coordinator. A single node never runs it.

create or replace function otel.distributed(relation regclass)
returns boolean
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Citus's catalog is there only where Citus is: looked up by name.
declare
    result boolean;
begin
    if to_regclass('pg_catalog.pg_dist_partition') is null then
        return false;
    end if;
    execute 'select exists (select from pg_catalog.pg_dist_partition where logicalrelid = $1)' into result using relation;
    return result;
end
$$;
comment on function otel.distributed(regclass) is
    'Whether a table is distributed by Citus (false without Citus)';

create or replace function otel.distribute(shard_count integer default 32)
returns setof text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- otel.traces and otel.trace_summaries are distributed by trace_id in
-- shard_count co-located shards, so that a trace's spans and its summary
-- are on one worker and a lookup by trace id is routed there; the span
-- signatures and the catalog of operations, which every worker joins, are
-- reference tables (a copy on each node). Log records spread by time, the
-- one key every record has (most have no trace id, and Citus refuses a
-- null key); metric points by name, so that a series is on one shard. The
-- staging tables and the dead-letter queue stay on the coordinator: staged
-- rows may lack the key that would place them. Citus reads and writes
-- the shards as the current role: otel_reader and otel_admin, which
-- cannot log in on the coordinator, may on the workers (only there; who
-- can connect is then the workers' pg_hba.conf). Returns what it changed;
-- run again, it changes nothing but what a new worker lacks.
declare
    target record;
    role_name text;
    refused text;
begin
    if not exists (select from pg_extension where extname = 'citus') then
        raise exception 'otel.distribute() needs Citus in this database: create extension citus, on a coordinator with workers'
            using errcode = 'feature_not_supported', hint = 'See docs/scale-out.md.';
    end if;
    if shard_count is null or shard_count not between 1 and 64000 then
        raise exception 'shard_count must be between 1 and 64000, got %', coalesce(shard_count::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    for target in
        select *
          from (values (1, 'otel.traces'::regclass, 'trace_id', 'default'),
                       (2, 'otel.trace_summaries'::regclass, 'trace_id', 'otel.traces'),
                       (3, 'otel.span_signatures'::regclass, null, null),
                       (4, 'otel.operation_catalog'::regclass, null, null),
                       (5, 'otel.logs'::regclass, 'time', 'none'),
                       (6, 'otel.metrics'::regclass, 'name', 'none')) as t (n, relation, key, colocate_with)
         order by n
    loop
        continue when otel.distributed(target.relation);
        if target.key is null then
            perform create_reference_table(target.relation);
            return next format('%s: reference', target.relation);
            continue;
        end if;
        if target.colocate_with in ('default', 'none') then
            perform create_distributed_table(target.relation, target.key, shard_count => distribute.shard_count,
                                             colocate_with => target.colocate_with);
        else
            perform create_distributed_table(target.relation, target.key, colocate_with => target.colocate_with);
        end if;
        return next format('%s: distributed by %s', target.relation, target.key);
    end loop;
    foreach role_name in array array['otel_reader', 'otel_admin'] loop
        continue when not exists (
            select from run_command_on_workers(format('select rolcanlogin from pg_roles where rolname = %L', role_name))
             where result is distinct from 't');
        select string_agg(format('%s:%s: %s', w.nodename, w.nodeport, w.result), '; ') into refused
          from run_command_on_workers(
                   -- on each worker alone: Citus would pass it on to every node
                   format('set citus.enable_alter_role_propagation to off; alter role %I login', role_name)) as w
         where not w.success;
        if refused is not null then
            raise exception 'could not let % log in on the workers: %', role_name, refused;
        end if;
        return next format('%s: may log in on the workers', role_name);
    end loop;
end
$$;
comment on function otel.distribute(integer) is
    'On a Citus coordinator, after `alembic upgrade head`: distributes otel.traces and otel.trace_summaries by trace_id in shard_count (default 32) co-located shards, otel.logs by time and otel.metrics by name, and makes otel.span_signatures and otel.operation_catalog reference tables; lets otel_reader and otel_admin log in on the workers (Citus reaches the shards as the current role); returns what it changed (nothing when run again, unless a worker was added). Staging and dead letters stay on the coordinator';
