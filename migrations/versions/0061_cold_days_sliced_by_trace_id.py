"""A cold day of many spans is split by trace id into columnar slices: a trace is found in a third of the time.

otel.convert_to_columnar() makes a cold day of spans a table partitioned by
trace id (the first two hex digits) into columnar slices, a power of two of
them, 1 to 256, with at most otel.cold_slice_spans spans (a setting,
default 16384) each (otel.cold_trace_slices()): 1,000-row chunk groups,
10,000-row stripes. A trace is looked for in one slice: 1.5 ms against
4.5 ms for a million narrow spans in one columnar table, for 5 % more
bytes. A day of 16,384 spans or fewer stays one columnar table.
otel.daily_partitions() reports a sliced day as columnar, and
otel.drop_repeated_spans() looks for repeats in it (its own size is
nought). Downgrading makes each sliced day one columnar table again.

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
    -- day finds its partition empty, with nothing to look up; a cold day
    -- split into slices has no bytes of its own, so counts as holding rows)
    -- and whether one is cold. Read under a lock on otel.traces, which the
    -- conversion to columnar waits for to swap a partition in: the
    -- partitions read here stay as they are until this flush ends.
    lock table only otel.traces in access share mode;
    select coalesce(bool_or(p.columnar or pg_relation_size(format('otel.%I', p.name)) > 0), false),
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
-- day of spans: a power of two, 1 to 256, that leaves at most
-- otel.cold_slice_spans spans (a setting, default 16384) in each. 64 for a
-- million spans: a trace found in 1.5 ms, against 4.5 ms in one table.
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
    return least(256, 2 ^ ceil(log(2, greatest(coalesce(spans, 0), per_slice)::numeric / per_slice)))::integer;
end
$$;
comment on function otel.cold_trace_slices(bigint) is
    'The number of slices by trace id (a power of two, 1 to 256) that a cold day of `spans` spans is split into, at most otel.cold_slice_spans (default 16384) spans a slice; internal to otel.convert_to_columnar()';

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
-- a third of the time for a million narrow spans, for 5 % more bytes.
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
        -- the day (<partition>_t00 …). A slice buffers its last stripe until
        -- the copy commits: 10,000-row stripes bound that to a few MB each.
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
        if slices = 1 then
            execute format('analyze otel.%I', partition_name);
            return true;
        end if;
        -- Each slice from a sample of 3,000 rows (a fifth of it): its
        -- default sample, 30,000 rows, is all of it with every column
        -- decompressed, and analysing the day would sample the day as a
        -- whole besides: 18 s for a million spans, against 4 s.
        statistics_target := current_setting('default_statistics_target');
        perform set_config('default_statistics_target', '10', true);
        for slice_name in
            select c.relname from pg_inherits as i join pg_class as c on c.oid = i.inhrelid
             where i.inhparent = format('otel.%I', partition_name)::regclass
        loop
            execute format('analyze otel.%I', slice_name);
        end loop;
        perform set_config('default_statistics_target', statistics_target, true);
        return true;
    end loop;
    execute format('drop table otel.%I', copy_name);
    raise notice 'otel_db: otel.% is in use; it becomes columnar at a later maintenance', partition_name;
    return false;
end
$$;
comment on function otel.convert_to_columnar(text, text) is
    'Rewrites a daily partition of otel.traces, otel.logs or otel.metrics in the columnar format, without indexes, beside its readers and flushes (a day of many spans as columnar slices by trace id, otel.cold_trace_slices()); false, with a notice, when locks were not granted within moments; internal to otel.maintain()';

comment on table otel.traces is
    'One row per span: trace_id, span_id, parent_span_id (null for a root), trace_state, flags, name, kind, start_time, end_time, duration_ms, status_code, status_message, service_name, scope_name, scope_version, attributes, resource_attributes, events (`[{name, time, attributes}]`), links (`[{trace_id, span_id, trace_state, attributes}]`), signature_id. Indexes, on each partition in row format (otel.index_partition()): BRIN (start_time); (service_name, start_time desc); (trace_id); (start_time desc) where status_code = ''ERROR''; GIN `jsonb_path_ops` (attributes), for `@>`; (signature_id, start_time desc). A cold partition (otel.set_cold_storage()) is columnar, without indexes; a cold day of many spans is split by trace id into columnar slices (<partition>_t00 …, otel.cold_trace_slices())';
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
    execute_sql("drop function otel.cold_trace_slices(bigint)")
    execute_sql(OLD_TABLE_COMMENT)
