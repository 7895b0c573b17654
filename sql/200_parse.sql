-- Parsers shared by the flush: OTLP enums, ids and timestamps.
-- They return null for input they cannot read, so that the flush can name
-- the problem in a dead letter instead of failing a whole batch.

create or replace function otel.argument_text(value text)
returns text
language sql immutable parallel safe
as $$
    -- For error messages: quoted, and at most 100 characters of it, so that
    -- a huge argument is neither echoed to the client nor written whole to
    -- the server log.
    select case when value is null then 'null'
                when length(value) <= 100 then quote_literal(value)
                else quote_literal(left(value, 100)) || format('... (%s characters)', length(value)) end
$$;
comment on function otel.argument_text(text) is
    'An argument as an error message shows it: quoted, at most 100 characters, or null';

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
language sql stable parallel safe
as $$
    select case when from_otlp then format('invalid OTLP %s (not Unix nanoseconds, 0 to 2^64-1): %s', otlp_field, left(given, 200))
                else format('%s "%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', field, left(given, 100)) end
$$;
comment on function otel.unreadable_time(text, text, text, boolean) is
    'The dead-letter reason for a time that otel.parse_record_time() cannot read: field of a staged row or otlp_field of an OTLP/JSON record';

create or replace function otel.is_integer_text(value text, max_digits int, signed boolean)
returns boolean
language sql immutable parallel safe
as $$
    -- Up to max_digits decimal digits, with a minus sign if signed, white
    -- space around them or not. Plain digits, the usual form, are recognised
    -- without the counted regular expression, at a fifth of its cost.
    select case
        when length(value) between 1 and max_digits and value !~ '[^0-9]' then true
        else value ~ ('^\s*' || case when signed then '-?' else '' end || '[0-9]{1,' || max_digits::text || '}\s*$')
    end
$$;
comment on function otel.is_integer_text(text, int, boolean) is
    'True when value is an integer of at most max_digits digits (signed if allowed), with or without white space around it';

create or replace function otel.parse_flags(value text)
returns bigint
language sql immutable parallel safe
as $$
    select case when otel.is_integer_text(value, 10, false) and value::bigint <= 4294967295 then value::bigint end
$$;
comment on function otel.parse_flags(text) is 'OTLP flags (a 32-bit unsigned integer) to bigint; null when unreadable';

create or replace function otel.parse_span_kind(value text)
returns text
language sql immutable parallel safe
as $$
    -- The usual spellings first, without the costly regexp_replace.
    select case value
        when 'SERVER' then 'SERVER' when 'CLIENT' then 'CLIENT' when 'INTERNAL' then 'INTERNAL'
        when 'PRODUCER' then 'PRODUCER' when 'CONSUMER' then 'CONSUMER' when 'UNSPECIFIED' then 'UNSPECIFIED'
        when '2' then 'SERVER' when '3' then 'CLIENT' when '1' then 'INTERNAL'
        else case regexp_replace(upper(coalesce(trim(value), '')), '^SPAN_KIND_', '')
            when '' then 'UNSPECIFIED' when '0' then 'UNSPECIFIED' when 'UNSPECIFIED' then 'UNSPECIFIED'
            when '1' then 'INTERNAL' when 'INTERNAL' then 'INTERNAL'
            when '2' then 'SERVER' when 'SERVER' then 'SERVER'
            when '3' then 'CLIENT' when 'CLIENT' then 'CLIENT'
            when '4' then 'PRODUCER' when 'PRODUCER' then 'PRODUCER'
            when '5' then 'CONSUMER' when 'CONSUMER' then 'CONSUMER'
        end
    end
$$;
comment on function otel.parse_span_kind(text) is
    'OTLP span kind by number (0-5) or name (SERVER, SPAN_KIND_SERVER) to its name; missing is UNSPECIFIED; null when unknown';

create or replace function otel.parse_status_code(value text)
returns text
language sql immutable parallel safe
as $$
    select case value
        when 'UNSET' then 'UNSET' when 'OK' then 'OK' when 'ERROR' then 'ERROR'
        else case regexp_replace(upper(coalesce(trim(value), '')), '^STATUS_CODE_', '')
            when '' then 'UNSET' when '0' then 'UNSET' when 'UNSET' then 'UNSET'
            when '1' then 'OK' when 'OK' then 'OK'
            when '2' then 'ERROR' when 'ERROR' then 'ERROR'
        end
    end
$$;
comment on function otel.parse_status_code(text) is
    'OTLP status code by number (0-2) or name (ERROR, STATUS_CODE_ERROR); missing is UNSET; null when unknown';

create or replace function otel.normalize_id(value text, hex_digits int)
returns text
language sql immutable parallel safe
as $$
    -- OTLP ids are case-insensitive hex; empty or all-zero means "no id".
    -- Null for no id and for what is not an id (otel.is_absent_id() tells
    -- the two apart). Ids already in the stored form are checked once,
    -- without trims or lower-casing.
    select case
        when octet_length(value) = hex_digits and value !~ '[^0-9a-f]' then nullif(value, repeat('0', hex_digits))
        when length(trim(value)) = hex_digits and lower(trim(value)) !~ '[^0-9a-f]'
            then nullif(lower(trim(value)), repeat('0', hex_digits))
    end
$$;
comment on function otel.normalize_id(text, int) is
    'An OTLP hex id in lower case; null when there is none (empty or all zeros) or it is not hex_digits hex digits';

create or replace function otel.is_absent_id(value text, hex_digits int)
returns boolean
language sql immutable parallel safe
as $$
    select value is null or trim(value) = '' or lower(trim(value)) = repeat('0', hex_digits)
$$;
comment on function otel.is_absent_id(text, int) is
    'True when an OTLP id is missing, empty or all zeros (no id), false when it is a value';

create or replace function otel.parse_json(value text, default_value jsonb)
returns jsonb
language sql immutable parallel safe
as $$
    -- Raises on malformed JSON: the flush isolates such a row on its slow path.
    -- Empty arrays and objects (most spans' events and links) are constants,
    -- not parsed.
    select case when value is null or value = '' then default_value
                when value = '[]' then '[]'::jsonb
                when value = '{}' then '{}'::jsonb
                else value::jsonb end
$$;
comment on function otel.parse_json(text, jsonb) is
    'JSON text to jsonb, default_value for null or empty text; raises on malformed JSON';

create or replace function otel.try_jsonb(value text)
returns jsonb
language plpgsql immutable parallel safe
as $$
begin
    return value::jsonb;
exception when others then
    return null;
end
$$;
comment on function otel.try_jsonb(text) is
    'JSON text to jsonb, null when malformed (one subtransaction a call: for whole OTLP requests, not per value)';

create or replace function otel.parse_severity(value text)
returns integer
language sql immutable parallel safe
as $$
    -- OTLP SeverityNumber by number (0-24) or name (INFO, SEVERITY_NUMBER_WARN3).
    select case
        when value is null or trim(value) = '' then null
        when trim(value) ~ '^[0-9]{1,2}$' and trim(value)::int <= 24 then trim(value)::int
        else (select (array[1, 5, 9, 13, 17, 21])[array_position(
                         array['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'], m[1])]
                     + coalesce(nullif(m[2], '')::int - 1, 0)
                from regexp_match(regexp_replace(upper(trim(value)), '^SEVERITY_NUMBER_', ''),
                                  '^(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)([2-4]?)$') as m)
    end
$$;
comment on function otel.parse_severity(text) is
    'OTLP severity number by number (0-24) or name (INFO, SEVERITY_NUMBER_WARN3); null when unreadable';

create or replace function otel.parse_double(value text)
returns double precision
language sql immutable parallel safe
as $$
    select case
        when value ~ '^\s*-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?\s*$'
          or trim(value) in ('NaN', 'Infinity', '-Infinity') then value::double precision
    end
$$;
comment on function otel.parse_double(text) is
    'A JSON number, NaN, Infinity or -Infinity to double precision; null when unreadable';

create or replace function otel.parse_temporality(value text)
returns text
language sql immutable parallel safe
as $$
    -- A lookup rather than a case on the value, which Citus sends to the
    -- workers without its tests once the function is inlined.
    select '{"": "unspecified", "0": "unspecified", "unspecified": "unspecified", "1": "delta", "delta": "delta",
             "2": "cumulative", "cumulative": "cumulative"}'::jsonb
           ->> regexp_replace(lower(coalesce(trim(value), '')), '^aggregation_temporality_', '')
$$;
comment on function otel.parse_temporality(text) is
    'OTLP aggregation temporality by number (0-2) or name to unspecified, delta or cumulative; null when unknown';

create or replace function otel.json_numeric_array(value jsonb)
returns numeric[]
language sql immutable parallel safe
as $$
    -- Raises on an element that is not a number (OTLP writes uint64 counts as strings).
    select case when value is not null
                then array(select e::numeric from jsonb_array_elements_text(value) with ordinality as x (e, i) order by i) end
$$;
comment on function otel.json_numeric_array(jsonb) is 'A JSON array of numbers or numeric strings to numeric[]';
