"""The flush reads the partitions of its days under a lock that the conversion to columnar waits for.

otel.drop_repeated_spans() (0050) read which partitions of the batch's days
hold rows, then looked only there, without a lock on otel.traces: a day being
converted to columnar at that moment could be read as empty (its old table
gone), and spans sent again would be stored twice. It now takes the lock
that the conversion's swap waits for before reading them; on Citus it does
not read them at all.

Revision ID: 0051
Revises: 0050
"""

from migrations.schema import execute_sql, released_routine

revision = "0051"
down_revision = "0050"
branch_labels = None
depends_on = None

UPGRADE = r"""
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
    range_holds_rows boolean;
    range_has_cold_day boolean;
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
    if otel.distributed('otel.traces') then
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
        get diagnostics stored_before = row_count;
        return repeated_in_batch + stored_before;
    end if;
    -- The range's partitions: whether any holds rows (the first flush of a
    -- day finds its partition empty, with nothing to look up) and whether
    -- one is cold. Read under a lock on otel.traces, which the conversion
    -- to columnar waits for to swap a partition in: the partitions read
    -- here stay as they are until this flush ends.
    lock table only otel.traces in access share mode;
    select coalesce(bool_or(pg_relation_size(format('otel.%I', p.name)) > 0), false), coalesce(bool_or(p.columnar), false)
      into range_holds_rows, range_has_cold_day
      from otel.daily_partitions('traces') as p
     where p.day between (first_start at time zone 'UTC')::date and (last_start at time zone 'UTC')::date;
    if not range_holds_rows then
        return repeated_in_batch;
    elsif range_has_cold_day then
        -- A cold day has no index: one scan of the range, hashed.
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
        -- Trace by trace through the trace_id index: the traces with a span
        -- stored in the range first (a new trace, most of a batch, has
        -- none), then each span of theirs. The lateral subqueries' limits
        -- keep the planner to those index probes, and the materialized
        -- traces to one probe a trace: as a semi-join it hashed every span
        -- stored in the range instead, 20 s of a 60 s flush into a day of
        -- 10M spans (`python -m bench flush_throughput`).
        with stored_traces as materialized (
            select d.trace_id
              from (select distinct trace_id from pg_temp.otel_traces where err is null) as d
             cross join lateral (select from otel.traces as t
                                  where t.trace_id = d.trace_id and t.start_time between first_start and last_start
                                  limit 1) as stored_span
        ),
        stored as materialized (
            select b.n
              from stored_traces as d
              join pg_temp.otel_traces as b on b.trace_id = d.trace_id and b.err is null
             cross join lateral (select from otel.traces as t
                                  where t.trace_id = b.trace_id and t.span_id = b.span_id
                                    and t.start_time between first_start and last_start
                                  limit 1) as stored_span
        )
        delete from pg_temp.otel_traces as b using stored where b.n = stored.n;
    end if;
    get diagnostics stored_before = row_count;
    return repeated_in_batch + stored_before;
end
$$;
comment on function otel.drop_repeated_spans() is
    'Drops the spans of a flush repeated within it or stored before, returns how many; internal to otel.flush()';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0050", "otel.drop_repeated_spans"))
