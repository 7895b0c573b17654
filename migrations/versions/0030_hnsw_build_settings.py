"""The signatures' HNSW index is built with m = 32 and ef_construction = 128 instead of pgvector's defaults.

Over a million clustered vectors the default graph (m = 16,
ef_construction = 64) let otel.similar_traces() find 83 to 88 % of the true
10 nearest at its ef_search (40), and no ef_search up to 400 reached 95 %
every time: the graph, not the search, was the limit. With m = 32 and
ef_construction = 128 recall@10 is 0.95 at ef_search 40 and 1.0 at 100; the
build takes 1.8 times as long (596 s against 335 s for 1M vectors on two
cores) and the index 4 % more space (`python -m bench.scale --hnsw-sweep`).

The upgrade rebuilds the index, holding otel.span_signatures' lock while it
builds: a store has a few thousand signatures (one per distinct span kind),
which take a second; a million would take ten minutes.

Revision ID: 0030
Revises: 0029
"""

from migrations.schema import execute_sql

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def rebuild(settings: str) -> None:
    execute_sql(
        "drop index otel.span_signatures_embedding_idx;\n"
        "create index span_signatures_embedding_idx on otel.span_signatures"
        f" using hnsw (embedding vector_cosine_ops){settings};"
    )


def upgrade() -> None:
    rebuild(" with (m = 32, ef_construction = 128)")


def downgrade() -> None:
    rebuild("")
