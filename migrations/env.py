"""Alembic environment: raw SQL migrations for the `otel` schema.

The version table lives in `public` (not in `otel`), so that
`alembic downgrade base` can drop the whole schema.

An upgrade that starts from an empty database does not replay the
revisions: it builds the target revision from `sql/` in one step
(migrations.schema.build_revision), so a new database gets every object
once, exactly as `sql/` defines it. See migrations/README.md.
"""

import os
from collections.abc import Callable, Iterable

from alembic import context
from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.util import CommandError
from sqlalchemy import create_engine, pool

from migrations.schema import build_revision, sqlalchemy_url

VERSION_TABLE = "otel_db_alembic_version"

config = context.config

# As Alembic types a command's plan (a stamp's holds StampSteps, checked for below).
Plan = Callable[..., Iterable[RevisionStep]]


def resolve_url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("OTEL_STORAGE_CONNECTION_STRING")
        or config.get_main_option("sqlalchemy.url")
        or f"postgresql://postgres@127.0.0.1:{os.environ.get('OTEL_DB_PGPORT', '54329')}/otel"
    )
    return sqlalchemy_url(url)


def building_fresh_databases(plan: Plan | None) -> Plan | None:
    """Wrap the command's plan: upgrades from an empty database become one build step."""
    if plan is None:
        return None

    def steps(heads: tuple[str, ...], migration_context: MigrationContext) -> list[RevisionStep]:
        planned = list(plan(heads, migration_context))
        from_empty = not heads and planned and all(isinstance(s, RevisionStep) and s.is_upgrade for s in planned)
        if not from_empty:
            return planned
        if len(context.script.get_heads()) != 1:
            # sql/ is one schema: a history that forks has no single revision to record.
            raise CommandError("otel_db's revisions must form one line: merge the heads first")
        target = planned[-1]
        assert isinstance(target, RevisionStep)
        revision = target.revision.revision

        def build_in_an_empty_database() -> None:
            if context.is_offline_mode():
                context.get_context().impl.static_output(
                    f"-- An empty database built at revision {revision} from sql/ (not an upgrade from an older one)\n"
                )
            build_revision(revision)

        target.migration_fn = build_in_an_empty_database
        return [target]

    return steps


def plan_fresh_builds() -> None:
    # Alembic has no public hook to rewrite a command's plan: wrap the one
    # the command handed to the migration context (tests/test_migrations.py
    # covers every path through it).
    migration_context = context.get_context()
    migration_context._migrations_fn = building_fresh_databases(migration_context._migrations_fn)


def run_offline() -> None:
    context.configure(
        url=resolve_url(),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        version_table=VERSION_TABLE,
        transaction_per_migration=False,
    )
    plan_fresh_builds()
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(resolve_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            version_table=VERSION_TABLE,
        )
        plan_fresh_builds()
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
