-- Metric data points, partitioned by day (UTC) of their time. Large values
-- are compressed with lz4, as in otel.traces.

create table otel.metrics (
    time timestamptz not null,
    start_time timestamptz,
    name text not null,
    description text,
    type text not null,
    unit text,
    value double precision,
    int_value numeric,
    count numeric,
    sum double precision,
    min double precision,
    max double precision,
    bucket_counts numeric[] compression lz4,
    explicit_bounds double precision[] compression lz4,
    quantiles jsonb compression lz4,
    exponential jsonb compression lz4,
    exemplars jsonb compression lz4,
    temporality text,
    is_monotonic boolean,
    flags bigint,
    labels jsonb compression lz4 not null default '{}',
    resource_attributes jsonb compression lz4 not null default '{}',
    service_name text,
    scope_name text,
    scope_version text,
    -- Which series the point belongs to, by which Citus spreads the points
    -- (otel.distribute()); null on one node.
    series_key bigint,
    constraint metrics_type_check check (type in ('gauge', 'sum', 'histogram', 'exponential_histogram', 'summary')),
    constraint metrics_temporality_check check (temporality in ('unspecified', 'delta', 'cumulative'))
) partition by range (time);
comment on table otel.metrics is
    'One row per data point: time, start_time, name, description, type, unit, value (float8), int_value (exact, for integer values), count, sum, min, max, bucket_counts, explicit_bounds, quantiles, exponential (scale, zero count, buckets), exemplars, temporality (sums and histograms), is_monotonic (sums), flags, labels (the point''s attributes), resource_attributes, service_name, scope_name, scope_version, series_key (on Citus, the distribution key: otel.metric_series_key() of the point, one value per series; null on one node). Indexes, on each partition in row format (otel.index_partition()): BRIN (time); (name, time desc); GIN `jsonb_path_ops` (labels). A cold partition (otel.set_cold_storage()) is columnar, without indexes';
