"""Faster flushes: partitions found from the batch's first and last day, signatures from a table of distinct inputs and a PL/pgSQL span_signature, a 64-bit signature input hash, trace summaries from plain aggregates hashed in memory, decoded OTLP spans typed in parallel.

Revision ID: 0004
Revises: 0003
"""

from migrations.sqlfiles import execute_sql, run_frozen_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_frozen_sql("0004")


def downgrade() -> None:
    # otel.signature_input() changed its result type; the functions
    # dropped after it are new (otel.is_hex_id() is gone, and the previous
    # revision's set makes it again); every other change is a function
    # body, which that set restores.
    execute_sql("""
        drop function otel.signature_input(text, text, text, text, text, jsonb, jsonb);
        drop function otel.exception_event_attributes(jsonb);
        drop function otel.is_absent_id(text, int);
        drop function otel.parse_flags(text);
        drop function otel.is_integer_text(text, int, boolean);
        drop function otel.type_rows_in_parallel(text);
        drop function otel.create_typed(text, text);
        drop aggregate otel.text_array_agg(text);
    """)
    run_frozen_sql("0003")
