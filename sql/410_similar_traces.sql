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
-- similar signature.
declare
    signature record;
    span record;
    seen text[] := '{}';
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
        for span in
            select t.trace_id, t.span_id, t.service_name, t.name, t.status_code, t.status_message,
                   t.duration_ms, t.start_time, t.attributes
              from otel.traces as t
             where t.signature_id = signature.id
               and (service is null or t.service_name = service)
               and (since is null or t.start_time >= since)
               and t.trace_id is distinct from excluded_trace
             order by t.start_time desc
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
    'Traces whose spans are most similar to the query embedding (384 dimensions, made by model), one row per trace (its most similar span), best first; only signatures embedded by the same model are compared';

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
-- The query is the mean of the embeddings of the trace's most telling
-- spans: its error spans when it has any, else its root span (or its first
-- span when the root is missing). Model vectors win over fallback ones.
declare
    wanted text := lower(trim(of_trace));
    telling bigint[];
    model text;
    query vector;
begin
    if wanted is null or wanted !~ '^[0-9a-f]{32}$' then
        raise exception 'trace_id must be a trace id (32 hex digits), got %', otel.argument_text(of_trace)
            using errcode = 'invalid_parameter_value',
                  hint = 'to search by an embedding, cast it: otel.similar_traces(''[…]''::vector)';
    end if;
    perform otel.check_similarity_arguments(k, min_similarity);
    with spans as (
        select t.signature_id, t.status_code, t.parent_span_id, t.start_time
          from otel.traces as t
         where t.trace_id = wanted
    )
    select coalesce(nullif(array_agg(s.signature_id) filter (where s.status_code = 'ERROR'), '{}'),
                    (array_agg(s.signature_id order by s.parent_span_id is not null, s.start_time))[1:1])
      into telling
      from spans as s;
    select g.embedding_model into model
      from otel.span_signatures as g
     where g.id = any (telling) and g.embedding is not null
     order by g.embedding_model = 'fallback-hash', g.embedding_model
     limit 1;
    if model is null then
        return;  -- an unknown trace, or one whose signatures are not embedded yet
    end if;
    select avg(g.embedding) into query
      from otel.span_signatures as g
     where g.id = any (telling) and g.embedding_model = model;
    return query select * from otel.similar_traces_search(query, k, min_similarity, service, since, model, wanted);
end
$$;
comment on function otel.similar_traces(text, integer, double precision, text, timestamptz) is
    'Traces that resemble the given one: its error spans (else its root span) are the query; one row per trace, best first, never the trace itself; empty for an unknown trace';
