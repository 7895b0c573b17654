"""otel.distribute(): on a Citus coordinator, spans and trace summaries distributed by trace_id; the flush and maintenance work there.

After `alembic upgrade head` on a Citus coordinator with workers,
`select otel.distribute()` distributes otel.traces and otel.trace_summaries
by trace_id in co-located shards (a trace's spans and its summary on one
worker, a lookup by trace id routed to it) and makes otel.span_signatures
and otel.operation_catalog reference tables. Staging, dead letters, logs and
metrics stay on the coordinator. otel.distributed(table) says whether Citus
distributes a table (false without Citus). Nothing changes on one node.

Two statements Citus could not plan change:
- otel.drop_repeated_spans(), the flush's check for spans stored before,
  joins the batch with otel.traces through a CTE when otel.traces is
  distributed (Citus sends the CTE's rows to the workers; it plans no
  semi-join of local rows with a distributed table). On one node it keeps
  the semi-join, a fifth faster for a batch of spans all stored before.
- otel.drop_expired_partitions() takes the trace summaries' cutoff as a
  value: Citus cannot send now() to the workers within a distributed delete.

Revision ID: 0039
Revises: 0038
"""

from migrations.schema import execute_sql, released_routine

revision = "0039"
down_revision = "0038"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.distributed(relation regclass)
returns boolean
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Citus's catalog is there only where Citus is: looked up by name.
declare
    result boolean;
begin
    if to_regclass('pg_catalog.pg_dist_partition') is null then
        return false;
    end if;
    execute 'select exists (select from pg_catalog.pg_dist_partition where logicalrelid = $1)' into result using relation;
    return result;
end
$$;
comment on function otel.distributed(regclass) is
    'Whether a table is distributed by Citus (false without Citus)';

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
-- may lack the trace id that would place them. Returns what it changed;
-- run again, it changes nothing.
declare
    target record;
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
end
$$;
comment on function otel.distribute(integer) is
    'On a Citus coordinator, after `alembic upgrade head`: distributes otel.traces and otel.trace_summaries by trace_id in shard_count (default 32) co-located shards, and makes otel.span_signatures and otel.operation_catalog reference tables; returns what it changed (nothing when run again). Staging, dead letters, logs and metrics stay on the coordinator';

create or replace function otel.drop_repeated_spans()
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Drops the valid spans of the working set that are repeated within it or
-- stored before; returns how many. Flushes are serialised, so the check
-- cannot race another flush.
declare
    repeated_in_batch bigint := 0;
    stored_before bigint;
    first_start timestamptz;
    last_start timestamptz;
begin
    -- Spans repeated within the batch. Candidates first, by the 64-bit hash
    -- of their ids that typing computed in parallel: grouping every span by
    -- its two text ids needs several times the memory and spills to disk.
    -- Equal neighbours in key order: sorting a million keys takes half the
    -- time of hashing them into a million groups. Usually there are none,
    -- and then nothing else looks at every span.
    create temp table otel_repeated_keys on commit drop as
    select span_key
      from (select span_key, lag(span_key) over (order by span_key) as previous_key
              from pg_temp.otel_traces where err is null) as keys
     where span_key = previous_key;
    if exists (select from pg_temp.otel_repeated_keys) then
        delete from pg_temp.otel_traces as b
         using (select t.trace_id, t.span_id, min(t.n) as first_n
                  from pg_temp.otel_traces as t
                 where t.err is null and t.span_key in (select span_key from pg_temp.otel_repeated_keys)
                 group by t.trace_id, t.span_id
                having count(*) > 1) as repeated
         where b.trace_id = repeated.trace_id and b.span_id = repeated.span_id
           and b.n > repeated.first_n and b.err is null;
        get diagnostics repeated_in_batch = row_count;
    end if;
    -- Spans stored before. A span sent again has the same start time, so
    -- only the partitions of the batch's time range are searched: the check
    -- costs what the batch touches, not what otel.traces holds.
    select e.first_time, e.last_time into first_start, last_start
      from pg_temp.otel_batch_extent as e where e.kind = 'traces';
    if not found then
        raise exception 'otel.drop_repeated_spans() needs the extent that otel.partition_working_set() records';
    end if;
    -- Looked up in a query of its own: a delete's subquery would need the
    -- row position (ctid) of each span it reads, which a cold (columnar)
    -- partition cannot give.
    if not otel.distributed('otel.traces') then
        with stored as materialized (
            select b.n
              from pg_temp.otel_traces as b
             where b.err is null
               and exists (select 1 from otel.traces as t
                            where t.trace_id = b.trace_id and t.span_id = b.span_id
                              and t.start_time between first_start and last_start)
        )
        delete from pg_temp.otel_traces as b using stored where b.n = stored.n;
    else
        -- Citus joins a distributed table with local rows only once they are
        -- a CTE of their own, which it sends to the workers, and then by a
        -- join rather than a semi-join. A fifth slower for a batch of spans
        -- all stored before, so not on one node.
        with batch as materialized (
            select b.n, b.trace_id, b.span_id from pg_temp.otel_traces as b where b.err is null
        ),
        stored as materialized (
            select distinct b.n
              from batch as b
              join otel.traces as t on t.trace_id = b.trace_id and t.span_id = b.span_id
             where t.start_time between first_start and last_start
        )
        delete from pg_temp.otel_traces as b using stored where b.n = stored.n;
    end if;
    get diagnostics stored_before = row_count;
    return repeated_in_batch + stored_before;
end
$$;
comment on function otel.drop_repeated_spans() is
    'Drops the spans of a flush repeated within it or stored before, returns how many; internal to otel.flush()';

create or replace function otel.drop_expired_partitions()
returns setof text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- A daily partition goes once its whole day is older than now() - keep, so
-- nothing younger than keep is ever dropped. Returns the dropped tables; a
-- partition that readers keep from being dropped (otel.run_with_short_locks())
-- is left, with the rest of its table's, for the next run.
declare
    expired record;
    busy text[] := '{}';  -- tables whose readers kept a partition from being dropped
    traces_cutoff timestamptz;
begin
    for expired in
        select r.kind, c.relname, c.oid::regclass as partition
          from otel.retention as r
          join pg_inherits as i on i.inhparent = format('otel.%I', r.kind)::regclass
          join pg_class as c on c.oid = i.inhrelid
         where c.relname ~ '_p[0-9]{8}$'
           and (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp at time zone 'UTC' <= now() - r.keep
         order by c.relname
    loop
        continue when expired.kind = any (busy);
        if otel.run_with_short_locks(format('drop table otel.%I', expired.relname)) then
            return next expired.partition::text;
        else
            busy := busy || expired.kind;
            raise notice 'otel_db: otel.% is in use; % and older partitions are dropped by the next maintenance',
                         expired.kind, expired.partition;
        end if;
    end loop;
    -- The cutoff as a value, not now() in the deletes: Citus cannot send a
    -- stable function to the workers within a distributed delete.
    select now() - r.keep - interval '1 day' into traces_cutoff from otel.retention as r where r.kind = 'traces';
    if found then
        delete from otel.trace_summaries as s where s.end_time < traces_cutoff;
        delete from otel.operation_catalog as c where c.last_seen < traces_cutoff;
    end if;
end
$$;
comment on function otel.drop_expired_partitions() is
    'Drops the daily partitions of otel.traces, otel.logs and otel.metrics past their retention (otel.retention), and the trace summaries and catalogued operations last seen before it; returns the partitions'' names';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0038", "otel.drop_repeated_spans"))
    execute_sql(released_routine("0022", "otel.drop_expired_partitions"))
    execute_sql("drop function otel.distribute(integer);")
    execute_sql("drop function otel.distributed(regclass);")
