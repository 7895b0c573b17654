-- Comparing traces: what differs between two traces of the same operation
-- (otel.compare_traces), between a failing or slow trace and its nearest
-- healthy neighbours (otel.explain_trace), and which attribute values come
-- with failures (otel.suspect_attributes).

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
    cold record;
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
    -- the day otel.cold_trace_ranges() names.
    for cold in select * from otel.cold_trace_ranges(trace_operations.trace_ids) loop
        span_rows := span_rows || array(
            select t from otel.traces as t
             where t.trace_id = cold.trace_id and t.start_time between cold.first_start and cold.last_end);
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

create or replace function otel.align_traces(b text, a text[])
returns table (
    a_trace_id text, service_name text, name text, path text[], depth integer, occurrence integer,
    span_id_a text, span_id_b text, parent_span_id_a text, parent_span_id_b text, topmost boolean,
    status_a text, status_b text, status_message_a text, status_message_b text,
    exception_type_a text, exception_type_b text, raised_a boolean, raised_b boolean,
    duration_ms_a double precision, duration_ms_b double precision, duration_ratio double precision,
    differing_attributes jsonb, differences text[], start_time timestamptz)
language sql stable
set search_path = pg_catalog, pg_temp
set jit = off
as $$
    -- Trace b against each trace of a: spans are aligned on operation, path
    -- and occurrence (otel.trace_operations); a span without a partner is in
    -- one trace only, and `topmost` when its parent is not (the rest of its
    -- subtree comes with it). Ids of a that are not stored are left out; b
    -- not stored gives no rows.
    --   status      one span failed (status ERROR) and the other did not, or
    --               both failed with messages that differ beyond ids and numbers
    --   exception   the exception types differ, or one span recorded an
    --               exception event and the other did not
    --   slower      b took at least twice as long as a, and 1 ms more or over
    --   faster      b took at most half as long as a, and 1 ms less or under
    --   attributes  attribute values differ (exactly, as stored)
    with ops as materialized (
        select * from otel.trace_operations(array_append(align_traces.a, align_traces.b))
    ),
    here as (
        select o.* from ops as o where o.trace_id = align_traces.b
    ),
    others as (
        select distinct o.trace_id as a_trace_id from ops as o where o.trace_id = any (align_traces.a)
    ),
    pairs as (
        select x.a_trace_id, h.* from others as x cross join here as h
    ),
    aligned as (
        select coalesce(p.a_trace_id, t.trace_id) as a_trace_id,
               coalesce(p.service_name, t.service_name) as service_name,
               coalesce(p.operation, t.operation) as name,
               coalesce(p.path, t.path) as path, coalesce(p.depth, t.depth) as depth,
               coalesce(p.occurrence, t.occurrence) as occurrence,
               t.span_id as span_id_a, p.span_id as span_id_b,
               t.parent_span_id as parent_span_id_a, p.parent_span_id as parent_span_id_b,
               t.status_code as status_a, p.status_code as status_b,
               t.status_message as status_message_a, p.status_message as status_message_b,
               t.exception_type as exception_type_a, p.exception_type as exception_type_b,
               t.raised as raised_a, p.raised as raised_b,
               t.duration_ms as duration_ms_a, p.duration_ms as duration_ms_b,
               t.attributes as attributes_a, p.attributes as attributes_b,
               coalesce(p.start_time, t.start_time) as start_time
          from pairs as p
          full join (select o.* from ops as o where o.trace_id = any (align_traces.a)) as t
            on t.trace_id = p.a_trace_id and t.label = p.label and t.path = p.path and t.occurrence = p.occurrence
         where exists (select from here)
    ),
    compared as (
        select x.*,
               case when x.duration_ms_a > 0 then x.duration_ms_b / x.duration_ms_a end as duration_ratio,
               (select jsonb_object_agg(k.key, jsonb_build_array(x.attributes_a -> k.key, x.attributes_b -> k.key))
                  from (select jsonb_object_keys(x.attributes_a) union select jsonb_object_keys(x.attributes_b))
                       as k (key)
                 where x.attributes_a -> k.key is distinct from x.attributes_b -> k.key) as differing_attributes
          from aligned as x
    )
    select c.a_trace_id, c.service_name, c.name, c.path, c.depth, c.occurrence, c.span_id_a, c.span_id_b,
           c.parent_span_id_a, c.parent_span_id_b,
           -- As not exists over the same comparison's one-sided spans, but hashed
           -- once rather than a scan of every row for each row (traces of
           -- thousands of spans); a missing or self parent counts as not there.
           case when c.span_id_a is null
                then c.parent_span_id_b is null or c.parent_span_id_b = c.span_id_b
                     or (c.a_trace_id, c.parent_span_id_b) not in (
                            select u.a_trace_id, u.span_id_b from compared as u
                             where u.span_id_a is null and u.a_trace_id is not null)
                when c.span_id_b is null
                then c.parent_span_id_a is null or c.parent_span_id_a = c.span_id_a
                     or (c.a_trace_id, c.parent_span_id_a) not in (
                            select u.a_trace_id, u.span_id_a from compared as u
                             where u.span_id_b is null and u.a_trace_id is not null)
                else true end,
           c.status_a, c.status_b, c.status_message_a, c.status_message_b, c.exception_type_a, c.exception_type_b,
           c.raised_a, c.raised_b, c.duration_ms_a, c.duration_ms_b, c.duration_ratio,
           case when c.span_id_a is not null and c.span_id_b is not null
                then coalesce(c.differing_attributes, '{}') end,
           array_remove(array[
               case when c.span_id_b is null then 'only in a' end,
               case when c.span_id_a is null then 'only in b' end,
               case when c.span_id_a is not null and c.span_id_b is not null
                     and ((c.status_a = 'ERROR') <> (c.status_b = 'ERROR')
                          or (c.status_a = 'ERROR' and c.status_b = 'ERROR'
                              and otel.normalize_text(c.status_message_a)
                                  is distinct from otel.normalize_text(c.status_message_b)))
                    then 'status' end,
               case when c.span_id_a is not null and c.span_id_b is not null
                     and (c.exception_type_a is distinct from c.exception_type_b or c.raised_a <> c.raised_b)
                    then 'exception' end,
               case when c.duration_ms_b >= 2 * c.duration_ms_a and c.duration_ms_b - c.duration_ms_a >= 1
                    then 'slower' end,
               case when c.duration_ms_b <= c.duration_ms_a / 2 and c.duration_ms_a - c.duration_ms_b >= 1
                    then 'faster' end,
               case when c.span_id_a is not null and c.span_id_b is not null
                     and c.differing_attributes is not null then 'attributes' end
           ], null),
           c.start_time
      from compared as c
$$;
comment on function otel.align_traces(text, text[]) is
    'Trace b aligned with each stored trace of a by operation, path and occurrence, span by span, with whether each recorded an `exception` event (raised_a/b) and what differs (only in a, only in b, status, exception, slower, faster, attributes); internal to otel.compare_traces() and otel.explain_trace()';

create or replace function otel.compare_traces(a text, b text)
returns table (
    rank integer, service_name text, name text, path text[], depth integer, span_id_a text, span_id_b text,
    status_a text, status_b text, status_message_a text, status_message_b text,
    exception_type_a text, exception_type_b text,
    duration_ms_a double precision, duration_ms_b double precision, duration_ratio double precision,
    differing_attributes jsonb, differences text[])
language plpgsql stable
set search_path = pg_catalog, pg_temp
set jit = off
as $$
-- One row per aligned pair of spans and per span of one trace only, the
-- most telling first (a span fails as otel.span_failed() says):
--   1  a span failed in one trace only (both present, or present in one and
--      failed there)
--   2  both failed, differently (message or exception type)
--   3  a span present in one trace only
--   4  a span took at least twice (or at most half) as long
--   5  attributes differ
--   6  nothing differs
-- then spans that recorded an exception first, failures deepest first (an
-- error travels up the tree: the deepest is where it began), the others in
-- tree order.
declare
    first_id text := otel.normalize_trace_id(compare_traces.a);
    second_id text := otel.normalize_trace_id(compare_traces.b);
begin
    if first_id !~ '^[0-9a-f]{32}$' then
        raise exception 'a must be a trace id of 32 hex digits, got %', otel.argument_text(compare_traces.a)
            using errcode = 'invalid_parameter_value';
    end if;
    if second_id !~ '^[0-9a-f]{32}$' then
        raise exception 'b must be a trace id of 32 hex digits, got %', otel.argument_text(compare_traces.b)
            using errcode = 'invalid_parameter_value';
    end if;
    return query
        with failing as (
            select x.*,
                   otel.span_failed(x.status_a, x.raised_a) as failing_a,
                   otel.span_failed(x.status_b, x.raised_b) as failing_b
              from otel.align_traces(second_id, array[first_id]) as x
        ),
        aligned as (
            select x.*,
                   case when (x.span_id_a is null or x.span_id_b is null) and (x.failing_a or x.failing_b) then 1
                        when x.failing_a <> x.failing_b then 1
                        when x.differences && array['status', 'exception'] then 2
                        when x.differences && array['only in a', 'only in b'] then 3
                        when x.differences && array['slower', 'faster'] then 4
                        when 'attributes' = any (x.differences) then 5
                        else 6 end as weight
              from failing as x
        )
        select (row_number() over w)::integer, x.service_name, x.name, x.path, x.depth, x.span_id_a, x.span_id_b,
               x.status_a, x.status_b, x.status_message_a, x.status_message_b, x.exception_type_a, x.exception_type_b,
               x.duration_ms_a, x.duration_ms_b, x.duration_ratio, x.differing_attributes, x.differences
          from aligned as x
        window w as (order by x.weight,
                              x.weight <= 2 and (x.raised_a or x.raised_b) is true desc,
                              case when x.weight <= 2 then -x.depth end,
                              x.path || array[coalesce(x.service_name, '') || '/' || x.name], x.occurrence,
                              x.start_time, x.span_id_a, x.span_id_b)
         order by 1;
end
$$;
comment on function otel.compare_traces(text, text) is
    'What differs between two traces, span by span. Spans align by operation: service and span name with ids, numbers and uuids replaced (`GET /orders/42` = `GET /orders/43`), the path of such operations from the root down to the parent, and start order for repeated ones. One row per aligned pair and per span of one trace only: rank, service_name, name, path, depth, span_id_a, span_id_b, status_a/b, status_message_a/b, exception_type_a/b, duration_ms_a/b, duration_ratio (b/a), differing_attributes (`{key: [in a, in b]}`), differences (`only in a`, `only in b`, `status`, `exception`, `slower`/`faster`: at least twice or at most half as long and 1 ms apart, `attributes`). Spans failing in one trace only come first, those with an exception and the deepest first (where the error began), then spans of one trace only, durations, attributes. No rows when either trace is not stored; 22023 unless both are 32 hex digits';

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

create or replace function otel.suspect_attributes(
    service text, operation text, since timestamptz, until timestamptz default now(),
    slower_than_percentile double precision default null)
returns table (
    key text, value text, failing bigint, others bigint, failing_share double precision,
    others_share double precision, score double precision)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- The spans of the service (and operation: span name, null for all)
-- started in [since, until), at most the newest 200,000 (read through the
-- (service_name, start_time) index), are split in two: failing (status
-- ERROR), or, with slower_than_percentile p, slow (longer than the p
-- percentile of their durations), against the others. Every scalar
-- attribute value (string, number, boolean; grouped by its text) is
-- counted in the flagged spans (f of F) and in the others (o of O). The
-- score is the log odds ratio of the value in flagged against other spans
-- with ½ added to every cell (Haldane-Anscombe, so that a value never seen
-- in the others is finite), divided by its standard error: a value in 90 %
-- of failures and 5 % of the rest scores high; one seen once (an id) does
-- not, however rare it is elsewhere. Values at least as common in the
-- others are left out.
begin
    if service is null then
        raise exception 'service must be a service name, got null' using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_time_range(since, until, true);
    if until - since > interval '31 days' then
        raise exception 'the window from since to until must be at most 31 days, got %', until - since
            using errcode = 'invalid_parameter_value';
    end if;
    if slower_than_percentile <= 0 or slower_than_percentile >= 1 then  -- NaN counts as above 1
        raise exception 'slower_than_percentile must be between 0 and 1 (0.95 for the slowest 5 %%), got %',
                        slower_than_percentile
            using errcode = 'invalid_parameter_value';
    end if;
    return query
        with window_spans as materialized (
            select t.status_code = 'ERROR' as failed, t.duration_ms, t.attributes
              from otel.traces as t
             where t.service_name = suspect_attributes.service
               and (suspect_attributes.operation is null or t.name = suspect_attributes.operation)
               and t.start_time >= since and t.start_time < until
             order by t.start_time desc
             limit 200000
        ),
        slow as (
            select percentile_cont(slower_than_percentile) within group (order by w.duration_ms) as ms
              from window_spans as w
             where slower_than_percentile is not null
        ),
        spans as (
            select case when slower_than_percentile is null then w.failed
                        else w.duration_ms > (select ms from slow) end as failing,
                   w.attributes
              from window_spans as w
        ),
        totals as (
            select count(*) filter (where s.failing)::float8 as f, count(*) filter (where not s.failing)::float8 as o
              from spans as s
        ),
        counts as (
            select a.key as attribute, a.value #>> '{}' as attribute_value,
                   count(*) filter (where s.failing)::float8 as f, count(*) filter (where not s.failing)::float8 as o
              from spans as s
             cross join lateral jsonb_each(s.attributes) as a
             where jsonb_typeof(a.value) in ('string', 'number', 'boolean')
             group by 1, 2
        ),
        scored as (
            select c.attribute, c.attribute_value, c.f, c.o, c.f / t.f as failing_share,
                   case when t.o > 0 then c.o / t.o end as others_share,
                   ln(((c.f + 0.5) / (t.f - c.f + 0.5)) / ((c.o + 0.5) / (t.o - c.o + 0.5)))
                   / sqrt(1 / (c.f + 0.5) + 1 / (t.f - c.f + 0.5) + 1 / (c.o + 0.5) + 1 / (t.o - c.o + 0.5)) as score
              from counts as c
             cross join totals as t
             where c.f > 0
        )
        select s.attribute, s.attribute_value, s.f::bigint, s.o::bigint, s.failing_share, s.others_share, s.score
          from scored as s
         where s.failing_share > coalesce(s.others_share, 0)
         order by s.score desc, s.f desc, s.attribute, s.attribute_value
         limit 50;
end
$$;
comment on function otel.suspect_attributes(text, text, timestamptz, timestamptz, double precision) is
    'Attribute values over-represented in the failing (status ERROR) spans of a service (and span name; null for all) started in [since, until), at most 31 days and the newest 200,000 spans; with `slower_than_percentile` p (0.95, say), in its slow spans instead, those longer than the p percentile of the window''s durations: key, value (scalars), failing (the failing or slow spans with the value), others, failing_share, others_share, score; best first, at most 50. The score is the log odds ratio of the value in failing against other spans, ½ added to every count, over its standard error: high for a value in most failures and few successes, low for one seen once; 22023 for a null service or since, since after until, a window over 31 days, or a percentile outside (0, 1)';
