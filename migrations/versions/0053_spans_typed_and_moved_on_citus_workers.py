"""On Citus, spans are typed and moved on the workers: the span staging is distributed, and so is the flush's work on it.

otel.distribute() distributes otel.traces_staging and otel.claimed_traces by
a row id the coordinator gives each staged span (a staged row may lack a
trace id, and Citus refuses a null key), so that writers' COPY spreads over
the workers, and makes otel.flush_spans, distributed by trace id beside
otel.traces. The flush types the claimed spans into it with one insert …
select the workers run on their shards (otel.type_spans_on_workers()), then
drops repeated spans, keeps the trace summaries and inserts the spans with
co-located statements (otel.move_spans_on_workers()); the coordinator gets
the batch's extent, its rejects and one span per signature input, which
otel.sign_spans() and otel.catalog_operations() read as on one node
(otel.collect_signature_inputs() now groups them there). A row some value
of which defeats the casts sends the claimed spans through the working set
on the coordinator, as before. The typing query's barrier is partitioned
by row number, which Citus can send to the workers; on one node it is
planned away as before. otel_writer may log in on the workers, where
Citus writes the staged rows as the current role.

Revision ID: 0053
Revises: 0052
"""

from migrations.schema import execute_sql, released_routine

revision = "0053"
down_revision = "0052"
branch_labels = None
depends_on = None

UPGRADE = r"""
drop function otel.partition_working_set(text, text);

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
                   -- See otel.typing_query(). Partitioned by n, so that Citus sends
                   -- the query to the workers (otel.type_spans_on_workers()).
                   row_number() over (partition by r.n) as barrier
              from %s) as p
$query$, source)
$$;
comment on function otel.typing_query_traces(text) is
    'The query that validates and casts the span rows of a flush; internal to otel.flush()';

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

create or replace function otel.partition_working_set(kind text, time_column text, typed_rows text default null)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Gives err to the valid rows of pg_temp.otel_<kind> (or of the table
-- typed_rows names, otel.flush_spans on Citus) outside the accepted
-- time window (otel.accepted_time_window()), then creates the partitions
-- the others need, at most new_days_limit new days in one flush: a batch
-- spread over thousands of days would otherwise exhaust the lock table and
-- fail every flush. Rows of the days left over get err (so a dead letter
-- that otel.retry_dlq() loads in a later run). Records the batch's extent
-- in pg_temp.otel_batch_extent, which the steps after it read instead of
-- scanning every row again.
declare
    new_days_limit constant integer := 32;
    typed text := coalesce(typed_rows, format('pg_temp.%I', 'otel_' || kind));
    extent text := format('select min(%1$I) filter (where err is null), max(%1$I) filter (where err is null),
                                  count(*) filter (where err is not null)
                             from %2$s', time_column, typed);
    accepted tstzrange := otel.accepted_time_window(kind);
    first_time timestamptz;
    last_time timestamptz;
    invalid_rows bigint;
    first_day date;
    last_day date;
    days date[];
    outside_rows bigint[];
    outside_errors text[];
begin
    execute extent into first_time, last_time, invalid_rows;
    -- The extent shows whether any row is outside the window: usually none
    -- is, and then no row is read again.
    if first_time is not null and not accepted @> tstzrange(first_time, last_time, '[]') then
        -- Each such row's message, then the update by row number: Citus
        -- sends no stable function (a time's text) to the workers in an
        -- update.
        execute format($sql$
            select array_agg(n),
                   array_agg(case when %2$I < lower($1)
                                  then format('%2$s %%s is before %%s, the oldest time the %3$s retention keeps (otel.set_retention())',
                                              %2$I, lower($1))
                                  else format('%2$s %%s is after %%s, more than otel.future_margin ahead of the database clock',
                                              %2$I, upper($1))
                              end)
              from %1$s
             where err is null and not $1 @> %2$I
        $sql$, typed, time_column, kind) into outside_rows, outside_errors using accepted;
        execute format('update %s as t set err = o.err from unnest($1, $2) as o (n, err) where t.n = o.n', typed)
            using outside_rows, outside_errors;
        execute extent into first_time, last_time, invalid_rows;
    end if;
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
        execute format('select array_agg(distinct (%I at time zone ''UTC'')::date) from %s where err is null',
                       time_column, typed) into days;
    end if;
    days := array(select day from unnest(days) as day
                   where to_regclass(format('otel.%I', kind || '_p' || to_char(day, 'YYYYMMDD'))) is null
                   order by day);
    perform otel.ensure_partitions(kind, days[1:new_days_limit]);
    if cardinality(days) > new_days_limit then
        execute format($sql$
            update %1$s
               set err = format('no partition for %%s: one flush creates at most %%s new days; otel.retry_dlq() loads it later',
                                (%2$I at time zone 'UTC')::date, %3$s)
             where err is null and (%2$I at time zone 'UTC')::date = any ($1)
        $sql$, typed, time_column, new_days_limit) using days[new_days_limit + 1:];
        execute extent into first_time, last_time, invalid_rows;
    end if;
    insert into pg_temp.otel_batch_extent values (kind, first_time, last_time, invalid_rows);
end
$$;
comment on function otel.partition_working_set(text, text, text) is
    'Dead-letters the rows of a flush outside the accepted time window and creates the partitions the others need, at most 32 new days at a time; internal to otel.flush()';

create or replace function otel.collect_signature_inputs()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- The distinct signature inputs of the valid spans, each with its first
-- span's position, into pg_temp.otel_signature_inputs for otel.sign_spans()
-- and otel.catalog_operations(): a table with statistics, so that their
-- joins fetch the first span of each of the few distinct inputs by its
-- position rather than reading every span again.
begin
    create temp table otel_signature_inputs on commit drop as
    select signature_input, min(ctid) as first_span, count(*) as spans,
           min(start_time) as first_start, max(start_time) as last_start
      from pg_temp.otel_traces where err is null group by signature_input;
    analyze pg_temp.otel_signature_inputs;
end
$$;
comment on function otel.collect_signature_inputs() is
    'Groups the valid spans of a flush by signature input, for otel.sign_spans(); internal to otel.flush()';

create or replace function otel.sign_spans()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- One signature per signature input of pg_temp.otel_signature_inputs
-- (otel.collect_signature_inputs()), whose first span it signs, upserted
-- into otel.span_signatures (counting the spans); the ids land in
-- pg_temp.otel_signature_ids by signature input. A new signature wakes the
-- embedding worker.
begin
    create temp table otel_signature_ids (signature_input bigint primary key, signature_id bigint, created boolean)
        on commit drop;
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
end
$$;
comment on function otel.sign_spans() is
    'Upserts one signature per signature input that otel.collect_signature_inputs() or otel.move_spans_on_workers() collected; internal to otel.flush()';

create or replace function otel.insert_spans(typed_spans text, signature_ids text,
                                             inputs bigint[] default null, ids bigint[] default null)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- The valid spans of typed_spans (pg_temp.otel_traces, or otel.flush_spans
-- on Citus) into otel.traces, each with the signature id of its input from
-- signature_ids (a relation of signature_input and signature_id, which may
-- read inputs and ids as $1 and $2). Returns how many.
declare
    moved bigint;
begin
    execute format($sql$
        insert into otel.traces (
            trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time,
            duration_ms, status_code, status_message, service_name, scope_name, scope_version,
            attributes, resource_attributes, events, links, signature_id)
        select t.trace_id, t.span_id, t.parent_span_id, t.trace_state, t.flags, t.name, t.kind,
               t.start_time, t.end_time, t.duration_ms, t.status_code, t.status_message,
               t.service_name, t.scope_name, t.scope_version,
               t.attributes, t.resource_attributes, t.events, t.links, s.signature_id
          from %s as t
          join %s as s using (signature_input)
         where t.err is null
    $sql$, typed_spans, signature_ids) using inputs, ids;
    get diagnostics moved = row_count;
    return moved;
end
$$;
comment on function otel.insert_spans(text, text, bigint[], bigint[]) is
    'Inserts the valid spans of a flush into otel.traces with their signature ids; internal to otel.flush()';

create or replace function otel.move_traces(out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
-- The working set's statistics need only be rough (they choose hashing or
-- sorting, and join orders): a sample of 9,000 rows instead of 30,000
-- takes a quarter of the time.
set default_statistics_target = 30
as $$
-- Valid spans into otel.traces: drop repeated ones, sign them, add them to
-- the catalog of operations and the trace summaries, insert them.
begin
    -- Row counts and the statistics of the columns the statements below
    -- join, group and filter on; sampling the JSON columns too would cost
    -- as much again.
    analyze pg_temp.otel_traces (err, trace_id, span_id, parent_span_id, start_time, signature_input, span_key);
    duplicates := otel.drop_repeated_spans();
    perform otel.collect_signature_inputs();
    perform otel.sign_spans();
    perform otel.catalog_operations();
    perform otel.summarize_traces();
    moved := otel.insert_spans('pg_temp.otel_traces', 'pg_temp.otel_signature_ids');
end
$$;
comment on function otel.move_traces() is
    'Moves the valid spans of a flush into otel.traces with signatures and trace summaries; internal to otel.flush()';

create or replace function otel.claimed_span_rows()
returns text
language sql immutable
as $$
    -- n is the row id the coordinator gave the span as it was staged:
    -- unique across the shards, rising in staging order (so the first of
    -- two duplicates is kept, as on one node).
    select '(select c.row_id as n, null::tid as claimed, null::bigint as payload_id, c.*,
                    null::jsonb as attributes_jsonb, null::jsonb as resource_attributes_jsonb,
                    null::jsonb as events_jsonb, null::jsonb as links_jsonb
               from otel.claimed_traces as c) as r'
$$;
comment on function otel.claimed_span_rows() is
    'otel.claimed_traces, distributed by row id on Citus, as a source of the typing query; internal to otel.flush()';

create or replace function otel.type_spans_on_workers()
returns boolean
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Types otel.claimed_traces into otel.flush_spans with one insert … select
-- that the workers run on their shards, sending each typed span to the
-- shard of its trace (Citus refuses a null key: a span without a trace id,
-- rejected, gets ''). False, with nothing changed, when the claim table is
-- not distributed or is empty, or when some row defeats the casts:
-- otel.load_claimed() then takes the claimed spans into the working set,
-- where otel.type_rows() isolates the bad one.
declare
    typed_columns text;
begin
    if not otel.distributed('otel.claimed_traces') or not exists (select 1 from otel.claimed_traces) then
        return false;
    end if;
    select string_agg(case when attname = 'trace_id' then 'coalesce(q.trace_id, '''')' else format('q.%I', attname) end,
                      ', ' order by attnum)
      into typed_columns
      from pg_attribute
     where attrelid = 'otel.flush_spans'::regclass and attnum > 0 and not attisdropped;
    begin
        execute format('insert into otel.flush_spans select %s from (%s) as q',
                       typed_columns, otel.typing_query('traces', otel.claimed_span_rows()));
    exception when others then
        if otel.is_server_trouble(sqlstate) then raise; end if;
        return false;
    end;
    analyze otel.flush_spans;  -- on every shard: the joins below hash rather than loop
    return true;
end
$$;
comment on function otel.type_spans_on_workers() is
    'On Citus: validates and casts the claimed spans on the workers into otel.flush_spans, by trace id; internal to otel.flush()';

create or replace function otel.summarize_spans_on_workers()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- otel.summarize_traces() for otel.flush_spans, in the form Citus pushes
-- down to each shard as it is: grouped by the plain trace id (a collated
-- one is not the distribution column to Citus), every subquery read once,
-- and the earliest root span of every trace found by one sort of the root
-- spans (on one node a second pass over the traces with several roots).
begin
    insert into otel.trace_summaries as s (
        trace_id, start_time, end_time, duration_ms, root_service, root_name,
        span_count, error_count, services)
    select p.trace_id, p.start_time, p.end_time, extract(epoch from p.end_time - p.start_time) * 1000,
           r.service_name, r.name, p.span_count, p.error_count,
           array(select distinct x from unnest(p.services) as x order by x)
      from (select trace_id, min(start_time) as start_time, max(end_time) as end_time, count(*) as span_count,
                   count(*) filter (where status_code = 'ERROR') as error_count,
                   otel.text_array_agg(service_name) filter (where service_name is not null) as services
              from otel.flush_spans
             where err is null
             group by trace_id) as p
      left join (select distinct on (trace_id) trace_id, service_name, name
                   from otel.flush_spans
                  where err is null and parent_span_id is null
                  order by trace_id, start_time, n) as r on r.trace_id = p.trace_id
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
end
$$;
comment on function otel.summarize_spans_on_workers() is
    'Adds the spans of otel.flush_spans to otel.trace_summaries on the workers; internal to otel.flush()';

create or replace function otel.move_spans_on_workers(out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- otel.move_traces() for the spans otel.type_spans_on_workers() typed:
-- the rejects to the dead-letter queue, repeated spans dropped, signatures
-- assigned, trace summaries kept, the spans inserted, each a statement
-- every worker runs on its shards. The working set's own spans (decoded
-- OTLP requests) are moved after these, and find them stored.
declare
    first_start timestamptz;
    last_start timestamptz;
    invalid_rows bigint;
    stored_before bigint;
    first_spans bigint[];
    inputs bigint[];
    signature_ids bigint[];
begin
    perform otel.partition_working_set('traces', 'start_time', 'otel.flush_spans');
    -- The extent is this batch's alone: the working set records its own.
    delete from pg_temp.otel_batch_extent as e where e.kind = 'traces'
    returning e.first_time, e.last_time, e.invalid_rows into first_start, last_start, invalid_rows;
    if invalid_rows > 0 then
        -- A rejected span's dead letter is its row as staged, found on the
        -- shards of the claim table by its row id.
        with rejected as materialized (
            select t.n, t.err from otel.flush_spans as t where t.err is not null
        )
        insert into pg_temp.otel_rejects
        select null, 'traces', 'otel.traces_staging', jsonb_strip_nulls(to_jsonb(c) - 'row_id')::text, 'row-json', r.err
          from rejected as r
          join otel.claimed_traces as c on c.row_id = r.n;
    end if;
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
    truncate pg_temp.otel_traces, otel.flush_spans;
    drop table pg_temp.otel_signature_inputs, pg_temp.otel_signature_ids;
end
$$;
comment on function otel.move_spans_on_workers() is
    'On Citus: moves the spans otel.type_spans_on_workers() typed into otel.traces with signatures and trace summaries, on the workers; internal to otel.flush()';

create or replace function otel.reject_invalid_rows(kind text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Queues every row that failed validation for the dead-letter queue: a
-- staging row (from the working set or a claim table) as a JSON object of
-- its columns, a decoded record as an OTLP/JSON request holding just that
-- record.
declare
    claim_table regclass := format('otel.%I', 'claimed_' || kind);
    -- Rows typed in place (t.claimed set) by their position; never those
    -- of a claim table Citus distributes, which has no such rows.
    claimed_rows text := case when otel.distributed(claim_table) then '(select null::tid as ctid, null::jsonb as staged)'
                              else format('(select x.ctid, to_jsonb(x) as staged from %s as x)', claim_table) end;
begin
    if (select e.invalid_rows from pg_temp.otel_batch_extent as e where e.kind = reject_invalid_rows.kind) = 0 then
        return;  -- nothing to look for
    end if;
    execute format($sql$
        insert into pg_temp.otel_rejects
        select r.dlq_id, %1$L,
               case when r.payload_id is null then %2$L else 'otel.otlp_staging' end,
               case when t.claimed is not null
                    then jsonb_strip_nulls(c.staged)::text
                    when r.payload_id is null
                    -- (row_id: the spans' staging on Citus numbers its rows)
                    then jsonb_strip_nulls(to_jsonb(r) - '{n,dlq_id,payload_id,rs,ss,rec,dp,row_id}'::text[])::text
                    else otel.otlp_single_record(p.doc, %1$L, r.rs, r.ss, r.rec, r.dp)::text end,
               case when r.payload_id is null then 'row-json' else 'text' end,
               t.err
          from pg_temp.%3$I as t
          left join pg_temp.%4$I as r on r.n = t.n
          left join %5$s as c on c.ctid = t.claimed
          left join pg_temp.otel_otlp as p on p.id = r.payload_id
         where t.err is not null
    $sql$, kind, 'otel.' || kind || '_staging', 'otel_' || kind, 'otel_' || kind || '_rows', claimed_rows);
end
$$;
comment on function otel.reject_invalid_rows(text) is
    'Moves rows that failed validation to the reject list of the flush; internal to otel.flush()';

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
    spans_on_workers boolean;
begin
    perform otel.take_flush_lock();
    -- A batch of a million spans groups some 200,000 traces: with less
    -- memory, grouping them and building their summaries spill to disk
    -- (a tenth more time). Smaller batches use what they need, no more.
    if pg_size_bytes(current_setting('work_mem')) < pg_size_bytes('128MB') then
        perform set_config('work_mem', '128MB', true);
    end if;
    perform otel.flush_prepare();
    -- On Citus, where the span staging is distributed, its spans are typed
    -- and moved on the workers (otel.move_spans_on_workers()).
    spans_on_workers := otel.type_spans_on_workers();
    if spans_on_workers then
        typed_in_place := typed_in_place || 'traces'::text;
    end if;
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        continue when kind = any (typed_in_place);
        if otel.type_claimed(kind) then
            typed_in_place := typed_in_place || kind;
        end if;
    end loop;
    requests := otel.load_claimed(typed_in_place);
    if spans_on_workers then
        select w.moved, w.duplicates into spans, duplicates from otel.move_spans_on_workers() as w;
    end if;
    for counts in select * from otel.process_working_set() loop
        case counts.kind
            when 'traces' then spans := spans + counts.moved;
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
-- (logs by time, points by name) is redistributed. The span staging and
-- its claim table are distributed by a row id the coordinator gives each
-- staged span (a staged row may lack a trace id, and Citus refuses a null
-- key), so that writers' COPY spreads over the workers, where the flush
-- types the spans into otel.flush_spans, co-located with the spans
-- (otel.move_spans_on_workers()). The other staging tables and the
-- dead-letter queue stay on the coordinator. Citus reads and writes the
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
    if not otel.distributed('otel.traces_staging') then
        -- Rows staged before get their ids here; a claim table holds rows
        -- only while a flush runs, or after one failed.
        create sequence otel.staged_span_ids;
        grant usage on sequence otel.staged_span_ids to otel_writer;
        alter table otel.traces_staging add column row_id bigint default nextval('otel.staged_span_ids');
        alter table otel.claimed_traces add column row_id bigint default nextval('otel.staged_span_ids');
        alter table otel.claimed_traces alter column row_id drop default;
        perform create_distributed_table('otel.traces_staging', 'row_id', shard_count => distribute.shard_count,
                                         colocate_with => 'none');
        perform create_distributed_table('otel.claimed_traces', 'row_id', colocate_with => 'otel.traces_staging');
        return next 'otel.traces_staging: distributed by row_id, and otel.claimed_traces with it';
    end if;
    if to_regclass('otel.flush_spans') is null then
        execute format('create unlogged table otel.flush_spans as %s with no data',
                       otel.typing_query('traces', otel.claimed_span_rows()));
        comment on table otel.flush_spans is
            'On Citus: the spans of the running flush, typed on the workers (otel.type_spans_on_workers()); internal';
        perform create_distributed_table('otel.flush_spans', 'trace_id', colocate_with => 'otel.traces');
        return next 'otel.flush_spans: distributed by trace_id';
    end if;
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
    'On a Citus coordinator, after `alembic upgrade head`: distributes otel.traces and otel.trace_summaries by trace_id in shard_count (default 32) co-located shards, otel.logs by shard_key co-located with the spans (a record in a trace beside its spans) and otel.metrics by series_key (one shard a series), redistributing a table an earlier release distributed otherwise, and makes otel.span_signatures and otel.operation_catalog reference tables; distributes otel.traces_staging by a row id it adds (writers COPY into it with a column list), so that the flush types and moves spans on the workers (otel.flush_spans); lets otel_reader, otel_writer and otel_admin log in on the workers (Citus reaches the shards as the current role); returns what it changed (nothing when run again, unless a worker was added). The other staging tables and the dead letters stay on the coordinator';
"""

# otel.type_claimed() is as the baseline (0004) built it from sql/.
DOWNGRADE = r"""
drop function otel.partition_working_set(text, text, text);
drop function otel.move_spans_on_workers();
drop function otel.summarize_spans_on_workers();
drop function otel.type_spans_on_workers();
drop function otel.claimed_span_rows();
drop function otel.collect_signature_inputs();
drop function otel.insert_spans(text, text, bigint[], bigint[]);

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
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
    execute_sql(released_routine("0033", "otel.typing_query_traces"))
    execute_sql(released_routine("0015", "otel.partition_working_set"))
    execute_sql(released_routine("0022", "otel.sign_spans"))
    execute_sql(released_routine("0022", "otel.move_traces"))
    execute_sql(released_routine("0006", "otel.reject_invalid_rows"))
    execute_sql(released_routine("0008", "otel.flush_process"))
    # with the setting revision 0036 gave it
    execute_sql("alter function otel.flush_process(timestamptz, text[]) set default_toast_compression = 'lz4';")
    execute_sql(released_routine("0052", "otel.distribute"))
