"""otel.explain_trace() counts a failure as otel.root_cause() does: status ERROR, or an exception event not OK.

It took a trace as failing only when a span had status ERROR. A trace whose
span recorded an exception event and left its status UNSET has a root cause
(otel.root_cause() names that span), but explain_trace compared it as a slow
trace with faster ones, could take such traces as healthy neighbours, and
did not report the span as the one that failed. otel.trace_failed() applies
root_cause's rule to a whole trace.

Revision ID: 0029
Revises: 0028
"""

from migrations.schema import execute_sql, released_comment, released_routine

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.trace_failed(trace_id text, first_start timestamptz, last_start timestamptz)
returns boolean
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    -- As otel.root_cause() counts a failure: status ERROR, or an exception
    -- event with a status other than OK. first_start and last_start, the
    -- trace's extent in otel.trace_summaries, confine it to its partitions.
    select exists (
        select from otel.traces as t
         where t.trace_id = trace_failed.trace_id and t.start_time between first_start and last_start
           and (t.status_code = 'ERROR'
                or (t.status_code <> 'OK' and otel.exception_event_attributes(t.events) is not null)))
$$;
comment on function otel.trace_failed(text, timestamptz, timestamptz) is
    'Whether a span of the trace failed as otel.root_cause() counts it (status ERROR, or an exception event without status OK), its spans read between first_start and last_start; internal to otel.explain_trace()';

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
    failed := this.error_count > 0 or otel.trace_failed(wanted, this.start_time, this.end_time);
    return query
        with candidates as materialized (
            (select s.trace_id, s.start_time, s.span_count, s.services
               from otel.trace_summaries as s
              where s.root_service = this.root_service and s.root_name = this.root_name
                and s.start_time <= this.start_time and s.trace_id <> wanted
                and s.error_count = 0 and (failed or s.duration_ms < this.duration_ms)
                and not otel.trace_failed(s.trace_id, s.start_time, s.end_time)
              order by s.start_time desc
              limit 100)
            union all
            (select s.trace_id, s.start_time, s.span_count, s.services
               from otel.trace_summaries as s
              where s.root_service = this.root_service and s.root_name = this.root_name
                and s.start_time > this.start_time and s.trace_id <> wanted
                and s.error_count = 0 and (failed or s.duration_ms < this.duration_ms)
                and not otel.trace_failed(s.trace_id, s.start_time, s.end_time)
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
                   c.status_b = 'ERROR' or (c.exception_type_b is not null and c.status_b <> 'OK') as failing_b,
                   c.status_a = 'ERROR' or (c.exception_type_a is not null and c.status_a <> 'OK') as failing_a
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
    'What sets a failing trace (or, when it did not fail, a slow one) apart: it is compared with the k (1..100) traces of the same root service and root span name without a failing span (and, for a trace that did not fail, took less time); a trace or span fails as `otel.root_cause` counts it: status ERROR, or an `exception` event without status OK, the nearest in time with the most similar shape (services, span count, then shared operations). Returns the differences that hold in more than half of the comparisons: rank, holds_in, compared, kind (`failed`, `only here`, `missing here`, `slower`, `faster`, `attribute`), service_name, name, path, span_id, attribute, value_here, value_elsewhere, duration_ratio, exception_type, status_message and a description (`span payment/charge failed with CardDeclined in this trace only`, `inventory/SELECT stock took 4.2 times as long`). Most comparisons first, then by kind, the span `otel.root_cause` names first. An attribute counts when the neighbours that differ agree on their value (ids that differ everywhere never do). No rows when there is nothing to compare with; 12 ms p50 at 1M spans (`python -m bench explain_latency`); no rows when there is nothing to compare with; 22023 unless trace_id is 32 hex digits';

grant execute on function otel.trace_failed(text, timestamptz, timestamptz) to otel_reader, otel_admin;
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0017", "otel.explain_trace"))
    execute_sql(released_comment("0027", "otel.explain_trace"))
    execute_sql("drop function otel.trace_failed(text, timestamptz, timestamptz)")
