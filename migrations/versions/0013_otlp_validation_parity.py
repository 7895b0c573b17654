"""OTLP/JSON validated as the OpenTelemetry Collector's decoder does: what it refuses is dead-lettered with a reason, an empty request is accepted, proto field names are read.

The decoders read each field through a check: string fields must be JSON
strings (otel.otlp_string()), times and counts unsigned integers
(otel.otlp_uint64()), ids in links and exemplars hex of the right length
(otel.otlp_id()); a metric may set one data field; histogram and
exponential histogram points keep the data model's bucket arithmetic
(otel.otlp_bucket_counts()). otel.otlp_value() refuses an AnyValue that is
not an object or sets more than one variant, and values of the wrong JSON
type. otel.decode_otlp() isolates the record that breaks a rule. An object
with none of resourceSpans, resourceLogs, resourceMetrics is an empty
request: accepted, nothing stored. Requests in proto field names
(resource_spans) are renamed by otel.otlp_camel_case().

Revision ID: 0013
Revises: 0012
"""

from migrations.schema import execute_sql, released_routine

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.otlp_string(value jsonb, field text)
returns text
language sql immutable parallel safe
as $$
    select case
        when jsonb_typeof(value) = 'string' then value #>> '{}'
        when value is null or jsonb_typeof(value) = 'null' then null
        else otel.otlp_invalid(field || ' (not a string)', value::text) #>> '{}'
    end
$$;
comment on function otel.otlp_string(jsonb, text) is
    'An OTLP/JSON string field as text (null when absent); raises when it holds another JSON type';

create or replace function otel.otlp_uint64(value text, field text)
returns text
language sql immutable parallel safe
as $$
    -- A JSON number or a string of digits: what proto3 JSON gives a uint64
    -- or fixed64 (typed staging columns also take RFC 3339; OTLP does not).
    select case
        when value is null or otel.is_integer_text(value, 20, false) then value
        else otel.otlp_invalid(field || ' (not an unsigned integer)', value) #>> '{}'
    end
$$;
comment on function otel.otlp_uint64(text, text) is
    'An OTLP/JSON uint64 field (a JSON number or a string of digits) as text; raises on anything else';

create or replace function otel.otlp_id(value jsonb, hex_digits int, field text)
returns text
language sql immutable parallel safe
as $$
    -- An id inside a link or an exemplar: hex digits in any case, stored
    -- lowercase; empty or absent is no id.
    select case
        when value is null or jsonb_typeof(value) = 'null' or value = '""' then null
        when jsonb_typeof(value) = 'string' and length(value #>> '{}') = hex_digits
         and (value #>> '{}') !~ '[^0-9a-fA-F]' then lower(value #>> '{}')
        else otel.otlp_invalid(format('%s (not %s hex digits)', field, hex_digits), value::text) #>> '{}'
    end
$$;
comment on function otel.otlp_id(jsonb, int, text) is
    'A trace or span id inside an OTLP/JSON link or exemplar, lowercase (null when empty); raises when it is not hex_digits hex digits';

create or replace function otel.otlp_bucket_counts(data_point jsonb, type text)
returns text
language plpgsql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
-- The bucket counts of a histogram or exponential histogram data point as
-- JSON text, once its bucket arithmetic is checked as the data model has it:
-- a histogram has no buckets or one more than its bounds, and its count is
-- their sum; an exponential histogram's count is its zero count plus its
-- positive and negative buckets, and its scale is -10 to 20.
declare
    counts jsonb := data_point -> 'bucketCounts';
    bucket_total numeric;
begin
    if type = 'histogram' then
        if jsonb_array_length(coalesce(counts, '[]')) not in (0, jsonb_array_length(coalesce(data_point -> 'explicitBounds', '[]')) + 1) then
            perform otel.otlp_invalid('histogram bucketCounts (not one more than its explicitBounds)', counts::text);
        end if;
        select sum(c::numeric) into bucket_total from jsonb_array_elements_text(counts) as c;
        if bucket_total <> coalesce(data_point ->> 'count', '0')::numeric then
            perform otel.otlp_invalid('histogram count (not the sum of its bucketCounts)', data_point ->> 'count');
        end if;
        return counts::text;
    end if;
    if (data_point ->> 'scale')::numeric not between -10 and 20 then
        perform otel.otlp_invalid('exponential histogram scale (not between -10 and 20)', data_point ->> 'scale');
    end if;
    select coalesce(sum(c::numeric), 0) into bucket_total
      from jsonb_array_elements_text(coalesce(data_point -> 'positive' -> 'bucketCounts', '[]')
                                     || coalesce(data_point -> 'negative' -> 'bucketCounts', '[]')) as c;
    if coalesce(data_point ->> 'zeroCount', '0')::numeric + bucket_total <> coalesce(data_point ->> 'count', '0')::numeric then
        perform otel.otlp_invalid('exponential histogram count (not zeroCount plus its buckets)', data_point ->> 'count');
    end if;
    return counts::text;
end
$$;
comment on function otel.otlp_bucket_counts(jsonb, text) is
    'The bucketCounts of an OTLP/JSON histogram or exponential histogram data point as JSON text; raises when its bucket arithmetic is wrong';

create or replace function otel.otlp_camel_case(doc jsonb)
returns jsonb
language plpgsql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
-- The request with every field named as proto3 JSON names it
-- (scope_spans → scopeSpans). Attribute keys are values, never field
-- names, so they stay as they are.
begin
    return case jsonb_typeof(doc)
        when 'object' then
            (select coalesce(jsonb_object_agg(
                        case when position('_' in field) = 0 then field
                             else (select string_agg(case when i = 1 then part else upper(left(part, 1)) || substr(part, 2) end,
                                                     '' order by i)
                                     from regexp_split_to_table(field, '_') with ordinality as p (part, i)) end,
                        otel.otlp_camel_case(value)), '{}')
               from jsonb_each(doc) as f (field, value))
        when 'array' then
            (select coalesce(jsonb_agg(otel.otlp_camel_case(e) order by i), '[]')
               from jsonb_array_elements(doc) with ordinality as a (e, i))
        else doc
    end;
end
$$;
comment on function otel.otlp_camel_case(jsonb) is
    'An OTLP/JSON request with its proto field names (resource_spans, trace_id) in lowerCamelCase, as proto3 JSON names them';

create or replace function otel.otlp_array(arr jsonb)
returns jsonb
language plpgsql immutable parallel safe
as $$
begin
    if jsonb_typeof(arr) not in ('object', 'null') then
        perform otel.otlp_invalid('arrayValue (not an object with values)', arr::text);
    end if;
    return coalesce(
        (select jsonb_agg(otel.otlp_value(e) order by i)
           from jsonb_array_elements(arr -> 'values') with ordinality as x(e, i)),
        '[]');
end
$$;
comment on function otel.otlp_array(jsonb) is 'OTLP ArrayValue to a JSON array';

create or replace function otel.otlp_kvlist(kvlist jsonb)
returns jsonb
language plpgsql immutable parallel safe
as $$
begin
    if jsonb_typeof(kvlist) not in ('object', 'null') then
        perform otel.otlp_invalid('kvlistValue (not an object with values)', kvlist::text);
    end if;
    return otel.otlp_attributes(kvlist -> 'values');
end
$$;
comment on function otel.otlp_kvlist(jsonb) is 'OTLP KeyValueList to a JSON object';

create or replace function otel.otlp_value(v jsonb)
returns jsonb
language sql immutable parallel safe
as $$
    -- An AnyValue is an object with at most one of the variants (proto3
    -- JSON refuses a second member of a oneof); {} and null are empty.
    select case
        when v is null or jsonb_typeof(v) = 'null' then null
        when jsonb_typeof(v) <> 'object' then otel.otlp_invalid('AnyValue (not an object)', v::text)
        when v ? 'stringValue' then
            -- Most values are strings: one key, found by the cheapest test.
            case when v - 'stringValue' = '{}' then v -> 'stringValue'
                 when v ?| '{intValue,doubleValue,boolValue,bytesValue,arrayValue,kvlistValue}'
                 then otel.otlp_invalid('AnyValue (more than one of its variants)', v::text)
                 else v -> 'stringValue' end
        -- Each branch below looks for the variants after its own.
        when v ? 'intValue' then
            case when v ?| '{doubleValue,boolValue,bytesValue,arrayValue,kvlistValue}'
                 then otel.otlp_invalid('AnyValue (more than one of its variants)', v::text)
                 when otel.is_integer_text(v ->> 'intValue', 20, true) and jsonb_typeof(v -> 'intValue') in ('string', 'number')
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
        when v ? 'arrayValue' and v ? 'kvlistValue' then otel.otlp_invalid('AnyValue (more than one of its variants)', v::text)
        when v ? 'arrayValue' then otel.otlp_array(v -> 'arrayValue')
        when v ? 'kvlistValue' then otel.otlp_kvlist(v -> 'kvlistValue')
    end
$$;
comment on function otel.otlp_value(jsonb) is
    'OTLP/JSON AnyValue to plain JSON; integers exact, NaN and infinities as strings, bytes as base64 text; null for an empty AnyValue; raises on a value that breaks the mapping';

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
           otel.otlp_uint64(x.v ->> 'startTimeUnixNano', 'startTimeUnixNano'),
           otel.otlp_uint64(x.v ->> 'endTimeUnixNano', 'endTimeUnixNano'),
           x.v -> 'status' ->> 'code', otel.otlp_string(x.v -> 'status' -> 'message', 'status.message'),
           x.resource_attributes ->> 'service.name', x.scope ->> 'name', x.scope ->> 'version',
           (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
              from jsonb_array_elements(x.v -> 'attributes') as kv),
           x.resource_attributes,
           -- Most spans have neither events nor links: the guards skip
           -- their subqueries (a tenth of the decoding time).
           case when x.v ? 'events' then
           (select jsonb_agg(jsonb_build_object(
                       'name', otel.otlp_string(e -> 'name', 'event name'),
                       'time', otel.parse_time(otel.otlp_uint64(e ->> 'timeUnixNano', 'event timeUnixNano')),
                       'attributes', (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
                                        from jsonb_array_elements(e -> 'attributes') as kv)) order by ei)
              from jsonb_array_elements(x.v -> 'events') with ordinality as ev (e, ei)) end,
           case when x.v ? 'links' then
           (select jsonb_agg(jsonb_build_object(
                       'trace_id', otel.otlp_id(l -> 'traceId', 32, 'link traceId'),
                       'span_id', otel.otlp_id(l -> 'spanId', 16, 'link spanId'),
                       'trace_state', nullif(otel.otlp_string(l -> 'traceState', 'link traceState'), ''),
                       'attributes', (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
                                        from jsonb_array_elements(l -> 'attributes') as kv)) order by li)
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
           otel.otlp_uint64(x.v ->> 'timeUnixNano', 'timeUnixNano'),
           otel.otlp_uint64(x.v ->> 'observedTimeUnixNano', 'observedTimeUnixNano'), x.v ->> 'severityNumber',
           otel.otlp_string(x.v -> 'severityText', 'severityText'),
           case when jsonb_typeof(x.v -> 'body') = 'object' and (x.v -> 'body') - 'stringValue' = '{}'
                then x.v -> 'body' ->> 'stringValue'
                else otel.otlp_value(x.v -> 'body')::text end,
           x.v ->> 'traceId', x.v ->> 'spanId', x.v ->> 'flags',
           x.resource_attributes ->> 'service.name', x.scope ->> 'name', x.scope ->> 'version',
           (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
              from jsonb_array_elements(x.v -> 'attributes') as kv)::text,
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
           otel.otlp_uint64(coalesce(d.v ->> 'timeUnixNano', '0'), 'timeUnixNano'),
           otel.otlp_uint64(d.v ->> 'startTimeUnixNano', 'startTimeUnixNano'),
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
                       'attributes', (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
                                        from jsonb_array_elements(e -> 'filteredAttributes') as kv)) order by ei)
              from jsonb_array_elements(d.v -> 'exemplars') with ordinality as ex (e, ei))::text,
           m.data ->> 'aggregationTemporality',
           case when m.type = 'sum' then coalesce(m.data ->> 'isMonotonic', 'false') end,
           d.v ->> 'flags',
           (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
              from jsonb_array_elements(d.v -> 'attributes') as kv)::text,
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

create or replace function otel.process_working_set()
returns table (kind text, moved bigint, duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Decode, validate, cast and move everything in the working set; queue
-- the rejects. Shared by otel.flush() and otel.retry_dlq().
declare
    k text;
    time_column text;
    result record;
begin
    -- An object without resourceSpans, resourceLogs or resourceMetrics is an
    -- empty request, as valid as it is in OTLP: nothing to store.
    insert into pg_temp.otel_rejects
    select dlq_id, 'otlp', 'otel.otlp_staging', payload, 'text',
           case when doc is null then 'not valid JSON (an OTLP/JSON request is one JSON object per line)'
                else 'not an OTLP/JSON export request: expected an object with resourceSpans, resourceLogs or resourceMetrics' end
      from pg_temp.otel_otlp
     where doc is null or jsonb_typeof(doc) <> 'object';
    -- OTLP/JSON readers take the proto field names too (resource_spans).
    update pg_temp.otel_otlp
       set doc = otel.otlp_camel_case(doc)
     where doc ?| array['resource_spans', 'resource_logs', 'resource_metrics'];

    foreach k in array array['traces', 'logs', 'metrics'] loop
        perform otel.decode_otlp(k);
        perform otel.type_rows(k);
        time_column := case k when 'traces' then 'start_time' else 'time' end;
        perform otel.reject_outside_time_window(k, time_column);
        perform otel.partition_working_set(k, time_column);
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

revoke all on function otel.otlp_string(jsonb, text) from public;

revoke all on function otel.otlp_uint64(text, text) from public;

revoke all on function otel.otlp_id(jsonb, int, text) from public;

revoke all on function otel.otlp_bucket_counts(jsonb, text) from public;

revoke all on function otel.otlp_camel_case(jsonb) from public;
"""

DOWNGRADE = r"""
create or replace function otel.otlp_array(arr jsonb)
returns jsonb
language plpgsql immutable parallel safe
as $$
begin
    return coalesce(
        (select jsonb_agg(otel.otlp_value(e) order by i)
           from jsonb_array_elements(arr -> 'values') with ordinality as x(e, i)),
        '[]');
end
$$;
comment on function otel.otlp_array(jsonb) is 'OTLP ArrayValue to a JSON array';

create or replace function otel.otlp_kvlist(kvlist jsonb)
returns jsonb
language plpgsql immutable parallel safe
as $$
begin
    return otel.otlp_attributes(kvlist -> 'values');
end
$$;
comment on function otel.otlp_kvlist(jsonb) is 'OTLP KeyValueList to a JSON object';

create or replace function otel.otlp_value(v jsonb)
returns jsonb
language sql immutable parallel safe
as $$
    select case
        when jsonb_typeof(v) is distinct from 'object' then null
        when v ? 'stringValue' then v -> 'stringValue'
        when v ? 'intValue' then
            case when otel.is_integer_text(v ->> 'intValue', 20, true)
                 then ((v ->> 'intValue')::numeric)::text::jsonb
                 else otel.otlp_invalid('intValue', v ->> 'intValue') end
        when v ? 'doubleValue' then
            case when jsonb_typeof(v -> 'doubleValue') = 'number' then v -> 'doubleValue'
                 when v ->> 'doubleValue' in ('NaN', 'Infinity', '-Infinity') then v -> 'doubleValue'
                 when v ->> 'doubleValue' ~ '^\s*-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?\s*$'
                 then ((v ->> 'doubleValue')::numeric)::text::jsonb
                 else otel.otlp_invalid('doubleValue', v ->> 'doubleValue') end
        when v ? 'boolValue' then
            case when jsonb_typeof(v -> 'boolValue') = 'boolean' then v -> 'boolValue'
                 when v ->> 'boolValue' in ('true', 'false') then (v ->> 'boolValue')::jsonb
                 else otel.otlp_invalid('boolValue', v ->> 'boolValue') end
        when v ? 'bytesValue' then v -> 'bytesValue'
        when v ? 'arrayValue' then otel.otlp_array(v -> 'arrayValue')
        when v ? 'kvlistValue' then otel.otlp_kvlist(v -> 'kvlistValue')
    end
$$;
comment on function otel.otlp_value(jsonb) is
    'OTLP/JSON AnyValue to plain JSON; integers exact, NaN and infinities as strings, bytes as base64 text; null for an empty AnyValue';

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
           x.v ->> 'traceId', x.v ->> 'spanId', x.v ->> 'parentSpanId', x.v ->> 'traceState', x.v ->> 'flags',
           x.v ->> 'name', x.v ->> 'kind', x.v ->> 'startTimeUnixNano', x.v ->> 'endTimeUnixNano',
           x.v -> 'status' ->> 'code', x.v -> 'status' ->> 'message',
           x.resource_attributes ->> 'service.name', x.scope ->> 'name', x.scope ->> 'version',
           (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
              from jsonb_array_elements(x.v -> 'attributes') as kv),
           x.resource_attributes,
           -- Most spans have neither events nor links: the guards skip
           -- their subqueries (a tenth of the decoding time).
           case when x.v ? 'events' then
           (select jsonb_agg(jsonb_build_object(
                       'name', e ->> 'name',
                       'time', otel.parse_time(e ->> 'timeUnixNano'),
                       'attributes', (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
                                        from jsonb_array_elements(e -> 'attributes') as kv)) order by ei)
              from jsonb_array_elements(x.v -> 'events') with ordinality as ev (e, ei)) end,
           case when x.v ? 'links' then
           (select jsonb_agg(jsonb_build_object(
                       'trace_id', lower(l ->> 'traceId'),
                       'span_id', lower(l ->> 'spanId'),
                       'trace_state', nullif(l ->> 'traceState', ''),
                       'attributes', (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
                                        from jsonb_array_elements(l -> 'attributes') as kv)) order by li)
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
           x.v ->> 'severityText',
           case when x.v -> 'body' ? 'stringValue' then x.v -> 'body' ->> 'stringValue'
                else otel.otlp_value(x.v -> 'body')::text end,
           x.v ->> 'traceId', x.v ->> 'spanId', x.v ->> 'flags',
           x.resource_attributes ->> 'service.name', x.scope ->> 'name', x.scope ->> 'version',
           (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
              from jsonb_array_elements(x.v -> 'attributes') as kv)::text,
           x.resource_attributes::text,
           x.v ->> 'eventName'
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
           x.v ->> 'name', x.v ->> 'description', m.type, x.v ->> 'unit',
           coalesce(d.v ->> 'asDouble', d.v ->> 'asInt'),
           case when m.type in ('histogram', 'exponential_histogram', 'summary')
                then coalesce(d.v ->> 'count', '0') end,
           d.v ->> 'sum',
           d.v ->> 'min', d.v ->> 'max',
           (d.v -> 'bucketCounts')::text, (d.v -> 'explicitBounds')::text,
           (d.v -> 'quantileValues')::text,
           case when m.type = 'exponential_histogram'
                then (d.v - '{attributes,startTimeUnixNano,timeUnixNano,count,sum,min,max,exemplars,flags}'::text[])::text end,
           (select jsonb_agg(jsonb_build_object(
                       'time', otel.parse_time(e ->> 'timeUnixNano'),
                       'value', case when e ? 'asDouble' then otel.otlp_value(jsonb_build_object('doubleValue', e -> 'asDouble'))
                                     when e ? 'asInt' then otel.otlp_value(jsonb_build_object('intValue', e -> 'asInt')) end,
                       'trace_id', lower(nullif(e ->> 'traceId', '')),
                       'span_id', lower(nullif(e ->> 'spanId', '')),
                       'attributes', (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
                                        from jsonb_array_elements(e -> 'filteredAttributes') as kv)) order by ei)
              from jsonb_array_elements(d.v -> 'exemplars') with ordinality as ex (e, ei))::text,
           m.data ->> 'aggregationTemporality',
           case when m.type = 'sum' then coalesce(m.data ->> 'isMonotonic', 'false') end,
           d.v ->> 'flags',
           (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
              from jsonb_array_elements(d.v -> 'attributes') as kv)::text,
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

drop function otel.otlp_string(jsonb, text);

drop function otel.otlp_uint64(text, text);

drop function otel.otlp_id(jsonb, int, text);

drop function otel.otlp_bucket_counts(jsonb, text);

drop function otel.otlp_camel_case(jsonb);
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
    execute_sql(released_routine("0012", "otel.process_working_set"))
