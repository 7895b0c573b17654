-- OTLP/JSON values: AnyValue and KeyValue lists to plain JSON, the checked
-- fields the decoders read, and requests written with proto field names.
--
-- AnyValue and KeyValue lists to plain JSON:
-- {"stringValue": "a"} → "a", {"intValue": "9007199254740993"} → 9007199254740993
-- (jsonb numbers are numeric: int64 and uint64 stay exact), doubles as numbers
-- ("NaN", "Infinity", "-Infinity" stay strings: JSON has no such numbers),
-- bytes as their base64 text, arrays as arrays, kvlists as objects.
-- The scalar cases are one inlinable SQL expression (so: immutable
-- functions only, text::jsonb rather than the stable to_jsonb); arrays and
-- kvlists recurse through PL/pgSQL, which is only entered for them.

create or replace function otel.otlp_invalid(field text, value text)
returns jsonb
language plpgsql immutable parallel safe
as $$
begin
    raise exception 'invalid OTLP %: %', field, left(coalesce(value, 'null'), 200)
        using errcode = 'invalid_text_representation';
end
$$;
comment on function otel.otlp_invalid(text, text) is
    'Raises "invalid OTLP <field>": used inside decoding expressions for values that break the OTLP/JSON mapping';

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

create or replace function otel.otlp_json_names(doc jsonb)
returns jsonb
language plpgsql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
-- A request as it is parsed, with proto field names renamed when it uses
-- them (OTLP/JSON readers take both): here the document is in memory, later
-- each test would read it from the working set again.
begin
    if doc ?| '{resource_spans,resource_logs,resource_metrics}' then
        return otel.otlp_camel_case(doc);
    end if;
    return doc;
end
$$;
comment on function otel.otlp_json_names(jsonb) is
    'An OTLP/JSON request with its proto field names (resource_spans) renamed as proto3 JSON names them; the request itself when it has none';
