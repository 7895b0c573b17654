"""Baseline: the schema as released at revision 0004 (revisions 0001 to 0004, squashed).

A database at 0004 moves up through the revisions above this one. A new
database is built from sql/ (migrations/schema.py), so this revision keeps
no copy of the schema: its upgrade builds 0004 from sql/ and the downgrades
of the newer revisions. A database still at 0001, 0002 or 0003 first
upgrades to 0004 with a release that has those revisions.

Revision ID: 0004
Revises:
"""

from migrations.schema import build_revision, execute_sql

revision = "0004"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    build_revision(revision)


def downgrade() -> None:
    # This database's pg_cron jobs go first, wherever pg_cron lives; without
    # pg_cron (or dblink to reach it) there are none. The roles stay: they
    # belong to the cluster, and other databases may use them.
    execute_sql("""
        do $$
        begin
            perform otel.unschedule_flush();
        exception when feature_not_supported then
            raise notice 'otel_db: no pg_cron jobs removed: %', sqlerrm;
        end
        $$;
        drop schema otel cascade;
    """)
