"""One reading of the daily partitions, otel.daily_partitions(), where five functions each parsed their names.

otel.drop_expired_partitions(), otel.cold_partitions_due(),
otel.resign_spans() and otel.similar_traces_search() each joined
pg_inherits with pg_class, matched `_pYYYYMMDD` and took the day from the
name, and three of them also the access method. otel.daily_partitions(parent)
gives each partition's name, day and whether it is columnar; they call it.
The same partitions, days and order as before.

Revision ID: 0042
Revises: 0041
"""

from migrations.schema import execute_sql, released_routine

revision = "0042"
down_revision = "0041"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.daily_partitions(parent text)
returns table (name text, day date, columnar boolean)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    -- The partitions otel.ensure_partitions() names otel.<parent>_pYYYYMMDD,
    -- read back: the day from the name, and the storage from the access
    -- method (cold storage is columnar, the rest heap).
    select c.relname::text, to_date(right(c.relname, 8), 'YYYYMMDD'), a.amname <> 'heap'
      from pg_inherits as i
      join pg_class as c on c.oid = i.inhrelid
      join pg_am as a on a.oid = c.relam
     where i.inhparent = format('otel.%I', parent)::regclass and c.relname ~ '_p[0-9]{8}$'
$$;
comment on function otel.daily_partitions(text) is
    'The daily partitions of otel.traces, otel.logs or otel.metrics: name, UTC day, and whether it is columnar (cold storage); internal';

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
        select r.kind, p.name, format('otel.%I', p.name) as partition
          from otel.retention as r
         cross join lateral otel.daily_partitions(r.kind) as p
         where (p.day + 1)::timestamp at time zone 'UTC' <= now() - r.keep
         order by p.name
    loop
        continue when expired.kind = any (busy);
        if otel.run_with_short_locks(format('drop table otel.%I', expired.name)) then
            return next expired.partition;
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

create or replace function otel.cold_partitions_due()
returns table (kind text, partition_name text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Partitions in row format whose whole day is older than their kind's
-- older_than, oldest first; none, with a notice, without citus_columnar.
begin
    if not exists (select from otel.cold_storage) then
        return;
    end if;
    if not exists (select from pg_am where amname = 'columnar') then
        raise notice 'otel_db: cold storage is set, but citus_columnar is not installed in this database: partitions stay in row format'
            using hint = 'Build it with `make citus`, then run `create extension citus_columnar` or otel.set_cold_storage() again.';
        return;
    end if;
    return query
        select s.kind, p.name
          from otel.cold_storage as s
         cross join lateral otel.daily_partitions(s.kind) as p
         where not p.columnar and (p.day + 1)::timestamp at time zone 'UTC' <= now() - s.older_than
         order by p.day, s.kind;
end
$$;
comment on function otel.cold_partitions_due() is
    'The row-format partitions past their kind''s cold storage age (kind, partition_name), oldest first; internal to otel.maintain()';

create or replace procedure otel.resign_spans(since timestamptz default null)
language plpgsql
as $$
-- Partition by partition, oldest first, each step its own transaction: it
-- can be stopped and run again, and it never holds more than one day's
-- rows. Call it outside a transaction block (it commits). It has no `set
-- search_path` clause, which would forbid the commits; it is not security
-- definer either, so it runs with the caller's rights and settings, and
-- the work is done by the two functions, which pin theirs.
declare
    day date;
    columnar boolean;
    moved bigint;
begin
    for day, columnar in
        select p.day, p.columnar
          from otel.daily_partitions('traces') as p
         where since is null or p.day >= (since at time zone 'UTC')::date
         order by p.day
    loop
        if columnar then  -- a cold partition takes no updates
            raise notice 'otel_db: the spans of % are in cold storage (columnar) and keep their signatures', day;
            continue;
        end if;
        perform otel.resign_signatures(day);
        commit;
        moved := otel.resign_partition(day);
        raise notice 'otel_db: % spans of % re-signed', moved, day;
        commit;
    end loop;
end
$$;
comment on procedure otel.resign_spans(timestamptz) is
    'Re-signs the stored spans (of the UTC days from since on, all when null) after an upgrade changed otel.span_signature(); run it outside a transaction block: one daily partition at a time, in two transactions; spans move to the signature a flush would give them now, new signatures are embedded by the embedding worker, old ones left without spans are deleted; partitions in cold storage (columnar) keep theirs';

create or replace function otel.similar_traces_search(
    query vector, k integer, min_similarity double precision, service text, since timestamptz,
    model text, excluded_trace text)
returns table (
    trace_id text, span_id text, service_name text, name text, status_code text, status_message text,
    duration_ms double precision, start_time timestamptz, attributes jsonb, similarity double precision)
language plpgsql stable
set search_path = pg_catalog, public, pg_temp
-- strict_order: the scan goes on past ef_search in exact distance order,
-- so the loop below may stop at the first signature under min_similarity
-- and filters on spans (service, since) cost no recall.
set hnsw.iterative_scan = strict_order
set hnsw.ef_search = 40
as $$
-- Signatures nearest first; for each, its newest spans, one per trace not
-- seen yet, until k traces. A trace's row is its span with the most
-- similar signature. A signature's spans are read in two time ranges:
-- after the newest cold (columnar) partition, where each partition's index
-- finds the newest at once, then before it, where cold partitions, which
-- have no index, are read whole; the second only when the first did not
-- give k traces. Without cold partitions the second range is empty.
declare
    signature record;
    span record;
    seen text[] := '{}';
    cold_until timestamptz := coalesce(
        (select max(p.day + 1)::timestamp at time zone 'UTC' from otel.daily_partitions('traces') as p where p.columnar),
        '-infinity');
    range_start timestamptz;
    range_end timestamptz;
begin
    <<signatures>>
    for signature in
        select s.id, 1 - (s.embedding <=> query) as similarity
          from otel.span_signatures as s
         where s.embedding_model = model
         order by s.embedding <=> query
         limit 20000  -- what hnsw.max_scan_tuples lets an iterative scan visit by default
    loop
        exit when signature.similarity < min_similarity;
        for range_start, range_end in values (cold_until, 'infinity'::timestamptz), ('-infinity', cold_until) loop
            continue when range_start >= range_end;  -- no cold partitions: nothing before them
            continue when since >= range_end;  -- all of the range is before since
            for span in
                select t.trace_id, t.span_id, t.service_name, t.name, t.status_code, t.status_message,
                       t.duration_ms, t.start_time, t.attributes
                  from otel.traces as t
                 where t.signature_id = signature.id
                   and t.start_time >= range_start and t.start_time < range_end
                   and (service is null or t.service_name = service)
                   and (since is null or t.start_time >= since)
                   and t.trace_id is distinct from excluded_trace
                 order by t.start_time desc, t.trace_id, t.span_id  -- ties in one order, on one node or many
            loop
                continue when span.trace_id = any (seen);
                seen := seen || span.trace_id;
                trace_id := span.trace_id;
                span_id := span.span_id;
                service_name := span.service_name;
                name := span.name;
                status_code := span.status_code;
                status_message := span.status_message;
                duration_ms := span.duration_ms;
                start_time := span.start_time;
                attributes := span.attributes;
                similarity := signature.similarity;
                return next;
                exit signatures when cardinality(seen) >= k;
            end loop;
        end loop;
    end loop;
end
$$;
comment on function otel.similar_traces_search(vector, integer, double precision, text, timestamptz, text, text) is
    'The search behind both otel.similar_traces() overloads (arguments already checked)';

grant execute on function otel.daily_partitions(text) to otel_reader, otel_admin;
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0039", "otel.drop_expired_partitions"))
    execute_sql(released_routine("0038", "otel.cold_partitions_due"))
    execute_sql(released_routine("0038", "otel.resign_spans"))
    execute_sql(released_routine("0041", "otel.similar_traces_search"))
    execute_sql("drop function otel.daily_partitions(text);")
