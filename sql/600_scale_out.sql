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

create or replace function otel.distribution_column(relation regclass)
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Null for a table Citus does not hash-distribute (a reference table too).
declare
    result text;
begin
    if to_regclass('pg_catalog.pg_dist_partition') is null then
        return null;
    end if;
    execute 'select column_to_column_name(logicalrelid, partkey) from pg_catalog.pg_dist_partition
              where logicalrelid = $1 and partmethod = ''h''' into result using relation;
    return result;
end
$$;
comment on function otel.distribution_column(regclass) is
    'The column by which Citus hash-distributes a table (null for any other table, and without Citus)';

create or replace function otel.distribute(shard_count integer default 32)
returns setof text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- otel.traces and otel.trace_summaries are distributed by trace_id in
-- shard_count co-located shards, so that a trace's spans and its summary
-- are on one worker and a lookup by trace id is routed there; the span
-- signatures and the catalog of operations, which every worker joins, are
-- reference tables (a copy on each node). Log records are distributed by
-- shard_key, co-located with the spans: a record in a trace lies beside
-- the trace's spans, the others spread by a hash of their own (Citus
-- refuses a null key). Metric points by series_key, so that a series is on
-- one shard and the series of a busy metric spread over all. Both keys are
-- filled only where the table is distributed by them: rows stored before
-- get theirs here, and a table an earlier release distributed otherwise
-- (logs by time, points by name) is redistributed. The span staging and
-- its claim table are distributed by a row id the coordinator gives each
-- staged span (a staged row may lack a trace id, and Citus refuses a null
-- key), so that writers' COPY spreads over the workers, where the flush
-- types the spans into otel.flush_spans, co-located with the spans
-- (otel.move_spans_on_workers()). The other staging tables and the
-- dead-letter queue stay on the coordinator. Citus reads and writes the
-- shards as the current role: otel_reader, otel_writer and otel_admin,
-- which cannot log in on the coordinator, may on the workers (only there;
-- who can connect is then the workers' pg_hba.conf). Returns what it
-- changed; run again, it changes nothing but what a new worker lacks.
declare
    target record;
    distributed_by text;
    cold text;
    described text;
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
    -- Flushes wait until this commits: a flush that began before the keys
    -- are filled would write rows without one, which Citus refuses.
    perform otel.take_flush_lock();
    for target in
        select t.*, t.name::regclass as relation
          from (values (1, 'otel.traces', 'trace_id', 'default'),
                       (2, 'otel.trace_summaries', 'trace_id', 'otel.traces'),
                       (3, 'otel.span_signatures', null, null),
                       (4, 'otel.operation_catalog', null, null),
                       (5, 'otel.logs', 'shard_key', 'otel.traces'),
                       (6, 'otel.metrics', 'series_key', 'none')) as t (n, name, key, colocate_with)
         order by n
    loop
        if target.key is not null then
            distributed_by := otel.distribution_column(target.relation);
            continue when distributed_by = target.key;
            if target.name in ('otel.logs', 'otel.metrics') then
                -- Rows stored before the table was distributed by its key have
                -- none; a columnar partition cannot be updated.
                select string_agg(p.name, ', ' order by p.day) into cold
                  from otel.daily_partitions(substr(target.name, 6)) as p
                 where p.columnar;
                if cold is not null then
                    raise exception 'otel.distribute() cannot distribute %: its cold partitions (%) are columnar',
                                    target.name, cold
                        using errcode = 'object_not_in_prerequisite_state',
                              hint = 'Make them row tables again (alter table … set access method heap), or drop them; see docs/scale-out.md.';
                end if;
                if target.name = 'otel.logs' then
                    update otel.logs set shard_key = otel.log_shard_key(trace_id, time, body) where shard_key is null;
                else
                    update otel.metrics
                       set series_key = otel.metric_series_key(name, service_name, labels, resource_attributes)
                     where series_key is null;
                end if;
            end if;
            if distributed_by is not null then
                -- Rewrites the table as a new one, with its partitions, indexes
                -- and grants, but not its comment.
                described := obj_description(target.relation, 'pg_class');
                perform alter_distributed_table(target.relation, distribution_column => target.key,
                                                colocate_with => target.colocate_with);
                execute format('comment on table %s is %L', target.name, described);
                return next format('%s: distributed by %s instead of %s', target.name, target.key, distributed_by);
                continue;
            end if;
        end if;
        continue when otel.distributed(target.relation);
        if target.key is null then
            perform create_reference_table(target.relation);
            return next format('%s: reference', target.name);
            continue;
        end if;
        if target.colocate_with in ('default', 'none') then
            perform create_distributed_table(target.relation, target.key, shard_count => distribute.shard_count,
                                             colocate_with => target.colocate_with);
        else
            perform create_distributed_table(target.relation, target.key, colocate_with => target.colocate_with);
        end if;
        return next format('%s: distributed by %s', target.name, target.key);
    end loop;
    if not otel.distributed('otel.traces_staging') then
        -- Rows staged before get their ids here; a claim table holds rows
        -- only while a flush runs, or after one failed.
        create sequence otel.staged_span_ids;
        grant usage on sequence otel.staged_span_ids to otel_writer;
        alter table otel.traces_staging add column row_id bigint default nextval('otel.staged_span_ids');
        alter table otel.claimed_traces add column row_id bigint default nextval('otel.staged_span_ids');
        alter table otel.claimed_traces alter column row_id drop default;
        perform create_distributed_table('otel.traces_staging', 'row_id', shard_count => distribute.shard_count,
                                         colocate_with => 'none');
        perform create_distributed_table('otel.claimed_traces', 'row_id', colocate_with => 'otel.traces_staging');
        return next 'otel.traces_staging: distributed by row_id, and otel.claimed_traces with it';
    end if;
    if to_regclass('otel.flush_spans') is null then
        execute format('create unlogged table otel.flush_spans as %s with no data',
                       otel.typing_query('traces', otel.claimed_span_rows()));
        comment on table otel.flush_spans is
            'On Citus: the spans of the running flush, typed on the workers (otel.type_spans_on_workers()); internal';
        perform create_distributed_table('otel.flush_spans', 'trace_id', colocate_with => 'otel.traces');
        return next 'otel.flush_spans: distributed by trace_id';
    end if;
    foreach role_name in array array['otel_reader', 'otel_writer', 'otel_admin'] loop
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
    'On a Citus coordinator, after `alembic upgrade head`: distributes otel.traces and otel.trace_summaries by trace_id in shard_count (default 32) co-located shards, otel.logs by shard_key co-located with the spans (a record in a trace beside its spans) and otel.metrics by series_key (one shard a series), redistributing a table an earlier release distributed otherwise, and makes otel.span_signatures and otel.operation_catalog reference tables; distributes otel.traces_staging by a row id it adds (writers COPY into it with a column list), so that the flush types and moves spans on the workers (otel.flush_spans); lets otel_reader, otel_writer and otel_admin log in on the workers (Citus reaches the shards as the current role); returns what it changed (nothing when run again, unless a worker was added). The other staging tables and the dead letters stay on the coordinator';
