"""Alembic environment: raw SQL migrations for the `otel` schema.

The version table lives in `public` (not in `otel`), so that
`alembic downgrade base` can drop the whole schema.
"""

import os

from alembic import context
from sqlalchemy import create_engine, pool

from migrations.sqlfiles import sqlalchemy_url

VERSION_TABLE = "otel_db_alembic_version"

config = context.config


def resolve_url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("OTEL_STORAGE_CONNECTION_STRING")
        or config.get_main_option("sqlalchemy.url")
    )
    return sqlalchemy_url(url)


def run_offline() -> None:
    context.configure(
        url=resolve_url(),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        version_table=VERSION_TABLE,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(resolve_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
