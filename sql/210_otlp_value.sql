-- OTLP/JSON AnyValue and KeyValue lists to plain JSON:
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

create or replace function otel.otlp_attributes(key_values jsonb)
returns jsonb
language plpgsql immutable parallel safe
as $$
-- PL/pgSQL rather than SQL: a SQL function that cannot be inlined is planned
-- again on every call, which cost more than the decoding itself. The
-- decoders spell this query out as a subquery for the attributes of every
-- record: inside the calling statement it costs half the function call.
begin
    return coalesce((select jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value'))
                       from jsonb_array_elements(key_values) as kv), '{}');
end
$$;
comment on function otel.otlp_attributes(jsonb) is
    'OTLP/JSON KeyValue array to a JSON object (a repeated key keeps its last value)';
