-- Staging: where writers COPY. UNLOGGED and all text, so that COPY never
-- fails on a value; otel.flush() judges every row. Autovacuum is eager here
-- because these tables churn completely on every flush.
-- The columns that can hold large values compress them with lz4, as the
-- final tables do: COPY compresses a stack trace in half pglz's time, and
-- the flush stores the compressed value as it is.

create unlogged table otel.traces_staging (
    trace_id text, span_id text, parent_span_id text, trace_state text, flags text,
    name text, kind text, start_time text, end_time text,
    status_code text, status_message text compression lz4,
    service_name text, scope_name text, scope_version text,
    attributes text compression lz4, resource_attributes text compression lz4,
    events text compression lz4, links text compression lz4
) with (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_cost_delay = 0);
comment on table otel.traces_staging is
    'Spans as writers COPY them, every column text, moved by otel.flush(): trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time, status_code, status_message, service_name, scope_name, scope_version, attributes (object), resource_attributes (object), events (array), links (array)';

create unlogged table otel.logs_staging (
    time text, observed_time text, severity_number text, severity_text text, body text compression lz4,
    trace_id text, span_id text, flags text,
    service_name text, scope_name text, scope_version text,
    attributes text compression lz4, resource_attributes text compression lz4, event_name text
) with (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_cost_delay = 0);
comment on table otel.logs_staging is
    'Log records as writers COPY them, every column text, moved by otel.flush(): time, observed_time, severity_number, severity_text, body, trace_id, span_id, flags, service_name, scope_name, scope_version, attributes, resource_attributes, event_name';

create unlogged table otel.metrics_staging (
    time text, start_time text, name text, description text, type text, unit text,
    value text, count text, sum text, min text, max text,
    bucket_counts text compression lz4, explicit_bounds text compression lz4, quantiles text compression lz4,
    exponential text compression lz4, exemplars text compression lz4,
    temporality text, is_monotonic text, flags text,
    labels text compression lz4, resource_attributes text compression lz4,
    service_name text, scope_name text, scope_version text
) with (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_cost_delay = 0);
comment on table otel.metrics_staging is
    'Metric data points as writers COPY them, every column text, moved by otel.flush(): time, start_time, name, description, type (gauge, sum, histogram, exponential_histogram, summary), unit, value, count, sum, min, max, bucket_counts (array), explicit_bounds (array), quantiles (array), exponential (object), exemplars (array), temporality, is_monotonic, flags, labels (object), resource_attributes, service_name, scope_name, scope_version';

-- OTLP/JSON requests are large and transient: compressing them on their way
-- through staging costs writers and the flush more than the space it saves.
create unlogged table otel.otlp_staging (
    payload text
) with (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 100,
        autovacuum_vacuum_cost_delay = 0);
alter table otel.otlp_staging alter column payload set storage external;
comment on table otel.otlp_staging is
    'OTLP/JSON export requests, one per row, as the Collector''s file exporter writes them; load with CSV format and quote and delimiter characters that never occur; moved by otel.flush()';

-- Claim tables: a flush first moves staged rows here in a short
-- transaction, then processes them in a second one (see otel.flush()).
create unlogged table otel.claimed_otlp (like otel.otlp_staging including storage);
comment on table otel.claimed_otlp is 'OTLP/JSON requests claimed by the running flush; internal';
create unlogged table otel.claimed_traces (like otel.traces_staging);
comment on table otel.claimed_traces is 'Spans claimed by the running flush; internal';
create unlogged table otel.claimed_logs (like otel.logs_staging);
comment on table otel.claimed_logs is 'Log records claimed by the running flush; internal';
create unlogged table otel.claimed_metrics (like otel.metrics_staging);
comment on table otel.claimed_metrics is 'Metric data points claimed by the running flush; internal';
