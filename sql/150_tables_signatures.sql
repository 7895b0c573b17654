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

-- Cosine distance on the signatures' vectors (pgvector defaults: m = 16,
-- ef_construction = 64); otel.similar_traces() sets ef_search.
create index span_signatures_embedding_idx on otel.span_signatures using hnsw (embedding vector_cosine_ops);
-- The queue: signatures without a vector, or with a fallback one.
create index span_signatures_queue_idx on otel.span_signatures (id)
    where embedding is null or embedding_model = 'fallback-hash';
