"""otel.distribute() lets otel_reader and otel_admin log in on the workers.

Citus reaches the shards as the current role: the query API, which reads as
otel_reader, failed on a distributed database with "role otel_reader is not
permitted to log in". The roles may now log in on the workers only (not on
the coordinator); who can connect is the workers' pg_hba.conf. Run again,
otel.distribute() does this for a worker added since.

Revision ID: 0044
Revises: 0043
"""

from migrations.schema import execute_sql, released_routine

revision = "0044"
down_revision = "0043"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.distribute(shard_count integer default 32)
returns setof text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- otel.traces and otel.trace_summaries are distributed by trace_id in
-- shard_count co-located shards, so that a trace's spans and its summary
-- are on one worker and a lookup by trace id is routed there; the span
-- signatures and the catalog of operations, which every worker joins, are
-- reference tables (a copy on each node). The staging tables, the
-- dead-letter queue, logs and metrics stay on the coordinator: staged rows
-- may lack the trace id that would place them. Citus reads and writes
-- the shards as the current role: otel_reader and otel_admin, which
-- cannot log in on the coordinator, may on the workers (only there; who
-- can connect is then the workers' pg_hba.conf). Returns what it changed;
-- run again, it changes nothing but what a new worker lacks.
declare
    target record;
    role_name text;
    refused text;
begin
    if not exists (select from pg_extension where extname = 'citus') then
        raise exception 'otel.distribute() needs Citus in this database: create extension citus, on a coordinator with workers'
            using errcode = 'feature_not_supported', hint = 'See docs/scale-out.md.';
    end if;
    if shard_count is null or shard_count not between 1 and 64000 then
        raise exception 'shard_count must be between 1 and 64000, got %', coalesce(shard_count::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    for target in
        select * from (values (1, 'otel.traces'::regclass, 'distributed', null::regclass),
                              (2, 'otel.trace_summaries'::regclass, 'distributed', 'otel.traces'::regclass),
                              (3, 'otel.span_signatures'::regclass, 'reference', null),
                              (4, 'otel.operation_catalog'::regclass, 'reference', null)) as t (n, relation, layout, colocate_with)
         order by n
    loop
        continue when otel.distributed(target.relation);
        if target.layout = 'reference' then
            perform create_reference_table(target.relation);
        elsif target.colocate_with is null then
            perform create_distributed_table(target.relation, 'trace_id', shard_count => distribute.shard_count);
        else
            perform create_distributed_table(target.relation, 'trace_id', colocate_with => target.colocate_with::text);
        end if;
        return next format('%s: %s', target.relation, target.layout);
    end loop;
    foreach role_name in array array['otel_reader', 'otel_admin'] loop
        continue when not exists (
            select from run_command_on_workers(format('select rolcanlogin from pg_roles where rolname = %L', role_name))
             where result is distinct from 't');
        select string_agg(format('%s:%s: %s', w.nodename, w.nodeport, w.result), '; ') into refused
          from run_command_on_workers(
                   -- on each worker alone: Citus would pass it on to every node
                   format('set citus.enable_alter_role_propagation to off; alter role %I login', role_name)) as w
         where not w.success;
        if refused is not null then
            raise exception 'could not let % log in on the workers: %', role_name, refused;
        end if;
        return next format('%s: may log in on the workers', role_name);
    end loop;
end
$$;
comment on function otel.distribute(integer) is
    'On a Citus coordinator, after `alembic upgrade head`: distributes otel.traces and otel.trace_summaries by trace_id in shard_count (default 32) co-located shards, and makes otel.span_signatures and otel.operation_catalog reference tables; lets otel_reader and otel_admin log in on the workers (Citus reaches the shards as the current role); returns what it changed (nothing when run again, unless a worker was added). Staging, dead letters, logs and metrics stay on the coordinator';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0039", "otel.distribute"))
