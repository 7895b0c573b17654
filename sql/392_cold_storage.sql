-- Cold storage: daily partitions past an age rewritten in the columnar
-- format of citus_columnar, a tenth of the bytes of the row format with
-- its indexes (`python -m bench storage`). They stay partitions of the
-- same tables, so every read function answers from them as before.

create or replace function otel.set_cold_storage(kind text, older_than interval)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- older_than null: no more conversions (columnar partitions stay so).
-- Otherwise whole days, months or years, stored as days
-- (otel.whole_days()). Installs citus_columnar when the server has it.
begin
    if kind is null or kind not in ('traces', 'logs', 'metrics') then
        raise exception 'kind must be traces, logs or metrics, got %', otel.argument_text(kind)
            using errcode = 'invalid_parameter_value';
    end if;
    if older_than is null then
        delete from otel.cold_storage as c where c.kind = set_cold_storage.kind;
        return;
    end if;
    insert into otel.cold_storage as c (kind, older_than)
    values (set_cold_storage.kind,
            make_interval(days => otel.whole_days(older_than, 'older_than', 'whole daily partitions are converted')))
    on conflict on constraint cold_storage_pkey do update set older_than = excluded.older_than;
    if not exists (select from pg_am where amname = 'columnar') then
        if exists (select from pg_available_extensions where name = 'citus_columnar') then
            create extension if not exists citus_columnar;
        else
            raise warning 'otel_db: citus_columnar is not installed on this server, so otel.maintain() leaves partitions in row format until it is'
                using hint = 'Build it with `make citus` (see docs/operations.md).';
        end if;
    end if;
end
$$;
comment on function otel.set_cold_storage(text, interval) is
    'Converts the daily partitions of `traces`, `logs` or `metrics` whose day ended more than `older_than` ago (whole days, months or years) to the columnar format of citus_columnar, at each `call otel.maintain()`; null stops converting. Installs citus_columnar when the server has it, warns when it does not';

create or replace function otel.cold_partitions_due()
returns table (kind text, partition_name text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Partitions in row format whose whole day is older than their kind's
-- older_than, oldest first; none, with a notice, without citus_columnar,
-- and none of a table distributed by Citus (otel.distribute()), whose
-- partitions the conversion cannot swap.
declare
    distributed text;
begin
    if not exists (select from otel.cold_storage) then
        return;
    end if;
    if not exists (select from pg_am where amname = 'columnar') then
        raise notice 'otel_db: cold storage is set, but citus_columnar is not installed in this database: partitions stay in row format'
            using hint = 'Build it with `make citus`, then run `create extension citus_columnar` or otel.set_cold_storage() again.';
        return;
    end if;
    select string_agg(format('otel.%I', s.kind), ', ' order by s.kind) into distributed
      from otel.cold_storage as s
     where otel.distributed(format('otel.%I', s.kind)::regclass);
    if distributed is not null then
        raise notice 'otel_db: cold storage is set for %, distributed by Citus: their partitions stay in row format', distributed
            using hint = 'Cold storage works on a single node only; see docs/scale-out.md.';
    end if;
    return query
        select s.kind, p.name
          from otel.cold_storage as s
         cross join lateral otel.daily_partitions(s.kind) as p
         where not p.columnar and (p.day + 1)::timestamp at time zone 'UTC' <= now() - s.older_than
           and not otel.distributed(format('otel.%I', s.kind)::regclass)
         order by p.day, s.kind;
end
$$;
comment on function otel.cold_partitions_due() is
    'The row-format partitions past their kind''s cold storage age (kind, partition_name), oldest first; internal to otel.maintain()';

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
        execute format('alter table otel.%I set (columnar.chunk_group_row_limit = 5000, columnar.compression = zstd,'
                       ' columnar.compression_level = 9)', copy_name);
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
                           ' columnar.stripe_row_limit = 10000, columnar.compression = zstd,'
                           ' columnar.compression_level = 9)',
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

-- The trace summaries of cold days. otel.maintain() moves the summaries of
-- the traces that started and ended on a day whose spans are columnar into
-- a columnar partition of otel.cold_trace_summaries: a tenth of their bytes
-- in row format with their indexes (`python -m bench storage`). The reads
-- look for a trace in otel.trace_summaries first; a trace that is not there
-- is in a cold day, which the Bloom filters of otel.cold_trace_days name,
-- or unknown.

create or replace function otel.bloom_position(bits bigint, trace_id text, hash_number integer)
returns bigint
language sql immutable parallel safe
as $$
    select mod(mod(hashtextextended(trace_id, hash_number), bits) + bits, bits)
$$;
comment on function otel.bloom_position(bigint, text, integer) is
    'The bit that hash number hash_number (1 to 3) of a trace id sets in a Bloom filter of `bits` bits; internal';

create or replace function otel.bloom_bits(trace_ids text[])
returns bytea
language plpgsql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
-- Ten bits a trace id, at least 64, three hashes: about 2 % false positives.
declare
    bloom bytea := decode(repeat('00', greatest(8, ceil(cardinality(trace_ids) * 10 / 8.0)::integer)), 'hex');
    bits bigint := length(bloom) * 8;
    trace_id text;
begin
    foreach trace_id in array trace_ids loop
        for hash_number in 1 .. 3 loop
            bloom := set_bit(bloom, otel.bloom_position(bits, trace_id, hash_number), 1);
        end loop;
    end loop;
    return bloom;
end
$$;
comment on function otel.bloom_bits(text[]) is
    'A Bloom filter of trace ids, for otel.cold_trace_days; internal';

create or replace function otel.bloom_may_hold(bloom bytea, trace_id text)
returns boolean
language sql immutable parallel safe
as $$
    select get_bit(bloom, otel.bloom_position(length(bloom) * 8, trace_id, 1))
           & get_bit(bloom, otel.bloom_position(length(bloom) * 8, trace_id, 2))
           & get_bit(bloom, otel.bloom_position(length(bloom) * 8, trace_id, 3)) = 1
$$;
comment on function otel.bloom_may_hold(bytea, text) is
    'Whether a Bloom filter of otel.bloom_bits() may hold a trace id (false: it surely does not); internal';

create or replace function otel.cold_trace_ranges(trace_ids text[])
returns table (trace_id text, first_start timestamptz, last_end timestamptz)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Of the given traces, those otel.trace_summaries lacks, each with the
-- days whose filter may hold it (two or more only by a false positive), to
-- their last microsecond, so that the next day's partition is not searched
-- too. Two statements: the first reads the summaries (distributed on
-- Citus), the second only otel.cold_trace_days.
declare
    unsummarised text[] := array(select x from unnest(trace_ids) as x
                                 except
                                 select s.trace_id from otel.trace_summaries as s where s.trace_id = any (trace_ids));
begin
    return query
        select x, min(d.day)::timestamp at time zone 'UTC',
               (max(d.day) + 1)::timestamp at time zone 'UTC' - interval '1 microsecond'
          from unnest(unsummarised) as x
          join otel.cold_trace_days as d on d.bucket = left(x, 3) and otel.bloom_may_hold(d.bloom, x)
         group by x;
end
$$;
comment on function otel.cold_trace_ranges(text[]) is
    'Of the given traces, those not in otel.trace_summaries that a cold day may hold (otel.cold_trace_days), with that day''s first and last moment: trace_id, first_start, last_end; internal';

create or replace function otel.trace_time_range(trace_id text)
returns table (first_start timestamptz, last_end timestamptz)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- PL/pgSQL, which keeps its plan from call to call: a SQL function that is
-- not inlined is planned at every call, a third of a hot trace's lookup.
begin
    select s.start_time, s.end_time into first_start, last_end
      from otel.trace_summaries as s
     where s.trace_id = trace_time_range.trace_id;
    if not found then
        -- A cold trace lies in one day. None: nulls, which no time is between.
        select r.first_start, r.last_end into first_start, last_end
          from otel.cold_trace_ranges(array[trace_time_range.trace_id]) as r;
    end if;
    return next;
end
$$;
comment on function otel.trace_time_range(text) is
    'The start of a trace''s first span and the end of its last, from otel.trace_summaries, which confine a lookup of its spans to the partitions they lie in; for a trace whose summary is cold, the day that otel.cold_trace_days says may hold it; nulls for an unknown trace; internal';

create or replace view otel.all_trace_summaries as
    select s.trace_id, s.start_time, s.end_time, s.duration_ms, s.root_service, s.root_name, s.span_count,
           s.error_count, s.services
      from otel.trace_summaries as s
    union all
    select c.trace_id, c.start_time, c.end_time, c.duration_ms, c.root_service, c.root_name, c.span_count,
           c.error_count, c.services
      from otel.cold_trace_summaries as c
     where not exists (select from otel.trace_summaries as s where s.trace_id = c.trace_id);
comment on view otel.all_trace_summaries is
    'Every trace summary: otel.trace_summaries, and the cold days'' (otel.cold_trace_summaries) of traces not in it. A search by trace id reads every cold day (about a millisecond a day); otel.trace_summaries_of() looks in cold days only for the traces otel.trace_summaries lacks, each in the day otel.cold_trace_days names';

create or replace function otel.trace_summaries_of(trace_ids text[])
returns setof otel.trace_summaries
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- In otel.trace_summaries first; a trace not there in the cold day that
-- otel.cold_trace_ranges() names, whose chunk groups are skipped by their
-- minimum and maximum trace id.
declare
    cold record;
begin
    return query select s.* from otel.trace_summaries as s where s.trace_id = any (trace_ids);
    for cold in select * from otel.cold_trace_ranges(trace_ids) loop
        return query
            select c.*
              from otel.cold_trace_summaries as c
             where c.trace_id = cold.trace_id and c.start_time between cold.first_start and cold.last_end;
    end loop;
end
$$;
comment on function otel.trace_summaries_of(text[]) is
    'The summaries of the given traces, from otel.trace_summaries, or from otel.cold_trace_summaries for those it lacks; internal';

create or replace function otel.cold_summaries_due()
returns setof date
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    -- Not on Citus: no partition of a distributed otel.traces is converted,
    -- and otel.distribute() moves the cold summaries back.
    return query
        select p.day
          from otel.daily_partitions('traces') as p
         where p.columnar and not otel.distributed('otel.trace_summaries')
           and to_regclass(format('otel.%I', 'cold_trace_summaries_p' || to_char(p.day, 'YYYYMMDD'))) is null
         order by p.day;
end
$$;
comment on function otel.cold_summaries_due() is
    'The days whose spans are columnar but whose trace summaries are not yet, oldest first; internal to otel.maintain()';

create or replace function otel.move_summaries_to_cold(day date)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Copies the summaries of the traces that started and ended on day into a
-- new columnar partition of otel.cold_trace_summaries, ordered by trace id
-- in 1,000-row chunk groups, with the day's Bloom filters of their ids
-- (otel.cold_trace_days), then, holding the flush lock, deletes from
-- otel.trace_summaries those that no flush changed meanwhile: a summary a
-- flush changed during the copy stays, and is the one the reads find. The
-- lock keeps a flush from reading the cold summaries before this commits
-- and adding late spans to a summary deleted under it. A trace that
-- crossed midnight keeps its summary in otel.trace_summaries until
-- retention. Readers go on throughout, and flushes but for the delete:
-- attaching the partition locks out another change of
-- otel.cold_trace_summaries. Returns how many summaries moved.
declare
    partition_name text := 'cold_trace_summaries_p' || to_char(day, 'YYYYMMDD');
    day_start timestamptz := day::timestamp at time zone 'UTC';
    day_end timestamptz := (day + 1)::timestamp at time zone 'UTC';
    moved bigint;
begin
    if not exists (select from pg_am where amname = 'columnar') then
        raise exception 'citus_columnar is not installed in this database'
            using errcode = 'undefined_object', hint = 'otel.set_cold_storage() installs it when the server has it.';
    end if;
    execute format('create table otel.%I (like otel.cold_trace_summaries including defaults) using columnar',
                   partition_name);
    execute format('alter table otel.%I set (columnar.chunk_group_row_limit = 1000, columnar.compression = zstd,'
                   ' columnar.compression_level = 9)', partition_name);
    execute format('insert into otel.%I select s.* from otel.trace_summaries as s'
                   ' where s.start_time >= $1 and s.start_time < $2 and s.end_time < $2 order by s.trace_id',
                   partition_name)
        using day_start, day_end;
    execute format('alter table otel.cold_trace_summaries attach partition otel.%I for values from (%L) to (%L)',
                   partition_name, day_start, day_end);
    execute format('insert into otel.cold_trace_days (day, bucket, bloom)'
                   ' select $1, left(c.trace_id, 3), otel.bloom_bits(array_agg(c.trace_id))'
                   '   from otel.%I as c group by left(c.trace_id, 3)', partition_name)
        using day;
    perform otel.take_flush_lock();
    -- The copies as a subquery (offset 0): a columnar table cannot give
    -- the row identities a join in a delete asks of each of its tables.
    execute format('delete from otel.trace_summaries as s using (select * from otel.%I offset 0) as c'
                   ' where s.trace_id = c.trace_id and row(s.*) is not distinct from row(c.*)', partition_name);
    get diagnostics moved = row_count;
    return moved;
end
$$;
comment on function otel.move_summaries_to_cold(date) is
    'Moves the summaries of the traces that started and ended on a cold day of spans from otel.trace_summaries into a columnar partition of otel.cold_trace_summaries (those a flush changed meanwhile stay); returns how many; internal to otel.maintain()';
