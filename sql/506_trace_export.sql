-- A whole trace as stored, for exports that carry every field of a span
-- (the Jaeger-compatible query API of `otel-db serve`: resource attributes
-- become a process, scope and flags become tags).

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
