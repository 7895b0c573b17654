"""On Citus, log records and metric points staged as rows are typed and moved on the workers too.

otel.distribute() now distributes the staging of log records and metric
points and their claim tables by a row id, as revision 0053 did for spans,
and makes otel.flush_logs and otel.flush_metrics beside the claims. The
flush types each kind's claimed rows on the workers (otel.type_on_workers(),
which replaces otel.type_spans_on_workers()), then moves them from there
(otel.move_on_workers(): partitions, rejects, and otel.move_spans_on_workers(),
otel.move_logs() or otel.move_metrics(), which now take the table they move
from). The typing queries of logs and points partition their barrier by row
id, as the spans' does, and look names up in constant objects instead of a
case on the value (metric type, monotonicity, otel.parse_temporality()),
which Citus sent to the workers without its tests.

Revision ID: 0054
Revises: 0053
"""

from migrations.schema import execute_sql, released_routine

revision = "0054"
down_revision = "0053"
branch_labels = None
depends_on = None

UPGRADE = r"""
drop function otel.move_logs();
drop function otel.move_metrics();
drop function otel.type_spans_on_workers();
drop function otel.claimed_span_rows();
drop function otel.move_spans_on_workers();

create or replace function otel.parse_temporality(value text)
returns text
language sql immutable parallel safe
as $$
    -- A lookup rather than a case on the value, which Citus sends to the
    -- workers without its tests once the function is inlined.
    select '{"": "unspecified", "0": "unspecified", "unspecified": "unspecified", "1": "delta", "delta": "delta",
             "2": "cumulative", "cumulative": "cumulative"}'::jsonb
           ->> regexp_replace(lower(coalesce(trim(value), '')), '^aggregation_temporality_', '')
$$;
comment on function otel.parse_temporality(text) is
    'OTLP aggregation temporality by number (0-2) or name to unspecified, delta or cumulative; null when unknown';

create or replace function otel.typing_query_traces(source text)
returns text
language sql stable
as $$
-- The query that validates and casts span rows of source (an aliased
-- relation r with the text columns of otel.traces_staging, n, claimed,
-- payload_id (not null on a decoded OTLP record) and the JSON columns of
-- decoded spans):
-- the rows of pg_temp.otel_traces. A row that breaks a rule gets err, the
-- message its dead letter carries; the casts of a valid row cannot fail,
-- except on malformed JSON text or an impossible date, which
-- otel.type_rows() isolates.
select format($query$
    select p.n, p.claimed,
           case
               when p.trace_id is null and otel.is_absent_id(p.given_trace_id, 32) then 'trace_id is missing, empty or all zeros'
               when p.trace_id is null then format('trace_id "%%s" is not 32 hex digits', left(p.given_trace_id, 100))
               when p.span_id is null and otel.is_absent_id(p.given_span_id, 16) then 'span_id is missing, empty or all zeros'
               when p.span_id is null then format('span_id "%%s" is not 16 hex digits', left(p.given_span_id, 100))
               when p.parent_span_id is null and not otel.is_absent_id(p.given_parent_span_id, 16)
                   then format('parent_span_id "%%s" is not 16 hex digits', left(p.given_parent_span_id, 100))
               when p.given_name is null then 'name is missing'
               when octet_length(p.given_name) > 4096 then 'name is longer than 4096 bytes'
               when p.kind is null then format('kind "%%s" is not a span kind: 0-5 or UNSPECIFIED, INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER', left(p.given_kind, 100))
               when p.status_code is null then format('status_code "%%s" is not a status: 0-2 or UNSET, OK, ERROR', left(p.given_status_code, 100))
               when p.given_start_time is null or p.given_start_time = '' then 'start_time is missing'
               when p.start_time is null then otel.unreadable_time('start_time', 'startTimeUnixNano', p.given_start_time, p.from_otlp)
               when p.start_time = 'epoch' then 'start_time is 0 (unset)'
               when p.given_end_time is null or p.given_end_time = '' then 'end_time is missing'
               when p.end_time is null then otel.unreadable_time('end_time', 'endTimeUnixNano', p.given_end_time, p.from_otlp)
               when p.end_time < p.start_time then format('end_time %%s is before start_time %%s', p.end_time, p.start_time)
               when p.flags is null and coalesce(p.given_flags, '') <> '' then format('flags "%%s" is not a 32-bit unsigned integer', left(p.given_flags, 100))
               when octet_length(p.given_service_name) > 1024 then 'service_name is longer than 1024 bytes'
               when octet_length(p.given_scope_name) > 1024 or octet_length(p.given_scope_version) > 1024 then 'scope_name or scope_version is longer than 1024 bytes'
               when octet_length(p.given_trace_state) > 4096 then 'trace_state is longer than 4096 bytes'
               when jsonb_typeof(p.attributes) <> 'object' then 'attributes is not a JSON object'
               when jsonb_typeof(p.resource_attributes) <> 'object' then 'resource_attributes is not a JSON object'
               when jsonb_typeof(p.events) <> 'array' then 'events is not a JSON array'
               when jsonb_typeof(p.links) <> 'array' then 'links is not a JSON array'
           end as err,
           otel.signature_input(nullif(p.given_service_name, ''), p.kind, p.given_name, p.status_code,
                                nullif(p.given_status_message, ''), p.attributes, p.events) as signature_input,
           hashtextextended(p.trace_id || p.span_id, 0) as span_key,  -- finds spans repeated within the batch
           p.trace_id, p.span_id, p.parent_span_id, nullif(p.given_trace_state, '') as trace_state, p.flags, p.given_name as name, p.kind,
           p.start_time, p.end_time,
           -- Whole microseconds through float8: a third of the numeric extract(), the same value.
           (date_part('epoch', p.end_time - p.start_time) * 1000000)::bigint / 1000::double precision as duration_ms,
           p.status_code, nullif(p.given_status_message, '') as status_message,
           nullif(p.given_service_name, '') as service_name, nullif(p.given_scope_name, '') as scope_name,
           nullif(p.given_scope_version, '') as scope_version,
           p.attributes, p.resource_attributes, p.events, p.links
      from (select r.n, r.claimed,
                   r.end_time as given_end_time, r.flags as given_flags, r.kind as given_kind,
                   r.name as given_name, r.parent_span_id as given_parent_span_id,
                   r.scope_name as given_scope_name, r.scope_version as given_scope_version,
                   r.service_name as given_service_name, r.span_id as given_span_id,
                   r.start_time as given_start_time, r.status_code as given_status_code,
                   r.status_message as given_status_message, r.trace_id as given_trace_id,
                   r.trace_state as given_trace_state,
                   otel.normalize_id(r.trace_id, 32) as trace_id,
                   otel.normalize_id(r.span_id, 16) as span_id,
                   otel.normalize_id(r.parent_span_id, 16) as parent_span_id,
                   otel.parse_span_kind(r.kind) as kind,
                   otel.parse_status_code(r.status_code) as status_code,
                   r.payload_id is not null as from_otlp,
                   otel.parse_record_time(r.start_time, r.payload_id is not null) as start_time,
                   otel.parse_record_time(r.end_time, r.payload_id is not null) as end_time,
                   otel.parse_flags(r.flags) as flags,
                   coalesce(r.attributes_jsonb, otel.parse_json(r.attributes, '{}')) as attributes,
                   coalesce(r.resource_attributes_jsonb, otel.parse_json(r.resource_attributes, '{}')) as resource_attributes,
                   coalesce(r.events_jsonb, otel.parse_json(r.events, '[]')) as events,
                   coalesce(r.links_jsonb, otel.parse_json(r.links, '[]')) as links,
                   row_number() over (partition by r.n) as barrier  -- see otel.typing_query()
              from %s) as p
$query$, source)
$$;
comment on function otel.typing_query_traces(text) is
    'The query that validates and casts the span rows of a flush; internal to otel.flush()';

create or replace function otel.typing_query_logs(source text)
returns text
language sql stable
as $$
-- The query that validates and casts the log rows of source (an aliased
-- relation r with the text columns of otel.logs_staging, n, claimed and
-- payload_id): the rows of pg_temp.otel_logs. time falls back to
-- observed_time when it is absent or 0, as the OTLP spec says; a staged
-- row may also leave it empty, an OTLP record may not (proto3 JSON has no
-- empty fixed64).
select format($query$
    select p.n, p.claimed,
           case
               when (p.given_time <> '' or p.from_otlp) and p.given_time is not null and p.time is null
                   then otel.unreadable_time('time', 'timeUnixNano', p.given_time, p.from_otlp)
               when (p.given_observed_time <> '' or p.from_otlp) and p.given_observed_time is not null
                    and p.observed_time is null
                   then otel.unreadable_time('observed_time', 'observedTimeUnixNano', p.given_observed_time, p.from_otlp)
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
                   r.payload_id is not null as from_otlp,
                   otel.parse_record_time(r.time, r.payload_id is not null) as time,
                   otel.parse_record_time(r.observed_time, r.payload_id is not null) as observed_time,
                   otel.parse_severity(r.severity_number) as severity_number,
                   otel.normalize_id(r.trace_id, 32) as trace_id,
                   otel.normalize_id(r.span_id, 16) as span_id,
                   otel.parse_flags(r.flags) as flags,
                   otel.parse_json(r.attributes, '{}') as attributes,
                   otel.parse_json(r.resource_attributes, '{}') as resource_attributes,
                   row_number() over (partition by r.n) as barrier  -- see otel.typing_query()
              from %s) as p
$query$, source)
$$;
comment on function otel.typing_query_logs(text) is
    'The query that validates and casts the log rows of a flush; internal to otel.flush()';

create or replace function otel.typing_query_metrics(source text)
returns text
language sql stable
as $$
-- The query that validates and casts the metric data points of source (an
-- aliased relation r with the text columns of otel.metrics_staging, n,
-- claimed and payload_id): the rows of pg_temp.otel_metrics. An empty
-- start_time is none in a staged row, unreadable in an OTLP record. Integer values are also kept
-- exactly in int_value; counts are numeric (OTLP counts are uint64).
select format($query$
    select p.n, p.claimed,
           case
               when coalesce(p.given_time, '') = '' then 'time is missing'
               when p.time is null then otel.unreadable_time('time', 'timeUnixNano', p.given_time, p.from_otlp)
               when (p.given_start_time <> '' or p.from_otlp) and p.given_start_time is not null and p.start_time is null
                   then otel.unreadable_time('start_time', 'startTimeUnixNano', p.given_start_time, p.from_otlp)
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
                   r.payload_id is not null as from_otlp,
                   otel.parse_record_time(r.time, r.payload_id is not null) as time,
                   otel.parse_record_time(r.start_time, r.payload_id is not null) as start_time,
                   -- Names looked up in constant objects rather than by a case on
                   -- the value: one evaluation of the value either way, and Citus
                   -- sends a case on a value to the workers without its tests.
                   '{"gauge": "gauge", "sum": "sum", "histogram": "histogram",
                     "exponentialhistogram": "exponential_histogram", "summary": "summary"}'::jsonb
                       ->> regexp_replace(lower(trim(r.type)), '[^a-z]', '', 'g') as type,
                   otel.parse_double(r.value) as value,
                   case when otel.is_integer_text(r.value, 20, true) then r.value::numeric end as int_value,
                   case when otel.is_integer_text(r.count, 20, false) then r.count::numeric end as count,
                   otel.parse_double(r.sum) as sum,
                   otel.parse_double(r.min) as min,
                   otel.parse_double(r.max) as max,
                   otel.parse_temporality(r.temporality) as temporality,
                   ('{"true": true, "t": true, "1": true, "false": false, "f": false, "0": false}'::jsonb
                       -> lower(trim(r.is_monotonic)))::boolean as is_monotonic,
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
                   row_number() over (partition by r.n) as barrier  -- see otel.typing_query()
              from %s) as p
$query$, source)
$$;
comment on function otel.typing_query_metrics(text) is
    'The query that validates and casts the metric data points of a flush; internal to otel.flush()';

create or replace function otel.typing_query(kind text, source text)
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Each typing query parses in a subquery (p) and validates above it. The
-- subquery's window function (barrier) keeps the planner from merging the
-- two, which would parse a value once for every reference to it; being
-- unused, it is then planned away, leaving the subquery free to run in
-- parallel workers (offset 0, the usual fence, forbids that). It is
-- partitioned by n, the row id by which Citus distributes the claim
-- tables, so that Citus sends the query to the workers
-- (otel.type_on_workers()).
begin
    -- PL/pgSQL: the per-kind functions are defined by later files.
    return case kind
        when 'traces' then otel.typing_query_traces(source)
        when 'logs' then otel.typing_query_logs(source)
        when 'metrics' then otel.typing_query_metrics(source)
    end;
end
$$;
comment on function otel.typing_query(text, text) is
    'The query that validates and casts the rows of source for traces, logs or metrics; internal to otel.flush()';

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

create or replace function otel.working_table_on_workers(kind text)
returns regclass
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select format('otel.%I', case kind when 'traces' then 'flush_spans' else 'flush_' || kind end)::regclass
$$;
comment on function otel.working_table_on_workers(text) is
    'otel.flush_spans, otel.flush_logs or otel.flush_metrics: where the flush types the claimed rows of a kind on Citus; internal';

create or replace function otel.claimed_rows_on_workers(kind text)
returns text
language sql immutable
as $$
    -- n is the row id the coordinator gave the row as it was staged:
    -- unique across the shards, rising in staging order (so the first of
    -- two repeated spans is kept, as on one node). Span rows also get the
    -- (null) JSON columns of decoded spans.
    select format('(select c.row_id as n, null::tid as claimed, null::bigint as payload_id, c.*%s
                      from otel.%I as c) as r',
                  case when kind = 'traces' then ', null::jsonb as attributes_jsonb, null::jsonb as resource_attributes_jsonb,
                           null::jsonb as events_jsonb, null::jsonb as links_jsonb' else '' end,
                  'claimed_' || kind)
$$;
comment on function otel.claimed_rows_on_workers(text) is
    'otel.claimed_<kind>, distributed by row id on Citus, as a source of the typing query; internal to otel.flush()';

create or replace function otel.type_on_workers(kind text)
returns boolean
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Types otel.claimed_<kind> into its working table on the workers with one
-- insert … select that each worker runs on its shards: log records and
-- points into the shards beside their claim, spans into the shard of
-- their trace (Citus refuses a null key: a span without a trace id,
-- rejected, gets ''). False, with nothing changed, when the claim table is
-- not distributed or is empty, or when some row defeats the casts:
-- otel.load_claimed() then takes its rows into the working set, where
-- otel.type_rows() isolates the bad one.
declare
    claim_table regclass := format('otel.%I', 'claimed_' || kind);
    typed regclass;
    has_rows boolean;
    typed_columns text;
begin
    if not otel.distributed(claim_table) then
        return false;
    end if;
    execute format('select exists (select 1 from %s)', claim_table) into strict has_rows;
    if not has_rows then
        return false;
    end if;
    typed := otel.working_table_on_workers(kind);
    select string_agg(case when kind = 'traces' and attname = 'trace_id' then 'coalesce(q.trace_id, '''')'
                           else format('q.%I', attname) end,
                      ', ' order by attnum)
      into typed_columns
      from pg_attribute
     where attrelid = typed and attnum > 0 and not attisdropped;
    begin
        execute format('insert into %s select %s from (%s) as q',
                       typed, typed_columns, otel.typing_query(kind, otel.claimed_rows_on_workers(kind)));
    exception when others then
        if otel.is_server_trouble(sqlstate) then raise; end if;
        return false;
    end;
    execute format('analyze %s', typed);  -- on every shard: the joins that follow hash rather than loop
    return true;
end
$$;
comment on function otel.type_on_workers(text) is
    'On Citus: validates and casts the claimed rows of a kind on the workers; internal to otel.flush()';

create or replace function otel.move_spans_on_workers(first_start timestamptz, last_start timestamptz,
                                                       out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- otel.move_traces() for the valid spans of otel.flush_spans, which start
-- between first_start and last_start: repeated spans dropped, signatures
-- assigned, trace summaries kept, the spans inserted, each a statement
-- every worker runs on its shards.
declare
    stored_before bigint;
    first_spans bigint[];
    inputs bigint[];
    signature_ids bigint[];
begin
    -- Spans repeated within the batch (all but the first staged), then
    -- those stored before: a span sent again has the same start time, so
    -- only the batch's time range is searched.
    delete from otel.flush_spans as b
     using (select t.trace_id, t.span_id, min(t.n) as first_n
              from otel.flush_spans as t
             where t.err is null
             group by t.trace_id, t.span_id
            having count(*) > 1) as repeated
     where b.trace_id = repeated.trace_id and b.span_id = repeated.span_id
       and b.n > repeated.first_n and b.err is null;
    get diagnostics duplicates = row_count;
    delete from otel.flush_spans as b
     where b.err is null
       and exists (select from otel.traces as t
                    where t.trace_id = b.trace_id and t.span_id = b.span_id
                      and t.start_time between first_start and last_start);
    get diagnostics stored_before = row_count;
    duplicates := duplicates + stored_before;
    -- Spans per signature input, counted on the workers; the first span of
    -- each into the (empty) working set, where otel.sign_spans() and
    -- otel.catalog_operations() read it as they read the working set's.
    create temp table otel_signature_inputs on commit drop as
    select signature_input, null::tid as first_span, count(*) as spans,
           min(start_time) as first_start, max(start_time) as last_start, min(n) as first_n
      from otel.flush_spans
     where err is null
     group by signature_input;
    first_spans := array(select first_n from pg_temp.otel_signature_inputs);
    insert into pg_temp.otel_traces select * from otel.flush_spans where n = any (first_spans);
    update pg_temp.otel_signature_inputs as i set first_span = t.ctid from pg_temp.otel_traces as t where t.n = i.first_n;
    analyze pg_temp.otel_signature_inputs;
    perform otel.sign_spans();
    perform otel.catalog_operations();
    perform otel.summarize_spans_on_workers();
    -- The few signature ids as arrays, which Citus sends with the insert
    -- to every shard (a temporary table it would send as a result, and
    -- then move every span to its shard again).
    select array_agg(s.signature_input), array_agg(s.signature_id) into inputs, signature_ids
      from pg_temp.otel_signature_ids as s;
    moved := otel.insert_spans('otel.flush_spans',
                               '(select * from unnest($1, $2) as u (signature_input, signature_id))',
                               inputs, signature_ids);
    -- The working set's spans come next, with tables of their own.
    truncate pg_temp.otel_traces;
    drop table pg_temp.otel_signature_inputs, pg_temp.otel_signature_ids;
end
$$;
comment on function otel.move_spans_on_workers(timestamptz, timestamptz) is
    'On Citus: moves the valid spans of otel.flush_spans into otel.traces with signatures and trace summaries, on the workers; internal to otel.flush()';

create or replace function otel.move_on_workers(kind text, out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- The rows otel.type_on_workers() typed: the partitions they need, their
-- rejects to the dead-letter queue (each its row as staged, found on the
-- shards of the claim table by its row id), the valid ones to their final
-- table. The working set's own rows of the kind (decoded OTLP requests)
-- are moved after these, and spans among them find these stored.
declare
    typed regclass := otel.working_table_on_workers(kind);
    first_time timestamptz;
    last_time timestamptz;
    invalid_rows bigint;
begin
    perform otel.partition_working_set(kind, case kind when 'traces' then 'start_time' else 'time' end, typed::text);
    -- The extent is this batch's alone: the working set records its own.
    delete from pg_temp.otel_batch_extent as e where e.kind = move_on_workers.kind
    returning e.first_time, e.last_time, e.invalid_rows into first_time, last_time, invalid_rows;
    if invalid_rows > 0 then
        execute format($sql$
            with rejected as materialized (
                select t.n, t.err from %1$s as t where t.err is not null
            )
            insert into pg_temp.otel_rejects
            select null, %2$L, %3$L, jsonb_strip_nulls(to_jsonb(c) - 'row_id')::text, 'row-json', r.err
              from rejected as r
              join otel.%4$I as c on c.row_id = r.n
        $sql$, typed, kind, 'otel.' || kind || '_staging', 'claimed_' || kind);
    end if;
    case kind
        when 'traces' then select * into moved, duplicates from otel.move_spans_on_workers(first_time, last_time);
        when 'logs' then select * into moved, duplicates from otel.move_logs(typed::text);
        when 'metrics' then select * into moved, duplicates from otel.move_metrics(typed::text);
    end case;
    execute format('truncate %s', typed);
end
$$;
comment on function otel.move_on_workers(text) is
    'On Citus: moves the rows otel.type_on_workers() typed to their final table or the dead-letter queue; internal to otel.flush()';

create or replace function otel.flush_process(started_at timestamptz, truncated text[])
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set jit = off  -- compiling these statements costs more than it saves
-- The working tables compress large values as the final tables do: a
-- value compressed once is stored as it is (sql/100_tables_traces.sql).
set default_toast_compression = 'lz4'
as $$
-- The second transaction of a flush: the claimed rows to their final
-- tables or the dead-letter queue, and a row in otel.flush_runs.
declare
    requests bigint;
    counts record;
    spans bigint := 0;
    logs bigint := 0;
    points bigint := 0;
    duplicates bigint := 0;
    dead_lettered bigint;
    kind text;
    typed_in_place text[] := '{}';
    on_workers text[] := '{}';
begin
    perform otel.take_flush_lock();
    -- A batch of a million spans groups some 200,000 traces: with less
    -- memory, grouping them and building their summaries spill to disk
    -- (a tenth more time). Smaller batches use what they need, no more.
    if pg_size_bytes(current_setting('work_mem')) < pg_size_bytes('128MB') then
        perform set_config('work_mem', '128MB', true);
    end if;
    perform otel.flush_prepare();
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        -- On Citus, where staging is distributed, on the workers
        -- (otel.type_on_workers()); else in place when it can be.
        if otel.type_on_workers(kind) then
            on_workers := on_workers || kind;
            typed_in_place := typed_in_place || kind;
        elsif otel.type_claimed(kind) then
            typed_in_place := typed_in_place || kind;
        end if;
    end loop;
    requests := otel.load_claimed(typed_in_place);
    -- The rows typed on the workers first, then the working set's.
    for counts in
        select u.kind, w.moved, w.duplicates
          from unnest(on_workers) with ordinality as u (kind, n)
         cross join lateral otel.move_on_workers(u.kind) as w
        union all
        select * from otel.process_working_set()
    loop
        case counts.kind
            when 'traces' then spans := spans + counts.moved;
            when 'logs' then logs := logs + counts.moved;
            when 'metrics' then points := points + counts.moved;
        end case;
        duplicates := duplicates + counts.duplicates;
    end loop;
    dead_lettered := otel.store_rejects();
    foreach kind in array typed_in_place loop
        execute format('truncate otel.%I', 'claimed_' || kind);  -- every row of it is moved or queued now
    end loop;
    insert into otel.flush_runs (started_at, duration, spans, logs, metric_points, otlp_requests,
                                 dead_lettered, duplicates, truncated_staging)
    values (started_at, clock_timestamp() - started_at, spans, logs, points, requests,
            dead_lettered, duplicates, truncated);
end
$$;
comment on function otel.flush_process(timestamptz, text[]) is
    'Moves the claimed rows to their final tables or the dead-letter queue and records the flush; the second transaction of otel.flush()';

create or replace function otel.distribute(shard_count integer default 32)
returns setof text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- otel.traces and otel.trace_summaries are distributed by trace_id in
-- shard_count co-located shards, so that a trace's spans and its summary
-- are on one worker and a lookup by trace id is routed there; the span
-- signatures and the catalog of operations, which every worker joins, are
-- reference tables (a copy on each node). Log records are distributed by
-- shard_key, co-located with the spans: a record in a trace lies beside
-- the trace's spans, the others spread by a hash of their own (Citus
-- refuses a null key). Metric points by series_key, so that a series is on
-- one shard and the series of a busy metric spread over all. Both keys are
-- filled only where the table is distributed by them: rows stored before
-- get theirs here, and a table an earlier release distributed otherwise
-- (logs by time, points by name) is redistributed. The staging tables of
-- spans, logs and points and their claim tables are distributed by a row
-- id the coordinator gives each staged row (a staged row may lack the key
-- that would place it, and Citus refuses a null key), so that writers'
-- COPY spreads over the workers, where the flush types the rows into
-- working tables: otel.flush_spans co-located with the spans, otel.flush_logs
-- and otel.flush_metrics with their claims (otel.type_on_workers()). The
-- staging of OTLP/JSON requests and the dead-letter queue stay on the
-- coordinator. Citus reads and writes the
-- shards as the current role: otel_reader, otel_writer and otel_admin,
-- which cannot log in on the coordinator, may on the workers (only there;
-- who can connect is then the workers' pg_hba.conf). Returns what it
-- changed; run again, it changes nothing but what a new worker lacks.
declare
    target record;
    distributed_by text;
    cold text;
    described text;
    role_name text;
    refused text;
    kind text;
    staging text;
    claims text;
    row_ids text;
    working_table text;
begin
    if not exists (select from pg_extension where extname = 'citus') then
        raise exception 'otel.distribute() needs Citus in this database: create extension citus, on a coordinator with workers'
            using errcode = 'feature_not_supported', hint = 'See docs/scale-out.md.';
    end if;
    if shard_count is null or shard_count not between 1 and 64000 then
        raise exception 'shard_count must be between 1 and 64000, got %', coalesce(shard_count::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    -- Flushes wait until this commits: a flush that began before the keys
    -- are filled would write rows without one, which Citus refuses.
    perform otel.take_flush_lock();
    for target in
        select t.*, t.name::regclass as relation
          from (values (1, 'otel.traces', 'trace_id', 'default'),
                       (2, 'otel.trace_summaries', 'trace_id', 'otel.traces'),
                       (3, 'otel.span_signatures', null, null),
                       (4, 'otel.operation_catalog', null, null),
                       (5, 'otel.logs', 'shard_key', 'otel.traces'),
                       (6, 'otel.metrics', 'series_key', 'none')) as t (n, name, key, colocate_with)
         order by n
    loop
        if target.key is not null then
            distributed_by := otel.distribution_column(target.relation);
            continue when distributed_by = target.key;
            if target.name in ('otel.logs', 'otel.metrics') then
                -- Rows stored before the table was distributed by its key have
                -- none; a columnar partition cannot be updated.
                select string_agg(p.name, ', ' order by p.day) into cold
                  from otel.daily_partitions(substr(target.name, 6)) as p
                 where p.columnar;
                if cold is not null then
                    raise exception 'otel.distribute() cannot distribute %: its cold partitions (%) are columnar',
                                    target.name, cold
                        using errcode = 'object_not_in_prerequisite_state',
                              hint = 'Make them row tables again (alter table … set access method heap), or drop them; see docs/scale-out.md.';
                end if;
                if target.name = 'otel.logs' then
                    update otel.logs set shard_key = otel.log_shard_key(trace_id, time, body) where shard_key is null;
                else
                    update otel.metrics
                       set series_key = otel.metric_series_key(name, service_name, labels, resource_attributes)
                     where series_key is null;
                end if;
            end if;
            if distributed_by is not null then
                -- Rewrites the table as a new one, with its partitions, indexes
                -- and grants, but not its comment.
                described := obj_description(target.relation, 'pg_class');
                perform alter_distributed_table(target.relation, distribution_column => target.key,
                                                colocate_with => target.colocate_with);
                execute format('comment on table %s is %L', target.name, described);
                return next format('%s: distributed by %s instead of %s', target.name, target.key, distributed_by);
                continue;
            end if;
        end if;
        continue when otel.distributed(target.relation);
        if target.key is null then
            perform create_reference_table(target.relation);
            return next format('%s: reference', target.name);
            continue;
        end if;
        if target.colocate_with in ('default', 'none') then
            perform create_distributed_table(target.relation, target.key, shard_count => distribute.shard_count,
                                             colocate_with => target.colocate_with);
        else
            perform create_distributed_table(target.relation, target.key, colocate_with => target.colocate_with);
        end if;
        return next format('%s: distributed by %s', target.name, target.key);
    end loop;
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        staging := format('otel.%I', kind || '_staging');
        claims := format('otel.%I', 'claimed_' || kind);
        if not otel.distributed(staging) then
            -- Rows staged before get their ids here; a claim table holds rows
            -- only while a flush runs, or after one failed.
            row_ids := format('otel.%I', case kind when 'traces' then 'staged_span_ids' when 'logs' then 'staged_log_ids'
                                                   else 'staged_point_ids' end);
            execute format('create sequence %s', row_ids);
            execute format('grant usage on sequence %s to otel_writer', row_ids);
            execute format('alter table %s add column row_id bigint default nextval(%L)', staging, row_ids);
            execute format('alter table %s add column row_id bigint default nextval(%L)', claims, row_ids);
            execute format('alter table %s alter column row_id drop default', claims);
            perform create_distributed_table(staging, 'row_id', shard_count => distribute.shard_count,
                                             colocate_with => 'none');
            perform create_distributed_table(claims, 'row_id', colocate_with => staging);
            return next format('%s: distributed by row_id, and %s with it', staging, claims);
        end if;
        working_table := format('otel.%I', case kind when 'traces' then 'flush_spans' else 'flush_' || kind end);
        -- (not otel.working_table_on_workers(), which needs the table to exist)
        if to_regclass(working_table) is null then
            execute format('create unlogged table %s as %s with no data',
                           working_table, otel.typing_query(kind, otel.claimed_rows_on_workers(kind)));
            execute format('comment on table %s is %L', working_table,
                           format('On Citus: the %s of the running flush, typed on the workers (otel.type_on_workers()); internal',
                                  case kind when 'traces' then 'spans' when 'logs' then 'log records' else 'metric points' end));
            -- Spans beside their traces' stored spans; the others beside their claims.
            if kind = 'traces' then
                perform create_distributed_table(working_table, 'trace_id', colocate_with => 'otel.traces');
                return next format('%s: distributed by trace_id', working_table);
            else
                perform create_distributed_table(working_table, 'n', colocate_with => claims);
                return next format('%s: distributed by n, beside %s', working_table, claims);
            end if;
        end if;
    end loop;
    foreach role_name in array array['otel_reader', 'otel_writer', 'otel_admin'] loop
        continue when not exists (
            select from run_command_on_workers(format('select rolcanlogin from pg_roles where rolname = %L', role_name))
             where result is distinct from 't');
        select string_agg(format('%s:%s: %s', w.nodename, w.nodeport, w.result), '; ') into refused
          from run_command_on_workers(
                   -- on each worker alone: Citus would pass it on to every node
                   format('set citus.enable_alter_role_propagation to off; alter role %I login', role_name)) as w
         where not w.success;
        if refused is not null then
            raise exception 'could not let % log in on the workers: %', role_name, refused;
        end if;
        return next format('%s: may log in on the workers', role_name);
    end loop;
end
$$;
comment on function otel.distribute(integer) is
    'On a Citus coordinator, after `alembic upgrade head`: distributes otel.traces and otel.trace_summaries by trace_id in shard_count (default 32) co-located shards, otel.logs by shard_key co-located with the spans (a record in a trace beside its spans) and otel.metrics by series_key (one shard a series), redistributing a table an earlier release distributed otherwise, and makes otel.span_signatures and otel.operation_catalog reference tables; distributes the staging of spans, logs and points by a row id it adds (writers COPY into them with a column list), so that the flush types and moves their rows on the workers (otel.flush_spans, otel.flush_logs, otel.flush_metrics); lets otel_reader, otel_writer and otel_admin log in on the workers (Citus reaches the shards as the current role); returns what it changed (nothing when run again, unless a worker was added). OTLP/JSON requests and the dead letters stay on the coordinator';
"""

# otel.parse_temporality() and otel.typing_query() are as the baseline (0004) built them from sql/.
DOWNGRADE = r"""
drop function otel.move_on_workers(text);
drop function otel.move_spans_on_workers(timestamptz, timestamptz);
drop function otel.type_on_workers(text);
drop function otel.claimed_rows_on_workers(text);
drop function otel.working_table_on_workers(text);
drop function otel.move_logs(text);
drop function otel.move_metrics(text);

create or replace function otel.parse_temporality(value text)
returns text
language sql immutable parallel safe
as $$
    select case regexp_replace(lower(coalesce(trim(value), '')), '^aggregation_temporality_', '')
        when '' then 'unspecified' when '0' then 'unspecified' when 'unspecified' then 'unspecified'
        when '1' then 'delta' when 'delta' then 'delta'
        when '2' then 'cumulative' when 'cumulative' then 'cumulative'
    end
$$;
comment on function otel.parse_temporality(text) is
    'OTLP aggregation temporality by number (0-2) or name to unspecified, delta or cumulative; null when unknown';

create or replace function otel.typing_query(kind text, source text)
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Each typing query parses in a subquery (p) and validates above it. The
-- subquery's window function (barrier) keeps the planner from merging the
-- two, which would parse a value once for every reference to it; being
-- unused, it is then planned away, leaving the subquery free to run in
-- parallel workers (offset 0, the usual fence, forbids that).
begin
    -- PL/pgSQL: the per-kind functions are defined by later files.
    return case kind
        when 'traces' then otel.typing_query_traces(source)
        when 'logs' then otel.typing_query_logs(source)
        when 'metrics' then otel.typing_query_metrics(source)
    end;
end
$$;
comment on function otel.typing_query(text, text) is
    'The query that validates and casts the rows of source for traces, logs or metrics; internal to otel.flush()';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
    execute_sql(released_routine("0053", "otel.typing_query_traces"))
    execute_sql(released_routine("0033", "otel.typing_query_logs"))
    execute_sql(released_routine("0033", "otel.typing_query_metrics"))
    execute_sql(released_routine("0052", "otel.move_logs"))
    execute_sql(released_routine("0052", "otel.move_metrics"))
    execute_sql(released_routine("0053", "otel.claimed_span_rows"))
    execute_sql(released_routine("0053", "otel.type_spans_on_workers"))
    execute_sql(released_routine("0053", "otel.move_spans_on_workers"))
    execute_sql(released_routine("0053", "otel.flush_process"))
    execute_sql(released_routine("0053", "otel.distribute"))
