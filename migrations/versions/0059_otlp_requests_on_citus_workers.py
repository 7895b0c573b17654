"""On Citus, OTLP/JSON requests are staged on the workers and the flush parses, decodes and types them there.

otel.distribute() now also distributes otel.otlp_staging and otel.claimed_otlp
by a row id, and makes otel.flush_otlp, where the workers parse the claimed
requests. otel.decode_on_workers() decodes and types their records into the
working tables beside the staged rows (the decoding queries are now shared
by the coordinator and the workers: otel.decoding_query()); a request or
record that defeats decoding sends the requests to the coordinator, as
before. otel.staging_bytes() measures the staging tables on every worker,
for `otel-db serve`'s backlog.

Revision ID: 0059
Revises: 0058
"""

from migrations.schema import execute_sql, released_routine

revision = "0059"
down_revision = "0058"
branch_labels = None
depends_on = None

UPGRADE = r"""
drop function otel.decode_otlp_traces(bigint, bigint), otel.decode_otlp_logs(bigint, bigint),
    otel.decode_otlp_metrics(bigint, bigint), otel.flush_process(timestamptz, text[]);

create or replace function otel.otlp_key_values(key_values jsonb)
returns table (key text, value jsonb)
language sql immutable parallel safe
as $$
    -- Each KeyValue's key and value read once (otel.otlp_value() tests its
    -- argument many times: an expression there would be evaluated as often).
    -- jsonb_to_recordset() is stable (a record's input could be), and Citus
    -- sends a query to the shards only when the functions it reads rows
    -- from are immutable; PostgreSQL inlines this wrapper, at no cost.
    select kv.key, kv.value from jsonb_to_recordset(key_values) as kv (key text, value jsonb)
$$;
comment on function otel.otlp_key_values(jsonb) is
    'The key and value of each KeyValue of an OTLP/JSON KeyValue array';

create or replace function otel.otlp_attributes(key_values jsonb)
returns jsonb
language plpgsql immutable parallel safe
as $$
-- PL/pgSQL rather than SQL: a SQL function that cannot be inlined is planned
-- again on every call, which cost more than the decoding itself. The
-- decoders spell this query out as a subquery for the attributes of every
-- record: inside the calling statement it costs half the function call.
-- They call it for resources, and for events, links and exemplars, whose
-- subqueries Citus would not send to the shards as subqueries.
begin
    return coalesce((select jsonb_object_agg(kv.key, otel.otlp_value(kv.value))
                       from jsonb_to_recordset(key_values) as kv (key text, value jsonb)), '{}');
end
$$;
comment on function otel.otlp_attributes(jsonb) is
    'OTLP/JSON KeyValue array to a JSON object (a repeated key keeps its last value)';

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

create or replace function otel.typing_query_traces(source text)
returns text
language sql stable
as $$
-- The query that validates and casts span rows of source (an aliased
-- relation r with the text columns of otel.traces_staging, n, claimed,
-- payload_id (not null on a decoded OTLP record) and the JSON columns of
-- decoded spans):
-- the rows of pg_temp.otel_traces. A row that breaks a rule gets err, the
-- message its dead letter carries; the casts of a valid row cannot fail,
-- except on malformed JSON text or an impossible date, which
-- otel.type_rows() isolates.
select format($query$
    select p.n, p.claimed,
           case
               when p.trace_id is null and otel.is_absent_id(p.given_trace_id, 32) then 'trace_id is missing, empty or all zeros'
               when p.trace_id is null then format('trace_id "%%s" is not 32 hex digits', left(p.given_trace_id, 100))
               when p.span_id is null and otel.is_absent_id(p.given_span_id, 16) then 'span_id is missing, empty or all zeros'
               when p.span_id is null then format('span_id "%%s" is not 16 hex digits', left(p.given_span_id, 100))
               when p.parent_span_id is null and not otel.is_absent_id(p.given_parent_span_id, 16)
                   then format('parent_span_id "%%s" is not 16 hex digits', left(p.given_parent_span_id, 100))
               when p.given_name is null then 'name is missing'
               when octet_length(p.given_name) > 4096 then 'name is longer than 4096 bytes'
               when p.kind is null then format('kind "%%s" is not a span kind: 0-5 or UNSPECIFIED, INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER', left(p.given_kind, 100))
               when p.status_code is null then format('status_code "%%s" is not a status: 0-2 or UNSET, OK, ERROR', left(p.given_status_code, 100))
               when p.given_start_time is null or p.given_start_time = '' then 'start_time is missing'
               when p.start_time is null then otel.unreadable_time('start_time', 'startTimeUnixNano', p.given_start_time, p.from_otlp)
               when p.start_time = 'epoch' then 'start_time is 0 (unset)'
               when p.given_end_time is null or p.given_end_time = '' then 'end_time is missing'
               when p.end_time is null then otel.unreadable_time('end_time', 'endTimeUnixNano', p.given_end_time, p.from_otlp)
               when p.end_time < p.start_time then format('end_time %%s is before start_time %%s', p.end_time, p.start_time)
               when p.flags is null and coalesce(p.given_flags, '') <> '' then format('flags "%%s" is not a 32-bit unsigned integer', left(p.given_flags, 100))
               when octet_length(p.given_service_name) > 1024 then 'service_name is longer than 1024 bytes'
               when octet_length(p.given_scope_name) > 1024 or octet_length(p.given_scope_version) > 1024 then 'scope_name or scope_version is longer than 1024 bytes'
               when octet_length(p.given_trace_state) > 4096 then 'trace_state is longer than 4096 bytes'
               when jsonb_typeof(p.attributes) <> 'object' then 'attributes is not a JSON object'
               when jsonb_typeof(p.resource_attributes) <> 'object' then 'resource_attributes is not a JSON object'
               when jsonb_typeof(p.events) <> 'array' then 'events is not a JSON array'
               when jsonb_typeof(p.links) <> 'array' then 'links is not a JSON array'
           end as err,
           otel.signature_input(nullif(p.given_service_name, ''), p.kind, p.given_name, p.status_code,
                                nullif(p.given_status_message, ''), p.attributes, p.events) as signature_input,
           hashtextextended(p.trace_id || p.span_id, 0) as span_key,  -- finds spans repeated within the batch
           p.trace_id, p.span_id, p.parent_span_id, nullif(p.given_trace_state, '') as trace_state, p.flags, p.given_name as name, p.kind,
           p.start_time, p.end_time,
           -- Whole microseconds through float8: a third of the numeric extract(), the same value.
           (date_part('epoch', p.end_time - p.start_time) * 1000000)::bigint / 1000::double precision as duration_ms,
           p.status_code, nullif(p.given_status_message, '') as status_message,
           nullif(p.given_service_name, '') as service_name, nullif(p.given_scope_name, '') as scope_name,
           nullif(p.given_scope_version, '') as scope_version,
           p.attributes, p.resource_attributes, p.events, p.links
      from (select r.n, r.claimed,
                   r.end_time as given_end_time, r.flags as given_flags, r.kind as given_kind,
                   r.name as given_name, r.parent_span_id as given_parent_span_id,
                   r.scope_name as given_scope_name, r.scope_version as given_scope_version,
                   r.service_name as given_service_name, r.span_id as given_span_id,
                   r.start_time as given_start_time, r.status_code as given_status_code,
                   r.status_message as given_status_message, r.trace_id as given_trace_id,
                   r.trace_state as given_trace_state,
                   otel.normalize_id(r.trace_id, 32) as trace_id,
                   otel.normalize_id(r.span_id, 16) as span_id,
                   otel.normalize_id(r.parent_span_id, 16) as parent_span_id,
                   otel.parse_span_kind(r.kind) as kind,
                   otel.parse_status_code(r.status_code) as status_code,
                   r.payload_id is not null as from_otlp,
                   otel.parse_record_time(r.start_time, r.payload_id is not null) as start_time,
                   otel.parse_record_time(r.end_time, r.payload_id is not null) as end_time,
                   otel.parse_flags(r.flags) as flags,
                   coalesce(r.attributes_jsonb, otel.parse_json(r.attributes, '{}')) as attributes,
                   coalesce(r.resource_attributes_jsonb, otel.parse_json(r.resource_attributes, '{}')) as resource_attributes,
                   coalesce(r.events_jsonb, otel.parse_json(r.events, '[]')) as events,
                   coalesce(r.links_jsonb, otel.parse_json(r.links, '[]')) as links,
                   row_number() over (partition by r.n, r.payload_id) as barrier  -- see otel.typing_query()
              from %s) as p
$query$, source)
$$;
comment on function otel.typing_query_traces(text) is
    'The query that validates and casts the span rows of a flush; internal to otel.flush()';

create or replace function otel.typing_query_logs(source text)
returns text
language sql stable
as $$
-- The query that validates and casts the log rows of source (an aliased
-- relation r with the text columns of otel.logs_staging, n, claimed and
-- payload_id): the rows of pg_temp.otel_logs. time falls back to
-- observed_time when it is absent or 0, as the OTLP spec says; a staged
-- row may also leave it empty, an OTLP record may not (proto3 JSON has no
-- empty fixed64).
select format($query$
    select p.n, p.claimed,
           case
               when (p.given_time <> '' or p.from_otlp) and p.given_time is not null and p.time is null
                   then otel.unreadable_time('time', 'timeUnixNano', p.given_time, p.from_otlp)
               when (p.given_observed_time <> '' or p.from_otlp) and p.given_observed_time is not null
                    and p.observed_time is null
                   then otel.unreadable_time('observed_time', 'observedTimeUnixNano', p.given_observed_time, p.from_otlp)
               when coalesce(nullif(p.time, 'epoch'), p.observed_time) is null
                   then 'time and observed_time are both missing or 0'
               when coalesce(p.given_severity_number, '') <> '' and p.severity_number is null
                   then format('severity_number "%%s" is not 0-24 or a severity name', left(p.given_severity_number, 100))
               when p.trace_id is null and not otel.is_absent_id(p.given_trace_id, 32)
                   then format('trace_id "%%s" is not 32 hex digits', left(p.given_trace_id, 100))
               when p.span_id is null and not otel.is_absent_id(p.given_span_id, 16)
                   then format('span_id "%%s" is not 16 hex digits', left(p.given_span_id, 100))
               when p.flags is null and coalesce(p.given_flags, '') <> ''
                   then format('flags "%%s" is not a 32-bit unsigned integer', left(p.given_flags, 100))
               when octet_length(p.given_service_name) > 1024 then 'service_name is longer than 1024 bytes'
               when octet_length(p.given_scope_name) > 1024 or octet_length(p.given_scope_version) > 1024
                   then 'scope_name or scope_version is longer than 1024 bytes'
               when octet_length(p.given_severity_text) > 1024 or octet_length(p.given_event_name) > 1024
                   then 'severity_text or event_name is longer than 1024 bytes'
               when jsonb_typeof(p.attributes) <> 'object' then 'attributes is not a JSON object'
               when jsonb_typeof(p.resource_attributes) <> 'object' then 'resource_attributes is not a JSON object'
           end as err,
           coalesce(nullif(p.time, 'epoch'), p.observed_time) as time, p.observed_time,
           p.severity_number, nullif(p.given_severity_text, '') as severity_text, p.given_body as body,
           p.trace_id, p.span_id, p.flags,
           nullif(p.given_service_name, '') as service_name, nullif(p.given_scope_name, '') as scope_name,
           nullif(p.given_scope_version, '') as scope_version,
           p.attributes, p.resource_attributes, nullif(p.given_event_name, '') as event_name
      from (select r.n, r.claimed,
                   r.body as given_body, r.event_name as given_event_name, r.flags as given_flags,
                   r.observed_time as given_observed_time, r.scope_name as given_scope_name,
                   r.scope_version as given_scope_version, r.service_name as given_service_name,
                   r.severity_number as given_severity_number, r.severity_text as given_severity_text,
                   r.span_id as given_span_id, r.time as given_time, r.trace_id as given_trace_id,
                   r.payload_id is not null as from_otlp,
                   otel.parse_record_time(r.time, r.payload_id is not null) as time,
                   otel.parse_record_time(r.observed_time, r.payload_id is not null) as observed_time,
                   otel.parse_severity(r.severity_number) as severity_number,
                   otel.normalize_id(r.trace_id, 32) as trace_id,
                   otel.normalize_id(r.span_id, 16) as span_id,
                   otel.parse_flags(r.flags) as flags,
                   otel.parse_json(r.attributes, '{}') as attributes,
                   otel.parse_json(r.resource_attributes, '{}') as resource_attributes,
                   row_number() over (partition by r.n, r.payload_id) as barrier  -- see otel.typing_query()
              from %s) as p
$query$, source)
$$;
comment on function otel.typing_query_logs(text) is
    'The query that validates and casts the log rows of a flush; internal to otel.flush()';

create or replace function otel.typing_query_metrics(source text)
returns text
language sql stable
as $$
-- The query that validates and casts the metric data points of source (an
-- aliased relation r with the text columns of otel.metrics_staging, n,
-- claimed and payload_id): the rows of pg_temp.otel_metrics. An empty
-- start_time is none in a staged row, unreadable in an OTLP record. Integer values are also kept
-- exactly in int_value; counts are numeric (OTLP counts are uint64).
select format($query$
    select p.n, p.claimed,
           case
               when coalesce(p.given_time, '') = '' then 'time is missing'
               when p.time is null then otel.unreadable_time('time', 'timeUnixNano', p.given_time, p.from_otlp)
               when (p.given_start_time <> '' or p.from_otlp) and p.given_start_time is not null and p.start_time is null
                   then otel.unreadable_time('start_time', 'startTimeUnixNano', p.given_start_time, p.from_otlp)
               when coalesce(p.given_name, '') = '' then 'name is missing'
               when octet_length(p.given_name) > 1024 then 'name is longer than 1024 bytes'
               when p.type is null then format('type "%%s" is not gauge, sum, histogram, exponential_histogram or summary', left(p.given_type, 100))
               when coalesce(p.given_value, '') <> '' and p.value is null then format('value "%%s" is not a number', left(p.given_value, 100))
               when coalesce(p.given_count, '') <> '' and p.count is null then format('count "%%s" is not an unsigned integer', left(p.given_count, 100))
               when coalesce(p.given_sum, '') <> '' and p.sum is null then format('sum "%%s" is not a number', left(p.given_sum, 100))
               when coalesce(p.given_min, '') <> '' and p.min is null then format('min "%%s" is not a number', left(p.given_min, 100))
               when coalesce(p.given_max, '') <> '' and p.max is null then format('max "%%s" is not a number', left(p.given_max, 100))
               when p.temporality is null then format('temporality "%%s" is not unspecified, delta or cumulative', left(p.given_temporality, 100))
               when coalesce(p.given_is_monotonic, '') <> '' and p.is_monotonic is null
                   then format('is_monotonic "%%s" is not a boolean', left(p.given_is_monotonic, 100))
               when p.flags is null and coalesce(p.given_flags, '') <> '' then format('flags "%%s" is not a 32-bit unsigned integer', left(p.given_flags, 100))
               when octet_length(p.given_unit) > 1024 or octet_length(p.given_service_name) > 1024
                 or octet_length(p.given_scope_name) > 1024 or octet_length(p.given_scope_version) > 1024
                   then 'unit, service_name, scope_name or scope_version is longer than 1024 bytes'
               when jsonb_typeof(p.labels) <> 'object' then 'labels is not a JSON object'
               when jsonb_typeof(p.resource_attributes) <> 'object' then 'resource_attributes is not a JSON object'
               when jsonb_typeof(p.bucket_counts_json) not in ('array', 'null') then 'bucket_counts is not a JSON array'
               when jsonb_typeof(p.explicit_bounds_json) not in ('array', 'null') then 'explicit_bounds is not a JSON array'
               when jsonb_typeof(p.quantiles) not in ('array', 'null') then 'quantiles is not a JSON array'
               when jsonb_typeof(p.exemplars) not in ('array', 'null') then 'exemplars is not a JSON array'
               when jsonb_typeof(p.exponential) not in ('object', 'null') then 'exponential is not a JSON object'
           end as err,
           p.time, p.start_time, p.given_name as name, nullif(p.given_description, '') as description, p.type,
           nullif(p.given_unit, '') as unit, p.value, p.int_value, p.count, p.sum, p.min, p.max,
           p.bucket_counts, p.explicit_bounds::double precision[] as explicit_bounds, p.quantiles, p.exponential,
           p.exemplars,
           case when p.type in ('sum', 'histogram', 'exponential_histogram') then p.temporality end as temporality,
           p.is_monotonic, p.flags, p.labels, p.resource_attributes,
           nullif(p.given_service_name, '') as service_name, nullif(p.given_scope_name, '') as scope_name,
           nullif(p.given_scope_version, '') as scope_version
      from (select r.n, r.claimed,
                   r.count as given_count, r.description as given_description, r.flags as given_flags,
                   r.is_monotonic as given_is_monotonic, r.max as given_max, r.min as given_min,
                   r.name as given_name, r.scope_name as given_scope_name,
                   r.scope_version as given_scope_version, r.service_name as given_service_name,
                   r.start_time as given_start_time, r.sum as given_sum, r.temporality as given_temporality,
                   r.time as given_time, r.type as given_type, r.unit as given_unit, r.value as given_value,
                   r.payload_id is not null as from_otlp,
                   otel.parse_record_time(r.time, r.payload_id is not null) as time,
                   otel.parse_record_time(r.start_time, r.payload_id is not null) as start_time,
                   -- Names looked up in constant objects rather than by a case on
                   -- the value: one evaluation of the value either way, and Citus
                   -- sends a case on a value to the workers without its tests.
                   '{"gauge": "gauge", "sum": "sum", "histogram": "histogram",
                     "exponentialhistogram": "exponential_histogram", "summary": "summary"}'::jsonb
                       ->> regexp_replace(lower(trim(r.type)), '[^a-z]', '', 'g') as type,
                   otel.parse_double(r.value) as value,
                   case when otel.is_integer_text(r.value, 20, true) then r.value::numeric end as int_value,
                   case when otel.is_integer_text(r.count, 20, false) then r.count::numeric end as count,
                   otel.parse_double(r.sum) as sum,
                   otel.parse_double(r.min) as min,
                   otel.parse_double(r.max) as max,
                   otel.parse_temporality(r.temporality) as temporality,
                   ('{"true": true, "t": true, "1": true, "false": false, "f": false, "0": false}'::jsonb
                       -> lower(trim(r.is_monotonic)))::boolean as is_monotonic,
                   otel.parse_flags(r.flags) as flags,
                   otel.parse_json(r.labels, '{}') as labels,
                   otel.parse_json(r.resource_attributes, '{}') as resource_attributes,
                   otel.parse_json(r.bucket_counts, null) as bucket_counts_json,
                   otel.parse_json(r.explicit_bounds, null) as explicit_bounds_json,
                   otel.json_numeric_array(otel.parse_json(r.bucket_counts, null)) as bucket_counts,
                   otel.json_numeric_array(otel.parse_json(r.explicit_bounds, null)) as explicit_bounds,
                   otel.parse_json(r.quantiles, null) as quantiles,
                   otel.parse_json(r.exponential, null) as exponential,
                   otel.parse_json(r.exemplars, null) as exemplars,
                   row_number() over (partition by r.n, r.payload_id) as barrier  -- see otel.typing_query()
              from %s) as p
$query$, source)
$$;
comment on function otel.typing_query_metrics(text) is
    'The query that validates and casts the metric data points of a flush; internal to otel.flush()';

create or replace function otel.typing_query(kind text, source text)
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Each typing query parses in a subquery (p) and validates above it. The
-- subquery's window function (barrier) keeps the planner from merging the
-- two, which would parse a value once for every reference to it; being
-- unused, it is then planned away, leaving the subquery free to run in
-- parallel workers (offset 0, the usual fence, forbids that). It is
-- partitioned by n and payload_id, one of which is the row id by which
-- Citus distributes the claim tables (n of a claimed row, payload_id of a
-- record decoded from a claimed request), so that Citus sends the query to
-- the workers (otel.type_on_workers(), otel.decode_on_workers()).
begin
    -- PL/pgSQL: the per-kind functions are defined by later files.
    return case kind
        when 'traces' then otel.typing_query_traces(source)
        when 'logs' then otel.typing_query_logs(source)
        when 'metrics' then otel.typing_query_metrics(source)
    end;
end
$$;
comment on function otel.typing_query(text, text) is
    'The query that validates and casts the rows of source for traces, logs or metrics; internal to otel.flush()';

create or replace function otel.load_claimed(typed_in_place text[])
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Everything in the claim tables, but those of the kinds typed in place
-- (otel.type_claimed(), or on Citus otel.type_on_workers(), and otlp for
-- requests otel.decode_on_workers() decoded), into the working set (delete
-- … returning, which is right under any isolation level). Returns the
-- number of OTLP requests.
declare
    requests bigint;
    kind text;
    load_requests text;
begin
    if 'otlp' = any (typed_in_place) then
        select count(*) into requests from otel.claimed_otlp;
    else
        -- A null payload (a blank line through COPY … csv) is an empty
        -- request: not valid JSON, so a dead letter with empty raw_data. One
        -- cast for all requests first: otel.try_jsonb() costs a
        -- subtransaction and a copy of the document each, about as much
        -- again as the parsing. In staging order on Citus, as below.
        load_requests := format('with claimed as (delete from otel.claimed_otlp returning *)
                                 insert into pg_temp.otel_otlp (payload, doc)
                                 select coalesce(payload, ''''), otel.otlp_json_names(%%s) from claimed %s',
                                case when otel.distributed('otel.claimed_otlp') then 'order by row_id' else '' end);
        if otel.distributed('otel.claimed_otlp') then
            -- Only when the workers failed on them (see otel.flush()); one
            -- statement that cannot fail, request by request: Citus does not
            -- reliably take up its connections again after a statement over
            -- the shards was rolled back to a savepoint.
            execute format(load_requests, 'otel.try_jsonb(payload)');
        else
            begin
                execute format(load_requests, 'payload::jsonb');
            exception when data_exception or program_limit_exceeded then
                -- Some request is not JSON, or nests too deep (the delete was
                -- rolled back with the insert).
                execute format(load_requests, 'otel.try_jsonb(payload)');
            end;
        end if;
        get diagnostics requests = row_count;
    end if;
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        continue when kind = any (typed_in_place);
        -- In staging order on Citus (the shards return their rows one after
        -- another), so that the first of two repeated spans is kept.
        execute format('with claimed as (delete from otel.%3$I returning *)
                        insert into pg_temp.%1$I (%2$s) select %2$s from claimed %4$s',
                       'otel_' || kind || '_rows', otel.staging_columns(kind), 'claimed_' || kind,
                       case when otel.distributed(format('otel.%I', 'claimed_' || kind)::regclass)
                            then 'order by row_id' else '' end);
    end loop;
    return requests;
end
$$;
comment on function otel.load_claimed(text[]) is
    'Moves the claimed rows not yet typed into the working set of the flush; internal to otel.flush()';

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
    select dlq_id, 'otlp', 'otel.otlp_staging', payload, 'text', otel.otlp_request_error(doc)
      from pg_temp.otel_otlp
     where otel.otlp_request_error(doc) is not null;

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

create or replace function otel.decoded_rows_on_workers(kind text, requests text)
returns text
language sql immutable
as $$
    -- The records of a kind in requests (a relation of parsed requests:
    -- row_id and doc, as otel.flush_otlp), decoded, as a source of the
    -- typing query. n places a record after every staged row and by its
    -- place in its request (otel.decoded_record_n()): requests in staging
    -- order, so that of a span sent twice the first is kept.
    select format('(select otel.decoded_record_n(d.payload_id, row_number() over (
                               partition by d.payload_id order by d.rs, d.ss, d.rec, d.dp)) as n,
                           null::tid as claimed, d.*
                      from (%s) as d) as r',
                  otel.decoding_query(kind, format('(select f.row_id as id, null::bigint as dlq_id, f.doc from %s as f) as p',
                                                   requests)))
$$;
comment on function otel.decoded_rows_on_workers(text, text) is
    'The decoded records of a kind of parsed OTLP/JSON requests, numbered, as a source of the typing query; internal to otel.flush()';

create or replace function otel.decoded_record_n(request_id bigint, rank bigint)
returns bigint
language plpgsql immutable parallel safe
as $$
-- 2^62 + request_id * 2^20 + rank: above every staged row's n (its row id),
-- and in staging order. Fails beyond 2^42 requests or 2^20 records in one,
-- and then the coordinator decodes the requests.
begin
    if request_id not between 0 and 4398046511103 or rank not between 0 and 1048575 then
        raise exception 'request % or record % is beyond what a decoded record''s number holds', request_id, rank
            using errcode = 'program_limit_exceeded';
    end if;
    return 4611686018427387904 + request_id * 1048576 + rank;
end
$$;
comment on function otel.decoded_record_n(bigint, bigint) is
    'The number of the rank-th record of a request decoded on the workers; internal to otel.flush()';

create or replace function otel.working_table_fits(kind text)
returns boolean
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Whether the kind's working table, made by otel.distribute() from the
-- typing query of its release, has this release's shape: a later
-- release's typing may differ, and then the coordinator types the rows.
declare
    typed regclass := otel.working_table_on_workers(kind);
begin
    if otel.typed_columns(typed) is distinct from otel.typed_columns(format('pg_temp.%I', 'otel_' || kind)::regclass) then
        raise warning 'otel_db: % is not shaped as this release types %: the coordinator types them until otel.distribute() is run again',
                      typed, kind;
        return false;
    end if;
    return true;
end
$$;
comment on function otel.working_table_fits(text) is
    'On Citus: whether a working table of the flush has the shape this release types rows in, with a warning when not; internal to otel.flush()';

create or replace function otel.insert_typed_on_workers(kind text, source text)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Types the rows of source into the kind's working table with one insert
-- … select that each worker runs on its shards, each row going to the
-- shard of its key: log records and points by n, spans by trace (Citus
-- refuses a null key: a span without a trace id, rejected, gets '').
-- Returns how many.
declare
    typed regclass := otel.working_table_on_workers(kind);
    typed_columns text;
    inserted bigint;
begin
    select string_agg(case when kind = 'traces' and attname = 'trace_id' then 'coalesce(q.trace_id, '''')'
                           else format('q.%I', attname) end,
                      ', ' order by attnum)
      into typed_columns
      from pg_attribute
     where attrelid = typed and attnum > 0 and not attisdropped;
    execute format('insert into %s select %s from (%s) as q', typed, typed_columns, otel.typing_query(kind, source));
    get diagnostics inserted = row_count;
    return inserted;
end
$$;
comment on function otel.insert_typed_on_workers(text, text) is
    'On Citus: validates and casts rows of a kind into its working table on the workers; internal to otel.flush()';

create or replace function otel.type_on_workers(kind text)
returns boolean
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Types otel.claimed_<kind> into its working table on the workers
-- (otel.insert_typed_on_workers()): log records and points into the shards
-- beside their claim, spans into the shard of their trace. False, with
-- nothing changed, when the claim table is not distributed or is empty:
-- otel.load_claimed() then takes its rows into the working set. A row
-- that defeats the casts fails the flush, which otel.flush() then does
-- again on the coordinator (otel.flush_may_redo()).
declare
    claim_table regclass := format('otel.%I', 'claimed_' || kind);
    has_rows boolean;
begin
    if not otel.distributed(claim_table) then
        return false;
    end if;
    execute format('select exists (select 1 from %s)', claim_table) into strict has_rows;
    if not has_rows or not otel.working_table_fits(kind) then
        return false;
    end if;
    perform otel.insert_typed_on_workers(kind, otel.claimed_rows_on_workers(kind));
    return true;
end
$$;
comment on function otel.type_on_workers(text) is
    'On Citus: validates and casts the claimed rows of a kind on the workers; internal to otel.flush()';

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
    if not otel.distributed('otel.claimed_otlp') or not exists (select 1 from otel.claimed_otlp) then
        return null;
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

create or replace function otel.move_on_workers(kind text, out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- The rows otel.type_on_workers() and otel.decode_on_workers() typed: the
-- partitions they need, their rejects to the dead-letter queue (a staged
-- row as staged, found on the shards of the claim table by its row id; a
-- decoded record as a request of its own, its request decoded again to
-- find its place), the valid ones to their final table. The working set's
-- own rows of the kind are moved after these, and spans among them find
-- these stored.
declare
    typed regclass := otel.working_table_on_workers(kind);
    first_decoded bigint := otel.decoded_record_n(0, 0);
    first_time timestamptz;
    last_time timestamptz;
    invalid_rows bigint;
begin
    execute format('analyze %s', typed);  -- on every shard: the joins that follow hash rather than loop
    perform otel.partition_working_set(kind, case kind when 'traces' then 'start_time' else 'time' end, typed::text);
    -- The extent is this batch's alone: the working set records its own.
    delete from pg_temp.otel_batch_extent as e where e.kind = move_on_workers.kind
    returning e.first_time, e.last_time, e.invalid_rows into first_time, last_time, invalid_rows;
    if invalid_rows > 0 then
        execute format($sql$
            with rejected as materialized (
                select t.n, t.err from %1$s as t where t.err is not null and t.n < %5$s
            )
            insert into pg_temp.otel_rejects
            select null, %2$L, %3$L, jsonb_strip_nulls(to_jsonb(c) - 'row_id')::text, 'row-json', r.err
              from rejected as r
              join otel.%4$I as c on c.row_id = r.n
        $sql$, typed, kind, 'otel.' || kind || '_staging', 'claimed_' || kind, first_decoded);
        execute format($sql$
            with rejected as materialized (
                select t.n, t.err from %1$s as t where t.err is not null and t.n >= %2$s
            ),
            requests as materialized (
                select f.row_id, f.doc
                  from otel.flush_otlp as f
                 where f.row_id in (select (x.n - %2$s) / 1048576 from rejected as x)
            )
            insert into pg_temp.otel_rejects
            select null, %3$L, 'otel.otlp_staging', otel.otlp_single_record(q.doc, %3$L, r.rs, r.ss, r.rec, r.dp)::text,
                   'text', x.err
              from rejected as x
              join %4$s on r.n = x.n
              join requests as q on q.row_id = r.payload_id
        $sql$, typed, first_decoded, kind,
               otel.decoded_rows_on_workers(kind, 'requests'));
    end if;
    case kind
        when 'traces' then select * into moved, duplicates from otel.move_spans_on_workers(first_time, last_time);
        when 'logs' then select * into moved, duplicates from otel.move_logs(typed::text);
        when 'metrics' then select * into moved, duplicates from otel.move_metrics(typed::text);
    end case;
    execute format('truncate %s', typed);
end
$$;
comment on function otel.move_on_workers(text) is
    'On Citus: moves the rows otel.type_on_workers() and otel.decode_on_workers() typed to their final table or the dead-letter queue; internal to otel.flush()';

create or replace function otel.flush_process(started_at timestamptz, truncated text[], use_workers boolean default true)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set jit = off  -- compiling these statements costs more than it saves
-- The working tables compress large values as the final tables do: a
-- value compressed once is stored as it is (sql/100_tables_traces.sql).
set default_toast_compression = 'lz4'
as $$
-- The second transaction of a flush: the claimed rows to their final
-- tables or the dead-letter queue, and a row in otel.flush_runs. On Citus
-- the workers do most of it, unless use_workers is false (see
-- otel.flush()).
declare
    requests bigint;
    counts record;
    spans bigint := 0;
    logs bigint := 0;
    points bigint := 0;
    duplicates bigint := 0;
    dead_lettered bigint;
    kind text;
    typed_in_place text[] := '{}';
    on_workers text[] := '{}';
    decoded_on_workers text[];
begin
    perform otel.take_flush_lock();
    -- A batch of a million spans groups some 200,000 traces: with less
    -- memory, grouping them and building their summaries spill to disk
    -- (a tenth more time). Smaller batches use what they need, no more.
    if pg_size_bytes(current_setting('work_mem')) < pg_size_bytes('128MB') then
        perform set_config('work_mem', '128MB', true);
    end if;
    perform otel.flush_prepare();
    if to_regclass('pg_catalog.pg_dist_partition') is not null then
        -- The workers type and check times too, and store what they decode:
        -- Citus sends them this function's time zone (UTC: a staged time
        -- without an offset is UTC, messages show UTC), TOAST compression
        -- and jit (compiling the typing query took seconds a shard) only as
        -- a set local.
        set local citus.propagate_set_commands = 'local';
        set local timezone = 'UTC';
        set local default_toast_compression = 'lz4';
        set local jit = off;
    end if;
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        -- On Citus, where staging is distributed, on the workers
        -- (otel.type_on_workers()); else in place when it can be.
        if use_workers and otel.type_on_workers(kind) then
            on_workers := on_workers || kind;
            typed_in_place := typed_in_place || kind;
        elsif otel.type_claimed(kind) then
            typed_in_place := typed_in_place || kind;
        end if;
    end loop;
    -- OTLP/JSON requests too, on Citus; their records join the typed rows.
    if use_workers then
        decoded_on_workers := otel.decode_on_workers(on_workers);
    end if;
    if decoded_on_workers is not null then
        typed_in_place := typed_in_place || 'otlp'::text;
        on_workers := on_workers || array(select k from unnest(decoded_on_workers) as k where k <> all (on_workers));
    end if;
    requests := otel.load_claimed(typed_in_place);
    -- The rows typed on the workers first (a union runs its parts in
    -- turn), then the working set's, whose spans find them stored.
    for counts in
        select u.kind, w.moved, w.duplicates
          from unnest(on_workers) as u (kind)
         cross join lateral otel.move_on_workers(u.kind) as w
        union all
        select * from otel.process_working_set()
    loop
        case counts.kind
            when 'traces' then spans := spans + counts.moved;
            when 'logs' then logs := logs + counts.moved;
            when 'metrics' then points := points + counts.moved;
        end case;
        duplicates := duplicates + counts.duplicates;
    end loop;
    dead_lettered := otel.store_rejects();
    foreach kind in array typed_in_place loop
        execute format('truncate otel.%I', 'claimed_' || kind);  -- every row of it is moved or queued now
    end loop;
    if decoded_on_workers is not null then
        truncate otel.flush_otlp;
    end if;
    insert into otel.flush_runs (started_at, duration, spans, logs, metric_points, otlp_requests,
                                 dead_lettered, duplicates, truncated_staging)
    values (started_at, clock_timestamp() - started_at, spans, logs, points, requests,
            dead_lettered, duplicates, truncated);
end
$$;
comment on function otel.flush_process(timestamptz, text[], boolean) is
    'Moves the claimed rows to their final tables or the dead-letter queue and records the flush; the second transaction of otel.flush()';

create or replace function otel.flush_may_redo(state text, message text)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Whether otel.flush() may do again on the coordinator the second
-- transaction that failed with state: on Citus, where the workers type
-- and decode the staged rows and requests, and a value that defeats that
-- fails their statement; not for server trouble, nor a worker out of reach
-- (that fails there too). A failure for another reason than a value (a
-- statement Citus would not plan, say) is redone too, with a warning:
-- every flush then does its work twice.
begin
    if not otel.distributed('otel.claimed_traces') or otel.is_server_trouble(state) or left(state, 2) = '08' then
        return false;
    end if;
    if left(state, 2) not in ('22', '54') then
        raise warning 'otel_db: the workers could not do their part of the flush (%: %): the coordinator does it',
                      state, message;
    end if;
    return true;
end
$$;
comment on function otel.flush_may_redo(text, text) is
    'Whether otel.flush() may redo on the Citus coordinator a second transaction that failed on the workers (warning unless a value was to blame); internal';

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
        commit;
        perform otel.flush_process(started_at, truncated, use_workers => false);
    end if;
end
$$;
comment on procedure otel.flush() is
    'Moves every row staged before it started to otel.traces, otel.logs, otel.metrics or otel.telemetry_dlq; never loses or duplicates a row; safe beside writers and another flush; records itself in otel.flush_runs. Call it outside a transaction block: it commits after claiming the staged rows (and on Citus before doing again on the coordinator what failed on the workers)';

create or replace function otel.distribute(shard_count integer default 32)
returns setof text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- otel.traces and otel.trace_summaries are distributed by trace_id in
-- shard_count co-located shards, so that a trace's spans and its summary
-- are on one worker and a lookup by trace id is routed there; the span
-- signatures and the catalog of operations, which every worker joins, are
-- reference tables (a copy on each node). Log records are distributed by
-- shard_key, co-located with the spans: a record in a trace lies beside
-- the trace's spans, the others spread by a hash of their own (Citus
-- refuses a null key). Metric points by series_key, so that a series is on
-- one shard and the series of a busy metric spread over all. Both keys are
-- filled only where the table is distributed by them: rows stored before
-- get theirs here, and a table an earlier release distributed otherwise
-- (logs by time, points by name) is redistributed. The staging tables
-- (OTLP/JSON requests, spans, logs and points) and their claim tables are
-- distributed by a row id the coordinator gives each staged row (a staged
-- row may lack the key that would place it, and Citus refuses a null key),
-- so that writers' COPY spreads over the workers, where the flush parses
-- the requests (otel.flush_otlp, beside their claims) and types the rows
-- and the records it decodes into working tables: otel.flush_spans
-- co-located with the spans, otel.flush_logs and otel.flush_metrics with
-- their claims (otel.type_on_workers(), otel.decode_on_workers()). The
-- dead-letter queue stays on the coordinator. Citus reads and writes the
-- shards as the current role: otel_reader, otel_writer and otel_admin,
-- which cannot log in on the coordinator, may on the workers (only there;
-- who can connect is then the workers' pg_hba.conf). Returns what it
-- changed; run again, it changes nothing but what a new worker lacks.
declare
    target record;
    distributed_by text;
    cold text;
    described text;
    role_name text;
    refused text;
    kind text;
    staging text;
    claims text;
    row_ids text;
    working_table text;
    remade boolean;
    remade_note text;
begin
    if not exists (select from pg_extension where extname = 'citus') then
        raise exception 'otel.distribute() needs Citus in this database: create extension citus, on a coordinator with workers'
            using errcode = 'feature_not_supported', hint = 'See docs/scale-out.md.';
    end if;
    if shard_count is null or shard_count not between 1 and 64000 then
        raise exception 'shard_count must be between 1 and 64000, got %', coalesce(shard_count::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    -- Flushes wait until this commits: a flush that began before the keys
    -- are filled would write rows without one, which Citus refuses.
    perform otel.take_flush_lock();
    for target in
        select t.*, t.name::regclass as relation
          from (values (1, 'otel.traces', 'trace_id', 'default'),
                       (2, 'otel.trace_summaries', 'trace_id', 'otel.traces'),
                       (3, 'otel.span_signatures', null, null),
                       (4, 'otel.operation_catalog', null, null),
                       (5, 'otel.logs', 'shard_key', 'otel.traces'),
                       (6, 'otel.metrics', 'series_key', 'none')) as t (n, name, key, colocate_with)
         order by n
    loop
        if target.key is not null then
            distributed_by := otel.distribution_column(target.relation);
            continue when distributed_by = target.key;
            if target.name in ('otel.logs', 'otel.metrics') then
                -- Rows stored before the table was distributed by its key have
                -- none; a columnar partition cannot be updated.
                select string_agg(p.name, ', ' order by p.day) into cold
                  from otel.daily_partitions(substr(target.name, 6)) as p
                 where p.columnar;
                if cold is not null then
                    raise exception 'otel.distribute() cannot distribute %: its cold partitions (%) are columnar',
                                    target.name, cold
                        using errcode = 'object_not_in_prerequisite_state',
                              hint = 'Make them row tables again (alter table … set access method heap), or drop them; see docs/scale-out.md.';
                end if;
                if target.name = 'otel.logs' then
                    update otel.logs set shard_key = otel.log_shard_key(trace_id, time, body) where shard_key is null;
                else
                    update otel.metrics
                       set series_key = otel.metric_series_key(name, service_name, labels, resource_attributes)
                     where series_key is null;
                end if;
            end if;
            if distributed_by is not null then
                -- Rewrites the table as a new one, with its partitions, indexes
                -- and grants, but not its comment.
                described := obj_description(target.relation, 'pg_class');
                perform alter_distributed_table(target.relation, distribution_column => target.key,
                                                colocate_with => target.colocate_with);
                execute format('comment on table %s is %L', target.name, described);
                return next format('%s: distributed by %s instead of %s', target.name, target.key, distributed_by);
                continue;
            end if;
        end if;
        continue when otel.distributed(target.relation);
        if target.key is null then
            perform create_reference_table(target.relation);
            return next format('%s: reference', target.name);
            continue;
        end if;
        if target.colocate_with in ('default', 'none') then
            perform create_distributed_table(target.relation, target.key, shard_count => distribute.shard_count,
                                             colocate_with => target.colocate_with);
        else
            perform create_distributed_table(target.relation, target.key, colocate_with => target.colocate_with);
        end if;
        return next format('%s: distributed by %s', target.name, target.key);
    end loop;
    foreach kind in array array['otlp', 'traces', 'logs', 'metrics'] loop
        staging := format('otel.%I', kind || '_staging');
        claims := format('otel.%I', 'claimed_' || kind);
        if not otel.distributed(staging) then
            -- Rows staged before get their ids here; a claim table holds rows
            -- only while a flush runs, or after one failed.
            row_ids := format('otel.%I', case kind when 'otlp' then 'staged_request_ids' when 'traces' then 'staged_span_ids'
                                                   when 'logs' then 'staged_log_ids' else 'staged_point_ids' end);
            execute format('create sequence %s', row_ids);
            execute format('grant usage on sequence %s to otel_writer', row_ids);
            execute format('alter table %s add column row_id bigint default nextval(%L)', staging, row_ids);
            execute format('alter table %s add column row_id bigint default nextval(%L)', claims, row_ids);
            execute format('alter table %s alter column row_id drop default', claims);
            perform create_distributed_table(staging, 'row_id', shard_count => distribute.shard_count,
                                             colocate_with => 'none');
            perform create_distributed_table(claims, 'row_id', colocate_with => staging);
            return next format('%s: distributed by row_id, and %s with it', staging, claims);
        end if;
        if kind = 'otlp' then
            -- Requests parsed on the workers, each beside its claim.
            if to_regclass('otel.flush_otlp') is null then
                create unlogged table otel.flush_otlp (row_id bigint, doc jsonb);
                alter table otel.flush_otlp alter column doc set storage external;
                comment on table otel.flush_otlp is
                    'On Citus: the OTLP/JSON requests of the running flush, parsed on the workers (otel.decode_on_workers()); internal';
                perform create_distributed_table('otel.flush_otlp', 'row_id', colocate_with => 'otel.claimed_otlp');
                return next 'otel.flush_otlp: distributed by row_id, beside otel.claimed_otlp';
            end if;
            continue;
        end if;
        working_table := otel.working_table_on_workers(kind);
        remade := false;
        if to_regclass(working_table) is not null then
            -- Shaped by an earlier release's typing query, which a later one
            -- may change (the flush then types on the coordinator): made again.
            execute format('create temp table otel_typed_shape as %s with no data',
                           otel.typing_query(kind, otel.claimed_rows_on_workers(kind)));
            if otel.typed_columns(working_table::regclass) is distinct from otel.typed_columns('pg_temp.otel_typed_shape') then
                execute format('drop table %s', working_table);
                remade := true;
            end if;
            drop table pg_temp.otel_typed_shape;
        end if;
        if to_regclass(working_table) is null then
            execute format('create unlogged table %s as %s with no data',
                           working_table, otel.typing_query(kind, otel.claimed_rows_on_workers(kind)));
            execute format('comment on table %s is %L', working_table,
                           format('On Citus: the %s of the running flush, typed on the workers (otel.type_on_workers(), otel.decode_on_workers()); internal',
                                  case kind when 'traces' then 'spans' when 'logs' then 'log records' else 'metric points' end));
            -- Spans beside their traces' stored spans; the others beside their claims.
            remade_note := case when remade then ', made again for this release''s typing' else '' end;
            if kind = 'traces' then
                perform create_distributed_table(working_table, 'trace_id', colocate_with => 'otel.traces');
                return next format('%s: distributed by trace_id', working_table) || remade_note;
            else
                perform create_distributed_table(working_table, 'n', colocate_with => claims);
                return next format('%s: distributed by n, beside %s', working_table, claims) || remade_note;
            end if;
        end if;
    end loop;
    foreach role_name in array array['otel_reader', 'otel_writer', 'otel_admin'] loop
        continue when not exists (
            select from run_command_on_workers(format('select rolcanlogin from pg_roles where rolname = %L', role_name))
             where result is distinct from 't');
        select string_agg(format('%s:%s: %s', w.nodename, w.nodeport, w.result), '; ') into refused
          from run_command_on_workers(
                   -- on each worker alone: Citus would pass it on to every node
                   format('set citus.enable_alter_role_propagation to off; alter role %I login', role_name)) as w
         where not w.success;
        if refused is not null then
            raise exception 'could not let % log in on the workers: %', role_name, refused;
        end if;
        return next format('%s: may log in on the workers', role_name);
    end loop;
end
$$;
comment on function otel.distribute(integer) is
    'On a Citus coordinator, after `alembic upgrade head`: distributes otel.traces and otel.trace_summaries by trace_id in shard_count (default 32) co-located shards, otel.logs by shard_key co-located with the spans (a record in a trace beside its spans) and otel.metrics by series_key (one shard a series), redistributing a table an earlier release distributed otherwise, and makes otel.span_signatures and otel.operation_catalog reference tables; distributes the staging of OTLP/JSON requests, spans, logs and points by a row id it adds (writers COPY into them with a column list), so that the flush parses, decodes, types and moves their rows on the workers (otel.flush_otlp, otel.flush_spans, otel.flush_logs, otel.flush_metrics); lets otel_reader, otel_writer and otel_admin log in on the workers (Citus reaches the shards as the current role); returns what it changed (nothing when run again, unless a worker was added). The dead letters stay on the coordinator';

create or replace function otel.staging_bytes()
returns bigint
language plpgsql stable
security definer
set search_path = pg_catalog, pg_temp
as $$
-- What waits for otel.flush(), for writers that hold back when it grows
-- (`otel-db serve`): on every worker where Citus distributes the staging
-- tables, whose tables on the coordinator are then empty.
declare
    staging regclass;
    total bigint := 0;
begin
    foreach staging in array array['otel.otlp_staging', 'otel.traces_staging', 'otel.logs_staging',
                                   'otel.metrics_staging']::regclass[] loop
        if otel.distributed(staging) then
            total := total + citus_total_relation_size(staging);
        else
            total := total + pg_total_relation_size(staging);
        end if;
    end loop;
    return total;
end
$$;
comment on function otel.staging_bytes() is
    'The bytes of the staging tables (OTLP/JSON requests, spans, logs, points), indexes and TOAST included, on every worker on Citus: what waits for otel.flush()';

grant execute on function otel.staging_bytes() to otel_writer, otel_reader, otel_admin;
grant execute on function otel.flush_process(timestamptz, text[], boolean), otel.flush_may_redo(text, text) to otel_admin;
"""

# otel.flush() as the baseline made it: no later revision changed it.
DOWNGRADE_FLUSH = r"""
create or replace procedure otel.flush()
language plpgsql
as $$
-- Two transactions, so that a staging table is locked only while its rows
-- are copied (the first), never while they are processed (the second).
-- Hence: call it outside a transaction block, as pg_cron, psql in
-- autocommit and otel_db.Client do. A row is always in exactly one of
-- staging, claim table, final table or dead-letter queue.
declare
    started_at timestamptz := clock_timestamp();
    truncated text[];
begin
    truncated := otel.flush_claim();
    commit;
    perform otel.flush_process(started_at, truncated);
end
$$;
comment on procedure otel.flush() is
    'Moves every row staged before it started to otel.traces, otel.logs, otel.metrics or otel.telemetry_dlq; never loses or duplicates a row; safe beside writers and another flush; records itself in otel.flush_runs. Call it outside a transaction block: it commits once, after claiming the staged rows';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(
        "drop function otel.otlp_request_error(jsonb), otel.otlp_key_values(jsonb), otel.decoding_query(text, text), otel.decoded_columns(text),"
        " otel.decoding_query_traces(text), otel.decoding_query_logs(text), otel.decoding_query_metrics(text),"
        " otel.decoded_rows_on_workers(text, text), otel.decoded_record_n(bigint, bigint),"
        " otel.working_table_fits(text), otel.insert_typed_on_workers(text, text), otel.decode_on_workers(text[]),"
        " otel.flush_process(timestamptz, text[], boolean), otel.flush_may_redo(text, text),"
        " otel.staging_bytes();"
        " drop table if exists otel.flush_otlp;"
    )
    for revision, routine in (
        ("0014", "otel.otlp_attributes"),
        ("0031", "otel.decode_otlp_traces"),
        ("0031", "otel.decode_otlp_logs"),
        ("0031", "otel.decode_otlp_metrics"),
        ("0006", "otel.decode_otlp_requests"),
        ("0054", "otel.typing_query_traces"),
        ("0054", "otel.typing_query_logs"),
        ("0054", "otel.typing_query_metrics"),
        ("0054", "otel.typing_query"),
        ("0056", "otel.load_claimed"),
        ("0015", "otel.process_working_set"),
        ("0056", "otel.type_on_workers"),
        ("0054", "otel.move_on_workers"),
        ("0056", "otel.flush_process"),
        ("0058", "otel.distribute"),
    ):
        execute_sql(released_routine(revision, routine))
    execute_sql("grant execute on function otel.flush_process(timestamptz, text[]) to otel_admin;")
    execute_sql(DOWNGRADE_FLUSH)
