"""otel.compare_traces() ranks a span that only recorded an exception as a failure, as otel.root_cause() does.

Revision 0032 taught the comparisons that an "exception" event fails a span
whose status is not OK, but compare_traces still gave the first rank
(failed in one trace only) to status ERROR alone: a span that recorded an
exception and left its status UNSET ranked as "both failed, differently"
beside a healthy partner, or below spans present in one trace only. It now
counts a failure as root_cause does on both sides.

Revision ID: 0035
Revises: 0034
"""

from migrations.schema import execute_sql, released_routine

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

UPGRADE = r"""
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
-- most telling first (a span fails as otel.root_cause() counts it: status
-- ERROR, or an exception event without status OK):
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
                   coalesce(x.status_a = 'ERROR' or (x.raised_a and x.status_a <> 'OK'), false) as failing_a,
                   coalesce(x.status_b = 'ERROR' or (x.raised_b and x.status_b <> 'OK'), false) as failing_b
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
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0032", "otel.compare_traces"))
