"""On Citus, a flush that cannot truncate a staging table (a writer holds it) claims its rows on the workers.

otel.flush_claim() takes the committed rows of a staging table a writer
holds with delete … returning; on a table Citus distributes that
statement pulled every row through the coordinator. It now runs shard by
shard on the workers (run_command_on_colocated_placements()), each
staging shard into the claim shard beside it.

Revision ID: 0055
Revises: 0054
"""

from migrations.schema import execute_sql, released_routine

revision = "0055"
down_revision = "0054"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.flush_claim()
returns text[]
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- The first, short transaction of a flush: every committed staging row
-- moves to its claim table (otel.claimed_*). When no writer holds a staging
-- table (lock taken with nowait, never queueing in front of writers), its
-- rows are copied and the table truncated: its file shrinks to nothing,
-- with no dead tuples left for vacuum. Otherwise delete … returning takes
-- the committed rows, leaving uncommitted ones for the next flush, and
-- vacuum reclaims the space. Returns the staging tables it truncated.
declare
    kind text;
    truncated text[] := '{}';
    staging regclass;
    refused text;
begin
    perform otel.take_flush_lock();
    foreach kind in array array['otlp', 'traces', 'logs', 'metrics'] loop
        begin
            -- Copy-and-truncate is only right when this statement's snapshot
            -- sees every committed row: read committed, not a snapshot taken
            -- before the flush lock was granted.
            if current_setting('transaction_isolation') <> 'read committed' then
                raise lock_not_available;
            end if;
            execute format('lock table otel.%I in access exclusive mode nowait', kind || '_staging');
            execute format('insert into otel.%I select * from otel.%I', 'claimed_' || kind, kind || '_staging');
            execute format('truncate otel.%I', kind || '_staging');
            truncated := truncated || (kind || '_staging');
        exception when lock_not_available then
            staging := format('otel.%I', kind || '_staging');
            if not otel.distributed(staging) then
                execute format('with claimed as (delete from %s returning *) insert into otel.%I select * from claimed',
                               staging, 'claimed_' || kind);
                continue;
            end if;
            -- On Citus, shard by shard on the workers, each into the claim
            -- shard beside it (as one statement Citus would pull every row
            -- through the coordinator). Each shard's move commits at once,
            -- on its own: a row is in one table or the other either way, and
            -- this flush takes the claim tables' rows in its next transaction.
            select string_agg(format('%s:%s: %s', c.nodename, c.nodeport, c.result), '; ') into refused
              from run_command_on_colocated_placements(
                       staging, format('otel.%I', 'claimed_' || kind),
                       'with claimed as (delete from %s returning *) insert into %s select * from claimed') as c
             where not c.success;
            if refused is not null then
                raise exception 'could not claim the rows of % on every worker: %', staging, refused;
            end if;
        end;
    end loop;
    return truncated;
end
$$;
comment on function otel.flush_claim() is
    'Moves every committed staging row to the claim tables, truncating the staging tables no writer holds; the first transaction of otel.flush()';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0008", "otel.flush_claim"))
