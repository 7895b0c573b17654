-- Stages 3 to 5 for spans on Citus, where otel.distribute() spreads the
-- span staging over the workers (docs/scale-out.md): the claimed spans are
-- typed on the workers into otel.flush_spans, distributed by trace id
-- beside otel.traces and otel.trace_summaries, and every statement that
-- reads all of them runs there, shard by shard. The coordinator gets the
-- batch's extent, its rejects and one span per signature input. OTLP/JSON
-- requests, and claimed spans some value of which defeats the casts, take
-- the working set's way (stages 2 to 5 on the coordinator).

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
