"""The trace summaries of cold days in columnar partitions, and cold spans compressed harder.

otel.maintain() moves the summaries of the traces that started and ended
on a day whose spans are columnar into otel.cold_trace_summaries, a table
partitioned by day whose partitions are columnar (zstd level 9, rows
ordered by trace id, 1,000-row chunk groups): otel.move_summaries_to_cold(),
for each day otel.cold_summaries_due() names, beside flushes and readers.
Summaries a flush changed meanwhile, and those of traces that crossed
midnight, stay in otel.trace_summaries; retention drops a cold day's
summaries with its spans. The days converted before get theirs at the next
maintenance.

otel.cold_trace_days keeps, for each cold day and each first three hex
digits of the trace ids, a Bloom filter of the day's trace ids. The reads
look in otel.trace_summaries first; a trace that is not there is looked for
in the day whose filter may hold it (otel.trace_time_range()): trace_spans,
root_cause, trace_export, similar_traces and the comparisons.
find_traces and explain_trace read the cold summaries as well
(otel.trace_summaries_of(), the view otel.all_trace_summaries; explain_trace
those within a day of the trace). A flush with late spans of a trace whose
summary is cold brings it back to otel.trace_summaries and adds them to it.
otel.distribute() distributes otel.cold_trace_summaries beside the
summaries. Cold partitions of every kind are now compressed at zstd level 9
(3 before): about a tenth fewer bytes, a slower conversion.

Downgrading moves every cold summary back to otel.trace_summaries and drops
otel.cold_trace_summaries; cold partitions stay as they are.

Revision ID: 0062
Revises: 0061
"""

from migrations.schema import execute_sql, released_comment, released_routine

revision = "0062"
down_revision = "0061"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- The summaries of cold days: otel.maintain() moves a day's there once its
-- spans are columnar (otel.move_summaries_to_cold()).
create table otel.cold_trace_summaries (
    trace_id text not null,
    start_time timestamptz not null,
    end_time timestamptz not null,
    duration_ms double precision not null,
    root_service text,
    root_name text,
    span_count bigint not null,
    error_count bigint not null,
    services text[] not null default '{}'
) partition by range (start_time);
comment on table otel.cold_trace_summaries is
    'The summaries of the traces that started and ended on a cold day of spans (otel.set_cold_storage()), as in otel.trace_summaries: one columnar partition a day (cold_trace_summaries_pYYYYMMDD), rows ordered by trace_id, without indexes. A trace found in otel.trace_summaries is read from there: a summary a flush changed while its day was moved, or that late spans brought back, stays there';

-- Which cold day holds a trace whose summary is cold, without opening
-- every day's partition (a millisecond each).
create table otel.cold_trace_days (
    day date not null,
    bucket text not null,
    bloom bytea not null,
    primary key (bucket, day)
);
comment on table otel.cold_trace_days is
    'Which day of otel.cold_trace_summaries may hold a trace: for each day and each first three hex digits of the trace ids (bucket), a Bloom filter of the day''s trace ids (otel.bloom_bits(): ten bits a trace, three hashes, about 2 % false positives), kept by otel.move_summaries_to_cold() and retention';

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
        -- A cold trace lies in one day: the days whose filter may hold it
        -- (two or more only by a false positive), to their last microsecond,
        -- so that the next day's partition is not searched too. None:
        -- nulls, which no time is between.
        select min(d.day)::timestamp at time zone 'UTC',
               (max(d.day) + 1)::timestamp at time zone 'UTC' - interval '1 microsecond'
          into first_start, last_end
          from otel.cold_trace_days as d
         where d.bucket = left(trace_time_range.trace_id, 3)
           and otel.bloom_may_hold(d.bloom, trace_time_range.trace_id);
    end if;
    return next;
end
$$;
comment on function otel.trace_time_range(text) is
    'The start of a trace''s first span and the end of its last, from otel.trace_summaries, which confine a lookup of its spans to the partitions they lie in; for a trace whose summary is cold, the day that otel.cold_trace_days says may hold it; nulls for an unknown trace; internal';

create or replace function otel.trace_summaries_of(trace_ids text[])
returns setof otel.trace_summaries
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- In otel.trace_summaries first; a trace not there in the cold day that
-- otel.trace_time_range() names, whose chunk groups are skipped by their
-- minimum and maximum trace id.
declare
    cold_trace text;
    day_start timestamptz;
    day_end timestamptz;
begin
    return query select s.* from otel.trace_summaries as s where s.trace_id = any (trace_ids);
    for cold_trace in
        select x from unnest(trace_ids) as x
        except
        select s.trace_id from otel.trace_summaries as s where s.trace_id = any (trace_ids)
    loop
        select r.first_start, r.last_end into day_start, day_end from otel.trace_time_range(cold_trace) as r;
        return query
            select c.*
              from otel.cold_trace_summaries as c
             where c.trace_id = cold_trace and c.start_time between day_start and day_end;
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
    -- Not on Citus, where no partition of otel.traces is converted.
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
-- (otel.cold_trace_days), then deletes from otel.trace_summaries those
-- that no flush changed meanwhile: a summary a flush changed (its row lock
-- waited for, then the row compared again) stays, and is the one the
-- reads find. A trace that crossed midnight keeps its summary in
-- otel.trace_summaries until retention. Flushes and readers go on
-- throughout: attaching the partition locks out only another change of
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

create or replace procedure otel.maintain(days_ahead integer default 3)
language plpgsql
as $$
-- Partitions ahead and retention first (otel.maintain_partitions()), then
-- the partitions due for cold storage, each converted in a transaction of
-- its own (otel.convert_to_columnar()), so that no lock outlives one
-- partition's conversion, then the trace summaries of each cold day of
-- spans (otel.move_summaries_to_cold()), a transaction each. With partitions to convert it commits, so it
-- must then be called outside a transaction block, as pg_cron does. A
-- conversion that fails is a warning: the others go on. No `set` clause
-- and not security definer, which would forbid the commits; the functions
-- that do the work pin their settings.
declare
    due record;
    day date;
begin
    perform otel.maintain_partitions(days_ahead);
    for due in select * from otel.cold_partitions_due() loop
        commit;
        begin
            perform otel.convert_to_columnar(due.kind, due.partition_name);
        exception when others then
            raise warning 'otel_db: otel.% stays in row format: %', due.partition_name, sqlerrm;
        end;
    end loop;
    for day in select * from otel.cold_summaries_due() loop
        commit;
        begin
            perform otel.move_summaries_to_cold(day);
        exception when others then
            raise warning 'otel_db: the trace summaries of % stay in row format: %', day, sqlerrm;
        end;
    end loop;
end
$$;
comment on procedure otel.maintain(integer) is
    'Creates daily partitions from yesterday to days_ahead days ahead, drops those past their retention, then converts those due for cold storage (otel.set_cold_storage()) to columnar and moves the trace summaries of each cold day of spans to otel.cold_trace_summaries, one transaction each; run by the pg_cron job otel-maintenance, outside a transaction block';

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
    traces_cutoff timestamptz;
begin
    for expired in
        select r.kind, p.name, format('otel.%I', p.name) as partition
          from otel.retention as r
         cross join lateral otel.daily_partitions(r.kind) as p
         where (p.day + 1)::timestamp at time zone 'UTC' <= now() - r.keep
         order by p.name
    loop
        continue when expired.kind = any (busy);
        if otel.run_with_short_locks(format('drop table otel.%I', expired.name)) then
            return next expired.partition;
        else
            busy := busy || expired.kind;
            raise notice 'otel_db: otel.% is in use; % and older partitions are dropped by the next maintenance',
                         expired.kind, expired.partition;
        end if;
    end loop;
    -- The cutoff as a value, not now() in the deletes: Citus cannot send a
    -- stable function to the workers within a distributed delete.
    select now() - r.keep - interval '1 day' into traces_cutoff from otel.retention as r where r.kind = 'traces';
    if found then
        delete from otel.trace_summaries as s where s.end_time < traces_cutoff;
        delete from otel.operation_catalog as c where c.last_seen < traces_cutoff;
        -- A cold day's summaries all ended on that day.
        for expired in
            select p.name, p.day, format('otel.%I', p.name) as partition
              from otel.daily_partitions('cold_trace_summaries') as p
             where (p.day + 1)::timestamp at time zone 'UTC' <= traces_cutoff
             order by p.name
        loop
            exit when not otel.run_with_short_locks(format('drop table otel.%I', expired.name));
            delete from otel.cold_trace_days as d where d.day = expired.day;
            return next expired.partition;
        end loop;
    end if;
end
$$;
comment on function otel.drop_expired_partitions() is
    'Drops the daily partitions of otel.traces, otel.logs and otel.metrics past their retention (otel.retention), and the trace summaries (hot, and the cold days'' partitions) and catalogued operations last seen before it; returns the partitions'' names';

create or replace function otel.summarize_traces()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- The valid spans of the working set added to otel.trace_summaries: from
-- the working set rather than the insert's returning rows, so no second
-- copy of every span to aggregate. Plain aggregates only: an ordered or
-- distinct aggregate sorts the spans of every trace on its own, which cost
-- more than all the rest of this statement. Most traces have one root
-- span, which min() finds; only those with several look for the earliest.
-- Ids are grouped byte-wise (collate "C"): the same groups, without the
-- database's collation rules. Late spans of a trace whose summary is cold
-- (otel.move_summaries_to_cold()) bring it back to otel.trace_summaries
-- first, where the upsert adds them to it.
declare
    cold_until timestamptz;
    first_start timestamptz;
begin
    select (max(p.day) + 1)::timestamp at time zone 'UTC' into cold_until
      from otel.daily_partitions('cold_trace_summaries') as p;
    select e.first_time into first_start from pg_temp.otel_batch_extent as e where e.kind = 'traces';
    if first_start < cold_until then
        -- A cold summary lies in its spans' day: only the batch's days are read.
        insert into otel.trace_summaries
        select c.*
          from otel.cold_trace_summaries as c
         where c.start_time >= date_trunc('day', first_start, 'UTC') and c.start_time < cold_until
           and c.trace_id in (select t.trace_id from pg_temp.otel_traces as t
                               where t.err is null and t.start_time < cold_until)
           and not exists (select from otel.trace_summaries as s where s.trace_id = c.trace_id);
    end if;
    perform otel.upsert_trace_summaries($query$
        with per_trace as (
            select (trace_id collate "C") collate "default" as trace_id,
                   min(start_time) as start_time, max(end_time) as end_time,
                   count(*) as span_count,
                   count(*) filter (where status_code = 'ERROR') as error_count,
                   count(*) filter (where parent_span_id is null) as roots,
                   min(service_name) filter (where parent_span_id is null) as root_service,
                   min(name) filter (where parent_span_id is null) as root_name,
                   otel.text_array_agg(service_name) filter (where service_name is not null) as services
              from pg_temp.otel_traces
             where err is null
             group by trace_id collate "C"
        ),
        earliest_roots as (
            select distinct on (t.trace_id) t.trace_id, t.service_name, t.name
              from pg_temp.otel_traces as t
              join per_trace as p on p.trace_id = t.trace_id and p.roots > 1
             where t.err is null and t.parent_span_id is null
             order by t.trace_id, t.start_time, t.n
        )
        select p.trace_id, p.start_time, p.end_time,
               case when p.roots > 1 then r.service_name else p.root_service end,
               case when p.roots > 1 then r.name else p.root_name end,
               p.span_count, p.error_count, p.services
          from per_trace as p
          left join earliest_roots as r on r.trace_id = p.trace_id
         -- In the primary key's order (bytewise: the same for hex ids, and
         -- sorted faster): its pages are visited in turn rather than at random,
         -- which takes a quarter off the upsert for a sort of a twentieth.
         order by p.trace_id collate "C"
    $query$);
end
$$;
comment on function otel.summarize_traces() is
    'Adds the spans of a flush to otel.trace_summaries; internal to otel.flush()';

create or replace function otel.root_cause(trace_id text)
returns table (
    rank integer, span_id text, parent_span_id text, depth integer, service_name text, name text, kind text,
    status_code text, status_message text, exception_type text, exception_message text,
    start_time timestamptz, duration_ms double precision, score real, reason text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
-- The planner guesses the recursive steps at millions of rows for a trace of
-- a few hundred spans: compiling for that costs far more than it saves.
set jit = off
as $$
-- A span fails as otel.span_failed() says: status ERROR, or an "exception"
-- event with a status other than OK.
-- A failure is weak when all it says is an HTTP status >= 400: no
-- exception, no status message beyond the code. The candidates are the
-- failing spans without a failing descendant (a weak one does not count
-- below a span that raised or has a message of its own), scored:
--   3    raised: an exception event and status ERROR
--   2.5  an exception event, status UNSET
--   2    status ERROR with a message of its own, or not weak
--   1    weak, or status ERROR that mirrors the HTTP 5xx of a descendant
--        which did not fail itself
-- then the deeper span, then the earlier. Depth counts from the trace's
-- root, or from the highest stored ancestor when a parent is missing (the
-- reason says so). As otel.trace_spans(), the trace's time range in
-- otel.trace_summaries confines the lookup to its partitions, where the
-- trace_id index finds its spans, however many flushes brought them.
declare
    wanted text := otel.normalize_trace_id(root_cause.trace_id);
    first_start timestamptz;
    last_start timestamptz;
begin
    if wanted !~ '^[0-9a-f]{32}$' then
        raise exception 'trace_id must be 32 hex digits, got %', otel.argument_text(root_cause.trace_id)
            using errcode = 'invalid_parameter_value';
    end if;
    select r.first_start, r.last_end into first_start, last_start from otel.trace_time_range(wanted) as r;
    return query
        with recursive spans as (
            select t.span_id, t.parent_span_id, t.service_name, t.name, t.kind, t.status_code, t.status_message,
                   t.start_time, t.duration_ms, e.attributes ->> 'exception.type' as exception_type,
                   e.attributes ->> 'exception.message' as exception_message, e.attributes is not null as raised,
                   h.status as http_status,
                   otel.span_failed(t.status_code, e.attributes is not null) as failing,
                   -- a status message that says more than the HTTP status code
                   nullif(t.status_message, '') is not null
                   and (h.status is null or position(h.status::text in t.status_message) = 0) as own_message
              from otel.traces as t
             cross join lateral (select otel.exception_event_attributes(t.events) as attributes) as e
             cross join lateral (
                 -- stable semantic conventions first, then the older name
                 select case when c.code ~ '^[1-5][0-9][0-9]$' then c.code::integer end as status
                   from (select coalesce(t.attributes ->> 'http.response.status_code',
                                         t.attributes ->> 'http.status_code') as code) as c
             ) as h
             where t.trace_id = wanted and t.start_time between first_start and last_start
        ),
        evidence as (
            -- A failure is weak when an HTTP status is all it says.
            select s.*, s.failing and not s.raised and not s.own_message and coalesce(s.http_status >= 400, false) as weak
              from spans as s
        ),
        below (ancestor, origin, failing, weak, http_status) as (
            -- Every ancestor of a failing span, or of a span that answered
            -- 5xx without failing. Pairs, not paths: union ends a cycle.
            select e.parent_span_id, e.span_id, e.failing, e.weak, e.http_status
              from evidence as e
             where (e.failing or e.http_status >= 500) and e.parent_span_id <> e.span_id
            union
            select p.parent_span_id, b.origin, b.failing, b.weak, b.http_status
              from below as b
              join spans as p on p.span_id = b.ancestor
             where p.parent_span_id <> p.span_id
        ),
        beneath as (
            -- What lies below each span (spans that are each other's
            -- ancestors, in a cycle, do not count).
            select b.ancestor,
                   bool_or(b.failing and not b.weak) as failure,
                   min(b.http_status) filter (where b.weak) as weak_status,
                   min(b.http_status) filter (where not b.failing) as answered_status
              from below as b
             where b.origin <> b.ancestor
               and not exists (select from below as c where c.ancestor = b.origin and c.origin = b.ancestor)
             group by b.ancestor
        ),
        parents as (
            select distinct s.parent_span_id
              from spans as s
             where s.parent_span_id <> s.span_id
        ),
        candidates as (
            -- Failing spans with nothing failing below them, but a weak
            -- failure under a span that says more (the HTTP 409 its client
            -- span got, under the span that raised OutOfStock).
            select e.*, b.weak_status, b.answered_status, p.parent_span_id is not null as has_children,
                   case when e.raised and e.status_code = 'ERROR' then 'raised'
                        when e.raised then 'recorded'
                        when e.own_message then 'status'
                        when b.answered_status is not null then 'mirror'
                        when e.weak then 'http'
                        else 'status' end as kind_of_evidence
              from evidence as e
              left join beneath as b on b.ancestor = e.span_id
              left join parents as p on p.parent_span_id = e.span_id
             where e.failing
               and not coalesce(b.failure, false)
               and (b.weak_status is null or e.raised or e.own_message)
        ),
        chain (candidate, span_id, parent_span_id, steps, ids) as (
            -- Up from each candidate to the highest stored ancestor.
            select c.span_id, c.span_id, c.parent_span_id, 0, array[c.span_id]
              from candidates as c
            union all
            select ch.candidate, p.span_id, p.parent_span_id, ch.steps + 1, ch.ids || p.span_id
              from chain as ch
              join spans as p on p.span_id = ch.parent_span_id
             where p.span_id <> all (ch.ids)
        ),
        tops as (
            select distinct on (ch.candidate) ch.candidate, ch.span_id as top, ch.parent_span_id as top_parent,
                   ch.steps, ch.parent_span_id <> ch.span_id and ch.parent_span_id = any (ch.ids) as looped
              from chain as ch
             order by ch.candidate, ch.steps desc
        ),
        scored as (
            select c.*, t.steps,
                   case c.kind_of_evidence when 'raised' then 3 when 'recorded' then 2.5 when 'status' then 2 else 1
                   end::real as score,
                   case c.kind_of_evidence
                        when 'raised' then format('raised %s', coalesce(c.exception_type, 'an exception'))
                        when 'recorded'
                            then format('recorded %s with status %s', coalesce(c.exception_type, 'an exception'),
                                        c.status_code)
                        when 'status' then 'error status without exception'
                        when 'mirror'
                            then format('error status mirrors the HTTP %s of a descendant that did not fail',
                                        c.answered_status)
                        when 'http' then format('only an HTTP %s status, no exception', c.http_status)
                   end
                   || case when c.kind_of_evidence = 'mirror' then ''
                           when c.weak_status is not null
                               then format('; nothing failing below it but an HTTP %s status', c.weak_status)
                           when c.kind_of_evidence = 'http' and c.kind = 'CLIENT' and not c.has_children
                               then '; the callee has no span in the trace'
                           else '; no failing descendant' end
                   || case when t.top_parent is null or t.top_parent = t.top then ''
                           when t.looped then '; its ancestors loop back on themselves'
                           when t.top = c.span_id then '; parent span missing from the trace'
                           else format('; depth counted from span %s, whose parent is missing from the trace', t.top)
                      end as reason
              from candidates as c
              join tops as t on t.candidate = c.span_id
        )
        select (row_number() over w)::integer, s.span_id, s.parent_span_id, s.steps, s.service_name, s.name, s.kind,
               s.status_code, s.status_message, s.exception_type, s.exception_message, s.start_time, s.duration_ms,
               s.score, s.reason
          from scored as s
        window w as (order by s.score desc, s.steps desc, s.start_time, s.span_id)
         order by 1;
end
$$;
comment on function otel.root_cause(text) is
    'Where the trace''s failure originates, best first: the failing spans (status ERROR, or an `exception` event without status OK) with no failing descendant (a failure that is only an HTTP status does not count below a span that raised or has a message of its own), so that an error that travelled up through several services comes back as the span that raised it. rank, span_id, parent_span_id, depth (from the root, or from below a missing parent), service_name, name, kind, status_code, status_message, exception_type, exception_message, start_time, duration_ms, score, reason. Score 3: raised an exception (status ERROR); 2.5: recorded an exception, status UNSET; 2: error status alone; 1: only an HTTP status ≥ 400 with no message of its own, or mirroring the 5xx of a descendant that did not fail; ties go to the deeper, then the earlier span. `reason` says which (`raised KeyError; no failing descendant`), and when a parent is missing from the trace. Reads the trace''s partitions by index, whatever flushes brought its spans; no rows for a trace without errors or an unknown trace; 22023 unless trace_id is 32 hex digits';

create or replace function otel.trace_spans(trace_id text)
returns table (
    span_id text, parent_span_id text, depth integer, name text, service_name text, kind text,
    start_time timestamptz, end_time timestamptz, duration_ms double precision, status_code text,
    status_message text, attributes jsonb, events jsonb, links jsonb)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- The trace's time range in otel.trace_summaries confines the lookup to the
-- partitions it spans, where the trace_id index finds its spans (for a
-- trace whose summary is cold, the day otel.trace_time_range() names).
-- Depth first, children by start time; a span whose parent is missing is
-- shown as a root (depth 0).
declare
    wanted text := otel.normalize_trace_id(trace_spans.trace_id);
    first_start timestamptz;
    last_start timestamptz;
begin
    select r.first_start, r.last_end into first_start, last_start from otel.trace_time_range(wanted) as r;
    return query
        with recursive spans as (
            select t.*, lpad((extract(epoch from t.start_time) * 1000000)::bigint::text, 20, '0') || t.span_id as sort_key
              from otel.traces as t
             where t.trace_id = wanted and t.start_time between first_start and last_start
        ),
        tree as (
            select s.span_id, 0 as depth, array[s.sort_key] as path, array[s.span_id] as ids
              from spans as s
             where s.parent_span_id is null or s.parent_span_id = s.span_id
                or not exists (select from spans as p where p.span_id = s.parent_span_id)
            union all
            select c.span_id, tree.depth + 1, tree.path || c.sort_key, tree.ids || c.span_id
              from tree
              join spans as c on c.parent_span_id = tree.span_id
             where c.span_id <> all (tree.ids)  -- a cycle in bad data stops here
        ),
        placed as (
            select tree.span_id, tree.depth, tree.path from tree
            union all
            -- Spans only reachable through a cycle: shown as roots.
            select s.span_id, 0, array[s.sort_key]
              from spans as s
             where not exists (select from tree where tree.span_id = s.span_id)
        )
        select s.span_id, s.parent_span_id, placed.depth, s.name, s.service_name, s.kind, s.start_time, s.end_time,
               s.duration_ms, s.status_code, s.status_message, s.attributes, s.events, s.links
          from placed
          join spans as s on s.span_id = placed.span_id
         order by placed.path;
end
$$;
comment on function otel.trace_spans(text) is
    'The span tree, depth first (children by start time): span_id, parent_span_id, depth, name, service_name, kind, start_time, end_time, duration_ms, status_code, status_message, attributes, events, links. A span whose parent never arrived is shown as a root. The trace''s time range in `otel.trace_summaries` confines the lookup to its partitions (for a trace whose summary is cold, the day that otel.cold_trace_days names); no rows for an unknown trace';

create or replace function otel.trace_export(trace_id text)
returns setof otel.traces
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- As otel.trace_spans: the trace's time range in otel.trace_summaries
-- confines the lookup to the partitions it spans.
declare
    wanted text := otel.normalize_trace_id(trace_export.trace_id);
    first_start timestamptz;
    last_end timestamptz;
begin
    select r.first_start, r.last_end into first_start, last_end from otel.trace_time_range(wanted) as r;
    return query
        select t.*
          from otel.traces as t
         where t.trace_id = wanted and t.start_time between first_start and last_end
         order by t.start_time, t.span_id;
end
$$;
comment on function otel.trace_export(text) is
    'Every stored column of every span of the trace (a row of `otel.traces`), by start time: what the query API turns into Jaeger''s JSON; found through the trace''s time range as `trace_spans`; no rows for an unknown trace';

create or replace function otel.trace_operations(trace_ids text[])
returns table (
    trace_id text, span_id text, parent_span_id text, service_name text, operation text, label text,
    path text[], depth integer, occurrence integer, status_code text, status_message text, exception_type text,
    raised boolean, start_time timestamptz, duration_ms double precision, attributes jsonb)
language plpgsql stable
set search_path = pg_catalog, pg_temp
-- The planner guesses the recursive step at millions of rows for traces of
-- a few hundred spans: compiling for that costs far more than it saves.
set jit = off
as $$
-- A span's operation is its service and its name with ids, numbers and
-- uuids replaced (otel.normalize_text), so that "GET /orders/42" and
-- "GET /orders/43" are one operation; its path is the operations of its
-- ancestors from the root down. Repeated operations under the same path
-- are numbered in start order (occurrence).
declare
    span_rows otel.traces[];
    cold_trace text;
    day_start timestamptz;
    day_end timestamptz;
begin
    -- The spans first, in a statement of their own: as otel.trace_spans(),
    -- each trace's time range in otel.trace_summaries confines the lookup
    -- to its partitions, where the trace_id index finds its spans (offset
    -- 0: trace by trace, rather than one join over every partition the
    -- traces together touch). On Citus this is a join of co-located
    -- tables, run on the workers; the recursive query below reads only
    -- these rows, which Citus requires of a recursive query over several
    -- traces.
    span_rows := array(
        select x.t
          from otel.trace_summaries as w
         cross join lateral (
             select t
               from otel.traces as t
              where t.trace_id = w.trace_id and t.start_time between w.start_time and w.end_time
             offset 0
         ) as x
         where w.trace_id = any (trace_operations.trace_ids));
    -- Traces whose summaries are cold (otel.cold_trace_summaries), each in
    -- the day otel.trace_time_range() names.
    for cold_trace in
        select x from unnest(trace_operations.trace_ids) as x
        except
        select w.trace_id from otel.trace_summaries as w where w.trace_id = any (trace_operations.trace_ids)
    loop
        select r.first_start, r.last_end into day_start, day_end from otel.trace_time_range(cold_trace) as r;
        span_rows := span_rows || array(
            select t from otel.traces as t where t.trace_id = cold_trace and t.start_time between day_start and day_end);
    end loop;
    return query
    with recursive spans as (
        select t.trace_id, t.span_id, t.parent_span_id, t.service_name,
               coalesce(otel.normalize_text(t.name), '') as operation, t.status_code, t.status_message,
               e.attributes ->> 'exception.type' as exception_type, e.attributes is not null as raised,
               t.start_time, t.duration_ms, t.attributes
          from unnest(span_rows) as t
         cross join lateral (select otel.exception_event_attributes(t.events) as attributes) as e
    ),
    labelled as (
        select s.*, coalesce(s.service_name, '') || '/' || s.operation as label
          from spans as s
    ),
    tree as (
        -- Roots: no parent, itself as parent, or a parent missing from the trace.
        select l.trace_id, l.span_id, l.label, array[]::text[] as path, array[l.span_id] as ids
          from labelled as l
         where l.parent_span_id is null or l.parent_span_id = l.span_id
            or not exists (select from labelled as p where p.trace_id = l.trace_id and p.span_id = l.parent_span_id)
        union all
        select c.trace_id, c.span_id, c.label, tree.path || tree.label, tree.ids || c.span_id
          from tree
          join labelled as c on c.trace_id = tree.trace_id and c.parent_span_id = tree.span_id
         where c.span_id <> all (tree.ids)  -- a cycle in bad data stops here
    ),
    placed as (
        select tree.trace_id, tree.span_id, tree.path from tree
        union all
        -- Spans only reachable through a cycle: taken as roots.
        select l.trace_id, l.span_id, array[]::text[]
          from labelled as l
         where not exists (select from tree where tree.trace_id = l.trace_id and tree.span_id = l.span_id)
    )
    select l.trace_id, l.span_id, l.parent_span_id, l.service_name, l.operation, l.label, p.path,
           cardinality(p.path),
           (row_number() over (partition by l.trace_id, p.path, l.label order by l.start_time, l.span_id))::integer,
           l.status_code, l.status_message, l.exception_type, l.raised, l.start_time, l.duration_ms, l.attributes
      from labelled as l
      join placed as p on p.trace_id = l.trace_id and p.span_id = l.span_id;
end
$$;
comment on function otel.trace_operations(text[]) is
    'The spans of the given traces with their operation: service and normalised name (otel.normalize_text), the path of operations from the root down to the parent, and the occurrence of that operation under that path in start order, and whether it recorded an `exception` event (raised); internal to otel.compare_traces() and otel.explain_trace()';

create or replace function otel.explain_trace(trace_id text, k integer default 5)
returns table (
    rank integer, holds_in integer, compared integer, kind text, service_name text, name text, path text[],
    span_id text, attribute text, value_here jsonb, value_elsewhere jsonb, duration_ratio double precision,
    exception_type text, status_message text, description text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
set jit = off
as $$
-- A trace or span fails as otel.root_cause() counts it: status ERROR, or an
-- exception event without status OK. The neighbours: traces of the same
-- root operation (root service and root span name, by the
-- trace_summaries_root_operation_idx index) without a failing span; for a
-- trace that did not fail, only those that took less time. Of the 100 before and the 100 after it in time (in
-- cold days, within a day of it: each cold day's summaries are read whole), the 4k whose
-- services and span count are nearest, then the k whose operations overlap
-- most (shared operations over all, by path and occurrence), the nearer in
-- time first on a tie. Each is aligned with the trace (otel.align_traces);
-- a difference counts in a comparison when:
--   failed        the span failed here and not there (or is not there)
--   only here     the span is here only (and its parent is not)
--   missing here  the operation is there only (and its parent is not)
--   slower/faster the span took at least twice (at most half) as long here
--   attribute     the attribute has the same value in the neighbours
--                 that differ from this trace (the most common such value:
--                 ids that differ everywhere never agree)
-- and is returned when it holds in more than half of the comparisons: most
-- comparisons first, then by kind in the order above (failures the trace's
-- root cause names first, otel.root_cause), then failures deepest first.
declare
    wanted text := otel.normalize_trace_id(explain_trace.trace_id);
    this otel.trace_summaries%rowtype;
    failed boolean;
begin
    if wanted !~ '^[0-9a-f]{32}$' then
        raise exception 'trace_id must be 32 hex digits, got %', otel.argument_text(explain_trace.trace_id)
            using errcode = 'invalid_parameter_value';
    end if;
    if k is null or k not between 1 and 100 then
        raise exception 'k must be between 1 and 100, got %', coalesce(k::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    select * into this from otel.trace_summaries_of(array[wanted]);
    if not found or this.root_service is null or this.root_name is null then
        return;
    end if;
    failed := this.error_count > 0 or exists (select from otel.root_cause(wanted));
    return query
        with summaries as not materialized (
            -- Cold days' summaries within a day of the trace: the neighbours
            -- are most often close in time, and each cold day is read whole.
            select s.* from otel.trace_summaries as s
            union all
            select c.*
              from otel.cold_trace_summaries as c
             where c.start_time between this.start_time - interval '1 day' and this.start_time + interval '1 day'
               and not exists (select from otel.trace_summaries as s where s.trace_id = c.trace_id)
        ),
        candidates as materialized (
            (select s.trace_id, s.start_time, s.span_count, s.services
               from summaries as s
              where s.root_service = this.root_service and s.root_name = this.root_name
                and s.start_time <= this.start_time and s.trace_id <> wanted
                and s.error_count = 0 and (failed or s.duration_ms < this.duration_ms)
                -- no failing span, its spans read where they start (on Citus, a
                -- join of co-located tables that the workers run)
                and not exists (
                    select from otel.traces as t
                     where t.trace_id = s.trace_id and t.start_time between s.start_time and s.end_time
                       and otel.span_failed(t.status_code, otel.exception_event_attributes(t.events) is not null))
              order by s.start_time desc
              limit 100)
            union all
            (select s.trace_id, s.start_time, s.span_count, s.services
               from summaries as s
              where s.root_service = this.root_service and s.root_name = this.root_name
                and s.start_time > this.start_time and s.trace_id <> wanted
                and s.error_count = 0 and (failed or s.duration_ms < this.duration_ms)
                and not exists (
                    select from otel.traces as t
                     where t.trace_id = s.trace_id and t.start_time between s.start_time and s.end_time
                       and otel.span_failed(t.status_code, otel.exception_event_attributes(t.events) is not null))
              order by s.start_time
              limit 100)
        ),
        shortlist as materialized (
            select c.trace_id, c.start_time
              from candidates as c
             order by (select count(*) from unnest(c.services) as x where x = any (this.services))::float8
                      / greatest((select count(*) from (select unnest(c.services) union select unnest(this.services)) as u), 1)
                      + least(c.span_count, this.span_count)::float8 / greatest(c.span_count, this.span_count, 1) desc,
                      abs(extract(epoch from c.start_time - this.start_time)), c.trace_id
             limit 4 * k
        ),
        ops as materialized (
            select o.trace_id, o.label, o.path, o.occurrence
              from otel.trace_operations(array_append(array(select s.trace_id from shortlist as s), wanted)) as o
        ),
        neighbours as materialized (
            select s.trace_id
              from shortlist as s
              join lateral (
                  select count(*) filter (where h.trace_id is not null) as shared, count(*) as size
                    from ops as o
                    left join ops as h
                      on h.trace_id = wanted and h.label = o.label and h.path = o.path and h.occurrence = o.occurrence
                   where o.trace_id = s.trace_id
              ) as overlap on true
             order by overlap.shared::float8
                      / greatest((select count(*) from ops as h where h.trace_id = wanted) + overlap.size - overlap.shared, 1)
                      desc,
                      abs(extract(epoch from s.start_time - this.start_time)), s.trace_id
             limit k
        ),
        comparisons as materialized (
            select c.*,
                   otel.span_failed(c.status_b, c.raised_b) as failing_b,
                   otel.span_failed(c.status_a, c.raised_a) as failing_a
              from otel.align_traces(wanted, array(select n.trace_id from neighbours as n)) as c
        ),
        total as (
            select count(distinct c.a_trace_id)::integer as n from comparisons as c
        ),
        findings as (
            -- One row per comparison a difference holds in.
            select 'failed' as kind, c.a_trace_id, c.span_id_b as span_id, c.service_name, c.name, c.path, c.depth,
                   c.start_time, null::text as attribute, null::jsonb as value_here, null::jsonb as value_elsewhere,
                   null::double precision as duration_ratio, c.exception_type_b as exception_type,
                   c.status_message_b as status_message
              from comparisons as c
             where c.failing_b and c.failing_a is not true
            union all
            select 'only here', c.a_trace_id, c.span_id_b, c.service_name, c.name, c.path, c.depth, c.start_time,
                   null, null, null, null, null, null
              from comparisons as c
             where c.span_id_a is null and c.topmost and c.failing_b is not true
            union all
            -- identified by operation and path: neighbours hold it as spans of their own
            select 'missing here', c.a_trace_id, null, c.service_name, c.name, c.path, c.depth, null,
                   null, null, null, null, null, null
              from comparisons as c
             where c.span_id_b is null and c.topmost
            union all
            select d.difference, c.a_trace_id, c.span_id_b, c.service_name, c.name, c.path, c.depth, c.start_time,
                   null, null, null, c.duration_ratio, null, null
              from comparisons as c
             cross join unnest(c.differences) as d (difference)
             where d.difference in ('slower', 'faster')
            union all
            select 'attribute', c.a_trace_id, c.span_id_b, c.service_name, c.name, c.path, c.depth, c.start_time,
                   x.key, nullif(x.value -> 1, 'null'), nullif(x.value -> 0, 'null'), null, null, null
              from comparisons as c
             cross join jsonb_each(c.differing_attributes) as x
        ),
        attribute_values as (
            -- An attribute differs consistently when the neighbours that
            -- differ agree on their value (an attribute absent here counts
            -- as absent, whatever the neighbours hold).
            select f.span_id, f.attribute,
                   case when f.value_here is null then 'true'::jsonb
                        else coalesce(f.value_elsewhere, 'null') end as value_key,
                   count(distinct f.a_trace_id) as holds_in
              from findings as f
             where f.kind = 'attribute'
             group by 1, 2, 3
        ),
        modal as (
            select distinct on (v.span_id, v.attribute) v.span_id, v.attribute, v.value_key
              from attribute_values as v
             order by v.span_id, v.attribute, v.holds_in desc, v.value_key
        ),
        grouped as (
            select f.kind, f.span_id, f.service_name, f.name, f.path, min(f.depth) as depth,
                   min(f.start_time) as start_time, f.attribute,
                   min(f.value_here::text)::jsonb as value_here,
                   -- the value most neighbours hold (one of them when absent here)
                   min(f.value_elsewhere::text)::jsonb as value_elsewhere,
                   percentile_cont(0.5) within group (order by f.duration_ratio) as duration_ratio,
                   min(f.exception_type) as exception_type, min(f.status_message) as status_message,
                   count(distinct f.a_trace_id)::integer as holds_in
              from findings as f
              left join modal as m on m.span_id = f.span_id and m.attribute = f.attribute
             where f.kind <> 'attribute'
                or m.value_key = case when f.value_here is null then 'true'::jsonb
                                      else coalesce(f.value_elsewhere, 'null') end
             group by f.kind, f.span_id, f.service_name, f.name, f.path, f.attribute
        ),
        causes as (
            select r.span_id, r.rank from otel.root_cause(wanted) as r where failed
        )
        select (row_number() over w)::integer, g.holds_in, t.n, g.kind, g.service_name, g.name, g.path, g.span_id,
               g.attribute, g.value_here, g.value_elsewhere, g.duration_ratio, g.exception_type, g.status_message,
               -- chr(215) is the multiplication sign
               case g.kind
                    when 'failed'
                        then format('span %s/%s failed', coalesce(g.service_name, ''), g.name)
                             || case when g.exception_type is not null then ' with ' || g.exception_type
                                     when nullif(g.status_message, '') is not null
                                         then format(' (%s)', left(g.status_message, 100))
                                     else '' end
                             || ' in this trace only'
                    when 'only here' then format('span %s/%s present only here', coalesce(g.service_name, ''), g.name)
                    when 'missing here' then format('span %s/%s missing here', coalesce(g.service_name, ''), g.name)
                    when 'slower'
                        then format('%s/%s took %s as long', coalesce(g.service_name, ''), g.name,
                                    coalesce(to_char(g.duration_ratio, 'FM999999990.0') || chr(215), 'longer'))
                    when 'faster'
                        then format('%s/%s took %s as long', coalesce(g.service_name, ''), g.name,
                                    to_char(g.duration_ratio, 'FM990.00') || chr(215))
                    else format('attribute %s of %s/%s differs: %s here, %s in the others', g.attribute,
                                coalesce(g.service_name, ''), g.name, coalesce(left(g.value_here::text, 100), 'absent'),
                                coalesce(left(g.value_elsewhere::text, 100), 'absent'))
               end
          from grouped as g
         cross join total as t
          left join causes as r on r.span_id = g.span_id and g.kind = 'failed'
         where g.holds_in * 2 > t.n
        window w as (order by g.holds_in desc,
                              array_position(array['failed', 'only here', 'missing here', 'slower', 'faster',
                                                   'attribute'], g.kind),
                              r.rank nulls last,
                              case when g.kind = 'failed' then -g.depth else g.depth end,
                              g.start_time, g.path, g.name, g.attribute)
         order by 1;
end
$$;
comment on function otel.explain_trace(text, integer) is
    'What sets a failing trace (or, when it did not fail, a slow one) apart: it is compared with the k (1..100) traces of the same root service and root span name without a failing span (and, for a trace that did not fail, took less time); a trace or span fails as `otel.root_cause` counts it: status ERROR, or an `exception` event without status OK, the nearest in time with the most similar shape (services, span count, then shared operations). Returns the differences that hold in more than half of the comparisons: rank, holds_in, compared, kind (`failed`, `only here`, `missing here`, `slower`, `faster`, `attribute`), service_name, name, path, span_id, attribute, value_here, value_elsewhere, duration_ratio, exception_type, status_message and a description (`span payment/charge failed with CardDeclined in this trace only`, `inventory/SELECT stock took 4.2 times as long`). Most comparisons first, then by kind, the span `otel.root_cause` names first. An attribute counts when the neighbours that differ agree on their value (ids that differ everywhere never do). Neighbours in cold days (otel.set_cold_storage()) are looked for within a day of the trace. No rows when there is nothing to compare with; its latency at 1M spans is in BENCHMARKS.md (`python -m bench explain_latency`); 22023 unless trace_id is 32 hex digits';

create or replace function otel.find_traces(
    service text default null, operation text default null, attributes jsonb default null,
    min_duration interval default null, max_duration interval default null, status text default null,
    since timestamptz default now() - interval '1 hour', until timestamptz default now(), lim integer default 20)
returns table (
    trace_id text, root_service text, root_name text, start_time timestamptz, duration_ms double precision,
    span_count bigint, error_count bigint, services text[])
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- As in Jaeger, a trace matches when one of its spans started in [since,
-- until) matches every criterion at once: service, operation (span name),
-- each attribute (its own or its resource's, equal to the value as given
-- or to the number or boolean it spells, so that "500" finds the number
-- 500), duration and status. The attribute `error`
-- set to true asks for failing spans, as the Jaeger UI's error=true does
-- (status ERROR, or a stored attribute error=true); set to false, for the
-- others. The spans are read newest first and the search stops at lim
-- traces, so a broad search costs little more than a narrow one; with no
-- span criterion at all, the trace summaries answer by themselves. Only
-- the partitions of the window are read.
declare
    wanted_status text := upper(find_traces.status);
    wanted_error boolean;
    conditions text := '';
    attribute record;
    resource_keys text[];
    value_text text;
    candidates jsonb[];
    search text;
    page_end timestamptz;
    page_size bigint;
    spans_read bigint;
    found_trace record;
    found_ids text[] := '{}';
begin
    perform otel.check_time_range(since, until, true);
    perform otel.check_limit(lim);
    if wanted_status is not null and wanted_status not in ('ERROR', 'OK', 'UNSET') then
        raise exception 'status must be ERROR, OK or UNSET, got %', otel.argument_text(find_traces.status)
            using errcode = 'invalid_parameter_value';
    end if;
    if min_duration < interval '0' then
        raise exception 'min_duration must not be negative, got %', min_duration
            using errcode = 'invalid_parameter_value';
    end if;
    if max_duration < interval '0' then
        raise exception 'max_duration must not be negative, got %', max_duration
            using errcode = 'invalid_parameter_value';
    end if;
    if min_duration > max_duration then
        raise exception 'min_duration (%) is above max_duration (%)', min_duration, max_duration
            using errcode = 'invalid_parameter_value';
    end if;
    if attributes is not null and jsonb_typeof(attributes) <> 'object' then
        raise exception 'attributes must be a JSON object of keys and values, got %', left(attributes::text, 100)
            using errcode = 'invalid_parameter_value';
    end if;
    select coalesce(array_agg(distinct k), '{}') into resource_keys
      from otel.operation_catalog as c
     cross join unnest(c.resource_keys) as k
     where find_traces.service is null or c.service_name = find_traces.service;
    for attribute in select a.key, a.value from jsonb_each(attributes) as a loop
        if jsonb_typeof(attribute.value) not in ('string', 'number', 'boolean') then
            raise exception 'attribute % must be a string, number or boolean, got %',
                            attribute.key, left(attribute.value::text, 100)
                using errcode = 'invalid_parameter_value';
        end if;
        if attribute.key = 'error' and lower(attribute.value #>> '{}') in ('true', 'false') then
            wanted_error := lower(attribute.value #>> '{}') = 'true';
            continue;
        end if;
        -- The value as text, and as the number or boolean it spells: tags
        -- come as text ("500"), attributes are stored typed (500).
        value_text := attribute.value #>> '{}';
        candidates := array[jsonb_build_object(attribute.key, value_text)];
        if value_text ~ '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$' then
            candidates := candidates || jsonb_build_object(attribute.key, value_text::numeric);
        end if;
        if lower(value_text) in ('true', 'false') then
            candidates := candidates || jsonb_build_object(attribute.key, lower(value_text)::boolean);
        end if;
        -- Containment, which the GIN index on span attributes answers, unless
        -- the key is one of the resources': those are read span by span.
        conditions := conditions || ' and (' || (
            select string_agg(format('t.attributes @> %L', c), ' or ')
                   || case when attribute.key = any (resource_keys)
                           then ' or ' || string_agg(format('t.resource_attributes @> %L', c), ' or ')
                           else '' end
              from unnest(candidates) as c) || ')';
    end loop;
    if wanted_error then
        conditions := conditions || ' and (t.status_code = ''ERROR'' or t.attributes ->> ''error'' = ''true'')';
    elsif not wanted_error then
        conditions := conditions
                      || ' and t.status_code <> ''ERROR'' and t.attributes ->> ''error'' is distinct from ''true''';
    end if;
    if service is null and operation is null and conditions = '' and wanted_status is null
       and min_duration is null and max_duration is null then
        return query
            select s.trace_id, s.root_service, s.root_name, s.start_time, s.duration_ms, s.span_count,
                   s.error_count, s.services
              from otel.all_trace_summaries as s
             where s.start_time >= since and s.start_time < until
             order by s.start_time desc, s.trace_id
             limit lim;
        return;
    end if;
    -- Pages of matching spans, newest first, each four times the last: a
    -- page has a limit, so the planner walks the (service_name, start_time)
    -- index in order and stops, where without one it would sort every
    -- match. A page goes on from the start of the last one's oldest span
    -- (inclusive: spans that started at the same microsecond are not lost;
    -- their traces are seen already).
    search := 'select t.trace_id, t.start_time from otel.traces as t'
        || ' where t.start_time >= $1 and t.start_time < $2 and t.start_time <= $8'
        || case when service is not null then ' and t.service_name = $3' else '' end
        || case when operation is not null then ' and t.name = $4' else '' end
        || case when wanted_status is not null then ' and t.status_code = $5' else '' end
        || case when min_duration is not null then ' and t.duration_ms >= $6' else '' end
        || case when max_duration is not null then ' and t.duration_ms <= $7' else '' end
        || conditions
        || ' order by t.start_time desc limit $9';
    page_end := until;
    page_size := 8 * lim;
    <<pages>>
    loop
        spans_read := 0;
        for found_trace in execute search
            using since, until, service, operation, wanted_status,
                  extract(epoch from min_duration) * 1000, extract(epoch from max_duration) * 1000,
                  page_end, page_size
        loop
            spans_read := spans_read + 1;
            page_end := found_trace.start_time;
            continue when found_trace.trace_id = any (found_ids);
            found_ids := found_ids || found_trace.trace_id;
            exit pages when cardinality(found_ids) >= lim;
        end loop;
        exit when spans_read < page_size;
        page_size := 4 * page_size;
    end loop;
    return query
        select s.trace_id, s.root_service, s.root_name, s.start_time, s.duration_ms, s.span_count, s.error_count,
               s.services
          from otel.trace_summaries_of(found_ids) as s
         order by s.start_time desc, s.trace_id;
end
$$;
comment on function otel.find_traces(text, text, jsonb, interval, interval, text, timestamptz, timestamptz, integer) is
    'Jaeger-style trace search: the newest `lim` (1..10000) traces with a span started in [since, until) that matches every criterion at once (service, span name, each attribute, duration, status `ERROR`/`OK`/`UNSET` in any case). An attribute matches the span''s own attributes or its resource''s, equal to the value as given or to the number or boolean it spells (`{"http.response.status_code": "503"}` finds 503); `{"error": true}` asks for failing spans, as Jaeger''s `error=true` tag. One row a trace: trace_id, root_service, root_name, start_time, duration_ms, span_count, error_count, services; newest first. With no criterion at all, the traces that started in the window, from the trace summaries (`otel.all_trace_summaries`, cold days'' too). Only the window''s partitions are read; spans newest first, in pages, until `lim` traces; span attributes through their GIN index. Resource attributes are matched for the keys the catalog has seen on the service''s resources, span by span: the flush records the keys of the first span of each distinct operation and status in a batch, so a key that only some of a service''s resources carry can be missed until such a span comes first (a resource table, planned with the compact layout, will record every resource); 22023 for bad arguments';

create or replace function otel.distribute(shard_count integer default 32)
returns setof text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- otel.traces and otel.trace_summaries (and the cold days' summaries,
-- otel.cold_trace_summaries) are distributed by trace_id in
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
    'On a Citus coordinator, after `alembic upgrade head`: distributes otel.traces, otel.trace_summaries and otel.cold_trace_summaries by trace_id in shard_count (default 32) co-located shards, otel.logs by shard_key co-located with the spans (a record in a trace beside its spans) and otel.metrics by series_key (one shard a series), redistributing a table an earlier release distributed otherwise, and makes otel.span_signatures and otel.operation_catalog reference tables; distributes the staging of OTLP/JSON requests, spans, logs and points by a row id it adds (writers COPY into them with a column list), so that the flush parses, decodes, types and moves their rows on the workers (otel.flush_otlp, otel.flush_spans, otel.flush_logs, otel.flush_metrics); lets otel_reader, otel_writer and otel_admin log in on the workers (Citus reaches the shards as the current role); returns what it changed (nothing when run again, unless a worker was added). The dead letters stay on the coordinator';

create or replace function otel.similar_traces(
    of_trace text, k integer default 10, min_similarity double precision default 0.85,
    service text default null, since timestamptz default null)
returns table (
    trace_id text, span_id text, service_name text, name text, status_code text, status_message text,
    duration_ms double precision, start_time timestamptz, attributes jsonb, similarity double precision)
language plpgsql stable
set search_path = pg_catalog, public, pg_temp
as $$
-- (The parameter is of_trace: trace_id names a result column.)
-- The query is where the trace's failure originates: the spans otel.root_cause()
-- ranks first (those of its best score, at most three), or its root span
-- (its first span when the root is missing) when nothing failed. An error
-- propagates through spans that say little (HTTP 500, 502): searching by
-- them would find traces that failed anyhow, not for the same reason. Each
-- query span's signature is searched on its own, and a trace keeps its
-- best-matching span over all of them: the mean of unrelated vectors would
-- resemble none. Model vectors win over fallback ones.
declare
    wanted text := lower(trim(of_trace));
    first_start timestamptz;
    last_end timestamptz;
    causes text[];
    telling bigint[];
    model text;
    queries vector[];
begin
    if wanted is null or wanted !~ '^[0-9a-f]{32}$' then
        raise exception 'trace_id must be a trace id (32 hex digits), got %', otel.argument_text(of_trace)
            using errcode = 'invalid_parameter_value',
                  hint = 'to search by an embedding, cast it: otel.similar_traces(''[…]''::vector)';
    end if;
    perform otel.check_similarity_arguments(k, min_similarity);
    -- The trace's time range confines the root span's lookup to its
    -- partitions (otel.root_cause() reads it the same way).
    select r.first_start, r.last_end into first_start, last_end from otel.trace_time_range(wanted) as r;
    -- The causes, then their signatures, in two statements: joined with the
    -- spans, otel.root_cause() would run where they are kept, which on
    -- Citus is a worker that cannot query the shards itself.
    select array_agg(c.span_id) into causes
      from (select r.span_id
              from (select r.span_id, r.rank, r.score, max(r.score) over () as best
                      from otel.root_cause(wanted) as r) as r
             where r.score = r.best
             order by r.rank
             limit 3) as c;
    select array_agg(distinct t.signature_id) into telling
      from otel.traces as t
     where t.trace_id = wanted and t.span_id = any (causes) and t.start_time between first_start and last_end;
    if telling is null then
        select array[t.signature_id] into telling
          from otel.traces as t
         where t.trace_id = wanted and t.start_time between first_start and last_end
         order by t.parent_span_id is not null, t.start_time
         limit 1;
    end if;
    select g.embedding_model into model
      from otel.span_signatures as g
     where g.id = any (telling) and g.embedding is not null
     order by g.embedding_model = 'fallback-hash', g.embedding_model
     limit 1;
    if model is null then
        return;  -- the signatures are not embedded yet
    end if;
    -- The query vectors first, in a statement of their own: searched from a
    -- join with the signatures, the search would run where those are kept,
    -- which on Citus is a worker that cannot query the spans' shards.
    select array_agg(g.embedding order by g.id) into queries
      from otel.span_signatures as g
     where g.id = any (telling) and g.embedding_model = model;
    return query
        select best.*
          from (select distinct on (hit.trace_id) hit.*
                  from unnest(queries) as q (embedding)
                 cross join lateral otel.similar_traces_search(
                           q.embedding, k, min_similarity, service, since, model, wanted) as hit
                 order by hit.trace_id, hit.similarity desc, hit.start_time desc, hit.span_id) as best
         order by best.similarity desc, best.start_time desc, best.trace_id
         limit k;
end
$$;
comment on function otel.similar_traces(text, integer, double precision, text, timestamptz) is
    'As the vector overload, for the trace `of_trace` (the parameter cannot be called `trace_id`, a result column). The query is where the trace failed: the spans `otel.root_cause()` ranks first (those of its best score, at most three), each searched on its own, a trace scored by its best-matching span and that span its row; when nothing failed, its root span. An error that travelled up through generic spans (HTTP 500, 502) thus finds traces that failed for the same reason, not any trace the gateway answered 502. The trace itself is never returned; an unknown trace, or one not embedded yet, gives no rows; text that is not 32 hex digits raises 22023 (a vector must be cast: `''[…]''::vector`)';

comment on function otel.daily_partitions(text) is
    'The daily partitions of otel.traces, otel.logs, otel.metrics or otel.cold_trace_summaries: name, UTC day, and whether it is columnar (cold storage, maybe in slices by trace id); internal';

comment on table otel.trace_summaries is
    'One row per trace, kept current by the flush: trace_id (primary key), start_time, end_time, duration_ms, root_service, root_name, span_count, error_count, services. Indexes: (start_time desc); (root_service, root_name, start_time). The summaries of cold days move to otel.cold_trace_summaries';

grant select on otel.cold_trace_summaries, otel.all_trace_summaries, otel.cold_trace_days to otel_reader;
grant execute on function otel.trace_time_range(text), otel.trace_summaries_of(text[]),
    otel.bloom_position(bigint, text, integer), otel.bloom_may_hold(bytea, text) to otel_reader, otel_admin;
grant execute on function otel.cold_summaries_due(), otel.move_summaries_to_cold(date), otel.bloom_bits(text[])
    to otel_admin;
grant select, insert, update, delete, truncate on otel.cold_trace_summaries, otel.all_trace_summaries,
    otel.cold_trace_days to otel_admin;
"""

# The cold summaries back where the earlier routines read them, before those return.
MOVE_BACK = r"""
insert into otel.trace_summaries
select c.* from otel.cold_trace_summaries as c
 where not exists (select from otel.trace_summaries as s where s.trace_id = c.trace_id);
drop view otel.all_trace_summaries;
drop table otel.cold_trace_summaries, otel.cold_trace_days;
comment on table otel.trace_summaries is
    'One row per trace, kept current by the flush: trace_id (primary key), start_time, end_time, duration_ms, root_service, root_name, span_count, error_count, services. Indexes: (start_time desc)';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(MOVE_BACK)
    execute_sql(released_routine("0061", "otel.convert_to_columnar"))
    execute_sql(released_routine("0038", "otel.maintain"))
    execute_sql(released_routine("0042", "otel.drop_expired_partitions"))
    execute_sql(released_routine("0057", "otel.summarize_traces"))
    execute_sql(released_routine("0037", "otel.root_cause"))
    execute_sql(released_routine("0034", "otel.trace_spans"))
    execute_sql(released_routine("0023", "otel.trace_export"))
    execute_sql(released_routine("0043", "otel.trace_operations"))
    execute_sql(released_routine("0043", "otel.explain_trace"))
    execute_sql(released_routine("0022", "otel.find_traces"))
    execute_sql(released_routine("0061", "otel.distribute"))
    execute_sql(released_routine("0041", "otel.similar_traces(text, integer, double precision, text, timestamptz)"))
    for routine in ("otel.trace_export", "otel.find_traces"):
        execute_sql(released_comment("0027", routine))
    execute_sql(released_comment("0061", "otel.daily_partitions"))
    for function in (
        "otel.trace_time_range(text)",
        "otel.trace_summaries_of(text[])",
        "otel.cold_summaries_due()",
        "otel.move_summaries_to_cold(date)",
        "otel.bloom_may_hold(bytea, text)",
        "otel.bloom_bits(text[])",
        "otel.bloom_position(bigint, text, integer)",
    ):
        execute_sql(f"drop function {function}")
