-- Span signatures: one row per distinct normalised span text, embedded
-- once by the embedding worker (otel-db embed) and searched through HNSW.

create table otel.span_signatures (
    id bigint generated always as identity primary key,
    text text not null,
    text_hash uuid generated always as (md5(text)::uuid) stored unique,
    embedding vector(384),
    embedding_model text,
    embedded_at timestamptz,
    attempts integer not null default 0,
    last_error text,
    next_attempt_at timestamptz,
    created_at timestamptz not null default now(),
    span_count bigint not null default 0
);
comment on table otel.span_signatures is
    'One row per distinct normalised span text (service, kind, name, status, exception, HTTP, database, messaging): its all-MiniLM-L6-v2 embedding, the model that made it, and the embedding queue''s attempts';

-- Cosine distance on the signatures' vectors; otel.similar_traces() sets
-- ef_search (40). Over a million clustered vectors pgvector's defaults
-- (m = 16, ef_construction = 64) found 83 to 88 % of the true 10 nearest
-- at that ef_search, and no more than 93 to 96 % at any; m = 32 and
-- ef_construction = 128 find 95 %, 100 % at ef_search 100, for a build
-- 1.8 times as long and 4 % more bytes (python -m bench.scale --hnsw-sweep).
create index span_signatures_embedding_idx on otel.span_signatures using hnsw (embedding vector_cosine_ops)
    with (m = 32, ef_construction = 128);
-- The queue: signatures without a vector, or with a fallback one.
create index span_signatures_queue_idx on otel.span_signatures (id)
    where embedding is null or embedding_model = 'fallback-hash';
