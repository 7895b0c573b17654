"""similar_traces(trace_id) searches by where the trace failed, not by the mean of its error spans.

An error propagates up through spans that say little (HTTP 500, 502); the
mean of all error spans' vectors resembled those, and found traces that
failed anyhow. The query is now the root-cause spans otel.root_cause()
ranks first (at most three of the best score), each searched on its own; a
trace keeps its best-matching span. Traces without errors are still
searched by their root span.

Revision ID: 0019
Revises: 0018
"""

from migrations.schema import execute_sql, released_routine

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.similar_traces(
    of_trace text, k integer default 10, min_similarity double precision default 0.85,
    service text default null, since timestamptz default null)
returns table (
    trace_id text, span_id text, service_name text, name text, status_code text, status_message text,
    duration_ms double precision, start_time timestamptz, attributes jsonb, similarity double precision)
language plpgsql stable
set search_path = pg_catalog, public, pg_temp
as $$
-- (The parameter is of_trace: trace_id names a result column.)
-- The query is where the trace's failure originates: the spans otel.root_cause()
-- ranks first (those of its best score, at most three), or its root span
-- (its first span when the root is missing) when nothing failed. An error
-- propagates through spans that say little (HTTP 500, 502): searching by
-- them would find traces that failed anyhow, not for the same reason. Each
-- query span's signature is searched on its own, and a trace keeps its
-- best-matching span over all of them: the mean of unrelated vectors would
-- resemble none. Model vectors win over fallback ones.
declare
    wanted text := lower(trim(of_trace));
    first_start timestamptz;
    last_end timestamptz;
    telling bigint[];
    model text;
begin
    if wanted is null or wanted !~ '^[0-9a-f]{32}$' then
        raise exception 'trace_id must be a trace id (32 hex digits), got %', otel.argument_text(of_trace)
            using errcode = 'invalid_parameter_value',
                  hint = 'to search by an embedding, cast it: otel.similar_traces(''[…]''::vector)';
    end if;
    perform otel.check_similarity_arguments(k, min_similarity);
    -- The trace's time range confines the root span's lookup to its
    -- partitions (otel.root_cause() reads it the same way).
    select s.start_time, s.end_time into first_start, last_end
      from otel.trace_summaries as s
     where s.trace_id = wanted;
    if not found then
        return;
    end if;
    select array_agg(distinct t.signature_id) into telling
      from (select c.span_id, c.start_time
              from (select r.span_id, r.start_time, r.rank, r.score, max(r.score) over () as best
                      from otel.root_cause(wanted) as r) as c
             where c.score = c.best
             order by c.rank
             limit 3) as c
      join otel.traces as t
        on t.trace_id = wanted and t.span_id = c.span_id and t.start_time = c.start_time;
    if telling is null then
        select array[t.signature_id] into telling
          from otel.traces as t
         where t.trace_id = wanted and t.start_time between first_start and last_end
         order by t.parent_span_id is not null, t.start_time
         limit 1;
    end if;
    select g.embedding_model into model
      from otel.span_signatures as g
     where g.id = any (telling) and g.embedding is not null
     order by g.embedding_model = 'fallback-hash', g.embedding_model
     limit 1;
    if model is null then
        return;  -- the signatures are not embedded yet
    end if;
    return query
        select best.*
          from (select distinct on (hit.trace_id) hit.*
                  from otel.span_signatures as g
                 cross join lateral otel.similar_traces_search(
                           g.embedding, k, min_similarity, service, since, model, wanted) as hit
                 where g.id = any (telling) and g.embedding_model = model
                 order by hit.trace_id, hit.similarity desc, hit.start_time desc) as best
         order by best.similarity desc, best.start_time desc
         limit k;
end
$$;
comment on function otel.similar_traces(text, integer, double precision, text, timestamptz) is
    'Traces that resemble the given one where it failed: its root-cause spans (otel.root_cause(), at most three of the best score; its root span when nothing failed) are the query, each searched on its own; one row per trace, its best-matching span, best first, never the trace itself; empty for an unknown trace or one not embedded yet';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0007", "otel.similar_traces(text, integer, double precision, text, timestamptz)"))
