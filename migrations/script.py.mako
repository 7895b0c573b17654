"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
"""

from migrations.schema import execute_sql

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same change as in sql/, for a database at the revision below.
    execute_sql("""
""")


def downgrade() -> None:
    # The exact inverse: old routine texts, old grants.
    execute_sql("""
""")
