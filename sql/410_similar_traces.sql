-- otel.similar_traces(): the traces whose spans mean the same as a query,
-- by cosine similarity of span signatures on the HNSW index.

create or replace function otel.check_similarity_arguments(k integer, min_similarity double precision)
returns void
language plpgsql immutable
as $$
begin
    if k is null or k not between 1 and 1000 then
        raise exception 'k must be between 1 and 1000, got %', coalesce(k::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if min_similarity is null or min_similarity not between -1 and 1 or min_similarity = 'NaN' then
        raise exception 'min_similarity must be a cosine similarity between -1 and 1, got %',
                        coalesce(min_similarity::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
end
$$;
comment on function otel.check_similarity_arguments(integer, double precision) is
    'Raises 22023 unless k is 1..1000 and min_similarity is -1..1';

create or replace function otel.similar_traces_search(
    query vector, k integer, min_similarity double precision, service text, since timestamptz,
    model text, excluded_trace text)
returns table (
    trace_id text, span_id text, service_name text, name text, status_code text, status_message text,
    duration_ms double precision, start_time timestamptz, attributes jsonb, similarity double precision)
language plpgsql stable
set search_path = pg_catalog, public, pg_temp
-- strict_order: the scan goes on past ef_search in exact distance order,
-- so the loop below may stop at the first signature under min_similarity
-- and filters on spans (service, since) cost no recall.
set hnsw.iterative_scan = strict_order
set hnsw.ef_search = 40
as $$
-- Signatures nearest first; for each, its newest spans, one per trace not
-- seen yet, until k traces. A trace's row is its span with the most
-- similar signature. A signature's spans are read in two time ranges:
-- after the newest cold (columnar) partition, where each partition's index
-- finds the newest at once, then before it, where cold partitions, which
-- have no index, are read whole; the second only when the first did not
-- give k traces. Without cold partitions the second range is empty.
declare
    signature record;
    span record;
    seen text[] := '{}';
    cold_until timestamptz := coalesce(
        (select max(p.day + 1)::timestamp at time zone 'UTC' from otel.daily_partitions('traces') as p where p.columnar),
        '-infinity');
    range_start timestamptz;
    range_end timestamptz;
begin
    <<signatures>>
    for signature in
        select s.id, 1 - (s.embedding <=> query) as similarity
          from otel.span_signatures as s
         where s.embedding_model = model
         order by s.embedding <=> query
         limit 20000  -- what hnsw.max_scan_tuples lets an iterative scan visit by default
    loop
        exit when signature.similarity < min_similarity;
        for range_start, range_end in values (cold_until, 'infinity'::timestamptz), ('-infinity', cold_until) loop
            continue when range_start >= range_end;  -- no cold partitions: nothing before them
            continue when since >= range_end;  -- all of the range is before since
            for span in
                select t.trace_id, t.span_id, t.service_name, t.name, t.status_code, t.status_message,
                       t.duration_ms, t.start_time, t.attributes
                  from otel.traces as t
                 where t.signature_id = signature.id
                   and t.start_time >= range_start and t.start_time < range_end
                   and (service is null or t.service_name = service)
                   and (since is null or t.start_time >= since)
                   and t.trace_id is distinct from excluded_trace
                 order by t.start_time desc, t.trace_id, t.span_id  -- ties in one order, on one node or many
            loop
                continue when span.trace_id = any (seen);
                seen := seen || span.trace_id;
                trace_id := span.trace_id;
                span_id := span.span_id;
                service_name := span.service_name;
                name := span.name;
                status_code := span.status_code;
                status_message := span.status_message;
                duration_ms := span.duration_ms;
                start_time := span.start_time;
                attributes := span.attributes;
                similarity := signature.similarity;
                return next;
                exit signatures when cardinality(seen) >= k;
            end loop;
        end loop;
    end loop;
end
$$;
comment on function otel.similar_traces_search(vector, integer, double precision, text, timestamptz, text, text) is
    'The search behind both otel.similar_traces() overloads (arguments already checked)';

create or replace function otel.similar_traces(
    query vector, k integer default 10, min_similarity double precision default 0.85,
    service text default null, since timestamptz default null, model text default 'all-MiniLM-L6-v2')
returns table (
    trace_id text, span_id text, service_name text, name text, status_code text, status_message text,
    duration_ms double precision, start_time timestamptz, attributes jsonb, similarity double precision)
language plpgsql stable
set search_path = pg_catalog, public, pg_temp
as $$
begin
    if query is null then
        raise exception 'query must be a vector of 384 dimensions, got null' using errcode = 'invalid_parameter_value';
    end if;
    if vector_dims(query) <> 384 then
        raise exception 'query has % dimensions; span signatures are embedded in 384 (all-MiniLM-L6-v2)',
                        vector_dims(query)
            using errcode = 'invalid_parameter_value';
    end if;
    if vector_norm(query) = 0 then
        raise exception 'query is the zero vector, which has no direction to compare by cosine: embed some text'
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_similarity_arguments(k, min_similarity);
    if model is null or model = '' then
        raise exception 'model must name the model that embedded the query, e.g. all-MiniLM-L6-v2'
            using errcode = 'invalid_parameter_value';
    end if;
    return query select * from otel.similar_traces_search(query, k, min_similarity, service, since, model, null);
end
$$;
comment on function otel.similar_traces(vector, integer, double precision, text, timestamptz, text) is
    'One row per trace, best first: trace_id, span_id, service_name, name, status_code, status_message, duration_ms, start_time, attributes, similarity (cosine, 1 = same direction). The row is the trace''s span with the most similar signature; ties go to newer spans. Only signatures embedded by `model` are compared, so vectors of the fallback embedder (`''fallback-hash''`) never meet model vectors.';

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
    select r.first_start, r.last_end into first_start, last_end from otel.trace_time_range(wanted) as r;
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
                 order by hit.trace_id, hit.similarity desc, hit.start_time desc, hit.span_id) as best
         order by best.similarity desc, best.start_time desc, best.trace_id
         limit k;
end
$$;
comment on function otel.similar_traces(text, integer, double precision, text, timestamptz) is
    'As the vector overload, for the trace `of_trace` (the parameter cannot be called `trace_id`, a result column). The query is where the trace failed: the spans `otel.root_cause()` ranks first (those of its best score, at most three), each searched on its own, a trace scored by its best-matching span and that span its row; when nothing failed, its root span. An error that travelled up through generic spans (HTTP 500, 502) thus finds traces that failed for the same reason, not any trace the gateway answered 502. The trace itself is never returned; an unknown trace, or one not embedded yet, gives no rows; text that is not 32 hex digits raises 22023 (a vector must be cast: `''[…]''::vector`)';
