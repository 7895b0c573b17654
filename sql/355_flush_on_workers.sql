-- Stages 3 to 6 on Citus, where otel.distribute() spreads the staging of
-- rows over the workers (docs/scale-out.md): the claimed rows of each kind
-- are typed on the workers into a working table, and every statement that
-- reads all of them runs there, shard by shard. Spans are typed into
-- otel.flush_spans, distributed by trace id beside otel.traces and
-- otel.trace_summaries; log records and metric points stay on the shards
-- of their claim (otel.flush_logs, otel.flush_metrics) until they are
-- inserted into the shards of their final tables. The coordinator gets
-- each batch's extent, its rejects and one span per signature input.
-- OTLP/JSON requests, and claimed rows some value of which defeats the
-- casts, take the working set's way (stages 2 to 6 on the coordinator).

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
    -- Made by otel.distribute() from the typing query of its release: a
    -- later release's may differ, and then the coordinator types the rows.
    if otel.typed_columns(typed) is distinct from otel.typed_columns(format('pg_temp.%I', 'otel_' || kind)::regclass) then
        raise warning 'otel_db: % is not shaped as this release types %: the coordinator types them until otel.distribute() is run again',
                      typed, kind;
        return false;
    end if;
    begin
        execute format('insert into %s select %s from (%s) as q',
                       typed, typed_columns, otel.typing_query(kind, otel.claimed_rows_on_workers(kind)));
    exception when others then
        -- A worker out of reach fails the coordinator's way too.
        if otel.is_server_trouble(sqlstate) or left(sqlstate, 2) = '08' then raise; end if;
        return false;
    end;
    execute format('analyze %s', typed);  -- on every shard: the joins that follow hash rather than loop
    return true;
end
$$;
comment on function otel.type_on_workers(text) is
    'On Citus: validates and casts the claimed rows of a kind on the workers; internal to otel.flush()';

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
