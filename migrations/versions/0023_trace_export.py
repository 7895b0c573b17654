"""otel.trace_export(trace_id): every stored column of a trace's spans, for the Jaeger-compatible query API.

otel.trace_spans() leaves out the resource attributes, scope, trace state
and flags, which a Jaeger process and its tags need. Readers may call it
(otel_reader, otel_admin).

Revision ID: 0023
Revises: 0022
"""

from migrations.schema import execute_sql

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

UPGRADE = r"""
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
    select s.start_time, s.end_time into first_start, last_end
      from otel.trace_summaries as s
     where s.trace_id = wanted;
    if not found then
        return;
    end if;
    return query
        select t.*
          from otel.traces as t
         where t.trace_id = wanted and t.start_time between first_start and last_end
         order by t.start_time, t.span_id;
end
$$;
comment on function otel.trace_export(text) is
    'Every stored column of every span of a trace, by start time; no rows for an unknown trace';

grant execute on function otel.trace_export(text) to otel_reader, otel_admin;
"""

DOWNGRADE = r"""
drop function otel.trace_export(text);
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
