-- The working set of one flush: temporary tables, dropped at commit.
--   pg_temp.otel_otlp            claimed OTLP/JSON requests, parsed once
--   pg_temp.otel_<kind>_rows     rows as text, numbered n = 1, 2, … (staging
--                                rows and records decoded from requests)
--   pg_temp.otel_<kind>          the same rows typed, or with err set; also
--                                the rows of a claim table typed in place
--                                (n < 0, claimed = their ctid)
--   pg_temp.otel_batch_extent    per kind: first and last time of the valid
--                                rows, how many rows are invalid
--   pg_temp.otel_rejects         everything bound for the dead-letter queue
-- dlq_id is set on rows that otel.retry_dlq() took back from the queue.

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

create or replace function otel.working_set_rows(kind text)
returns text
language sql immutable
as $$
    -- The rows n = $1 .. $2; claimed is null: they are not in a claim table.
    select format('(select w.*, null::tid as claimed from pg_temp.%I as w where w.n between $1 and $2) as r',
                  'otel_' || kind || '_rows')
$$;
comment on function otel.working_set_rows(text) is
    'The rows $1 .. $2 of pg_temp.otel_<kind>_rows as a source of the typing query; internal to otel.flush()';

create or replace function otel.claim_table_rows(kind text)
returns text
language sql immutable
as $$
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
comment on function otel.claim_table_rows(text) is
    'otel.claimed_<kind> as a source of the typing query; internal to otel.flush()';

create or replace function otel.flush_prepare()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
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
comment on function otel.flush_prepare() is
    'Creates the temporary tables one flush or retry works in (dropping any of the same names first); internal';

create or replace function otel.otlp_keys(kind text, out resource_key text, out scope_key text, out record_key text)
language sql immutable parallel safe
as $$
    select v.resource_key, v.scope_key, v.record_key
      from (values ('traces', 'resourceSpans', 'scopeSpans', 'spans'),
                   ('logs', 'resourceLogs', 'scopeLogs', 'logRecords'),
                   ('metrics', 'resourceMetrics', 'scopeMetrics', 'metrics'))
           as v (kind, resource_key, scope_key, record_key)
     where v.kind = otlp_keys.kind
$$;
comment on function otel.otlp_keys(text) is
    'The OTLP/JSON field names of a request of traces, logs or metrics: resource, scope and record arrays';

create or replace function otel.otlp_request_records(doc jsonb, kind text)
returns table (rs int, ss int, rec int, resource_attributes jsonb, scope jsonb, record jsonb)
language sql immutable parallel safe
as $$
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
comment on function otel.otlp_request_records(jsonb, text) is
    'Every record of an OTLP/JSON request of traces, logs or metrics, with its position, resource attributes and scope';

create or replace function otel.metric_data(metric jsonb, out type text, out data jsonb)
language sql immutable parallel safe
as $$
    select case when metric ? 'gauge' then 'gauge' when metric ? 'sum' then 'sum'
                when metric ? 'histogram' then 'histogram'
                when metric ? 'exponentialHistogram' then 'exponential_histogram'
                when metric ? 'summary' then 'summary' end,
           coalesce(metric -> 'gauge', metric -> 'sum', metric -> 'histogram',
                    metric -> 'exponentialHistogram', metric -> 'summary')
$$;
comment on function otel.metric_data(jsonb) is
    'The type of an OTLP/JSON metric (gauge, sum, histogram, exponential_histogram, summary) and its data object';

create or replace function otel.otlp_records(doc jsonb, kind text)
returns table (rs int, ss int, rec int, dp int)
language sql immutable parallel safe
as $$
    -- Every record of a request by position; for metrics every data point
    -- of every metric.
    select x.rs, x.ss, x.rec, p.l::int
      from otel.otlp_request_records(doc, kind) as x
      left join lateral jsonb_array_elements(
                case when kind = 'metrics' then (otel.metric_data(x.record)).data -> 'dataPoints' end)
                with ordinality as p (v, l) on true
$$;
comment on function otel.otlp_records(jsonb, text) is
    'Positions (resource, scope, record, data point) of every record in an OTLP/JSON request';

create or replace function otel.otlp_single_record(doc jsonb, kind text, rs int, ss int, rec int, dp int)
returns jsonb
language sql immutable parallel safe
as $$
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
comment on function otel.otlp_single_record(jsonb, text, int, int, int, int) is
    'An OTLP/JSON request with only the record at the given position, its resource and its scope';

create or replace function otel.is_server_trouble(state text)
returns boolean
language sql immutable parallel safe
as $$
    -- Errors of the server, not of the data (insufficient resources,
    -- operator intervention, system errors): the slow paths re-raise them
    -- instead of dead-lettering every row they were working on.
    select left(state, 2) in ('53', '57', '58', 'XX')
$$;
comment on function otel.is_server_trouble(text) is
    'True for SQLSTATE classes that mean server trouble (53, 57, 58, XX) rather than bad data';

create or replace function otel.decode_otlp(kind text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
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
$$;
comment on function otel.decode_otlp(text) is
    'Decodes claimed OTLP/JSON requests of one kind, isolating bad requests and records; internal to otel.flush()';

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

create or replace function otel.reject_invalid_rows(kind text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
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
$$;
comment on function otel.reject_invalid_rows(text) is
    'Moves rows that failed validation to the reject list of the flush; internal to otel.flush()';
