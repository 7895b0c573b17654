"""Faster flushes: partitions found from the batch's first and last day, signatures from a table of distinct inputs and a PL/pgSQL span_signature, trace summaries from plain aggregates.

Revision ID: 0004
Revises: 0003
"""

from migrations.sqlfiles import run_frozen_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_frozen_sql("0004")


def downgrade() -> None:
    # Only function bodies changed: the previous revision's set restores them.
    run_frozen_sql("0003")
