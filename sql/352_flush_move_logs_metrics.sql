-- Stage 5, move log records and metric data points.

create or replace function otel.log_shard_key(trace_id text, "time" timestamptz, body text)
returns text
language sql immutable parallel safe
as $$
-- A record in a trace goes where the trace's spans are; Citus refuses a
-- null key, so the others get one of their own: up to 16 hex digits
-- (never 32, a trace id's length) of a hash of their time and body, which
-- spreads them. Immutable parts only, so that the flush inlines it.
select coalesce(trace_id, to_hex(hashtextextended(coalesce(body, ''),
                                                  (extract(epoch from "time" - timestamptz 'epoch') * 1000000)::bigint)))
$$;
comment on function otel.log_shard_key(text, timestamptz, text) is
    'The key by which Citus spreads log records (otel.logs.shard_key): the trace id, or for a record outside any trace up to 16 hex digits of a hash of its time and body';

create or replace function otel.move_logs(typed_rows text default 'pg_temp.otel_logs', out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- The valid records of typed_rows (pg_temp.otel_logs, or otel.flush_logs
-- on Citus). shard_key only where Citus distributes by it
-- (otel.distribute()): on one node it stays null and takes no space.
declare
    shard_key text := case when otel.distribution_column('otel.logs') = 'shard_key'
                           then 'otel.log_shard_key(trace_id, time, body)' else 'null' end;
begin
    execute format($sql$
        insert into otel.logs (
            time, observed_time, severity_number, severity_text, body, trace_id, span_id, flags,
            service_name, scope_name, scope_version, attributes, resource_attributes, event_name, shard_key)
        select time, observed_time, severity_number, severity_text, body, trace_id, span_id, flags,
               service_name, scope_name, scope_version, attributes, resource_attributes, event_name, %s
          from %s
         where err is null
    $sql$, shard_key, typed_rows);
    get diagnostics moved = row_count;
    duplicates := 0;  -- log records have no identity to deduplicate by
end
$$;
comment on function otel.move_logs(text) is
    'Moves the valid log records of a flush into otel.logs; internal to otel.flush()';

create or replace function otel.metric_series_key(name text, service_name text, labels jsonb, resource_attributes jsonb)
returns bigint
language sql immutable parallel safe
as $$
-- A series is a metric's points with the same labels and resource, as
-- otel.metric_series() groups them. jsonb's text form is canonical (keys
-- sorted, one spelling per value); the separators keep ('a', 'b c') and
-- ('a b', 'c') apart. Immutable parts only, so that the flush inlines it.
select hashtextextended(name || e'\x1f' || coalesce(service_name, '') || e'\x1f' || labels::text || e'\x1f'
                        || resource_attributes::text, 0)
$$;
comment on function otel.metric_series_key(text, text, jsonb, jsonb) is
    'The 64-bit hash that names a metric series (name, service_name, labels, resource_attributes): otel.metrics.series_key, by which Citus spreads the points';

create or replace function otel.move_metrics(typed_rows text default 'pg_temp.otel_metrics', out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- The valid points of typed_rows (pg_temp.otel_metrics, or
-- otel.flush_metrics on Citus). series_key only where Citus distributes by
-- it (otel.distribute()): on one node it stays null and takes no space.
declare
    series_key text := case when otel.distribution_column('otel.metrics') = 'series_key'
                            then 'otel.metric_series_key(name, service_name, labels, resource_attributes)' else 'null' end;
begin
    execute format($sql$
        insert into otel.metrics (
            time, start_time, name, description, type, unit, value, int_value, count, sum, min, max,
            bucket_counts, explicit_bounds, quantiles, exponential, exemplars, temporality, is_monotonic,
            flags, labels, resource_attributes, service_name, scope_name, scope_version, series_key)
        select time, start_time, name, description, type, unit, value, int_value, count, sum, min, max,
               bucket_counts, explicit_bounds, quantiles, exponential, exemplars, temporality, is_monotonic,
               flags, labels, resource_attributes, service_name, scope_name, scope_version, %s
          from %s
         where err is null
    $sql$, series_key, typed_rows);
    get diagnostics moved = row_count;
    duplicates := 0;  -- data points have no identity to deduplicate by
end
$$;
comment on function otel.move_metrics(text) is
    'Moves the valid data points of a flush into otel.metrics; internal to otel.flush()';
