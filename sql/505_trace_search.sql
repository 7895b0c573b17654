-- Finding traces as Jaeger, Tempo and SigNoz users do: the services and
-- operations stored (from the catalog the flush keeps), traces by service,
-- operation, attributes, duration and status in a time window, and the
-- calls between services.

create or replace function otel.services(since timestamptz default null, until timestamptz default null)
returns table (service_name text, operations bigint, first_seen timestamptz, last_seen timestamptz)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- From otel.operation_catalog, whatever the size of otel.traces; since and
-- until (either may be null) keep the services with an operation last seen
-- in that window.
begin
    perform otel.check_time_range(since, until, false);
    return query
        select c.service_name, count(*), min(c.first_seen), max(c.last_seen)
          from otel.operation_catalog as c
         where (services.since is null or c.last_seen >= services.since)
           and (services.until is null or c.first_seen <= services.until)
         group by c.service_name
         order by c.service_name;
end
$$;
comment on function otel.services(timestamptz, timestamptz) is
    'Every service with stored spans: service_name, operations, first_seen, last_seen (start of its first and last span); since/until keep those seen in that window. Read from `otel.operation_catalog`, which the flush keeps (and retention prunes), so it answers in a fraction of a millisecond at any size';

create or replace function otel.operations(
    service text, span_kind text default null, since timestamptz default null, until timestamptz default null)
returns table (name text, kind text, first_seen timestamptz, last_seen timestamptz)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    wanted_kind text := upper(operations.span_kind);
begin
    if service is null then
        raise exception 'service must be a service name, got null' using errcode = 'invalid_parameter_value';
    end if;
    if wanted_kind is not null and wanted_kind not in ('UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER') then
        raise exception 'span_kind must be one of server, client, producer, consumer, internal, unspecified, got %',
                        otel.argument_text(operations.span_kind)
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_time_range(since, until, false);
    return query
        select c.name, c.span_kind, c.first_seen, c.last_seen
          from otel.operation_catalog as c
         where c.service_name = operations.service
           and (wanted_kind is null or c.span_kind = wanted_kind)
           and (operations.since is null or c.last_seen >= operations.since)
           and (operations.until is null or c.first_seen <= operations.until)
         order by c.name, c.span_kind;
end
$$;
comment on function otel.operations(text, text, timestamptz, timestamptz) is
    'The operations (span names) of a service from the catalog the flush keeps (`otel.operation_catalog`): name, kind, first_seen, last_seen; span_kind in any case (`server`, `CLIENT`, …); 22023 for a null service or an unknown kind';

create or replace function otel.find_traces(
    service text default null, operation text default null, attributes jsonb default null,
    min_duration interval default null, max_duration interval default null, status text default null,
    since timestamptz default now() - interval '1 hour', until timestamptz default now(), lim integer default 20)
returns table (
    trace_id text, root_service text, root_name text, start_time timestamptz, duration_ms double precision,
    span_count bigint, error_count bigint, services text[])
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- As in Jaeger, a trace matches when one of its spans started in [since,
-- until) matches every criterion at once: service, operation (span name),
-- each attribute (its own or its resource's, equal to the value as given
-- or to the number or boolean it spells, so that "500" finds the number
-- 500), duration and status. The attribute `error`
-- set to true asks for failing spans, as the Jaeger UI's error=true does
-- (status ERROR, or a stored attribute error=true); set to false, for the
-- others. The spans are read newest first and the search stops at lim
-- traces, so a broad search costs little more than a narrow one; with no
-- span criterion at all, the trace summaries answer by themselves. Only
-- the partitions of the window are read.
declare
    wanted_status text := upper(find_traces.status);
    wanted_error boolean;
    conditions text := '';
    attribute record;
    resource_keys text[];
    value_text text;
    candidates jsonb[];
    search text;
    page_end timestamptz;
    page_size bigint;
    spans_read bigint;
    found_trace record;
    found_ids text[] := '{}';
begin
    perform otel.check_time_range(since, until, true);
    perform otel.check_limit(lim);
    if wanted_status is not null and wanted_status not in ('ERROR', 'OK', 'UNSET') then
        raise exception 'status must be ERROR, OK or UNSET, got %', otel.argument_text(find_traces.status)
            using errcode = 'invalid_parameter_value';
    end if;
    if min_duration < interval '0' then
        raise exception 'min_duration must not be negative, got %', min_duration
            using errcode = 'invalid_parameter_value';
    end if;
    if max_duration < interval '0' then
        raise exception 'max_duration must not be negative, got %', max_duration
            using errcode = 'invalid_parameter_value';
    end if;
    if min_duration > max_duration then
        raise exception 'min_duration (%) is above max_duration (%)', min_duration, max_duration
            using errcode = 'invalid_parameter_value';
    end if;
    if attributes is not null and jsonb_typeof(attributes) <> 'object' then
        raise exception 'attributes must be a JSON object of keys and values, got %', left(attributes::text, 100)
            using errcode = 'invalid_parameter_value';
    end if;
    select coalesce(array_agg(distinct k), '{}') into resource_keys
      from otel.operation_catalog as c
     cross join unnest(c.resource_keys) as k
     where find_traces.service is null or c.service_name = find_traces.service;
    for attribute in select a.key, a.value from jsonb_each(attributes) as a loop
        if jsonb_typeof(attribute.value) not in ('string', 'number', 'boolean') then
            raise exception 'attribute % must be a string, number or boolean, got %',
                            attribute.key, left(attribute.value::text, 100)
                using errcode = 'invalid_parameter_value';
        end if;
        if attribute.key = 'error' and lower(attribute.value #>> '{}') in ('true', 'false') then
            wanted_error := lower(attribute.value #>> '{}') = 'true';
            continue;
        end if;
        -- The value as text, and as the number or boolean it spells: tags
        -- come as text ("500"), attributes are stored typed (500).
        value_text := attribute.value #>> '{}';
        candidates := array[jsonb_build_object(attribute.key, value_text)];
        if value_text ~ '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$' then
            candidates := candidates || jsonb_build_object(attribute.key, value_text::numeric);
        end if;
        if lower(value_text) in ('true', 'false') then
            candidates := candidates || jsonb_build_object(attribute.key, lower(value_text)::boolean);
        end if;
        -- Containment, which the GIN index on span attributes answers, unless
        -- the key is one of the resources': those are read span by span.
        conditions := conditions || ' and (' || (
            select string_agg(format('t.attributes @> %L', c), ' or ')
                   || case when attribute.key = any (resource_keys)
                           then ' or ' || string_agg(format('t.resource_attributes @> %L', c), ' or ')
                           else '' end
              from unnest(candidates) as c) || ')';
    end loop;
    if wanted_error then
        conditions := conditions || ' and (t.status_code = ''ERROR'' or t.attributes ->> ''error'' = ''true'')';
    elsif not wanted_error then
        conditions := conditions
                      || ' and t.status_code <> ''ERROR'' and t.attributes ->> ''error'' is distinct from ''true''';
    end if;
    if service is null and operation is null and conditions = '' and wanted_status is null
       and min_duration is null and max_duration is null then
        return query
            select s.trace_id, s.root_service, s.root_name, s.start_time, s.duration_ms, s.span_count,
                   s.error_count, s.services
              from otel.all_trace_summaries as s
             where s.start_time >= since and s.start_time < until
             order by s.start_time desc, s.trace_id
             limit lim;
        return;
    end if;
    -- Pages of matching spans, newest first, each four times the last: a
    -- page has a limit, so the planner walks the (service_name, start_time)
    -- index in order and stops, where without one it would sort every
    -- match. A page goes on from the start of the last one's oldest span
    -- (inclusive: spans that started at the same microsecond are not lost;
    -- their traces are seen already).
    search := 'select t.trace_id, t.start_time from otel.traces as t'
        || ' where t.start_time >= $1 and t.start_time < $2 and t.start_time <= $8'
        || case when service is not null then ' and t.service_name = $3' else '' end
        || case when operation is not null then ' and t.name = $4' else '' end
        || case when wanted_status is not null then ' and t.status_code = $5' else '' end
        || case when min_duration is not null then ' and t.duration_ms >= $6' else '' end
        || case when max_duration is not null then ' and t.duration_ms <= $7' else '' end
        || conditions
        || ' order by t.start_time desc limit $9';
    page_end := until;
    page_size := 8 * lim;
    <<pages>>
    loop
        spans_read := 0;
        for found_trace in execute search
            using since, until, service, operation, wanted_status,
                  extract(epoch from min_duration) * 1000, extract(epoch from max_duration) * 1000,
                  page_end, page_size
        loop
            spans_read := spans_read + 1;
            page_end := found_trace.start_time;
            continue when found_trace.trace_id = any (found_ids);
            found_ids := found_ids || found_trace.trace_id;
            exit pages when cardinality(found_ids) >= lim;
        end loop;
        exit when spans_read < page_size;
        page_size := 4 * page_size;
    end loop;
    return query
        select s.trace_id, s.root_service, s.root_name, s.start_time, s.duration_ms, s.span_count, s.error_count,
               s.services
          from otel.trace_summaries_of(found_ids) as s
         order by s.start_time desc, s.trace_id;
end
$$;
comment on function otel.find_traces(text, text, jsonb, interval, interval, text, timestamptz, timestamptz, integer) is
    'Jaeger-style trace search: the newest `lim` (1..10000) traces with a span started in [since, until) that matches every criterion at once (service, span name, each attribute, duration, status `ERROR`/`OK`/`UNSET` in any case). An attribute matches the span''s own attributes or its resource''s, equal to the value as given or to the number or boolean it spells (`{"http.response.status_code": "503"}` finds 503); `{"error": true}` asks for failing spans, as Jaeger''s `error=true` tag. One row a trace: trace_id, root_service, root_name, start_time, duration_ms, span_count, error_count, services; newest first. With no criterion at all, the traces that started in the window, from the trace summaries (`otel.all_trace_summaries`, cold days'' too). Only the window''s partitions are read; spans newest first, in pages, until `lim` traces; span attributes through their GIN index. Resource attributes are matched for the keys the catalog has seen on the service''s resources, span by span: the flush records the keys of the first span of each distinct operation and status in a batch, so a key that only some of a service''s resources carry can be missed until such a span comes first (a resource table, planned with the compact layout, will record every resource); 22023 for bad arguments';

create or replace function otel.service_dependencies(since timestamptz, until timestamptz default now())
returns table (parent text, child text, call_count bigint)
language plpgsql stable
set search_path = pg_catalog, pg_temp
set jit = off
as $$
-- Each span started in [since, until) whose parent belongs to another
-- service is a call from that service to its own. Parents are looked up
-- from a day before the window (a longer-running parent is not counted)
-- to an hour after it (clocks of two hosts disagree).
begin
    perform otel.check_time_range(since, until, true);
    if until - since > interval '31 days' then
        raise exception 'the window from since to until must be at most 31 days, got %', until - since
            using errcode = 'invalid_parameter_value';
    end if;
    return query
        select p.service_name, c.service_name, count(*)
          from otel.traces as c
          join otel.traces as p on p.trace_id = c.trace_id and p.span_id = c.parent_span_id
         where c.start_time >= since and c.start_time < until
           and p.start_time >= since - interval '1 day' and p.start_time < until + interval '1 hour'
           and p.service_name <> c.service_name
         group by 1, 2
         order by 3 desc, 1, 2;
end
$$;
comment on function otel.service_dependencies(timestamptz, timestamptz) is
    'The calls between services in [since, until) (at most 31 days): parent, child, call_count (child spans whose parent span is of the other service), most first; for a service map';
