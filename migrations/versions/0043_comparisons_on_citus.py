"""compare_traces(), explain_trace() and a failed embedding's record work on Citus.

Citus plans no statement of an SQL function that takes parameters, and no
recursive query over several traces. otel.trace_operations(), behind
otel.compare_traces() and otel.explain_trace(), becomes PL/pgSQL: it reads
the traces' spans into an array in one statement (a join of co-located
tables on Citus), then walks their trees over that array.
otel.explain_trace() tells failing neighbours by a correlated subquery,
which Citus runs on the workers, instead of otel.trace_failed(), an SQL
function the workers could not run (it is dropped); the trace itself fails
when otel.root_cause() finds a cause, which is the same rule.
otel.embedding_failed() becomes PL/pgSQL. The same answers on one node.

Revision ID: 0043
Revises: 0042
"""

from migrations.schema import execute_sql, released_routine

revision = "0043"
down_revision = "0042"
branch_labels = None
depends_on = None

UPGRADE = r"""
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
-- trace that did not fail, only those that took less time. Of the 100 before and the 100 after it in time, the 4k whose
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
    select * into this from otel.trace_summaries as s where s.trace_id = wanted;
    if not found or this.root_service is null or this.root_name is null then
        return;
    end if;
    failed := this.error_count > 0 or exists (select from otel.root_cause(wanted));
    return query
        with candidates as materialized (
            (select s.trace_id, s.start_time, s.span_count, s.services
               from otel.trace_summaries as s
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
               from otel.trace_summaries as s
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
    'What sets a failing trace (or, when it did not fail, a slow one) apart: it is compared with the k (1..100) traces of the same root service and root span name without a failing span (and, for a trace that did not fail, took less time); a trace or span fails as `otel.root_cause` counts it: status ERROR, or an `exception` event without status OK, the nearest in time with the most similar shape (services, span count, then shared operations). Returns the differences that hold in more than half of the comparisons: rank, holds_in, compared, kind (`failed`, `only here`, `missing here`, `slower`, `faster`, `attribute`), service_name, name, path, span_id, attribute, value_here, value_elsewhere, duration_ratio, exception_type, status_message and a description (`span payment/charge failed with CardDeclined in this trace only`, `inventory/SELECT stock took 4.2 times as long`). Most comparisons first, then by kind, the span `otel.root_cause` names first. An attribute counts when the neighbours that differ agree on their value (ids that differ everywhere never do). No rows when there is nothing to compare with; its latency at 1M spans is in BENCHMARKS.md (`python -m bench explain_latency`); 22023 unless trace_id is 32 hex digits';

drop function otel.trace_failed(text, timestamptz, timestamptz);

create or replace function otel.embedding_failed(ids bigint[], error text)
returns void
language plpgsql
as $$
-- Written for Citus too, where otel.span_signatures is a reference table
-- (otel.distribute()): PL/pgSQL, as Citus plans no statement of an SQL
-- function that takes parameters, and the next attempt's time in epoch
-- seconds, as it rejects a stable operator (timestamptz + interval) over
-- a column in an update.
begin
    update otel.span_signatures as s
       set attempts = s.attempts + 1,
           last_error = left(coalesce(embedding_failed.error, 'unknown error'), 2000),
           next_attempt_at = to_timestamp(
               extract(epoch from now()) + extract(epoch from otel.embedding_retry_delay(s.attempts + 1)))
     where s.id = any (embedding_failed.ids) and (s.embedding is null or s.embedding_model = 'fallback-hash');
end
$$;
comment on function otel.embedding_failed(bigint[], text) is
    'Records a failed attempt on signatures: the error, and when to try again';
"""

# Never re-created since the baseline: its text as released there.
EMBEDDING_FAILED_0004 = r"""
create or replace function otel.embedding_failed(ids bigint[], error text)
returns void
language sql
as $$
    update otel.span_signatures
       set attempts = attempts + 1,
           last_error = left(coalesce(error, 'unknown error'), 2000),
           next_attempt_at = now() + otel.embedding_retry_delay(attempts + 1)
     where id = any (ids) and (embedding is null or embedding_model = 'fallback-hash')
$$;
comment on function otel.embedding_failed(bigint[], text) is
    'Records a failed attempt on signatures: the error, and when to try again';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0037", "otel.trace_failed"))
    execute_sql("grant execute on function otel.trace_failed(text, timestamptz, timestamptz) to otel_reader, otel_admin")
    execute_sql(released_routine("0034", "otel.trace_operations"))
    execute_sql(released_routine("0037", "otel.explain_trace"))
    execute_sql(EMBEDDING_FAILED_0004)
