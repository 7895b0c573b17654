"""otel.similar_traces(trace_id) and the storing of embeddings work on Citus.

Joined with the spans, otel.root_cause() ran where they are kept; and the
search, joined with the signatures (a reference table), ran where those
are kept: on Citus a worker, which cannot query the shards itself ("cannot
execute a distributed query from a query on a shard"). The causes, their
signatures and the query vectors are now looked up in statements of their
own, and the search runs over the vectors. The same answers on one node.

otel.store_embeddings() updated the signatures from the worker's temporary
table, which Citus cannot join with a reference table; it now updates them
from arrays of ids and vectors, the same single update.

Revision ID: 0040
Revises: 0039
"""

from migrations.schema import execute_sql, released_comment, released_routine

revision = "0040"
down_revision = "0039"
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
    causes text[];
    telling bigint[];
    model text;
    queries vector[];
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
    -- The causes, then their signatures, in two statements: joined with the
    -- spans, otel.root_cause() would run where they are kept, which on
    -- Citus is a worker that cannot query the shards itself.
    select array_agg(c.span_id) into causes
      from (select r.span_id
              from (select r.span_id, r.rank, r.score, max(r.score) over () as best
                      from otel.root_cause(wanted) as r) as r
             where r.score = r.best
             order by r.rank
             limit 3) as c;
    select array_agg(distinct t.signature_id) into telling
      from otel.traces as t
     where t.trace_id = wanted and t.span_id = any (causes) and t.start_time between first_start and last_end;
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
    -- The query vectors first, in a statement of their own: searched from a
    -- join with the signatures, the search would run where those are kept,
    -- which on Citus is a worker that cannot query the spans' shards.
    select array_agg(g.embedding order by g.id) into queries
      from otel.span_signatures as g
     where g.id = any (telling) and g.embedding_model = model;
    return query
        select best.*
          from (select distinct on (hit.trace_id) hit.*
                  from unnest(queries) as q (embedding)
                 cross join lateral otel.similar_traces_search(
                           q.embedding, k, min_similarity, service, since, model, wanted) as hit
                 order by hit.trace_id, hit.similarity desc, hit.start_time desc) as best
         order by best.similarity desc, best.start_time desc
         limit k;
end
$$;
comment on function otel.similar_traces(text, integer, double precision, text, timestamptz) is
    'As the vector overload, for the trace `of_trace` (the parameter cannot be called `trace_id`, a result column). The query is where the trace failed: the spans `otel.root_cause()` ranks first (those of its best score, at most three), each searched on its own, a trace scored by its best-matching span and that span its row; when nothing failed, its root span. An error that travelled up through generic spans (HTTP 500, 502) thus finds traces that failed for the same reason, not any trace the gateway answered 502. The trace itself is never returned; an unknown trace, or one not embedded yet, gives no rows; text that is not 32 hex digits raises 22023 (a vector must be cast: `''[…]''::vector`)';

create or replace function otel.store_embeddings(model text)
returns bigint
language plpgsql
set search_path = pg_catalog, public, pg_temp  -- public: pgvector's type
as $$
-- Writes the vectors a worker copied into its temporary table
-- pg_temp.otel_embeddings (id bigint, embedding real[]) in one update, and
-- returns how many signatures it stored.
declare
    bad record;
    stored bigint;
    ids bigint[];
    vectors vector[];
begin
    if model is null or model = '' then
        raise exception 'model must name the embedding model, e.g. all-MiniLM-L6-v2'
            using errcode = 'invalid_parameter_value';
    end if;
    select e.id, cardinality(e.embedding) as dimensions into bad
      from pg_temp.otel_embeddings as e
     where cardinality(e.embedding) is distinct from 384
     limit 1;
    if found then
        raise exception 'the embedding of signature % has % dimensions; otel.span_signatures holds 384',
                        bad.id, coalesce(bad.dimensions, 0)
            using errcode = 'invalid_parameter_value';
    end if;
    -- From arrays rather than the temporary table: Citus updates a
    -- reference table (a copy on every node) from values, not from a
    -- table only this session has.
    select array_agg(e.id), array_agg(e.embedding::vector(384)) into ids, vectors
      from pg_temp.otel_embeddings as e;
    update otel.span_signatures as s
       set embedding = v.embedding, embedding_model = model, embedded_at = now(),
           last_error = null, next_attempt_at = null
      from unnest(ids, vectors) as v (id, embedding)
     where s.id = v.id;
    get diagnostics stored = row_count;
    return stored;
end
$$;
comment on function otel.store_embeddings(text) is
    'Stores the vectors in pg_temp.otel_embeddings (id, embedding real[384]) on their signatures, in one update';
"""

DOWNGRADE = r"""
create or replace function otel.store_embeddings(model text)
returns bigint
language plpgsql
set search_path = pg_catalog, public, pg_temp  -- public: pgvector's type
as $$
-- Writes the vectors a worker copied into its temporary table
-- pg_temp.otel_embeddings (id bigint, embedding real[]) in one update, and
-- returns how many signatures it stored.
declare
    bad record;
    stored bigint;
begin
    if model is null or model = '' then
        raise exception 'model must name the embedding model, e.g. all-MiniLM-L6-v2'
            using errcode = 'invalid_parameter_value';
    end if;
    select e.id, cardinality(e.embedding) as dimensions into bad
      from pg_temp.otel_embeddings as e
     where cardinality(e.embedding) is distinct from 384
     limit 1;
    if found then
        raise exception 'the embedding of signature % has % dimensions; otel.span_signatures holds 384',
                        bad.id, coalesce(bad.dimensions, 0)
            using errcode = 'invalid_parameter_value';
    end if;
    update otel.span_signatures as s
       set embedding = e.embedding::vector(384), embedding_model = model, embedded_at = now(),
           last_error = null, next_attempt_at = null
      from pg_temp.otel_embeddings as e
     where s.id = e.id;
    get diagnostics stored = row_count;
    return stored;
end
$$;
comment on function otel.store_embeddings(text) is
    'Stores the vectors in pg_temp.otel_embeddings (id, embedding real[384]) on their signatures, in one update';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    routine = "otel.similar_traces(text, integer, double precision, text, timestamptz)"
    execute_sql(released_routine("0019", routine))
    execute_sql(released_comment("0027", routine))
    execute_sql(DOWNGRADE)
