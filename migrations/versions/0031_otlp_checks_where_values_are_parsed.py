"""OTLP/JSON records decode faster: times are checked where they are parsed, and AnyValue tests its type once.

The decoder checked every OTLP time with otel.otlp_uint64() (a regular
expression on text extracted from the record four times), and the typing
step then parsed the same text again. The typing step now knows which rows
are decoded records (payload_id) and reads their times as Unix nanoseconds
only (otel.parse_record_time: RFC 3339 stays a staged-row convenience), with
the dead-letter reason the decoder gave (otel.unreadable_time).
otel.otlp_value() tests that a value is an object once, then each variant
once; an intValue's JSON type is left to its digit check, which refuses any
other. Same answers, same dead letters; the OTLP flush costs what it did
before the validation checks (`python -m bench flush_before_after`).

Revision ID: 0031
Revises: 0030
"""

from migrations.schema import execute_sql, released_routine

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.parse_unix_nanos(value text)
returns timestamptz
language sql stable parallel safe
as $$
    -- Unix nanoseconds (OTLP fixed64, up to 2^64-1, leading zeros and white
    -- space around them allowed; exact to the microsecond, never rounded
    -- through float64). Nanoseconds up to 8999999999999999999 (the year
    -- 2255) take the fast path: recognised without a counted regular
    -- expression ([0-9]{1,19} costs a microsecond a value; a length and a
    -- negated class, a twentieth of that), and as whole microseconds below
    -- 2^53, which interval arithmetic multiplies exactly (a third of the
    -- cost of to_timestamp() plus an interval).
    select case
        when octet_length(value) between 1 and 19 and value !~ '[^0-9]'
         and (octet_length(value) < 19 or value collate "C" <= '8999999999999999999') then
            timestamptz 'epoch' + (value::bigint / 1000) * interval '1 microsecond'
        when value ~ '^\s*0*[0-9]{1,20}\s*$' and value::numeric <= 18446744073709551615 then
            to_timestamp(div(value::numeric, 1000000000)::float8)
            + div(mod(value::numeric, 1000000000), 1000)::int * interval '1 microsecond'
    end
$$;
comment on function otel.parse_unix_nanos(text) is
    'Unix nanoseconds (up to 2^64-1) to timestamptz, null when unreadable: how OTLP/JSON gives a time';

create or replace function otel.parse_time(value text)
returns timestamptz
language sql stable parallel safe
as $$
    -- Unix nanoseconds or RFC 3339 text. Text without an offset is UTC
    -- inside otel.flush(), which runs with timezone = UTC.
    select coalesce(
        otel.parse_unix_nanos(value),
        case when value ~ '^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?\s*([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?\s*$'
             then value::timestamptz end)
$$;
comment on function otel.parse_time(text) is
    'Unix nanoseconds (up to 2^64-1) or RFC 3339 text to timestamptz, null when unreadable';

create or replace function otel.parse_record_time(value text, from_otlp boolean)
returns timestamptz
language sql stable parallel safe
as $$
    -- A staged row's time may be RFC 3339; an OTLP/JSON record's is Unix
    -- nanoseconds only. The typing step checks this rather than the
    -- decoder: there the value is parsed once anyway, and the OTLP check
    -- costs nothing more.
    select case when from_otlp then otel.parse_unix_nanos(value) else otel.parse_time(value) end
$$;
comment on function otel.parse_record_time(text, boolean) is
    'A time of a staged row (Unix nanoseconds or RFC 3339) or, when from_otlp, of a decoded OTLP/JSON record (Unix nanoseconds only) to timestamptz; null when unreadable';

create or replace function otel.unreadable_time(field text, otlp_field text, given text, from_otlp boolean)
returns text
language sql immutable parallel safe
as $$
    select case when from_otlp then format('invalid OTLP %s (not Unix nanoseconds, 0 to 2^64-1): %s', otlp_field, left(given, 200))
                else format('%s "%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', field, left(given, 100)) end
$$;
comment on function otel.unreadable_time(text, text, text, boolean) is
    'The dead-letter reason for a time that otel.parse_record_time() cannot read: field of a staged row or otlp_field of an OTLP/JSON record';

create or replace function otel.otlp_value(v jsonb)
returns jsonb
language sql immutable parallel safe
as $$
    select case
        when jsonb_typeof(v) = 'object' then
            -- An AnyValue holds at most one of the variants (proto3 JSON
            -- refuses a second member of a oneof): each branch looks for the
            -- variants after its own.
            case
                when v ? 'stringValue' then
                    case when v ?| '{intValue,doubleValue,boolValue,bytesValue,arrayValue,kvlistValue}'
                         then otel.otlp_invalid('AnyValue (more than one of its variants)', v::text)
                         else v -> 'stringValue' end
                when v ? 'intValue' then
                    case when v ?| '{doubleValue,boolValue,bytesValue,arrayValue,kvlistValue}'
                         then otel.otlp_invalid('AnyValue (more than one of its variants)', v::text)
                         -- a JSON number or a string of digits: is_integer_text refuses anything else
                         when otel.is_integer_text(v ->> 'intValue', 20, true)
                         then ((v ->> 'intValue')::numeric)::text::jsonb
                         else otel.otlp_invalid('intValue', v ->> 'intValue') end
                when v ? 'doubleValue' then
                    case when v ?| '{boolValue,bytesValue,arrayValue,kvlistValue}'
                         then otel.otlp_invalid('AnyValue (more than one of its variants)', v::text)
                         when jsonb_typeof(v -> 'doubleValue') = 'number' then v -> 'doubleValue'
                         when jsonb_typeof(v -> 'doubleValue') <> 'string' then otel.otlp_invalid('doubleValue', v ->> 'doubleValue')
                         when v ->> 'doubleValue' in ('NaN', 'Infinity', '-Infinity') then v -> 'doubleValue'
                         when v ->> 'doubleValue' ~ '^\s*-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?\s*$'
                         then ((v ->> 'doubleValue')::numeric)::text::jsonb
                         else otel.otlp_invalid('doubleValue', v ->> 'doubleValue') end
                when v ? 'boolValue' then
                    case when v ?| '{bytesValue,arrayValue,kvlistValue}'
                         then otel.otlp_invalid('AnyValue (more than one of its variants)', v::text)
                         when jsonb_typeof(v -> 'boolValue') = 'boolean' then v -> 'boolValue'
                         else otel.otlp_invalid('boolValue', v ->> 'boolValue') end
                when v ? 'bytesValue' then
                    case when v ?| '{arrayValue,kvlistValue}'
                         then otel.otlp_invalid('AnyValue (more than one of its variants)', v::text)
                         when jsonb_typeof(v -> 'bytesValue') = 'string'
                          and v ->> 'bytesValue' ~ '^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$'
                         then v -> 'bytesValue'
                         else otel.otlp_invalid('bytesValue (not base64)', v ->> 'bytesValue') end
                when v ? 'arrayValue' and v ? 'kvlistValue'
                then otel.otlp_invalid('AnyValue (more than one of its variants)', v::text)
                when v ? 'arrayValue' then otel.otlp_array(v -> 'arrayValue')
                when v ? 'kvlistValue' then otel.otlp_kvlist(v -> 'kvlistValue')
            end  -- {} is an empty AnyValue
        when v is null or jsonb_typeof(v) = 'null' then null
        else otel.otlp_invalid('AnyValue (not an object)', v::text)
    end
$$;
comment on function otel.otlp_value(jsonb) is
    'OTLP/JSON AnyValue to plain JSON; integers exact, NaN and infinities as strings, bytes as base64 text; null for an empty AnyValue; raises on a value that breaks the mapping';

create or replace function otel.claim_table_rows(kind text)
returns text
language sql immutable
as $$
    -- A claim table row's n comes from its physical position (block and
    -- 16-bit line pointer): unique, rising in physical order like the
    -- working set's numbering (so the first of two duplicates is kept
    -- either way), and negative, so that it never meets the n of a
    -- working-set row (1, 2, ...). The point (block, line) times
    -- (65536, -1), as complex numbers, is block * 65536 + line: one
    -- conversion of the ctid instead of two. claimed keeps the position
    -- for the dead letter of a rejected row.
    -- payload_id is null: staged rows, not decoded records. Span rows also
    -- get the (null) JSON columns of decoded spans.
    select format('(select ((c.ctid::text::point) * point ''(65536,-1)'')[0]::bigint - 4611686018427387904 as n,
                           c.ctid as claimed, null::bigint as payload_id, c.*%s
                      from otel.%I as c) as r',
                  case when kind = 'traces' then ', null::jsonb as attributes_jsonb, null::jsonb as resource_attributes_jsonb,
                           null::jsonb as events_jsonb, null::jsonb as links_jsonb' else '' end,
                  'claimed_' || kind)
$$;
comment on function otel.claim_table_rows(text) is
    'otel.claimed_<kind> as a source of the typing query; internal to otel.flush()';

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

create or replace function otel.typing_query_traces(source text)
returns text
language sql stable
as $$
-- The query that validates and casts span rows of source (an aliased
-- relation r with the text columns of otel.traces_staging, n, claimed and
-- the JSON columns of decoded spans):
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
                   row_number() over () as barrier  -- see otel.typing_query()
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
-- relation r with the text columns of otel.logs_staging, n and claimed):
-- the rows of pg_temp.otel_logs. time falls back to observed_time when it
-- is absent or 0, as the OTLP spec says.
select format($query$
    select p.n, p.claimed,
           case
               when coalesce(p.given_time, '') <> '' and p.time is null
                   then otel.unreadable_time('time', 'timeUnixNano', p.given_time, p.from_otlp)
               when coalesce(p.given_observed_time, '') <> '' and p.observed_time is null
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
                   row_number() over () as barrier  -- see otel.typing_query()
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
-- aliased relation r with the text columns of otel.metrics_staging, n and
-- claimed): the rows of pg_temp.otel_metrics. Integer values are also kept
-- exactly in int_value; counts are numeric (OTLP counts are uint64).
select format($query$
    select p.n, p.claimed,
           case
               when coalesce(p.given_time, '') = '' then 'time is missing'
               when p.time is null then otel.unreadable_time('time', 'timeUnixNano', p.given_time, p.from_otlp)
               when coalesce(p.given_start_time, '') <> '' and p.start_time is null
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
                   case regexp_replace(lower(trim(r.type)), '[^a-z]', '', 'g')
                       when 'gauge' then 'gauge' when 'sum' then 'sum' when 'histogram' then 'histogram'
                       when 'exponentialhistogram' then 'exponential_histogram' when 'summary' then 'summary'
                   end as type,
                   otel.parse_double(r.value) as value,
                   case when otel.is_integer_text(r.value, 20, true) then r.value::numeric end as int_value,
                   case when otel.is_integer_text(r.count, 20, false) then r.count::numeric end as count,
                   otel.parse_double(r.sum) as sum,
                   otel.parse_double(r.min) as min,
                   otel.parse_double(r.max) as max,
                   otel.parse_temporality(r.temporality) as temporality,
                   case lower(trim(r.is_monotonic)) when 'true' then true when 't' then true when '1' then true
                       when 'false' then false when 'f' then false when '0' then false end as is_monotonic,
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
                   row_number() over () as barrier  -- see otel.typing_query()
              from %s) as p
$query$, source)
$$;
comment on function otel.typing_query_metrics(text) is
    'The query that validates and casts the metric data points of a flush; internal to otel.flush()';
"""

DOWNGRADE = r"""
create or replace function otel.parse_time(value text)
returns timestamptz
language sql stable parallel safe
as $$
    -- Unix nanoseconds (OTLP fixed64, up to 2^64-1, leading zeros allowed;
    -- exact to the microsecond, never rounded through float64) or RFC 3339
    -- text. Text without an offset is UTC inside otel.flush(), which runs
    -- with timezone = UTC. Nanoseconds up to 8999999999999999999 (the year
    -- 2255) take the fast path: recognised without a counted regular
    -- expression ([0-9]{1,19} costs a microsecond a value; a length and a
    -- negated class, a twentieth of that), and as whole microseconds below
    -- 2^53, which interval arithmetic multiplies exactly (a third of the
    -- cost of to_timestamp() plus an interval).
    select case
        when octet_length(value) between 1 and 19 and value !~ '[^0-9]'
         and (octet_length(value) < 19 or value collate "C" <= '8999999999999999999') then
            timestamptz 'epoch' + (value::bigint / 1000) * interval '1 microsecond'
        when value ~ '^\s*0*[0-9]{1,20}\s*$' and value::numeric <= 18446744073709551615 then  -- leading zeros too
            to_timestamp(div(value::numeric, 1000000000)::float8)
            + div(mod(value::numeric, 1000000000), 1000)::int * interval '1 microsecond'
        when value ~ '^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?\s*([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?\s*$' then
            value::timestamptz
    end
$$;
comment on function otel.parse_time(text) is
    'Unix nanoseconds (up to 2^64-1) or RFC 3339 text to timestamptz, null when unreadable';

create or replace function otel.claim_table_rows(kind text)
returns text
language sql immutable
as $$
    -- A claim table row's n comes from its physical position (block and
    -- 16-bit line pointer): unique, rising in physical order like the
    -- working set's numbering (so the first of two duplicates is kept
    -- either way), and negative, so that it never meets the n of a
    -- working-set row (1, 2, ...). The point (block, line) times
    -- (65536, -1), as complex numbers, is block * 65536 + line: one
    -- conversion of the ctid instead of two. claimed keeps the position
    -- for the dead letter of a rejected row.
    -- Span rows also get the (null) JSON columns of decoded spans.
    select format('(select ((c.ctid::text::point) * point ''(65536,-1)'')[0]::bigint - 4611686018427387904 as n,
                           c.ctid as claimed, c.*%s
                      from otel.%I as c) as r',
                  case when kind = 'traces' then ', null::jsonb as attributes_jsonb, null::jsonb as resource_attributes_jsonb,
                           null::jsonb as events_jsonb, null::jsonb as links_jsonb' else '' end,
                  'claimed_' || kind)
$$;
comment on function otel.claim_table_rows(text) is
    'otel.claimed_<kind> as a source of the typing query; internal to otel.flush()';

create or replace function otel.typing_query_traces(source text)
returns text
language sql stable
as $$
-- The query that validates and casts span rows of source (an aliased
-- relation r with the text columns of otel.traces_staging, n, claimed and
-- the JSON columns of decoded spans):
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
               when p.start_time is null then format('start_time "%%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(p.given_start_time, 100))
               when p.start_time = 'epoch' then 'start_time is 0 (unset)'
               when p.given_end_time is null or p.given_end_time = '' then 'end_time is missing'
               when p.end_time is null then format('end_time "%%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(p.given_end_time, 100))
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
                   otel.parse_time(r.start_time) as start_time,
                   otel.parse_time(r.end_time) as end_time,
                   otel.parse_flags(r.flags) as flags,
                   coalesce(r.attributes_jsonb, otel.parse_json(r.attributes, '{}')) as attributes,
                   coalesce(r.resource_attributes_jsonb, otel.parse_json(r.resource_attributes, '{}')) as resource_attributes,
                   coalesce(r.events_jsonb, otel.parse_json(r.events, '[]')) as events,
                   coalesce(r.links_jsonb, otel.parse_json(r.links, '[]')) as links,
                   row_number() over () as barrier  -- see otel.typing_query()
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
-- relation r with the text columns of otel.logs_staging, n and claimed):
-- the rows of pg_temp.otel_logs. time falls back to observed_time when it
-- is absent or 0, as the OTLP spec says.
select format($query$
    select p.n, p.claimed,
           case
               when coalesce(p.given_time, '') <> '' and p.time is null
                   then format('time "%%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(p.given_time, 100))
               when coalesce(p.given_observed_time, '') <> '' and p.observed_time is null
                   then format('observed_time "%%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(p.given_observed_time, 100))
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
                   otel.parse_time(r.time) as time,
                   otel.parse_time(r.observed_time) as observed_time,
                   otel.parse_severity(r.severity_number) as severity_number,
                   otel.normalize_id(r.trace_id, 32) as trace_id,
                   otel.normalize_id(r.span_id, 16) as span_id,
                   otel.parse_flags(r.flags) as flags,
                   otel.parse_json(r.attributes, '{}') as attributes,
                   otel.parse_json(r.resource_attributes, '{}') as resource_attributes,
                   row_number() over () as barrier  -- see otel.typing_query()
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
-- aliased relation r with the text columns of otel.metrics_staging, n and
-- claimed): the rows of pg_temp.otel_metrics. Integer values are also kept
-- exactly in int_value; counts are numeric (OTLP counts are uint64).
select format($query$
    select p.n, p.claimed,
           case
               when coalesce(p.given_time, '') = '' then 'time is missing'
               when p.time is null then format('time "%%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(p.given_time, 100))
               when coalesce(p.given_start_time, '') <> '' and p.start_time is null
                   then format('start_time "%%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(p.given_start_time, 100))
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
                   otel.parse_time(r.time) as time,
                   otel.parse_time(r.start_time) as start_time,
                   case regexp_replace(lower(trim(r.type)), '[^a-z]', '', 'g')
                       when 'gauge' then 'gauge' when 'sum' then 'sum' when 'histogram' then 'histogram'
                       when 'exponentialhistogram' then 'exponential_histogram' when 'summary' then 'summary'
                   end as type,
                   otel.parse_double(r.value) as value,
                   case when otel.is_integer_text(r.value, 20, true) then r.value::numeric end as int_value,
                   case when otel.is_integer_text(r.count, 20, false) then r.count::numeric end as count,
                   otel.parse_double(r.sum) as sum,
                   otel.parse_double(r.min) as min,
                   otel.parse_double(r.max) as max,
                   otel.parse_temporality(r.temporality) as temporality,
                   case lower(trim(r.is_monotonic)) when 'true' then true when 't' then true when '1' then true
                       when 'false' then false when 'f' then false when '0' then false end as is_monotonic,
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
                   row_number() over () as barrier  -- see otel.typing_query()
              from %s) as p
$query$, source)
$$;
comment on function otel.typing_query_metrics(text) is
    'The query that validates and casts the metric data points of a flush; internal to otel.flush()';

drop function otel.unreadable_time(text, text, text, boolean);
drop function otel.parse_record_time(text, boolean);
drop function otel.parse_unix_nanos(text);
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
    execute_sql(released_routine("0013", "otel.otlp_value"))
    execute_sql(released_routine("0014", "otel.decode_otlp_traces"))
    execute_sql(released_routine("0014", "otel.decode_otlp_logs"))
    execute_sql(released_routine("0014", "otel.decode_otlp_metrics"))
