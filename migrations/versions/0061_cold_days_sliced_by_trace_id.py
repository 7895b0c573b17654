"""A cold day of many spans is split by trace id into columnar slices, so that a trace is looked for in one.

otel.convert_to_columnar() makes a cold day of spans a table partitioned by
trace id (its first two hex digits) into columnar slices, a power of two of
them, 1 to 64, with at most otel.cold_slice_spans spans (a setting, default
16384) each where 64 allow it (otel.cold_trace_slices(), which otel_admin
may call): 1,000-row chunk groups, 10,000-row stripes, statistics from a
small sample taken before the swap's locks. A trace is then looked for in
one slice, whose chunk metadata is a sixty-fourth of the day's. A day of
16,384 spans or fewer stays one columnar table, and so do the days
converted before.

otel.daily_partitions() reports a sliced day as columnar (and lists only
tables and partitioned tables); otel.drop_repeated_spans() asks the leaves
whether the batch's days hold rows (a sliced day has no bytes of its own);
otel.distribute() refuses, naming them, to distribute otel.traces while a
cold day is sliced (Citus distributes no multi-level partitioning).

Downgrading makes each sliced day one columnar table again, all in the
migration's transaction: otel.traces stays locked from the first day's
swap until it commits, so stop the flushes first.

Revision ID: 0061
Revises: 0060
"""

from migrations.schema import execute_sql, released_routine

revision = "0061"
down_revision = "0060"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.daily_partitions(parent text)
returns table (name text, day date, columnar boolean)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    -- The partitions otel.ensure_partitions() names otel.<parent>_pYYYYMMDD,
    -- read back: the day from the name, and the storage from the access
    -- method (cold storage is columnar, the rest heap), that of its slices
    -- for a cold day split by trace id (otel.convert_to_columnar()).
    select c.relname::text, to_date(right(c.relname, 8), 'YYYYMMDD'),
           case when c.relkind = 'p'
                then exists (select from pg_inherits as s
                               join pg_class as slice on slice.oid = s.inhrelid
                               join pg_am as sa on sa.oid = slice.relam
                              where s.inhparent = c.oid and sa.amname <> 'heap')
                else a.amname <> 'heap' end
      from pg_inherits as i
      join pg_class as c on c.oid = i.inhrelid
      left join pg_am as a on a.oid = c.relam
     where i.inhparent = format('otel.%I', parent)::regclass and c.relname ~ '_p[0-9]{8}$'
       and c.relkind in ('r', 'p')
$$;
comment on function otel.daily_partitions(text) is
    'The daily partitions of otel.traces, otel.logs or otel.metrics: name, UTC day, and whether it is columnar (cold storage, maybe in slices by trace id); internal';

create or replace function otel.drop_repeated_spans()
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Drops the valid spans of the working set that are repeated within it or
-- stored before; returns how many. Flushes are serialised, so the check
-- cannot race another flush.
declare
    repeated_in_batch bigint := 0;
    stored_before bigint;
    first_start timestamptz;
    last_start timestamptz;
    range_holds_rows boolean;
    range_has_cold_day boolean;
begin
    -- Spans repeated within the batch. Candidates first, by the 64-bit hash
    -- of their ids that typing computed in parallel: grouping every span by
    -- its two text ids needs several times the memory and spills to disk.
    -- Equal neighbours in key order: sorting a million keys takes half the
    -- time of hashing them into a million groups. Usually there are none,
    -- and then nothing else looks at every span.
    create temp table otel_repeated_keys on commit drop as
    select span_key
      from (select span_key, lag(span_key) over (order by span_key) as previous_key
              from pg_temp.otel_traces where err is null) as keys
     where span_key = previous_key;
    if exists (select from pg_temp.otel_repeated_keys) then
        delete from pg_temp.otel_traces as b
         using (select t.trace_id, t.span_id, min(t.n) as first_n
                  from pg_temp.otel_traces as t
                 where t.err is null and t.span_key in (select span_key from pg_temp.otel_repeated_keys)
                 group by t.trace_id, t.span_id
                having count(*) > 1) as repeated
         where b.trace_id = repeated.trace_id and b.span_id = repeated.span_id
           and b.n > repeated.first_n and b.err is null;
        get diagnostics repeated_in_batch = row_count;
    end if;
    -- Spans stored before. A span sent again has the same start time, so
    -- only the partitions of the batch's time range are searched: the check
    -- costs what the batch touches, not what otel.traces holds.
    select e.first_time, e.last_time into first_start, last_start
      from pg_temp.otel_batch_extent as e where e.kind = 'traces';
    if not found then
        raise exception 'otel.drop_repeated_spans() needs the extent that otel.partition_working_set() records';
    end if;
    -- Looked up in a query of its own: a delete's subquery would need the
    -- row position (ctid) of each span it reads, which a cold (columnar)
    -- partition cannot give.
    if otel.distributed('otel.traces') then
        -- Citus joins a distributed table with local rows only once they are
        -- a CTE of their own, which it sends to the workers, and then by a
        -- join rather than a semi-join. A fifth slower for a batch of spans
        -- all stored before, so not on one node.
        with batch as materialized (
            select b.n, b.trace_id, b.span_id from pg_temp.otel_traces as b where b.err is null
        ),
        stored as materialized (
            select distinct b.n
              from batch as b
              join otel.traces as t on t.trace_id = b.trace_id and t.span_id = b.span_id
             where t.start_time between first_start and last_start
        )
        delete from pg_temp.otel_traces as b using stored where b.n = stored.n;
        get diagnostics stored_before = row_count;
        return repeated_in_batch + stored_before;
    end if;
    -- The range's partitions: whether any holds rows (the first flush of a
    -- day finds its partition empty, with nothing to look up; the rows of a
    -- cold day split into slices are in its slices) and whether one is
    -- cold. Read under a lock on otel.traces, which the
    -- conversion to columnar waits for to swap a partition in: the
    -- partitions read here stay as they are until this flush ends.
    lock table only otel.traces in access share mode;
    select coalesce(bool_or(exists (select from pg_partition_tree(format('otel.%I', p.name)::regclass) as t
                                     where t.isleaf and pg_relation_size(t.relid) > 0)), false),
           coalesce(bool_or(p.columnar), false)
      into range_holds_rows, range_has_cold_day
      from otel.daily_partitions('traces') as p
     where p.day between (first_start at time zone 'UTC')::date and (last_start at time zone 'UTC')::date;
    if not range_holds_rows then
        return repeated_in_batch;
    elsif range_has_cold_day then
        -- A cold day has no index: one scan of the range, hashed.
        with stored as materialized (
            select b.n
              from pg_temp.otel_traces as b
             where b.err is null
               and exists (select 1 from otel.traces as t
                            where t.trace_id = b.trace_id and t.span_id = b.span_id
                              and t.start_time between first_start and last_start)
        )
        delete from pg_temp.otel_traces as b using stored where b.n = stored.n;
    else
        -- Trace by trace through the trace_id index: the traces with a span
        -- stored in the range first (a new trace, most of a batch, has
        -- none), then each span of theirs. The lateral subqueries' limits
        -- keep the planner to those index probes, and the materialized
        -- traces to one probe a trace: as a semi-join it hashed every span
        -- stored in the range instead, 20 s of a 60 s flush into a day of
        -- 10M spans (`python -m bench flush_throughput`).
        with stored_traces as materialized (
            select d.trace_id
              from (select distinct trace_id from pg_temp.otel_traces where err is null) as d
             cross join lateral (select from otel.traces as t
                                  where t.trace_id = d.trace_id and t.start_time between first_start and last_start
                                  limit 1) as stored_span
        ),
        stored as materialized (
            select b.n
              from stored_traces as d
              join pg_temp.otel_traces as b on b.trace_id = d.trace_id and b.err is null
             cross join lateral (select from otel.traces as t
                                  where t.trace_id = b.trace_id and t.span_id = b.span_id
                                    and t.start_time between first_start and last_start
                                  limit 1) as stored_span
        )
        delete from pg_temp.otel_traces as b using stored where b.n = stored.n;
    end if;
    get diagnostics stored_before = row_count;
    return repeated_in_batch + stored_before;
end
$$;
comment on function otel.drop_repeated_spans() is
    'Drops the spans of a flush repeated within it or stored before, returns how many; internal to otel.flush()';

create or replace function otel.cold_trace_slices(spans bigint)
returns integer
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- How many slices by trace id otel.convert_to_columnar() makes of a cold
-- day of spans: a power of two, 1 to 64, that leaves at most
-- otel.cold_slice_spans spans (a setting, default 16384) in each where it
-- can: 64 for a million spans. At most 64, because a read over a time
-- range locks every slice of the cold days it covers (see
-- docs/operations.md, max_locks_per_transaction).
declare
    setting text := coalesce(nullif(current_setting('otel.cold_slice_spans', true), ''), '16384');
    per_slice bigint;
begin
    if setting !~ '^[0-9]{1,18}$' or setting::bigint < 1000 then
        raise exception 'otel.cold_slice_spans % is not a number of spans of at least 1000', otel.argument_text(setting)
            using errcode = 'invalid_parameter_value',
                  hint = 'Set it with, for example, alter database … set otel.cold_slice_spans = 16384.';
    end if;
    per_slice := setting::bigint;
    return least(64, 2 ^ ceil(log(2, greatest(coalesce(spans, 0), per_slice)::numeric / per_slice)))::integer;
end
$$;
comment on function otel.cold_trace_slices(bigint) is
    'The number of slices by trace id (a power of two, 1 to 64) that a cold day of `spans` spans is split into: at most otel.cold_slice_spans (default 16384) spans a slice, up to 64 slices; used by otel.convert_to_columnar()';

create or replace function otel.convert_to_columnar(kind text, partition_name text)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Rewrites a daily partition as a columnar table, rows ordered by what
-- readers look them up by (spans by trace, logs by service and time,
-- points by metric and time), so that the minimum and maximum kept for
-- every 5,000 rows skip the rest. A day of many spans becomes a table
-- partitioned by trace id into columnar slices (otel.cold_trace_slices()):
-- a trace is then looked for in one slice, whose metadata is a fraction of
-- the day's, by 1,000-row chunk groups, which leave less to decompress:
-- 1.8 ms against 4.6 for a million narrow spans, for a tenth more bytes
-- (`python -m bench storage`).
-- The rows are copied while readers and flushes go on using the partition
-- (only re-signing it waits). Then, for a moment, the partitioned table
-- and the partition are locked (the table first, as a flush locks them),
-- the count shows whether a flush wrote into the day meanwhile, and the
-- copy takes the partition's place. Written meanwhile: the locks go and
-- the copy is made again, three times at most. Locks not granted within
-- moments are given up, so that readers never queue behind them: the copy
-- is dropped and the next maintenance tries again. Returns whether the
-- partition is columnar now.
declare
    partition regclass;
    bounds text;
    day date := to_date(substring(partition_name from '_p([0-9]{8})$'), 'YYYYMMDD');
    time_column text := case kind when 'traces' then 'start_time' else 'time' end;
    sort_key text := case kind when 'traces' then 'trace_id, start_time' when 'logs' then 'service_name, time'
                               else 'name, time' end;
    copy_name text := partition_name || '_columnar';
    copy_rows text;
    copied bigint;
    complete boolean;
    slices integer := 1;
    slice_start text;
    slice_end text;
    slice_name text;
    statistics_target text;
begin
    if kind is null or kind not in ('traces', 'logs', 'metrics') then
        raise exception 'kind must be traces, logs or metrics, got %', otel.argument_text(kind)
            using errcode = 'invalid_parameter_value';
    end if;
    select c.oid, pg_get_expr(c.relpartbound, c.oid) into partition, bounds
      from pg_inherits as i
      join pg_class as c on c.oid = i.inhrelid
     where i.inhparent = format('otel.%I', kind)::regclass and c.relname = partition_name;
    if partition is null or day is null then
        raise exception '% is not a daily partition of otel.%', otel.argument_text(partition_name), kind
            using errcode = 'invalid_parameter_value';
    end if;
    if not exists (select from pg_am where amname = 'columnar') then
        raise exception 'citus_columnar is not installed in this database'
            using errcode = 'undefined_object', hint = 'otel.set_cold_storage() installs it when the server has it.';
    end if;
    -- Read committed: the count below must see what flushes committed
    -- during the copy.
    if current_setting('transaction_isolation') <> 'read committed' then
        raise exception 'otel.convert_to_columnar() runs at isolation level read committed, not %',
                        current_setting('transaction_isolation')
            using errcode = 'invalid_transaction_state';
    end if;
    if to_regclass(format('otel.%I', copy_name)) is not null then
        raise exception 'otel.% is in the way of converting otel.%: drop or rename it', copy_name, partition_name
            using errcode = 'duplicate_table';
    end if;
    if not otel.run_with_short_locks(format('lock table otel.%I in share update exclusive mode', partition_name)) then
        raise notice 'otel_db: otel.% is being re-signed, vacuumed or converted; it becomes columnar at a later maintenance',
                     partition_name;
        return false;
    end if;
    -- Generated columns (logs.body_tsv) are computed again by the insert.
    select format('insert into otel.%I (%s) select %2$s from otel.%I order by %s',
                  copy_name, string_agg(quote_ident(a.attname), ', ' order by a.attnum), partition_name, sort_key)
      into copy_rows
      from pg_attribute as a
     where a.attrelid = partition and a.attnum > 0 and not a.attisdropped and a.attgenerated = '';
    if kind = 'traces' then
        execute format('select otel.cold_trace_slices(count(*)) from otel.%I', partition_name) into strict slices;
    end if;
    if slices > 1 and exists (select from pg_class as c where c.oid = partition and c.relkind = 'p') then
        raise exception 'otel.% is in slices already', partition_name
            using errcode = 'object_not_in_prerequisite_state',
                  hint = 'To make it one columnar table: select set_config(''otel.cold_slice_spans'', ''999999999999999999'', false), then convert it again.';
    end if;
    -- Like the partition, not its table: that would lock otel.<kind>
    -- throughout the copy, and a flush making a partition would wait.
    execute format('create table otel.%I (like otel.%I including defaults including constraints including generated'
                   ' including compression) %s', copy_name, partition_name,
                   case when slices = 1 then 'using columnar' else 'partition by range (trace_id)' end);
    if slices = 1 then
        -- 5,000 rows a chunk group: the fastest lookups by trace id of 1,000,
        -- 5,000 and 10,000, for the same bytes.
        execute format('alter table otel.%I set (columnar.chunk_group_row_limit = 5000, columnar.compression = zstd)',
                       copy_name);
    else
        -- Slices by the first two hex digits of the trace id, named after
        -- the day (<partition>_t00 …). Each slice keeps its last stripe and
        -- chunk group in memory until the copy ends: 10,000-row stripes keep
        -- that to about a megabyte a slice.
        for slice_number in 0 .. slices - 1 loop
            slice_start := lpad(to_hex(slice_number * 256 / slices), 2, '0');
            slice_end := lpad(to_hex((slice_number + 1) * 256 / slices), 2, '0');
            execute format('create table otel.%I partition of otel.%I for values from (%s) to (%s) using columnar',
                           partition_name || '_t' || slice_start, copy_name,
                           case when slice_number = 0 then 'minvalue' else quote_literal(slice_start) end,
                           case when slice_number = slices - 1 then 'maxvalue' else quote_literal(slice_end) end);
            execute format('alter table otel.%I set (columnar.chunk_group_row_limit = 1000,'
                           ' columnar.stripe_row_limit = 10000, columnar.compression = zstd)',
                           partition_name || '_t' || slice_start);
        end loop;
    end if;
    -- The partition's bounds as a constraint, so that attaching the copy
    -- needs no scan to prove them.
    execute format('alter table otel.%I add constraint %I check (%I >= %L and %I < %L)',
                   copy_name, copy_name || '_bounds', time_column, day::timestamp at time zone 'UTC',
                   time_column, (day + 1)::timestamp at time zone 'UTC');
    for attempt in 1 .. 3 loop
        execute copy_rows;
        get diagnostics copied = row_count;
        -- Statistics now, before the locks below, which readers wait behind
        -- (they stay the copy's through the swap), though a flush writing
        -- into the day meanwhile then has longer to make the copy stale.
        -- Each slice from a sample of 3,000 rows: the default sample, 30,000
        -- rows, is all of a slice of a million-span day, every column
        -- decompressed, and analysing the day would sample the day as a
        -- whole besides: 18 s for a million spans, against 4 s.
        if slices = 1 then
            execute format('analyze otel.%I', copy_name);
        else
            statistics_target := current_setting('default_statistics_target');
            perform set_config('default_statistics_target', '10', true);
            for slice_name in
                select c.relname from pg_inherits as i join pg_class as c on c.oid = i.inhrelid
                 where i.inhparent = format('otel.%I', copy_name)::regclass
            loop
                execute format('analyze otel.%I', slice_name);
            end loop;
            perform set_config('default_statistics_target', statistics_target, true);
        end if;
        begin
            -- only: not every other partition of the table
            exit when not otel.run_with_short_locks(
                format('lock table only otel.%I, otel.%I in access exclusive mode', kind, partition_name));
            execute format('select count(*) = %s from otel.%I', copied, partition_name) into strict complete;
            if not complete then
                raise exception 'rows written during the copy' using errcode = 'object_not_in_prerequisite_state';
            end if;
        exception when object_not_in_prerequisite_state then
            execute format('truncate otel.%I', copy_name);  -- and the locks are let go
            continue;
        end;
        execute format('alter table otel.%I detach partition otel.%I', kind, partition_name);
        execute format('drop table otel.%I', partition_name);
        execute format('alter table otel.%I rename to %I', copy_name, partition_name);
        execute format('alter table otel.%I attach partition otel.%I %s', kind, partition_name, bounds);
        execute format('alter table otel.%I drop constraint %I', partition_name, copy_name || '_bounds');
        return true;
    end loop;
    execute format('drop table otel.%I', copy_name);
    raise notice 'otel_db: otel.% is in use; it becomes columnar at a later maintenance', partition_name;
    return false;
end
$$;
comment on function otel.convert_to_columnar(text, text) is
    'Rewrites a daily partition of otel.traces, otel.logs or otel.metrics in the columnar format, without indexes, beside its readers and flushes (a day of many spans as columnar slices by trace id, otel.cold_trace_slices()); false, with a notice, when locks were not granted within moments; internal to otel.maintain()';

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
    'On a Citus coordinator, after `alembic upgrade head`: distributes otel.traces and otel.trace_summaries by trace_id in shard_count (default 32) co-located shards, otel.logs by shard_key co-located with the spans (a record in a trace beside its spans) and otel.metrics by series_key (one shard a series), redistributing a table an earlier release distributed otherwise, and makes otel.span_signatures and otel.operation_catalog reference tables; distributes the staging of OTLP/JSON requests, spans, logs and points by a row id it adds (writers COPY into them with a column list), so that the flush parses, decodes, types and moves their rows on the workers (otel.flush_otlp, otel.flush_spans, otel.flush_logs, otel.flush_metrics); lets otel_reader, otel_writer and otel_admin log in on the workers (Citus reaches the shards as the current role); returns what it changed (nothing when run again, unless a worker was added). The dead letters stay on the coordinator';

comment on table otel.traces is
    'One row per span: trace_id, span_id, parent_span_id (null for a root), trace_state, flags, name, kind, start_time, end_time, duration_ms, status_code, status_message, service_name, scope_name, scope_version, attributes, resource_attributes, events (`[{name, time, attributes}]`), links (`[{trace_id, span_id, trace_state, attributes}]`), signature_id. Indexes, on each partition in row format (otel.index_partition()): BRIN (start_time); (service_name, start_time desc); (trace_id); (start_time desc) where status_code = ''ERROR''; GIN `jsonb_path_ops` (attributes), for `@>`; (signature_id, start_time desc). A cold partition (otel.set_cold_storage()) is columnar, without indexes; a cold day of many spans is split by trace id into columnar slices (<partition>_t00 …, otel.cold_trace_slices())';

grant execute on function otel.cold_trace_slices(bigint) to otel_admin;
"""

# Each sliced day back into one columnar table (the new conversion, told
# to make one slice), before the routines that cannot read slices return.
MERGE_SLICES = r"""
do $$
declare
    sliced text;
begin
    perform set_config('otel.cold_slice_spans', '999999999999999999', true);
    for sliced in
        select c.relname from pg_inherits as i join pg_class as c on c.oid = i.inhrelid
         where i.inhparent = 'otel.traces'::regclass and c.relkind = 'p'
    loop
        if not otel.convert_to_columnar('traces', sliced) then
            raise exception 'otel.% is in use: downgrade again when it is not', sliced
                using errcode = 'lock_not_available';
        end if;
    end loop;
end
$$;
"""

OLD_TABLE_COMMENT = r"""
comment on table otel.traces is
    'One row per span: trace_id, span_id, parent_span_id (null for a root), trace_state, flags, name, kind, start_time, end_time, duration_ms, status_code, status_message, service_name, scope_name, scope_version, attributes, resource_attributes, events (`[{name, time, attributes}]`), links (`[{trace_id, span_id, trace_state, attributes}]`), signature_id. Indexes, on each partition in row format (otel.index_partition()): BRIN (start_time); (service_name, start_time desc); (trace_id); (start_time desc) where status_code = ''ERROR''; GIN `jsonb_path_ops` (attributes), for `@>`; (signature_id, start_time desc). A cold partition (otel.set_cold_storage()) is columnar, without indexes';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(MERGE_SLICES)
    execute_sql(released_routine("0042", "otel.daily_partitions"))
    execute_sql(released_routine("0051", "otel.drop_repeated_spans"))
    execute_sql(released_routine("0038", "otel.convert_to_columnar"))
    execute_sql(released_routine("0059", "otel.distribute"))
    execute_sql("drop function otel.cold_trace_slices(bigint)")
    execute_sql(OLD_TABLE_COMMENT)
