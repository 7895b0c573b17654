-- otel.flush(): staging → final tables or the dead-letter queue.

create or replace function otel.staging_columns(kind text)
returns text
language sql stable
as $$
    select string_agg(quote_ident(attname), ', ' order by attnum)
      from pg_attribute
     where attrelid = format('otel.%I', kind || '_staging')::regclass and attnum > 0 and not attisdropped
$$;
comment on function otel.staging_columns(text) is
    'The column list of otel.<kind>_staging, quoted and comma-separated';

create or replace function otel.claim_staging()
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Takes every committed staging row into the working set with
-- delete … returning: rows that writers have not committed yet are not
-- visible to the delete and stay for the next flush, so nothing is lost
-- and writers are never blocked. Returns the number of OTLP requests.
declare
    requests bigint;
    kind text;
begin
    with claimed as (delete from otel.otlp_staging returning payload)
    insert into pg_temp.otel_otlp (payload, doc)
    select payload, otel.try_jsonb(payload) from claimed;
    get diagnostics requests = row_count;

    foreach kind in array array['traces', 'logs', 'metrics'] loop
        execute format('with claimed as (delete from otel.%1$I returning *)
                        insert into pg_temp.%2$I (%3$s) select %3$s from claimed',
                       kind || '_staging', 'otel_' || kind || '_rows', otel.staging_columns(kind));
    end loop;
    return requests;
end
$$;
comment on function otel.claim_staging() is
    'Moves every committed staging row into the working set of the flush; internal to otel.flush()';

create or replace function otel.process_working_set()
returns table (kind text, moved bigint, duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Decode, validate, cast and move everything in the working set; queue
-- the rejects. Shared by otel.flush() and otel.retry_dlq().
declare
    k text;
    result record;
begin
    insert into pg_temp.otel_rejects
    select dlq_id, 'otlp', 'otel.otlp_staging', payload, 'text',
           case when doc is null then 'not valid JSON (an OTLP/JSON request is one JSON object per line)'
                else 'not an OTLP/JSON export request: expected an object with resourceSpans, resourceLogs or resourceMetrics' end
      from pg_temp.otel_otlp
     where doc is null
        or jsonb_typeof(doc) <> 'object'
        or not (doc ?| array['resourceSpans', 'resourceLogs', 'resourceMetrics']);

    foreach k in array array['traces', 'logs', 'metrics'] loop
        perform otel.decode_otlp(k);
        perform otel.type_rows(k);
        perform otel.reject_invalid_rows(k);
        execute format('select * from otel.move_%s()', k) into result;
        kind := k;
        moved := result.moved;
        duplicates := result.duplicates;
        return next;
    end loop;
end
$$;
comment on function otel.process_working_set() is
    'Decodes, validates and moves the working set of a flush or a retry; internal';

create or replace procedure otel.flush()
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set jit = off  -- compiling these statements costs more than it saves
as $$
declare
    started_at timestamptz := clock_timestamp();
    requests bigint;
    counts record;
    spans bigint := 0;
    logs bigint := 0;
    points bigint := 0;
    duplicates bigint := 0;
    dead_lettered bigint;
    truncated text[] := '{}';
    staging text;
begin
    -- One flush at a time: the duplicate check and the claim rely on it. A
    -- second flush waits here and then takes what was staged meanwhile.
    perform pg_advisory_xact_lock(hashtext('otel.flush'));
    perform otel.flush_prepare();
    requests := otel.claim_staging();
    for counts in select * from otel.process_working_set() loop
        case counts.kind
            when 'traces' then spans := counts.moved;
            when 'logs' then logs := counts.moved;
            when 'metrics' then points := counts.moved;
        end case;
        duplicates := duplicates + counts.duplicates;
    end loop;
    dead_lettered := otel.store_rejects();

    -- Give the staging files back while no writer holds them: an empty
    -- table truncated under a lock taken with nowait (never queueing in
    -- front of writers) leaves no dead tuples for vacuum to chase.
    if current_setting('transaction_isolation') = 'read committed' then
        foreach staging in array array['otlp_staging', 'traces_staging', 'logs_staging', 'metrics_staging'] loop
            begin
                execute format('lock table otel.%I in access exclusive mode nowait', staging);
                if not otel.has_rows(staging) then
                    execute format('truncate otel.%I', staging);
                    truncated := truncated || staging;
                end if;
            exception when lock_not_available then
                null;  -- a writer is busy: vacuum reclaims the space instead
            end;
        end loop;
    end if;

    insert into otel.flush_runs (started_at, duration, spans, logs, metric_points, otlp_requests,
                                 dead_lettered, duplicates, truncated_staging)
    values (started_at, clock_timestamp() - started_at, spans, logs, points, requests,
            dead_lettered, duplicates, truncated);
end
$$;
comment on procedure otel.flush() is
    'Moves every row staged before it started to otel.traces, otel.logs, otel.metrics or otel.telemetry_dlq; never loses or duplicates a row; safe beside writers and another flush; records itself in otel.flush_runs';
