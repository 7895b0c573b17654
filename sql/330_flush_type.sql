-- Stage 3, type and validate: one query per kind casts the text rows and
-- sets err on a row that breaks a rule; an unreadable row is isolated.

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
                   row_number() over (partition by r.n, r.payload_id) as barrier  -- see otel.typing_query()
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
                   row_number() over (partition by r.n, r.payload_id) as barrier  -- see otel.typing_query()
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
                   row_number() over (partition by r.n, r.payload_id) as barrier  -- see otel.typing_query()
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
-- partitioned by n and payload_id, one of which is the row id by which
-- Citus distributes the claim tables (n of a claimed row, payload_id of a
-- record decoded from a claimed request), so that Citus sends the query to
-- the workers (otel.type_on_workers(), otel.decode_on_workers()).
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

create or replace function otel.create_typed(kind text, source text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
-- The planner rates parsing JSON and timestamps as cheap as passing a row
-- from a worker to the leader; it is many times dearer. min_parallel_table_scan_size
-- still keeps small sources in one process. The leader only gathers and
-- writes the rows (5 % faster on two cores; with no worker it runs the
-- whole plan itself).
set parallel_tuple_cost = 0
set parallel_setup_cost = 100
set parallel_leader_participation = off
as $$
-- Replaces pg_temp.otel_<kind> by the typed rows of source (an ordinary
-- table: parallel workers never read a temporary one) with one
-- create table … as, which PostgreSQL runs in parallel workers: typing is
-- a flush's costliest step after the insert, and this runs it on every core.
begin
    execute format('drop table pg_temp.%I', 'otel_' || kind);
    execute format('create temp table %I on commit drop as %s', 'otel_' || kind, otel.typing_query(kind, source));
end
$$;
comment on function otel.create_typed(text, text) is
    'Types the rows of an ordinary table into pg_temp.otel_<kind> in parallel workers; internal to otel.flush()';

create or replace function otel.type_rows_in_parallel(kind text)
returns boolean
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
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
comment on function otel.type_rows_in_parallel(text) is
    'Types a large working set in parallel workers through an unlogged copy; internal to otel.flush()';

create or replace function otel.type_rows(kind text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Types pg_temp.otel_<kind>_rows into pg_temp.otel_<kind>: in parallel
-- when there are many, else in one set-based statement; when a value
-- defeats it (malformed JSON text, an impossible date), chunk by chunk,
-- then row by row within the failing chunk.
declare
    chunk constant integer := 1000;
    last_n integer;
    chunk_start integer;
    row_n integer;
    typed_table text := 'otel_' || kind;
    text_rows_table text := 'otel_' || kind || '_rows';
    type_range text := format('insert into pg_temp.%I %s', typed_table,
                              otel.typing_query(kind, otel.working_set_rows(kind)));
begin
    execute format('select coalesce(max(n), 0) from pg_temp.%I', text_rows_table) into last_n;
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
    execute format('create index on pg_temp.%I (n)', text_rows_table);
    execute format('analyze pg_temp.%I', text_rows_table);
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
                    execute format('insert into pg_temp.%I (n, err) values ($1, $2)', typed_table)
                        using row_n, 'unreadable row: ' || sqlerrm;
                end;
            end loop;
        end;
    end loop;
end
$$;
comment on function otel.type_rows(text) is
    'Validates and casts the text rows of one kind, isolating unreadable rows; internal to otel.flush()';

create or replace function otel.type_claimed(kind text)
returns boolean
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
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
    -- A row's position, which numbers it here, is unique in one shard only.
    if otel.distributed(format('otel.%I', 'claimed_' || kind)::regclass) then
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
comment on function otel.type_claimed(text) is
    'Validates and casts a whole claim table in one parallel statement; internal to otel.flush()';
