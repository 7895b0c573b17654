-- Stage 2, decode: the records of claimed OTLP/JSON requests become rows
-- of text, like staged rows; a bad request or record is isolated.
-- A record's times stay text here: the typing step reads them as Unix
-- nanoseconds only (otel.parse_record_time), parsing each value once.

create or replace function otel.otlp_keys(kind text, out resource_key text, out scope_key text, out record_key text)
language sql immutable parallel safe
as $$
    select v.resource_key, v.scope_key, v.record_key
      from (values ('traces', 'resourceSpans', 'scopeSpans', 'spans'),
                   ('logs', 'resourceLogs', 'scopeLogs', 'logRecords'),
                   ('metrics', 'resourceMetrics', 'scopeMetrics', 'metrics'))
           as v (kind, resource_key, scope_key, record_key)
     where v.kind = otlp_keys.kind
$$;
comment on function otel.otlp_keys(text) is
    'The OTLP/JSON field names of a request of traces, logs or metrics: resource, scope and record arrays';

create or replace function otel.otlp_request_records(doc jsonb, kind text)
returns table (rs int, ss int, rec int, resource_attributes jsonb, scope jsonb, record jsonb)
language sql immutable parallel safe
as $$
    -- Every record of an OTLP/JSON request with its position (1-based), its
    -- resource's attributes (decoded once per resource: a function in FROM
    -- is called once per resource, never per record, and decoding takes 6 %
    -- less time than with a subquery fenced by offset 0) and its scope. One
    -- inlinable query, shared by the decoders of all three kinds.
    select r.i::int, s.j::int, x.k::int, resource.attributes, s.v -> 'scope', x.v
      from otel.otlp_keys(kind) as key
     cross join lateral jsonb_array_elements(doc -> key.resource_key) with ordinality as r (v, i)
     cross join lateral otel.otlp_attributes(r.v -> 'resource' -> 'attributes') as resource (attributes)
     cross join lateral jsonb_array_elements(r.v -> key.scope_key) with ordinality as s (v, j)
     cross join lateral jsonb_array_elements(s.v -> key.record_key) with ordinality as x (v, k)
$$;
comment on function otel.otlp_request_records(jsonb, text) is
    'Every record of an OTLP/JSON request of traces, logs or metrics, with its position, resource attributes and scope';

create or replace function otel.metric_data(metric jsonb, out type text, out data jsonb)
language sql immutable parallel safe
as $$
    select case when metric ? 'gauge' then 'gauge' when metric ? 'sum' then 'sum'
                when metric ? 'histogram' then 'histogram'
                when metric ? 'exponentialHistogram' then 'exponential_histogram'
                when metric ? 'summary' then 'summary' end,
           coalesce(metric -> 'gauge', metric -> 'sum', metric -> 'histogram',
                    metric -> 'exponentialHistogram', metric -> 'summary')
$$;
comment on function otel.metric_data(jsonb) is
    'The type of an OTLP/JSON metric (gauge, sum, histogram, exponential_histogram, summary) and its data object';

create or replace function otel.otlp_records(doc jsonb, kind text)
returns table (rs int, ss int, rec int, dp int)
language sql immutable parallel safe
as $$
    -- Every record of a request by position; for metrics every data point
    -- of every metric.
    select x.rs, x.ss, x.rec, p.l::int
      from otel.otlp_request_records(doc, kind) as x
      left join lateral jsonb_array_elements(
                case when kind = 'metrics' then (otel.metric_data(x.record)).data -> 'dataPoints' end)
                with ordinality as p (v, l) on true
$$;
comment on function otel.otlp_records(jsonb, text) is
    'Positions (resource, scope, record, data point) of every record in an OTLP/JSON request';

create or replace function otel.otlp_single_record(doc jsonb, kind text, rs int, ss int, rec int, dp int)
returns jsonb
language sql immutable parallel safe
as $$
    -- A request holding only the given record, with its resource and scope:
    -- what the dead-letter queue keeps, and what a retry loads again.
    with key as (select * from otel.otlp_keys(kind)),
    parts as (
        select key.*,
               doc -> key.resource_key -> (rs - 1) as resource,
               doc -> key.resource_key -> (rs - 1) -> key.scope_key -> (ss - 1) as scope,
               doc -> key.resource_key -> (rs - 1) -> key.scope_key -> (ss - 1) -> key.record_key -> (rec - 1) as record
          from key
    ),
    one as (
        select parts.*,
               case when dp is null then record
                    else (select jsonb_set(record, array[f, 'dataPoints'],
                                           jsonb_build_array(record -> f -> 'dataPoints' -> (dp - 1)))
                            from unnest(array['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary']) as f
                           where record ? f
                           limit 1)
               end as single
          from parts
    )
    select jsonb_build_object(resource_key, jsonb_build_array(
               resource || jsonb_build_object(scope_key, jsonb_build_array(
                   scope || jsonb_build_object(record_key, jsonb_build_array(single))))))
      from one
$$;
comment on function otel.otlp_single_record(jsonb, text, int, int, int, int) is
    'An OTLP/JSON request with only the record at the given position, its resource and its scope';

create or replace function otel.decode_otlp_traces(first_id bigint, last_id bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Spans of the claimed requests first_id..last_id as rows of text, and of
-- JSON where the request has it already.
begin
    insert into pg_temp.otel_traces_rows (
        dlq_id, payload_id, rs, ss, rec,
        trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time,
        status_code, status_message, service_name, scope_name, scope_version,
        attributes_jsonb, resource_attributes_jsonb, events_jsonb, links_jsonb)
    select p.dlq_id, p.id, x.rs, x.ss, x.rec,
           x.v ->> 'traceId', x.v ->> 'spanId', x.v ->> 'parentSpanId', otel.otlp_string(x.v -> 'traceState', 'traceState'),
           x.v ->> 'flags', otel.otlp_string(x.v -> 'name', 'name'), x.v ->> 'kind',
           x.v ->> 'startTimeUnixNano', x.v ->> 'endTimeUnixNano',
           x.v -> 'status' ->> 'code', otel.otlp_string(x.v -> 'status' -> 'message', 'status.message'),
           x.resource_attributes ->> 'service.name', x.scope ->> 'name', x.scope ->> 'version',
           (select coalesce(jsonb_object_agg(kv.key, otel.otlp_value(kv.value)), '{}')
              from jsonb_to_recordset(x.v -> 'attributes') as kv (key text, value jsonb)),
           x.resource_attributes,
           -- Most spans have neither events nor links: the guards skip
           -- their subqueries (a tenth of the decoding time).
           case when x.v ? 'events' then
           (select jsonb_agg(jsonb_build_object(
                       'name', otel.otlp_string(e -> 'name', 'event name'),
                       'time', otel.parse_time(otel.otlp_uint64(e ->> 'timeUnixNano', 'event timeUnixNano')),
                       'attributes', (select coalesce(jsonb_object_agg(kv.key, otel.otlp_value(kv.value)), '{}')
                                        from jsonb_to_recordset(e -> 'attributes') as kv (key text, value jsonb))) order by ei)
              from jsonb_array_elements(x.v -> 'events') with ordinality as ev (e, ei)) end,
           case when x.v ? 'links' then
           (select jsonb_agg(jsonb_build_object(
                       'trace_id', otel.otlp_id(l -> 'traceId', 32, 'link traceId'),
                       'span_id', otel.otlp_id(l -> 'spanId', 16, 'link spanId'),
                       'trace_state', nullif(otel.otlp_string(l -> 'traceState', 'link traceState'), ''),
                       'attributes', (select coalesce(jsonb_object_agg(kv.key, otel.otlp_value(kv.value)), '{}')
                                        from jsonb_to_recordset(l -> 'attributes') as kv (key text, value jsonb))) order by li)
              from jsonb_array_elements(x.v -> 'links') with ordinality as lk (l, li)) end
      from pg_temp.otel_otlp as p
     cross join lateral otel.otlp_request_records(p.doc, 'traces') as x (rs, ss, rec, resource_attributes, scope, v)
     where p.id between first_id and last_id
       and p.doc ? 'resourceSpans';
end
$$;
comment on function otel.decode_otlp_traces(bigint, bigint) is
    'Decodes the spans of claimed OTLP/JSON requests into text rows; internal to otel.flush()';

create or replace function otel.decode_otlp_logs(first_id bigint, last_id bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Log records of the claimed requests first_id..last_id as text rows.
-- A string body stays text; any other body is kept as JSON text.
begin
    insert into pg_temp.otel_logs_rows (
        dlq_id, payload_id, rs, ss, rec,
        time, observed_time, severity_number, severity_text, body, trace_id, span_id, flags,
        service_name, scope_name, scope_version, attributes, resource_attributes, event_name)
    select p.dlq_id, p.id, x.rs, x.ss, x.rec,
           x.v ->> 'timeUnixNano', x.v ->> 'observedTimeUnixNano', x.v ->> 'severityNumber',
           otel.otlp_string(x.v -> 'severityText', 'severityText'),
           case when jsonb_typeof(x.v -> 'body') = 'object' and (x.v -> 'body') - 'stringValue' = '{}'
                then x.v -> 'body' ->> 'stringValue'
                else otel.otlp_value(x.v -> 'body')::text end,
           x.v ->> 'traceId', x.v ->> 'spanId', x.v ->> 'flags',
           x.resource_attributes ->> 'service.name', x.scope ->> 'name', x.scope ->> 'version',
           (select coalesce(jsonb_object_agg(kv.key, otel.otlp_value(kv.value)), '{}')
              from jsonb_to_recordset(x.v -> 'attributes') as kv (key text, value jsonb))::text,
           x.resource_attributes::text,
           otel.otlp_string(x.v -> 'eventName', 'eventName')
      from pg_temp.otel_otlp as p
     cross join lateral otel.otlp_request_records(p.doc, 'logs') as x (rs, ss, rec, resource_attributes, scope, v)
     where p.id between first_id and last_id
       and p.doc ? 'resourceLogs';
end
$$;
comment on function otel.decode_otlp_logs(bigint, bigint) is
    'Decodes the log records of claimed OTLP/JSON requests into text rows; internal to otel.flush()';

create or replace function otel.decode_otlp_metrics(first_id bigint, last_id bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Data points of the claimed requests first_id..last_id as text rows. An
-- absent timeUnixNano or count is 0, as proto3 JSON omits zero values; a
-- point without asDouble or asInt keeps a null value.
begin
    insert into pg_temp.otel_metrics_rows (
        dlq_id, payload_id, rs, ss, rec, dp,
        time, start_time, name, description, type, unit, value, count, sum, min, max,
        bucket_counts, explicit_bounds, quantiles, exponential, exemplars,
        temporality, is_monotonic, flags, labels, resource_attributes,
        service_name, scope_name, scope_version)
    select p.dlq_id, p.id, x.rs, x.ss, x.rec, d.l,
           coalesce(d.v ->> 'timeUnixNano', '0'), d.v ->> 'startTimeUnixNano',
           otel.otlp_string(x.v -> 'name', 'name'), otel.otlp_string(x.v -> 'description', 'description'),
           -- proto3 JSON refuses a second member of a oneof.
           case when (x.v ? 'gauge')::int + (x.v ? 'sum')::int + (x.v ? 'histogram')::int
                     + (x.v ? 'exponentialHistogram')::int + (x.v ? 'summary')::int > 1
                then otel.otlp_invalid('Metric (more than one of gauge, sum, histogram, exponentialHistogram, summary)',
                                       x.v ->> 'name') #>> '{}'
                else m.type end,
           otel.otlp_string(x.v -> 'unit', 'unit'),
           coalesce(d.v ->> 'asDouble', d.v ->> 'asInt'),
           case when m.type in ('histogram', 'exponential_histogram', 'summary')
                then otel.otlp_uint64(coalesce(d.v ->> 'count', '0'), 'count') end,
           d.v ->> 'sum',
           d.v ->> 'min', d.v ->> 'max',
           case when m.type in ('histogram', 'exponential_histogram') then otel.otlp_bucket_counts(d.v, m.type) end,
           (d.v -> 'explicitBounds')::text,
           (d.v -> 'quantileValues')::text,
           case when m.type = 'exponential_histogram'
                then (d.v - '{attributes,startTimeUnixNano,timeUnixNano,count,sum,min,max,exemplars,flags}'::text[])::text end,
           (select jsonb_agg(jsonb_build_object(
                       'time', otel.parse_time(otel.otlp_uint64(e ->> 'timeUnixNano', 'exemplar timeUnixNano')),
                       'value', case when e ? 'asDouble' then otel.otlp_value(jsonb_build_object('doubleValue', e -> 'asDouble'))
                                     when e ? 'asInt' then otel.otlp_value(jsonb_build_object('intValue', e -> 'asInt')) end,
                       'trace_id', otel.otlp_id(e -> 'traceId', 32, 'exemplar traceId'),
                       'span_id', otel.otlp_id(e -> 'spanId', 16, 'exemplar spanId'),
                       'attributes', (select coalesce(jsonb_object_agg(kv.key, otel.otlp_value(kv.value)), '{}')
                                        from jsonb_to_recordset(e -> 'filteredAttributes') as kv (key text, value jsonb))) order by ei)
              from jsonb_array_elements(d.v -> 'exemplars') with ordinality as ex (e, ei))::text,
           m.data ->> 'aggregationTemporality',
           case when m.type = 'sum' then coalesce(m.data ->> 'isMonotonic', 'false') end,
           d.v ->> 'flags',
           (select coalesce(jsonb_object_agg(kv.key, otel.otlp_value(kv.value)), '{}')
              from jsonb_to_recordset(d.v -> 'attributes') as kv (key text, value jsonb))::text,
           x.resource_attributes::text,
           x.resource_attributes ->> 'service.name', x.scope ->> 'name', x.scope ->> 'version'
      from pg_temp.otel_otlp as p
     cross join lateral otel.otlp_request_records(p.doc, 'metrics') as x (rs, ss, rec, resource_attributes, scope, v)
     cross join lateral otel.metric_data(x.v) as m
     -- A metric with no data field (the oneof unset) has no points: nothing to store, nothing wrong.
     cross join lateral jsonb_array_elements(m.data -> 'dataPoints') with ordinality as d (v, l)
     where p.id between first_id and last_id
       and p.doc ? 'resourceMetrics';
end
$$;
comment on function otel.decode_otlp_metrics(bigint, bigint) is
    'Decodes the data points of claimed OTLP/JSON requests into text rows; internal to otel.flush()';

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
