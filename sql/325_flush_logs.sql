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
