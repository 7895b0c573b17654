-- Spans: OTLP/JSON decoding, validation and the move into otel.traces.

create or replace function otel.decode_otlp_traces(first_id bigint, last_id bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Spans of the claimed requests first_id..last_id as text rows.
begin
    insert into pg_temp.otel_traces_rows (
        dlq_id, payload_id, rs, ss, rec,
        trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time,
        status_code, status_message, service_name, scope_name, scope_version,
        attributes, resource_attributes, events, links)
    select p.dlq_id, p.id, x.rs, x.ss, x.rec,
           x.v ->> 'traceId', x.v ->> 'spanId', x.v ->> 'parentSpanId', x.v ->> 'traceState', x.v ->> 'flags',
           x.v ->> 'name', x.v ->> 'kind', x.v ->> 'startTimeUnixNano', x.v ->> 'endTimeUnixNano',
           x.v -> 'status' ->> 'code', x.v -> 'status' ->> 'message',
           x.resource_attributes ->> 'service.name', x.scope ->> 'name', x.scope ->> 'version',
           otel.otlp_attributes(x.v -> 'attributes')::text,
           x.resource_attributes::text,
           (select jsonb_agg(jsonb_build_object(
                       'name', e ->> 'name',
                       'time', otel.parse_time(e ->> 'timeUnixNano'),
                       'attributes', otel.otlp_attributes(e -> 'attributes')) order by ei)
              from jsonb_array_elements(x.v -> 'events') with ordinality as ev (e, ei))::text,
           (select jsonb_agg(jsonb_build_object(
                       'trace_id', lower(l ->> 'traceId'),
                       'span_id', lower(l ->> 'spanId'),
                       'trace_state', nullif(l ->> 'traceState', ''),
                       'attributes', otel.otlp_attributes(l -> 'attributes')) order by li)
              from jsonb_array_elements(x.v -> 'links') with ordinality as lk (l, li))::text
      from pg_temp.otel_otlp as p
     cross join lateral otel.otlp_request_records(p.doc, 'traces') as x (rs, ss, rec, resource_attributes, scope, v)
     where p.id between first_id and last_id
       and p.doc ? 'resourceSpans';
end
$$;
comment on function otel.decode_otlp_traces(bigint, bigint) is
    'Decodes the spans of claimed OTLP/JSON requests into text rows; internal to otel.flush()';

create or replace function otel.type_traces(first_n bigint, last_n bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Validates and casts span rows first_n..last_n. A row that breaks a rule
-- gets err, the message its dead letter carries; the casts of a valid row
-- cannot fail, except on malformed JSON text or an impossible date, which
-- otel.type_rows() isolates.
begin
    insert into pg_temp.otel_traces (
        n, err, signature_input, trace_id, span_id, parent_span_id, trace_state, flags, name, kind,
        start_time, end_time, duration_ms, status_code, status_message,
        service_name, scope_name, scope_version, attributes, resource_attributes, events, links)
    select r.n, v.err,
           case when v.err is null then otel.signature_input(
               nullif(r.service_name, ''), v.kind, r.name, v.status_code, nullif(r.status_message, ''),
               v.attributes, v.events) end,
           v.trace_id, v.span_id, v.parent_span_id, nullif(r.trace_state, ''), v.flags, r.name, v.kind,
           v.start_time, v.end_time, extract(epoch from v.end_time - v.start_time) * 1000,
           v.status_code, nullif(r.status_message, ''),
           nullif(r.service_name, ''), nullif(r.scope_name, ''), nullif(r.scope_version, ''),
           v.attributes, v.resource_attributes, v.events, v.links
      from pg_temp.otel_traces_rows as r
     cross join lateral (
        select t.*, j.*,
               case
                   when t.trace_id is null then 'trace_id is missing, empty or all zeros'
                   when not otel.is_hex_id(t.trace_id, 32) then format('trace_id "%s" is not 32 hex digits', left(r.trace_id, 100))
                   when t.span_id is null then 'span_id is missing, empty or all zeros'
                   when not otel.is_hex_id(t.span_id, 16) then format('span_id "%s" is not 16 hex digits', left(r.span_id, 100))
                   when t.parent_span_id is not null and not otel.is_hex_id(t.parent_span_id, 16)
                       then format('parent_span_id "%s" is not 16 hex digits', left(r.parent_span_id, 100))
                   when r.name is null then 'name is missing'
                   when octet_length(r.name) > 4096 then 'name is longer than 4096 bytes'
                   when t.kind is null then format('kind "%s" is not a span kind: 0-5 or UNSPECIFIED, INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER', left(r.kind, 100))
                   when t.status_code is null then format('status_code "%s" is not a status: 0-2 or UNSET, OK, ERROR', left(r.status_code, 100))
                   when r.start_time is null or r.start_time = '' then 'start_time is missing'
                   when t.start_time is null then format('start_time "%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(r.start_time, 100))
                   when t.start_time = 'epoch' then 'start_time is 0 (unset)'
                   when r.end_time is null or r.end_time = '' then 'end_time is missing'
                   when t.end_time is null then format('end_time "%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(r.end_time, 100))
                   when t.end_time < t.start_time then format('end_time %s is before start_time %s', t.end_time, t.start_time)
                   when t.flags is null and coalesce(r.flags, '') <> '' then format('flags "%s" is not a 32-bit unsigned integer', left(r.flags, 100))
                   when octet_length(r.service_name) > 1024 then 'service_name is longer than 1024 bytes'
                   when octet_length(r.scope_name) > 1024 or octet_length(r.scope_version) > 1024 then 'scope_name or scope_version is longer than 1024 bytes'
                   when octet_length(r.trace_state) > 4096 then 'trace_state is longer than 4096 bytes'
                   when jsonb_typeof(j.attributes) <> 'object' then 'attributes is not a JSON object'
                   when jsonb_typeof(j.resource_attributes) <> 'object' then 'resource_attributes is not a JSON object'
                   when jsonb_typeof(j.events) <> 'array' then 'events is not a JSON array'
                   when jsonb_typeof(j.links) <> 'array' then 'links is not a JSON array'
               end as err
          from (select otel.normalize_id(r.trace_id, 32) as trace_id,
                       otel.normalize_id(r.span_id, 16) as span_id,
                       otel.normalize_id(r.parent_span_id, 16) as parent_span_id,
                       otel.parse_span_kind(r.kind) as kind,
                       otel.parse_status_code(r.status_code) as status_code,
                       otel.parse_time(r.start_time) as start_time,
                       otel.parse_time(r.end_time) as end_time,
                       case when r.flags ~ '^\s*[0-9]{1,10}\s*$' and r.flags::bigint <= 4294967295
                            then r.flags::bigint end as flags offset 0) as t,
               (select otel.parse_json(r.attributes, '{}') as attributes,
                       otel.parse_json(r.resource_attributes, '{}') as resource_attributes,
                       otel.parse_json(r.events, '[]') as events,
                       otel.parse_json(r.links, '[]') as links offset 0) as j
      offset 0
     ) as v
     where r.n between first_n and last_n;
end
$$;
comment on function otel.type_traces(bigint, bigint) is
    'Validates and casts span rows of a flush; internal to otel.flush()';

create or replace function otel.move_traces(out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Valid spans into otel.traces: drop duplicates (within the batch and
-- against stored spans), upsert one signature per distinct signature
-- input, insert, and keep otel.trace_summaries current. Flushes are
-- serialised, so the duplicate check cannot race another flush.
declare
    stored_before bigint;
begin
    analyze pg_temp.otel_traces;  -- row counts for the planner: the joins below depend on them

    delete from pg_temp.otel_traces as b
     using (select trace_id, span_id, min(n) as first_n
              from pg_temp.otel_traces
             where err is null
             group by trace_id, span_id
            having count(*) > 1) as repeated
     where b.trace_id = repeated.trace_id and b.span_id = repeated.span_id
       and b.n > repeated.first_n and b.err is null;
    get diagnostics duplicates = row_count;
    delete from pg_temp.otel_traces as b
     where b.err is null
       and exists (select 1 from otel.traces as t where t.trace_id = b.trace_id and t.span_id = b.span_id);
    get diagnostics stored_before = row_count;
    duplicates := duplicates + stored_before;


    create temp table otel_signature_ids (signature_input uuid primary key, signature_id bigint) on commit drop;
    with inputs as (
        select signature_input, min(n) as first_n, count(*) as spans
          from pg_temp.otel_traces where err is null group by signature_input
    ),
    signed as (
        select i.signature_input, i.spans,
               otel.span_signature(t.service_name, t.kind, t.name, t.status_code, t.status_message,
                                   t.attributes, t.events) as signature
          from inputs as i
          join pg_temp.otel_traces as t on t.n = i.first_n
    ),
    per_signature as (
        select signature, md5(signature)::uuid as text_hash, sum(spans) as spans from signed group by signature
    ),
    signature_ids as (
        insert into otel.span_signatures as s (text, span_count)
        select signature, spans from per_signature
        on conflict (text_hash) do update set span_count = s.span_count + excluded.span_count
        returning s.id, s.text_hash
    )
    insert into pg_temp.otel_signature_ids
    select s.signature_input, i.id
      from signed as s
      join signature_ids as i on i.text_hash = md5(s.signature)::uuid;

    with inserted as (
        insert into otel.traces (
            trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time,
            duration_ms, status_code, status_message, service_name, scope_name, scope_version,
            attributes, resource_attributes, events, links, signature_id)
        select t.trace_id, t.span_id, t.parent_span_id, t.trace_state, t.flags, t.name, t.kind,
               t.start_time, t.end_time, t.duration_ms, t.status_code, t.status_message,
               t.service_name, t.scope_name, t.scope_version,
               t.attributes, t.resource_attributes, t.events, t.links, s.signature_id
          from pg_temp.otel_traces as t
          join pg_temp.otel_signature_ids as s using (signature_input)
         where t.err is null
        returning trace_id, parent_span_id, start_time, end_time, status_code, service_name, name
    ),
    per_trace as (
        select trace_id, min(start_time) as start_time, max(end_time) as end_time,
               (array_agg(service_name order by start_time) filter (where parent_span_id is null))[1] as root_service,
               (array_agg(name order by start_time) filter (where parent_span_id is null))[1] as root_name,
               count(*) as span_count,
               count(*) filter (where status_code = 'ERROR') as error_count,
               array_agg(distinct service_name) filter (where service_name is not null) as services
          from inserted
         group by trace_id
    ),
    summaries as (
        insert into otel.trace_summaries as s (
            trace_id, start_time, end_time, duration_ms, root_service, root_name,
            span_count, error_count, services)
        select trace_id, start_time, end_time, extract(epoch from end_time - start_time) * 1000,
               root_service, root_name, span_count, error_count, coalesce(services, '{}')
          from per_trace
        on conflict (trace_id) do update set
            start_time = least(s.start_time, excluded.start_time),
            end_time = greatest(s.end_time, excluded.end_time),
            duration_ms = extract(epoch from greatest(s.end_time, excluded.end_time)
                                             - least(s.start_time, excluded.start_time)) * 1000,
            root_service = coalesce(excluded.root_service, s.root_service),
            root_name = coalesce(excluded.root_name, s.root_name),
            span_count = s.span_count + excluded.span_count,
            error_count = s.error_count + excluded.error_count,
            services = array(select distinct x from unnest(s.services || excluded.services) as x order by x)
        returning 1
    )
    select count(*) into moved from inserted;
end
$$;
comment on function otel.move_traces() is
    'Moves the valid spans of a flush into otel.traces with signatures and trace summaries; internal to otel.flush()';
