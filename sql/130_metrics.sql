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
                       'attributes', otel.otlp_attributes(e -> 'filteredAttributes')) order by ei)
              from jsonb_array_elements(d.v -> 'exemplars') with ordinality as ex (e, ei))::text,
           m.data ->> 'aggregationTemporality',
           case when m.type = 'sum' then coalesce(m.data ->> 'isMonotonic', 'false') end,
           d.v ->> 'flags',
           otel.otlp_attributes(d.v -> 'attributes')::text,
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

create or replace function otel.type_metrics(first_n bigint, last_n bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Validates and casts metric rows first_n..last_n. Integer values are also
-- kept exactly in int_value; counts are numeric (OTLP counts are uint64).
begin
    insert into pg_temp.otel_metrics (
        n, err, time, start_time, name, description, type, unit, value, int_value, count, sum, min, max,
        bucket_counts, explicit_bounds, quantiles, exponential, exemplars, temporality, is_monotonic,
        flags, labels, resource_attributes, service_name, scope_name, scope_version)
    select r.n, v.err, v.time, v.start_time, r.name, nullif(r.description, ''), v.type, nullif(r.unit, ''),
           v.value, v.int_value, v.count, v.sum, v.min, v.max,
           v.bucket_counts, v.explicit_bounds::double precision[], v.quantiles, v.exponential, v.exemplars,
           case when v.type in ('sum', 'histogram', 'exponential_histogram') then v.temporality end,
           v.is_monotonic, v.flags, v.labels, v.resource_attributes,
           nullif(r.service_name, ''), nullif(r.scope_name, ''), nullif(r.scope_version, '')
      from pg_temp.otel_metrics_rows as r
     cross join lateral (
        select t.*, j.*,
               case
                   when coalesce(r.time, '') = '' then 'time is missing'
                   when t.time is null then format('time "%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(r.time, 100))
                   when coalesce(r.start_time, '') <> '' and t.start_time is null
                       then format('start_time "%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(r.start_time, 100))
                   when coalesce(r.name, '') = '' then 'name is missing'
                   when octet_length(r.name) > 1024 then 'name is longer than 1024 bytes'
                   when t.type is null then format('type "%s" is not gauge, sum, histogram, exponential_histogram or summary', left(r.type, 100))
                   when coalesce(r.value, '') <> '' and t.value is null then format('value "%s" is not a number', left(r.value, 100))
                   when coalesce(r.count, '') <> '' and t.count is null then format('count "%s" is not an unsigned integer', left(r.count, 100))
                   when coalesce(r.sum, '') <> '' and t.sum is null then format('sum "%s" is not a number', left(r.sum, 100))
                   when coalesce(r.min, '') <> '' and t.min is null then format('min "%s" is not a number', left(r.min, 100))
                   when coalesce(r.max, '') <> '' and t.max is null then format('max "%s" is not a number', left(r.max, 100))
                   when t.temporality is null then format('temporality "%s" is not unspecified, delta or cumulative', left(r.temporality, 100))
                   when coalesce(r.is_monotonic, '') <> '' and t.is_monotonic is null
                       then format('is_monotonic "%s" is not a boolean', left(r.is_monotonic, 100))
                   when t.flags is null and coalesce(r.flags, '') <> '' then format('flags "%s" is not a 32-bit unsigned integer', left(r.flags, 100))
                   when octet_length(r.unit) > 1024 or octet_length(r.service_name) > 1024
                     or octet_length(r.scope_name) > 1024 or octet_length(r.scope_version) > 1024
                       then 'unit, service_name, scope_name or scope_version is longer than 1024 bytes'
                   when jsonb_typeof(j.labels) <> 'object' then 'labels is not a JSON object'
                   when jsonb_typeof(j.resource_attributes) <> 'object' then 'resource_attributes is not a JSON object'
                   when jsonb_typeof(j.bucket_counts_json) not in ('array', 'null') then 'bucket_counts is not a JSON array'
                   when jsonb_typeof(j.explicit_bounds_json) not in ('array', 'null') then 'explicit_bounds is not a JSON array'
                   when jsonb_typeof(j.quantiles) not in ('array', 'null') then 'quantiles is not a JSON array'
                   when jsonb_typeof(j.exemplars) not in ('array', 'null') then 'exemplars is not a JSON array'
                   when jsonb_typeof(j.exponential) not in ('object', 'null') then 'exponential is not a JSON object'
               end as err
          from (select otel.parse_time(r.time) as time,
                       otel.parse_time(r.start_time) as start_time,
                       case regexp_replace(lower(trim(r.type)), '[^a-z]', '', 'g')
                           when 'gauge' then 'gauge' when 'sum' then 'sum' when 'histogram' then 'histogram'
                           when 'exponentialhistogram' then 'exponential_histogram' when 'summary' then 'summary'
                       end as type,
                       otel.parse_double(r.value) as value,
                       case when r.value ~ '^\s*-?[0-9]{1,20}\s*$' then r.value::numeric end as int_value,
                       case when r.count ~ '^\s*[0-9]{1,20}\s*$' then r.count::numeric end as count,
                       otel.parse_double(r.sum) as sum,
                       otel.parse_double(r.min) as min,
                       otel.parse_double(r.max) as max,
                       otel.parse_temporality(r.temporality) as temporality,
                       case lower(trim(r.is_monotonic)) when 'true' then true when 't' then true when '1' then true
                           when 'false' then false when 'f' then false when '0' then false end as is_monotonic,
                       case when r.flags ~ '^\s*[0-9]{1,10}\s*$' and r.flags::bigint <= 4294967295
                            then r.flags::bigint end as flags offset 0) as t,
               (select otel.parse_json(r.labels, '{}') as labels,
                       otel.parse_json(r.resource_attributes, '{}') as resource_attributes,
                       otel.parse_json(r.bucket_counts, null) as bucket_counts_json,
                       otel.parse_json(r.explicit_bounds, null) as explicit_bounds_json,
                       otel.json_numeric_array(otel.parse_json(r.bucket_counts, null)) as bucket_counts,
                       otel.json_numeric_array(otel.parse_json(r.explicit_bounds, null)) as explicit_bounds,
                       otel.parse_json(r.quantiles, null) as quantiles,
                       otel.parse_json(r.exponential, null) as exponential,
                       otel.parse_json(r.exemplars, null) as exemplars offset 0) as j
      offset 0
     ) as v
     where r.n between first_n and last_n;
end
$$;
comment on function otel.type_metrics(bigint, bigint) is
    'Validates and casts metric rows of a flush; internal to otel.flush()';

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
