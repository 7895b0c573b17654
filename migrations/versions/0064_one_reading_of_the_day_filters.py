"""One reading of the cold days' Bloom filters: otel.cold_trace_ranges().

otel.cold_trace_ranges(trace_ids) gives, of the given traces, those
otel.trace_summaries lacks, with the cold day whose filter may hold each.
otel.trace_time_range(), otel.trace_summaries_of() and
otel.trace_operations() call it instead of each finding the traces without
a summary, or reading the filters, on their own. No change in what they
return.

Revision ID: 0064
Revises: 0063
"""

from migrations.schema import execute_sql, released_routine

revision = "0064"
down_revision = "0063"
branch_labels = None
depends_on = None

UPGRADE = r"""
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

grant execute on function otel.cold_trace_ranges(text[]) to otel_reader, otel_admin;
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0062", "otel.trace_time_range"))
    execute_sql(released_routine("0062", "otel.trace_summaries_of"))
    execute_sql(released_routine("0062", "otel.trace_operations"))
    execute_sql("drop function otel.cold_trace_ranges(text[])")
