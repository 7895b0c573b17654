"""Cold trace summaries: no flush adds to a summary the move deletes, late spans of the next day, and none on Citus.

otel.move_summaries_to_cold() takes the flush lock before its delete, so
that a flush cannot read the cold summaries before the move commits and
then add late spans to a summary deleted under it. The flush brings a cold
summary back for late spans that start on the day of the summary or the
next (a trace that ended just before midnight). otel.explain_trace() reads
the cold neighbours once. otel.distribute() moves the summaries of cold
days back to otel.trace_summaries (cold storage is for one node), so that
the flush on the workers finds every summary. otel.maintain() says that it
commits when it has summaries to move.

Revision ID: 0063
Revises: 0062
"""

from migrations.schema import execute_sql, released_routine

revision = "0063"
down_revision = "0062"
branch_labels = None
depends_on = None

UPGRADE = r"""
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
-- first, where the upsert adds them to it: spans that start on the day of
-- the trace's summary or the next (a trace that ended just before
-- midnight), so that a batch of current spans reads no cold summary.
declare
    cold_until timestamptz;
    first_start timestamptz;
begin
    select (max(p.day) + 1)::timestamp at time zone 'UTC' into cold_until
      from otel.daily_partitions('cold_trace_summaries') as p;
    select e.first_time into first_start from pg_temp.otel_batch_extent as e where e.kind = 'traces';
    if first_start < cold_until + interval '1 day' then
        insert into otel.trace_summaries
        select c.*
          from otel.cold_trace_summaries as c
         where c.start_time >= date_trunc('day', first_start, 'UTC') - interval '1 day' and c.start_time < cold_until
           and c.trace_id in (select t.trace_id from pg_temp.otel_traces as t
                               where t.err is null and t.start_time < cold_until + interval '1 day')
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
            -- Cold days' summaries within a day of the trace: each cold day
            -- is read whole, once for the neighbours before the trace and
            -- once for those after (materialised, the cold ones would be
            -- read once, but Citus runs no correlated subquery over them).
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

create or replace procedure otel.maintain(days_ahead integer default 3)
language plpgsql
as $$
-- Partitions ahead and retention first (otel.maintain_partitions()), then
-- the partitions due for cold storage, each converted in a transaction of
-- its own (otel.convert_to_columnar()), so that no lock outlives one
-- partition's conversion, then the trace summaries of each cold day of
-- spans (otel.move_summaries_to_cold()), a transaction each. With
-- partitions to convert or summaries to move it commits, so it must then
-- be called outside a transaction block, as pg_cron does. A conversion or
-- move that fails is a warning: the others go on. No `set` clause
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
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    for routine in (
        "otel.summarize_traces",
        "otel.move_summaries_to_cold",
        "otel.cold_summaries_due",
        "otel.explain_trace",
        "otel.distribute",
        "otel.maintain",
    ):
        execute_sql(released_routine("0062", routine))
