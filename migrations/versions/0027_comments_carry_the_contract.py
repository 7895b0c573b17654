"""The comments of the tables and read functions carry the whole contract that the README's tables held.

`comment on` texts are the source of docs/sql-reference.md (scripts/sql_reference.py): the
README's per-object tables, with column lists, defaults, limits and caveats, move into them,
with the argument checks (22023) and empty answers the comments already said.

Revision ID: 0027
Revises: 0026
"""

from migrations.schema import execute_sql

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

UPGRADE = r"""
comment on table otel.traces_staging is
    'Spans as writers COPY them, every column text, moved by otel.flush(): trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time, status_code, status_message, service_name, scope_name, scope_version, attributes (object), resource_attributes (object), events (array), links (array)';
comment on table otel.logs_staging is
    'Log records as writers COPY them, every column text, moved by otel.flush(): time, observed_time, severity_number, severity_text, body, trace_id, span_id, flags, service_name, scope_name, scope_version, attributes, resource_attributes, event_name';
comment on table otel.metrics_staging is
    'Metric data points as writers COPY them, every column text, moved by otel.flush(): time, start_time, name, description, type (gauge, sum, histogram, exponential_histogram, summary), unit, value, count, sum, min, max, bucket_counts (array), explicit_bounds (array), quantiles (array), exponential (object), exemplars (array), temporality, is_monotonic, flags, labels (object), resource_attributes, service_name, scope_name, scope_version';
comment on function otel.traces_by_error(timestamptz, timestamptz, text, integer) is
    'Error spans started in [since, until), newest first: trace_id, span_id, parent_span_id, service_name, name, kind, start_time, duration_ms, status_message, exception_type, exception_message, attributes';
comment on function otel.trace_spans(text) is
    'The span tree, depth first (children by start time): span_id, parent_span_id, depth, name, service_name, kind, start_time, end_time, duration_ms, status_code, status_message, attributes, events, links. A span whose parent never arrived is shown as a root. The trace''s time range in `otel.trace_summaries` confines the lookup to its partitions; no rows for an unknown trace';
comment on function otel.trace_export(text) is
    'Every stored column of every span of the trace (a row of `otel.traces`), by start time: what the query API turns into Jaeger''s JSON; found through the trace''s time range as `trace_spans`; no rows for an unknown trace';
comment on function otel.trace_logs(text) is
    'The trace''s log records by time: time, severity_number, severity_text, service_name, body, span_id, attributes; no rows for an unknown trace';
comment on function otel.root_cause(text) is
    'Where the trace''s failure originates, best first: the failing spans (status ERROR, or an `exception` event without status OK) with no failing descendant (a failure that is only an HTTP status does not count below a span that raised or has a message of its own), so that an error that travelled up through several services comes back as the span that raised it. rank, span_id, parent_span_id, depth (from the root, or from below a missing parent), service_name, name, kind, status_code, status_message, exception_type, exception_message, start_time, duration_ms, score, reason. Score 3: raised an exception (status ERROR); 2.5: recorded an exception, status UNSET; 2: error status alone; 1: only an HTTP status ≥ 400 with no message of its own, or mirroring the 5xx of a descendant that did not fail; ties go to the deeper, then the earlier span. `reason` says which (`raised KeyError; no failing descendant`), and when a parent is missing from the trace. No rows for a trace without errors; reads the trace''s partitions by index, whatever flushes brought its spans; no rows for a trace without errors or an unknown trace; 22023 unless trace_id is 32 hex digits';
comment on function otel.compare_traces(text, text) is
    'What differs between two traces, span by span. Spans align by operation: service and span name with ids, numbers and uuids replaced (`GET /orders/42` = `GET /orders/43`), the path of such operations from the root down to the parent, and start order for repeated ones. One row per aligned pair and per span of one trace only: rank, service_name, name, path, depth, span_id_a, span_id_b, status_a/b, status_message_a/b, exception_type_a/b, duration_ms_a/b, duration_ratio (b/a), differing_attributes (`{key: [in a, in b]}`), differences (`only in a`, `only in b`, `status`, `exception`, `slower`/`faster`: at least twice or at most half as long and 1 ms apart, `attributes`). Spans failing in one trace only come first, those with an exception and the deepest first (where the error began), then spans of one trace only, durations, attributes. No rows when either trace is not stored; no rows when either trace is not stored; 22023 unless both are 32 hex digits';
comment on function otel.explain_trace(text, integer) is
    'What sets a failing trace (or, when it did not fail, a slow one) apart: it is compared with the k (1..100) traces of the same root service and root span name that have no ERROR span (and, for a trace that did not fail, took less time), the nearest in time with the most similar shape (services, span count, then shared operations). Returns the differences that hold in more than half of the comparisons: rank, holds_in, compared, kind (`failed`, `only here`, `missing here`, `slower`, `faster`, `attribute`), service_name, name, path, span_id, attribute, value_here, value_elsewhere, duration_ratio, exception_type, status_message and a description (`span payment/charge failed with CardDeclined in this trace only`, `inventory/SELECT stock took 4.2 times as long`). Most comparisons first, then by kind, the span `otel.root_cause` names first. An attribute counts when the neighbours that differ agree on their value (ids that differ everywhere never do). No rows when there is nothing to compare with; 12 ms p50 at 1M spans (`python -m bench explain_latency`); no rows when there is nothing to compare with; 22023 unless trace_id is 32 hex digits';
comment on function otel.suspect_attributes(text, text, timestamptz, timestamptz, double precision) is
    'Attribute values over-represented in the failing (status ERROR) spans of a service (and span name; null for all) started in [since, until), at most 31 days and the newest 200,000 spans; with `slower_than_percentile` p (0.95, say), in its slow spans instead, those longer than the p percentile of the window''s durations: key, value (scalars), failing (the failing or slow spans with the value), others, failing_share, others_share, score; best first, at most 50. The score is the log odds ratio of the value in failing against other spans, ½ added to every count, over its standard error: high for a value in most failures and few successes, low for one seen once; 22023 for a null service or since, since after until, a window over 31 days, or a percentile outside (0, 1)';
comment on function otel.services(timestamptz, timestamptz) is
    'Every service with stored spans: service_name, operations, first_seen, last_seen (start of its first and last span); since/until keep those seen in that window. Read from `otel.operation_catalog`, which the flush keeps (and retention prunes), so it answers in a fraction of a millisecond at any size';
comment on function otel.operations(text, text, timestamptz, timestamptz) is
    'The operations (span names) of a service from the catalog the flush keeps (`otel.operation_catalog`): name, kind, first_seen, last_seen; span_kind in any case (`server`, `CLIENT`, …); 22023 for a null service or an unknown kind';
comment on function otel.find_traces(text, text, jsonb, interval, interval, text, timestamptz, timestamptz, integer) is
    'Jaeger-style trace search: the newest `lim` (1..10000) traces with a span started in [since, until) that matches every criterion at once (service, span name, each attribute, duration, status `ERROR`/`OK`/`UNSET` in any case). An attribute matches the span''s own attributes or its resource''s, equal to the value as given or to the number or boolean it spells (`{"http.response.status_code": "503"}` finds 503); `{"error": true}` asks for failing spans, as Jaeger''s `error=true` tag. One row a trace: trace_id, root_service, root_name, start_time, duration_ms, span_count, error_count, services; newest first. With no criterion at all, the traces that started in the window, from `otel.trace_summaries`. Only the window''s partitions are read; spans newest first, in pages, until `lim` traces; span attributes through their GIN index. Resource attributes are matched for the keys the catalog has seen on the service''s resources, span by span: the flush records the keys of the first span of each distinct operation and status in a batch, so a key that only some of a service''s resources carry can be missed until such a span comes first (a resource table, planned with the compact layout, will record every resource); 22023 for bad arguments';
comment on function otel.service_dependencies(timestamptz, timestamptz) is
    'The calls between services in [since, until) (at most 31 days): parent, child, call_count (child spans whose parent span is of the other service), most first; for a service map';
comment on function otel.search_logs(text, timestamptz, timestamptz, text, integer, integer) is
    'Full-text search of log bodies in `websearch_to_tsquery(''english'', …)` syntax (`"a phrase"`, `or`, `-word`), best rank first, then newest: time, severity_number, severity_text, service_name, body, trace_id, span_id, rank';
comment on function otel.metric_series(text, interval, timestamptz, timestamptz, jsonb, text) is
    'One metric as (bucket_start, value) for each bucket with points, buckets `bucket` long aligned to whole multiples of it (from 2000-01-01 UTC: whole minutes, hours, days; 1 s to 366 days, at most 100,000 buckets between since and until), points whose labels contain `labels`. `agg`: `avg`, `min`, `max`, `sum`, `count` of the values (of sum/count/min/max for histograms); `rate`, the per-second increase of a monotonic sum (cumulative points differenced per series, a drop or a new start time counting as a reset; delta points summed; non-monotonic sums are left out); `p50`, `p90`, `p99` from explicit-bucket histograms (bucket counts of the interval, differenced when cumulative, interpolated within the bucket as Prometheus does; histograms of different bucket bounds in one bucket raise 22023: pick one kind with `labels`)';
comment on function otel.metric_names(timestamptz, timestamptz) is
    'The metrics with points in [since, until): name, and the type, unit and time of the newest point; by name. The names come from skipping through the (name, time) index, one probe a name';
comment on function otel.set_retention(text, interval) is
    'Keep `traces`, `logs` or `metrics` for `keep` (whole days, months or years, at least 1 day, stored as days; null: forever); `call otel.maintain()`, the pg_cron job `otel-maintenance`, drops whole daily partitions older than that';
comment on table otel.traces is
    'One row per span: trace_id, span_id, parent_span_id (null for a root), trace_state, flags, name, kind, start_time, end_time, duration_ms, status_code, status_message, service_name, scope_name, scope_version, attributes, resource_attributes, events (`[{name, time, attributes}]`), links (`[{trace_id, span_id, trace_state, attributes}]`), signature_id. Indexes: BRIN (start_time); (service_name, start_time desc); (trace_id, span_id); (start_time desc) where status_code = ''ERROR''; GIN `jsonb_path_ops` (attributes), for `@>`; (signature_id)';
comment on table otel.trace_summaries is
    'One row per trace, kept current by the flush: trace_id (primary key), start_time, end_time, duration_ms, root_service, root_name, span_count, error_count, services. Indexes: (start_time desc)';
comment on table otel.logs is
    'One row per log record, partitioned by day of time: time, observed_time, severity_number, severity_text, body (text; a non-string body as JSON text), trace_id, span_id, flags, service_name, scope_name, scope_version, attributes, resource_attributes, event_name, body_tsv. Indexes: BRIN (time); (service_name, time desc); (trace_id, time) where trace_id is not null; GIN full text on the stored column `body_tsv` = `to_tsvector(''english'', left(coalesce(body, ''''), 65536))` (the first 64 Ki characters: a tsvector holds at most 1 MB); query it as `body_tsv @@ websearch_to_tsquery(''english'', …)`';
comment on table otel.metrics is
    'One row per data point: time, start_time, name, description, type, unit, value (float8), int_value (exact, for integer values), count, sum, min, max, bucket_counts, explicit_bounds, quantiles, exponential (scale, zero count, buckets), exemplars, temporality (sums and histograms), is_monotonic (sums), flags, labels (the point''s attributes), resource_attributes, service_name, scope_name, scope_version. Indexes: BRIN (time); (name, time desc); GIN `jsonb_path_ops` (labels)';
comment on function otel.similar_traces(vector, integer, double precision, text, timestamptz, text) is
    'One row per trace, best first: trace_id, span_id, service_name, name, status_code, status_message, duration_ms, start_time, attributes, similarity (cosine, 1 = same direction). The row is the trace''s span with the most similar signature; ties go to newer spans. Only signatures embedded by `model` are compared, so vectors of the fallback embedder (`''fallback-hash''`) never meet model vectors.';
comment on function otel.similar_traces(text, integer, double precision, text, timestamptz) is
    'As the vector overload, for the trace `of_trace` (the parameter cannot be called `trace_id`, a result column). The query is where the trace failed: the spans `otel.root_cause()` ranks first (those of its best score, at most three), each searched on its own, a trace scored by its best-matching span and that span its row; when nothing failed, its root span. An error that travelled up through generic spans (HTTP 500, 502) thus finds traces that failed for the same reason, not any trace the gateway answered 502. The trace itself is never returned; an unknown trace, or one not embedded yet, gives no rows; text that is not 32 hex digits raises 22023 (a vector must be cast: `''[…]''::vector`)';
"""

DOWNGRADE = r"""
comment on table otel.traces_staging is
    'Spans as writers COPY them: the columns of otel.traces as text (times as RFC 3339 or Unix nanoseconds, JSON as JSON text, kind and status by name or number); moved by otel.flush()';
comment on table otel.logs_staging is
    'Log records as writers COPY them: the columns of otel.logs as text; moved by otel.flush()';
comment on table otel.metrics_staging is
    'Metric data points as writers COPY them: the columns of otel.metrics as text; moved by otel.flush()';
comment on function otel.traces_by_error(timestamptz, timestamptz, text, integer) is
    'Error spans started in [since, until), newest first, optionally of one service, at most lim (1..10000), with their exception type and message';
comment on function otel.trace_spans(text) is
    'The spans of a trace as a tree, depth first (children by start time), with depth and parent; no rows for an unknown trace';
comment on function otel.trace_export(text) is
    'Every stored column of every span of a trace, by start time; no rows for an unknown trace';
comment on function otel.trace_logs(text) is
    'The log records correlated to a trace, by time; no rows for an unknown trace';
comment on function otel.root_cause(text) is
    'The spans where a trace''s failure originates, best first: failing spans (status ERROR, or an exception event without status OK) with no failing descendant (a failure that is only an HTTP status does not count below a span that says more), scored 3 (raised an exception), 2.5 (exception, status unset), 2 (error status), 1 (only an HTTP status, or mirroring a descendant''s); with depth, exception type and message and a reason; no rows for a trace without errors or an unknown trace; 22023 unless trace_id is 32 hex digits';
comment on function otel.compare_traces(text, text) is
    'What differs between traces a and b, span by span: spans aligned by operation (service and name with ids and numbers replaced), the path of operations above them and, for repeated ones, start order; per span pair or span of one trace only, its span ids, status, exception type, durations and their ratio b/a, the attributes that differ ({key: [in a, in b]}) and the list of differences (only in a, only in b, status, exception, slower, faster, attributes); failures first, deepest first; no rows when either trace is not stored; 22023 unless both are 32 hex digits';
comment on function otel.explain_trace(text, integer) is
    'What sets a failing (or, when it did not fail, slow) trace apart: it is compared (otel.align_traces, as otel.compare_traces) with the k (1..100) traces of the same root service and root span name without an ERROR span (and, for a trace that did not fail, shorter), the nearest in time with the most similar shape; returns the differences that hold in more than half of the comparisons (failed, only here, missing here, slower, faster, attribute), with in how many, ranked by that, then by kind, the root cause''s failures first; no rows when there is nothing to compare with; 22023 unless trace_id is 32 hex digits';
comment on function otel.suspect_attributes(text, text, timestamptz, timestamptz, double precision) is
    'Attribute values over-represented in failing (status ERROR) spans of a service (and operation, null for all) started in [since, until), or with slower_than_percentile p in its slow spans (longer than the p percentile); the newest 200,000 spans at most: key, value (scalars only), counts and shares in failing (or slow) and other spans, and a score, the log odds ratio with ½ added to every count divided by its standard error (high for a value common in failures and rare elsewhere, low for values seen a few times); best first, at most 50; 22023 for a null service or since, since after until, a window over 31 days, or a percentile outside (0, 1)';
comment on function otel.services(timestamptz, timestamptz) is
    'Every service with stored spans, from the catalog the flush keeps: service_name, number of operations, first and last span start; since/until keep those seen in that window';
comment on function otel.operations(text, text, timestamptz, timestamptz) is
    'The operations (span names) of a service, from the catalog the flush keeps: name, kind, first and last span start; span_kind (any case) and since/until filter; 22023 for a null service or an unknown kind';
comment on function otel.find_traces(text, text, jsonb, interval, interval, text, timestamptz, timestamptz, integer) is
    'Jaeger-style trace search: the newest lim traces (1..10000) with a span started in [since, until) that matches service, operation (span name), every attribute (its own or its resource''s; "500" finds the number too; error=true for failing spans), min/max duration and status (ERROR, OK, UNSET) together; one row a trace from otel.trace_summaries: trace_id, root service and name, start, duration, span and error counts, services; newest first; 22023 for bad arguments';
comment on function otel.service_dependencies(timestamptz, timestamptz) is
    'Calls between services in [since, until) (at most 31 days): parent service, child service and the number of child spans whose parent span is of the other service; most calls first';
comment on function otel.search_logs(text, timestamptz, timestamptz, text, integer, integer) is
    'Full-text search of log bodies (websearch syntax), best ranked first, then newest; optional time range, service and minimum severity; at most lim (1..10000)';
comment on function otel.metric_series(text, interval, timestamptz, timestamptz, jsonb, text) is
    'One metric as (bucket_start, value) rows from since to until in buckets of the given length, points filtered by labels (jsonb containment); agg is avg, min, max, sum, count, rate (per second, counter resets handled, cumulative or delta) or p50, p90, p99 (from histogram buckets)';
comment on function otel.metric_names(timestamptz, timestamptz) is
    'The metrics with points in [since, until): name, type and unit of the newest point, and its time';
comment on function otel.set_retention(text, interval) is
    'Keeps traces, logs or metrics for keep: whole days, months (30 days) or years (360 days), at least 1 day, stored as days (null: forever); otel.maintain() drops whole daily partitions older than that';
comment on table otel.traces is
    'One row per span, as the OpenTelemetry Collector''s ClickHouse exporter stores them: ids in lower-case hex, kind and status by name, attributes, events and links as jsonb; unique by (trace_id, span_id), partitioned by day of start_time';
comment on table otel.trace_summaries is
    'One row per trace, kept by the flush as spans arrive: time span, root service and operation, span and error counts, services involved';
comment on table otel.logs is
    'One row per log record: body as text (non-string bodies as JSON text), severity, the trace and span it belongs to, attributes as jsonb; full-text searchable; partitioned by day of time';
comment on table otel.metrics is
    'One row per metric data point: gauge and sum values, histogram counts and bounds, summary quantiles, labels as jsonb; partitioned by day of time';
comment on function otel.similar_traces(vector, integer, double precision, text, timestamptz, text) is
    'Traces whose spans are most similar to the query embedding (384 dimensions, made by model), one row per trace (its most similar span), best first; only signatures embedded by the same model are compared';
comment on function otel.similar_traces(text, integer, double precision, text, timestamptz) is
    'Traces that resemble the given one where it failed: its root-cause spans (otel.root_cause(), at most three of the best score; its root span when nothing failed) are the query, each searched on its own; one row per trace, its best-matching span, best first, never the trace itself; empty for an unknown trace or one not embedded yet';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
