"""Semantic search: the embedding queue, the HNSW index and otel.similar_traces().

Revision ID: 0002
Revises: 0001
"""

from migrations.sqlfiles import execute_sql, run_frozen_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = r"""
-- Cosine distance on the signatures' vectors (pgvector defaults: m = 16,
-- ef_construction = 64); otel.similar_traces() sets ef_search.
create index span_signatures_embedding_idx on otel.span_signatures using hnsw (embedding vector_cosine_ops);

-- The queue: signatures without a vector, or with a fallback one.
drop index otel.span_signatures_pending_idx;
create index span_signatures_queue_idx on otel.span_signatures (id)
    where embedding is null or embedding_model = 'fallback-hash';

-- A signature's newest spans first, for the search.
drop index otel.traces_signature_idx;
create index traces_signature_time_idx on otel.traces (signature_id, start_time desc);
"""

UNDO = r"""
drop view otel.embedding_status;
drop function otel.similar_traces(text, integer, double precision, text, timestamptz);
drop function otel.similar_traces(vector, integer, double precision, text, timestamptz, text);
drop function otel.similar_traces_search(vector, integer, double precision, text, timestamptz, text, text);
drop function otel.check_similarity_arguments(integer, double precision);
drop function otel.claim_signatures(integer, text);
drop function otel.store_embeddings(text);
drop function otel.embedding_failed(bigint[], text);
drop function otel.embedding_retry_delay(integer);
drop function otel.embedding_max_attempts();

drop index otel.traces_signature_time_idx;
create index traces_signature_idx on otel.traces (signature_id);
drop index otel.span_signatures_queue_idx;
create index span_signatures_pending_idx on otel.span_signatures (id) where embedding is null;
drop index otel.span_signatures_embedding_idx;
"""


def upgrade() -> None:
    execute_sql(INDEXES)
    run_frozen_sql("0002")


def downgrade() -> None:
    execute_sql(UNDO)
    run_frozen_sql("0001")
