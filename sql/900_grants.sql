-- Privileges: nothing for PUBLIC; otel_writer stages, otel_reader reads,
-- otel_admin runs the pipeline and looks after the data.

-- PostgreSQL grants EXECUTE to PUBLIC on every new routine, and default
-- privileges "in schema otel" cannot take back what is granted globally: an
-- event trigger revokes it from each routine created in otel later on.
create or replace function otel.revoke_public_execute()
returns event_trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    routine record;
begin
    for routine in
        select objid from pg_event_trigger_ddl_commands()
         where object_type in ('function', 'procedure', 'aggregate') and schema_name = 'otel'
    loop
        execute format('revoke execute on routine %s from public', routine.objid::regprocedure);
    end loop;
end
$$;
comment on function otel.revoke_public_execute() is
    'Event trigger otel_revoke_public_execute: a routine created in schema otel is not executable by PUBLIC';
create event trigger otel_revoke_public_execute on ddl_command_end
    when tag in ('CREATE FUNCTION', 'CREATE PROCEDURE', 'CREATE AGGREGATE')
    execute function otel.revoke_public_execute();

revoke all on schema otel from public;
revoke all on all tables in schema otel from public;
revoke all on all functions in schema otel from public;
revoke all on all procedures in schema otel from public;

grant usage on schema otel to otel_writer, otel_reader, otel_admin;

grant insert on otel.traces_staging, otel.logs_staging, otel.metrics_staging, otel.otlp_staging to otel_writer;
grant execute on function otel.dead_letter(text, text, text, text, text) to otel_writer;

grant select on otel.traces, otel.trace_summaries, otel.cold_trace_summaries, otel.all_trace_summaries,
                otel.cold_trace_days, otel.operation_catalog, otel.logs, otel.metrics, otel.span_signatures,
                otel.flush_runs to otel_reader;

grant select, insert, update, delete, truncate on all tables in schema otel to otel_admin;
grant execute on procedure otel.flush(), otel.retry_dlq(integer), otel.maintain(integer), otel.resign_spans(timestamptz)
    to otel_admin;
grant execute on function otel.resign_signatures(date), otel.resign_partition(date) to otel_admin;
grant execute on function otel.flush_claim(), otel.flush_process(timestamptz, text[], boolean),
    otel.flush_may_redo(text, text) to otel_admin;
grant execute on function otel.schedule_flush(text), otel.unschedule_flush(), otel.dead_letter(text, text, text, text, text)
    to otel_admin;

grant select on otel.embedding_status to otel_reader, otel_admin;
grant execute on function
    otel.similar_traces(vector, integer, double precision, text, timestamptz, text),
    otel.similar_traces(text, integer, double precision, text, timestamptz),
    otel.similar_traces_search(vector, integer, double precision, text, timestamptz, text, text),
    otel.check_similarity_arguments(integer, double precision),
    otel.embedding_max_attempts()
    to otel_reader, otel_admin;
grant execute on function
    otel.claim_signatures(integer, text), otel.store_embeddings(text), otel.embedding_failed(bigint[], text),
    otel.embedding_retry_delay(integer)
    to otel_admin;

grant execute on function
    otel.traces_by_error(timestamptz, timestamptz, text, integer),
    otel.trace_spans(text),
    otel.trace_export(text),
    otel.trace_logs(text),
    otel.root_cause(text),
    otel.normalize_text(text),
    otel.trace_operations(text[]),
    otel.align_traces(text, text[]),
    otel.compare_traces(text, text),
    otel.explain_trace(text, integer),
    otel.suspect_attributes(text, text, timestamptz, timestamptz, double precision),
    otel.services(timestamptz, timestamptz),
    otel.operations(text, text, timestamptz, timestamptz),
    otel.find_traces(text, text, jsonb, interval, interval, text, timestamptz, timestamptz, integer),
    otel.service_dependencies(timestamptz, timestamptz),
    otel.search_logs(text, timestamptz, timestamptz, text, integer, integer),
    otel.metric_series(text, interval, timestamptz, timestamptz, jsonb, text),
    otel.check_metric_series_arguments(text, interval, timestamptz, timestamptz, jsonb, text),
    otel.metric_series_values(text, interval, timestamptz, timestamptz, jsonb, text),
    otel.metric_series_rate(text, interval, timestamptz, timestamptz, jsonb),
    otel.metric_series_quantile(text, interval, timestamptz, timestamptz, jsonb, text),
    otel.histogram_quantile(double precision, numeric[], double precision[]),
    otel.metric_series_mixed_bounds(text, timestamptz),
    otel.metric_names(timestamptz, timestamptz),
    otel.dead_letter_reason(text),
    otel.dead_letter_reasons(timestamptz, timestamptz, integer),
    otel.check_limit(integer),
    otel.argument_text(text),
    otel.check_time_range(timestamptz, timestamptz, boolean),
    otel.normalize_trace_id(text),
    otel.exception_attribute(jsonb, text),
    otel.exception_event_attributes(jsonb),
    otel.span_failed(text, boolean),
    otel.daily_partitions(text),
    otel.distributed(regclass),
    otel.distribution_column(regclass),
    otel.trace_time_range(text),
    otel.trace_summaries_of(text[]),
    otel.cold_trace_ranges(text[]),
    otel.bloom_position(bigint, text, integer),
    otel.bloom_may_hold(bytea, text)
    to otel_reader, otel_admin;
grant execute on function otel.set_retention(text, interval), otel.drop_expired_partitions(),
                          otel.maintain_partitions(integer), otel.set_cold_storage(text, interval),
                          otel.cold_partitions_due(), otel.convert_to_columnar(text, text),
                          otel.cold_trace_slices(bigint), otel.cold_summaries_due(), otel.move_summaries_to_cold(date),
                          otel.bloom_bits(text[])
    to otel_admin;
grant execute on function otel.set_staging_mode(text) to otel_admin;
grant execute on function otel.staging_mode() to otel_writer, otel_reader, otel_admin;
grant execute on function otel.staging_bytes() to otel_writer, otel_reader, otel_admin;
grant execute on function otel.accepted_time_window(text) to otel_writer, otel_reader, otel_admin;
