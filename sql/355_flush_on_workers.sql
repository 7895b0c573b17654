-- Stages 2 to 6 on Citus, where otel.distribute() spreads the staging of
-- rows and requests over the workers (docs/scale-out.md): the claimed
-- rows of each kind, and the records decoded from the claimed OTLP/JSON
-- requests, are typed on the workers into a working table, and every
-- statement that reads all of them runs there, shard by shard. Spans are
-- typed into otel.flush_spans, distributed by trace id beside otel.traces
-- and otel.trace_summaries; log records and metric points go to
-- otel.flush_logs and otel.flush_metrics, distributed by their number,
-- until they are inserted into the shards of their final tables. The
-- coordinator gets each batch's extent, its rejects and one span per
-- signature input. Claimed rows or requests some value of which defeats
-- the decoding or the casts take the working set's way (stages 2 to 6 on
-- the coordinator), where the bad one is isolated.

create or replace function otel.working_table_on_workers(kind text)
returns text
language sql immutable
as $$
    -- A name, not a regclass: otel.distribute() asks it before the table exists.
    select format('otel.%I', case kind when 'traces' then 'flush_spans' else 'flush_' || kind end)
$$;
comment on function otel.working_table_on_workers(text) is
    'otel.flush_spans, otel.flush_logs or otel.flush_metrics: where the flush types the claimed rows of a kind on Citus; internal to otel.flush()';

create or replace function otel.typed_columns(typed regclass)
returns text[]
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    select array_agg(format('%s %s', attname, format_type(atttypid, atttypmod)) order by attnum)
      from pg_attribute
     where attrelid = typed and attnum > 0 and not attisdropped
$$;
comment on function otel.typed_columns(regclass) is
    'The columns of a table of typed rows, with their types, in order: what the typing query of a kind gives; internal';

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

create or replace function otel.decoded_rows_on_workers(kind text, requests text)
returns text
language sql immutable
as $$
    -- The records of a kind in requests (a relation of parsed requests:
    -- row_id and doc, as otel.flush_otlp), decoded, as a source of the
    -- typing query. n places a record after every staged row and by its
    -- place in its request (otel.decoded_record_n()): requests in staging
    -- order, so that of a span sent twice the first is kept.
    select format('(select otel.decoded_record_n(d.payload_id, row_number() over (
                               partition by d.payload_id order by d.rs, d.ss, d.rec, d.dp)) as n,
                           null::tid as claimed, d.*
                      from (%s) as d) as r',
                  otel.decoding_query(kind, format('(select f.row_id as id, null::bigint as dlq_id, f.doc from %s as f) as p',
                                                   requests)))
$$;
comment on function otel.decoded_rows_on_workers(text, text) is
    'The decoded records of a kind of parsed OTLP/JSON requests, numbered, as a source of the typing query; internal to otel.flush()';

create or replace function otel.decoded_record_n(request_id bigint, rank bigint)
returns bigint
language plpgsql immutable parallel safe
as $$
-- 2^62 + request_id * 2^20 + rank: above every staged row's n (its row id),
-- and in staging order. Fails beyond 2^42 requests or 2^20 records in one,
-- and then the coordinator decodes the requests.
begin
    if request_id not between 0 and 4398046511103 or rank not between 0 and 1048575 then
        raise exception 'request % or record % is beyond what a decoded record''s number holds', request_id, rank
            using errcode = 'program_limit_exceeded';
    end if;
    return 4611686018427387904 + request_id * 1048576 + rank;
end
$$;
comment on function otel.decoded_record_n(bigint, bigint) is
    'The number of the rank-th record of a request decoded on the workers; internal to otel.flush()';

create or replace function otel.working_table_fits(kind text)
returns boolean
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Whether the kind's working table, made by otel.distribute() from the
-- typing query of its release, has this release's shape: a later
-- release's typing may differ, and then the coordinator types the rows.
declare
    typed regclass := otel.working_table_on_workers(kind);
begin
    if otel.typed_columns(typed) is distinct from otel.typed_columns(format('pg_temp.%I', 'otel_' || kind)::regclass) then
        raise warning 'otel_db: % is not shaped as this release types %: the coordinator types them until otel.distribute() is run again',
                      typed, kind;
        return false;
    end if;
    return true;
end
$$;
comment on function otel.working_table_fits(text) is
    'On Citus: whether a working table of the flush has the shape this release types rows in, with a warning when not; internal to otel.flush()';

create or replace function otel.insert_typed_on_workers(kind text, source text)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Types the rows of source into the kind's working table with one insert
-- … select that each worker runs on its shards, each row going to the
-- shard of its key: log records and points by n, spans by trace (Citus
-- refuses a null key: a span without a trace id, rejected, gets '').
-- Returns how many.
declare
    typed regclass := otel.working_table_on_workers(kind);
    typed_columns text;
    inserted bigint;
begin
    select string_agg(case when kind = 'traces' and attname = 'trace_id' then 'coalesce(q.trace_id, '''')'
                           else format('q.%I', attname) end,
                      ', ' order by attnum)
      into typed_columns
      from pg_attribute
     where attrelid = typed and attnum > 0 and not attisdropped;
    execute format('insert into %s select %s from (%s) as q', typed, typed_columns, otel.typing_query(kind, source));
    get diagnostics inserted = row_count;
    return inserted;
end
$$;
comment on function otel.insert_typed_on_workers(text, text) is
    'On Citus: validates and casts rows of a kind into its working table on the workers; internal to otel.flush()';

create or replace function otel.type_on_workers(kind text)
returns boolean
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Types otel.claimed_<kind> into its working table on the workers
-- (otel.insert_typed_on_workers()): log records and points into the shards
-- beside their claim, spans into the shard of their trace. False, with
-- nothing changed, when the claim table is not distributed or is empty:
-- otel.load_claimed() then takes its rows into the working set. A row
-- that defeats the casts fails the flush, which otel.flush() then does
-- again on the coordinator (otel.flush_may_redo()).
declare
    claim_table regclass := format('otel.%I', 'claimed_' || kind);
    has_rows boolean;
begin
    if not otel.distributed(claim_table) then
        return false;
    end if;
    execute format('select exists (select 1 from %s)', claim_table) into strict has_rows;
    if not has_rows or not otel.working_table_fits(kind) then
        return false;
    end if;
    perform otel.insert_typed_on_workers(kind, otel.claimed_rows_on_workers(kind));
    return true;
end
$$;
comment on function otel.type_on_workers(text) is
    'On Citus: validates and casts the claimed rows of a kind on the workers; internal to otel.flush()';

create or replace function otel.decode_on_workers(staged_on_workers text[])
returns text[]
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- On Citus, where otel.distribute() spreads the staging of OTLP/JSON
-- requests over the workers: parses the claimed requests there, each into
-- otel.flush_otlp beside its claim, queues those that are not a request
-- (as otel.process_working_set() does), and decodes and types the records
-- of each kind into the kind's working table
-- (otel.insert_typed_on_workers()), beside the staged rows that
-- otel.type_on_workers() typed (the kinds of staged_on_workers). Returns
-- the kinds that got records, maybe none. Null, with nothing changed, when
-- otel.claimed_otlp is not distributed or is empty, when a working table is
-- not shaped as this release types, or when staged rows of a kind go the
-- coordinator's way (the records would be stored before them, unlike on
-- one node): otel.load_claimed() then takes the requests into the working
-- set. A request that is not JSON, or a record that defeats the decoding
-- or the casts, fails the flush, which otel.flush() then does again on the
-- coordinator (otel.flush_may_redo()), where the bad one is isolated.
declare
    kind text;
    has_rows boolean;
    decoded text[] := '{}';
begin
    if not otel.distributed('otel.claimed_otlp') or to_regclass('otel.flush_otlp') is null
       or not exists (select 1 from otel.claimed_otlp) then
        return null;  -- (otel.flush_otlp is made by otel.distribute())
    end if;
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        continue when kind = any (staged_on_workers);  -- checked by otel.type_on_workers()
        execute format('select exists (select 1 from otel.%I)', 'claimed_' || kind) into strict has_rows;
        if has_rows or not otel.working_table_fits(kind) then
            return null;
        end if;
    end loop;
    insert into otel.flush_otlp (row_id, doc)
    select row_id, otel.otlp_json_names(payload::jsonb) from otel.claimed_otlp;
    insert into pg_temp.otel_rejects
    select null, 'otlp', 'otel.otlp_staging', coalesce(c.payload, ''), 'text', otel.otlp_request_error(f.doc)
      from otel.flush_otlp as f
      join otel.claimed_otlp as c on c.row_id = f.row_id
     where otel.otlp_request_error(f.doc) is not null;
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        if otel.insert_typed_on_workers(kind, otel.decoded_rows_on_workers(kind, 'otel.flush_otlp')) > 0 then
            decoded := decoded || kind;
        end if;
    end loop;
    return decoded;
end
$$;
comment on function otel.decode_on_workers(text[]) is
    'On Citus: parses, decodes and types the claimed OTLP/JSON requests on the workers; internal to otel.flush()';

create or replace function otel.move_on_workers(kind text, out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- The rows otel.type_on_workers() and otel.decode_on_workers() typed: the
-- partitions they need, their rejects to the dead-letter queue (a staged
-- row as staged, found on the shards of the claim table by its row id; a
-- decoded record as a request of its own, its request decoded again to
-- find its place), the valid ones to their final table. The working set's
-- own rows of the kind are moved after these, and spans among them find
-- these stored.
declare
    typed regclass := otel.working_table_on_workers(kind);
    first_decoded bigint := otel.decoded_record_n(0, 0);
    first_time timestamptz;
    last_time timestamptz;
    invalid_rows bigint;
begin
    execute format('analyze %s', typed);  -- on every shard: the joins that follow hash rather than loop
    perform otel.partition_working_set(kind, case kind when 'traces' then 'start_time' else 'time' end, typed::text);
    -- The extent is this batch's alone: the working set records its own.
    delete from pg_temp.otel_batch_extent as e where e.kind = move_on_workers.kind
    returning e.first_time, e.last_time, e.invalid_rows into first_time, last_time, invalid_rows;
    if invalid_rows > 0 then
        execute format($sql$
            with rejected as materialized (
                select t.n, t.err from %1$s as t where t.err is not null and t.n < %5$s
            )
            insert into pg_temp.otel_rejects
            select null, %2$L, %3$L, jsonb_strip_nulls(to_jsonb(c) - 'row_id')::text, 'row-json', r.err
              from rejected as r
              join otel.%4$I as c on c.row_id = r.n
        $sql$, typed, kind, 'otel.' || kind || '_staging', 'claimed_' || kind, first_decoded);
        execute format($sql$
            with rejected as materialized (
                select t.n, t.err from %1$s as t where t.err is not null and t.n >= %2$s
            ),
            requests as materialized (
                select f.row_id, f.doc
                  from otel.flush_otlp as f
                 where f.row_id in (select (x.n - %2$s) / 1048576 from rejected as x)
            )
            insert into pg_temp.otel_rejects
            select null, %3$L, 'otel.otlp_staging', otel.otlp_single_record(q.doc, %3$L, r.rs, r.ss, r.rec, r.dp)::text,
                   'text', x.err
              from rejected as x
              join %4$s on r.n = x.n
              join requests as q on q.row_id = r.payload_id
        $sql$, typed, first_decoded, kind,
               otel.decoded_rows_on_workers(kind, 'requests'));
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
    'On Citus: moves the rows otel.type_on_workers() and otel.decode_on_workers() typed to their final table or the dead-letter queue; internal to otel.flush()';

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
    perform otel.upsert_trace_summaries($query$
        select p.trace_id, p.start_time, p.end_time, r.service_name, r.name, p.span_count, p.error_count, p.services
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
    $query$);
end
$$;
comment on function otel.summarize_spans_on_workers() is
    'Adds the spans of otel.flush_spans to otel.trace_summaries on the workers; internal to otel.flush()';

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
