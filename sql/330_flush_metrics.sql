-- Metric data points: OTLP/JSON decoding, validation and the move into
-- otel.metrics, one row per data point of every metric type.

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

create or replace function otel.move_metrics(out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into otel.metrics (
        time, start_time, name, description, type, unit, value, int_value, count, sum, min, max,
        bucket_counts, explicit_bounds, quantiles, exponential, exemplars, temporality, is_monotonic,
        flags, labels, resource_attributes, service_name, scope_name, scope_version)
    select time, start_time, name, description, type, unit, value, int_value, count, sum, min, max,
           bucket_counts, explicit_bounds, quantiles, exponential, exemplars, temporality, is_monotonic,
           flags, labels, resource_attributes, service_name, scope_name, scope_version
      from pg_temp.otel_metrics
     where err is null;
    get diagnostics moved = row_count;
    duplicates := 0;  -- data points have no identity to deduplicate by
end
$$;
comment on function otel.move_metrics() is
    'Moves the valid data points of a flush into otel.metrics; internal to otel.flush()';
