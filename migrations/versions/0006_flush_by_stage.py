"""The flush by stage: no function name built as a string, %I for every identifier format() builds, otel.move_traces() and otel.metric_series() in named steps.

otel.decode_otlp() and otel.process_working_set() call the function of a kind
through a `case` (otel.decode_otlp_requests()); otel.type_rows(),
otel.reject_invalid_rows(), otel.retry_dlq() and
otel.drop_expired_partitions() quote every table name with %I;
otel.move_traces() calls otel.drop_repeated_spans(), otel.sign_spans() and
otel.summarize_traces(); otel.metric_series() calls one function per kind of
aggregate, each checking its arguments (otel.check_metric_series_arguments()),
so that readers may call them too. The same statements as before: results and
speed are unchanged.

Revision ID: 0006
Revises: 0005
"""

from migrations.schema import execute_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.decode_otlp_requests(kind text, first_id bigint, last_id bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    case kind
        when 'traces' then perform otel.decode_otlp_traces(first_id, last_id);
        when 'logs' then perform otel.decode_otlp_logs(first_id, last_id);
        when 'metrics' then perform otel.decode_otlp_metrics(first_id, last_id);
    end case;
end
$$;
comment on function otel.decode_otlp_requests(text, bigint, bigint) is
    'Decodes the records of one kind of the claimed requests first_id..last_id into text rows; internal to otel.flush()';

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
    delete from pg_temp.otel_traces as b
     where b.err is null
       and exists (select 1 from otel.traces as t
                    where t.trace_id = b.trace_id and t.span_id = b.span_id
                      and t.start_time between first_start and last_start);
    get diagnostics stored_before = row_count;
    return repeated_in_batch + stored_before;
end
$$;
comment on function otel.drop_repeated_spans() is
    'Drops the spans of a flush repeated within it or stored before, returns how many; internal to otel.flush()';

create or replace function otel.sign_spans()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- One signature per distinct signature input of the valid spans, upserted
-- into otel.span_signatures (counting the spans); the ids land in
-- pg_temp.otel_signature_ids by signature input. A new signature wakes the
-- embedding worker.
begin
    create temp table otel_signature_ids (signature_input bigint primary key, signature_id bigint, created boolean)
        on commit drop;
    -- A table with statistics, so that the join below fetches the first
    -- span of each of the few distinct inputs by its position rather than
    -- reading every span again.
    create temp table otel_signature_inputs on commit drop as
    select signature_input, min(ctid) as first_span, count(*) as spans
      from pg_temp.otel_traces where err is null group by signature_input;
    analyze pg_temp.otel_signature_inputs;
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
    'Upserts one signature per distinct signature input of the spans of a flush; internal to otel.flush()';

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
-- database's collation rules.
begin
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
    insert into otel.trace_summaries as s (
        trace_id, start_time, end_time, duration_ms, root_service, root_name,
        span_count, error_count, services)
    select p.trace_id, p.start_time, p.end_time, extract(epoch from p.end_time - p.start_time) * 1000,
           case when p.roots > 1 then r.service_name else p.root_service end,
           case when p.roots > 1 then r.name else p.root_name end,
           p.span_count, p.error_count,
           array(select distinct x from unnest(p.services) as x order by x)
      from per_trace as p
      left join earliest_roots as r on r.trace_id = p.trace_id
     -- In the primary key's order (bytewise: the same for hex ids, and
     -- sorted faster): its pages are visited in turn rather than at random,
     -- which takes a quarter off the upsert for a sort of a twentieth.
     order by p.trace_id collate "C"
    on conflict (trace_id) do update set
        start_time = least(s.start_time, excluded.start_time),
        end_time = greatest(s.end_time, excluded.end_time),
        duration_ms = extract(epoch from greatest(s.end_time, excluded.end_time)
                                         - least(s.start_time, excluded.start_time)) * 1000,
        root_service = coalesce(excluded.root_service, s.root_service),
        root_name = coalesce(excluded.root_name, s.root_name),
        span_count = s.span_count + excluded.span_count,
        error_count = s.error_count + excluded.error_count,
        services = array(select distinct x from unnest(s.services || excluded.services) as x order by x);
end
$$;
comment on function otel.summarize_traces() is
    'Adds the spans of a flush to otel.trace_summaries; internal to otel.flush()';

create or replace function otel.check_metric_series_arguments(
    name text, bucket interval, since timestamptz, until timestamptz, labels jsonb, agg text)
returns void
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if name is null or name = '' then
        raise exception 'name must name a metric, got %', coalesce(quote_literal(name), 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if bucket is null or bucket < interval '1 second' or bucket > interval '366 days' then
        raise exception 'bucket must be an interval from 1 second to 366 days, got %', coalesce(bucket::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if bucket <> justify_hours(bucket) or extract(month from bucket) <> 0 or extract(year from bucket) <> 0 then
        raise exception 'bucket must be a fixed length (seconds, minutes, hours or days), got %', bucket
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_time_range(since, until, true);
    if (extract(epoch from until - since) / extract(epoch from bucket)) > 100000 then
        raise exception 'since to until holds more than 100000 buckets of %; choose a larger bucket', bucket
            using errcode = 'invalid_parameter_value';
    end if;
    if labels is not null and jsonb_typeof(labels) <> 'object' then
        raise exception 'labels must be a JSON object of label values to match, got %', labels
            using errcode = 'invalid_parameter_value';
    end if;
    if agg is null or agg not in ('avg', 'min', 'max', 'sum', 'count', 'rate', 'p50', 'p90', 'p99') then
        raise exception 'agg must be one of avg, min, max, sum, count, rate, p50, p90, p99, got %',
                        coalesce(quote_literal(agg), 'null')
            using errcode = 'invalid_parameter_value';
    end if;
end
$$;
comment on function otel.check_metric_series_arguments(text, interval, timestamptz, timestamptz, jsonb, text) is
    'Raises 22023 unless the arguments of otel.metric_series() make sense; internal to otel.metric_series()';

create or replace function otel.metric_series_values(
    metric text, bucket interval, since timestamptz, until timestamptz, labels jsonb, agg text)
returns table (bucket_start timestamptz, value double precision)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- avg, min, max, sum, count of the points' values (gauges, sums); for
-- histograms and summaries of their sum/count, min and max. Each of these
-- functions checks its arguments: readers may call them directly.
begin
    perform otel.check_metric_series_arguments(metric, bucket, since, until, labels, agg);
    if agg not in ('avg', 'min', 'max', 'sum', 'count') then
        raise exception 'agg must be one of avg, min, max, sum, count here, got %', quote_literal(agg)
            using errcode = 'invalid_parameter_value';
    end if;
    return query
        select date_bin(bucket, m.time, timestamptz '2000-01-01 00:00:00+00') as b,
               case agg
                   when 'avg' then coalesce(avg(m.value), sum(m.sum) / nullif(sum(m.count), 0)::double precision)
                   when 'min' then coalesce(min(m.value), min(m.min))
                   when 'max' then coalesce(max(m.value), max(m.max))
                   when 'sum' then coalesce(sum(m.value), sum(m.sum))
                   else coalesce(count(m.value), 0) + coalesce(sum(m.count), 0)::double precision
               end
          from otel.metrics as m
         where m.name = metric and m.time >= since and m.time < until
           and (metric_series_values.labels is null or m.labels @> metric_series_values.labels)
         group by 1
         order by 1;
end
$$;
comment on function otel.metric_series_values(text, interval, timestamptz, timestamptz, jsonb, text) is
    'otel.metric_series() for avg, min, max, sum and count';

create or replace function otel.metric_series_rate(
    metric text, bucket interval, since timestamptz, until timestamptz, labels jsonb)
returns table (bucket_start timestamptz, value double precision)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- The per-second increase of a monotonic sum: cumulative points are
-- differenced per series (a drop, or a new start_time, is a counter reset:
-- the new value is the increase), delta points are increases already. A
-- point needs its predecessor, so points up to an hour (or a bucket, if
-- longer) before since are read too: export intervals are often longer
-- than a bucket.
begin
    perform otel.check_metric_series_arguments(metric, bucket, since, until, labels, 'rate');
    return query
        with points as (
            select m.time, m.start_time, m.value, m.temporality,
                   lag(m.value) over series as previous_value,
                   lag(m.start_time) over series as previous_start
              from otel.metrics as m
             where m.name = metric and m.type = 'sum' and m.is_monotonic is not false
               and m.time >= since - greatest(bucket, interval '1 hour') and m.time < until
               and (metric_series_rate.labels is null or m.labels @> metric_series_rate.labels)
            window series as (partition by m.service_name collate "C", m.labels::text collate "C",
                                 m.resource_attributes::text collate "C" order by m.time)
        ),
        increases as (
            select p.time,
                   case
                       when p.temporality = 'delta' then p.value
                       when p.previous_value is null then null
                       when p.value < p.previous_value or p.start_time is distinct from p.previous_start then p.value
                       else p.value - p.previous_value
                   end as increase
              from points as p
             where p.time >= since
        )
        select date_bin(bucket, i.time, timestamptz '2000-01-01 00:00:00+00'),
               sum(i.increase) / extract(epoch from bucket)::double precision
          from increases as i
         group by 1
        having count(i.increase) > 0
         order by 1;
end
$$;
comment on function otel.metric_series_rate(text, interval, timestamptz, timestamptz, jsonb) is
    'otel.metric_series() for rate';

create or replace function otel.metric_series_quantile(
    metric text, bucket interval, since timestamptz, until timestamptz, labels jsonb, agg text)
returns table (bucket_start timestamptz, value double precision)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- A quantile from explicit-bucket histograms: the bucket counts of the
-- interval (differenced when cumulative, as for rate), summed over series.
-- Points up to an hour (or a bucket) before since are read for the
-- predecessors, as in otel.metric_series_rate(). agg is p50, p90 or p99.
declare
    quantile double precision;
begin
    perform otel.check_metric_series_arguments(metric, bucket, since, until, labels, agg);
    if agg not in ('p50', 'p90', 'p99') then
        raise exception 'agg must be one of p50, p90, p99 here, got %', quote_literal(agg)
            using errcode = 'invalid_parameter_value';
    end if;
    quantile := substr(agg, 2)::double precision / 100;
    return query
        with points as (
            select m.time, m.start_time, m.temporality, m.bucket_counts, m.explicit_bounds,
                   lag(m.bucket_counts) over series as previous_counts,
                   lag(m.start_time) over series as previous_start,
                   lag(m.explicit_bounds) over series as previous_bounds
              from otel.metrics as m
             where m.name = metric and m.type = 'histogram' and m.bucket_counts is not null
               and m.time >= since - greatest(bucket, interval '1 hour') and m.time < until
               and (metric_series_quantile.labels is null or m.labels @> metric_series_quantile.labels)
            window series as (partition by m.service_name collate "C", m.labels::text collate "C",
                                 m.resource_attributes::text collate "C" order by m.time)
        ),
        -- Whether a point continues its predecessor is decided once per
        -- point (base: the counts to subtract, null after a reset or for
        -- delta points), not once per bucket count: materialized, or the
        -- planner would fold it into the per-count query below.
        deltas as materialized (
            select date_bin(bucket, p.time, timestamptz '2000-01-01 00:00:00+00') as b, p.time,
                   p.explicit_bounds::text collate "C" as layout, p.bucket_counts,
                   case
                       when p.temporality = 'delta' or p.start_time is distinct from p.previous_start
                         or p.explicit_bounds is distinct from p.previous_bounds
                         or cardinality(p.previous_counts) <> cardinality(p.bucket_counts)
                         or exists (select from unnest(p.bucket_counts, p.previous_counts) as d (now_count, then_count)
                                     where d.now_count < d.then_count)
                       then null
                       else p.previous_counts
                   end as base
              from points as p
             where p.time >= since
               and not (p.temporality = 'cumulative' and p.previous_counts is null)  -- no known start
        ),
        -- Bounds travel as text (a cheap grouping key) and are cast back once per bucket.
        per_bucket as (
            select d.b, d.layout, x.i, sum(x.c - coalesce(d.base[x.i], 0)) as c
              from deltas as d
             cross join lateral unnest(d.bucket_counts) with ordinality as x (c, i)
             group by d.b, d.layout, x.i
        ),
        per_layout as (
            select pb.b, pb.layout::double precision[] as explicit_bounds, array_agg(pb.c order by pb.i) as counts,
                   count(*) over (partition by pb.b) as layouts
              from per_bucket as pb
             group by pb.b, pb.layout
            having sum(pb.c) > 0
        )
        -- Counts of different bucket bounds cannot be added up.
        select l.b,
               case when l.layouts > 1
                    then otel.metric_series_mixed_bounds(metric, l.b)
                    else otel.histogram_quantile(quantile, l.counts, l.explicit_bounds) end
          from per_layout as l
         order by l.b;
end
$$;
comment on function otel.metric_series_quantile(text, interval, timestamptz, timestamptz, jsonb, text) is
    'otel.metric_series() for p50, p90 and p99';

create or replace function otel.decode_otlp(kind text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Decodes the claimed requests of one kind into pg_temp.otel_<kind>_rows:
-- all at once, else request by request, else record by record, so that a
-- bad record goes to the dead-letter queue and its siblings still land.
declare
    key record;
    request record;
    position record;
    single_id bigint;
begin
    select * into key from otel.otlp_keys(kind);
    begin
        perform otel.decode_otlp_requests(kind, 1, 9223372036854775807);
        return;
    exception when others then
        if otel.is_server_trouble(sqlstate) then raise; end if;
        null;  -- some request is bad: isolate it below
    end;
    create index if not exists otel_otlp_id on pg_temp.otel_otlp (id);  -- each request below is picked by id
    analyze pg_temp.otel_otlp;
    for request in
        select id, dlq_id, payload, doc from pg_temp.otel_otlp where doc ? key.resource_key order by id
    loop
        begin
            perform otel.decode_otlp_requests(kind, request.id, request.id);
        exception when others then
            if otel.is_server_trouble(sqlstate) then raise; end if;
            begin
                for position in select * from otel.otlp_records(request.doc, kind) loop
                    begin
                        -- The record as a request of its own: decoding it costs
                        -- its own size, not the whole request's again.
                        insert into pg_temp.otel_otlp (dlq_id, doc)
                        values (request.dlq_id, otel.otlp_single_record(request.doc, kind, position.rs, position.ss,
                                                                        position.rec, position.dp))
                        returning id into single_id;
                        perform otel.decode_otlp_requests(kind, single_id, single_id);
                    exception when others then
                        if otel.is_server_trouble(sqlstate) then raise; end if;
                        insert into pg_temp.otel_rejects
                        values (request.dlq_id, kind, 'otel.otlp_staging',
                                otel.otlp_single_record(request.doc, kind, position.rs, position.ss,
                                                        position.rec, position.dp)::text,
                                'text', 'rejected record: ' || sqlerrm);
                    end;
                end loop;
            exception when others then
                if otel.is_server_trouble(sqlstate) then raise; end if;
                -- Only this kind's part: the other signals of the request are judged on their own.
                insert into pg_temp.otel_rejects
                values (request.dlq_id, 'otlp', 'otel.otlp_staging',
                        case when request.doc ?| array_remove(array['resourceSpans', 'resourceLogs', 'resourceMetrics'], key.resource_key)
                             then jsonb_build_object(key.resource_key, request.doc -> key.resource_key)::text
                             else request.payload end,
                        'text', format('not a valid OTLP/JSON %s request: %s', kind, sqlerrm));
            end;
        end;
    end loop;
end
$$;
comment on function otel.decode_otlp(text) is
    'Decodes claimed OTLP/JSON requests of one kind, isolating bad requests and records; internal to otel.flush()';

create or replace function otel.type_rows(kind text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Types pg_temp.otel_<kind>_rows into pg_temp.otel_<kind>: in parallel
-- when there are many, else in one set-based statement; when a value
-- defeats it (malformed JSON text, an impossible date), chunk by chunk,
-- then row by row within the failing chunk.
declare
    chunk constant integer := 1000;
    last_n integer;
    chunk_start integer;
    row_n integer;
    typed_table text := 'otel_' || kind;
    text_rows_table text := 'otel_' || kind || '_rows';
    type_range text := format('insert into pg_temp.%I %s', typed_table,
                              otel.typing_query(kind, otel.working_set_rows(kind)));
begin
    execute format('select coalesce(max(n), 0) from pg_temp.%I', text_rows_table) into last_n;
    if last_n = 0 or otel.type_rows_in_parallel(kind) then
        return;
    end if;
    begin
        execute type_range using 1, last_n;
        return;
    exception when others then
        if otel.is_server_trouble(sqlstate) then raise; end if;
        null;  -- some row is unreadable: isolate it below
    end;
    -- Each chunk and row below picks its rows by n.
    execute format('create index on pg_temp.%I (n)', text_rows_table);
    execute format('analyze pg_temp.%I', text_rows_table);
    for chunk_start in 1..last_n by chunk loop
        begin
            execute type_range using chunk_start, least(chunk_start + chunk - 1, last_n);
        exception when others then
            if otel.is_server_trouble(sqlstate) then raise; end if;
            for row_n in chunk_start..least(chunk_start + chunk - 1, last_n) loop
                begin
                    execute type_range using row_n, row_n;
                exception when others then
                    if otel.is_server_trouble(sqlstate) then raise; end if;
                    execute format('insert into pg_temp.%I (n, err) values ($1, $2)', typed_table)
                        using row_n, 'unreadable row: ' || sqlerrm;
                end;
            end loop;
        end;
    end loop;
end
$$;
comment on function otel.type_rows(text) is
    'Validates and casts the text rows of one kind, isolating unreadable rows; internal to otel.flush()';

create or replace function otel.move_traces(out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
-- The working set's statistics need only be rough (they choose hashing or
-- sorting, and join orders): a sample of 9,000 rows instead of 30,000
-- takes a quarter of the time.
set default_statistics_target = 30
as $$
-- Valid spans into otel.traces: drop repeated ones, sign them, add them to
-- the trace summaries, insert them.
begin
    -- Row counts and the statistics of the columns the statements below
    -- join, group and filter on; sampling the JSON columns too would cost
    -- as much again.
    analyze pg_temp.otel_traces (err, trace_id, span_id, parent_span_id, start_time, signature_input, span_key);
    duplicates := otel.drop_repeated_spans();
    perform otel.sign_spans();
    perform otel.summarize_traces();
    insert into otel.traces (
        trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time,
        duration_ms, status_code, status_message, service_name, scope_name, scope_version,
        attributes, resource_attributes, events, links, signature_id)
    select t.trace_id, t.span_id, t.parent_span_id, t.trace_state, t.flags, t.name, t.kind,
           t.start_time, t.end_time, t.duration_ms, t.status_code, t.status_message,
           t.service_name, t.scope_name, t.scope_version,
           t.attributes, t.resource_attributes, t.events, t.links, s.signature_id
      from pg_temp.otel_traces as t
      join pg_temp.otel_signature_ids as s using (signature_input)
     where t.err is null;
    get diagnostics moved = row_count;
end
$$;
comment on function otel.move_traces() is
    'Moves the valid spans of a flush into otel.traces with signatures and trace summaries; internal to otel.flush()';

create or replace function otel.reject_invalid_rows(kind text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Queues every row that failed validation for the dead-letter queue: a
-- staging row (from the working set or a claim table) as a JSON object of
-- its columns, a decoded record as an OTLP/JSON request holding just that
-- record.
begin
    if (select e.invalid_rows from pg_temp.otel_batch_extent as e where e.kind = reject_invalid_rows.kind) = 0 then
        return;  -- nothing to look for
    end if;
    execute format($sql$
        insert into pg_temp.otel_rejects
        select r.dlq_id, %1$L,
               case when r.payload_id is null then %2$L else 'otel.otlp_staging' end,
               case when t.claimed is not null
                    then jsonb_strip_nulls(to_jsonb(c))::text
                    when r.payload_id is null
                    then jsonb_strip_nulls(to_jsonb(r) - '{n,dlq_id,payload_id,rs,ss,rec,dp}'::text[])::text
                    else otel.otlp_single_record(p.doc, %1$L, r.rs, r.ss, r.rec, r.dp)::text end,
               case when r.payload_id is null then 'row-json' else 'text' end,
               t.err
          from pg_temp.%3$I as t
          left join pg_temp.%4$I as r on r.n = t.n
          left join otel.%5$I as c on c.ctid = t.claimed
          left join pg_temp.otel_otlp as p on p.id = r.payload_id
         where t.err is not null
    $sql$, kind, 'otel.' || kind || '_staging', 'otel_' || kind, 'otel_' || kind || '_rows', 'claimed_' || kind);
end
$$;
comment on function otel.reject_invalid_rows(text) is
    'Moves rows that failed validation to the reject list of the flush; internal to otel.flush()';

create or replace function otel.process_working_set()
returns table (kind text, moved bigint, duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Decode, validate, cast and move everything in the working set; queue
-- the rejects. Shared by otel.flush() and otel.retry_dlq().
declare
    k text;
    result record;
begin
    insert into pg_temp.otel_rejects
    select dlq_id, 'otlp', 'otel.otlp_staging', payload, 'text',
           case when doc is null then 'not valid JSON (an OTLP/JSON request is one JSON object per line)'
                else 'not an OTLP/JSON export request: expected an object with resourceSpans, resourceLogs or resourceMetrics' end
      from pg_temp.otel_otlp
     where doc is null
        or jsonb_typeof(doc) <> 'object'
        or not (doc ?| array['resourceSpans', 'resourceLogs', 'resourceMetrics']);

    foreach k in array array['traces', 'logs', 'metrics'] loop
        perform otel.decode_otlp(k);
        perform otel.type_rows(k);
        perform otel.partition_working_set(k, case k when 'traces' then 'start_time' else 'time' end);
        perform otel.reject_invalid_rows(k);
        case k
            when 'traces' then select * into result from otel.move_traces();
            when 'logs' then select * into result from otel.move_logs();
            when 'metrics' then select * into result from otel.move_metrics();
        end case;
        kind := k;
        moved := result.moved;
        duplicates := result.duplicates;
        return next;
    end loop;
end
$$;
comment on function otel.process_working_set() is
    'Decodes, validates and moves the working set of a flush or a retry; internal';

create or replace procedure otel.retry_dlq(max_retries integer default 3)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set jit = off
as $$
-- Re-validates every unprocessed letter tried fewer than max_retries times
-- (after a fix to the data, or to otel_db). Letters that pass move to their
-- final table and are marked processed; the others count the attempt.
-- Letters of bytes PostgreSQL cannot store as text only count the attempt.
declare
    kind text;
begin
    if max_retries is null or max_retries < 1 then
        raise exception 'max_retries must be a positive integer, got %', coalesce(max_retries::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    perform pg_advisory_xact_lock(hashtext('otel.flush'));
    perform otel.flush_prepare();

    create temp table otel_retried on commit drop as
        select id, telemetry_type, source, raw_data, raw_format
          from otel.telemetry_dlq
         where processed_at is null and retry_count < max_retries
         order by id
           for update skip locked;

    insert into pg_temp.otel_otlp (dlq_id, payload, doc)
    select id, raw_data, otel.try_jsonb(raw_data)
      from otel_retried
     where raw_format = 'text';
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        execute format($sql$
            insert into pg_temp.%2$I (dlq_id, %4$s)
            select r.id, %4$s
              from otel_retried as r
             cross join lateral jsonb_populate_record(null::otel.%3$I, otel.try_jsonb(r.raw_data)) as s
             where r.raw_format = 'row-json' and r.telemetry_type = %1$L
               and jsonb_typeof(otel.try_jsonb(r.raw_data)) = 'object'
        $sql$, kind, 'otel_' || kind || '_rows', kind || '_staging', otel.staging_columns(kind));
    end loop;
    insert into pg_temp.otel_rejects
    select id, telemetry_type, source, raw_data, raw_format,
           'this row-json letter cannot be read back as a staging row (not a JSON object, or it holds \u0000): repair raw_data'
      from otel_retried
     where raw_format = 'row-json'
       and (telemetry_type not in ('traces', 'logs', 'metrics')
            or jsonb_typeof(otel.try_jsonb(raw_data)) is distinct from 'object');
    insert into pg_temp.otel_rejects
    select id, telemetry_type, source, raw_data, raw_format,
           'bytes that PostgreSQL cannot store as text: fix the source and load it again'
      from otel_retried
     where raw_format = 'bytea-escape';

    perform otel.process_working_set();
    perform otel.store_rejects();
    update otel.telemetry_dlq as d
       set processed_at = now()
      from otel_retried as r
     where d.id = r.id
       and not exists (select 1 from pg_temp.otel_rejects as x where x.dlq_id = r.id);
    drop table otel_retried;
end
$$;
comment on procedure otel.retry_dlq(integer) is
    'Re-validates unprocessed dead letters tried fewer than max_retries times: moves the good ones, counts the attempt on the rest';

create or replace function otel.drop_expired_partitions()
returns setof text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- A daily partition goes once its whole day is older than now() - keep, so
-- nothing younger than keep is ever dropped. Returns the dropped tables.
declare
    expired record;
begin
    for expired in
        select c.relname, c.oid::regclass as partition
          from otel.retention as r
          join pg_inherits as i on i.inhparent = format('otel.%I', r.kind)::regclass
          join pg_class as c on c.oid = i.inhrelid
         where c.relname ~ '_p[0-9]{8}$'
           and (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp at time zone 'UTC' <= now() - r.keep
         order by c.relname
    loop
        execute format('drop table otel.%I', expired.relname);
        return next expired.partition::text;
    end loop;
    delete from otel.trace_summaries as s
     using otel.retention as r
     where r.kind = 'traces' and s.end_time < now() - r.keep - interval '1 day';
end
$$;
comment on function otel.drop_expired_partitions() is
    'Drops the daily partitions of otel.traces, otel.logs and otel.metrics past their retention (otel.retention); returns their names';

create or replace function otel.metric_series(
    name text, bucket interval, since timestamptz, until timestamptz default now(),
    labels jsonb default null, agg text default 'avg')
returns table (bucket_start timestamptz, value double precision)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Buckets are bucket long and aligned to multiples of it counted from
-- 2000-01-01 UTC (whole minutes, hours, days: date_bin), so the first one
-- may start before since; only buckets with points are returned. A series
-- is one combination of labels, service and resource: they are told apart
-- by their labels and resource as jsonb text in the C collation (jsonb text
-- is canonical), several times cheaper to sort than jsonb values.
begin
    case agg
        when 'rate' then
            return query select * from otel.metric_series_rate(name, bucket, since, until, labels);
        when 'p50', 'p90', 'p99' then
            return query select * from otel.metric_series_quantile(name, bucket, since, until, labels, agg);
        else  -- the other aggregates, or an unknown one, which the check refuses
            return query select * from otel.metric_series_values(name, bucket, since, until, labels, agg);
    end case;
end
$$;
comment on function otel.metric_series(text, interval, timestamptz, timestamptz, jsonb, text) is
    'One metric as (bucket_start, value) rows from since to until in buckets of the given length, points filtered by labels (jsonb containment); agg is avg, min, max, sum, count, rate (per second, counter resets handled, cumulative or delta) or p50, p90, p99 (from histogram buckets)';

revoke all on function otel.decode_otlp_requests(text, bigint, bigint) from public;

revoke all on function otel.drop_repeated_spans() from public;

revoke all on function otel.sign_spans() from public;

revoke all on function otel.summarize_traces() from public;

revoke all on function otel.check_metric_series_arguments(text, interval, timestamptz, timestamptz, jsonb, text) from public;

grant execute on function otel.check_metric_series_arguments(text, interval, timestamptz, timestamptz, jsonb, text) to otel_reader, otel_admin;

revoke all on function otel.metric_series_values(text, interval, timestamptz, timestamptz, jsonb, text) from public;

grant execute on function otel.metric_series_values(text, interval, timestamptz, timestamptz, jsonb, text) to otel_reader, otel_admin;

revoke all on function otel.metric_series_rate(text, interval, timestamptz, timestamptz, jsonb) from public;

grant execute on function otel.metric_series_rate(text, interval, timestamptz, timestamptz, jsonb) to otel_reader, otel_admin;

revoke all on function otel.metric_series_quantile(text, interval, timestamptz, timestamptz, jsonb, text) from public;

grant execute on function otel.metric_series_quantile(text, interval, timestamptz, timestamptz, jsonb, text) to otel_reader, otel_admin;
"""

DOWNGRADE = r"""
create or replace function otel.decode_otlp(kind text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Decodes the claimed requests of one kind into pg_temp.otel_<kind>_rows:
-- all at once, else request by request, else record by record, so that a
-- bad record goes to the dead-letter queue and its siblings still land.
declare
    key record;
    request record;
    position record;
    single_id bigint;
    decode text := format('select otel.decode_otlp_%s($1, $2)', kind);
begin
    select * into key from otel.otlp_keys(kind);
    begin
        execute decode using 1::bigint, 9223372036854775807::bigint;
        return;
    exception when others then
        if otel.is_server_trouble(sqlstate) then raise; end if;
        null;  -- some request is bad: isolate it below
    end;
    create index if not exists otel_otlp_id on pg_temp.otel_otlp (id);  -- each request below is picked by id
    analyze pg_temp.otel_otlp;
    for request in
        select id, dlq_id, payload, doc from pg_temp.otel_otlp where doc ? key.resource_key order by id
    loop
        begin
            execute decode using request.id, request.id;
        exception when others then
            if otel.is_server_trouble(sqlstate) then raise; end if;
            begin
                for position in select * from otel.otlp_records(request.doc, kind) loop
                    begin
                        -- The record as a request of its own: decoding it costs
                        -- its own size, not the whole request's again.
                        insert into pg_temp.otel_otlp (dlq_id, doc)
                        values (request.dlq_id, otel.otlp_single_record(request.doc, kind, position.rs, position.ss,
                                                                        position.rec, position.dp))
                        returning id into single_id;
                        execute decode using single_id, single_id;
                    exception when others then
                        if otel.is_server_trouble(sqlstate) then raise; end if;
                        insert into pg_temp.otel_rejects
                        values (request.dlq_id, kind, 'otel.otlp_staging',
                                otel.otlp_single_record(request.doc, kind, position.rs, position.ss,
                                                        position.rec, position.dp)::text,
                                'text', 'rejected record: ' || sqlerrm);
                    end;
                end loop;
            exception when others then
                if otel.is_server_trouble(sqlstate) then raise; end if;
                -- Only this kind's part: the other signals of the request are judged on their own.
                insert into pg_temp.otel_rejects
                values (request.dlq_id, 'otlp', 'otel.otlp_staging',
                        case when request.doc ?| array_remove(array['resourceSpans', 'resourceLogs', 'resourceMetrics'], key.resource_key)
                             then jsonb_build_object(key.resource_key, request.doc -> key.resource_key)::text
                             else request.payload end,
                        'text', format('not a valid OTLP/JSON %s request: %s', kind, sqlerrm));
            end;
        end;
    end loop;
end
$$;
comment on function otel.decode_otlp(text) is
    'Decodes claimed OTLP/JSON requests of one kind, isolating bad requests and records; internal to otel.flush()';

create or replace function otel.type_rows(kind text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Types pg_temp.otel_<kind>_rows into pg_temp.otel_<kind>: in parallel
-- when there are many, else in one set-based statement; when a value
-- defeats it (malformed JSON text, an impossible date), chunk by chunk,
-- then row by row within the failing chunk.
declare
    chunk constant integer := 1000;
    last_n integer;
    chunk_start integer;
    row_n integer;
    type_range text := format('insert into pg_temp.%I %s',
                              'otel_' || kind, otel.typing_query(kind, otel.working_set_rows(kind)));
begin
    execute format('select coalesce(max(n), 0) from pg_temp.otel_%s_rows', kind) into last_n;
    if last_n = 0 or otel.type_rows_in_parallel(kind) then
        return;
    end if;
    begin
        execute type_range using 1, last_n;
        return;
    exception when others then
        if otel.is_server_trouble(sqlstate) then raise; end if;
        null;  -- some row is unreadable: isolate it below
    end;
    -- Each chunk and row below picks its rows by n.
    execute format('create index on pg_temp.otel_%s_rows (n)', kind);
    execute format('analyze pg_temp.otel_%s_rows', kind);
    for chunk_start in 1..last_n by chunk loop
        begin
            execute type_range using chunk_start, least(chunk_start + chunk - 1, last_n);
        exception when others then
            if otel.is_server_trouble(sqlstate) then raise; end if;
            for row_n in chunk_start..least(chunk_start + chunk - 1, last_n) loop
                begin
                    execute type_range using row_n, row_n;
                exception when others then
                    if otel.is_server_trouble(sqlstate) then raise; end if;
                    execute format('insert into pg_temp.otel_%s (n, err) values ($1, $2)', kind)
                        using row_n, 'unreadable row: ' || sqlerrm;
                end;
            end loop;
        end;
    end loop;
end
$$;
comment on function otel.type_rows(text) is
    'Validates and casts the text rows of one kind, isolating unreadable rows; internal to otel.flush()';

create or replace function otel.move_traces(out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
-- The working set's statistics need only be rough (they choose hashing or
-- sorting, and join orders): a sample of 9,000 rows instead of 30,000
-- takes a quarter of the time.
set default_statistics_target = 30
as $$
-- Valid spans into otel.traces: drop duplicates (within the batch and
-- against stored spans), upsert one signature per distinct signature
-- input, add the batch to otel.trace_summaries, and insert. Flushes are
-- serialised, so the duplicate check cannot race another flush.
declare
    stored_before bigint;
    first_start timestamptz;
    last_start timestamptz;
begin
    -- Row counts and the statistics of the columns the statements below
    -- join, group and filter on; sampling the JSON columns too would cost
    -- as much again.
    analyze pg_temp.otel_traces (err, trace_id, span_id, parent_span_id, start_time, signature_input, span_key);

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
    duplicates := 0;
    if exists (select from pg_temp.otel_repeated_keys) then
        delete from pg_temp.otel_traces as b
         using (select t.trace_id, t.span_id, min(t.n) as first_n
                  from pg_temp.otel_traces as t
                 where t.err is null and t.span_key in (select span_key from pg_temp.otel_repeated_keys)
                 group by t.trace_id, t.span_id
                having count(*) > 1) as repeated
         where b.trace_id = repeated.trace_id and b.span_id = repeated.span_id
           and b.n > repeated.first_n and b.err is null;
        get diagnostics duplicates = row_count;
    end if;
    -- Spans stored before. A span sent again has the same start time, so
    -- only the partitions of the batch's time range are searched: the check
    -- costs what the batch touches, not what otel.traces holds.
    select e.first_time, e.last_time into first_start, last_start
      from pg_temp.otel_batch_extent as e where e.kind = 'traces';
    if not found then
        raise exception 'otel.move_traces() needs the extent that otel.partition_working_set() records';
    end if;
    delete from pg_temp.otel_traces as b
     where b.err is null
       and exists (select 1 from otel.traces as t
                    where t.trace_id = b.trace_id and t.span_id = b.span_id
                      and t.start_time between first_start and last_start);
    get diagnostics stored_before = row_count;
    duplicates := duplicates + stored_before;

    create temp table otel_signature_ids (signature_input bigint primary key, signature_id bigint, created boolean)
        on commit drop;
    -- A table with statistics, so that the join below fetches the first
    -- span of each of the few distinct inputs by its position rather than
    -- reading every span again.
    create temp table otel_signature_inputs on commit drop as
    select signature_input, min(ctid) as first_span, count(*) as spans
      from pg_temp.otel_traces where err is null group by signature_input;
    analyze pg_temp.otel_signature_inputs;
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

    -- From the working set rather than the insert's returning rows: no
    -- second copy of every span to aggregate. Plain aggregates only: an
    -- ordered or distinct aggregate sorts the spans of every trace on its
    -- own, which cost more than all the rest of this statement. Most traces
    -- have one root span, which min() finds; only those with several look
    -- for the earliest. Ids are grouped byte-wise (collate "C"): the same
    -- groups, without the database's collation rules.
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
    insert into otel.trace_summaries as s (
        trace_id, start_time, end_time, duration_ms, root_service, root_name,
        span_count, error_count, services)
    select p.trace_id, p.start_time, p.end_time, extract(epoch from p.end_time - p.start_time) * 1000,
           case when p.roots > 1 then r.service_name else p.root_service end,
           case when p.roots > 1 then r.name else p.root_name end,
           p.span_count, p.error_count,
           array(select distinct x from unnest(p.services) as x order by x)
      from per_trace as p
      left join earliest_roots as r on r.trace_id = p.trace_id
     -- In the primary key's order (bytewise: the same for hex ids, and
     -- sorted faster): its pages are visited in turn rather than at random,
     -- which takes a quarter off the upsert for a sort of a twentieth.
     order by p.trace_id collate "C"
    on conflict (trace_id) do update set
        start_time = least(s.start_time, excluded.start_time),
        end_time = greatest(s.end_time, excluded.end_time),
        duration_ms = extract(epoch from greatest(s.end_time, excluded.end_time)
                                         - least(s.start_time, excluded.start_time)) * 1000,
        root_service = coalesce(excluded.root_service, s.root_service),
        root_name = coalesce(excluded.root_name, s.root_name),
        span_count = s.span_count + excluded.span_count,
        error_count = s.error_count + excluded.error_count,
        services = array(select distinct x from unnest(s.services || excluded.services) as x order by x);

    insert into otel.traces (
        trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time,
        duration_ms, status_code, status_message, service_name, scope_name, scope_version,
        attributes, resource_attributes, events, links, signature_id)
    select t.trace_id, t.span_id, t.parent_span_id, t.trace_state, t.flags, t.name, t.kind,
           t.start_time, t.end_time, t.duration_ms, t.status_code, t.status_message,
           t.service_name, t.scope_name, t.scope_version,
           t.attributes, t.resource_attributes, t.events, t.links, s.signature_id
      from pg_temp.otel_traces as t
      join pg_temp.otel_signature_ids as s using (signature_input)
     where t.err is null;
    get diagnostics moved = row_count;
end
$$;
comment on function otel.move_traces() is
    'Moves the valid spans of a flush into otel.traces with signatures and trace summaries; internal to otel.flush()';

create or replace function otel.reject_invalid_rows(kind text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Queues every row that failed validation for the dead-letter queue: a
-- staging row (from the working set or a claim table) as a JSON object of
-- its columns, a decoded record as an OTLP/JSON request holding just that
-- record.
begin
    if (select e.invalid_rows from pg_temp.otel_batch_extent as e where e.kind = reject_invalid_rows.kind) = 0 then
        return;  -- nothing to look for
    end if;
    execute format($sql$
        insert into pg_temp.otel_rejects
        select r.dlq_id, %1$L,
               case when r.payload_id is null then 'otel.%1$s_staging' else 'otel.otlp_staging' end,
               case when t.claimed is not null
                    then jsonb_strip_nulls(to_jsonb(c))::text
                    when r.payload_id is null
                    then jsonb_strip_nulls(to_jsonb(r) - '{n,dlq_id,payload_id,rs,ss,rec,dp}'::text[])::text
                    else otel.otlp_single_record(p.doc, %1$L, r.rs, r.ss, r.rec, r.dp)::text end,
               case when r.payload_id is null then 'row-json' else 'text' end,
               t.err
          from pg_temp.otel_%1$s as t
          left join pg_temp.otel_%1$s_rows as r on r.n = t.n
          left join otel.claimed_%1$s as c on c.ctid = t.claimed
          left join pg_temp.otel_otlp as p on p.id = r.payload_id
         where t.err is not null
    $sql$, kind);
end
$$;
comment on function otel.reject_invalid_rows(text) is
    'Moves rows that failed validation to the reject list of the flush; internal to otel.flush()';

create or replace function otel.process_working_set()
returns table (kind text, moved bigint, duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Decode, validate, cast and move everything in the working set; queue
-- the rejects. Shared by otel.flush() and otel.retry_dlq().
declare
    k text;
    result record;
begin
    insert into pg_temp.otel_rejects
    select dlq_id, 'otlp', 'otel.otlp_staging', payload, 'text',
           case when doc is null then 'not valid JSON (an OTLP/JSON request is one JSON object per line)'
                else 'not an OTLP/JSON export request: expected an object with resourceSpans, resourceLogs or resourceMetrics' end
      from pg_temp.otel_otlp
     where doc is null
        or jsonb_typeof(doc) <> 'object'
        or not (doc ?| array['resourceSpans', 'resourceLogs', 'resourceMetrics']);

    foreach k in array array['traces', 'logs', 'metrics'] loop
        perform otel.decode_otlp(k);
        perform otel.type_rows(k);
        perform otel.partition_working_set(k, case k when 'traces' then 'start_time' else 'time' end);
        perform otel.reject_invalid_rows(k);
        execute format('select * from otel.move_%s()', k) into result;
        kind := k;
        moved := result.moved;
        duplicates := result.duplicates;
        return next;
    end loop;
end
$$;
comment on function otel.process_working_set() is
    'Decodes, validates and moves the working set of a flush or a retry; internal';

create or replace procedure otel.retry_dlq(max_retries integer default 3)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set jit = off
as $$
-- Re-validates every unprocessed letter tried fewer than max_retries times
-- (after a fix to the data, or to otel_db). Letters that pass move to their
-- final table and are marked processed; the others count the attempt.
-- Letters of bytes PostgreSQL cannot store as text only count the attempt.
declare
    kind text;
begin
    if max_retries is null or max_retries < 1 then
        raise exception 'max_retries must be a positive integer, got %', coalesce(max_retries::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    perform pg_advisory_xact_lock(hashtext('otel.flush'));
    perform otel.flush_prepare();

    create temp table otel_retried on commit drop as
        select id, telemetry_type, source, raw_data, raw_format
          from otel.telemetry_dlq
         where processed_at is null and retry_count < max_retries
         order by id
           for update skip locked;

    insert into pg_temp.otel_otlp (dlq_id, payload, doc)
    select id, raw_data, otel.try_jsonb(raw_data)
      from otel_retried
     where raw_format = 'text';
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        execute format($sql$
            insert into pg_temp.otel_%1$s_rows (dlq_id, %2$s)
            select r.id, %2$s
              from otel_retried as r
             cross join lateral jsonb_populate_record(null::otel.%1$s_staging, otel.try_jsonb(r.raw_data)) as s
             where r.raw_format = 'row-json' and r.telemetry_type = %1$L
               and jsonb_typeof(otel.try_jsonb(r.raw_data)) = 'object'
        $sql$, kind, otel.staging_columns(kind));
    end loop;
    insert into pg_temp.otel_rejects
    select id, telemetry_type, source, raw_data, raw_format,
           'this row-json letter cannot be read back as a staging row (not a JSON object, or it holds \u0000): repair raw_data'
      from otel_retried
     where raw_format = 'row-json'
       and (telemetry_type not in ('traces', 'logs', 'metrics')
            or jsonb_typeof(otel.try_jsonb(raw_data)) is distinct from 'object');
    insert into pg_temp.otel_rejects
    select id, telemetry_type, source, raw_data, raw_format,
           'bytes that PostgreSQL cannot store as text: fix the source and load it again'
      from otel_retried
     where raw_format = 'bytea-escape';

    perform otel.process_working_set();
    perform otel.store_rejects();
    update otel.telemetry_dlq as d
       set processed_at = now()
      from otel_retried as r
     where d.id = r.id
       and not exists (select 1 from pg_temp.otel_rejects as x where x.dlq_id = r.id);
    drop table otel_retried;
end
$$;
comment on procedure otel.retry_dlq(integer) is
    'Re-validates unprocessed dead letters tried fewer than max_retries times: moves the good ones, counts the attempt on the rest';

create or replace function otel.drop_expired_partitions()
returns setof text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- A daily partition goes once its whole day is older than now() - keep, so
-- nothing younger than keep is ever dropped. Returns the dropped tables.
declare
    expired record;
begin
    for expired in
        select c.oid::regclass as partition
          from otel.retention as r
          join pg_inherits as i on i.inhparent = format('otel.%I', r.kind)::regclass
          join pg_class as c on c.oid = i.inhrelid
         where c.relname ~ '_p[0-9]{8}$'
           and (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp at time zone 'UTC' <= now() - r.keep
         order by c.relname
    loop
        execute format('drop table %s', expired.partition);
        return next expired.partition::text;
    end loop;
    delete from otel.trace_summaries as s
     using otel.retention as r
     where r.kind = 'traces' and s.end_time < now() - r.keep - interval '1 day';
end
$$;
comment on function otel.drop_expired_partitions() is
    'Drops the daily partitions of otel.traces, otel.logs and otel.metrics past their retention (otel.retention); returns their names';

create or replace function otel.metric_series(
    name text, bucket interval, since timestamptz, until timestamptz default now(),
    labels jsonb default null, agg text default 'avg')
returns table (bucket_start timestamptz, value double precision)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Buckets are bucket long and aligned to multiples of it counted from
-- 2000-01-01 UTC (whole minutes, hours, days: date_bin), so the first one
-- may start before since; only buckets with points are returned. A series is one combination of labels, service and
-- resource. agg:
--   avg, min, max, sum, count  of the points' values (gauges, sums); for
--                              histograms and summaries of their sum/count,
--                              min and max
--   rate                       per-second increase of a monotonic sum:
--                              cumulative points are differenced per series
--                              (a drop, or a new start_time, is a counter
--                              reset: the new value is the increase), delta
--                              points are increases already
--   p50, p90, p99              from explicit-bucket histograms: the bucket
--                              counts of the interval (differenced when
--                              cumulative, as for rate), summed over series
-- Series are told apart by their labels and resource as jsonb text in the C
-- collation (jsonb text is canonical): sorting that is several times
-- cheaper than sorting jsonb values.
declare
    metric text := metric_series.name;
    quantile double precision;
    bucket_seconds double precision;
begin
    if metric is null or metric = '' then
        raise exception 'name must name a metric, got %', coalesce(quote_literal(metric), 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if bucket is null or bucket < interval '1 second' or bucket > interval '366 days' then
        raise exception 'bucket must be an interval from 1 second to 366 days, got %', coalesce(bucket::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if bucket <> justify_hours(bucket) or extract(month from bucket) <> 0 or extract(year from bucket) <> 0 then
        raise exception 'bucket must be a fixed length (seconds, minutes, hours or days), got %', bucket
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_time_range(since, until, true);
    if (extract(epoch from until - since) / extract(epoch from bucket)) > 100000 then
        raise exception 'since to until holds more than 100000 buckets of %; choose a larger bucket', bucket
            using errcode = 'invalid_parameter_value';
    end if;
    if labels is not null and jsonb_typeof(labels) <> 'object' then
        raise exception 'labels must be a JSON object of label values to match, got %', labels
            using errcode = 'invalid_parameter_value';
    end if;
    if agg is null or agg not in ('avg', 'min', 'max', 'sum', 'count', 'rate', 'p50', 'p90', 'p99') then
        raise exception 'agg must be one of avg, min, max, sum, count, rate, p50, p90, p99, got %',
                        coalesce(quote_literal(agg), 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    bucket_seconds := extract(epoch from bucket);

    if agg in ('avg', 'min', 'max', 'sum', 'count') then
        return query
            select date_bin(bucket, m.time, timestamptz '2000-01-01 00:00:00+00') as b,
                   case agg
                       when 'avg' then coalesce(avg(m.value), sum(m.sum) / nullif(sum(m.count), 0)::double precision)
                       when 'min' then coalesce(min(m.value), min(m.min))
                       when 'max' then coalesce(max(m.value), max(m.max))
                       when 'sum' then coalesce(sum(m.value), sum(m.sum))
                       else coalesce(count(m.value), 0) + coalesce(sum(m.count), 0)::double precision
                   end
              from otel.metrics as m
             where m.name = metric and m.time >= since and m.time < until
               and (metric_series.labels is null or m.labels @> metric_series.labels)
             group by 1
             order by 1;
        return;
    end if;

    -- rate and quantiles difference cumulative points per series: a point
    -- needs its predecessor, so points up to an hour (or a bucket, if
    -- longer) before since are read too: export intervals are often longer
    -- than a bucket.
    if agg = 'rate' then
        return query
            with points as (
                select m.time, m.start_time, m.value, m.temporality,
                       lag(m.value) over series as previous_value,
                       lag(m.start_time) over series as previous_start
                  from otel.metrics as m
                 where m.name = metric and m.type = 'sum' and m.is_monotonic is not false
                   and m.time >= since - greatest(bucket, interval '1 hour') and m.time < until
                   and (metric_series.labels is null or m.labels @> metric_series.labels)
                window series as (partition by m.service_name collate "C", m.labels::text collate "C",
                                     m.resource_attributes::text collate "C" order by m.time)
            ),
            increases as (
                select p.time,
                       case
                           when p.temporality = 'delta' then p.value
                           when p.previous_value is null then null
                           when p.value < p.previous_value or p.start_time is distinct from p.previous_start then p.value
                           else p.value - p.previous_value
                       end as increase
                  from points as p
                 where p.time >= since
            )
            select date_bin(bucket, i.time, timestamptz '2000-01-01 00:00:00+00'), sum(i.increase) / bucket_seconds
              from increases as i
             group by 1
            having count(i.increase) > 0
             order by 1;
        return;
    end if;

    quantile := substr(agg, 2)::double precision / 100;
    return query
        with points as (
            select m.time, m.start_time, m.temporality, m.bucket_counts, m.explicit_bounds,
                   lag(m.bucket_counts) over series as previous_counts,
                   lag(m.start_time) over series as previous_start,
                   lag(m.explicit_bounds) over series as previous_bounds
              from otel.metrics as m
             where m.name = metric and m.type = 'histogram' and m.bucket_counts is not null
               and m.time >= since - greatest(bucket, interval '1 hour') and m.time < until
               and (metric_series.labels is null or m.labels @> metric_series.labels)
            window series as (partition by m.service_name collate "C", m.labels::text collate "C",
                                     m.resource_attributes::text collate "C" order by m.time)
        ),
        -- Whether a point continues its predecessor is decided once per
        -- point (base: the counts to subtract, null after a reset or for
        -- delta points), not once per bucket count: materialized, or the
        -- planner would fold it into the per-count query below.
        deltas as materialized (
            select date_bin(bucket, p.time, timestamptz '2000-01-01 00:00:00+00') as b, p.time,
                   p.explicit_bounds::text collate "C" as layout, p.bucket_counts,
                   case
                       when p.temporality = 'delta' or p.start_time is distinct from p.previous_start
                         or p.explicit_bounds is distinct from p.previous_bounds
                         or cardinality(p.previous_counts) <> cardinality(p.bucket_counts)
                         or exists (select from unnest(p.bucket_counts, p.previous_counts) as d (now_count, then_count)
                                     where d.now_count < d.then_count)
                       then null
                       else p.previous_counts
                   end as base
              from points as p
             where p.time >= since
               and not (p.temporality = 'cumulative' and p.previous_counts is null)  -- no known start
        ),
        -- Bounds travel as text (a cheap grouping key) and are cast back once per bucket.
        per_bucket as (
            select d.b, d.layout, x.i, sum(x.c - coalesce(d.base[x.i], 0)) as c
              from deltas as d
             cross join lateral unnest(d.bucket_counts) with ordinality as x (c, i)
             group by d.b, d.layout, x.i
        ),
        per_layout as (
            select pb.b, pb.layout::double precision[] as explicit_bounds, array_agg(pb.c order by pb.i) as counts,
                   count(*) over (partition by pb.b) as layouts
              from per_bucket as pb
             group by pb.b, pb.layout
            having sum(pb.c) > 0
        )
        -- Counts of different bucket bounds cannot be added up.
        select l.b,
               case when l.layouts > 1
                    then otel.metric_series_mixed_bounds(metric, l.b)
                    else otel.histogram_quantile(quantile, l.counts, l.explicit_bounds) end
          from per_layout as l
         order by l.b;
end
$$;
comment on function otel.metric_series(text, interval, timestamptz, timestamptz, jsonb, text) is
    'One metric as (bucket_start, value) rows from since to until in buckets of the given length, points filtered by labels (jsonb containment); agg is avg, min, max, sum, count, rate (per second, counter resets handled, cumulative or delta) or p50, p90, p99 (from histogram buckets)';

drop function otel.decode_otlp_requests(text, bigint, bigint);

drop function otel.drop_repeated_spans();

drop function otel.sign_spans();

drop function otel.summarize_traces();

drop function otel.check_metric_series_arguments(text, interval, timestamptz, timestamptz, jsonb, text);

drop function otel.metric_series_values(text, interval, timestamptz, timestamptz, jsonb, text);

drop function otel.metric_series_rate(text, interval, timestamptz, timestamptz, jsonb);

drop function otel.metric_series_quantile(text, interval, timestamptz, timestamptz, jsonb, text);
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
