-- Named queries of otel_db.Client and otel_db.AsyncClient (loaded by otel_db.queries).
-- Each starts with a `-- name --` line and a description line; one SQL function
-- call per query, %(name)s parameters with explicit casts that pick the overload.
-- A read names its columns as the fields of its result dataclass
-- (otel_db.results), which psycopg's class_row builds from them.

-- traces_by_error --
-- Error spans started in [since, until), newest first; until null means now.
select trace_id, span_id, parent_span_id, service_name as service, name, kind, start_time, duration_ms,
       status_message, exception_type, exception_message, coalesce(attributes, '{}') as attributes
  from otel.traces_by_error(%(since)s::timestamptz, coalesce(%(until)s::timestamptz, now()), %(service)s::text,
                            %(lim)s::integer)

-- trace_spans --
-- The span tree of one trace, depth first.
select span_id, parent_span_id, depth, name, service_name as service, kind, start_time, end_time, duration_ms,
       status_code as status, status_message, coalesce(attributes, '{}') as attributes,
       coalesce(events, '[]') as events, coalesce(links, '[]') as links
  from otel.trace_spans(%(trace_id)s::text)

-- root_cause --
-- The spans where one trace's failure originates, best first.
select rank, span_id, parent_span_id, depth, service_name as service, name, kind, status_code as status,
       status_message, exception_type, exception_message, start_time, duration_ms, score, reason
  from otel.root_cause(%(trace_id)s::text)

-- compare_traces --
-- Two traces aligned span by span, what differs first.
select rank, service_name as service, name, path, depth, span_id_a, span_id_b, status_a, status_b,
       status_message_a, status_message_b, exception_type_a, exception_type_b, duration_ms_a, duration_ms_b,
       duration_ratio, differing_attributes as attributes, differences
  from otel.compare_traces(%(a)s::text, %(b)s::text)

-- explain_trace --
-- What sets a failing or slow trace apart from its nearest healthy neighbours, best first.
select rank, holds_in, compared, kind, service_name as service, name, path, span_id, attribute, value_here,
       value_elsewhere, duration_ratio, exception_type, status_message, description
  from otel.explain_trace(%(trace_id)s::text, %(k)s::integer)

-- suspect_attributes --
-- Attribute values over-represented in a service's failing (or slow) spans; until null means now.
select key, value, failing, others, failing_share, others_share, score
  from otel.suspect_attributes(%(service)s::text, %(operation)s::text, %(since)s::timestamptz,
                               coalesce(%(until)s::timestamptz, now()), %(slower_than_percentile)s::float8)

-- trace_logs --
-- The log records of one trace by time, with the trace id as stored.
select l.time, l.severity_number, l.severity_text, l.service_name as service, l.body,
       otel.normalize_trace_id(%(trace_id)s::text) as trace_id, l.span_id, coalesce(l.attributes, '{}') as attributes
  from otel.trace_logs(%(trace_id)s::text) as l

-- search_logs --
-- Full-text log search (websearch syntax), best ranked first.
select time, severity_number, severity_text, service_name as service, body, trace_id, span_id, rank
  from otel.search_logs(%(query)s::text, %(since)s::timestamptz, %(until)s::timestamptz, %(service)s::text,
                        %(min_severity)s::integer, %(lim)s::integer)

-- metric_series --
-- One metric in buckets from since to until; until null means now.
select bucket_start, value
  from otel.metric_series(%(name)s::text, %(bucket)s::interval, %(since)s::timestamptz,
                          coalesce(%(until)s::timestamptz, now()), %(labels)s::jsonb, %(agg)s::text)

-- metric_names --
-- The metrics with points from since to until: name, type, unit and the newest point's time.
select name, type, unit, last_seen
  from otel.metric_names(%(since)s::timestamptz, %(until)s::timestamptz)

-- dead_letter_reasons --
-- Dead letters from since to until by kind and rule, with counts and the newest few.
select telemetry_type, reason, letters, pending, first_seen, last_seen, sample_letters
  from otel.dead_letter_reasons(%(since)s::timestamptz, %(until)s::timestamptz, %(samples)s::integer)

-- as_otel_admin --
-- For the rest of the transaction, act as otel_admin (the connection's role must be a member).
select set_config('role', 'otel_admin', true)

-- retry_dead_letters --
-- Validate the pending dead letters again (otel_admin).
call otel.retry_dlq()

-- retried_dead_letters --
-- After retry_dead_letters, in its transaction: the letters it moved (processed now) and those still pending.
select count(*) filter (where processed_at = now()) as moved, count(*) filter (where processed_at is null) as pending
  from otel.telemetry_dlq

-- services --
-- The services with stored spans, from the operation catalog; since/until (either may be null) keep those seen then.
select service_name as service, operations, first_seen, last_seen
  from otel.services(%(since)s::timestamptz, %(until)s::timestamptz)

-- operations --
-- The operations (span name and kind) of one service, from the operation catalog; kind, since and until may be null.
select name, kind, first_seen, last_seen
  from otel.operations(%(service)s::text, %(span_kind)s::text, %(since)s::timestamptz, %(until)s::timestamptz)

-- find_traces --
-- Traces with a span matching every criterion, newest first; since null means an hour before until, until null now.
select trace_id, root_service, root_name, start_time, duration_ms, span_count, error_count, services
  from otel.find_traces(%(service)s::text, %(operation)s::text, %(attributes)s::jsonb, %(min_duration)s::interval,
                        %(max_duration)s::interval, %(status)s::text,
                        coalesce(%(since)s::timestamptz, now() - interval '1 hour'),
                        coalesce(%(until)s::timestamptz, now()), %(lim)s::integer)

-- service_dependencies --
-- Calls between services in [since, until), most calls first; until null means now.
select parent, child, call_count
  from otel.service_dependencies(%(since)s::timestamptz, coalesce(%(until)s::timestamptz, now()))

-- similar_traces_by_vector --
-- Traces whose spans are nearest to an embedding made by model.
select trace_id, span_id, service_name as service, name, status_code as status, status_message, duration_ms,
       start_time, similarity, coalesce(attributes, '{}') as attributes
  from otel.similar_traces(%(query)s::vector, %(k)s::integer, %(min_similarity)s::double precision,
                           %(service)s::text, %(since)s::timestamptz, %(model)s::text)

-- similar_traces_by_trace --
-- Traces that resemble a given trace (never itself).
select trace_id, span_id, service_name as service, name, status_code as status, status_message, duration_ms,
       start_time, similarity, coalesce(attributes, '{}') as attributes
  from otel.similar_traces(%(trace_id)s::text, %(k)s::integer, %(min_similarity)s::double precision,
                           %(service)s::text, %(since)s::timestamptz)

-- read_only_transaction --
-- The first statement of a sql() transaction: read only, as otel_reader, with a statement timeout.
select set_config('transaction_read_only', 'on', true), set_config('statement_timeout', %(timeout)s::text, true),
       set_config('role', 'otel_reader', true)

-- release_session_locks --
-- After a sql() call: its session's advisory locks, released now rather than when the server notices the closed connection.
select pg_advisory_unlock_all()

-- health --
-- Whether the otel schema is installed.
select to_regclass('otel.otlp_staging') is not null as ready

-- last_flush_run --
-- The id of the newest otel.flush_runs row, 0 when there is none.
select coalesce(max(id), 0) as id from otel.flush_runs

-- flush --
-- Move staged rows into the typed tables now.
call otel.flush()

-- schedule_flush --
-- Register the pg_cron jobs otel-flush and otel-maintenance; the otel-flush job id.
select otel.schedule_flush(%(every)s::text) as job_id

-- unschedule_flush --
-- Remove this database's pg_cron jobs; false when there were none.
select otel.unschedule_flush() as removed

-- flush_run_after --
-- The newest otel.flush_runs row written after the given id.
select * from otel.flush_runs where id > %(id)s::bigint order by id desc limit 1

-- staging_columns --
-- The columns of otel.<kind>_staging (given as table), in table order; not
-- row_id, the number Citus's staging gives each row itself.
select column_name
  from information_schema.columns
 where table_schema = 'otel' and table_name = %(table)s::text and column_name <> 'row_id'
 order by ordinal_position
