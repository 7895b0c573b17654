"""Large values are compressed with lz4 instead of pglz: staging, the final tables and the flush's working tables.

A value PostgreSQL compresses (a row over about 2 kB: stack traces in
exception events, long attribute values, log bodies) was compressed with
pglz, at COPY into staging and again when the flush typed it. lz4 does it in
half the time for about a tenth more bytes (`python -m bench
toast_compression`). The columns that can hold such values get
`compression lz4` (existing partitions too: a new partition takes its
parent's setting, an existing one does not follow a change of it), and
otel.flush_process() and otel.retry_dlq() compress their working tables
with lz4, since the flush stores a compressed value as it is. Values already
stored keep their pglz compression; both read the same. Only the catalog
changes: the upgrade rewrites nothing.

Revision ID: 0036
Revises: 0035
"""

from migrations.schema import execute_sql

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

LARGE_COLUMNS = {
    "traces": ("status_message", "attributes", "resource_attributes", "events", "links"),
    "logs": ("body", "attributes", "resource_attributes"),
    "metrics": (
        "bucket_counts",
        "explicit_bounds",
        "quantiles",
        "exponential",
        "exemplars",
        "labels",
        "resource_attributes",
    ),
    "traces_staging": ("status_message", "attributes", "resource_attributes", "events", "links"),
    "logs_staging": ("body", "attributes", "resource_attributes"),
    "metrics_staging": (
        "bucket_counts",
        "explicit_bounds",
        "quantiles",
        "exponential",
        "exemplars",
        "labels",
        "resource_attributes",
    ),
}
PARTITIONED = ("traces", "logs", "metrics")
WORKING_TABLES = ("function otel.flush_process(timestamptz, text[])", "procedure otel.retry_dlq(integer)")


def set_compression(method: str) -> None:
    """Every large column of the tables, and of each existing partition of the partitioned ones, to `method`."""
    for table, columns in LARGE_COLUMNS.items():
        changes = ", ".join(f"alter column {column} set compression {method}" for column in columns)
        execute_sql(f"alter table otel.{table} {changes};")
        if table in PARTITIONED:
            execute_sql(f"""
                do $$
                declare
                    partition regclass;
                begin
                    for partition in
                        select i.inhrelid::regclass from pg_inherits as i where i.inhparent = 'otel.{table}'::regclass
                    loop
                        execute format('alter table %s {changes}', partition);
                    end loop;
                end
                $$;
            """)


def upgrade() -> None:
    set_compression("lz4")
    for routine in WORKING_TABLES:
        execute_sql(f"alter {routine} set default_toast_compression = 'lz4';")


def downgrade() -> None:
    set_compression("default")
    for routine in WORKING_TABLES:
        execute_sql(f"alter {routine} reset default_toast_compression;")
