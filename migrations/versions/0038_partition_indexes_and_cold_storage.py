"""Each daily partition has its own indexes, and partitions past an age can become columnar (cold storage).

An index of a partitioned table must exist on every partition, and a
columnar table takes no GIN or BRIN index; a cold partition also needs none
of them to stay a tenth of the size. So the indexes of otel.traces,
otel.logs and otel.metrics move to their partitions, with the same
definitions, named <partition>_<suffix>: otel.index_partition() makes them
on each partition otel.ensure_partitions() creates, and the planner uses
them as before. The upgrade keeps the indexes already built: it detaches
each partition (its indexes then stand alone), renames them, drops the
tables' indexes (those of sql/; an index a DBA added stays) and attaches
the partitions again. Attaching reads each partition once to check its
bounds, and the whole upgrade holds an exclusive lock on the three tables
and one on every partition and index: about a second per million rows on
two cores, and max_locks_per_transaction must cover the partitions.

`otel.set_cold_storage(kind, older_than)` sets the age; `otel.maintain()`
then rewrites each daily partition past it in the columnar format of
citus_columnar (otel.convert_to_columnar()), one transaction each, beside
readers and flushes: 47 bytes a narrow span against 452 with its indexes
(`python -m bench storage`). Without citus_columnar it leaves them as they
are, with a notice. otel.maintain() commits between conversions, so with
partitions to convert it must be called outside a transaction block
(pg_cron does); a conversion that fails is a warning, and the work of the
old procedure moved to otel.maintain_partitions(). otel.resign_spans()
leaves columnar partitions as they are (they take no updates), with a
notice. otel.set_retention() checks its interval with otel.whole_days(),
which otel.set_cold_storage() shares: the same messages.

Reads that would otherwise read every cold partition whole:
otel.similar_traces() reads a signature's spans after the newest cold
partition first, and before it only when that gave fewer than k traces;
otel.metric_names() skips through the names of the window's partitions
only. And the two deletes that looked spans up in a subquery
(otel.drop_repeated_spans() in the flush, the removal of unused signatures
in otel.resign_partition()) look them up in a query of their own: a
delete's subquery needs each row's position (ctid), which a columnar table
cannot give. Measured on 300,000 narrow spans, three rounds: a flush as
fast as before (6.9 s against 7.3), a batch of spans all stored before
dropped in 2.9 s against 2.6.

The downgrade rewrites columnar partitions in row format and puts the
indexes back on the tables, which adopt the partitions' own.

Revision ID: 0038
Revises: 0037
"""

from migrations.schema import execute_sql, released_comment, released_routine

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None

UPGRADE = r"""
create table otel.cold_storage (
    kind text primary key check (kind in ('traces', 'logs', 'metrics')),
    older_than interval not null check (older_than > interval '0')
);
comment on table otel.cold_storage is
    'After how long the daily partitions of each kind of telemetry become columnar (otel.set_cold_storage()); otel.maintain() converts them';

comment on table otel.traces is
    'One row per span: trace_id, span_id, parent_span_id (null for a root), trace_state, flags, name, kind, start_time, end_time, duration_ms, status_code, status_message, service_name, scope_name, scope_version, attributes, resource_attributes, events (`[{name, time, attributes}]`), links (`[{trace_id, span_id, trace_state, attributes}]`), signature_id. Indexes, on each partition in row format (otel.index_partition()): BRIN (start_time); (service_name, start_time desc); (trace_id); (start_time desc) where status_code = ''ERROR''; GIN `jsonb_path_ops` (attributes), for `@>`; (signature_id, start_time desc). A cold partition (otel.set_cold_storage()) is columnar, without indexes';

comment on table otel.logs is
    'One row per log record, partitioned by day of time: time, observed_time, severity_number, severity_text, body (text; a non-string body as JSON text), trace_id, span_id, flags, service_name, scope_name, scope_version, attributes, resource_attributes, event_name, body_tsv. Indexes, on each partition in row format (otel.index_partition()): BRIN (time); (service_name, time desc); (trace_id, time) where trace_id is not null; GIN full text on the stored column `body_tsv` = `to_tsvector(''english'', left(coalesce(body, ''''), 65536))` (the first 64 Ki characters: a tsvector holds at most 1 MB); query it as `body_tsv @@ websearch_to_tsquery(''english'', …)`. A cold partition (otel.set_cold_storage()) is columnar, without indexes';

comment on table otel.metrics is
    'One row per data point: time, start_time, name, description, type, unit, value (float8), int_value (exact, for integer values), count, sum, min, max, bucket_counts, explicit_bounds, quantiles, exponential (scale, zero count, buckets), exemplars, temporality (sums and histograms), is_monotonic (sums), flags, labels (the point''s attributes), resource_attributes, service_name, scope_name, scope_version. Indexes, on each partition in row format (otel.index_partition()): BRIN (time); (name, time desc); GIN `jsonb_path_ops` (labels). A cold partition (otel.set_cold_storage()) is columnar, without indexes';

create or replace function otel.index_partition(parent text, partition_name text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- The indexes of a daily partition of otel.traces, otel.logs or
-- otel.metrics, each named <partition>_<suffix>. They belong to the
-- partition, not to the partitioned table: an index of the partitioned
-- table must exist on every partition, and a cold partition
-- (otel.set_cold_storage()) is columnar, which takes no GIN or BRIN index
-- and needs none of these to stay a tenth of the size.
declare
    suffix text;
    definition text;
begin
    for suffix, definition in
        select i.suffix, i.definition
          from (values
                ('traces', 'start_time_idx', 'using brin (start_time)'),
                ('traces', 'service_time_idx', '(service_name, start_time desc)'),
                -- A trace's spans by its id: readers and the flush's check
                -- for spans stored before. On trace_id alone B-tree
                -- deduplication keeps each id once per leaf page with its
                -- spans' row pointers: 27 bytes a span where (trace_id,
                -- span_id) took 101 (`python -m bench storage`).
                ('traces', 'trace_idx', '(trace_id)'),
                ('traces', 'errors_idx', '(start_time desc) where status_code = ''ERROR'''),
                ('traces', 'attributes_idx', 'using gin (attributes jsonb_path_ops)'),
                -- A signature's newest spans first, for otel.similar_traces().
                ('traces', 'signature_time_idx', '(signature_id, start_time desc)'),
                ('logs', 'time_idx', 'using brin (time)'),
                ('logs', 'service_time_idx', '(service_name, time desc)'),
                ('logs', 'trace_idx', '(trace_id, time) where trace_id is not null'),
                ('logs', 'body_fts_idx', 'using gin (body_tsv)'),
                ('metrics', 'time_idx', 'using brin (time)'),
                ('metrics', 'name_time_idx', '(name, time desc)'),
                ('metrics', 'labels_idx', 'using gin (labels jsonb_path_ops)')) as i (parent, suffix, definition)
         where i.parent = index_partition.parent
    loop
        execute format('create index if not exists %I on otel.%I %s', partition_name || '_' || suffix, partition_name,
                       definition);
    end loop;
    if not found then
        raise exception 'unknown partitioned table "%": allowed are traces, logs, metrics', parent
            using errcode = 'invalid_parameter_value';
    end if;
end
$$;
comment on function otel.index_partition(text, text) is
    'Creates the indexes of a daily partition of otel.traces, otel.logs or otel.metrics (named <partition>_<suffix>) that it lacks; otel.ensure_partitions() runs it on each partition it creates';

create or replace function otel.ensure_partitions(parent text, days date[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Creates the missing daily partitions (UTC days) of otel.<parent>, named
-- otel.<parent>_pYYYYMMDD, with their indexes. Returns how many it created.
declare
    day date;
    created integer := 0;
begin
    if parent not in ('traces', 'logs', 'metrics') then
        raise exception 'unknown partitioned table "%": allowed are traces, logs, metrics', parent
            using errcode = 'invalid_parameter_value';
    end if;
    foreach day in array coalesce(days, '{}') loop
        continue when to_regclass(format('otel.%I', parent || '_p' || to_char(day, 'YYYYMMDD'))) is not null;
        execute format('create table otel.%I partition of otel.%I for values from (%L) to (%L)',
                       parent || '_p' || to_char(day, 'YYYYMMDD'), parent,
                       day::timestamp at time zone 'UTC', (day + 1)::timestamp at time zone 'UTC');
        perform otel.index_partition(parent, parent || '_p' || to_char(day, 'YYYYMMDD'));
        created := created + 1;
    end loop;
    return created;
end
$$;
comment on function otel.ensure_partitions(text, date[]) is
    'Creates the missing daily partitions (UTC) of otel.traces, otel.logs or otel.metrics for the given days, with their indexes (otel.index_partition())';

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
    with stored as materialized (
        select b.n
          from pg_temp.otel_traces as b
         where b.err is null
           and exists (select 1 from otel.traces as t
                        where t.trace_id = b.trace_id and t.span_id = b.span_id
                          and t.start_time between first_start and last_start)
    )
    delete from pg_temp.otel_traces as b using stored where b.n = stored.n;
    get diagnostics stored_before = row_count;
    return repeated_in_batch + stored_before;
end
$$;
comment on function otel.drop_repeated_spans() is
    'Drops the spans of a flush repeated within it or stored before, returns how many; internal to otel.flush()';

create or replace function otel.maintain_partitions(days_ahead integer)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Creates partitions from yesterday to days_ahead days ahead, so that a
-- flush in steady state never has to create one. Neither that nor dropping
-- expired partitions waits behind readers (otel.run_with_short_locks()):
-- what a table's readers keep it from doing now, the next run does.
declare
    kind text;
    day date;
begin
    if days_ahead is null or days_ahead not between 0 and 366 then
        raise exception 'days_ahead must be between 0 and 366, got %', days_ahead
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.take_flush_lock();  -- flushes create partitions too
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        foreach day in array array(select d::date from generate_series((now() at time zone 'UTC')::date - 1,
                                                                       (now() at time zone 'UTC')::date + days_ahead,
                                                                       interval '1 day') as d) loop
            if not otel.run_with_short_locks(format('select otel.ensure_partitions(%L, array[%L::date])', kind, day)) then
                raise notice 'otel_db: otel.% is in use; its partitions from % on are made by the next maintenance',
                             kind, day;
                exit;
            end if;
        end loop;
    end loop;
    perform otel.drop_expired_partitions();
end
$$;
comment on function otel.maintain_partitions(integer) is
    'Creates daily partitions from yesterday to days_ahead days ahead and drops those past their retention; the first step of otel.maintain()';

create or replace procedure otel.maintain(days_ahead integer default 3)
language plpgsql
as $$
-- Partitions ahead and retention first (otel.maintain_partitions()), then
-- the partitions due for cold storage, each converted in a transaction of
-- its own (otel.convert_to_columnar()), so that no lock outlives one
-- partition's conversion. With partitions to convert it commits, so it
-- must then be called outside a transaction block, as pg_cron does. A
-- conversion that fails is a warning: the others go on. No `set` clause
-- and not security definer, which would forbid the commits; the functions
-- that do the work pin their settings.
declare
    due record;
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
end
$$;
comment on procedure otel.maintain(integer) is
    'Creates daily partitions from yesterday to days_ahead days ahead, drops those past their retention, then converts those due for cold storage (otel.set_cold_storage()) to columnar, one transaction each; run by the pg_cron job otel-maintenance, outside a transaction block';

create or replace function otel.whole_days(value interval, argument text, consequence text)
returns integer
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
-- value must be whole days, months or years, none of them negative, at
-- least one day in all (a month counts 30 days and a year 360,
-- justify_interval()'s rule). PostgreSQL compares intervals by such a
-- total, so '-2 mons +61 days' would pass a plain "> 1 day" check and mean
-- a different age every month. Stored as plain days, which now() - value
-- subtracts exactly.
declare
    days numeric := (extract(year from value) * 12 + extract(month from value)) * 30 + extract(day from value);
begin
    if value <> date_trunc('day', value) or extract(year from value) < 0 or extract(month from value) < 0
       or extract(day from value) < 0 or days < 1 then
        raise exception '% must be whole days, months or years, none negative, at least 1 day in all (%), got %',
                        argument, consequence, value
            using errcode = 'invalid_parameter_value';
    end if;
    return days;
end
$$;
comment on function otel.whole_days(interval, text, text) is
    'An age given as whole days, months or years (a month 30 days, a year 360) in days, or an error naming the argument and the consequence; internal to otel.set_retention() and otel.set_cold_storage()';

create or replace function otel.set_retention(kind text, keep interval)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- keep null removes the limit (keep everything). Otherwise whole days,
-- months or years, stored as days (otel.whole_days()).
begin
    if kind is null or kind not in ('traces', 'logs', 'metrics') then
        raise exception 'kind must be traces, logs or metrics, got %', otel.argument_text(kind)
            using errcode = 'invalid_parameter_value';
    end if;
    if keep is null then
        delete from otel.retention as r where r.kind = set_retention.kind;
        return;
    end if;
    insert into otel.retention as r (kind, keep)
    values (set_retention.kind, make_interval(days => otel.whole_days(keep, 'keep', 'whole daily partitions are dropped')))
    on conflict on constraint retention_pkey do update set keep = excluded.keep;
end
$$;
comment on function otel.set_retention(text, interval) is
    'Keep `traces`, `logs` or `metrics` for `keep` (whole days, months or years, at least 1 day, stored as days; null: forever); `call otel.maintain()`, the pg_cron job `otel-maintenance`, drops whole daily partitions older than that';

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
-- older_than, oldest first; none, with a notice, without citus_columnar.
begin
    if not exists (select from otel.cold_storage) then
        return;
    end if;
    if not exists (select from pg_am where amname = 'columnar') then
        raise notice 'otel_db: cold storage is set, but citus_columnar is not installed in this database: partitions stay in row format'
            using hint = 'Build it with `make citus`, then run `create extension citus_columnar` or otel.set_cold_storage() again.';
        return;
    end if;
    return query
        select s.kind, c.relname::text
          from otel.cold_storage as s
          join pg_inherits as i on i.inhparent = format('otel.%I', s.kind)::regclass
          join pg_class as c on c.oid = i.inhrelid
         where c.relname ~ '_p[0-9]{8}$'
           and c.relam = (select a.oid from pg_am as a where a.amname = 'heap')
           and (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp at time zone 'UTC' <= now() - s.older_than
         order by right(c.relname, 8), s.kind;
end
$$;
comment on function otel.cold_partitions_due() is
    'The row-format partitions past their kind''s cold storage age (kind, partition_name), oldest first; internal to otel.maintain()';

create or replace function otel.convert_to_columnar(kind text, partition_name text)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Rewrites a daily partition as a columnar table, rows ordered by what
-- readers look them up by (spans by trace, logs by service and time,
-- points by metric and time), so that the minimum and maximum kept for
-- every 5,000 rows skip the rest. The rows are copied while readers and
-- flushes go on using the partition (only re-signing it waits). Then, for
-- a moment, the partitioned table and the partition are locked (the table
-- first, as a flush locks them), the count shows whether a flush wrote into
-- the day meanwhile, and the copy takes the partition's place. Written
-- meanwhile: the locks go and the copy is made again, three times at most.
-- Locks not granted within moments are given up, so that readers never
-- queue behind them: the copy is dropped and the next maintenance tries
-- again. Returns whether the partition is columnar now.
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
    -- Like the partition, not its table: that would lock otel.<kind>
    -- throughout the copy, and a flush making a partition would wait.
    execute format('create table otel.%I (like otel.%I including defaults including constraints including generated'
                   ' including compression) using columnar', copy_name, partition_name);
    -- 5,000 rows a chunk group: the fastest lookups by trace id of 1,000,
    -- 5,000 and 10,000, for the same bytes.
    execute format('alter table otel.%I set (columnar.chunk_group_row_limit = 5000, columnar.compression = zstd)',
                   copy_name);
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
        execute format('analyze otel.%I', partition_name);
        return true;
    end loop;
    execute format('drop table otel.%I', copy_name);
    raise notice 'otel_db: otel.% is in use; it becomes columnar at a later maintenance', partition_name;
    return false;
end
$$;
comment on function otel.convert_to_columnar(text, text) is
    'Rewrites a daily partition of otel.traces, otel.logs or otel.metrics in the columnar format, without indexes, beside its readers and flushes; false, with a notice, when locks were not granted within moments; internal to otel.maintain()';

create or replace function otel.resign_partition(day date)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Step 2: the spans found by step 1 (run here first when it has not run in
-- this session) move to their new signatures; only those are rewritten.
-- The span counts follow what the update moved, and an old signature that
-- no span uses any more is deleted. Returns the number of spans moved.
declare
    partition_name text := 'traces_p' || to_char(day, 'YYYYMMDD');
    moved bigint;
begin
    if day is null then
        raise exception 'day must be a date, got null' using errcode = 'invalid_parameter_value';
    end if;
    if to_regclass('pg_temp.otel_resign_moves') is null then
        perform otel.resign_signatures(day);
    end if;
    if to_regclass(format('otel.%I', partition_name)) is null then
        drop table pg_temp.otel_resign_moves;
        return 0;
    end if;
    execute format('lock table otel.%I in share update exclusive mode', partition_name);
    create temp table otel_resign_counts (old_id bigint, new_id bigint, spans bigint) on commit drop;
    execute format($sql$
        with moved as (
            update otel.%1$I as t
               set signature_id = s.id
              from pg_temp.otel_resign_moves as m
              join otel.span_signatures as s on s.text_hash = md5(m.text)::uuid
             where t.signature_id = m.old_id
               and otel.signature_input(t.service_name, t.kind, t.name, t.status_code, t.status_message,
                                        t.attributes, t.events) = m.signature_input
            returning m.old_id, s.id as new_id
        )
        insert into pg_temp.otel_resign_counts
        select old_id, new_id, count(*) from moved group by 1, 2$sql$, partition_name);
    drop table pg_temp.otel_resign_moves;
    select coalesce(sum(c.spans), 0) into moved from pg_temp.otel_resign_counts as c;
    -- Counts last, just before the commit, rows locked in id order: a flush
    -- upserting the same signatures waits for a moment, not for the update.
    perform from otel.span_signatures as s
     where s.id in (select c.old_id from pg_temp.otel_resign_counts as c
                    union select c.new_id from pg_temp.otel_resign_counts as c)
     order by s.id
       for update;
    update otel.span_signatures as s
       set span_count = s.span_count + d.change
      from (select c.new_id as id, c.spans as change from pg_temp.otel_resign_counts as c
            union all
            select c.old_id, -c.spans from pg_temp.otel_resign_counts as c) as d
     where s.id = d.id;
    -- A statement of its own, so that its snapshot sees the spans of
    -- flushes that committed while the rows above were being locked. The
    -- spans are looked up apart from the delete, which would need the row
    -- position (ctid) of each, and a cold (columnar) partition has none.
    with unused as materialized (
        select c.old_id as id
          from pg_temp.otel_resign_counts as c
         where not exists (select from otel.traces as t where t.signature_id = c.old_id)
    )
    delete from otel.span_signatures as s using unused where s.id = unused.id;
    return moved;
end
$$;
comment on function otel.resign_partition(date) is
    'Step 2 of re-signing a daily partition of otel.traces: moves its spans to the signatures otel.span_signature() gives them now (running step 1 first if needed); returns the number of spans moved; internal to otel.resign_spans()';

create or replace procedure otel.resign_spans(since timestamptz default null)
language plpgsql
as $$
-- Partition by partition, oldest first, each step its own transaction: it
-- can be stopped and run again, and it never holds more than one day's
-- rows. Call it outside a transaction block (it commits). It has no `set
-- search_path` clause, which would forbid the commits; it is not security
-- definer either, so it runs with the caller's rights and settings, and
-- the work is done by the two functions, which pin theirs.
declare
    day date;
    columnar boolean;
    moved bigint;
begin
    for day, columnar in
        select to_date(right(c.relname, 8), 'YYYYMMDD'),
               c.relam <> (select a.oid from pg_catalog.pg_am as a where a.amname = 'heap')
          from pg_catalog.pg_inherits as i
          join pg_catalog.pg_class as c on c.oid = i.inhrelid
         where i.inhparent = 'otel.traces'::regclass
           and c.relname ~ '_p[0-9]{8}$'
           and (since is null or to_date(right(c.relname, 8), 'YYYYMMDD') >= (since at time zone 'UTC')::date)
         order by 1
    loop
        if columnar then  -- a cold partition takes no updates
            raise notice 'otel_db: the spans of % are in cold storage (columnar) and keep their signatures', day;
            continue;
        end if;
        perform otel.resign_signatures(day);
        commit;
        moved := otel.resign_partition(day);
        raise notice 'otel_db: % spans of % re-signed', moved, day;
        commit;
    end loop;
end
$$;
comment on procedure otel.resign_spans(timestamptz) is
    'Re-signs the stored spans (of the UTC days from since on, all when null) after an upgrade changed otel.span_signature(); run it outside a transaction block: one daily partition at a time, in two transactions; spans move to the signature a flush would give them now, new signatures are embedded by the embedding worker, old ones left without spans are deleted; partitions in cold storage (columnar) keep theirs';

create or replace function otel.similar_traces_search(
    query vector, k integer, min_similarity double precision, service text, since timestamptz,
    model text, excluded_trace text)
returns table (
    trace_id text, span_id text, service_name text, name text, status_code text, status_message text,
    duration_ms double precision, start_time timestamptz, attributes jsonb, similarity double precision)
language plpgsql stable
set search_path = pg_catalog, public, pg_temp
-- strict_order: the scan goes on past ef_search in exact distance order,
-- so the loop below may stop at the first signature under min_similarity
-- and filters on spans (service, since) cost no recall.
set hnsw.iterative_scan = strict_order
set hnsw.ef_search = 40
as $$
-- Signatures nearest first; for each, its newest spans, one per trace not
-- seen yet, until k traces. A trace's row is its span with the most
-- similar signature. A signature's spans are read in two time ranges:
-- after the newest cold (columnar) partition, where each partition's index
-- finds the newest at once, then before it, where cold partitions, which
-- have no index, are read whole; the second only when the first did not
-- give k traces. Without cold partitions the second range is empty.
declare
    signature record;
    span record;
    seen text[] := '{}';
    cold_until timestamptz := coalesce(
        (select max(to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp at time zone 'UTC'
           from pg_inherits as i
           join pg_class as c on c.oid = i.inhrelid
           join pg_am as a on a.oid = c.relam
          where i.inhparent = 'otel.traces'::regclass and a.amname = 'columnar'),
        '-infinity');
    range_start timestamptz;
    range_end timestamptz;
begin
    <<signatures>>
    for signature in
        select s.id, 1 - (s.embedding <=> query) as similarity
          from otel.span_signatures as s
         where s.embedding_model = model
         order by s.embedding <=> query
         limit 20000  -- what hnsw.max_scan_tuples lets an iterative scan visit by default
    loop
        exit when signature.similarity < min_similarity;
        for range_start, range_end in values (cold_until, 'infinity'::timestamptz), ('-infinity', cold_until) loop
            continue when range_start >= range_end;  -- no cold partitions: nothing before them
            for span in
                select t.trace_id, t.span_id, t.service_name, t.name, t.status_code, t.status_message,
                       t.duration_ms, t.start_time, t.attributes
                  from otel.traces as t
                 where t.signature_id = signature.id
                   and t.start_time >= range_start and t.start_time < range_end
                   and (service is null or t.service_name = service)
                   and (since is null or t.start_time >= since)
                   and t.trace_id is distinct from excluded_trace
                 order by t.start_time desc
            loop
                continue when span.trace_id = any (seen);
                seen := seen || span.trace_id;
                trace_id := span.trace_id;
                span_id := span.span_id;
                service_name := span.service_name;
                name := span.name;
                status_code := span.status_code;
                status_message := span.status_message;
                duration_ms := span.duration_ms;
                start_time := span.start_time;
                attributes := span.attributes;
                similarity := signature.similarity;
                return next;
                exit signatures when cardinality(seen) >= k;
            end loop;
        end loop;
    end loop;
end
$$;
comment on function otel.similar_traces_search(vector, integer, double precision, text, timestamptz, text, text) is
    'The search behind both otel.similar_traces() overloads (arguments already checked)';

create or replace function otel.metric_names(
    since timestamptz default now() - interval '1 day',
    until timestamptz default now())
returns table (name text, type text, unit text, last_seen timestamptz)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- The distinct names come from skipping through the (name, time) index of
-- the window's partitions, one probe a name rather than a scan of every
-- point; each name's newest point in the window gives its type and unit.
-- The window bounds the skipping too: a cold partition has no index, and
-- those outside the window need no reading.
begin
    perform otel.check_time_range(since, until, true);
    return query
        with recursive names (name) as (
            (select m.name from otel.metrics as m
              where m.time >= metric_names.since and m.time < metric_names.until
              order by m.name limit 1)
            union all
            select (select m.name from otel.metrics as m
                     where m.name > names.name and m.time >= metric_names.since and m.time < metric_names.until
                     order by m.name limit 1)
              from names
             where names.name is not null
        )
        select n.name, newest.type, newest.unit, newest.time
          from names as n
         cross join lateral (
                select m.type, m.unit, m.time
                  from otel.metrics as m
                 where m.name = n.name and m.time >= metric_names.since and m.time < metric_names.until
                 order by m.time desc
                 limit 1) as newest
         where n.name is not null
         order by n.name;
end
$$;
comment on function otel.metric_names(timestamptz, timestamptz) is
    'The metrics with points in [since, until): name, and the type, unit and time of the newest point; by name. The names come from skipping through the (name, time) index, one probe a name';

grant select, insert, update, delete, truncate on otel.cold_storage to otel_admin;
grant execute on function otel.maintain_partitions(integer), otel.set_cold_storage(text, interval),
                          otel.cold_partitions_due(), otel.convert_to_columnar(text, text)
    to otel_admin;
"""

# The tables' indexes (sql/1xx at revision 0037): they move to the partitions.
# An index a DBA added to a table stays where it is.
TABLE_INDEXES = (
    "traces_start_time_idx",
    "traces_service_time_idx",
    "traces_trace_idx",
    "traces_errors_idx",
    "traces_attributes_idx",
    "traces_signature_time_idx",
    "logs_time_idx",
    "logs_service_time_idx",
    "logs_trace_idx",
    "logs_body_fts_idx",
    "metrics_time_idx",
    "metrics_name_time_idx",
    "metrics_labels_idx",
)

# Each partition's indexes, attached to its table's, stand alone once it is
# detached: renamed <partition>_<suffix> (the suffix of the table's index
# name), they are what otel.index_partition() would make. Attached again,
# a partition adopts its own index for any other index its table keeps.
INDEXES_TO_PARTITIONS = r"""
do $$
declare
    moving text[] := array[@TABLE_INDEXES@];
    kind text;
    part record;
    attached record;
    partitions text[];
    bounds text[];
begin
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        select coalesce(array_agg(c.relname::text order by c.relname), '{}'),
               coalesce(array_agg(pg_get_expr(c.relpartbound, c.oid) order by c.relname), '{}')
          into partitions, bounds
          from pg_inherits as i
          join pg_class as c on c.oid = i.inhrelid
         where i.inhparent = format('otel.%I', kind)::regclass;
        for part in select * from unnest(partitions) as p (name) loop
            -- In two steps: one index's new name may be another's old one.
            for attached in
                select x.indexrelid::regclass as child_index
                  from pg_index as x
                  join pg_inherits as i on i.inhrelid = x.indexrelid
                  join pg_class as child on child.oid = x.indexrelid
                  join pg_class as parent on parent.oid = i.inhparent
                 where x.indrelid = format('otel.%I', part.name)::regclass and parent.relname = any (moving)
                   and child.relname <> part.name || substr(parent.relname, length(kind) + 1)
            loop
                execute format('alter index %s rename to %I', attached.child_index,
                               'otel_renamed_' || attached.child_index::oid);
            end loop;
            for attached in
                select c.oid::regclass as child_index,
                       part.name || substr(parent.relname, length(kind) + 1) as new_name
                  from pg_class as c
                  join pg_inherits as i on i.inhrelid = c.oid
                  join pg_class as parent on parent.oid = i.inhparent
                 where c.relname = 'otel_renamed_' || c.oid and c.relnamespace = 'otel'::regnamespace
            loop
                execute format('alter index %s rename to %I', attached.child_index, attached.new_name);
            end loop;
            execute format('alter table otel.%I detach partition otel.%I', kind, part.name);
        end loop;
        for attached in select x.indexrelid::regclass as table_index
                          from pg_index as x join pg_class as c on c.oid = x.indexrelid
                         where x.indrelid = format('otel.%I', kind)::regclass and c.relname = any (moving) loop
            execute format('drop index %s', attached.table_index);
        end loop;
        for i in 1 .. cardinality(partitions) loop
            execute format('alter table otel.%I attach partition otel.%I %s', kind, partitions[i], bounds[i]);
        end loop;
    end loop;
end
$$;
""".replace("@TABLE_INDEXES@", ", ".join(f"'{name}'" for name in TABLE_INDEXES))

DOWNGRADE = r"""
comment on table otel.traces is
    'One row per span: trace_id, span_id, parent_span_id (null for a root), trace_state, flags, name, kind, start_time, end_time, duration_ms, status_code, status_message, service_name, scope_name, scope_version, attributes, resource_attributes, events (`[{name, time, attributes}]`), links (`[{trace_id, span_id, trace_state, attributes}]`), signature_id. Indexes: BRIN (start_time); (service_name, start_time desc); (trace_id); (start_time desc) where status_code = ''ERROR''; GIN `jsonb_path_ops` (attributes), for `@>`; (signature_id)';

comment on table otel.logs is
    'One row per log record, partitioned by day of time: time, observed_time, severity_number, severity_text, body (text; a non-string body as JSON text), trace_id, span_id, flags, service_name, scope_name, scope_version, attributes, resource_attributes, event_name, body_tsv. Indexes: BRIN (time); (service_name, time desc); (trace_id, time) where trace_id is not null; GIN full text on the stored column `body_tsv` = `to_tsvector(''english'', left(coalesce(body, ''''), 65536))` (the first 64 Ki characters: a tsvector holds at most 1 MB); query it as `body_tsv @@ websearch_to_tsquery(''english'', …)`';

comment on table otel.metrics is
    'One row per data point: time, start_time, name, description, type, unit, value (float8), int_value (exact, for integer values), count, sum, min, max, bucket_counts, explicit_bounds, quantiles, exponential (scale, zero count, buckets), exemplars, temporality (sums and histograms), is_monotonic (sums), flags, labels (the point''s attributes), resource_attributes, service_name, scope_name, scope_version. Indexes: BRIN (time); (name, time desc); GIN `jsonb_path_ops` (labels)';

create or replace function otel.ensure_partitions(parent text, days date[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Creates the missing daily partitions (UTC days) of otel.<parent>, named
-- otel.<parent>_pYYYYMMDD. Returns how many it created.
declare
    day date;
    created integer := 0;
begin
    if parent not in ('traces', 'logs', 'metrics') then
        raise exception 'unknown partitioned table "%": allowed are traces, logs, metrics', parent
            using errcode = 'invalid_parameter_value';
    end if;
    foreach day in array coalesce(days, '{}') loop
        continue when to_regclass(format('otel.%I', parent || '_p' || to_char(day, 'YYYYMMDD'))) is not null;
        execute format('create table otel.%I partition of otel.%I for values from (%L) to (%L)',
                       parent || '_p' || to_char(day, 'YYYYMMDD'), parent,
                       day::timestamp at time zone 'UTC', (day + 1)::timestamp at time zone 'UTC');
        created := created + 1;
    end loop;
    return created;
end
$$;
comment on function otel.ensure_partitions(text, date[]) is
    'Creates the missing daily partitions (UTC) of otel.traces, otel.logs or otel.metrics for the given days';

create or replace function otel.similar_traces_search(
    query vector, k integer, min_similarity double precision, service text, since timestamptz,
    model text, excluded_trace text)
returns table (
    trace_id text, span_id text, service_name text, name text, status_code text, status_message text,
    duration_ms double precision, start_time timestamptz, attributes jsonb, similarity double precision)
language plpgsql stable
set search_path = pg_catalog, public, pg_temp
-- strict_order: the scan goes on past ef_search in exact distance order,
-- so the loop below may stop at the first signature under min_similarity
-- and filters on spans (service, since) cost no recall.
set hnsw.iterative_scan = strict_order
set hnsw.ef_search = 40
as $$
-- Signatures nearest first; for each, its newest spans, one per trace not
-- seen yet, until k traces. A trace's row is its span with the most
-- similar signature.
declare
    signature record;
    span record;
    seen text[] := '{}';
begin
    <<signatures>>
    for signature in
        select s.id, 1 - (s.embedding <=> query) as similarity
          from otel.span_signatures as s
         where s.embedding_model = model
         order by s.embedding <=> query
         limit 20000  -- what hnsw.max_scan_tuples lets an iterative scan visit by default
    loop
        exit when signature.similarity < min_similarity;
        for span in
            select t.trace_id, t.span_id, t.service_name, t.name, t.status_code, t.status_message,
                   t.duration_ms, t.start_time, t.attributes
              from otel.traces as t
             where t.signature_id = signature.id
               and (service is null or t.service_name = service)
               and (since is null or t.start_time >= since)
               and t.trace_id is distinct from excluded_trace
             order by t.start_time desc
        loop
            continue when span.trace_id = any (seen);
            seen := seen || span.trace_id;
            trace_id := span.trace_id;
            span_id := span.span_id;
            service_name := span.service_name;
            name := span.name;
            status_code := span.status_code;
            status_message := span.status_message;
            duration_ms := span.duration_ms;
            start_time := span.start_time;
            attributes := span.attributes;
            similarity := signature.similarity;
            return next;
            exit signatures when cardinality(seen) >= k;
        end loop;
    end loop;
end
$$;
comment on function otel.similar_traces_search(vector, integer, double precision, text, timestamptz, text, text) is
    'The search behind both otel.similar_traces() overloads (arguments already checked)';
"""

# Row format again for columnar partitions; then the tables' indexes, which
# adopt each partition's equal index instead of building one.
INDEXES_TO_TABLES = r"""
do $$
declare
    columnar record;
begin
    for columnar in
        select c.oid::regclass as partition
          from pg_inherits as i
          join pg_class as c on c.oid = i.inhrelid
          join pg_am as a on a.oid = c.relam
         where i.inhparent in ('otel.traces'::regclass, 'otel.logs'::regclass, 'otel.metrics'::regclass)
           and a.amname <> 'heap'
    loop
        execute format('alter table %s set access method heap', columnar.partition);
    end loop;
end
$$;
create index traces_start_time_idx on otel.traces using brin (start_time);
create index traces_service_time_idx on otel.traces (service_name, start_time desc);
create index traces_trace_idx on otel.traces (trace_id);
create index traces_errors_idx on otel.traces (start_time desc) where status_code = 'ERROR';
create index traces_attributes_idx on otel.traces using gin (attributes jsonb_path_ops);
create index traces_signature_time_idx on otel.traces (signature_id, start_time desc);
create index logs_time_idx on otel.logs using brin (time);
create index logs_service_time_idx on otel.logs (service_name, time desc);
create index logs_trace_idx on otel.logs (trace_id, time) where trace_id is not null;
create index logs_body_fts_idx on otel.logs using gin (body_tsv);
create index metrics_time_idx on otel.metrics using brin (time);
create index metrics_name_time_idx on otel.metrics (name, time desc);
create index metrics_labels_idx on otel.metrics using gin (labels jsonb_path_ops);
"""


def upgrade() -> None:
    execute_sql(UPGRADE)
    execute_sql(INDEXES_TO_PARTITIONS)


def downgrade() -> None:
    execute_sql(INDEXES_TO_TABLES)
    execute_sql(DOWNGRADE)
    execute_sql(released_routine("0011", "otel.maintain"))
    execute_sql(released_routine("0007", "otel.set_retention"))
    execute_sql(released_comment("0027", "otel.set_retention"))
    execute_sql(released_routine("0020", "otel.resign_spans"))
    execute_sql(released_routine("0020", "otel.resign_partition"))
    execute_sql(released_routine("0006", "otel.drop_repeated_spans"))
    execute_sql(released_routine("0024", "otel.metric_names"))
    execute_sql(released_comment("0027", "otel.metric_names"))
    execute_sql("""
drop function otel.maintain_partitions(integer);
drop function otel.convert_to_columnar(text, text);
drop function otel.cold_partitions_due();
drop function otel.set_cold_storage(text, interval);
drop function otel.whole_days(interval, text, text);
drop function otel.index_partition(text, text);
drop table otel.cold_storage;
""")
