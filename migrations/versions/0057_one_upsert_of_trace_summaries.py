"""The upsert of the trace summaries in one place, for one node and for Citus workers.

otel.upsert_trace_summaries() adds per-trace figures to
otel.trace_summaries (a trace stored before gets the union of both);
otel.summarize_traces() and otel.summarize_spans_on_workers() give it their
queries, which differ (Citus pushes down neither a collated group key nor a
query read twice), instead of each carrying the same upsert.

Revision ID: 0057
Revises: 0056
"""

from migrations.schema import execute_sql, released_routine

revision = "0057"
down_revision = "0056"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.upsert_trace_summaries(per_trace text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Adds the traces of per_trace, a query of trace_id, start_time, end_time,
-- root_service, root_name, span_count, error_count and services (with
-- repeats) for the spans of one flush, to otel.trace_summaries: a trace
-- stored before gets the union of both. Shared by otel.summarize_traces()
-- and, on Citus, otel.summarize_spans_on_workers(), whose queries differ.
begin
    execute format($sql$
        insert into otel.trace_summaries as s (
            trace_id, start_time, end_time, duration_ms, root_service, root_name,
            span_count, error_count, services)
        select t.trace_id, t.start_time, t.end_time, extract(epoch from t.end_time - t.start_time) * 1000,
               t.root_service, t.root_name, t.span_count, t.error_count,
               array(select distinct x from unnest(t.services) as x order by x)
          from (%s) as t (trace_id, start_time, end_time, root_service, root_name, span_count, error_count, services)
        on conflict (trace_id) do update set
            start_time = least(s.start_time, excluded.start_time),
            end_time = greatest(s.end_time, excluded.end_time),
            duration_ms = extract(epoch from greatest(s.end_time, excluded.end_time)
                                             - least(s.start_time, excluded.start_time)) * 1000,
            root_service = coalesce(excluded.root_service, s.root_service),
            root_name = coalesce(excluded.root_name, s.root_name),
            span_count = s.span_count + excluded.span_count,
            error_count = s.error_count + excluded.error_count,
            services = array(select distinct x from unnest(s.services || excluded.services) as x order by x)
    $sql$, per_trace);
end
$$;
comment on function otel.upsert_trace_summaries(text) is
    'Adds the per-trace figures of a flush''s spans to otel.trace_summaries; internal to otel.flush()';

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
-- database's collation rules.
begin
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

create or replace function otel.summarize_spans_on_workers()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- otel.summarize_traces() for otel.flush_spans, in the form Citus pushes
-- down to each shard as it is: grouped by the plain trace id (a collated
-- one is not the distribution column to Citus), every subquery read once,
-- and the earliest root span of every trace found by one sort of the root
-- spans (on one node a second pass over the traces with several roots).
begin
    perform otel.upsert_trace_summaries($query$
        select p.trace_id, p.start_time, p.end_time, r.service_name, r.name, p.span_count, p.error_count, p.services
          from (select trace_id, min(start_time) as start_time, max(end_time) as end_time, count(*) as span_count,
                       count(*) filter (where status_code = 'ERROR') as error_count,
                       otel.text_array_agg(service_name) filter (where service_name is not null) as services
                  from otel.flush_spans
                 where err is null
                 group by trace_id) as p
          left join (select distinct on (trace_id) trace_id, service_name, name
                       from otel.flush_spans
                      where err is null and parent_span_id is null
                      order by trace_id, start_time, n) as r on r.trace_id = p.trace_id
    $query$);
end
$$;
comment on function otel.summarize_spans_on_workers() is
    'Adds the spans of otel.flush_spans to otel.trace_summaries on the workers; internal to otel.flush()';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0006", "otel.summarize_traces"))
    execute_sql(released_routine("0053", "otel.summarize_spans_on_workers"))
    execute_sql("drop function otel.upsert_trace_summaries(text);")
