"""One definition of a failed span, otel.span_failed(), where five functions each spelled the rule out.

otel.root_cause(), otel.trace_failed(), otel.explain_trace() and
otel.compare_traces() each wrote "status ERROR, or an exception event with a
status other than OK" in their own words (six times in all), which is how
revisions 0032 and 0035 came to fix the same rule twice. They now call
otel.span_failed(status_code, raised), a SQL function the planner inlines:
the same answers. Also: root_cause's comment no longer says twice that a
trace without errors gives no rows.

Revision ID: 0037
Revises: 0036
"""

from migrations.schema import execute_sql, released_routine

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.span_failed(status_code text, raised boolean)
returns boolean
language sql immutable parallel safe
as $$
    -- Status ERROR, or an "exception" event (raised) with a status other
    -- than OK: OK is final, the exception was handled. The one rule of the
    -- root-cause and comparison functions; a span not there has not failed.
    select coalesce(status_code = 'ERROR' or (raised and status_code <> 'OK'), false)
$$;
comment on function otel.span_failed(text, boolean) is
    'Whether a span failed: status ERROR, or an exception event (raised) with a status other than OK; false for a span that is not there (null status)';

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
    select s.start_time, s.end_time into first_start, last_start
      from otel.trace_summaries as s
     where s.trace_id = wanted;
    if not found then
        return;
    end if;
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

create or replace function otel.trace_failed(trace_id text, trace_start timestamptz, trace_end timestamptz)
returns boolean
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    -- A failure as otel.root_cause() counts it (otel.span_failed()).
    -- trace_start and trace_end, the trace's extent in otel.trace_summaries,
    -- confine it to its partitions (every span of the trace starts between
    -- them).
    select exists (
        select from otel.traces as t
         where t.trace_id = trace_failed.trace_id and t.start_time between trace_start and trace_end
           and otel.span_failed(t.status_code, otel.exception_event_attributes(t.events) is not null))
$$;
comment on function otel.trace_failed(text, timestamptz, timestamptz) is
    'Whether a span of the trace failed as otel.root_cause() counts it (status ERROR, or an exception event without status OK), its spans read where they start between trace_start and trace_end (its extent in otel.trace_summaries); internal to otel.explain_trace()';

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

grant execute on function otel.span_failed(text, boolean) to otel_reader, otel_admin;
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0034", "otel.root_cause"))
    execute_sql(released_routine("0035", "otel.compare_traces"))
    execute_sql(released_routine("0032", "otel.trace_failed"))
    execute_sql(released_routine("0032", "otel.explain_trace"))
    execute_sql("drop function otel.span_failed(text, boolean)")
