"""otel_reader and otel_admin may call otel.distributed().

otel.metric_names() asks it (revision 0046) whether otel.metrics is
distributed, and readers call otel.metric_names().

Revision ID: 0047
Revises: 0046
"""

from migrations.schema import execute_sql

revision = "0047"
down_revision = "0046"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_sql("grant execute on function otel.distributed(regclass) to otel_reader, otel_admin")


def downgrade() -> None:
    execute_sql("revoke execute on function otel.distributed(regclass) from otel_reader, otel_admin")
