"""The flush on Citus redoes on the coordinator only what a value, or a statement Citus would not run there, failed.

otel.flush_may_redo() also let a lock that timed out (55P03) be redone,
with a second wait and a misleading warning; now only classes 22 and 54
(a value; logged) and 0A (Citus would not run a statement on the workers;
a warning) are redone, and anything else fails the flush as on one node.
otel.flush() rolls back, rather than commits, the failed second transaction
before redoing it. otel.decode_on_workers() leaves the requests to the
coordinator while otel.flush_otlp is missing (a database upgraded after a
downgrade, before otel.distribute() runs again).

Revision ID: 0060
Revises: 0059
"""

from migrations.schema import execute_sql, released_routine

revision = "0060"
down_revision = "0059"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.decode_on_workers(staged_on_workers text[])
returns text[]
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- On Citus, where otel.distribute() spreads the staging of OTLP/JSON
-- requests over the workers: parses the claimed requests there, each into
-- otel.flush_otlp beside its claim, queues those that are not a request
-- (as otel.process_working_set() does), and decodes and types the records
-- of each kind into the kind's working table
-- (otel.insert_typed_on_workers()), beside the staged rows that
-- otel.type_on_workers() typed (the kinds of staged_on_workers). Returns
-- the kinds that got records, maybe none. Null, with nothing changed, when
-- otel.claimed_otlp is not distributed or is empty, when a working table is
-- not shaped as this release types, or when staged rows of a kind go the
-- coordinator's way (the records would be stored before them, unlike on
-- one node): otel.load_claimed() then takes the requests into the working
-- set. A request that is not JSON, or a record that defeats the decoding
-- or the casts, fails the flush, which otel.flush() then does again on the
-- coordinator (otel.flush_may_redo()), where the bad one is isolated.
declare
    kind text;
    has_rows boolean;
    decoded text[] := '{}';
begin
    if not otel.distributed('otel.claimed_otlp') or to_regclass('otel.flush_otlp') is null
       or not exists (select 1 from otel.claimed_otlp) then
        return null;  -- (otel.flush_otlp is made by otel.distribute())
    end if;
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        continue when kind = any (staged_on_workers);  -- checked by otel.type_on_workers()
        execute format('select exists (select 1 from otel.%I)', 'claimed_' || kind) into strict has_rows;
        if has_rows or not otel.working_table_fits(kind) then
            return null;
        end if;
    end loop;
    insert into otel.flush_otlp (row_id, doc)
    select row_id, otel.otlp_json_names(payload::jsonb) from otel.claimed_otlp;
    insert into pg_temp.otel_rejects
    select null, 'otlp', 'otel.otlp_staging', coalesce(c.payload, ''), 'text', otel.otlp_request_error(f.doc)
      from otel.flush_otlp as f
      join otel.claimed_otlp as c on c.row_id = f.row_id
     where otel.otlp_request_error(f.doc) is not null;
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        if otel.insert_typed_on_workers(kind, otel.decoded_rows_on_workers(kind, 'otel.flush_otlp')) > 0 then
            decoded := decoded || kind;
        end if;
    end loop;
    return decoded;
end
$$;
comment on function otel.decode_on_workers(text[]) is
    'On Citus: parses, decodes and types the claimed OTLP/JSON requests on the workers; internal to otel.flush()';

create or replace function otel.flush_may_redo(state text, message text)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Whether otel.flush() may do again on the coordinator the second
-- transaction that failed with state: on Citus, where the workers type
-- and decode the staged rows and requests, when a value defeated that
-- (classes 22 and 54; logged, as the whole batch is done twice), or when
-- Citus would not run a statement there (0A, with a warning: every flush
-- then does its work twice). Anything else (a lock that timed out, server
-- trouble, a worker out of reach) fails the flush, as on one node.
begin
    if not otel.distributed('otel.claimed_traces') or left(state, 2) not in ('22', '54', '0A') then
        return false;
    end if;
    if left(state, 2) = '0A' then
        raise warning 'otel_db: the workers could not do their part of the flush (%: %): the coordinator does it',
                      state, message;
    else
        raise log 'otel_db: a value the workers could not read (%: %): the coordinator does the flush again', state, message;
    end if;
    return true;
end
$$;
comment on function otel.flush_may_redo(text, text) is
    'Whether otel.flush() may redo on the Citus coordinator a second transaction that failed on the workers: for a value that defeated them (logged) or a statement Citus would not run there (warning); internal';

create or replace procedure otel.flush()
language plpgsql
as $$
-- Two transactions, so that a staging table is locked only while its rows
-- are copied (the first), never while they are processed (the second).
-- Hence: call it outside a transaction block, as pg_cron, psql in
-- autocommit and otel_db.Client do. A row is always in exactly one of
-- staging, claim table, final table or dead-letter queue. On Citus, a row
-- or request that fails the workers' statements (a value that defeats the
-- casts or the decoding) makes the second transaction roll back, and a
-- third does its work on the coordinator, which isolates the bad one as on
-- one node: in a transaction of its own, as Citus does not reliably take
-- up its connections to the workers again after a statement that failed
-- there was rolled back to a savepoint.
declare
    started_at timestamptz := clock_timestamp();
    truncated text[];
    redo boolean := false;
begin
    truncated := otel.flush_claim();
    commit;
    begin
        perform otel.flush_process(started_at, truncated);
    exception when others then
        if not otel.flush_may_redo(sqlstate, sqlerrm) then
            raise;
        end if;
        redo := true;
    end;
    if redo then
        rollback;  -- nothing to keep, and no commit over the connections that failed
        perform otel.flush_process(started_at, truncated, use_workers => false);
    end if;
end
$$;
comment on procedure otel.flush() is
    'Moves every row staged before it started to otel.traces, otel.logs, otel.metrics or otel.telemetry_dlq; never loses or duplicates a row; safe beside writers and another flush; records itself in otel.flush_runs. Call it outside a transaction block: it commits after claiming the staged rows (and on Citus before doing again on the coordinator what failed on the workers)';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    for routine in ("otel.decode_on_workers", "otel.flush_may_redo", "otel.flush"):
        execute_sql(released_routine("0059", routine))
