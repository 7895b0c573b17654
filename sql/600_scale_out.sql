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
-- otel.traces and otel.trace_summaries (and otel.cold_trace_summaries,
-- whose cold days' summaries it first moves back) are distributed by trace_id in
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
-- (logs by time, points by name) is redistributed. The staging tables
-- (OTLP/JSON requests, spans, logs and points) and their claim tables are
-- distributed by a row id the coordinator gives each staged row (a staged
-- row may lack the key that would place it, and Citus refuses a null key),
-- so that writers' COPY spreads over the workers, where the flush parses
-- the requests (otel.flush_otlp, beside their claims) and types the rows
-- and the records it decodes into working tables: otel.flush_spans
-- co-located with the spans, otel.flush_logs and otel.flush_metrics with
-- their claims (otel.type_on_workers(), otel.decode_on_workers()). The
-- dead-letter queue stays on the coordinator. Citus reads and writes the
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
    kind text;
    staging text;
    claims text;
    row_ids text;
    working_table text;
    remade boolean;
    remade_note text;
    moved_back bigint;
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
    -- Cold storage is for one node: the summaries of cold days go back to
    -- otel.trace_summaries, where the flush on the workers finds them (the
    -- cold days of spans stay columnar). Once distributed, there are none,
    -- and the table is not read: Citus plans no subquery that selects no
    -- column of a distributed table.
    if not otel.distributed('otel.trace_summaries') and exists (select 1 from otel.cold_trace_summaries) then
        insert into otel.trace_summaries
        select c.*
          from otel.cold_trace_summaries as c
         where not exists (select from otel.trace_summaries as s where s.trace_id = c.trace_id);
        get diagnostics moved_back = row_count;
        for cold in select p.name from otel.daily_partitions('cold_trace_summaries') as p loop
            execute format('drop table otel.%I', cold);
        end loop;
        delete from otel.cold_trace_days;
        return next format('otel.cold_trace_summaries: %s summaries moved back to otel.trace_summaries', moved_back);
    end if;
    for target in
        select t.*, t.name::regclass as relation
          from (values (1, 'otel.traces', 'trace_id', 'default'),
                       (2, 'otel.trace_summaries', 'trace_id', 'otel.traces'),
                       (3, 'otel.cold_trace_summaries', 'trace_id', 'otel.traces'),
                       (4, 'otel.span_signatures', null, null),
                       (5, 'otel.operation_catalog', null, null),
                       (6, 'otel.logs', 'shard_key', 'otel.traces'),
                       (7, 'otel.metrics', 'series_key', 'none')) as t (n, name, key, colocate_with)
         order by n
    loop
        if target.key is not null then
            distributed_by := otel.distribution_column(target.relation);
            continue when distributed_by = target.key;
            if target.name = 'otel.traces' then
                -- Citus distributes no table with a partitioned partition.
                select string_agg(p.name, ', ' order by p.day) into cold
                  from otel.daily_partitions('traces') as p
                  join pg_class as c on c.oid = format('otel.%I', p.name)::regclass
                 where c.relkind = 'p';
                if cold is not null then
                    raise exception 'otel.distribute() cannot distribute otel.traces: its cold days % are split into slices by trace id',
                                    cold
                        using errcode = 'object_not_in_prerequisite_state',
                              hint = 'Make each one columnar table: select set_config(''otel.cold_slice_spans'', ''999999999999999999'', false), then otel.convert_to_columnar(''traces'', name) for each; see docs/scale-out.md.';
                end if;
            end if;
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
    foreach kind in array array['otlp', 'traces', 'logs', 'metrics'] loop
        staging := format('otel.%I', kind || '_staging');
        claims := format('otel.%I', 'claimed_' || kind);
        if not otel.distributed(staging) then
            -- Rows staged before get their ids here; a claim table holds rows
            -- only while a flush runs, or after one failed.
            row_ids := format('otel.%I', case kind when 'otlp' then 'staged_request_ids' when 'traces' then 'staged_span_ids'
                                                   when 'logs' then 'staged_log_ids' else 'staged_point_ids' end);
            execute format('create sequence %s', row_ids);
            execute format('grant usage on sequence %s to otel_writer', row_ids);
            execute format('alter table %s add column row_id bigint default nextval(%L)', staging, row_ids);
            execute format('alter table %s add column row_id bigint default nextval(%L)', claims, row_ids);
            execute format('alter table %s alter column row_id drop default', claims);
            perform create_distributed_table(staging, 'row_id', shard_count => distribute.shard_count,
                                             colocate_with => 'none');
            perform create_distributed_table(claims, 'row_id', colocate_with => staging);
            return next format('%s: distributed by row_id, and %s with it', staging, claims);
        end if;
        if kind = 'otlp' then
            -- Requests parsed on the workers, each beside its claim.
            if to_regclass('otel.flush_otlp') is null then
                create unlogged table otel.flush_otlp (row_id bigint, doc jsonb);
                alter table otel.flush_otlp alter column doc set storage external;
                comment on table otel.flush_otlp is
                    'On Citus: the OTLP/JSON requests of the running flush, parsed on the workers (otel.decode_on_workers()); internal';
                perform create_distributed_table('otel.flush_otlp', 'row_id', colocate_with => 'otel.claimed_otlp');
                return next 'otel.flush_otlp: distributed by row_id, beside otel.claimed_otlp';
            end if;
            continue;
        end if;
        working_table := otel.working_table_on_workers(kind);
        remade := false;
        if to_regclass(working_table) is not null then
            -- Shaped by an earlier release's typing query, which a later one
            -- may change (the flush then types on the coordinator): made again.
            execute format('create temp table otel_typed_shape as %s with no data',
                           otel.typing_query(kind, otel.claimed_rows_on_workers(kind)));
            if otel.typed_columns(working_table::regclass) is distinct from otel.typed_columns('pg_temp.otel_typed_shape') then
                execute format('drop table %s', working_table);
                remade := true;
            end if;
            drop table pg_temp.otel_typed_shape;
        end if;
        if to_regclass(working_table) is null then
            execute format('create unlogged table %s as %s with no data',
                           working_table, otel.typing_query(kind, otel.claimed_rows_on_workers(kind)));
            execute format('comment on table %s is %L', working_table,
                           format('On Citus: the %s of the running flush, typed on the workers (otel.type_on_workers(), otel.decode_on_workers()); internal',
                                  case kind when 'traces' then 'spans' when 'logs' then 'log records' else 'metric points' end));
            -- Spans beside their traces' stored spans; the others beside their claims.
            remade_note := case when remade then ', made again for this release''s typing' else '' end;
            if kind = 'traces' then
                perform create_distributed_table(working_table, 'trace_id', colocate_with => 'otel.traces');
                return next format('%s: distributed by trace_id', working_table) || remade_note;
            else
                perform create_distributed_table(working_table, 'n', colocate_with => claims);
                return next format('%s: distributed by n, beside %s', working_table, claims) || remade_note;
            end if;
        end if;
    end loop;
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
    'On a Citus coordinator, after `alembic upgrade head`: moves the trace summaries of cold days back to otel.trace_summaries (cold storage is for one node); distributes otel.traces, otel.trace_summaries and otel.cold_trace_summaries by trace_id in shard_count (default 32) co-located shards, otel.logs by shard_key co-located with the spans (a record in a trace beside its spans) and otel.metrics by series_key (one shard a series), redistributing a table an earlier release distributed otherwise, and makes otel.span_signatures and otel.operation_catalog reference tables; distributes the staging of OTLP/JSON requests, spans, logs and points by a row id it adds (writers COPY into them with a column list), so that the flush parses, decodes, types and moves their rows on the workers (otel.flush_otlp, otel.flush_spans, otel.flush_logs, otel.flush_metrics); lets otel_reader, otel_writer and otel_admin log in on the workers (Citus reaches the shards as the current role); returns what it changed (nothing when run again, unless a worker was added). The dead letters stay on the coordinator';
