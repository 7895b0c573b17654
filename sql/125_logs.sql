-- Log records: OTLP/JSON decoding, validation and the move into otel.logs.

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
           otel.otlp_attributes(x.v -> 'attributes')::text,
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

create or replace function otel.type_logs(first_n bigint, last_n bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Validates and casts log rows first_n..last_n. time falls back to
-- observed_time when it is absent or 0, as the OTLP spec says.
begin
    insert into pg_temp.otel_logs (
        n, err, time, observed_time, severity_number, severity_text, body, trace_id, span_id, flags,
        service_name, scope_name, scope_version, attributes, resource_attributes, event_name)
    select r.n, v.err, coalesce(nullif(v.time, 'epoch'), v.observed_time), v.observed_time,
           v.severity_number, nullif(r.severity_text, ''), r.body, v.trace_id, v.span_id, v.flags,
           nullif(r.service_name, ''), nullif(r.scope_name, ''), nullif(r.scope_version, ''),
           v.attributes, v.resource_attributes, nullif(r.event_name, '')
      from pg_temp.otel_logs_rows as r
     cross join lateral (
        select t.*, j.*,
               case
                   when coalesce(r.time, '') <> '' and t.time is null
                       then format('time "%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(r.time, 100))
                   when coalesce(r.observed_time, '') <> '' and t.observed_time is null
                       then format('observed_time "%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(r.observed_time, 100))
                   when coalesce(nullif(t.time, 'epoch'), t.observed_time) is null
                       then 'time and observed_time are both missing or 0'
                   when coalesce(r.severity_number, '') <> '' and t.severity_number is null
                       then format('severity_number "%s" is not 0-24 or a severity name', left(r.severity_number, 100))
                   when t.trace_id is not null and not otel.is_hex_id(t.trace_id, 32)
                       then format('trace_id "%s" is not 32 hex digits', left(r.trace_id, 100))
                   when t.span_id is not null and not otel.is_hex_id(t.span_id, 16)
                       then format('span_id "%s" is not 16 hex digits', left(r.span_id, 100))
                   when t.flags is null and coalesce(r.flags, '') <> ''
                       then format('flags "%s" is not a 32-bit unsigned integer', left(r.flags, 100))
                   when octet_length(r.service_name) > 1024 then 'service_name is longer than 1024 bytes'
                   when octet_length(r.scope_name) > 1024 or octet_length(r.scope_version) > 1024
                       then 'scope_name or scope_version is longer than 1024 bytes'
                   when octet_length(r.severity_text) > 1024 or octet_length(r.event_name) > 1024
                       then 'severity_text or event_name is longer than 1024 bytes'
                   when jsonb_typeof(j.attributes) <> 'object' then 'attributes is not a JSON object'
                   when jsonb_typeof(j.resource_attributes) <> 'object' then 'resource_attributes is not a JSON object'
               end as err
          from (select otel.parse_time(r.time) as time,
                       otel.parse_time(r.observed_time) as observed_time,
                       otel.parse_severity(r.severity_number) as severity_number,
                       otel.normalize_id(r.trace_id, 32) as trace_id,
                       otel.normalize_id(r.span_id, 16) as span_id,
                       case when r.flags ~ '^\s*[0-9]{1,10}\s*$' and r.flags::bigint <= 4294967295
                            then r.flags::bigint end as flags offset 0) as t,
               (select otel.parse_json(r.attributes, '{}') as attributes,
                       otel.parse_json(r.resource_attributes, '{}') as resource_attributes offset 0) as j
      offset 0
     ) as v
     where r.n between first_n and last_n;
end
$$;
comment on function otel.type_logs(bigint, bigint) is
    'Validates and casts log rows of a flush; internal to otel.flush()';

create or replace function otel.move_logs(out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into otel.logs (
        time, observed_time, severity_number, severity_text, body, trace_id, span_id, flags,
        service_name, scope_name, scope_version, attributes, resource_attributes, event_name)
    select time, observed_time, severity_number, severity_text, body, trace_id, span_id, flags,
           service_name, scope_name, scope_version, attributes, resource_attributes, event_name
      from pg_temp.otel_logs
     where err is null;
    get diagnostics moved = row_count;
    duplicates := 0;  -- log records have no identity to deduplicate by
end
$$;
comment on function otel.move_logs() is
    'Moves the valid log records of a flush into otel.logs; internal to otel.flush()';
