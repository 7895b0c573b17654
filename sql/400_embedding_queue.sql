-- The embedding queue: span signatures waiting for a vector, in the style
-- of pgai's vectorizer. A worker (otel-db embed) claims a batch with
-- `for update skip locked`, embeds it outside the database and writes the
-- vectors back in the same transaction; a batch that fails counts an
-- attempt and waits, longer after each failure, until it has failed
-- otel.embedding_max_attempts() times and stays failed (visible in
-- otel.embedding_status and span_signatures.last_error).

create or replace function otel.embedding_max_attempts()
returns integer
language sql immutable parallel safe
as $$
    select 5
$$;
comment on function otel.embedding_max_attempts() is
    'How many failed attempts a signature gets before it counts as failed: 5';

create or replace function otel.embedding_retry_delay(attempts integer)
returns interval
language sql immutable parallel safe
as $$
    -- 30 s after the first failure, doubling, at most an hour.
    select least(interval '30 seconds' * power(2, greatest(attempts - 1, 0)), interval '1 hour')
$$;
comment on function otel.embedding_retry_delay(integer) is
    'How long a signature waits after its n-th failed attempt: 30 s, doubling, at most 1 hour';

create or replace function otel.claim_signatures(batch_size integer, model text)
returns table (id bigint, text text)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Locks up to batch_size signatures that need a vector from model (never
-- embedded, or embedded by the fallback while model is a real one), oldest
-- first, skipping those waiting after a failure. The locks last until the
-- caller's transaction ends and other workers skip them: no signature is
-- embedded twice at once.
begin
    if batch_size is null or batch_size not between 1 and 10000 then
        raise exception 'batch_size must be between 1 and 10000, got %', coalesce(batch_size::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if model is null or model = '' then
        raise exception 'model must name the embedding model, e.g. all-MiniLM-L6-v2'
            using errcode = 'invalid_parameter_value';
    end if;
    return query
        select s.id, s.text
          from otel.span_signatures as s
         where (s.embedding is null or s.embedding_model = 'fallback-hash')
           and (s.embedding is null or model <> 'fallback-hash')
           and s.attempts < otel.embedding_max_attempts()
           and (s.next_attempt_at is null or s.next_attempt_at <= now())
         order by s.id
         limit batch_size
           for update of s skip locked;
end
$$;
comment on function otel.claim_signatures(integer, text) is
    'Locks a batch of signatures that need a vector from model, skipping rows other workers hold; call it in the transaction that stores the vectors';

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

create or replace function otel.embedding_failed(ids bigint[], error text)
returns void
language plpgsql
as $$
-- Written for Citus too, where otel.span_signatures is a reference table
-- (otel.distribute()): PL/pgSQL, as Citus plans no statement of an SQL
-- function that takes parameters, and the next attempt's time in epoch
-- seconds, as it rejects a stable operator (timestamptz + interval) over
-- a column in an update.
begin
    update otel.span_signatures as s
       set attempts = s.attempts + 1,
           last_error = left(coalesce(embedding_failed.error, 'unknown error'), 2000),
           next_attempt_at = to_timestamp(
               extract(epoch from now()) + extract(epoch from otel.embedding_retry_delay(s.attempts + 1)))
     where s.id = any (embedding_failed.ids) and (s.embedding is null or s.embedding_model = 'fallback-hash');
end
$$;
comment on function otel.embedding_failed(bigint[], text) is
    'Records a failed attempt on signatures: the error, and when to try again';

create or replace view otel.embedding_status as
select count(*) filter (where embedding is null and attempts < otel.embedding_max_attempts()) as pending,
       count(*) filter (where embedding is null and attempts between 1 and otel.embedding_max_attempts() - 1)
           as retrying,
       count(*) filter (where embedding is null and attempts >= otel.embedding_max_attempts()) as failed,
       count(*) filter (where embedding is not null and embedding_model <> 'fallback-hash') as embedded,
       count(*) filter (where embedding_model = 'fallback-hash') as fallback,
       min(created_at) filter (where embedding is null and attempts < otel.embedding_max_attempts())
           as oldest_pending_at,
       max(embedded_at) as last_embedded_at
  from otel.span_signatures;
comment on view otel.embedding_status is
    'The embedding queue at a glance: pending (incl. retrying), failed (out of attempts), embedded by the model, embedded by the fallback';
