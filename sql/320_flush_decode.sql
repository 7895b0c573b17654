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

create or replace function otel.otlp_request_error(doc jsonb)
returns text
language sql immutable parallel safe
as $$
    -- An object without resourceSpans, resourceLogs or resourceMetrics is an
    -- empty request, as valid as it is in OTLP: nothing to store.
    select case when doc is null then 'not valid JSON (an OTLP/JSON request is one JSON object per line)'
                when jsonb_typeof(doc) <> 'object'
                then 'not an OTLP/JSON export request: expected an object with resourceSpans, resourceLogs or resourceMetrics'
           end
$$;
comment on function otel.otlp_request_error(jsonb) is
    'Why a parsed OTLP/JSON request is none (null: not valid JSON), null when it is an object; internal to otel.flush()';

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

create or replace function otel.decoding_query_traces(requests text)
returns text
language sql immutable
as $$
-- The query that decodes the spans of requests (see otel.decoding_query())
-- into rows of text, and of JSON where the request has it already.
select format($query$
    select p.dlq_id, p.id as payload_id, x.rs, x.ss, x.rec, null::int as dp,
           x.v ->> 'traceId' as trace_id, x.v ->> 'spanId' as span_id, x.v ->> 'parentSpanId' as parent_span_id,
           otel.otlp_string(x.v -> 'traceState', 'traceState') as trace_state,
           x.v ->> 'flags' as flags, otel.otlp_string(x.v -> 'name', 'name') as name, x.v ->> 'kind' as kind,
           x.v ->> 'startTimeUnixNano' as start_time, x.v ->> 'endTimeUnixNano' as end_time,
           x.v -> 'status' ->> 'code' as status_code,
           otel.otlp_string(x.v -> 'status' -> 'message', 'status.message') as status_message,
           x.resource_attributes ->> 'service.name' as service_name, x.scope ->> 'name' as scope_name,
           x.scope ->> 'version' as scope_version,
           null::text as attributes, null::text as resource_attributes, null::text as events, null::text as links,
           (select coalesce(jsonb_object_agg(kv.key, otel.otlp_value(kv.value)), '{}')
              from otel.otlp_key_values(x.v -> 'attributes') as kv) as attributes_jsonb,
           x.resource_attributes as resource_attributes_jsonb,
           -- Most spans have neither events nor links: the guards skip
           -- their subqueries (a tenth of the decoding time). Their
           -- attributes are a function call, not a subquery: Citus sends
           -- no subquery within one that reads a set-returning function to
           -- the shards (otel.decode_on_workers()).
           case when x.v ? 'events' then
           (select jsonb_agg(jsonb_build_object(
                       'name', otel.otlp_string(e -> 'name', 'event name'),
                       'time', otel.parse_time(otel.otlp_uint64(e ->> 'timeUnixNano', 'event timeUnixNano')),
                       'attributes', otel.otlp_attributes(e -> 'attributes')) order by ei)
              from jsonb_array_elements(x.v -> 'events') with ordinality as ev (e, ei)) end as events_jsonb,
           case when x.v ? 'links' then
           (select jsonb_agg(jsonb_build_object(
                       'trace_id', otel.otlp_id(l -> 'traceId', 32, 'link traceId'),
                       'span_id', otel.otlp_id(l -> 'spanId', 16, 'link spanId'),
                       'trace_state', nullif(otel.otlp_string(l -> 'traceState', 'link traceState'), ''),
                       'attributes', otel.otlp_attributes(l -> 'attributes')) order by li)
              from jsonb_array_elements(x.v -> 'links') with ordinality as lk (l, li)) end as links_jsonb
      from %s
     cross join lateral otel.otlp_request_records(p.doc, 'traces') as x (rs, ss, rec, resource_attributes, scope, v)
     where p.doc ? 'resourceSpans'
$query$, requests)
$$;
comment on function otel.decoding_query_traces(text) is
    'The query that decodes the spans of OTLP/JSON requests into rows; internal to otel.flush()';

create or replace function otel.decoding_query_logs(requests text)
returns text
language sql immutable
as $$
-- The query that decodes the log records of requests (see
-- otel.decoding_query()) into rows of text. A string body stays text; any
-- other body is kept as JSON text.
select format($query$
    select p.dlq_id, p.id as payload_id, x.rs, x.ss, x.rec, null::int as dp,
           x.v ->> 'timeUnixNano' as time, x.v ->> 'observedTimeUnixNano' as observed_time,
           x.v ->> 'severityNumber' as severity_number,
           otel.otlp_string(x.v -> 'severityText', 'severityText') as severity_text,
           case when jsonb_typeof(x.v -> 'body') = 'object' and (x.v -> 'body') - 'stringValue' = '{}'
                then x.v -> 'body' ->> 'stringValue'
                else otel.otlp_value(x.v -> 'body')::text end as body,
           x.v ->> 'traceId' as trace_id, x.v ->> 'spanId' as span_id, x.v ->> 'flags' as flags,
           x.resource_attributes ->> 'service.name' as service_name, x.scope ->> 'name' as scope_name,
           x.scope ->> 'version' as scope_version,
           (select coalesce(jsonb_object_agg(kv.key, otel.otlp_value(kv.value)), '{}')
              from otel.otlp_key_values(x.v -> 'attributes') as kv)::text as attributes,
           x.resource_attributes::text as resource_attributes,
           otel.otlp_string(x.v -> 'eventName', 'eventName') as event_name
      from %s
     cross join lateral otel.otlp_request_records(p.doc, 'logs') as x (rs, ss, rec, resource_attributes, scope, v)
     where p.doc ? 'resourceLogs'
$query$, requests)
$$;
comment on function otel.decoding_query_logs(text) is
    'The query that decodes the log records of OTLP/JSON requests into rows; internal to otel.flush()';

create or replace function otel.decoding_query_metrics(requests text)
returns text
language sql immutable
as $$
-- The query that decodes the data points of requests (see
-- otel.decoding_query()) into rows of text. An absent timeUnixNano or
-- count is 0, as proto3 JSON omits zero values; a point without asDouble
-- or asInt keeps a null value.
select format($query$
    select p.dlq_id, p.id as payload_id, x.rs, x.ss, x.rec, d.l::int as dp,
           coalesce(d.v ->> 'timeUnixNano', '0') as time, d.v ->> 'startTimeUnixNano' as start_time,
           otel.otlp_string(x.v -> 'name', 'name') as name,
           otel.otlp_string(x.v -> 'description', 'description') as description,
           -- proto3 JSON refuses a second member of a oneof.
           case when (x.v ? 'gauge')::int + (x.v ? 'sum')::int + (x.v ? 'histogram')::int
                     + (x.v ? 'exponentialHistogram')::int + (x.v ? 'summary')::int > 1
                then otel.otlp_invalid('Metric (more than one of gauge, sum, histogram, exponentialHistogram, summary)',
                                       x.v ->> 'name') #>> '{}'
                else m.type end as type,
           otel.otlp_string(x.v -> 'unit', 'unit') as unit,
           coalesce(d.v ->> 'asDouble', d.v ->> 'asInt') as value,
           case when m.type in ('histogram', 'exponential_histogram', 'summary')
                then otel.otlp_uint64(coalesce(d.v ->> 'count', '0'), 'count') end as count,
           d.v ->> 'sum' as sum, d.v ->> 'min' as min, d.v ->> 'max' as max,
           case when m.type in ('histogram', 'exponential_histogram')
                then otel.otlp_bucket_counts(d.v, m.type) end as bucket_counts,
           (d.v -> 'explicitBounds')::text as explicit_bounds,
           (d.v -> 'quantileValues')::text as quantiles,
           case when m.type = 'exponential_histogram'
                then (d.v - '{attributes,startTimeUnixNano,timeUnixNano,count,sum,min,max,exemplars,flags}'::text[])::text
           end as exponential,
           -- (attributes by a function call, as for the events of spans)
           (select jsonb_agg(jsonb_build_object(
                       'time', otel.parse_time(otel.otlp_uint64(e ->> 'timeUnixNano', 'exemplar timeUnixNano')),
                       'value', case when e ? 'asDouble' then otel.otlp_value(jsonb_build_object('doubleValue', e -> 'asDouble'))
                                     when e ? 'asInt' then otel.otlp_value(jsonb_build_object('intValue', e -> 'asInt')) end,
                       'trace_id', otel.otlp_id(e -> 'traceId', 32, 'exemplar traceId'),
                       'span_id', otel.otlp_id(e -> 'spanId', 16, 'exemplar spanId'),
                       'attributes', otel.otlp_attributes(e -> 'filteredAttributes')) order by ei)
              from jsonb_array_elements(d.v -> 'exemplars') with ordinality as ex (e, ei))::text as exemplars,
           m.data ->> 'aggregationTemporality' as temporality,
           case when m.type = 'sum' then coalesce(m.data ->> 'isMonotonic', 'false') end as is_monotonic,
           d.v ->> 'flags' as flags,
           (select coalesce(jsonb_object_agg(kv.key, otel.otlp_value(kv.value)), '{}')
              from otel.otlp_key_values(d.v -> 'attributes') as kv)::text as labels,
           x.resource_attributes::text as resource_attributes,
           x.resource_attributes ->> 'service.name' as service_name, x.scope ->> 'name' as scope_name,
           x.scope ->> 'version' as scope_version
      from %s
     cross join lateral otel.otlp_request_records(p.doc, 'metrics') as x (rs, ss, rec, resource_attributes, scope, v)
     cross join lateral otel.metric_data(x.v) as m
     -- A metric with no data field (the oneof unset) has no points: nothing to store, nothing wrong.
     cross join lateral jsonb_array_elements(m.data -> 'dataPoints') with ordinality as d (v, l)
     where p.doc ? 'resourceMetrics'
$query$, requests)
$$;
comment on function otel.decoding_query_metrics(text) is
    'The query that decodes the data points of OTLP/JSON requests into rows; internal to otel.flush()';

create or replace function otel.decoding_query(kind text, requests text)
returns text
language sql immutable
as $$
    -- The query that decodes the records of one kind in requests, an
    -- aliased relation p of OTLP/JSON requests (id, dlq_id and doc, the
    -- parsed request), into rows shaped as staged ones: the columns
    -- otel.decoded_columns() names.
    select case kind
        when 'traces' then otel.decoding_query_traces(requests)
        when 'logs' then otel.decoding_query_logs(requests)
        when 'metrics' then otel.decoding_query_metrics(requests)
    end
$$;
comment on function otel.decoding_query(text, text) is
    'The query that decodes the records of one kind of OTLP/JSON requests into rows shaped as staged ones; internal to otel.flush()';

create or replace function otel.decoded_columns(kind text)
returns text
language sql stable
as $$
    -- dlq_id, payload_id (the request's id), rs, ss, rec, dp (the record's
    -- position), the columns of otel.<kind>_staging in their order (but the
    -- row id of Citus's staging) and, for spans, the JSON columns of the
    -- working set.
    select 'dlq_id, payload_id, rs, ss, rec, dp, '
           || string_agg(quote_ident(attname), ', ' order by attnum)
           || case when kind = 'traces' then ', attributes_jsonb, resource_attributes_jsonb, events_jsonb, links_jsonb'
                   else '' end
      from pg_attribute
     where attrelid = format('otel.%I', kind || '_staging')::regclass and attnum > 0 and not attisdropped
       and attname <> 'row_id'
$$;
comment on function otel.decoded_columns(text) is
    'The columns of the rows otel.decoding_query() gives for a kind, in order; internal to otel.flush()';

create or replace function otel.decode_otlp_requests(kind text, first_id bigint, last_id bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- The records of one kind of the claimed requests first_id..last_id into
-- pg_temp.otel_<kind>_rows.
-- By name: a column the decoding does not give fails loudly.
declare
    rows_table regclass := format('pg_temp.%I', 'otel_' || kind || '_rows');
begin
    execute format('insert into %1$s (%2$s) select %2$s from (%3$s) as d', rows_table, otel.decoded_columns(kind),
                   otel.decoding_query(kind, '(select id, dlq_id, doc from pg_temp.otel_otlp where id between $1 and $2) as p'))
        using first_id, last_id;
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
