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

create or replace function otel.flush_claim()
returns text[]
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- The first, short transaction of a flush: every committed staging row
-- moves to its claim table (otel.claimed_*). When no writer holds a staging
-- table (lock taken with nowait, never queueing in front of writers), its
-- rows are copied and the table truncated: its file shrinks to nothing,
-- with no dead tuples left for vacuum. Otherwise delete … returning takes
-- the committed rows, leaving uncommitted ones for the next flush, and
-- vacuum reclaims the space. Returns the staging tables it truncated.
declare
    kind text;
    truncated text[] := '{}';
begin
    perform pg_advisory_xact_lock(hashtext('otel.flush'));
    foreach kind in array array['otlp', 'traces', 'logs', 'metrics'] loop
        begin
            -- Copy-and-truncate is only right when this statement's snapshot
            -- sees every committed row: read committed, not a snapshot taken
            -- before the flush lock was granted.
            if current_setting('transaction_isolation') <> 'read committed' then
                raise lock_not_available;
            end if;
            execute format('lock table otel.%I in access exclusive mode nowait', kind || '_staging');
            execute format('insert into otel.%I select * from otel.%I', 'claimed_' || kind, kind || '_staging');
            execute format('truncate otel.%I', kind || '_staging');
            truncated := truncated || (kind || '_staging');
        exception when lock_not_available then
            execute format('with claimed as (delete from otel.%I returning *) insert into otel.%I select * from claimed',
                           kind || '_staging', 'claimed_' || kind);
        end;
    end loop;
    return truncated;
end
$$;
comment on function otel.flush_claim() is
    'Moves every committed staging row to the claim tables, truncating the staging tables no writer holds; the first transaction of otel.flush()';

create or replace function otel.load_claimed(typed_in_place text[])
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Everything in the claim tables, but those of the kinds typed in place
-- (otel.type_claimed()), into the working set (delete … returning, which
-- is right under any isolation level). Returns the number of OTLP requests.
declare
    requests bigint;
    kind text;
begin
    -- A null payload (a blank line through COPY … csv) is an empty request:
    -- not valid JSON, so a dead letter with empty raw_data. One cast for
    -- all requests first: otel.try_jsonb() costs a subtransaction and a
    -- copy of the document each, about as much again as the parsing.
    begin
        with claimed as (delete from otel.claimed_otlp returning payload)
        insert into pg_temp.otel_otlp (payload, doc)
        select coalesce(payload, ''), payload::jsonb from claimed;
    exception when data_exception or program_limit_exceeded then
        -- Some request is not JSON, or nests too deep (the delete was rolled
        -- back with the insert).
        with claimed as (delete from otel.claimed_otlp returning payload)
        insert into pg_temp.otel_otlp (payload, doc)
        select coalesce(payload, ''), otel.try_jsonb(payload) from claimed;
    end;
    get diagnostics requests = row_count;
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        continue when kind = any (typed_in_place);
        execute format('with claimed as (delete from otel.%3$I returning *)
                        insert into pg_temp.%1$I (%2$s) select %2$s from claimed',
                       'otel_' || kind || '_rows', otel.staging_columns(kind), 'claimed_' || kind);
    end loop;
    return requests;
end
$$;
comment on function otel.load_claimed(text[]) is
    'Moves the claimed rows not yet typed into the working set of the flush; internal to otel.flush()';

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
        perform otel.partition_working_set(k, case k when 'traces' then 'start_time' else 'time' end);
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

create or replace function otel.flush_process(started_at timestamptz, truncated text[])
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set jit = off  -- compiling these statements costs more than it saves
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
begin
    perform pg_advisory_xact_lock(hashtext('otel.flush'));
    -- A batch of a million spans groups some 200,000 traces: with less
    -- memory, grouping them and building their summaries spill to disk
    -- (a tenth more time). Smaller batches use what they need, no more.
    if pg_size_bytes(current_setting('work_mem')) < pg_size_bytes('128MB') then
        perform set_config('work_mem', '128MB', true);
    end if;
    perform otel.flush_prepare();
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        if otel.type_claimed(kind) then
            typed_in_place := typed_in_place || kind;
        end if;
    end loop;
    requests := otel.load_claimed(typed_in_place);
    for counts in select * from otel.process_working_set() loop
        case counts.kind
            when 'traces' then spans := counts.moved;
            when 'logs' then logs := counts.moved;
            when 'metrics' then points := counts.moved;
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

create or replace procedure otel.flush()
language plpgsql
as $$
-- Two transactions, so that a staging table is locked only while its rows
-- are copied (the first), never while they are processed (the second).
-- Hence: call it outside a transaction block, as pg_cron, psql in
-- autocommit and otel_db.Client do. A row is always in exactly one of
-- staging, claim table, final table or dead-letter queue.
declare
    started_at timestamptz := clock_timestamp();
    truncated text[];
begin
    truncated := otel.flush_claim();
    commit;
    perform otel.flush_process(started_at, truncated);
end
$$;
comment on procedure otel.flush() is
    'Moves every row staged before it started to otel.traces, otel.logs, otel.metrics or otel.telemetry_dlq; never loses or duplicates a row; safe beside writers and another flush; records itself in otel.flush_runs. Call it outside a transaction block: it commits once, after claiming the staged rows';
