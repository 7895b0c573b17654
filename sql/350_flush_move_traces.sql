-- Stage 5, move spans: repeated spans dropped, signatures assigned, trace
-- summaries kept, the spans inserted.

create or replace aggregate otel.text_array_agg(text) (
    -- array_agg(text) with its true state size: the built-in one tells the
    -- planner 8 kB a group, so that grouping a flush's 200,000 traces
    -- sorts on disk or spills instead of hashing in memory (0.3 s of 1.0 s).
    sfunc = array_agg_transfn,
    stype = internal,
    sspace = 128,
    finalfunc = array_agg_finalfn,
    finalfunc_extra
);
comment on aggregate otel.text_array_agg(text) is
    'array_agg(text) with a realistic state size for the planner; internal to otel.flush()';

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
    -- day finds its partition empty, with nothing to look up; the rows of a
    -- cold day split into slices are in its slices) and whether one is
    -- cold. Read under a lock on otel.traces, which the
    -- conversion to columnar waits for to swap a partition in: the
    -- partitions read here stay as they are until this flush ends.
    lock table only otel.traces in access share mode;
    select coalesce(bool_or(exists (select from pg_partition_tree(format('otel.%I', p.name)::regclass) as t
                                     where t.isleaf and pg_relation_size(t.relid) > 0)), false),
           coalesce(bool_or(p.columnar), false)
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

create or replace function otel.collect_signature_inputs()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- The distinct signature inputs of the valid spans, each with its first
-- span's position, into pg_temp.otel_signature_inputs for otel.sign_spans()
-- and otel.catalog_operations(): a table with statistics, so that their
-- joins fetch the first span of each of the few distinct inputs by its
-- position rather than reading every span again.
begin
    create temp table otel_signature_inputs on commit drop as
    select signature_input, min(ctid) as first_span, count(*) as spans,
           min(start_time) as first_start, max(start_time) as last_start
      from pg_temp.otel_traces where err is null group by signature_input;
    analyze pg_temp.otel_signature_inputs;
end
$$;
comment on function otel.collect_signature_inputs() is
    'Groups the valid spans of a flush by signature input, for otel.sign_spans(); internal to otel.flush()';

create or replace function otel.sign_spans()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- One signature per signature input of pg_temp.otel_signature_inputs
-- (otel.collect_signature_inputs()), whose first span it signs, upserted
-- into otel.span_signatures (counting the spans); the ids land in
-- pg_temp.otel_signature_ids by signature input. A new signature wakes the
-- embedding worker.
begin
    create temp table otel_signature_ids (signature_input bigint primary key, signature_id bigint, created boolean)
        on commit drop;
    with signed as (
        select i.signature_input, i.spans,
               otel.span_signature(t.service_name, t.kind, t.name, t.status_code, t.status_message,
                                   t.attributes, t.events) as signature
          from pg_temp.otel_signature_inputs as i
          join pg_temp.otel_traces as t on t.ctid = i.first_span
    ),
    per_signature as (
        select signature, md5(signature)::uuid as text_hash, sum(spans) as spans from signed group by signature
    ),
    signature_ids as (
        insert into otel.span_signatures as s (text, span_count)
        select signature, spans from per_signature
        on conflict (text_hash) do update set span_count = s.span_count + excluded.span_count
        returning s.id, s.text_hash, s.xmax = 0 as created
    )
    insert into pg_temp.otel_signature_ids
    select s.signature_input, i.id, i.created
      from signed as s
      join signature_ids as i on i.text_hash = md5(s.signature)::uuid;
    if exists (select from pg_temp.otel_signature_ids where created) then
        perform pg_notify('otel_signatures', 'new');  -- wakes `otel-db embed --watch`
    end if;
end
$$;
comment on function otel.sign_spans() is
    'Upserts one signature per signature input that otel.collect_signature_inputs() or otel.move_spans_on_workers() collected; internal to otel.flush()';

create or replace function otel.catalog_operations()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Service, span name and kind are part of the signature input, so the
-- distinct inputs of otel.sign_spans() (a few hundred for a million
-- spans) give the flush's operations without reading the spans again; the
-- resource attribute keys come from the first span of each input (a
-- service's resources share their keys, hosts differ in values), and
-- tell otel.find_traces() which attributes may be a resource's. Rows
-- change only when the flush widens their time range or adds keys.
begin
    insert into otel.operation_catalog as c (service_name, name, span_kind, first_seen, last_seen, resource_keys)
    select t.service_name, t.name, t.kind, min(i.first_start), max(i.last_start),
           array_remove(array_agg(distinct k.key order by k.key), null)
      from pg_temp.otel_signature_inputs as i
      join pg_temp.otel_traces as t on t.ctid = i.first_span
      left join lateral jsonb_object_keys(t.resource_attributes) as k (key) on true
     where t.service_name is not null
     group by 1, 2, 3
    on conflict (service_name, name, span_kind) do update
        set first_seen = least(c.first_seen, excluded.first_seen),
            last_seen = greatest(c.last_seen, excluded.last_seen),
            resource_keys = array(select distinct x from unnest(c.resource_keys || excluded.resource_keys) as x
                                   order by x)
        where excluded.first_seen < c.first_seen or excluded.last_seen > c.last_seen
           or not excluded.resource_keys <@ c.resource_keys;
end
$$;
comment on function otel.catalog_operations() is
    'Adds the services, span names and kinds of a flush, and their resource attribute keys, to otel.operation_catalog; internal to otel.flush()';

create or replace function otel.upsert_trace_summaries(per_trace text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Adds the traces of per_trace, a query of trace_id, start_time, end_time,
-- root_service, root_name, span_count, error_count and services (with
-- repeats) for the spans of one flush, to otel.trace_summaries: a trace
-- stored before gets the union of both. Shared by otel.summarize_traces()
-- and, on Citus, otel.summarize_spans_on_workers(), whose queries differ.
begin
    execute format($sql$
        insert into otel.trace_summaries as s (
            trace_id, start_time, end_time, duration_ms, root_service, root_name,
            span_count, error_count, services)
        select t.trace_id, t.start_time, t.end_time, extract(epoch from t.end_time - t.start_time) * 1000,
               t.root_service, t.root_name, t.span_count, t.error_count,
               array(select distinct x from unnest(t.services) as x order by x)
          from (%s) as t (trace_id, start_time, end_time, root_service, root_name, span_count, error_count, services)
        on conflict (trace_id) do update set
            start_time = least(s.start_time, excluded.start_time),
            end_time = greatest(s.end_time, excluded.end_time),
            duration_ms = extract(epoch from greatest(s.end_time, excluded.end_time)
                                             - least(s.start_time, excluded.start_time)) * 1000,
            root_service = coalesce(excluded.root_service, s.root_service),
            root_name = coalesce(excluded.root_name, s.root_name),
            span_count = s.span_count + excluded.span_count,
            error_count = s.error_count + excluded.error_count,
            services = array(select distinct x from unnest(s.services || excluded.services) as x order by x)
    $sql$, per_trace);
end
$$;
comment on function otel.upsert_trace_summaries(text) is
    'Adds the per-trace figures of a flush''s spans to otel.trace_summaries; internal to otel.flush()';

create or replace function otel.summarize_traces()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- The valid spans of the working set added to otel.trace_summaries: from
-- the working set rather than the insert's returning rows, so no second
-- copy of every span to aggregate. Plain aggregates only: an ordered or
-- distinct aggregate sorts the spans of every trace on its own, which cost
-- more than all the rest of this statement. Most traces have one root
-- span, which min() finds; only those with several look for the earliest.
-- Ids are grouped byte-wise (collate "C"): the same groups, without the
-- database's collation rules. Late spans of a trace whose summary is cold
-- (otel.move_summaries_to_cold()) bring it back to otel.trace_summaries
-- first, where the upsert adds them to it: spans that start on the day of
-- the trace's summary or the next (a trace that ended just before
-- midnight), so that a batch of current spans reads no cold summary.
declare
    cold_until timestamptz;
    first_start timestamptz;
begin
    select (max(p.day) + 1)::timestamp at time zone 'UTC' into cold_until
      from otel.daily_partitions('cold_trace_summaries') as p;
    select e.first_time into first_start from pg_temp.otel_batch_extent as e where e.kind = 'traces';
    if first_start < cold_until + interval '1 day' then
        insert into otel.trace_summaries
        select c.*
          from otel.cold_trace_summaries as c
         where c.start_time >= date_trunc('day', first_start, 'UTC') - interval '1 day' and c.start_time < cold_until
           and c.trace_id in (select t.trace_id from pg_temp.otel_traces as t
                               where t.err is null and t.start_time < cold_until + interval '1 day')
           and not exists (select from otel.trace_summaries as s where s.trace_id = c.trace_id);
    end if;
    perform otel.upsert_trace_summaries($query$
        with per_trace as (
            select (trace_id collate "C") collate "default" as trace_id,
                   min(start_time) as start_time, max(end_time) as end_time,
                   count(*) as span_count,
                   count(*) filter (where status_code = 'ERROR') as error_count,
                   count(*) filter (where parent_span_id is null) as roots,
                   min(service_name) filter (where parent_span_id is null) as root_service,
                   min(name) filter (where parent_span_id is null) as root_name,
                   otel.text_array_agg(service_name) filter (where service_name is not null) as services
              from pg_temp.otel_traces
             where err is null
             group by trace_id collate "C"
        ),
        earliest_roots as (
            select distinct on (t.trace_id) t.trace_id, t.service_name, t.name
              from pg_temp.otel_traces as t
              join per_trace as p on p.trace_id = t.trace_id and p.roots > 1
             where t.err is null and t.parent_span_id is null
             order by t.trace_id, t.start_time, t.n
        )
        select p.trace_id, p.start_time, p.end_time,
               case when p.roots > 1 then r.service_name else p.root_service end,
               case when p.roots > 1 then r.name else p.root_name end,
               p.span_count, p.error_count, p.services
          from per_trace as p
          left join earliest_roots as r on r.trace_id = p.trace_id
         -- In the primary key's order (bytewise: the same for hex ids, and
         -- sorted faster): its pages are visited in turn rather than at random,
         -- which takes a quarter off the upsert for a sort of a twentieth.
         order by p.trace_id collate "C"
    $query$);
end
$$;
comment on function otel.summarize_traces() is
    'Adds the spans of a flush to otel.trace_summaries; internal to otel.flush()';

create or replace function otel.insert_spans(typed_spans text, signature_ids text,
                                             inputs bigint[] default null, ids bigint[] default null)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- The valid spans of typed_spans (pg_temp.otel_traces, or otel.flush_spans
-- on Citus) into otel.traces, each with the signature id of its input from
-- signature_ids (a relation of signature_input and signature_id, which may
-- read inputs and ids as $1 and $2). Returns how many.
declare
    moved bigint;
begin
    execute format($sql$
        insert into otel.traces (
            trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time,
            duration_ms, status_code, status_message, service_name, scope_name, scope_version,
            attributes, resource_attributes, events, links, signature_id)
        select t.trace_id, t.span_id, t.parent_span_id, t.trace_state, t.flags, t.name, t.kind,
               t.start_time, t.end_time, t.duration_ms, t.status_code, t.status_message,
               t.service_name, t.scope_name, t.scope_version,
               t.attributes, t.resource_attributes, t.events, t.links, s.signature_id
          from %s as t
          join %s as s using (signature_input)
         where t.err is null
    $sql$, typed_spans, signature_ids) using inputs, ids;
    get diagnostics moved = row_count;
    return moved;
end
$$;
comment on function otel.insert_spans(text, text, bigint[], bigint[]) is
    'Inserts the valid spans of a flush into otel.traces with their signature ids; internal to otel.flush()';

create or replace function otel.move_traces(out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
-- The working set's statistics need only be rough (they choose hashing or
-- sorting, and join orders): a sample of 9,000 rows instead of 30,000
-- takes a quarter of the time.
set default_statistics_target = 30
as $$
-- Valid spans into otel.traces: drop repeated ones, sign them, add them to
-- the catalog of operations and the trace summaries, insert them.
begin
    -- Row counts and the statistics of the columns the statements below
    -- join, group and filter on; sampling the JSON columns too would cost
    -- as much again.
    analyze pg_temp.otel_traces (err, trace_id, span_id, parent_span_id, start_time, signature_input, span_key);
    duplicates := otel.drop_repeated_spans();
    perform otel.collect_signature_inputs();
    perform otel.sign_spans();
    perform otel.catalog_operations();
    perform otel.summarize_traces();
    moved := otel.insert_spans('pg_temp.otel_traces', 'pg_temp.otel_signature_ids');
end
$$;
comment on function otel.move_traces() is
    'Moves the valid spans of a flush into otel.traces with signatures and trace summaries; internal to otel.flush()';
