-- The otel schema as released at revision 0004: pg_dump --schema-only --no-owner -n otel
-- of a database migrated by commit 11ce4ca (the last with revisions 0001-0004 in full),
-- "\restrict" lines removed. tests/test_migrations.py loads it as an existing 0004 install.
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: otel; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA otel;


--
-- Name: SCHEMA otel; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA otel IS 'otel_db: OpenTelemetry traces, logs and metrics';


--
-- Name: check_limit(integer); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.check_limit(lim integer) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    AS $$
begin
    if lim is null or lim not between 1 and 10000 then
        raise exception 'lim must be between 1 and 10000, got %', coalesce(lim::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
end
$$;


--
-- Name: FUNCTION check_limit(lim integer); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.check_limit(lim integer) IS 'Raises 22023 unless lim is 1..10000';


--
-- Name: check_similarity_arguments(integer, double precision); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.check_similarity_arguments(k integer, min_similarity double precision) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    AS $$
begin
    if k is null or k not between 1 and 1000 then
        raise exception 'k must be between 1 and 1000, got %', coalesce(k::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if min_similarity is null or min_similarity not between -1 and 1 or min_similarity = 'NaN' then
        raise exception 'min_similarity must be a cosine similarity between -1 and 1, got %',
                        coalesce(min_similarity::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
end
$$;


--
-- Name: FUNCTION check_similarity_arguments(k integer, min_similarity double precision); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.check_similarity_arguments(k integer, min_similarity double precision) IS 'Raises 22023 unless k is 1..1000 and min_similarity is -1..1';


--
-- Name: check_time_range(timestamp with time zone, timestamp with time zone, boolean); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.check_time_range(since timestamp with time zone, until timestamp with time zone, since_required boolean) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    AS $$
begin
    if since_required and since is null then
        raise exception 'since must be a timestamp, got null' using errcode = 'invalid_parameter_value';
    end if;
    if since_required and until is null then
        raise exception 'until must be a timestamp, got null' using errcode = 'invalid_parameter_value';
    end if;
    if since > until then
        raise exception 'since (%) is after until (%)', since, until using errcode = 'invalid_parameter_value';
    end if;
end
$$;


--
-- Name: FUNCTION check_time_range(since timestamp with time zone, until timestamp with time zone, since_required boolean); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.check_time_range(since timestamp with time zone, until timestamp with time zone, since_required boolean) IS 'Raises 22023 when since or until is missing (if required) or since is after until';


--
-- Name: claim_signatures(integer, text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.claim_signatures(batch_size integer, model text) RETURNS TABLE(id bigint, text text)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- Locks up to batch_size signatures that need a vector from model (never
-- embedded, or embedded by the fallback while model is a real one), oldest
-- first, skipping those waiting after a failure. The locks last until the
-- caller's transaction ends and other workers skip them: no signature is
-- embedded twice at once.
begin
    if batch_size is null or batch_size not between 1 and 10000 then
        raise exception 'batch_size must be between 1 and 10000, got %', coalesce(batch_size::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if model is null or model = '' then
        raise exception 'model must name the embedding model, e.g. all-MiniLM-L6-v2'
            using errcode = 'invalid_parameter_value';
    end if;
    return query
        select s.id, s.text
          from otel.span_signatures as s
         where (s.embedding is null or s.embedding_model = 'fallback-hash')
           and (s.embedding is null or model <> 'fallback-hash')
           and s.attempts < otel.embedding_max_attempts()
           and (s.next_attempt_at is null or s.next_attempt_at <= now())
         order by s.id
         limit batch_size
           for update of s skip locked;
end
$$;


--
-- Name: FUNCTION claim_signatures(batch_size integer, model text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.claim_signatures(batch_size integer, model text) IS 'Locks a batch of signatures that need a vector from model, skipping rows other workers hold; call it in the transaction that stores the vectors';


--
-- Name: claim_table_rows(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.claim_table_rows(kind text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
    -- A claim table row's n comes from its physical position (block and
    -- 16-bit line pointer): unique, rising in physical order like the
    -- working set's numbering (so the first of two duplicates is kept
    -- either way), and negative, so that it never meets the n of a
    -- working-set row (1, 2, ...). The point (block, line) times
    -- (65536, -1), as complex numbers, is block * 65536 + line: one
    -- conversion of the ctid instead of two. claimed keeps the position
    -- for the dead letter of a rejected row.
    -- Span rows also get the (null) JSON columns of decoded spans.
    select format('(select ((c.ctid::text::point) * point ''(65536,-1)'')[0]::bigint - 4611686018427387904 as n,
                           c.ctid as claimed, c.*%s
                      from otel.%I as c) as r',
                  case when kind = 'traces' then ', null::jsonb as attributes_jsonb, null::jsonb as resource_attributes_jsonb,
                           null::jsonb as events_jsonb, null::jsonb as links_jsonb' else '' end,
                  'claimed_' || kind)
$$;


--
-- Name: FUNCTION claim_table_rows(kind text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.claim_table_rows(kind text) IS 'otel.claimed_<kind> as a source of the typing query; internal to otel.flush()';


--
-- Name: create_typed(text, text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.create_typed(kind text, source text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET parallel_tuple_cost TO '0'
    SET parallel_setup_cost TO '100'
    SET parallel_leader_participation TO 'off'
    AS $$
-- Replaces pg_temp.otel_<kind> by the typed rows of source (an ordinary
-- table: parallel workers never read a temporary one) with one
-- create table … as, which PostgreSQL runs in parallel workers: typing is
-- a flush's costliest step after the insert, and this runs it on every core.
begin
    execute format('drop table pg_temp.%I', 'otel_' || kind);
    execute format('create temp table %I on commit drop as %s', 'otel_' || kind, otel.typing_query(kind, source));
end
$$;


--
-- Name: FUNCTION create_typed(kind text, source text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.create_typed(kind text, source text) IS 'Types the rows of an ordinary table into pg_temp.otel_<kind> in parallel workers; internal to otel.flush()';


--
-- Name: cron_database(); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.cron_database() RETURNS text
    LANGUAGE sql STABLE
    AS $$
    select nullif(current_setting('cron.database_name', true), '')
$$;


--
-- Name: FUNCTION cron_database(); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.cron_database() IS 'The database pg_cron lives in (cron.database_name), null when pg_cron is not preloaded';


--
-- Name: cron_query(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.cron_query(query text) RETURNS SETOF jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- Runs query in the pg_cron database and returns its rows as JSON: here
-- when this is that database, else through dblink (local socket, as the
-- owner of this function).
declare
    cron_db text := otel.cron_database();
    dblink_schema text;
    connection text;
begin
    if cron_db is null then
        raise exception 'pg_cron is not available: add pg_cron to shared_preload_libraries and set cron.database_name, then restart the server'
            using errcode = 'feature_not_supported',
                  hint = 'Until then run "call otel.flush()" from any scheduler you have.';
    end if;
    if cron_db = current_database() then
        if not exists (select 1 from pg_extension where extname = 'pg_cron') then
            raise exception 'pg_cron is preloaded but not installed in database %', cron_db
                using errcode = 'feature_not_supported', hint = 'create extension pg_cron;';
        end if;
        return query execute format('select to_jsonb(q) from (%s) as q', query);
        return;
    end if;
    select n.nspname into dblink_schema
      from pg_extension as e join pg_namespace as n on n.oid = e.extnamespace
     where e.extname = 'dblink';
    if dblink_schema is null then
        raise exception 'pg_cron lives in database %, and reaching it from % needs the dblink extension', cron_db, current_database()
            using errcode = 'feature_not_supported', hint = 'create extension dblink;';
    end if;
    connection := format('dbname=%s port=%s user=%s host=%s', quote_literal(cron_db), current_setting('port'),
                         quote_literal(current_user),
                         quote_literal(coalesce(nullif(split_part(current_setting('unix_socket_directories'), ',', 1), ''),
                                                '127.0.0.1')));
    return query execute format('select j from %I.dblink(%L, %L) as t (j jsonb)', dblink_schema, connection,
                                format('select to_jsonb(q) from (%s) as q', query));
end
$$;


--
-- Name: FUNCTION cron_query(query text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.cron_query(query text) IS 'Runs a query in the pg_cron database (here, or through dblink) and returns its rows as JSON; internal';


--
-- Name: dead_letter(text, text, text, text, text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.dead_letter(telemetry_type text, source text, raw_data text, raw_format text, error_message text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- For writers: input they could not stage (bytes PostgreSQL cannot store
-- as text fail a COPY as a whole) goes to the queue instead of being lost.
declare
    letter_id bigint;
begin
    if telemetry_type is null or telemetry_type not in ('traces', 'logs', 'metrics', 'otlp') then
        raise exception 'telemetry_type must be traces, logs, metrics or otlp, got %', coalesce(telemetry_type, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if raw_format is null or raw_format not in ('text', 'row-json', 'bytea-escape') then
        raise exception 'raw_format must be text, row-json or bytea-escape, got %', coalesce(raw_format, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if raw_data is null or error_message is null or source is null then
        raise exception 'source, raw_data and error_message must not be null'
            using errcode = 'invalid_parameter_value';
    end if;
    -- A JSON object (json, not jsonb: the text may hold \u0000, which jsonb cannot).
    if raw_format = 'row-json' and (dead_letter.telemetry_type = 'otlp' or ltrim(raw_data) not like '{%') then
        raise exception 'a row-json letter is a JSON object of staging columns with telemetry_type traces, logs or metrics'
            using errcode = 'invalid_parameter_value';
    end if;
    if raw_format = 'bytea-escape' then
        perform decode(raw_data, 'escape');  -- rejects text that would not give the bytes back
    end if;
    insert into otel.telemetry_dlq (telemetry_type, source, raw_data, raw_format, error_message)
    values (dead_letter.telemetry_type, dead_letter.source, dead_letter.raw_data,
            dead_letter.raw_format, dead_letter.error_message)
    returning id into letter_id;
    return letter_id;
end
$$;


--
-- Name: FUNCTION dead_letter(telemetry_type text, source text, raw_data text, raw_format text, error_message text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.dead_letter(telemetry_type text, source text, raw_data text, raw_format text, error_message text) IS 'Queues input a writer could not stage (raw_format bytea-escape: decode(raw_data, ''escape'') gives the bytes back); returns the letter id';


--
-- Name: decode_otlp(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.decode_otlp(kind text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
-- Decodes the claimed requests of one kind into pg_temp.otel_<kind>_rows:
-- all at once, else request by request, else record by record, so that a
-- bad record goes to the dead-letter queue and its siblings still land.
declare
    key record;
    request record;
    position record;
    single_id bigint;
    decode text := format('select otel.decode_otlp_%s($1, $2)', kind);
begin
    select * into key from otel.otlp_keys(kind);
    begin
        execute decode using 1::bigint, 9223372036854775807::bigint;
        return;
    exception when others then
        if otel.is_server_trouble(sqlstate) then raise; end if;
        null;  -- some request is bad: isolate it below
    end;
    create index if not exists otel_otlp_id on pg_temp.otel_otlp (id);  -- each request below is picked by id
    analyze pg_temp.otel_otlp;
    for request in
        select id, dlq_id, payload, doc from pg_temp.otel_otlp where doc ? key.resource_key order by id
    loop
        begin
            execute decode using request.id, request.id;
        exception when others then
            if otel.is_server_trouble(sqlstate) then raise; end if;
            begin
                for position in select * from otel.otlp_records(request.doc, kind) loop
                    begin
                        -- The record as a request of its own: decoding it costs
                        -- its own size, not the whole request's again.
                        insert into pg_temp.otel_otlp (dlq_id, doc)
                        values (request.dlq_id, otel.otlp_single_record(request.doc, kind, position.rs, position.ss,
                                                                        position.rec, position.dp))
                        returning id into single_id;
                        execute decode using single_id, single_id;
                    exception when others then
                        if otel.is_server_trouble(sqlstate) then raise; end if;
                        insert into pg_temp.otel_rejects
                        values (request.dlq_id, kind, 'otel.otlp_staging',
                                otel.otlp_single_record(request.doc, kind, position.rs, position.ss,
                                                        position.rec, position.dp)::text,
                                'text', 'rejected record: ' || sqlerrm);
                    end;
                end loop;
            exception when others then
                if otel.is_server_trouble(sqlstate) then raise; end if;
                -- Only this kind's part: the other signals of the request are judged on their own.
                insert into pg_temp.otel_rejects
                values (request.dlq_id, 'otlp', 'otel.otlp_staging',
                        case when request.doc ?| array_remove(array['resourceSpans', 'resourceLogs', 'resourceMetrics'], key.resource_key)
                             then jsonb_build_object(key.resource_key, request.doc -> key.resource_key)::text
                             else request.payload end,
                        'text', format('not a valid OTLP/JSON %s request: %s', kind, sqlerrm));
            end;
        end;
    end loop;
end
$_$;


--
-- Name: FUNCTION decode_otlp(kind text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.decode_otlp(kind text) IS 'Decodes claimed OTLP/JSON requests of one kind, isolating bad requests and records; internal to otel.flush()';


--
-- Name: decode_otlp_logs(bigint, bigint); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.decode_otlp_logs(first_id bigint, last_id bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- Log records of the claimed requests first_id..last_id as text rows.
-- A string body stays text; any other body is kept as JSON text.
begin
    insert into pg_temp.otel_logs_rows (
        dlq_id, payload_id, rs, ss, rec,
        time, observed_time, severity_number, severity_text, body, trace_id, span_id, flags,
        service_name, scope_name, scope_version, attributes, resource_attributes, event_name)
    select p.dlq_id, p.id, x.rs, x.ss, x.rec,
           x.v ->> 'timeUnixNano', x.v ->> 'observedTimeUnixNano', x.v ->> 'severityNumber',
           x.v ->> 'severityText',
           case when x.v -> 'body' ? 'stringValue' then x.v -> 'body' ->> 'stringValue'
                else otel.otlp_value(x.v -> 'body')::text end,
           x.v ->> 'traceId', x.v ->> 'spanId', x.v ->> 'flags',
           x.resource_attributes ->> 'service.name', x.scope ->> 'name', x.scope ->> 'version',
           (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
              from jsonb_array_elements(x.v -> 'attributes') as kv)::text,
           x.resource_attributes::text,
           x.v ->> 'eventName'
      from pg_temp.otel_otlp as p
     cross join lateral otel.otlp_request_records(p.doc, 'logs') as x (rs, ss, rec, resource_attributes, scope, v)
     where p.id between first_id and last_id
       and p.doc ? 'resourceLogs';
end
$$;


--
-- Name: FUNCTION decode_otlp_logs(first_id bigint, last_id bigint); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.decode_otlp_logs(first_id bigint, last_id bigint) IS 'Decodes the log records of claimed OTLP/JSON requests into text rows; internal to otel.flush()';


--
-- Name: decode_otlp_metrics(bigint, bigint); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.decode_otlp_metrics(first_id bigint, last_id bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- Data points of the claimed requests first_id..last_id as text rows. An
-- absent timeUnixNano or count is 0, as proto3 JSON omits zero values; a
-- point without asDouble or asInt keeps a null value.
begin
    insert into pg_temp.otel_metrics_rows (
        dlq_id, payload_id, rs, ss, rec, dp,
        time, start_time, name, description, type, unit, value, count, sum, min, max,
        bucket_counts, explicit_bounds, quantiles, exponential, exemplars,
        temporality, is_monotonic, flags, labels, resource_attributes,
        service_name, scope_name, scope_version)
    select p.dlq_id, p.id, x.rs, x.ss, x.rec, d.l,
           coalesce(d.v ->> 'timeUnixNano', '0'), d.v ->> 'startTimeUnixNano',
           x.v ->> 'name', x.v ->> 'description', m.type, x.v ->> 'unit',
           coalesce(d.v ->> 'asDouble', d.v ->> 'asInt'),
           case when m.type in ('histogram', 'exponential_histogram', 'summary')
                then coalesce(d.v ->> 'count', '0') end,
           d.v ->> 'sum',
           d.v ->> 'min', d.v ->> 'max',
           (d.v -> 'bucketCounts')::text, (d.v -> 'explicitBounds')::text,
           (d.v -> 'quantileValues')::text,
           case when m.type = 'exponential_histogram'
                then (d.v - '{attributes,startTimeUnixNano,timeUnixNano,count,sum,min,max,exemplars,flags}'::text[])::text end,
           (select jsonb_agg(jsonb_build_object(
                       'time', otel.parse_time(e ->> 'timeUnixNano'),
                       'value', case when e ? 'asDouble' then otel.otlp_value(jsonb_build_object('doubleValue', e -> 'asDouble'))
                                     when e ? 'asInt' then otel.otlp_value(jsonb_build_object('intValue', e -> 'asInt')) end,
                       'trace_id', lower(nullif(e ->> 'traceId', '')),
                       'span_id', lower(nullif(e ->> 'spanId', '')),
                       'attributes', (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
                                        from jsonb_array_elements(e -> 'filteredAttributes') as kv)) order by ei)
              from jsonb_array_elements(d.v -> 'exemplars') with ordinality as ex (e, ei))::text,
           m.data ->> 'aggregationTemporality',
           case when m.type = 'sum' then coalesce(m.data ->> 'isMonotonic', 'false') end,
           d.v ->> 'flags',
           (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
              from jsonb_array_elements(d.v -> 'attributes') as kv)::text,
           x.resource_attributes::text,
           x.resource_attributes ->> 'service.name', x.scope ->> 'name', x.scope ->> 'version'
      from pg_temp.otel_otlp as p
     cross join lateral otel.otlp_request_records(p.doc, 'metrics') as x (rs, ss, rec, resource_attributes, scope, v)
     cross join lateral otel.metric_data(x.v) as m
     -- A metric with no data field (the oneof unset) has no points: nothing to store, nothing wrong.
     cross join lateral jsonb_array_elements(m.data -> 'dataPoints') with ordinality as d (v, l)
     where p.id between first_id and last_id
       and p.doc ? 'resourceMetrics';
end
$$;


--
-- Name: FUNCTION decode_otlp_metrics(first_id bigint, last_id bigint); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.decode_otlp_metrics(first_id bigint, last_id bigint) IS 'Decodes the data points of claimed OTLP/JSON requests into text rows; internal to otel.flush()';


--
-- Name: decode_otlp_traces(bigint, bigint); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.decode_otlp_traces(first_id bigint, last_id bigint) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- Spans of the claimed requests first_id..last_id as rows of text, and of
-- JSON where the request has it already.
begin
    insert into pg_temp.otel_traces_rows (
        dlq_id, payload_id, rs, ss, rec,
        trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time,
        status_code, status_message, service_name, scope_name, scope_version,
        attributes_jsonb, resource_attributes_jsonb, events_jsonb, links_jsonb)
    select p.dlq_id, p.id, x.rs, x.ss, x.rec,
           x.v ->> 'traceId', x.v ->> 'spanId', x.v ->> 'parentSpanId', x.v ->> 'traceState', x.v ->> 'flags',
           x.v ->> 'name', x.v ->> 'kind', x.v ->> 'startTimeUnixNano', x.v ->> 'endTimeUnixNano',
           x.v -> 'status' ->> 'code', x.v -> 'status' ->> 'message',
           x.resource_attributes ->> 'service.name', x.scope ->> 'name', x.scope ->> 'version',
           (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
              from jsonb_array_elements(x.v -> 'attributes') as kv),
           x.resource_attributes,
           -- Most spans have neither events nor links: the guards skip
           -- their subqueries (a tenth of the decoding time).
           case when x.v ? 'events' then
           (select jsonb_agg(jsonb_build_object(
                       'name', e ->> 'name',
                       'time', otel.parse_time(e ->> 'timeUnixNano'),
                       'attributes', (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
                                        from jsonb_array_elements(e -> 'attributes') as kv)) order by ei)
              from jsonb_array_elements(x.v -> 'events') with ordinality as ev (e, ei)) end,
           case when x.v ? 'links' then
           (select jsonb_agg(jsonb_build_object(
                       'trace_id', lower(l ->> 'traceId'),
                       'span_id', lower(l ->> 'spanId'),
                       'trace_state', nullif(l ->> 'traceState', ''),
                       'attributes', (select coalesce(jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value')), '{}')
                                        from jsonb_array_elements(l -> 'attributes') as kv)) order by li)
              from jsonb_array_elements(x.v -> 'links') with ordinality as lk (l, li)) end
      from pg_temp.otel_otlp as p
     cross join lateral otel.otlp_request_records(p.doc, 'traces') as x (rs, ss, rec, resource_attributes, scope, v)
     where p.id between first_id and last_id
       and p.doc ? 'resourceSpans';
end
$$;


--
-- Name: FUNCTION decode_otlp_traces(first_id bigint, last_id bigint); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.decode_otlp_traces(first_id bigint, last_id bigint) IS 'Decodes the spans of claimed OTLP/JSON requests into text rows; internal to otel.flush()';


--
-- Name: drop_expired_partitions(); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.drop_expired_partitions() RETURNS SETOF text
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
-- A daily partition goes once its whole day is older than now() - keep, so
-- nothing younger than keep is ever dropped. Returns the dropped tables.
declare
    expired record;
begin
    for expired in
        select c.oid::regclass as partition
          from otel.retention as r
          join pg_inherits as i on i.inhparent = format('otel.%I', r.kind)::regclass
          join pg_class as c on c.oid = i.inhrelid
         where c.relname ~ '_p[0-9]{8}$'
           and (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp at time zone 'UTC' <= now() - r.keep
         order by c.relname
    loop
        execute format('drop table %s', expired.partition);
        return next expired.partition::text;
    end loop;
    delete from otel.trace_summaries as s
     using otel.retention as r
     where r.kind = 'traces' and s.end_time < now() - r.keep - interval '1 day';
end
$_$;


--
-- Name: FUNCTION drop_expired_partitions(); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.drop_expired_partitions() IS 'Drops the daily partitions of otel.traces, otel.logs and otel.metrics past their retention (otel.retention); returns their names';


--
-- Name: embedding_failed(bigint[], text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.embedding_failed(ids bigint[], error text) RETURNS void
    LANGUAGE sql
    AS $$
    update otel.span_signatures
       set attempts = attempts + 1,
           last_error = left(coalesce(error, 'unknown error'), 2000),
           next_attempt_at = now() + otel.embedding_retry_delay(attempts + 1)
     where id = any (ids) and (embedding is null or embedding_model = 'fallback-hash')
$$;


--
-- Name: FUNCTION embedding_failed(ids bigint[], error text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.embedding_failed(ids bigint[], error text) IS 'Records a failed attempt on signatures: the error, and when to try again';


--
-- Name: embedding_max_attempts(); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.embedding_max_attempts() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    select 5
$$;


--
-- Name: FUNCTION embedding_max_attempts(); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.embedding_max_attempts() IS 'How many failed attempts a signature gets before it counts as failed: 5';


--
-- Name: embedding_retry_delay(integer); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.embedding_retry_delay(attempts integer) RETURNS interval
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    -- 30 s after the first failure, doubling, at most an hour.
    select least(interval '30 seconds' * power(2, greatest(attempts - 1, 0)), interval '1 hour')
$$;


--
-- Name: FUNCTION embedding_retry_delay(attempts integer); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.embedding_retry_delay(attempts integer) IS 'How long a signature waits after its n-th failed attempt: 30 s, doubling, at most 1 hour';


--
-- Name: ensure_partitions(text, date[]); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.ensure_partitions(parent text, days date[]) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- Creates the missing daily partitions (UTC days) of otel.<parent>, named
-- otel.<parent>_pYYYYMMDD. Returns how many it created.
declare
    day date;
    created integer := 0;
begin
    if parent not in ('traces', 'logs', 'metrics') then
        raise exception 'unknown partitioned table "%": allowed are traces, logs, metrics', parent
            using errcode = 'invalid_parameter_value';
    end if;
    foreach day in array coalesce(days, '{}') loop
        continue when to_regclass(format('otel.%I', parent || '_p' || to_char(day, 'YYYYMMDD'))) is not null;
        execute format('create table otel.%I partition of otel.%I for values from (%L) to (%L)',
                       parent || '_p' || to_char(day, 'YYYYMMDD'), parent,
                       day::timestamp at time zone 'UTC', (day + 1)::timestamp at time zone 'UTC');
        created := created + 1;
    end loop;
    return created;
end
$$;


--
-- Name: FUNCTION ensure_partitions(parent text, days date[]); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.ensure_partitions(parent text, days date[]) IS 'Creates the missing daily partitions (UTC) of otel.traces, otel.logs or otel.metrics for the given days';


--
-- Name: exception_attribute(jsonb, text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.exception_attribute(events jsonb, attribute text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    select otel.exception_event_attributes(events) ->> attribute
$$;


--
-- Name: FUNCTION exception_attribute(events jsonb, attribute text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.exception_attribute(events jsonb, attribute text) IS 'An attribute (exception.type, exception.message) of the first "exception" event, null when there is none';


--
-- Name: exception_event_attributes(jsonb); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.exception_event_attributes(events jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
    -- "Has a first element" is the cheap test for a non-empty array (a
    -- scalar reads as one too, and then matches nothing in lax mode).
    select case when events -> 0 is not null
                then jsonb_path_query_first(events, '$[*] ? (@.name == "exception").attributes') end
$_$;


--
-- Name: FUNCTION exception_event_attributes(events jsonb); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.exception_event_attributes(events jsonb) IS 'The attributes of the first "exception" event, null when there is none';


--
-- Name: flush(); Type: PROCEDURE; Schema: otel; Owner: -
--

CREATE PROCEDURE otel.flush()
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: PROCEDURE flush(); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON PROCEDURE otel.flush() IS 'Moves every row staged before it started to otel.traces, otel.logs, otel.metrics or otel.telemetry_dlq; never loses or duplicates a row; safe beside writers and another flush; records itself in otel.flush_runs. Call it outside a transaction block: it commits once, after claiming the staged rows';


--
-- Name: flush_claim(); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.flush_claim() RETURNS text[]
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


--
-- Name: FUNCTION flush_claim(); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.flush_claim() IS 'Moves every committed staging row to the claim tables, truncating the staging tables no writer holds; the first transaction of otel.flush()';


--
-- Name: flush_prepare(); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.flush_prepare() RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    -- Always new tables: these functions run as their owner, so a table of
    -- these names made beforehand by the caller (with a trigger, say) must
    -- never be used.
    drop table if exists pg_temp.otel_otlp, pg_temp.otel_rejects, pg_temp.otel_traces_rows,
        pg_temp.otel_logs_rows, pg_temp.otel_metrics_rows, pg_temp.otel_traces, pg_temp.otel_logs,
        pg_temp.otel_metrics, pg_temp.otel_signature_ids, pg_temp.otel_signature_inputs,
        pg_temp.otel_repeated_keys, pg_temp.otel_batch_extent, pg_temp.otel_retried;
    create temp table otel_otlp (
        id bigint generated always as identity,
        dlq_id bigint,
        payload text,
        doc jsonb
    ) on commit drop;
    -- Requests are large and live for one transaction: compressing them
    -- (the default for TOASTed values) would cost more than it saves.
    alter table pg_temp.otel_otlp alter column payload set storage external, alter column doc set storage external;
    -- Per kind: the first and last time of the valid rows, and how many
    -- rows are invalid (otel.partition_working_set()).
    create temp table otel_batch_extent (
        kind text primary key,
        first_time timestamptz,
        last_time timestamptz,
        invalid_rows bigint
    ) on commit drop;
    create temp table otel_rejects (
        dlq_id bigint,
        telemetry_type text,
        source text,
        raw_data text,
        raw_format text,
        error_message text
    ) on commit drop;
    create temp table otel_traces_rows (
        n bigint generated always as identity, dlq_id bigint,
        payload_id bigint, rs int, ss int, rec int, dp int,
        like otel.traces_staging,
        -- A decoded OTLP span's JSON values as they are (its text columns
        -- for them stay null): typing them does not parse them again.
        attributes_jsonb jsonb, resource_attributes_jsonb jsonb, events_jsonb jsonb, links_jsonb jsonb
    ) on commit drop;
    create temp table otel_logs_rows (
        n bigint generated always as identity, dlq_id bigint,
        payload_id bigint, rs int, ss int, rec int, dp int,
        like otel.logs_staging) on commit drop;
    create temp table otel_metrics_rows (
        n bigint generated always as identity, dlq_id bigint,
        payload_id bigint, rs int, ss int, rec int, dp int,
        like otel.metrics_staging) on commit drop;
    -- Typed rows, shaped by the typing queries themselves.
    execute format('create temp table otel_traces on commit drop as %s with no data',
                   otel.typing_query('traces', otel.claim_table_rows('traces')));
    execute format('create temp table otel_logs on commit drop as %s with no data',
                   otel.typing_query('logs', otel.claim_table_rows('logs')));
    execute format('create temp table otel_metrics on commit drop as %s with no data',
                   otel.typing_query('metrics', otel.claim_table_rows('metrics')));
end
$$;


--
-- Name: FUNCTION flush_prepare(); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.flush_prepare() IS 'Creates the temporary tables one flush or retry works in (dropping any of the same names first); internal';


--
-- Name: flush_process(timestamp with time zone, text[]); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.flush_process(started_at timestamp with time zone, truncated text[]) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET "TimeZone" TO 'UTC'
    SET jit TO 'off'
    AS $$
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


--
-- Name: FUNCTION flush_process(started_at timestamp with time zone, truncated text[]); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.flush_process(started_at timestamp with time zone, truncated text[]) IS 'Moves the claimed rows to their final tables or the dead-letter queue and records the flush; the second transaction of otel.flush()';


--
-- Name: histogram_quantile(double precision, numeric[], double precision[]); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.histogram_quantile(q double precision, counts numeric[], bounds double precision[]) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    -- The q-quantile of an explicit-bucket histogram (counts has one more
    -- element than bounds: the overflow bucket), interpolating linearly
    -- inside the bucket that holds it, as Prometheus does. The first bucket
    -- is taken to start at 0 (or at its bound when that is negative); in the
    -- overflow bucket the answer is the highest bound.
    with buckets as (
        select i, c, sum(c) over (order by i) as running, sum(c) over () as total
          from unnest(counts) with ordinality as x (c, i)
    ),
    hit as (
        select i, c, running, total from buckets
         where total > 0 and running >= q * total and q > 0 and q <= 1
         order by i
         limit 1
    )
    select case
        when hit.i > cardinality(bounds) then bounds[cardinality(bounds)]
        else coalesce(bounds[hit.i - 1], least(0, bounds[1]))
             + (bounds[hit.i] - coalesce(bounds[hit.i - 1], least(0, bounds[1])))
               * ((q * hit.total - (hit.running - hit.c)) / nullif(hit.c, 0))::double precision
    end
      from hit
$$;


--
-- Name: FUNCTION histogram_quantile(q double precision, counts numeric[], bounds double precision[]); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.histogram_quantile(q double precision, counts numeric[], bounds double precision[]) IS 'The q-quantile (0 < q <= 1; null otherwise) of histogram bucket counts with explicit bounds, by linear interpolation within a bucket';


--
-- Name: http_reason(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.http_reason(status text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    select case status
        when '200' then 'OK' when '201' then 'Created' when '202' then 'Accepted' when '204' then 'No Content'
        when '301' then 'Moved Permanently' when '302' then 'Found' when '304' then 'Not Modified'
        when '400' then 'Bad Request' when '401' then 'Unauthorized' when '402' then 'Payment Required'
        when '403' then 'Forbidden' when '404' then 'Not Found' when '405' then 'Method Not Allowed'
        when '408' then 'Request Timeout' when '409' then 'Conflict' when '410' then 'Gone'
        when '413' then 'Payload Too Large' when '415' then 'Unsupported Media Type'
        when '422' then 'Unprocessable Entity' when '429' then 'Too Many Requests'
        when '500' then 'Internal Server Error' when '501' then 'Not Implemented' when '502' then 'Bad Gateway'
        when '503' then 'Service Unavailable' when '504' then 'Gateway Timeout'
    end
$$;


--
-- Name: FUNCTION http_reason(status text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.http_reason(status text) IS 'The reason phrase of an HTTP status code, null for unusual codes';


--
-- Name: is_absent_id(text, integer); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.is_absent_id(value text, hex_digits integer) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    select value is null or trim(value) = '' or lower(trim(value)) = repeat('0', hex_digits)
$$;


--
-- Name: FUNCTION is_absent_id(value text, hex_digits integer); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.is_absent_id(value text, hex_digits integer) IS 'True when an OTLP id is missing, empty or all zeros (no id), false when it is a value';


--
-- Name: is_integer_text(text, integer, boolean); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.is_integer_text(value text, max_digits integer, signed boolean) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
    -- Up to max_digits decimal digits, with a minus sign if signed, white
    -- space around them or not. Plain digits, the usual form, are recognised
    -- without the counted regular expression, at a fifth of its cost.
    select case
        when length(value) between 1 and max_digits and value !~ '[^0-9]' then true
        else value ~ ('^\s*' || case when signed then '-?' else '' end || '[0-9]{1,' || max_digits::text || '}\s*$')
    end
$_$;


--
-- Name: FUNCTION is_integer_text(value text, max_digits integer, signed boolean); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.is_integer_text(value text, max_digits integer, signed boolean) IS 'True when value is an integer of at most max_digits digits (signed if allowed), with or without white space around it';


--
-- Name: is_server_trouble(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.is_server_trouble(state text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    -- Errors of the server, not of the data (insufficient resources,
    -- operator intervention, system errors): the slow paths re-raise them
    -- instead of dead-lettering every row they were working on.
    select left(state, 2) in ('53', '57', '58', 'XX')
$$;


--
-- Name: FUNCTION is_server_trouble(state text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.is_server_trouble(state text) IS 'True for SQLSTATE classes that mean server trouble (53, 57, 58, XX) rather than bad data';


--
-- Name: json_numeric_array(jsonb); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.json_numeric_array(value jsonb) RETURNS numeric[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    -- Raises on an element that is not a number (OTLP writes uint64 counts as strings).
    select case when value is not null
                then array(select e::numeric from jsonb_array_elements_text(value) with ordinality as x (e, i) order by i) end
$$;


--
-- Name: FUNCTION json_numeric_array(value jsonb); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.json_numeric_array(value jsonb) IS 'A JSON array of numbers or numeric strings to numeric[]';


--
-- Name: load_claimed(text[]); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.load_claimed(typed_in_place text[]) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
$_$;


--
-- Name: FUNCTION load_claimed(typed_in_place text[]); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.load_claimed(typed_in_place text[]) IS 'Moves the claimed rows not yet typed into the working set of the flush; internal to otel.flush()';


--
-- Name: maintain(integer); Type: PROCEDURE; Schema: otel; Owner: -
--

CREATE PROCEDURE otel.maintain(IN days_ahead integer DEFAULT 3)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- Creates partitions from yesterday to days_ahead days ahead, so that a
-- flush in steady state never has to create one.
declare
    kind text;
begin
    if days_ahead is null or days_ahead not between 0 and 366 then
        raise exception 'days_ahead must be between 0 and 366, got %', days_ahead
            using errcode = 'invalid_parameter_value';
    end if;
    perform pg_advisory_xact_lock(hashtext('otel.flush'));  -- flushes create partitions too
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        perform otel.ensure_partitions(kind, array(
            select d::date from generate_series((now() at time zone 'UTC')::date - 1,
                                                (now() at time zone 'UTC')::date + days_ahead,
                                                interval '1 day') as d));
    end loop;
    perform otel.drop_expired_partitions();
end
$$;


--
-- Name: PROCEDURE maintain(IN days_ahead integer); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON PROCEDURE otel.maintain(IN days_ahead integer) IS 'Creates daily partitions from yesterday to days_ahead days ahead and drops those past their retention; run by the pg_cron job otel-maintenance';


--
-- Name: metric_data(jsonb); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.metric_data(metric jsonb, OUT type text, OUT data jsonb) RETURNS record
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    select case when metric ? 'gauge' then 'gauge' when metric ? 'sum' then 'sum'
                when metric ? 'histogram' then 'histogram'
                when metric ? 'exponentialHistogram' then 'exponential_histogram'
                when metric ? 'summary' then 'summary' end,
           coalesce(metric -> 'gauge', metric -> 'sum', metric -> 'histogram',
                    metric -> 'exponentialHistogram', metric -> 'summary')
$$;


--
-- Name: FUNCTION metric_data(metric jsonb, OUT type text, OUT data jsonb); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.metric_data(metric jsonb, OUT type text, OUT data jsonb) IS 'The type of an OTLP/JSON metric (gauge, sum, histogram, exponential_histogram, summary) and its data object';


--
-- Name: metric_series(text, interval, timestamp with time zone, timestamp with time zone, jsonb, text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.metric_series(name text, bucket interval, since timestamp with time zone, until timestamp with time zone DEFAULT now(), labels jsonb DEFAULT NULL::jsonb, agg text DEFAULT 'avg'::text) RETURNS TABLE(bucket_start timestamp with time zone, value double precision)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- Buckets are bucket long and aligned to multiples of it counted from
-- 2000-01-01 UTC (whole minutes, hours, days: date_bin), so the first one
-- may start before since; only buckets with points are returned. A series is one combination of labels, service and
-- resource. agg:
--   avg, min, max, sum, count  of the points' values (gauges, sums); for
--                              histograms and summaries of their sum/count,
--                              min and max
--   rate                       per-second increase of a monotonic sum:
--                              cumulative points are differenced per series
--                              (a drop, or a new start_time, is a counter
--                              reset: the new value is the increase), delta
--                              points are increases already
--   p50, p90, p99              from explicit-bucket histograms: the bucket
--                              counts of the interval (differenced when
--                              cumulative, as for rate), summed over series
-- Series are told apart by their labels and resource as jsonb text in the C
-- collation (jsonb text is canonical): sorting that is several times
-- cheaper than sorting jsonb values.
declare
    metric text := metric_series.name;
    quantile double precision;
    bucket_seconds double precision;
begin
    if metric is null or metric = '' then
        raise exception 'name must name a metric, got %', coalesce(quote_literal(metric), 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if bucket is null or bucket < interval '1 second' or bucket > interval '366 days' then
        raise exception 'bucket must be an interval from 1 second to 366 days, got %', coalesce(bucket::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if bucket <> justify_hours(bucket) or extract(month from bucket) <> 0 or extract(year from bucket) <> 0 then
        raise exception 'bucket must be a fixed length (seconds, minutes, hours or days), got %', bucket
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_time_range(since, until, true);
    if (extract(epoch from until - since) / extract(epoch from bucket)) > 100000 then
        raise exception 'since to until holds more than 100000 buckets of %; choose a larger bucket', bucket
            using errcode = 'invalid_parameter_value';
    end if;
    if labels is not null and jsonb_typeof(labels) <> 'object' then
        raise exception 'labels must be a JSON object of label values to match, got %', labels
            using errcode = 'invalid_parameter_value';
    end if;
    if agg is null or agg not in ('avg', 'min', 'max', 'sum', 'count', 'rate', 'p50', 'p90', 'p99') then
        raise exception 'agg must be one of avg, min, max, sum, count, rate, p50, p90, p99, got %',
                        coalesce(quote_literal(agg), 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    bucket_seconds := extract(epoch from bucket);

    if agg in ('avg', 'min', 'max', 'sum', 'count') then
        return query
            select date_bin(bucket, m.time, timestamptz '2000-01-01 00:00:00+00') as b,
                   case agg
                       when 'avg' then coalesce(avg(m.value), sum(m.sum) / nullif(sum(m.count), 0)::double precision)
                       when 'min' then coalesce(min(m.value), min(m.min))
                       when 'max' then coalesce(max(m.value), max(m.max))
                       when 'sum' then coalesce(sum(m.value), sum(m.sum))
                       else coalesce(count(m.value), 0) + coalesce(sum(m.count), 0)::double precision
                   end
              from otel.metrics as m
             where m.name = metric and m.time >= since and m.time < until
               and (metric_series.labels is null or m.labels @> metric_series.labels)
             group by 1
             order by 1;
        return;
    end if;

    -- rate and quantiles difference cumulative points per series: a point
    -- needs its predecessor, so points up to an hour (or a bucket, if
    -- longer) before since are read too: export intervals are often longer
    -- than a bucket.
    if agg = 'rate' then
        return query
            with points as (
                select m.time, m.start_time, m.value, m.temporality,
                       lag(m.value) over series as previous_value,
                       lag(m.start_time) over series as previous_start
                  from otel.metrics as m
                 where m.name = metric and m.type = 'sum' and m.is_monotonic is not false
                   and m.time >= since - greatest(bucket, interval '1 hour') and m.time < until
                   and (metric_series.labels is null or m.labels @> metric_series.labels)
                window series as (partition by m.service_name collate "C", m.labels::text collate "C",
                                     m.resource_attributes::text collate "C" order by m.time)
            ),
            increases as (
                select p.time,
                       case
                           when p.temporality = 'delta' then p.value
                           when p.previous_value is null then null
                           when p.value < p.previous_value or p.start_time is distinct from p.previous_start then p.value
                           else p.value - p.previous_value
                       end as increase
                  from points as p
                 where p.time >= since
            )
            select date_bin(bucket, i.time, timestamptz '2000-01-01 00:00:00+00'), sum(i.increase) / bucket_seconds
              from increases as i
             group by 1
            having count(i.increase) > 0
             order by 1;
        return;
    end if;

    quantile := substr(agg, 2)::double precision / 100;
    return query
        with points as (
            select m.time, m.start_time, m.temporality, m.bucket_counts, m.explicit_bounds,
                   lag(m.bucket_counts) over series as previous_counts,
                   lag(m.start_time) over series as previous_start,
                   lag(m.explicit_bounds) over series as previous_bounds
              from otel.metrics as m
             where m.name = metric and m.type = 'histogram' and m.bucket_counts is not null
               and m.time >= since - greatest(bucket, interval '1 hour') and m.time < until
               and (metric_series.labels is null or m.labels @> metric_series.labels)
            window series as (partition by m.service_name collate "C", m.labels::text collate "C",
                                     m.resource_attributes::text collate "C" order by m.time)
        ),
        -- Whether a point continues its predecessor is decided once per
        -- point (base: the counts to subtract, null after a reset or for
        -- delta points), not once per bucket count: materialized, or the
        -- planner would fold it into the per-count query below.
        deltas as materialized (
            select date_bin(bucket, p.time, timestamptz '2000-01-01 00:00:00+00') as b, p.time,
                   p.explicit_bounds::text collate "C" as layout, p.bucket_counts,
                   case
                       when p.temporality = 'delta' or p.start_time is distinct from p.previous_start
                         or p.explicit_bounds is distinct from p.previous_bounds
                         or cardinality(p.previous_counts) <> cardinality(p.bucket_counts)
                         or exists (select from unnest(p.bucket_counts, p.previous_counts) as d (now_count, then_count)
                                     where d.now_count < d.then_count)
                       then null
                       else p.previous_counts
                   end as base
              from points as p
             where p.time >= since
               and not (p.temporality = 'cumulative' and p.previous_counts is null)  -- no known start
        ),
        -- Bounds travel as text (a cheap grouping key) and are cast back once per bucket.
        per_bucket as (
            select d.b, d.layout, x.i, sum(x.c - coalesce(d.base[x.i], 0)) as c
              from deltas as d
             cross join lateral unnest(d.bucket_counts) with ordinality as x (c, i)
             group by d.b, d.layout, x.i
        ),
        per_layout as (
            select pb.b, pb.layout::double precision[] as explicit_bounds, array_agg(pb.c order by pb.i) as counts,
                   count(*) over (partition by pb.b) as layouts
              from per_bucket as pb
             group by pb.b, pb.layout
            having sum(pb.c) > 0
        )
        -- Counts of different bucket bounds cannot be added up.
        select l.b,
               case when l.layouts > 1
                    then otel.metric_series_mixed_bounds(metric, l.b)
                    else otel.histogram_quantile(quantile, l.counts, l.explicit_bounds) end
          from per_layout as l
         order by l.b;
end
$$;


--
-- Name: FUNCTION metric_series(name text, bucket interval, since timestamp with time zone, until timestamp with time zone, labels jsonb, agg text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.metric_series(name text, bucket interval, since timestamp with time zone, until timestamp with time zone, labels jsonb, agg text) IS 'One metric as (bucket_start, value) rows from since to until in buckets of the given length, points filtered by labels (jsonb containment); agg is avg, min, max, sum, count, rate (per second, counter resets handled, cumulative or delta) or p50, p90, p99 (from histogram buckets)';


--
-- Name: metric_series_mixed_bounds(text, timestamp with time zone); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.metric_series_mixed_bounds(metric text, bucket_start timestamp with time zone) RETURNS double precision
    LANGUAGE plpgsql
    AS $$
begin
    raise exception 'the histograms of % have different bucket bounds in the bucket starting at %: choose one kind with labels',
                    metric, bucket_start
        using errcode = 'invalid_parameter_value';
end
$$;


--
-- Name: FUNCTION metric_series_mixed_bounds(metric text, bucket_start timestamp with time zone); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.metric_series_mixed_bounds(metric text, bucket_start timestamp with time zone) IS 'Raises 22023: percentiles cannot mix histograms of different bucket bounds; internal to otel.metric_series()';


--
-- Name: move_logs(); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.move_logs(OUT moved bigint, OUT duplicates bigint) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


--
-- Name: FUNCTION move_logs(OUT moved bigint, OUT duplicates bigint); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.move_logs(OUT moved bigint, OUT duplicates bigint) IS 'Moves the valid log records of a flush into otel.logs; internal to otel.flush()';


--
-- Name: move_metrics(); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.move_metrics(OUT moved bigint, OUT duplicates bigint) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


--
-- Name: FUNCTION move_metrics(OUT moved bigint, OUT duplicates bigint); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.move_metrics(OUT moved bigint, OUT duplicates bigint) IS 'Moves the valid data points of a flush into otel.metrics; internal to otel.flush()';


--
-- Name: move_traces(); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.move_traces(OUT moved bigint, OUT duplicates bigint) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET default_statistics_target TO '30'
    AS $$
-- Valid spans into otel.traces: drop duplicates (within the batch and
-- against stored spans), upsert one signature per distinct signature
-- input, add the batch to otel.trace_summaries, and insert. Flushes are
-- serialised, so the duplicate check cannot race another flush.
declare
    stored_before bigint;
    first_start timestamptz;
    last_start timestamptz;
begin
    -- Row counts and the statistics of the columns the statements below
    -- join, group and filter on; sampling the JSON columns too would cost
    -- as much again.
    analyze pg_temp.otel_traces (err, trace_id, span_id, parent_span_id, start_time, signature_input, span_key);

    -- Spans repeated within the batch. Candidates first, by the 64-bit hash
    -- of their ids that typing computed in parallel: grouping every span by
    -- its two text ids needs several times the memory and spills to disk.
    -- Equal neighbours in key order: sorting a million keys takes half the
    -- time of hashing them into a million groups. Usually there are none,
    -- and then nothing else looks at every span.
    create temp table otel_repeated_keys on commit drop as
    select span_key
      from (select span_key, lag(span_key) over (order by span_key) as previous_key
              from pg_temp.otel_traces where err is null) as keys
     where span_key = previous_key;
    duplicates := 0;
    if exists (select from pg_temp.otel_repeated_keys) then
        delete from pg_temp.otel_traces as b
         using (select t.trace_id, t.span_id, min(t.n) as first_n
                  from pg_temp.otel_traces as t
                 where t.err is null and t.span_key in (select span_key from pg_temp.otel_repeated_keys)
                 group by t.trace_id, t.span_id
                having count(*) > 1) as repeated
         where b.trace_id = repeated.trace_id and b.span_id = repeated.span_id
           and b.n > repeated.first_n and b.err is null;
        get diagnostics duplicates = row_count;
    end if;
    -- Spans stored before. A span sent again has the same start time, so
    -- only the partitions of the batch's time range are searched: the check
    -- costs what the batch touches, not what otel.traces holds.
    select e.first_time, e.last_time into first_start, last_start
      from pg_temp.otel_batch_extent as e where e.kind = 'traces';
    if not found then
        raise exception 'otel.move_traces() needs the extent that otel.partition_working_set() records';
    end if;
    delete from pg_temp.otel_traces as b
     where b.err is null
       and exists (select 1 from otel.traces as t
                    where t.trace_id = b.trace_id and t.span_id = b.span_id
                      and t.start_time between first_start and last_start);
    get diagnostics stored_before = row_count;
    duplicates := duplicates + stored_before;

    create temp table otel_signature_ids (signature_input bigint primary key, signature_id bigint, created boolean)
        on commit drop;
    -- A table with statistics, so that the join below fetches the first
    -- span of each of the few distinct inputs by its position rather than
    -- reading every span again.
    create temp table otel_signature_inputs on commit drop as
    select signature_input, min(ctid) as first_span, count(*) as spans
      from pg_temp.otel_traces where err is null group by signature_input;
    analyze pg_temp.otel_signature_inputs;
    with signed as (
        select i.signature_input, i.spans,
               otel.span_signature(t.service_name, t.kind, t.name, t.status_code, t.status_message,
                                   t.attributes, t.events) as signature
          from pg_temp.otel_signature_inputs as i
          join pg_temp.otel_traces as t on t.ctid = i.first_span
    ),
    per_signature as (
        select signature, md5(signature)::uuid as text_hash, sum(spans) as spans from signed group by signature
    ),
    signature_ids as (
        insert into otel.span_signatures as s (text, span_count)
        select signature, spans from per_signature
        on conflict (text_hash) do update set span_count = s.span_count + excluded.span_count
        returning s.id, s.text_hash, s.xmax = 0 as created
    )
    insert into pg_temp.otel_signature_ids
    select s.signature_input, i.id, i.created
      from signed as s
      join signature_ids as i on i.text_hash = md5(s.signature)::uuid;
    if exists (select from pg_temp.otel_signature_ids where created) then
        perform pg_notify('otel_signatures', 'new');  -- wakes `otel-db embed --watch`
    end if;

    -- From the working set rather than the insert's returning rows: no
    -- second copy of every span to aggregate. Plain aggregates only: an
    -- ordered or distinct aggregate sorts the spans of every trace on its
    -- own, which cost more than all the rest of this statement. Most traces
    -- have one root span, which min() finds; only those with several look
    -- for the earliest. Ids are grouped byte-wise (collate "C"): the same
    -- groups, without the database's collation rules.
    with per_trace as (
        select (trace_id collate "C") collate "default" as trace_id,
               min(start_time) as start_time, max(end_time) as end_time,
               count(*) as span_count,
               count(*) filter (where status_code = 'ERROR') as error_count,
               count(*) filter (where parent_span_id is null) as roots,
               min(service_name) filter (where parent_span_id is null) as root_service,
               min(name) filter (where parent_span_id is null) as root_name,
               otel.text_array_agg(service_name) filter (where service_name is not null) as services
          from pg_temp.otel_traces
         where err is null
         group by trace_id collate "C"
    ),
    earliest_roots as (
        select distinct on (t.trace_id) t.trace_id, t.service_name, t.name
          from pg_temp.otel_traces as t
          join per_trace as p on p.trace_id = t.trace_id and p.roots > 1
         where t.err is null and t.parent_span_id is null
         order by t.trace_id, t.start_time, t.n
    )
    insert into otel.trace_summaries as s (
        trace_id, start_time, end_time, duration_ms, root_service, root_name,
        span_count, error_count, services)
    select p.trace_id, p.start_time, p.end_time, extract(epoch from p.end_time - p.start_time) * 1000,
           case when p.roots > 1 then r.service_name else p.root_service end,
           case when p.roots > 1 then r.name else p.root_name end,
           p.span_count, p.error_count,
           array(select distinct x from unnest(p.services) as x order by x)
      from per_trace as p
      left join earliest_roots as r on r.trace_id = p.trace_id
     -- In the primary key's order (bytewise: the same for hex ids, and
     -- sorted faster): its pages are visited in turn rather than at random,
     -- which takes a quarter off the upsert for a sort of a twentieth.
     order by p.trace_id collate "C"
    on conflict (trace_id) do update set
        start_time = least(s.start_time, excluded.start_time),
        end_time = greatest(s.end_time, excluded.end_time),
        duration_ms = extract(epoch from greatest(s.end_time, excluded.end_time)
                                         - least(s.start_time, excluded.start_time)) * 1000,
        root_service = coalesce(excluded.root_service, s.root_service),
        root_name = coalesce(excluded.root_name, s.root_name),
        span_count = s.span_count + excluded.span_count,
        error_count = s.error_count + excluded.error_count,
        services = array(select distinct x from unnest(s.services || excluded.services) as x order by x);

    insert into otel.traces (
        trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time,
        duration_ms, status_code, status_message, service_name, scope_name, scope_version,
        attributes, resource_attributes, events, links, signature_id)
    select t.trace_id, t.span_id, t.parent_span_id, t.trace_state, t.flags, t.name, t.kind,
           t.start_time, t.end_time, t.duration_ms, t.status_code, t.status_message,
           t.service_name, t.scope_name, t.scope_version,
           t.attributes, t.resource_attributes, t.events, t.links, s.signature_id
      from pg_temp.otel_traces as t
      join pg_temp.otel_signature_ids as s using (signature_input)
     where t.err is null;
    get diagnostics moved = row_count;
end
$$;


--
-- Name: FUNCTION move_traces(OUT moved bigint, OUT duplicates bigint); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.move_traces(OUT moved bigint, OUT duplicates bigint) IS 'Moves the valid spans of a flush into otel.traces with signatures and trace summaries; internal to otel.flush()';


--
-- Name: normalize_id(text, integer); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.normalize_id(value text, hex_digits integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    -- OTLP ids are case-insensitive hex; empty or all-zero means "no id".
    -- Null for no id and for what is not an id (otel.is_absent_id() tells
    -- the two apart). Ids already in the stored form are checked once,
    -- without trims or lower-casing.
    select case
        when octet_length(value) = hex_digits and value !~ '[^0-9a-f]' then nullif(value, repeat('0', hex_digits))
        when length(trim(value)) = hex_digits and lower(trim(value)) !~ '[^0-9a-f]'
            then nullif(lower(trim(value)), repeat('0', hex_digits))
    end
$$;


--
-- Name: FUNCTION normalize_id(value text, hex_digits integer); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.normalize_id(value text, hex_digits integer) IS 'An OTLP hex id in lower case; null when there is none (empty or all zeros) or it is not hex_digits hex digits';


--
-- Name: normalize_text(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.normalize_text(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
    -- Order matters: whole shapes (uuids, timestamps, addresses) before the
    -- digit runs they contain.
    -- No pattern tells the digits 1-9 apart (only 0 appears on its own, in
    -- 0x): otel.signature_input() relies on that.
    select nullif(left(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
           regexp_replace(regexp_replace(regexp_replace(regexp_replace(
               value,
               '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<uuid>', 'g'),
               '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?', '<time>', 'g'),
               '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}', '<email>', 'g'),
               '\m[0-9]{1,3}(\.[0-9]{1,3}){3}(:[0-9]{1,5})?\M', '<ip>', 'g'),
               '\m0x[0-9a-fA-F]+\M|\m[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\M|\m[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*\M', '<hex>', 'g'),
               '[0-9]+(\.[0-9]+)?', '<num>', 'g'),
               '\s+', ' ', 'g'),
               '^ | $', '', 'g'), 300), '')
$_$;


--
-- Name: FUNCTION normalize_text(value text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.normalize_text(value text) IS 'Replaces uuids, timestamps, e-mail and IP addresses, hex ids and numbers by placeholders, squeezes white space, keeps at most 300 characters';


--
-- Name: normalize_trace_id(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.normalize_trace_id(trace_id text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    AS $$
begin
    if trace_id is null or trim(trace_id) = '' then
        raise exception 'trace_id must be 32 hex digits, got %', coalesce(quote_literal(trace_id), 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    return lower(trim(trace_id));
end
$$;


--
-- Name: FUNCTION normalize_trace_id(trace_id text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.normalize_trace_id(trace_id text) IS 'A trace id as stored (trimmed, lower case); 22023 for null or empty';


--
-- Name: otlp_array(jsonb); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.otlp_array(arr jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
begin
    return coalesce(
        (select jsonb_agg(otel.otlp_value(e) order by i)
           from jsonb_array_elements(arr -> 'values') with ordinality as x(e, i)),
        '[]');
end
$$;


--
-- Name: FUNCTION otlp_array(arr jsonb); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.otlp_array(arr jsonb) IS 'OTLP ArrayValue to a JSON array';


--
-- Name: otlp_attributes(jsonb); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.otlp_attributes(key_values jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
-- PL/pgSQL rather than SQL: a SQL function that cannot be inlined is planned
-- again on every call, which cost more than the decoding itself. The
-- decoders spell this query out as a subquery for the attributes of every
-- record: inside the calling statement it costs half the function call.
begin
    return coalesce((select jsonb_object_agg(kv ->> 'key', otel.otlp_value(kv -> 'value'))
                       from jsonb_array_elements(key_values) as kv), '{}');
end
$$;


--
-- Name: FUNCTION otlp_attributes(key_values jsonb); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.otlp_attributes(key_values jsonb) IS 'OTLP/JSON KeyValue array to a JSON object (a repeated key keeps its last value)';


--
-- Name: otlp_invalid(text, text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.otlp_invalid(field text, value text) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
begin
    raise exception 'invalid OTLP %: %', field, left(coalesce(value, 'null'), 200)
        using errcode = 'invalid_text_representation';
end
$$;


--
-- Name: FUNCTION otlp_invalid(field text, value text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.otlp_invalid(field text, value text) IS 'Raises "invalid OTLP <field>": used inside decoding expressions for values that break the OTLP/JSON mapping';


--
-- Name: otlp_keys(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.otlp_keys(kind text, OUT resource_key text, OUT scope_key text, OUT record_key text) RETURNS record
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    select v.resource_key, v.scope_key, v.record_key
      from (values ('traces', 'resourceSpans', 'scopeSpans', 'spans'),
                   ('logs', 'resourceLogs', 'scopeLogs', 'logRecords'),
                   ('metrics', 'resourceMetrics', 'scopeMetrics', 'metrics'))
           as v (kind, resource_key, scope_key, record_key)
     where v.kind = otlp_keys.kind
$$;


--
-- Name: FUNCTION otlp_keys(kind text, OUT resource_key text, OUT scope_key text, OUT record_key text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.otlp_keys(kind text, OUT resource_key text, OUT scope_key text, OUT record_key text) IS 'The OTLP/JSON field names of a request of traces, logs or metrics: resource, scope and record arrays';


--
-- Name: otlp_kvlist(jsonb); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.otlp_kvlist(kvlist jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
begin
    return otel.otlp_attributes(kvlist -> 'values');
end
$$;


--
-- Name: FUNCTION otlp_kvlist(kvlist jsonb); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.otlp_kvlist(kvlist jsonb) IS 'OTLP KeyValueList to a JSON object';


--
-- Name: otlp_records(jsonb, text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.otlp_records(doc jsonb, kind text) RETURNS TABLE(rs integer, ss integer, rec integer, dp integer)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    -- Every record of a request by position; for metrics every data point
    -- of every metric.
    select x.rs, x.ss, x.rec, p.l::int
      from otel.otlp_request_records(doc, kind) as x
      left join lateral jsonb_array_elements(
                case when kind = 'metrics' then (otel.metric_data(x.record)).data -> 'dataPoints' end)
                with ordinality as p (v, l) on true
$$;


--
-- Name: FUNCTION otlp_records(doc jsonb, kind text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.otlp_records(doc jsonb, kind text) IS 'Positions (resource, scope, record, data point) of every record in an OTLP/JSON request';


--
-- Name: otlp_request_records(jsonb, text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.otlp_request_records(doc jsonb, kind text) RETURNS TABLE(rs integer, ss integer, rec integer, resource_attributes jsonb, scope jsonb, record jsonb)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    -- Every record of an OTLP/JSON request with its position (1-based), its
    -- resource's attributes (decoded once per resource: a function in FROM
    -- is called once per resource, never per record, and decoding takes 6 %
    -- less time than with a subquery fenced by offset 0) and its scope. One
    -- inlinable query, shared by the decoders of all three kinds.
    select r.i::int, s.j::int, x.k::int, resource.attributes, s.v -> 'scope', x.v
      from otel.otlp_keys(kind) as key
     cross join lateral jsonb_array_elements(doc -> key.resource_key) with ordinality as r (v, i)
     cross join lateral otel.otlp_attributes(r.v -> 'resource' -> 'attributes') as resource (attributes)
     cross join lateral jsonb_array_elements(r.v -> key.scope_key) with ordinality as s (v, j)
     cross join lateral jsonb_array_elements(s.v -> key.record_key) with ordinality as x (v, k)
$$;


--
-- Name: FUNCTION otlp_request_records(doc jsonb, kind text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.otlp_request_records(doc jsonb, kind text) IS 'Every record of an OTLP/JSON request of traces, logs or metrics, with its position, resource attributes and scope';


--
-- Name: otlp_single_record(jsonb, text, integer, integer, integer, integer); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.otlp_single_record(doc jsonb, kind text, rs integer, ss integer, rec integer, dp integer) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    -- A request holding only the given record, with its resource and scope:
    -- what the dead-letter queue keeps, and what a retry loads again.
    with key as (select * from otel.otlp_keys(kind)),
    parts as (
        select key.*,
               doc -> key.resource_key -> (rs - 1) as resource,
               doc -> key.resource_key -> (rs - 1) -> key.scope_key -> (ss - 1) as scope,
               doc -> key.resource_key -> (rs - 1) -> key.scope_key -> (ss - 1) -> key.record_key -> (rec - 1) as record
          from key
    ),
    one as (
        select parts.*,
               case when dp is null then record
                    else (select jsonb_set(record, array[f, 'dataPoints'],
                                           jsonb_build_array(record -> f -> 'dataPoints' -> (dp - 1)))
                            from unnest(array['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary']) as f
                           where record ? f
                           limit 1)
               end as single
          from parts
    )
    select jsonb_build_object(resource_key, jsonb_build_array(
               resource || jsonb_build_object(scope_key, jsonb_build_array(
                   scope || jsonb_build_object(record_key, jsonb_build_array(single))))))
      from one
$$;


--
-- Name: FUNCTION otlp_single_record(doc jsonb, kind text, rs integer, ss integer, rec integer, dp integer); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.otlp_single_record(doc jsonb, kind text, rs integer, ss integer, rec integer, dp integer) IS 'An OTLP/JSON request with only the record at the given position, its resource and its scope';


--
-- Name: otlp_value(jsonb); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.otlp_value(v jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
    select case
        when jsonb_typeof(v) is distinct from 'object' then null
        when v ? 'stringValue' then v -> 'stringValue'
        when v ? 'intValue' then
            case when otel.is_integer_text(v ->> 'intValue', 20, true)
                 then ((v ->> 'intValue')::numeric)::text::jsonb
                 else otel.otlp_invalid('intValue', v ->> 'intValue') end
        when v ? 'doubleValue' then
            case when jsonb_typeof(v -> 'doubleValue') = 'number' then v -> 'doubleValue'
                 when v ->> 'doubleValue' in ('NaN', 'Infinity', '-Infinity') then v -> 'doubleValue'
                 when v ->> 'doubleValue' ~ '^\s*-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?\s*$'
                 then ((v ->> 'doubleValue')::numeric)::text::jsonb
                 else otel.otlp_invalid('doubleValue', v ->> 'doubleValue') end
        when v ? 'boolValue' then
            case when jsonb_typeof(v -> 'boolValue') = 'boolean' then v -> 'boolValue'
                 when v ->> 'boolValue' in ('true', 'false') then (v ->> 'boolValue')::jsonb
                 else otel.otlp_invalid('boolValue', v ->> 'boolValue') end
        when v ? 'bytesValue' then v -> 'bytesValue'
        when v ? 'arrayValue' then otel.otlp_array(v -> 'arrayValue')
        when v ? 'kvlistValue' then otel.otlp_kvlist(v -> 'kvlistValue')
    end
$_$;


--
-- Name: FUNCTION otlp_value(v jsonb); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.otlp_value(v jsonb) IS 'OTLP/JSON AnyValue to plain JSON; integers exact, NaN and infinities as strings, bytes as base64 text; null for an empty AnyValue';


--
-- Name: parse_double(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.parse_double(value text) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
    select case
        when value ~ '^\s*-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?\s*$'
          or trim(value) in ('NaN', 'Infinity', '-Infinity') then value::double precision
    end
$_$;


--
-- Name: FUNCTION parse_double(value text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.parse_double(value text) IS 'A JSON number, NaN, Infinity or -Infinity to double precision; null when unreadable';


--
-- Name: parse_flags(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.parse_flags(value text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    select case when otel.is_integer_text(value, 10, false) and value::bigint <= 4294967295 then value::bigint end
$$;


--
-- Name: FUNCTION parse_flags(value text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.parse_flags(value text) IS 'OTLP flags (a 32-bit unsigned integer) to bigint; null when unreadable';


--
-- Name: parse_json(text, jsonb); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.parse_json(value text, default_value jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    -- Raises on malformed JSON: the flush isolates such a row on its slow path.
    -- Empty arrays and objects (most spans' events and links) are constants,
    -- not parsed.
    select case when value is null or value = '' then default_value
                when value = '[]' then '[]'::jsonb
                when value = '{}' then '{}'::jsonb
                else value::jsonb end
$$;


--
-- Name: FUNCTION parse_json(value text, default_value jsonb); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.parse_json(value text, default_value jsonb) IS 'JSON text to jsonb, default_value for null or empty text; raises on malformed JSON';


--
-- Name: parse_severity(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.parse_severity(value text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $_$
    -- OTLP SeverityNumber by number (0-24) or name (INFO, SEVERITY_NUMBER_WARN3).
    select case
        when value is null or trim(value) = '' then null
        when trim(value) ~ '^[0-9]{1,2}$' and trim(value)::int <= 24 then trim(value)::int
        else (select (array[1, 5, 9, 13, 17, 21])[array_position(
                         array['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'], m[1])]
                     + coalesce(nullif(m[2], '')::int - 1, 0)
                from regexp_match(regexp_replace(upper(trim(value)), '^SEVERITY_NUMBER_', ''),
                                  '^(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)([2-4]?)$') as m)
    end
$_$;


--
-- Name: FUNCTION parse_severity(value text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.parse_severity(value text) IS 'OTLP severity number by number (0-24) or name (INFO, SEVERITY_NUMBER_WARN3); null when unreadable';


--
-- Name: parse_span_kind(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.parse_span_kind(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    -- The usual spellings first, without the costly regexp_replace.
    select case value
        when 'SERVER' then 'SERVER' when 'CLIENT' then 'CLIENT' when 'INTERNAL' then 'INTERNAL'
        when 'PRODUCER' then 'PRODUCER' when 'CONSUMER' then 'CONSUMER' when 'UNSPECIFIED' then 'UNSPECIFIED'
        when '2' then 'SERVER' when '3' then 'CLIENT' when '1' then 'INTERNAL'
        else case regexp_replace(upper(coalesce(trim(value), '')), '^SPAN_KIND_', '')
            when '' then 'UNSPECIFIED' when '0' then 'UNSPECIFIED' when 'UNSPECIFIED' then 'UNSPECIFIED'
            when '1' then 'INTERNAL' when 'INTERNAL' then 'INTERNAL'
            when '2' then 'SERVER' when 'SERVER' then 'SERVER'
            when '3' then 'CLIENT' when 'CLIENT' then 'CLIENT'
            when '4' then 'PRODUCER' when 'PRODUCER' then 'PRODUCER'
            when '5' then 'CONSUMER' when 'CONSUMER' then 'CONSUMER'
        end
    end
$$;


--
-- Name: FUNCTION parse_span_kind(value text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.parse_span_kind(value text) IS 'OTLP span kind by number (0-5) or name (SERVER, SPAN_KIND_SERVER) to its name; missing is UNSPECIFIED; null when unknown';


--
-- Name: parse_status_code(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.parse_status_code(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    select case value
        when 'UNSET' then 'UNSET' when 'OK' then 'OK' when 'ERROR' then 'ERROR'
        else case regexp_replace(upper(coalesce(trim(value), '')), '^STATUS_CODE_', '')
            when '' then 'UNSET' when '0' then 'UNSET' when 'UNSET' then 'UNSET'
            when '1' then 'OK' when 'OK' then 'OK'
            when '2' then 'ERROR' when 'ERROR' then 'ERROR'
        end
    end
$$;


--
-- Name: FUNCTION parse_status_code(value text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.parse_status_code(value text) IS 'OTLP status code by number (0-2) or name (ERROR, STATUS_CODE_ERROR); missing is UNSET; null when unknown';


--
-- Name: parse_temporality(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.parse_temporality(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    select case regexp_replace(lower(coalesce(trim(value), '')), '^aggregation_temporality_', '')
        when '' then 'unspecified' when '0' then 'unspecified' when 'unspecified' then 'unspecified'
        when '1' then 'delta' when 'delta' then 'delta'
        when '2' then 'cumulative' when 'cumulative' then 'cumulative'
    end
$$;


--
-- Name: FUNCTION parse_temporality(value text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.parse_temporality(value text) IS 'OTLP aggregation temporality by number (0-2) or name to unspecified, delta or cumulative; null when unknown';


--
-- Name: parse_time(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.parse_time(value text) RETURNS timestamp with time zone
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $_$
    -- Unix nanoseconds (OTLP fixed64, up to 2^64-1, leading zeros allowed;
    -- exact to the microsecond, never rounded through float64) or RFC 3339
    -- text. Text without an offset is UTC inside otel.flush(), which runs
    -- with timezone = UTC. Nanoseconds up to 8999999999999999999 (the year
    -- 2255) take the fast path: recognised without a counted regular
    -- expression ([0-9]{1,19} costs a microsecond a value; a length and a
    -- negated class, a twentieth of that), and as whole microseconds below
    -- 2^53, which interval arithmetic multiplies exactly (a third of the
    -- cost of to_timestamp() plus an interval).
    select case
        when octet_length(value) between 1 and 19 and value !~ '[^0-9]'
         and (octet_length(value) < 19 or value collate "C" <= '8999999999999999999') then
            timestamptz 'epoch' + (value::bigint / 1000) * interval '1 microsecond'
        when value ~ '^\s*0*[0-9]{1,20}\s*$' and value::numeric <= 18446744073709551615 then  -- leading zeros too
            to_timestamp(div(value::numeric, 1000000000)::float8)
            + div(mod(value::numeric, 1000000000), 1000)::int * interval '1 microsecond'
        when value ~ '^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?\s*([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?\s*$' then
            value::timestamptz
    end
$_$;


--
-- Name: FUNCTION parse_time(value text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.parse_time(value text) IS 'Unix nanoseconds (up to 2^64-1) or RFC 3339 text to timestamptz, null when unreadable';


--
-- Name: partition_working_set(text, text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.partition_working_set(kind text, time_column text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
-- Creates the partitions the valid rows of pg_temp.otel_<kind> need, at
-- most new_days_limit new days in one flush: a batch spread over thousands
-- of days would otherwise exhaust the lock table and fail every flush. Rows
-- of the days left over get err (so a dead letter that otel.retry_dlq()
-- loads in a later run). Records the batch's extent in
-- pg_temp.otel_batch_extent, which the steps after it read instead of
-- scanning every row again.
declare
    new_days_limit constant integer := 32;
    extent text := format('select min(%1$I) filter (where err is null), max(%1$I) filter (where err is null),
                                  count(*) filter (where err is not null)
                             from pg_temp.%2$I', time_column, 'otel_' || kind);
    first_time timestamptz;
    last_time timestamptz;
    invalid_rows bigint;
    first_day date;
    last_day date;
    days date[];
begin
    execute extent into first_time, last_time, invalid_rows;
    first_day := (first_time at time zone 'UTC')::date;
    last_day := (last_time at time zone 'UTC')::date;
    -- Batches usually span a day or two: then those days are the candidates,
    -- found without computing the day of every row (an empty day between
    -- the first and the last gets its partition too). Otherwise the days
    -- that have rows, and only those.
    if first_day is null then
        days := '{}';  -- no valid rows
    elsif last_day - first_day <= 2 then
        days := array(select d::date from generate_series(first_day, last_day, interval '1 day') as d);
    else
        execute format('select array_agg(distinct (%I at time zone ''UTC'')::date) from pg_temp.%I where err is null',
                       time_column, 'otel_' || kind) into days;
    end if;
    days := array(select day from unnest(days) as day
                   where to_regclass(format('otel.%I', kind || '_p' || to_char(day, 'YYYYMMDD'))) is null
                   order by day);
    perform otel.ensure_partitions(kind, days[1:new_days_limit]);
    if cardinality(days) > new_days_limit then
        execute format($sql$
            update pg_temp.%1$I
               set err = format('no partition for %%s: one flush creates at most %%s new days; otel.retry_dlq() loads it later',
                                (%2$I at time zone 'UTC')::date, %3$s)
             where err is null and (%2$I at time zone 'UTC')::date = any ($1)
        $sql$, 'otel_' || kind, time_column, new_days_limit) using days[new_days_limit + 1:];
        execute extent into first_time, last_time, invalid_rows;
    end if;
    insert into pg_temp.otel_batch_extent values (kind, first_time, last_time, invalid_rows);
end
$_$;


--
-- Name: FUNCTION partition_working_set(kind text, time_column text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.partition_working_set(kind text, time_column text) IS 'Creates the partitions the rows of a flush need, at most 32 new days at a time; internal to otel.flush()';


--
-- Name: process_working_set(); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.process_working_set() RETURNS TABLE(kind text, moved bigint, duplicates bigint)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


--
-- Name: FUNCTION process_working_set(); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.process_working_set() IS 'Decodes, validates and moves the working set of a flush or a retry; internal';


--
-- Name: reject_invalid_rows(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.reject_invalid_rows(kind text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
-- Queues every row that failed validation for the dead-letter queue: a
-- staging row (from the working set or a claim table) as a JSON object of
-- its columns, a decoded record as an OTLP/JSON request holding just that
-- record.
begin
    if (select e.invalid_rows from pg_temp.otel_batch_extent as e where e.kind = reject_invalid_rows.kind) = 0 then
        return;  -- nothing to look for
    end if;
    execute format($sql$
        insert into pg_temp.otel_rejects
        select r.dlq_id, %1$L,
               case when r.payload_id is null then 'otel.%1$s_staging' else 'otel.otlp_staging' end,
               case when t.claimed is not null
                    then jsonb_strip_nulls(to_jsonb(c))::text
                    when r.payload_id is null
                    then jsonb_strip_nulls(to_jsonb(r) - '{n,dlq_id,payload_id,rs,ss,rec,dp}'::text[])::text
                    else otel.otlp_single_record(p.doc, %1$L, r.rs, r.ss, r.rec, r.dp)::text end,
               case when r.payload_id is null then 'row-json' else 'text' end,
               t.err
          from pg_temp.otel_%1$s as t
          left join pg_temp.otel_%1$s_rows as r on r.n = t.n
          left join otel.claimed_%1$s as c on c.ctid = t.claimed
          left join pg_temp.otel_otlp as p on p.id = r.payload_id
         where t.err is not null
    $sql$, kind);
end
$_$;


--
-- Name: FUNCTION reject_invalid_rows(kind text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.reject_invalid_rows(kind text) IS 'Moves rows that failed validation to the reject list of the flush; internal to otel.flush()';


--
-- Name: retry_dlq(integer); Type: PROCEDURE; Schema: otel; Owner: -
--

CREATE PROCEDURE otel.retry_dlq(IN max_retries integer DEFAULT 3)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    SET "TimeZone" TO 'UTC'
    SET jit TO 'off'
    AS $_$
-- Re-validates every unprocessed letter tried fewer than max_retries times
-- (after a fix to the data, or to otel_db). Letters that pass move to their
-- final table and are marked processed; the others count the attempt.
-- Letters of bytes PostgreSQL cannot store as text only count the attempt.
declare
    kind text;
begin
    if max_retries is null or max_retries < 1 then
        raise exception 'max_retries must be a positive integer, got %', coalesce(max_retries::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    perform pg_advisory_xact_lock(hashtext('otel.flush'));
    perform otel.flush_prepare();

    create temp table otel_retried on commit drop as
        select id, telemetry_type, source, raw_data, raw_format
          from otel.telemetry_dlq
         where processed_at is null and retry_count < max_retries
         order by id
           for update skip locked;

    insert into pg_temp.otel_otlp (dlq_id, payload, doc)
    select id, raw_data, otel.try_jsonb(raw_data)
      from otel_retried
     where raw_format = 'text';
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        execute format($sql$
            insert into pg_temp.otel_%1$s_rows (dlq_id, %2$s)
            select r.id, %2$s
              from otel_retried as r
             cross join lateral jsonb_populate_record(null::otel.%1$s_staging, otel.try_jsonb(r.raw_data)) as s
             where r.raw_format = 'row-json' and r.telemetry_type = %1$L
               and jsonb_typeof(otel.try_jsonb(r.raw_data)) = 'object'
        $sql$, kind, otel.staging_columns(kind));
    end loop;
    insert into pg_temp.otel_rejects
    select id, telemetry_type, source, raw_data, raw_format,
           'this row-json letter cannot be read back as a staging row (not a JSON object, or it holds \u0000): repair raw_data'
      from otel_retried
     where raw_format = 'row-json'
       and (telemetry_type not in ('traces', 'logs', 'metrics')
            or jsonb_typeof(otel.try_jsonb(raw_data)) is distinct from 'object');
    insert into pg_temp.otel_rejects
    select id, telemetry_type, source, raw_data, raw_format,
           'bytes that PostgreSQL cannot store as text: fix the source and load it again'
      from otel_retried
     where raw_format = 'bytea-escape';

    perform otel.process_working_set();
    perform otel.store_rejects();
    update otel.telemetry_dlq as d
       set processed_at = now()
      from otel_retried as r
     where d.id = r.id
       and not exists (select 1 from pg_temp.otel_rejects as x where x.dlq_id = r.id);
    drop table otel_retried;
end
$_$;


--
-- Name: PROCEDURE retry_dlq(IN max_retries integer); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON PROCEDURE otel.retry_dlq(IN max_retries integer) IS 'Re-validates unprocessed dead letters tried fewer than max_retries times: moves the good ones, counts the attempt on the rest';


--
-- Name: schedule_flush(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.schedule_flush(every text DEFAULT NULL::text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
-- Registers the pg_cron job otel-flush ("call otel.flush()" in this
-- database) and otel-maintenance (partitions ahead, hourly). every: 'N
-- seconds' (pg_cron 1.5 and later), 'N minutes', or a cron expression;
-- default every 5 seconds, or every minute on pg_cron 1.4.
declare
    version text;
    second_schedules boolean;
    schedule text;
    seconds integer;
    minutes integer;
    job_id bigint;
begin
    select j ->> 'extversion' into version
      from otel.cron_query('select extversion from pg_extension where extname = ''pg_cron''') as j;
    second_schedules := string_to_array(split_part(version, '-', 1), '.')::int[] >= array[1, 5];
    every := lower(trim(every));
    if every is null then
        schedule := case when second_schedules then '5 seconds' else '* * * * *' end;
    elsif every ~ '^[0-9]+ ?(s|sec|secs|second|seconds)$' then
        seconds := substring(every from '^[0-9]+')::int;
        if not second_schedules then
            raise exception 'pg_cron % schedules by the minute at best; use ''1 minute'' or a cron expression', version
                using errcode = 'invalid_parameter_value';
        elsif seconds not between 1 and 59 then
            raise exception 'every: seconds must be between 1 and 59, got %', seconds
                using errcode = 'invalid_parameter_value';
        end if;
        schedule := seconds || ' seconds';
    elsif every ~ '^[0-9]+ ?(m|min|mins|minute|minutes)$' then
        minutes := substring(every from '^[0-9]+')::int;
        if minutes not between 1 and 59 then
            raise exception 'every: minutes must be between 1 and 59, got %', minutes
                using errcode = 'invalid_parameter_value';
        end if;
        schedule := case minutes when 1 then '* * * * *' else '*/' || minutes || ' * * * *' end;
    elsif every ~ '^\S+( \S+){4}$' or every ~ '^@' then
        schedule := every;
    else
        raise exception 'every must be ''N seconds'', ''N minutes'' or a cron expression, got %', every
            using errcode = 'invalid_parameter_value';
    end if;

    if exists (select 1 from otel.cron_query(
                   'select database from cron.job where jobname in (''otel-flush'', ''otel-maintenance'')') as j
                where j ->> 'database' <> current_database()) then
        raise exception 'the pg_cron job otel-flush already belongs to another database; unschedule it there first'
            using errcode = 'object_in_use';
    end if;
    select (j ->> 'id')::bigint into job_id
      from otel.cron_query(format('select cron.schedule_in_database(%L, %L, %L, %L) as id',
                                  'otel-flush', schedule, 'call otel.flush()', current_database())) as j;
    perform otel.cron_query(format('select cron.schedule_in_database(%L, %L, %L, %L) as id',
                                   'otel-maintenance', '17 * * * *', 'call otel.maintain()', current_database()));
    return job_id;
end
$_$;


--
-- Name: FUNCTION schedule_flush(every text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.schedule_flush(every text) IS 'Registers the pg_cron jobs otel-flush (default every 5 seconds, every minute on pg_cron 1.4) and otel-maintenance; returns the otel-flush job id';


--
-- Name: search_logs(text, timestamp with time zone, timestamp with time zone, text, integer, integer); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.search_logs(query text, since timestamp with time zone DEFAULT NULL::timestamp with time zone, until timestamp with time zone DEFAULT NULL::timestamp with time zone, service text DEFAULT NULL::text, min_severity integer DEFAULT NULL::integer, lim integer DEFAULT 100) RETURNS TABLE("time" timestamp with time zone, severity_number integer, severity_text text, service_name text, body text, trace_id text, span_id text, rank real)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- websearch_to_tsquery syntax ("quoted phrase", or, -not), on the stored
-- body_tsv and its full-text index.
declare
    tsquery tsquery;
begin
    if query is null or trim(query) = '' then
        raise exception 'query must be words to search for (websearch syntax), got %',
                        coalesce(quote_literal(query), 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_time_range(since, until, false);
    perform otel.check_limit(lim);
    if min_severity is not null and min_severity not between 1 and 24 then
        raise exception 'min_severity must be an OTLP severity number 1..24 (9 = INFO, 17 = ERROR), got %', min_severity
            using errcode = 'invalid_parameter_value';
    end if;
    tsquery := websearch_to_tsquery('english', query);
    if numnode(tsquery) = 0 then
        return;  -- only stop words
    end if;
    return query
        select l.time, l.severity_number, l.severity_text, l.service_name, l.body, l.trace_id, l.span_id,
               ts_rank(l.body_tsv, tsquery)
          from otel.logs as l
         where l.body_tsv @@ tsquery
           and (since is null or l.time >= since)
           and (until is null or l.time < until)
           and (service is null or l.service_name = service)
           and (min_severity is null or l.severity_number >= min_severity)
         order by 8 desc, l.time desc
         limit lim;
end
$$;


--
-- Name: FUNCTION search_logs(query text, since timestamp with time zone, until timestamp with time zone, service text, min_severity integer, lim integer); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.search_logs(query text, since timestamp with time zone, until timestamp with time zone, service text, min_severity integer, lim integer) IS 'Full-text search of log bodies (websearch syntax), best ranked first, then newest; optional time range, service and minimum severity; at most lim (1..10000)';


--
-- Name: set_retention(text, interval); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.set_retention(kind text, keep interval) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- keep null removes the limit (keep everything).
begin
    if kind is null or kind not in ('traces', 'logs', 'metrics') then
        raise exception 'kind must be traces, logs or metrics, got %', coalesce(quote_literal(kind), 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if keep is null then
        delete from otel.retention as r where r.kind = set_retention.kind;
        return;
    end if;
    if keep < interval '1 day' then
        raise exception 'keep must be at least 1 day (whole partitions are dropped), got %', keep
            using errcode = 'invalid_parameter_value';
    end if;
    insert into otel.retention as r (kind, keep) values (set_retention.kind, keep)
    on conflict on constraint retention_pkey do update set keep = excluded.keep;
end
$$;


--
-- Name: FUNCTION set_retention(kind text, keep interval); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.set_retention(kind text, keep interval) IS 'Keeps traces, logs or metrics for at least keep (1 day or more; null: forever); otel.maintain() drops whole daily partitions older than that';


--
-- Name: signature_input(text, text, text, text, text, jsonb, jsonb); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.signature_input(service_name text, kind text, name text, status_code text, status_message text, attributes jsonb, events jsonb) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    -- A hash of exactly the fields otel.span_signature() reads, cheap enough
    -- for every span (one inlined expression): spans with the same input
    -- get the same signature, so the costly normalisation runs once per
    -- distinct input instead of once per span. Each field is hashed with
    -- the hash of the fields after it as the seed: no text is concatenated
    -- (a tenth of this function's cost), and the fields need no separator.
    -- \x02 stands for a missing value, which otel.span_signature() tells
    -- from an empty one. Error messages count with every digit but 0 read
    -- as 1: otel.normalize_text() tells those apart nowhere, so messages
    -- that differ only in them (ids, counts) normalise the same, and one of
    -- them stands for all. 64 bits, chained over 15 fields: two of a flush's
    -- distinct inputs share a hash with odds of about 1 in 10^9 at 30,000
    -- inputs, and then only the signature label of their spans is affected.
    select hashtextextended(coalesce(service_name, e'\x02'),
           hashtextextended(coalesce(kind, e'\x02'),
           hashtextextended(coalesce(name, e'\x02'),
           hashtextextended(case when status_code = 'ERROR'
                                 then e'\x03' || coalesce(translate(status_message, '23456789', '11111111'), e'\x02')
                                 else e'\x02' end,
           hashtextextended(coalesce(otel.exception_attribute(events, 'exception.type'), e'\x02'),
           hashtextextended(coalesce(translate(otel.exception_attribute(events, 'exception.message'), '23456789', '11111111'), e'\x02'),
           hashtextextended(coalesce(attributes ->> 'http.request.method', attributes ->> 'http.method', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'http.route', attributes ->> 'url.template', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'http.response.status_code', attributes ->> 'http.status_code', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'db.system.name', attributes ->> 'db.system', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'db.operation.name', attributes ->> 'db.operation', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'db.collection.name', attributes ->> 'db.sql.table', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'messaging.system', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'messaging.operation.type', attributes ->> 'messaging.operation', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'messaging.destination.name', e'\x02'), 0)))))))))))))))
$$;


--
-- Name: FUNCTION signature_input(service_name text, kind text, name text, status_code text, status_message text, attributes jsonb, events jsonb); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.signature_input(service_name text, kind text, name text, status_code text, status_message text, attributes jsonb, events jsonb) IS 'A hash of the span fields otel.span_signature() reads: spans with equal hashes share a signature';


--
-- Name: similar_traces(text, integer, double precision, text, timestamp with time zone); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.similar_traces(of_trace text, k integer DEFAULT 10, min_similarity double precision DEFAULT 0.85, service text DEFAULT NULL::text, since timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(trace_id text, span_id text, service_name text, name text, status_code text, status_message text, duration_ms double precision, start_time timestamp with time zone, attributes jsonb, similarity double precision)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $_$
-- (The parameter is of_trace: trace_id names a result column.)
-- The query is the mean of the embeddings of the trace's most telling
-- spans: its error spans when it has any, else its root span (or its first
-- span when the root is missing). Model vectors win over fallback ones.
declare
    wanted text := lower(trim(of_trace));
    telling bigint[];
    model text;
    query vector;
begin
    if wanted is null or wanted !~ '^[0-9a-f]{32}$' then
        raise exception 'trace_id must be a trace id (32 hex digits), got %', coalesce(quote_literal(left(of_trace, 100)), 'null')
            using errcode = 'invalid_parameter_value',
                  hint = 'to search by an embedding, cast it: otel.similar_traces(''[…]''::vector)';
    end if;
    perform otel.check_similarity_arguments(k, min_similarity);
    with spans as (
        select t.signature_id, t.status_code, t.parent_span_id, t.start_time
          from otel.traces as t
         where t.trace_id = wanted
    )
    select coalesce(nullif(array_agg(s.signature_id) filter (where s.status_code = 'ERROR'), '{}'),
                    (array_agg(s.signature_id order by s.parent_span_id is not null, s.start_time))[1:1])
      into telling
      from spans as s;
    select g.embedding_model into model
      from otel.span_signatures as g
     where g.id = any (telling) and g.embedding is not null
     order by g.embedding_model = 'fallback-hash', g.embedding_model
     limit 1;
    if model is null then
        return;  -- an unknown trace, or one whose signatures are not embedded yet
    end if;
    select avg(g.embedding) into query
      from otel.span_signatures as g
     where g.id = any (telling) and g.embedding_model = model;
    return query select * from otel.similar_traces_search(query, k, min_similarity, service, since, model, wanted);
end
$_$;


--
-- Name: FUNCTION similar_traces(of_trace text, k integer, min_similarity double precision, service text, since timestamp with time zone); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.similar_traces(of_trace text, k integer, min_similarity double precision, service text, since timestamp with time zone) IS 'Traces that resemble the given one: its error spans (else its root span) are the query; one row per trace, best first, never the trace itself; empty for an unknown trace';


--
-- Name: similar_traces(public.vector, integer, double precision, text, timestamp with time zone, text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.similar_traces(query public.vector, k integer DEFAULT 10, min_similarity double precision DEFAULT 0.85, service text DEFAULT NULL::text, since timestamp with time zone DEFAULT NULL::timestamp with time zone, model text DEFAULT 'all-MiniLM-L6-v2'::text) RETURNS TABLE(trace_id text, span_id text, service_name text, name text, status_code text, status_message text, duration_ms double precision, start_time timestamp with time zone, attributes jsonb, similarity double precision)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
begin
    if query is null then
        raise exception 'query must be a vector of 384 dimensions, got null' using errcode = 'invalid_parameter_value';
    end if;
    if vector_dims(query) <> 384 then
        raise exception 'query has % dimensions; span signatures are embedded in 384 (all-MiniLM-L6-v2)',
                        vector_dims(query)
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_similarity_arguments(k, min_similarity);
    if model is null or model = '' then
        raise exception 'model must name the model that embedded the query, e.g. all-MiniLM-L6-v2'
            using errcode = 'invalid_parameter_value';
    end if;
    return query select * from otel.similar_traces_search(query, k, min_similarity, service, since, model, null);
end
$$;


--
-- Name: FUNCTION similar_traces(query public.vector, k integer, min_similarity double precision, service text, since timestamp with time zone, model text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.similar_traces(query public.vector, k integer, min_similarity double precision, service text, since timestamp with time zone, model text) IS 'Traces whose spans are most similar to the query embedding (384 dimensions, made by model), one row per trace (its most similar span), best first; only signatures embedded by the same model are compared';


--
-- Name: similar_traces_search(public.vector, integer, double precision, text, timestamp with time zone, text, text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.similar_traces_search(query public.vector, k integer, min_similarity double precision, service text, since timestamp with time zone, model text, excluded_trace text) RETURNS TABLE(trace_id text, span_id text, service_name text, name text, status_code text, status_message text, duration_ms double precision, start_time timestamp with time zone, attributes jsonb, similarity double precision)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    SET "hnsw.iterative_scan" TO 'strict_order'
    SET "hnsw.ef_search" TO '40'
    AS $$
-- Signatures nearest first; for each, its newest spans, one per trace not
-- seen yet, until k traces. A trace's row is its span with the most
-- similar signature.
declare
    signature record;
    span record;
    seen text[] := '{}';
begin
    <<signatures>>
    for signature in
        select s.id, 1 - (s.embedding <=> query) as similarity
          from otel.span_signatures as s
         where s.embedding_model = model
         order by s.embedding <=> query
         limit 20000  -- what hnsw.max_scan_tuples lets an iterative scan visit by default
    loop
        exit when signature.similarity < min_similarity;
        for span in
            select t.trace_id, t.span_id, t.service_name, t.name, t.status_code, t.status_message,
                   t.duration_ms, t.start_time, t.attributes
              from otel.traces as t
             where t.signature_id = signature.id
               and (service is null or t.service_name = service)
               and (since is null or t.start_time >= since)
               and t.trace_id is distinct from excluded_trace
             order by t.start_time desc
        loop
            continue when span.trace_id = any (seen);
            seen := seen || span.trace_id;
            trace_id := span.trace_id;
            span_id := span.span_id;
            service_name := span.service_name;
            name := span.name;
            status_code := span.status_code;
            status_message := span.status_message;
            duration_ms := span.duration_ms;
            start_time := span.start_time;
            attributes := span.attributes;
            similarity := signature.similarity;
            return next;
            exit signatures when cardinality(seen) >= k;
        end loop;
    end loop;
end
$$;


--
-- Name: FUNCTION similar_traces_search(query public.vector, k integer, min_similarity double precision, service text, since timestamp with time zone, model text, excluded_trace text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.similar_traces_search(query public.vector, k integer, min_similarity double precision, service text, since timestamp with time zone, model text, excluded_trace text) IS 'The search behind both otel.similar_traces() overloads (arguments already checked)';


--
-- Name: span_signature(text, text, text, text, text, jsonb, jsonb); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.span_signature(service_name text, kind text, name text, status_code text, status_message text, attributes jsonb, events jsonb) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
-- Reads the same fields as otel.signature_input(): change both together.
-- PL/pgSQL for its variables: the exception event is looked up once, and an
-- exception message equal to the status message (the usual case) is
-- normalised once.
declare
    exception_attributes jsonb;
    exception_type text;
    exception_message text;
    error_message text;
    http_status text := coalesce(attributes ->> 'http.response.status_code', attributes ->> 'http.status_code');
begin
    exception_attributes := otel.exception_event_attributes(events);
    exception_type := exception_attributes ->> 'exception.type';
    exception_message := exception_attributes ->> 'exception.message';
    if status_code = 'ERROR' then
        error_message := otel.normalize_text(status_message);
    end if;
    return left(concat_ws(' | ',
        service_name,
        lower(kind) || ' ' || otel.normalize_text(name),
        case when status_code = 'ERROR' then concat_ws(': ', 'error', error_message) end,
        case when exception_type is not null or exception_message is not null
             then concat_ws(': ', 'exception ' || exception_type,
                            case when status_code = 'ERROR' and exception_message = status_message then error_message
                                 else otel.normalize_text(exception_message) end) end,
        nullif(concat_ws(' ',
            coalesce(attributes ->> 'http.request.method', attributes ->> 'http.method'),
            otel.normalize_text(coalesce(attributes ->> 'http.route', attributes ->> 'url.template')),
            http_status || coalesce(' ' || otel.http_reason(http_status), '')), ''),
        nullif(concat_ws(' ',
            coalesce(attributes ->> 'db.system.name', attributes ->> 'db.system'),
            coalesce(attributes ->> 'db.operation.name', attributes ->> 'db.operation'),
            otel.normalize_text(coalesce(attributes ->> 'db.collection.name', attributes ->> 'db.sql.table'))), ''),
        nullif(concat_ws(' ',
            attributes ->> 'messaging.system',
            coalesce(attributes ->> 'messaging.operation.type', attributes ->> 'messaging.operation'),
            otel.normalize_text(attributes ->> 'messaging.destination.name')), '')
    ), 1000);
end
$$;


--
-- Name: FUNCTION span_signature(service_name text, kind text, name text, status_code text, status_message text, attributes jsonb, events jsonb); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.span_signature(service_name text, kind text, name text, status_code text, status_message text, attributes jsonb, events jsonb) IS 'The normalised text a span is embedded by: service, kind and name, error status and message, exception type and message, HTTP method, route and status with its reason phrase, database system and operation, messaging destination';


--
-- Name: staging_columns(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.staging_columns(kind text) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    select string_agg(quote_ident(attname), ', ' order by attnum)
      from pg_attribute
     where attrelid = format('otel.%I', kind || '_staging')::regclass and attnum > 0 and not attisdropped
$$;


--
-- Name: FUNCTION staging_columns(kind text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.staging_columns(kind text) IS 'The column list of otel.<kind>_staging, quoted and comma-separated';


--
-- Name: store_embeddings(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.store_embeddings(model text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
-- Writes the vectors a worker copied into its temporary table
-- pg_temp.otel_embeddings (id bigint, embedding real[]) in one update, and
-- returns how many signatures it stored.
declare
    bad record;
    stored bigint;
begin
    if model is null or model = '' then
        raise exception 'model must name the embedding model, e.g. all-MiniLM-L6-v2'
            using errcode = 'invalid_parameter_value';
    end if;
    select e.id, cardinality(e.embedding) as dimensions into bad
      from pg_temp.otel_embeddings as e
     where cardinality(e.embedding) is distinct from 384
     limit 1;
    if found then
        raise exception 'the embedding of signature % has % dimensions; otel.span_signatures holds 384',
                        bad.id, coalesce(bad.dimensions, 0)
            using errcode = 'invalid_parameter_value';
    end if;
    update otel.span_signatures as s
       set embedding = e.embedding::vector(384), embedding_model = model, embedded_at = now(),
           last_error = null, next_attempt_at = null
      from pg_temp.otel_embeddings as e
     where s.id = e.id;
    get diagnostics stored = row_count;
    return stored;
end
$$;


--
-- Name: FUNCTION store_embeddings(model text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.store_embeddings(model text) IS 'Stores the vectors in pg_temp.otel_embeddings (id, embedding real[384]) on their signatures, in one update';


--
-- Name: store_rejects(); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.store_rejects() RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- Writes the reject list of a flush or retry to otel.telemetry_dlq. A
-- letter that a retry took back and that fails again is updated in place
-- (retry_count + 1, the new error); anything else is a new letter.
declare
    stored bigint;
begin
    with numbered as (
        select r.*, row_number() over (partition by r.dlq_id order by r.error_message) as nth
          from pg_temp.otel_rejects as r
    ),
    retried as (
        update otel.telemetry_dlq as d
           set retry_count = d.retry_count + 1, error_message = n.error_message,
               raw_data = n.raw_data, raw_format = n.raw_format, telemetry_type = n.telemetry_type
          from numbered as n
         where n.dlq_id = d.id and n.nth = 1
        returning d.id
    ),
    new_letters as (
        insert into otel.telemetry_dlq (telemetry_type, source, raw_data, raw_format, error_message, retry_count)
        select n.telemetry_type, n.source, n.raw_data, n.raw_format, n.error_message,
               coalesce((select d.retry_count + 1 from otel.telemetry_dlq as d where d.id = n.dlq_id), 0)
          from numbered as n
         where n.dlq_id is null or n.nth > 1
        returning id
    )
    select (select count(*) from retried) + (select count(*) from new_letters) into stored;
    return stored;
end
$$;


--
-- Name: FUNCTION store_rejects(); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.store_rejects() IS 'Writes the rejects of a flush or retry to otel.telemetry_dlq; internal';


--
-- Name: trace_logs(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.trace_logs(trace_id text) RETURNS TABLE("time" timestamp with time zone, severity_number integer, severity_text text, service_name text, body text, span_id text, attributes jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- Logs carry the trace id; with the trace's time range (give or take a day
-- for clock skew and late records) only its partitions are searched.
declare
    wanted text := otel.normalize_trace_id(trace_logs.trace_id);
    first_start timestamptz;
    last_end timestamptz;
begin
    select s.start_time - interval '1 day', s.end_time + interval '1 day' into first_start, last_end
      from otel.trace_summaries as s
     where s.trace_id = wanted;
    return query
        select l.time, l.severity_number, l.severity_text, l.service_name, l.body, l.span_id, l.attributes
          from otel.logs as l
         where l.trace_id = wanted
           and (first_start is null or l.time between first_start and last_end)
         order by l.time, l.severity_number;
end
$$;


--
-- Name: FUNCTION trace_logs(trace_id text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.trace_logs(trace_id text) IS 'The log records correlated to a trace, by time; no rows for an unknown trace';


--
-- Name: trace_spans(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.trace_spans(trace_id text) RETURNS TABLE(span_id text, parent_span_id text, depth integer, name text, service_name text, kind text, start_time timestamp with time zone, end_time timestamp with time zone, duration_ms double precision, status_code text, status_message text, attributes jsonb, events jsonb, links jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- The trace's time range in otel.trace_summaries confines the lookup to the
-- partitions it spans, where the (trace_id, span_id) index finds its spans.
-- Depth first, children by start time; a span whose parent is missing is
-- shown as a root (depth 0).
declare
    wanted text := otel.normalize_trace_id(trace_spans.trace_id);
    first_start timestamptz;
    last_start timestamptz;
begin
    select s.start_time, s.end_time into first_start, last_start
      from otel.trace_summaries as s
     where s.trace_id = wanted;
    if not found then
        return;
    end if;
    return query
        with recursive spans as (
            select t.*, lpad((extract(epoch from t.start_time) * 1000000)::bigint::text, 20, '0') || t.span_id as sort_key
              from otel.traces as t
             where t.trace_id = wanted and t.start_time between first_start and last_start
        ),
        tree as (
            select s.span_id, 0 as depth, array[s.sort_key] as path, array[s.span_id] as ids
              from spans as s
             where s.parent_span_id is null or s.parent_span_id = s.span_id
                or not exists (select from spans as p where p.span_id = s.parent_span_id)
            union all
            select c.span_id, tree.depth + 1, tree.path || c.sort_key, tree.ids || c.span_id
              from tree
              join spans as c on c.parent_span_id = tree.span_id
             where c.span_id <> all (tree.ids)  -- a cycle in bad data stops here
        ),
        placed as (
            select tree.span_id, tree.depth, tree.path from tree
            union all
            -- Spans only reachable through a cycle: shown as roots.
            select s.span_id, 0, array[s.sort_key]
              from spans as s
             where not exists (select from tree where tree.span_id = s.span_id)
        )
        select s.span_id, s.parent_span_id, placed.depth, s.name, s.service_name, s.kind, s.start_time, s.end_time,
               s.duration_ms, s.status_code, s.status_message, s.attributes, s.events, s.links
          from placed
          join spans as s on s.span_id = placed.span_id
         order by placed.path;
end
$$;


--
-- Name: FUNCTION trace_spans(trace_id text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.trace_spans(trace_id text) IS 'The spans of a trace as a tree, depth first (children by start time), with depth and parent; no rows for an unknown trace';


--
-- Name: traces_by_error(timestamp with time zone, timestamp with time zone, text, integer); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.traces_by_error(since timestamp with time zone, until timestamp with time zone DEFAULT now(), service text DEFAULT NULL::text, lim integer DEFAULT 100) RETURNS TABLE(trace_id text, span_id text, parent_span_id text, service_name text, name text, kind text, start_time timestamp with time zone, duration_ms double precision, status_message text, exception_type text, exception_message text, attributes jsonb)
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
    perform otel.check_time_range(since, until, true);
    perform otel.check_limit(lim);
    return query
        select t.trace_id, t.span_id, t.parent_span_id, t.service_name, t.name, t.kind, t.start_time,
               t.duration_ms, t.status_message,
               otel.exception_attribute(t.events, 'exception.type'),
               otel.exception_attribute(t.events, 'exception.message'),
               t.attributes
          from otel.traces as t
         where t.status_code = 'ERROR'
           and t.start_time >= since and t.start_time < until
           and (service is null or t.service_name = service)
         order by t.start_time desc
         limit lim;
end
$$;


--
-- Name: FUNCTION traces_by_error(since timestamp with time zone, until timestamp with time zone, service text, lim integer); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.traces_by_error(since timestamp with time zone, until timestamp with time zone, service text, lim integer) IS 'Error spans started in [since, until), newest first, optionally of one service, at most lim (1..10000), with their exception type and message';


--
-- Name: try_jsonb(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.try_jsonb(value text) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $$
begin
    return value::jsonb;
exception when others then
    return null;
end
$$;


--
-- Name: FUNCTION try_jsonb(value text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.try_jsonb(value text) IS 'JSON text to jsonb, null when malformed (one subtransaction a call: for whole OTLP requests, not per value)';


--
-- Name: type_claimed(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.type_claimed(kind text) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- Types the rows of otel.claimed_<kind> straight into pg_temp.otel_<kind>
-- in parallel workers (otel.create_typed()): the typed path's costliest
-- step on every core. The claim table keeps its rows for the dead letters
-- until the flush empties it. False, with nothing changed, when the table
-- is empty or some row defeats the casts: otel.load_claimed() then takes
-- its rows into the working set, where otel.type_rows() isolates the bad
-- one.
declare
    has_rows boolean;
begin
    -- The flush empties the claim table afterwards with truncate, which is
    -- only right when this transaction sees every committed claim: under
    -- repeatable read its snapshot may predate a concurrent flush's claim.
    if current_setting('transaction_isolation') <> 'read committed' then
        return false;
    end if;
    execute format('select exists (select from otel.%I)', 'claimed_' || kind) into strict has_rows;
    if not has_rows then
        return false;
    end if;
    perform otel.create_typed(kind, otel.claim_table_rows(kind));
    return true;
exception when others then
    if otel.is_server_trouble(sqlstate) then raise; end if;
    return false;
end
$$;


--
-- Name: FUNCTION type_claimed(kind text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.type_claimed(kind text) IS 'Validates and casts a whole claim table in one parallel statement; internal to otel.flush()';


--
-- Name: type_rows(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.type_rows(kind text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
-- Types pg_temp.otel_<kind>_rows into pg_temp.otel_<kind>: in parallel
-- when there are many, else in one set-based statement; when a value
-- defeats it (malformed JSON text, an impossible date), chunk by chunk,
-- then row by row within the failing chunk.
declare
    chunk constant integer := 1000;
    last_n integer;
    chunk_start integer;
    row_n integer;
    type_range text := format('insert into pg_temp.%I %s',
                              'otel_' || kind, otel.typing_query(kind, otel.working_set_rows(kind)));
begin
    execute format('select coalesce(max(n), 0) from pg_temp.otel_%s_rows', kind) into last_n;
    if last_n = 0 or otel.type_rows_in_parallel(kind) then
        return;
    end if;
    begin
        execute type_range using 1, last_n;
        return;
    exception when others then
        if otel.is_server_trouble(sqlstate) then raise; end if;
        null;  -- some row is unreadable: isolate it below
    end;
    -- Each chunk and row below picks its rows by n.
    execute format('create index on pg_temp.otel_%s_rows (n)', kind);
    execute format('analyze pg_temp.otel_%s_rows', kind);
    for chunk_start in 1..last_n by chunk loop
        begin
            execute type_range using chunk_start, least(chunk_start + chunk - 1, last_n);
        exception when others then
            if otel.is_server_trouble(sqlstate) then raise; end if;
            for row_n in chunk_start..least(chunk_start + chunk - 1, last_n) loop
                begin
                    execute type_range using row_n, row_n;
                exception when others then
                    if otel.is_server_trouble(sqlstate) then raise; end if;
                    execute format('insert into pg_temp.otel_%s (n, err) values ($1, $2)', kind)
                        using row_n, 'unreadable row: ' || sqlerrm;
                end;
            end loop;
        end;
    end loop;
end
$_$;


--
-- Name: FUNCTION type_rows(kind text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.type_rows(kind text) IS 'Validates and casts the text rows of one kind, isolating unreadable rows; internal to otel.flush()';


--
-- Name: type_rows_in_parallel(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.type_rows_in_parallel(kind text) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- Types pg_temp.otel_<kind>_rows (decoded OTLP records, mostly) through an
-- unlogged copy that parallel workers can read: copying costs a third of
-- what the second core saves. False, with nothing changed, when the rows
-- are too few for a parallel scan, when pg_temp.otel_<kind> has rows
-- already (a claim typed in place), or when some row defeats the casts.
declare
    unlogged_copy text := 'typing_' || kind || '_rows';
    typed_rows boolean;
begin
    if pg_relation_size(format('pg_temp.%I', 'otel_' || kind || '_rows'))
       < pg_size_bytes(current_setting('min_parallel_table_scan_size')) then
        return false;
    end if;
    execute format('select exists (select from pg_temp.%I)', 'otel_' || kind) into strict typed_rows;
    if typed_rows then
        return false;
    end if;
    -- Flushes are serialised: no other transaction makes a table of this name.
    execute format('create unlogged table otel.%I as select * from pg_temp.%I', unlogged_copy, 'otel_' || kind || '_rows');
    perform otel.create_typed(kind, format('(select w.*, null::tid as claimed from otel.%I as w) as r', unlogged_copy));
    execute format('drop table otel.%I', unlogged_copy);
    return true;
exception when others then
    if otel.is_server_trouble(sqlstate) then raise; end if;
    return false;
end
$$;


--
-- Name: FUNCTION type_rows_in_parallel(kind text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.type_rows_in_parallel(kind text) IS 'Types a large working set in parallel workers through an unlogged copy; internal to otel.flush()';


--
-- Name: typing_query(text, text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.typing_query(kind text, source text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


--
-- Name: FUNCTION typing_query(kind text, source text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.typing_query(kind text, source text) IS 'The query that validates and casts the rows of source for traces, logs or metrics; internal to otel.flush()';


--
-- Name: typing_query_logs(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.typing_query_logs(source text) RETURNS text
    LANGUAGE sql STABLE
    AS $_$
-- The query that validates and casts the log rows of source (an aliased
-- relation r with the text columns of otel.logs_staging, n and claimed):
-- the rows of pg_temp.otel_logs. time falls back to observed_time when it
-- is absent or 0, as the OTLP spec says.
select format($query$
    select p.n, p.claimed,
           case
               when coalesce(p.given_time, '') <> '' and p.time is null
                   then format('time "%%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(p.given_time, 100))
               when coalesce(p.given_observed_time, '') <> '' and p.observed_time is null
                   then format('observed_time "%%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(p.given_observed_time, 100))
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
                   otel.parse_time(r.time) as time,
                   otel.parse_time(r.observed_time) as observed_time,
                   otel.parse_severity(r.severity_number) as severity_number,
                   otel.normalize_id(r.trace_id, 32) as trace_id,
                   otel.normalize_id(r.span_id, 16) as span_id,
                   otel.parse_flags(r.flags) as flags,
                   otel.parse_json(r.attributes, '{}') as attributes,
                   otel.parse_json(r.resource_attributes, '{}') as resource_attributes,
                   row_number() over () as barrier  -- see otel.typing_query()
              from %s) as p
$query$, source)
$_$;


--
-- Name: FUNCTION typing_query_logs(source text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.typing_query_logs(source text) IS 'The query that validates and casts the log rows of a flush; internal to otel.flush()';


--
-- Name: typing_query_metrics(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.typing_query_metrics(source text) RETURNS text
    LANGUAGE sql STABLE
    AS $_$
-- The query that validates and casts the metric data points of source (an
-- aliased relation r with the text columns of otel.metrics_staging, n and
-- claimed): the rows of pg_temp.otel_metrics. Integer values are also kept
-- exactly in int_value; counts are numeric (OTLP counts are uint64).
select format($query$
    select p.n, p.claimed,
           case
               when coalesce(p.given_time, '') = '' then 'time is missing'
               when p.time is null then format('time "%%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(p.given_time, 100))
               when coalesce(p.given_start_time, '') <> '' and p.start_time is null
                   then format('start_time "%%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(p.given_start_time, 100))
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
                   otel.parse_time(r.time) as time,
                   otel.parse_time(r.start_time) as start_time,
                   case regexp_replace(lower(trim(r.type)), '[^a-z]', '', 'g')
                       when 'gauge' then 'gauge' when 'sum' then 'sum' when 'histogram' then 'histogram'
                       when 'exponentialhistogram' then 'exponential_histogram' when 'summary' then 'summary'
                   end as type,
                   otel.parse_double(r.value) as value,
                   case when otel.is_integer_text(r.value, 20, true) then r.value::numeric end as int_value,
                   case when otel.is_integer_text(r.count, 20, false) then r.count::numeric end as count,
                   otel.parse_double(r.sum) as sum,
                   otel.parse_double(r.min) as min,
                   otel.parse_double(r.max) as max,
                   otel.parse_temporality(r.temporality) as temporality,
                   case lower(trim(r.is_monotonic)) when 'true' then true when 't' then true when '1' then true
                       when 'false' then false when 'f' then false when '0' then false end as is_monotonic,
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
                   row_number() over () as barrier  -- see otel.typing_query()
              from %s) as p
$query$, source)
$_$;


--
-- Name: FUNCTION typing_query_metrics(source text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.typing_query_metrics(source text) IS 'The query that validates and casts the metric data points of a flush; internal to otel.flush()';


--
-- Name: typing_query_traces(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.typing_query_traces(source text) RETURNS text
    LANGUAGE sql STABLE
    AS $_$
-- The query that validates and casts span rows of source (an aliased
-- relation r with the text columns of otel.traces_staging, n, claimed and
-- the JSON columns of decoded spans):
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
               when p.start_time is null then format('start_time "%%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(p.given_start_time, 100))
               when p.start_time = 'epoch' then 'start_time is 0 (unset)'
               when p.given_end_time is null or p.given_end_time = '' then 'end_time is missing'
               when p.end_time is null then format('end_time "%%s" is neither Unix nanoseconds (0 to 2^64-1) nor RFC 3339', left(p.given_end_time, 100))
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
                   otel.parse_time(r.start_time) as start_time,
                   otel.parse_time(r.end_time) as end_time,
                   otel.parse_flags(r.flags) as flags,
                   coalesce(r.attributes_jsonb, otel.parse_json(r.attributes, '{}')) as attributes,
                   coalesce(r.resource_attributes_jsonb, otel.parse_json(r.resource_attributes, '{}')) as resource_attributes,
                   coalesce(r.events_jsonb, otel.parse_json(r.events, '[]')) as events,
                   coalesce(r.links_jsonb, otel.parse_json(r.links, '[]')) as links,
                   row_number() over () as barrier  -- see otel.typing_query()
              from %s) as p
$query$, source)
$_$;


--
-- Name: FUNCTION typing_query_traces(source text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.typing_query_traces(source text) IS 'The query that validates and casts the span rows of a flush; internal to otel.flush()';


--
-- Name: unschedule_flush(); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.unschedule_flush() RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
-- Removes this database's otel-flush and otel-maintenance jobs; false when
-- there were none.
declare
    removed integer;
begin
    select count(*) into removed
      from otel.cron_query(format(
               'select cron.unschedule(jobid) from cron.job where jobname in (%L, %L) and database = %L',
               'otel-flush', 'otel-maintenance', current_database()));
    return removed > 0;
end
$$;


--
-- Name: FUNCTION unschedule_flush(); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.unschedule_flush() IS 'Removes the pg_cron jobs otel-flush and otel-maintenance of this database; false when there were none';


--
-- Name: working_set_rows(text); Type: FUNCTION; Schema: otel; Owner: -
--

CREATE FUNCTION otel.working_set_rows(kind text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $_$
    -- The rows n = $1 .. $2; claimed is null: they are not in a claim table.
    select format('(select w.*, null::tid as claimed from pg_temp.%I as w where w.n between $1 and $2) as r',
                  'otel_' || kind || '_rows')
$_$;


--
-- Name: FUNCTION working_set_rows(kind text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON FUNCTION otel.working_set_rows(kind text) IS 'The rows $1 .. $2 of pg_temp.otel_<kind>_rows as a source of the typing query; internal to otel.flush()';


--
-- Name: text_array_agg(text); Type: AGGREGATE; Schema: otel; Owner: -
--

CREATE AGGREGATE otel.text_array_agg(text) (
    SFUNC = array_agg_transfn,
    STYPE = internal,
    SSPACE = 128,
    FINALFUNC = array_agg_finalfn,
    FINALFUNC_EXTRA
);


--
-- Name: AGGREGATE text_array_agg(text); Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON AGGREGATE otel.text_array_agg(text) IS 'array_agg(text) with a realistic state size for the planner; internal to otel.flush()';


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: claimed_logs; Type: TABLE; Schema: otel; Owner: -
--

CREATE UNLOGGED TABLE otel.claimed_logs (
    "time" text,
    observed_time text,
    severity_number text,
    severity_text text,
    body text,
    trace_id text,
    span_id text,
    flags text,
    service_name text,
    scope_name text,
    scope_version text,
    attributes text,
    resource_attributes text,
    event_name text
);


--
-- Name: claimed_metrics; Type: TABLE; Schema: otel; Owner: -
--

CREATE UNLOGGED TABLE otel.claimed_metrics (
    "time" text,
    start_time text,
    name text,
    description text,
    type text,
    unit text,
    value text,
    count text,
    sum text,
    min text,
    max text,
    bucket_counts text,
    explicit_bounds text,
    quantiles text,
    exponential text,
    exemplars text,
    temporality text,
    is_monotonic text,
    flags text,
    labels text,
    resource_attributes text,
    service_name text,
    scope_name text,
    scope_version text
);


--
-- Name: claimed_otlp; Type: TABLE; Schema: otel; Owner: -
--

CREATE UNLOGGED TABLE otel.claimed_otlp (
    payload text
);
ALTER TABLE ONLY otel.claimed_otlp ALTER COLUMN payload SET STORAGE EXTERNAL;


--
-- Name: claimed_traces; Type: TABLE; Schema: otel; Owner: -
--

CREATE UNLOGGED TABLE otel.claimed_traces (
    trace_id text,
    span_id text,
    parent_span_id text,
    trace_state text,
    flags text,
    name text,
    kind text,
    start_time text,
    end_time text,
    status_code text,
    status_message text,
    service_name text,
    scope_name text,
    scope_version text,
    attributes text,
    resource_attributes text,
    events text,
    links text
);


--
-- Name: span_signatures; Type: TABLE; Schema: otel; Owner: -
--

CREATE TABLE otel.span_signatures (
    id bigint NOT NULL,
    text text NOT NULL,
    text_hash uuid GENERATED ALWAYS AS ((md5(text))::uuid) STORED,
    embedding public.vector(384),
    embedding_model text,
    embedded_at timestamp with time zone,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text,
    next_attempt_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    span_count bigint DEFAULT 0 NOT NULL
);


--
-- Name: embedding_status; Type: VIEW; Schema: otel; Owner: -
--

CREATE VIEW otel.embedding_status AS
 SELECT count(*) FILTER (WHERE ((span_signatures.embedding IS NULL) AND (span_signatures.attempts < otel.embedding_max_attempts()))) AS pending,
    count(*) FILTER (WHERE ((span_signatures.embedding IS NULL) AND ((span_signatures.attempts >= 1) AND (span_signatures.attempts <= (otel.embedding_max_attempts() - 1))))) AS retrying,
    count(*) FILTER (WHERE ((span_signatures.embedding IS NULL) AND (span_signatures.attempts >= otel.embedding_max_attempts()))) AS failed,
    count(*) FILTER (WHERE ((span_signatures.embedding IS NOT NULL) AND (span_signatures.embedding_model <> 'fallback-hash'::text))) AS embedded,
    count(*) FILTER (WHERE (span_signatures.embedding_model = 'fallback-hash'::text)) AS fallback,
    min(span_signatures.created_at) FILTER (WHERE ((span_signatures.embedding IS NULL) AND (span_signatures.attempts < otel.embedding_max_attempts()))) AS oldest_pending_at,
    max(span_signatures.embedded_at) AS last_embedded_at
   FROM otel.span_signatures;


--
-- Name: VIEW embedding_status; Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON VIEW otel.embedding_status IS 'The embedding queue at a glance: pending (incl. retrying), failed (out of attempts), embedded by the model, embedded by the fallback';


--
-- Name: flush_runs; Type: TABLE; Schema: otel; Owner: -
--

CREATE TABLE otel.flush_runs (
    id bigint NOT NULL,
    started_at timestamp with time zone NOT NULL,
    duration interval NOT NULL,
    spans bigint DEFAULT 0 NOT NULL,
    logs bigint DEFAULT 0 NOT NULL,
    metric_points bigint DEFAULT 0 NOT NULL,
    otlp_requests bigint DEFAULT 0 NOT NULL,
    dead_lettered bigint DEFAULT 0 NOT NULL,
    duplicates bigint DEFAULT 0 NOT NULL,
    truncated_staging text[] DEFAULT '{}'::text[] NOT NULL
);


--
-- Name: flush_runs_id_seq; Type: SEQUENCE; Schema: otel; Owner: -
--

ALTER TABLE otel.flush_runs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME otel.flush_runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: logs; Type: TABLE; Schema: otel; Owner: -
--

CREATE TABLE otel.logs (
    "time" timestamp with time zone NOT NULL,
    observed_time timestamp with time zone,
    severity_number integer,
    severity_text text,
    body text,
    trace_id text,
    span_id text,
    flags bigint,
    service_name text,
    scope_name text,
    scope_version text,
    attributes jsonb DEFAULT '{}'::jsonb NOT NULL,
    resource_attributes jsonb DEFAULT '{}'::jsonb NOT NULL,
    event_name text,
    body_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, "left"(COALESCE(body, ''::text), 65536))) STORED
)
PARTITION BY RANGE ("time");


--
-- Name: logs_staging; Type: TABLE; Schema: otel; Owner: -
--

CREATE UNLOGGED TABLE otel.logs_staging (
    "time" text,
    observed_time text,
    severity_number text,
    severity_text text,
    body text,
    trace_id text,
    span_id text,
    flags text,
    service_name text,
    scope_name text,
    scope_version text,
    attributes text,
    resource_attributes text,
    event_name text
)
WITH (autovacuum_vacuum_scale_factor='0', autovacuum_vacuum_threshold='1000', autovacuum_vacuum_cost_delay='0');


--
-- Name: metrics; Type: TABLE; Schema: otel; Owner: -
--

CREATE TABLE otel.metrics (
    "time" timestamp with time zone NOT NULL,
    start_time timestamp with time zone,
    name text NOT NULL,
    description text,
    type text NOT NULL,
    unit text,
    value double precision,
    int_value numeric,
    count numeric,
    sum double precision,
    min double precision,
    max double precision,
    bucket_counts numeric[],
    explicit_bounds double precision[],
    quantiles jsonb,
    exponential jsonb,
    exemplars jsonb,
    temporality text,
    is_monotonic boolean,
    flags bigint,
    labels jsonb DEFAULT '{}'::jsonb NOT NULL,
    resource_attributes jsonb DEFAULT '{}'::jsonb NOT NULL,
    service_name text,
    scope_name text,
    scope_version text,
    CONSTRAINT metrics_temporality_check CHECK ((temporality = ANY (ARRAY['unspecified'::text, 'delta'::text, 'cumulative'::text]))),
    CONSTRAINT metrics_type_check CHECK ((type = ANY (ARRAY['gauge'::text, 'sum'::text, 'histogram'::text, 'exponential_histogram'::text, 'summary'::text])))
)
PARTITION BY RANGE ("time");


--
-- Name: metrics_staging; Type: TABLE; Schema: otel; Owner: -
--

CREATE UNLOGGED TABLE otel.metrics_staging (
    "time" text,
    start_time text,
    name text,
    description text,
    type text,
    unit text,
    value text,
    count text,
    sum text,
    min text,
    max text,
    bucket_counts text,
    explicit_bounds text,
    quantiles text,
    exponential text,
    exemplars text,
    temporality text,
    is_monotonic text,
    flags text,
    labels text,
    resource_attributes text,
    service_name text,
    scope_name text,
    scope_version text
)
WITH (autovacuum_vacuum_scale_factor='0', autovacuum_vacuum_threshold='1000', autovacuum_vacuum_cost_delay='0');


--
-- Name: otlp_staging; Type: TABLE; Schema: otel; Owner: -
--

CREATE UNLOGGED TABLE otel.otlp_staging (
    payload text
)
WITH (autovacuum_vacuum_scale_factor='0', autovacuum_vacuum_threshold='100', autovacuum_vacuum_cost_delay='0');
ALTER TABLE ONLY otel.otlp_staging ALTER COLUMN payload SET STORAGE EXTERNAL;


--
-- Name: retention; Type: TABLE; Schema: otel; Owner: -
--

CREATE TABLE otel.retention (
    kind text NOT NULL,
    keep interval NOT NULL,
    CONSTRAINT retention_keep_check CHECK ((keep > '00:00:00'::interval)),
    CONSTRAINT retention_kind_check CHECK ((kind = ANY (ARRAY['traces'::text, 'logs'::text, 'metrics'::text])))
);


--
-- Name: span_signatures_id_seq; Type: SEQUENCE; Schema: otel; Owner: -
--

ALTER TABLE otel.span_signatures ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME otel.span_signatures_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: telemetry_dlq; Type: TABLE; Schema: otel; Owner: -
--

CREATE TABLE otel.telemetry_dlq (
    id bigint NOT NULL,
    telemetry_type text NOT NULL,
    source text NOT NULL,
    raw_data text NOT NULL,
    raw_format text DEFAULT 'text'::text NOT NULL,
    error_message text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    processed_at timestamp with time zone,
    retry_count integer DEFAULT 0 NOT NULL,
    CONSTRAINT telemetry_dlq_format_check CHECK ((raw_format = ANY (ARRAY['text'::text, 'row-json'::text, 'bytea-escape'::text]))),
    CONSTRAINT telemetry_dlq_type_check CHECK ((telemetry_type = ANY (ARRAY['traces'::text, 'logs'::text, 'metrics'::text, 'otlp'::text])))
);


--
-- Name: COLUMN telemetry_dlq.raw_data; Type: COMMENT; Schema: otel; Owner: -
--

COMMENT ON COLUMN otel.telemetry_dlq.raw_data IS 'The rejected input. raw_format text: as received; row-json: a staging row as a JSON object of its columns; bytea-escape: bytes PostgreSQL cannot store as text, recover them with decode(raw_data, ''escape'')';


--
-- Name: telemetry_dlq_id_seq; Type: SEQUENCE; Schema: otel; Owner: -
--

ALTER TABLE otel.telemetry_dlq ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME otel.telemetry_dlq_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: trace_summaries; Type: TABLE; Schema: otel; Owner: -
--

CREATE TABLE otel.trace_summaries (
    trace_id text NOT NULL,
    start_time timestamp with time zone NOT NULL,
    end_time timestamp with time zone NOT NULL,
    duration_ms double precision NOT NULL,
    root_service text,
    root_name text,
    span_count bigint NOT NULL,
    error_count bigint NOT NULL,
    services text[] DEFAULT '{}'::text[] NOT NULL
);


--
-- Name: traces; Type: TABLE; Schema: otel; Owner: -
--

CREATE TABLE otel.traces (
    trace_id text NOT NULL,
    span_id text NOT NULL,
    parent_span_id text,
    trace_state text,
    flags bigint,
    name text NOT NULL,
    kind text NOT NULL,
    start_time timestamp with time zone NOT NULL,
    end_time timestamp with time zone NOT NULL,
    duration_ms double precision NOT NULL,
    status_code text NOT NULL,
    status_message text,
    service_name text,
    scope_name text,
    scope_version text,
    attributes jsonb DEFAULT '{}'::jsonb NOT NULL,
    resource_attributes jsonb DEFAULT '{}'::jsonb NOT NULL,
    events jsonb DEFAULT '[]'::jsonb NOT NULL,
    links jsonb DEFAULT '[]'::jsonb NOT NULL,
    signature_id bigint,
    CONSTRAINT traces_kind_check CHECK ((kind = ANY (ARRAY['UNSPECIFIED'::text, 'INTERNAL'::text, 'SERVER'::text, 'CLIENT'::text, 'PRODUCER'::text, 'CONSUMER'::text]))),
    CONSTRAINT traces_status_check CHECK ((status_code = ANY (ARRAY['UNSET'::text, 'OK'::text, 'ERROR'::text])))
)
PARTITION BY RANGE (start_time);


--
-- Name: traces_staging; Type: TABLE; Schema: otel; Owner: -
--

CREATE UNLOGGED TABLE otel.traces_staging (
    trace_id text,
    span_id text,
    parent_span_id text,
    trace_state text,
    flags text,
    name text,
    kind text,
    start_time text,
    end_time text,
    status_code text,
    status_message text,
    service_name text,
    scope_name text,
    scope_version text,
    attributes text,
    resource_attributes text,
    events text,
    links text
)
WITH (autovacuum_vacuum_scale_factor='0', autovacuum_vacuum_threshold='1000', autovacuum_vacuum_cost_delay='0');


--
-- Name: flush_runs flush_runs_pkey; Type: CONSTRAINT; Schema: otel; Owner: -
--

ALTER TABLE ONLY otel.flush_runs
    ADD CONSTRAINT flush_runs_pkey PRIMARY KEY (id);


--
-- Name: retention retention_pkey; Type: CONSTRAINT; Schema: otel; Owner: -
--

ALTER TABLE ONLY otel.retention
    ADD CONSTRAINT retention_pkey PRIMARY KEY (kind);


--
-- Name: span_signatures span_signatures_pkey; Type: CONSTRAINT; Schema: otel; Owner: -
--

ALTER TABLE ONLY otel.span_signatures
    ADD CONSTRAINT span_signatures_pkey PRIMARY KEY (id);


--
-- Name: span_signatures span_signatures_text_hash_key; Type: CONSTRAINT; Schema: otel; Owner: -
--

ALTER TABLE ONLY otel.span_signatures
    ADD CONSTRAINT span_signatures_text_hash_key UNIQUE (text_hash);


--
-- Name: telemetry_dlq telemetry_dlq_pkey; Type: CONSTRAINT; Schema: otel; Owner: -
--

ALTER TABLE ONLY otel.telemetry_dlq
    ADD CONSTRAINT telemetry_dlq_pkey PRIMARY KEY (id);


--
-- Name: trace_summaries trace_summaries_pkey; Type: CONSTRAINT; Schema: otel; Owner: -
--

ALTER TABLE ONLY otel.trace_summaries
    ADD CONSTRAINT trace_summaries_pkey PRIMARY KEY (trace_id);


--
-- Name: flush_runs_started_at_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX flush_runs_started_at_idx ON otel.flush_runs USING btree (started_at DESC);


--
-- Name: logs_body_fts_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX logs_body_fts_idx ON ONLY otel.logs USING gin (body_tsv);


--
-- Name: logs_service_time_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX logs_service_time_idx ON ONLY otel.logs USING btree (service_name, "time" DESC);


--
-- Name: logs_time_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX logs_time_idx ON ONLY otel.logs USING brin ("time");


--
-- Name: logs_trace_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX logs_trace_idx ON ONLY otel.logs USING btree (trace_id, "time") WHERE (trace_id IS NOT NULL);


--
-- Name: metrics_labels_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX metrics_labels_idx ON ONLY otel.metrics USING gin (labels jsonb_path_ops);


--
-- Name: metrics_name_time_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX metrics_name_time_idx ON ONLY otel.metrics USING btree (name, "time" DESC);


--
-- Name: metrics_time_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX metrics_time_idx ON ONLY otel.metrics USING brin ("time");


--
-- Name: span_signatures_embedding_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX span_signatures_embedding_idx ON otel.span_signatures USING hnsw (embedding public.vector_cosine_ops);


--
-- Name: span_signatures_queue_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX span_signatures_queue_idx ON otel.span_signatures USING btree (id) WHERE ((embedding IS NULL) OR (embedding_model = 'fallback-hash'::text));


--
-- Name: telemetry_dlq_pending_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX telemetry_dlq_pending_idx ON otel.telemetry_dlq USING btree (created_at) WHERE (processed_at IS NULL);


--
-- Name: trace_summaries_start_time_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX trace_summaries_start_time_idx ON otel.trace_summaries USING btree (start_time DESC);


--
-- Name: traces_attributes_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX traces_attributes_idx ON ONLY otel.traces USING gin (attributes jsonb_path_ops);


--
-- Name: traces_errors_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX traces_errors_idx ON ONLY otel.traces USING btree (start_time DESC) WHERE (status_code = 'ERROR'::text);


--
-- Name: traces_service_time_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX traces_service_time_idx ON ONLY otel.traces USING btree (service_name, start_time DESC);


--
-- Name: traces_signature_time_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX traces_signature_time_idx ON ONLY otel.traces USING btree (signature_id, start_time DESC);


--
-- Name: traces_start_time_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX traces_start_time_idx ON ONLY otel.traces USING brin (start_time);


--
-- Name: traces_trace_span_idx; Type: INDEX; Schema: otel; Owner: -
--

CREATE INDEX traces_trace_span_idx ON ONLY otel.traces USING btree (trace_id, span_id);


--
-- Name: SCHEMA otel; Type: ACL; Schema: -; Owner: -
--

GRANT USAGE ON SCHEMA otel TO otel_writer;
GRANT USAGE ON SCHEMA otel TO otel_reader;
GRANT USAGE ON SCHEMA otel TO otel_admin;


--
-- Name: FUNCTION check_limit(lim integer); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.check_limit(lim integer) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.check_limit(lim integer) TO otel_reader;
GRANT ALL ON FUNCTION otel.check_limit(lim integer) TO otel_admin;


--
-- Name: FUNCTION check_similarity_arguments(k integer, min_similarity double precision); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.check_similarity_arguments(k integer, min_similarity double precision) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.check_similarity_arguments(k integer, min_similarity double precision) TO otel_reader;
GRANT ALL ON FUNCTION otel.check_similarity_arguments(k integer, min_similarity double precision) TO otel_admin;


--
-- Name: FUNCTION check_time_range(since timestamp with time zone, until timestamp with time zone, since_required boolean); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.check_time_range(since timestamp with time zone, until timestamp with time zone, since_required boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.check_time_range(since timestamp with time zone, until timestamp with time zone, since_required boolean) TO otel_reader;
GRANT ALL ON FUNCTION otel.check_time_range(since timestamp with time zone, until timestamp with time zone, since_required boolean) TO otel_admin;


--
-- Name: FUNCTION claim_signatures(batch_size integer, model text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.claim_signatures(batch_size integer, model text) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.claim_signatures(batch_size integer, model text) TO otel_admin;


--
-- Name: FUNCTION claim_table_rows(kind text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.claim_table_rows(kind text) FROM PUBLIC;


--
-- Name: FUNCTION create_typed(kind text, source text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.create_typed(kind text, source text) FROM PUBLIC;


--
-- Name: FUNCTION cron_database(); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.cron_database() FROM PUBLIC;


--
-- Name: FUNCTION cron_query(query text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.cron_query(query text) FROM PUBLIC;


--
-- Name: FUNCTION dead_letter(telemetry_type text, source text, raw_data text, raw_format text, error_message text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.dead_letter(telemetry_type text, source text, raw_data text, raw_format text, error_message text) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.dead_letter(telemetry_type text, source text, raw_data text, raw_format text, error_message text) TO otel_writer;
GRANT ALL ON FUNCTION otel.dead_letter(telemetry_type text, source text, raw_data text, raw_format text, error_message text) TO otel_admin;


--
-- Name: FUNCTION decode_otlp(kind text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.decode_otlp(kind text) FROM PUBLIC;


--
-- Name: FUNCTION decode_otlp_logs(first_id bigint, last_id bigint); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.decode_otlp_logs(first_id bigint, last_id bigint) FROM PUBLIC;


--
-- Name: FUNCTION decode_otlp_metrics(first_id bigint, last_id bigint); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.decode_otlp_metrics(first_id bigint, last_id bigint) FROM PUBLIC;


--
-- Name: FUNCTION decode_otlp_traces(first_id bigint, last_id bigint); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.decode_otlp_traces(first_id bigint, last_id bigint) FROM PUBLIC;


--
-- Name: FUNCTION drop_expired_partitions(); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.drop_expired_partitions() FROM PUBLIC;
GRANT ALL ON FUNCTION otel.drop_expired_partitions() TO otel_admin;


--
-- Name: FUNCTION embedding_failed(ids bigint[], error text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.embedding_failed(ids bigint[], error text) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.embedding_failed(ids bigint[], error text) TO otel_admin;


--
-- Name: FUNCTION embedding_max_attempts(); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.embedding_max_attempts() FROM PUBLIC;
GRANT ALL ON FUNCTION otel.embedding_max_attempts() TO otel_reader;
GRANT ALL ON FUNCTION otel.embedding_max_attempts() TO otel_admin;


--
-- Name: FUNCTION embedding_retry_delay(attempts integer); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.embedding_retry_delay(attempts integer) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.embedding_retry_delay(attempts integer) TO otel_admin;


--
-- Name: FUNCTION ensure_partitions(parent text, days date[]); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.ensure_partitions(parent text, days date[]) FROM PUBLIC;


--
-- Name: FUNCTION exception_attribute(events jsonb, attribute text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.exception_attribute(events jsonb, attribute text) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.exception_attribute(events jsonb, attribute text) TO otel_reader;
GRANT ALL ON FUNCTION otel.exception_attribute(events jsonb, attribute text) TO otel_admin;


--
-- Name: FUNCTION exception_event_attributes(events jsonb); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.exception_event_attributes(events jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.exception_event_attributes(events jsonb) TO otel_reader;
GRANT ALL ON FUNCTION otel.exception_event_attributes(events jsonb) TO otel_admin;


--
-- Name: PROCEDURE flush(); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON PROCEDURE otel.flush() FROM PUBLIC;
GRANT ALL ON PROCEDURE otel.flush() TO otel_admin;


--
-- Name: FUNCTION flush_claim(); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.flush_claim() FROM PUBLIC;
GRANT ALL ON FUNCTION otel.flush_claim() TO otel_admin;


--
-- Name: FUNCTION flush_prepare(); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.flush_prepare() FROM PUBLIC;


--
-- Name: FUNCTION flush_process(started_at timestamp with time zone, truncated text[]); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.flush_process(started_at timestamp with time zone, truncated text[]) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.flush_process(started_at timestamp with time zone, truncated text[]) TO otel_admin;


--
-- Name: FUNCTION histogram_quantile(q double precision, counts numeric[], bounds double precision[]); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.histogram_quantile(q double precision, counts numeric[], bounds double precision[]) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.histogram_quantile(q double precision, counts numeric[], bounds double precision[]) TO otel_reader;
GRANT ALL ON FUNCTION otel.histogram_quantile(q double precision, counts numeric[], bounds double precision[]) TO otel_admin;


--
-- Name: FUNCTION http_reason(status text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.http_reason(status text) FROM PUBLIC;


--
-- Name: FUNCTION is_absent_id(value text, hex_digits integer); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.is_absent_id(value text, hex_digits integer) FROM PUBLIC;


--
-- Name: FUNCTION is_integer_text(value text, max_digits integer, signed boolean); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.is_integer_text(value text, max_digits integer, signed boolean) FROM PUBLIC;


--
-- Name: FUNCTION is_server_trouble(state text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.is_server_trouble(state text) FROM PUBLIC;


--
-- Name: FUNCTION json_numeric_array(value jsonb); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.json_numeric_array(value jsonb) FROM PUBLIC;


--
-- Name: FUNCTION load_claimed(typed_in_place text[]); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.load_claimed(typed_in_place text[]) FROM PUBLIC;


--
-- Name: PROCEDURE maintain(IN days_ahead integer); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON PROCEDURE otel.maintain(IN days_ahead integer) FROM PUBLIC;
GRANT ALL ON PROCEDURE otel.maintain(IN days_ahead integer) TO otel_admin;


--
-- Name: FUNCTION metric_data(metric jsonb, OUT type text, OUT data jsonb); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.metric_data(metric jsonb, OUT type text, OUT data jsonb) FROM PUBLIC;


--
-- Name: FUNCTION metric_series(name text, bucket interval, since timestamp with time zone, until timestamp with time zone, labels jsonb, agg text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.metric_series(name text, bucket interval, since timestamp with time zone, until timestamp with time zone, labels jsonb, agg text) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.metric_series(name text, bucket interval, since timestamp with time zone, until timestamp with time zone, labels jsonb, agg text) TO otel_reader;
GRANT ALL ON FUNCTION otel.metric_series(name text, bucket interval, since timestamp with time zone, until timestamp with time zone, labels jsonb, agg text) TO otel_admin;


--
-- Name: FUNCTION metric_series_mixed_bounds(metric text, bucket_start timestamp with time zone); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.metric_series_mixed_bounds(metric text, bucket_start timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.metric_series_mixed_bounds(metric text, bucket_start timestamp with time zone) TO otel_reader;
GRANT ALL ON FUNCTION otel.metric_series_mixed_bounds(metric text, bucket_start timestamp with time zone) TO otel_admin;


--
-- Name: FUNCTION move_logs(OUT moved bigint, OUT duplicates bigint); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.move_logs(OUT moved bigint, OUT duplicates bigint) FROM PUBLIC;


--
-- Name: FUNCTION move_metrics(OUT moved bigint, OUT duplicates bigint); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.move_metrics(OUT moved bigint, OUT duplicates bigint) FROM PUBLIC;


--
-- Name: FUNCTION move_traces(OUT moved bigint, OUT duplicates bigint); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.move_traces(OUT moved bigint, OUT duplicates bigint) FROM PUBLIC;


--
-- Name: FUNCTION normalize_id(value text, hex_digits integer); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.normalize_id(value text, hex_digits integer) FROM PUBLIC;


--
-- Name: FUNCTION normalize_text(value text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.normalize_text(value text) FROM PUBLIC;


--
-- Name: FUNCTION normalize_trace_id(trace_id text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.normalize_trace_id(trace_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.normalize_trace_id(trace_id text) TO otel_reader;
GRANT ALL ON FUNCTION otel.normalize_trace_id(trace_id text) TO otel_admin;


--
-- Name: FUNCTION otlp_array(arr jsonb); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.otlp_array(arr jsonb) FROM PUBLIC;


--
-- Name: FUNCTION otlp_attributes(key_values jsonb); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.otlp_attributes(key_values jsonb) FROM PUBLIC;


--
-- Name: FUNCTION otlp_invalid(field text, value text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.otlp_invalid(field text, value text) FROM PUBLIC;


--
-- Name: FUNCTION otlp_keys(kind text, OUT resource_key text, OUT scope_key text, OUT record_key text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.otlp_keys(kind text, OUT resource_key text, OUT scope_key text, OUT record_key text) FROM PUBLIC;


--
-- Name: FUNCTION otlp_kvlist(kvlist jsonb); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.otlp_kvlist(kvlist jsonb) FROM PUBLIC;


--
-- Name: FUNCTION otlp_records(doc jsonb, kind text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.otlp_records(doc jsonb, kind text) FROM PUBLIC;


--
-- Name: FUNCTION otlp_request_records(doc jsonb, kind text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.otlp_request_records(doc jsonb, kind text) FROM PUBLIC;


--
-- Name: FUNCTION otlp_single_record(doc jsonb, kind text, rs integer, ss integer, rec integer, dp integer); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.otlp_single_record(doc jsonb, kind text, rs integer, ss integer, rec integer, dp integer) FROM PUBLIC;


--
-- Name: FUNCTION otlp_value(v jsonb); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.otlp_value(v jsonb) FROM PUBLIC;


--
-- Name: FUNCTION parse_double(value text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.parse_double(value text) FROM PUBLIC;


--
-- Name: FUNCTION parse_flags(value text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.parse_flags(value text) FROM PUBLIC;


--
-- Name: FUNCTION parse_json(value text, default_value jsonb); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.parse_json(value text, default_value jsonb) FROM PUBLIC;


--
-- Name: FUNCTION parse_severity(value text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.parse_severity(value text) FROM PUBLIC;


--
-- Name: FUNCTION parse_span_kind(value text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.parse_span_kind(value text) FROM PUBLIC;


--
-- Name: FUNCTION parse_status_code(value text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.parse_status_code(value text) FROM PUBLIC;


--
-- Name: FUNCTION parse_temporality(value text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.parse_temporality(value text) FROM PUBLIC;


--
-- Name: FUNCTION parse_time(value text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.parse_time(value text) FROM PUBLIC;


--
-- Name: FUNCTION partition_working_set(kind text, time_column text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.partition_working_set(kind text, time_column text) FROM PUBLIC;


--
-- Name: FUNCTION process_working_set(); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.process_working_set() FROM PUBLIC;


--
-- Name: FUNCTION reject_invalid_rows(kind text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.reject_invalid_rows(kind text) FROM PUBLIC;


--
-- Name: PROCEDURE retry_dlq(IN max_retries integer); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON PROCEDURE otel.retry_dlq(IN max_retries integer) FROM PUBLIC;
GRANT ALL ON PROCEDURE otel.retry_dlq(IN max_retries integer) TO otel_admin;


--
-- Name: FUNCTION schedule_flush(every text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.schedule_flush(every text) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.schedule_flush(every text) TO otel_admin;


--
-- Name: FUNCTION search_logs(query text, since timestamp with time zone, until timestamp with time zone, service text, min_severity integer, lim integer); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.search_logs(query text, since timestamp with time zone, until timestamp with time zone, service text, min_severity integer, lim integer) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.search_logs(query text, since timestamp with time zone, until timestamp with time zone, service text, min_severity integer, lim integer) TO otel_reader;
GRANT ALL ON FUNCTION otel.search_logs(query text, since timestamp with time zone, until timestamp with time zone, service text, min_severity integer, lim integer) TO otel_admin;


--
-- Name: FUNCTION set_retention(kind text, keep interval); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.set_retention(kind text, keep interval) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.set_retention(kind text, keep interval) TO otel_admin;


--
-- Name: FUNCTION signature_input(service_name text, kind text, name text, status_code text, status_message text, attributes jsonb, events jsonb); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.signature_input(service_name text, kind text, name text, status_code text, status_message text, attributes jsonb, events jsonb) FROM PUBLIC;


--
-- Name: FUNCTION similar_traces(of_trace text, k integer, min_similarity double precision, service text, since timestamp with time zone); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.similar_traces(of_trace text, k integer, min_similarity double precision, service text, since timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.similar_traces(of_trace text, k integer, min_similarity double precision, service text, since timestamp with time zone) TO otel_reader;
GRANT ALL ON FUNCTION otel.similar_traces(of_trace text, k integer, min_similarity double precision, service text, since timestamp with time zone) TO otel_admin;


--
-- Name: FUNCTION similar_traces(query public.vector, k integer, min_similarity double precision, service text, since timestamp with time zone, model text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.similar_traces(query public.vector, k integer, min_similarity double precision, service text, since timestamp with time zone, model text) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.similar_traces(query public.vector, k integer, min_similarity double precision, service text, since timestamp with time zone, model text) TO otel_reader;
GRANT ALL ON FUNCTION otel.similar_traces(query public.vector, k integer, min_similarity double precision, service text, since timestamp with time zone, model text) TO otel_admin;


--
-- Name: FUNCTION similar_traces_search(query public.vector, k integer, min_similarity double precision, service text, since timestamp with time zone, model text, excluded_trace text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.similar_traces_search(query public.vector, k integer, min_similarity double precision, service text, since timestamp with time zone, model text, excluded_trace text) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.similar_traces_search(query public.vector, k integer, min_similarity double precision, service text, since timestamp with time zone, model text, excluded_trace text) TO otel_reader;
GRANT ALL ON FUNCTION otel.similar_traces_search(query public.vector, k integer, min_similarity double precision, service text, since timestamp with time zone, model text, excluded_trace text) TO otel_admin;


--
-- Name: FUNCTION span_signature(service_name text, kind text, name text, status_code text, status_message text, attributes jsonb, events jsonb); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.span_signature(service_name text, kind text, name text, status_code text, status_message text, attributes jsonb, events jsonb) FROM PUBLIC;


--
-- Name: FUNCTION staging_columns(kind text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.staging_columns(kind text) FROM PUBLIC;


--
-- Name: FUNCTION store_embeddings(model text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.store_embeddings(model text) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.store_embeddings(model text) TO otel_admin;


--
-- Name: FUNCTION store_rejects(); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.store_rejects() FROM PUBLIC;


--
-- Name: FUNCTION trace_logs(trace_id text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.trace_logs(trace_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.trace_logs(trace_id text) TO otel_reader;
GRANT ALL ON FUNCTION otel.trace_logs(trace_id text) TO otel_admin;


--
-- Name: FUNCTION trace_spans(trace_id text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.trace_spans(trace_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.trace_spans(trace_id text) TO otel_reader;
GRANT ALL ON FUNCTION otel.trace_spans(trace_id text) TO otel_admin;


--
-- Name: FUNCTION traces_by_error(since timestamp with time zone, until timestamp with time zone, service text, lim integer); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.traces_by_error(since timestamp with time zone, until timestamp with time zone, service text, lim integer) FROM PUBLIC;
GRANT ALL ON FUNCTION otel.traces_by_error(since timestamp with time zone, until timestamp with time zone, service text, lim integer) TO otel_reader;
GRANT ALL ON FUNCTION otel.traces_by_error(since timestamp with time zone, until timestamp with time zone, service text, lim integer) TO otel_admin;


--
-- Name: FUNCTION try_jsonb(value text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.try_jsonb(value text) FROM PUBLIC;


--
-- Name: FUNCTION type_claimed(kind text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.type_claimed(kind text) FROM PUBLIC;


--
-- Name: FUNCTION type_rows(kind text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.type_rows(kind text) FROM PUBLIC;


--
-- Name: FUNCTION type_rows_in_parallel(kind text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.type_rows_in_parallel(kind text) FROM PUBLIC;


--
-- Name: FUNCTION typing_query(kind text, source text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.typing_query(kind text, source text) FROM PUBLIC;


--
-- Name: FUNCTION typing_query_logs(source text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.typing_query_logs(source text) FROM PUBLIC;


--
-- Name: FUNCTION typing_query_metrics(source text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.typing_query_metrics(source text) FROM PUBLIC;


--
-- Name: FUNCTION typing_query_traces(source text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.typing_query_traces(source text) FROM PUBLIC;


--
-- Name: FUNCTION unschedule_flush(); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.unschedule_flush() FROM PUBLIC;
GRANT ALL ON FUNCTION otel.unschedule_flush() TO otel_admin;


--
-- Name: FUNCTION working_set_rows(kind text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.working_set_rows(kind text) FROM PUBLIC;


--
-- Name: FUNCTION text_array_agg(text); Type: ACL; Schema: otel; Owner: -
--

REVOKE ALL ON FUNCTION otel.text_array_agg(text) FROM PUBLIC;


--
-- Name: TABLE claimed_logs; Type: ACL; Schema: otel; Owner: -
--

GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.claimed_logs TO otel_admin;


--
-- Name: TABLE claimed_metrics; Type: ACL; Schema: otel; Owner: -
--

GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.claimed_metrics TO otel_admin;


--
-- Name: TABLE claimed_otlp; Type: ACL; Schema: otel; Owner: -
--

GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.claimed_otlp TO otel_admin;


--
-- Name: TABLE claimed_traces; Type: ACL; Schema: otel; Owner: -
--

GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.claimed_traces TO otel_admin;


--
-- Name: TABLE span_signatures; Type: ACL; Schema: otel; Owner: -
--

GRANT SELECT ON TABLE otel.span_signatures TO otel_reader;
GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.span_signatures TO otel_admin;


--
-- Name: TABLE embedding_status; Type: ACL; Schema: otel; Owner: -
--

GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.embedding_status TO otel_admin;
GRANT SELECT ON TABLE otel.embedding_status TO otel_reader;


--
-- Name: TABLE flush_runs; Type: ACL; Schema: otel; Owner: -
--

GRANT SELECT ON TABLE otel.flush_runs TO otel_reader;
GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.flush_runs TO otel_admin;


--
-- Name: TABLE logs; Type: ACL; Schema: otel; Owner: -
--

GRANT SELECT ON TABLE otel.logs TO otel_reader;
GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.logs TO otel_admin;


--
-- Name: TABLE logs_staging; Type: ACL; Schema: otel; Owner: -
--

GRANT INSERT ON TABLE otel.logs_staging TO otel_writer;
GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.logs_staging TO otel_admin;


--
-- Name: TABLE metrics; Type: ACL; Schema: otel; Owner: -
--

GRANT SELECT ON TABLE otel.metrics TO otel_reader;
GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.metrics TO otel_admin;


--
-- Name: TABLE metrics_staging; Type: ACL; Schema: otel; Owner: -
--

GRANT INSERT ON TABLE otel.metrics_staging TO otel_writer;
GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.metrics_staging TO otel_admin;


--
-- Name: TABLE otlp_staging; Type: ACL; Schema: otel; Owner: -
--

GRANT INSERT ON TABLE otel.otlp_staging TO otel_writer;
GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.otlp_staging TO otel_admin;


--
-- Name: TABLE retention; Type: ACL; Schema: otel; Owner: -
--

GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.retention TO otel_admin;


--
-- Name: TABLE telemetry_dlq; Type: ACL; Schema: otel; Owner: -
--

GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.telemetry_dlq TO otel_admin;


--
-- Name: TABLE trace_summaries; Type: ACL; Schema: otel; Owner: -
--

GRANT SELECT ON TABLE otel.trace_summaries TO otel_reader;
GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.trace_summaries TO otel_admin;


--
-- Name: TABLE traces; Type: ACL; Schema: otel; Owner: -
--

GRANT SELECT ON TABLE otel.traces TO otel_reader;
GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.traces TO otel_admin;


--
-- Name: TABLE traces_staging; Type: ACL; Schema: otel; Owner: -
--

GRANT INSERT ON TABLE otel.traces_staging TO otel_writer;
GRANT SELECT,INSERT,DELETE,TRUNCATE,UPDATE ON TABLE otel.traces_staging TO otel_admin;


--
-- PostgreSQL database dump complete
--


