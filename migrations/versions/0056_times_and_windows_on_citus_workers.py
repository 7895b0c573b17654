"""Times on Citus workers read as on one node; the rows of a flush outside its window or past its new days dead-lettered there too.

The flush sends its time zone (UTC) to the workers with set local (Citus
propagates no function setting), so that a staged time without an offset
is UTC there as on one node. Messages that quote a time are made of
immutable parts (otel.utc_text(), the text of a time in UTC), which Citus
lets an update on the workers compute: before, a batch of rows outside the
accepted window or past the 32 new days of one flush failed the flush on
Citus. otel.type_on_workers() checks that the working table has the shape
this release types (otel.typed_columns()), else the coordinator types the
rows, with a warning, until otel.distribute() makes it again; a worker out
of reach fails the flush instead of typing on the coordinator.
otel.load_claimed() takes the claimed rows of a distributed claim table in
staging order, so that the first of two repeated spans is kept.

Revision ID: 0056
Revises: 0055
"""

from migrations.schema import execute_sql, released_routine

revision = "0056"
down_revision = "0055"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.load_claimed(typed_in_place text[])
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Everything in the claim tables, but those of the kinds typed in place
-- (otel.type_claimed()), into the working set (delete … returning, which
-- is right under any isolation level). Returns the number of OTLP requests.
declare
    requests bigint;
    kind text;
begin
    -- A null payload (a blank line through COPY … csv) is an empty request:
    -- not valid JSON, so a dead letter with empty raw_data. One cast for
    -- all requests first: otel.try_jsonb() costs a subtransaction and a
    -- copy of the document each, about as much again as the parsing.
    begin
        with claimed as (delete from otel.claimed_otlp returning payload)
        insert into pg_temp.otel_otlp (payload, doc)
        select coalesce(payload, ''), otel.otlp_json_names(payload::jsonb) from claimed;
    exception when data_exception or program_limit_exceeded then
        -- Some request is not JSON, or nests too deep (the delete was rolled
        -- back with the insert).
        with claimed as (delete from otel.claimed_otlp returning payload)
        insert into pg_temp.otel_otlp (payload, doc)
        select coalesce(payload, ''), otel.otlp_json_names(otel.try_jsonb(payload)) from claimed;
    end;
    get diagnostics requests = row_count;
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        continue when kind = any (typed_in_place);
        -- In staging order on Citus (the shards return their rows one after
        -- another), so that the first of two repeated spans is kept.
        execute format('with claimed as (delete from otel.%3$I returning *)
                        insert into pg_temp.%1$I (%2$s) select %2$s from claimed %4$s',
                       'otel_' || kind || '_rows', otel.staging_columns(kind), 'claimed_' || kind,
                       case when otel.distributed(format('otel.%I', 'claimed_' || kind)::regclass)
                            then 'order by row_id' else '' end);
    end loop;
    return requests;
end
$$;
comment on function otel.load_claimed(text[]) is
    'Moves the claimed rows not yet typed into the working set of the flush; internal to otel.flush()';

create or replace function otel.utc_text(t timestamptz)
returns text
language sql immutable parallel safe
as $$
    -- t as its text reads with timezone UTC and the ISO date style
    -- ('2026-12-07 10:00:00.25+00'), whatever the session's settings: the
    -- same text on every node. Immutable (to_char of a timestamp, in a
    -- format of digits only, depends on no setting), so that Citus lets
    -- an update on the workers build messages with it.
    select case when t = 'infinity' then 'infinity' when t = '-infinity' then '-infinity'
                else to_char(t at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                     || coalesce('.' || nullif(rtrim(to_char(t at time zone 'UTC', 'US'), '0'), ''), '') || '+00'
           end
$$;
comment on function otel.utc_text(timestamptz) is
    'A time as text in UTC, as timestamptz text reads with timezone UTC (2026-12-07 10:00:00.25+00), whatever the session''s settings';

create or replace function otel.partition_working_set(kind text, time_column text, typed_rows text default null)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Gives err to the valid rows of pg_temp.otel_<kind> (or of the table
-- typed_rows names: otel.flush_spans, flush_logs or flush_metrics on
-- Citus) outside the accepted
-- time window (otel.accepted_time_window()), then creates the partitions
-- the others need, at most new_days_limit new days in one flush: a batch
-- spread over thousands of days would otherwise exhaust the lock table and
-- fail every flush. Rows of the days left over get err (so a dead letter
-- that otel.retry_dlq() loads in a later run). Records the batch's extent
-- in pg_temp.otel_batch_extent, which the steps after it read instead of
-- scanning every row again.
declare
    new_days_limit constant integer := 32;
    typed text := coalesce(typed_rows, format('pg_temp.%I', 'otel_' || kind));
    extent text := format('select min(%1$I) filter (where err is null), max(%1$I) filter (where err is null),
                                  count(*) filter (where err is not null)
                             from %2$s', time_column, typed);
    accepted tstzrange := otel.accepted_time_window(kind);
    first_time timestamptz;
    last_time timestamptz;
    invalid_rows bigint;
    first_day date;
    last_day date;
    days date[];
begin
    execute extent into first_time, last_time, invalid_rows;
    -- The extent shows whether any row is outside the window: usually none
    -- is, and then no row is read again.
    if first_time is not null and not accepted @> tstzrange(first_time, last_time, '[]') then
        -- Messages of immutable parts only (otel.utc_text(), ||), which
        -- Citus lets the workers compute in an update, unlike format().
        execute format($sql$
            update %1$s
               set err = case when %2$I < lower($1)
                              then '%2$s ' || otel.utc_text(%2$I) || ' is before ' || otel.utc_text(lower($1))
                                   || ', the oldest time the %3$s retention keeps (otel.set_retention())'
                              else '%2$s ' || otel.utc_text(%2$I) || ' is after ' || otel.utc_text(upper($1))
                                   || ', more than otel.future_margin ahead of the database clock'
                          end
             where err is null and not $1 @> %2$I
        $sql$, typed, time_column, kind) using accepted;
        execute extent into first_time, last_time, invalid_rows;
    end if;
    first_day := (first_time at time zone 'UTC')::date;
    last_day := (last_time at time zone 'UTC')::date;
    -- Batches usually span a day or two: then those days are the candidates,
    -- found without computing the day of every row (an empty day between
    -- the first and the last gets its partition too). Otherwise the days
    -- that have rows, and only those.
    if first_day is null then
        days := '{}';  -- no valid rows
    elsif last_day - first_day <= 2 then
        days := array(select d::date from generate_series(first_day, last_day, interval '1 day') as d);
    else
        -- (a distinct aggregate Citus would compute on the coordinator)
        execute format('select array_agg(d.day) from (select distinct (%I at time zone ''UTC'')::date as day
                                                          from %s where err is null) as d',
                       time_column, typed) into days;
    end if;
    days := array(select day from unnest(days) as day
                   where to_regclass(format('otel.%I', kind || '_p' || to_char(day, 'YYYYMMDD'))) is null
                   order by day);
    perform otel.ensure_partitions(kind, days[1:new_days_limit]);
    if cardinality(days) > new_days_limit then
        execute format($sql$
            update %1$s
               set err = 'no partition for ' || left(otel.utc_text(%2$I), 10)
                         || ': one flush creates at most %3$s new days; otel.retry_dlq() loads it later'
             where err is null and (%2$I at time zone 'UTC')::date = any ($1)
        $sql$, typed, time_column, new_days_limit) using days[new_days_limit + 1:];
        execute extent into first_time, last_time, invalid_rows;
    end if;
    insert into pg_temp.otel_batch_extent values (kind, first_time, last_time, invalid_rows);
end
$$;
comment on function otel.partition_working_set(text, text, text) is
    'Dead-letters the rows of a flush outside the accepted time window and creates the partitions the others need, at most 32 new days at a time; internal to otel.flush()';

create or replace function otel.catalog_operations()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Service, span name and kind are part of the signature input, so the
-- distinct inputs of otel.sign_spans() (a few hundred for a million
-- spans) give the flush's operations without reading the spans again; the
-- resource attribute keys come from the first span of each input (a
-- service's resources share their keys, hosts differ in values), and
-- tell otel.find_traces() which attributes may be a resource's. Rows
-- change only when the flush widens their time range or adds keys.
begin
    insert into otel.operation_catalog as c (service_name, name, span_kind, first_seen, last_seen, resource_keys)
    select t.service_name, t.name, t.kind, min(i.first_start), max(i.last_start),
           array_remove(array_agg(distinct k.key order by k.key), null)
      from pg_temp.otel_signature_inputs as i
      join pg_temp.otel_traces as t on t.ctid = i.first_span
      left join lateral jsonb_object_keys(t.resource_attributes) as k (key) on true
     where t.service_name is not null
     group by 1, 2, 3
    on conflict (service_name, name, span_kind) do update
        set first_seen = least(c.first_seen, excluded.first_seen),
            last_seen = greatest(c.last_seen, excluded.last_seen),
            resource_keys = array(select distinct x from unnest(c.resource_keys || excluded.resource_keys) as x
                                   order by x)
        where excluded.first_seen < c.first_seen or excluded.last_seen > c.last_seen
           or not excluded.resource_keys <@ c.resource_keys;
end
$$;
comment on function otel.catalog_operations() is
    'Adds the services, span names and kinds of a flush, and their resource attribute keys, to otel.operation_catalog; internal to otel.flush()';

create or replace function otel.typed_columns(typed regclass)
returns text[]
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select array_agg(format('%s %s', attname, format_type(atttypid, atttypmod)) order by attnum)
      from pg_attribute
     where attrelid = typed and attnum > 0 and not attisdropped
$$;
comment on function otel.typed_columns(regclass) is
    'The columns of a table of typed rows, with their types, in order: what the typing query of a kind gives; internal';

create or replace function otel.working_table_on_workers(kind text)
returns regclass
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select format('otel.%I', case kind when 'traces' then 'flush_spans' else 'flush_' || kind end)::regclass
$$;
comment on function otel.working_table_on_workers(text) is
    'otel.flush_spans, otel.flush_logs or otel.flush_metrics: where the flush types the claimed rows of a kind on Citus; internal to otel.flush()';

create or replace function otel.type_on_workers(kind text)
returns boolean
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Types otel.claimed_<kind> into its working table on the workers with one
-- insert … select that each worker runs on its shards: log records and
-- points into the shards beside their claim, spans into the shard of
-- their trace (Citus refuses a null key: a span without a trace id,
-- rejected, gets ''). False, with nothing changed, when the claim table is
-- not distributed or is empty, or when some row defeats the casts:
-- otel.load_claimed() then takes its rows into the working set, where
-- otel.type_rows() isolates the bad one.
declare
    claim_table regclass := format('otel.%I', 'claimed_' || kind);
    typed regclass;
    has_rows boolean;
    typed_columns text;
begin
    if not otel.distributed(claim_table) then
        return false;
    end if;
    execute format('select exists (select 1 from %s)', claim_table) into strict has_rows;
    if not has_rows then
        return false;
    end if;
    typed := otel.working_table_on_workers(kind);
    select string_agg(case when kind = 'traces' and attname = 'trace_id' then 'coalesce(q.trace_id, '''')'
                           else format('q.%I', attname) end,
                      ', ' order by attnum)
      into typed_columns
      from pg_attribute
     where attrelid = typed and attnum > 0 and not attisdropped;
    -- Made by otel.distribute() from the typing query of its release: a
    -- later release's may differ, and then the coordinator types the rows.
    if otel.typed_columns(typed) is distinct from otel.typed_columns(format('pg_temp.%I', 'otel_' || kind)::regclass) then
        raise warning 'otel_db: % is not shaped as this release types %: the coordinator types them until otel.distribute() is run again',
                      typed, kind;
        return false;
    end if;
    begin
        execute format('insert into %s select %s from (%s) as q',
                       typed, typed_columns, otel.typing_query(kind, otel.claimed_rows_on_workers(kind)));
    exception when others then
        -- A worker out of reach fails the coordinator's way too.
        if otel.is_server_trouble(sqlstate) or left(sqlstate, 2) = '08' then raise; end if;
        return false;
    end;
    execute format('analyze %s', typed);  -- on every shard: the joins that follow hash rather than loop
    return true;
end
$$;
comment on function otel.type_on_workers(text) is
    'On Citus: validates and casts the claimed rows of a kind on the workers; internal to otel.flush()';

create or replace function otel.reject_invalid_rows(kind text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Queues every row that failed validation for the dead-letter queue: a
-- staging row (from the working set or a claim table) as a JSON object of
-- its columns, a decoded record as an OTLP/JSON request holding just that
-- record.
declare
    claim_table regclass := format('otel.%I', 'claimed_' || kind);
    -- Rows typed in place (t.claimed set) by their position; never those
    -- of a claim table Citus distributes, which has no such rows.
    claimed_rows text := case when otel.distributed(claim_table) then '(select null::tid as ctid, null::jsonb as staged)'
                              else format('(select x.ctid, to_jsonb(x) as staged from %s as x)', claim_table) end;
begin
    if (select e.invalid_rows from pg_temp.otel_batch_extent as e where e.kind = reject_invalid_rows.kind) = 0 then
        return;  -- nothing to look for
    end if;
    execute format($sql$
        insert into pg_temp.otel_rejects
        select r.dlq_id, %1$L,
               case when r.payload_id is null then %2$L else 'otel.otlp_staging' end,
               case when t.claimed is not null
                    then jsonb_strip_nulls(c.staged)::text
                    when r.payload_id is null
                    -- (row_id: the number Citus's staging gives each row)
                    then jsonb_strip_nulls(to_jsonb(r) - '{n,dlq_id,payload_id,rs,ss,rec,dp,row_id}'::text[])::text
                    else otel.otlp_single_record(p.doc, %1$L, r.rs, r.ss, r.rec, r.dp)::text end,
               case when r.payload_id is null then 'row-json' else 'text' end,
               t.err
          from pg_temp.%3$I as t
          left join pg_temp.%4$I as r on r.n = t.n
          left join %5$s as c on c.ctid = t.claimed
          left join pg_temp.otel_otlp as p on p.id = r.payload_id
         where t.err is not null
    $sql$, kind, 'otel.' || kind || '_staging', 'otel_' || kind, 'otel_' || kind || '_rows', claimed_rows);
end
$$;
comment on function otel.reject_invalid_rows(text) is
    'Moves rows that failed validation to the reject list of the flush; internal to otel.flush()';

create or replace function otel.flush_process(started_at timestamptz, truncated text[])
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
-- tables or the dead-letter queue, and a row in otel.flush_runs.
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
        -- The workers type and check times too: Citus sends them this
        -- function's time zone (UTC: a staged time without an offset is
        -- UTC, messages show UTC) only as a set local.
        set local citus.propagate_set_commands = 'local';
        set local timezone = 'UTC';
    end if;
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        -- On Citus, where staging is distributed, on the workers
        -- (otel.type_on_workers()); else in place when it can be.
        if otel.type_on_workers(kind) then
            on_workers := on_workers || kind;
            typed_in_place := typed_in_place || kind;
        elsif otel.type_claimed(kind) then
            typed_in_place := typed_in_place || kind;
        end if;
    end loop;
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
    insert into otel.flush_runs (started_at, duration, spans, logs, metric_points, otlp_requests,
                                 dead_lettered, duplicates, truncated_staging)
    values (started_at, clock_timestamp() - started_at, spans, logs, points, requests,
            dead_lettered, duplicates, truncated);
end
$$;
comment on function otel.flush_process(timestamptz, text[]) is
    'Moves the claimed rows to their final tables or the dead-letter queue and records the flush; the second transaction of otel.flush()';

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
-- (logs by time, points by name) is redistributed. The staging tables of
-- spans, logs and points and their claim tables are distributed by a row
-- id the coordinator gives each staged row (a staged row may lack the key
-- that would place it, and Citus refuses a null key), so that writers'
-- COPY spreads over the workers, where the flush types the rows into
-- working tables: otel.flush_spans co-located with the spans, otel.flush_logs
-- and otel.flush_metrics with their claims (otel.type_on_workers()). The
-- staging of OTLP/JSON requests and the dead-letter queue stay on the
-- coordinator. Citus reads and writes the
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
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        staging := format('otel.%I', kind || '_staging');
        claims := format('otel.%I', 'claimed_' || kind);
        if not otel.distributed(staging) then
            -- Rows staged before get their ids here; a claim table holds rows
            -- only while a flush runs, or after one failed.
            row_ids := format('otel.%I', case kind when 'traces' then 'staged_span_ids' when 'logs' then 'staged_log_ids'
                                                   else 'staged_point_ids' end);
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
        working_table := format('otel.%I', case kind when 'traces' then 'flush_spans' else 'flush_' || kind end);
        -- (not otel.working_table_on_workers(), which needs the table to exist)
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
                           format('On Citus: the %s of the running flush, typed on the workers (otel.type_on_workers()); internal',
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
    'On a Citus coordinator, after `alembic upgrade head`: distributes otel.traces and otel.trace_summaries by trace_id in shard_count (default 32) co-located shards, otel.logs by shard_key co-located with the spans (a record in a trace beside its spans) and otel.metrics by series_key (one shard a series), redistributing a table an earlier release distributed otherwise, and makes otel.span_signatures and otel.operation_catalog reference tables; distributes the staging of spans, logs and points by a row id it adds (writers COPY into them with a column list), so that the flush types and moves their rows on the workers (otel.flush_spans, otel.flush_logs, otel.flush_metrics); lets otel_reader, otel_writer and otel_admin log in on the workers (Citus reaches the shards as the current role); returns what it changed (nothing when run again, unless a worker was added). OTLP/JSON requests and the dead letters stay on the coordinator';
"""

DOWNGRADE = r"""
drop function otel.utc_text(timestamptz);
drop function otel.typed_columns(regclass);
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
    execute_sql(released_routine("0015", "otel.load_claimed"))
    execute_sql(released_routine("0053", "otel.partition_working_set"))
    execute_sql(released_routine("0022", "otel.catalog_operations"))
    execute_sql(released_routine("0054", "otel.working_table_on_workers"))
    execute_sql(released_routine("0054", "otel.type_on_workers"))
    execute_sql(released_routine("0053", "otel.reject_invalid_rows"))
    execute_sql(released_routine("0054", "otel.flush_process"))
    execute_sql(released_routine("0054", "otel.distribute"))
