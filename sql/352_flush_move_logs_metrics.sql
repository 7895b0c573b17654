-- Stage 5, move log records and metric data points.

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
