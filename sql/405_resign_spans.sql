-- Re-signing stored spans after a release changed what a signature says
-- (otel.span_signature()): each span moves to the signature a flush would
-- give it now, the new signatures queue for embedding, and the old ones
-- left without spans go. Two steps a day, each its own transaction when
-- otel.resign_spans() runs them: the new signatures are committed before
-- any span moves, so that a flush that makes the same text meanwhile never
-- waits behind the long update of a partition.

create or replace function otel.resign_signatures(day date)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Step 1: for each distinct (signature, signature input) of the day's
-- spans, the text a flush would give it now (signed once, from its first
-- span, as the flush does); those whose text changed are kept in
-- pg_temp.otel_resign_moves for step 2 (it outlives the transaction), and
-- the texts not stored yet become signatures without spans. Returns the
-- number of signatures created.
declare
    partition_name text := 'traces_p' || to_char(day, 'YYYYMMDD');
    created bigint;
begin
    if day is null then
        raise exception 'day must be a date, got null' using errcode = 'invalid_parameter_value';
    end if;
    drop table if exists pg_temp.otel_resign_moves;
    create temp table otel_resign_moves (old_id bigint, signature_input bigint, text text);
    if to_regclass(format('otel.%I', partition_name)) is null then
        return 0;
    end if;
    -- One re-signing of a day at a time (this lock conflicts with itself,
    -- not with readers, the flush or the update below).
    execute format('lock table otel.%I in share update exclusive mode', partition_name);
    execute format($sql$
        create temp table otel_resign_inputs on commit drop as
        select t.signature_id as old_id,
               otel.signature_input(t.service_name, t.kind, t.name, t.status_code, t.status_message,
                                    t.attributes, t.events) as signature_input,
               min(t.ctid) as first_span
          from otel.%1$I as t
         where t.signature_id is not null
         group by 1, 2$sql$, partition_name);
    analyze pg_temp.otel_resign_inputs;
    execute format($sql$
        insert into pg_temp.otel_resign_moves
        select i.old_id, i.signature_input, s.text
          from pg_temp.otel_resign_inputs as i
          join otel.%1$I as t on t.ctid = i.first_span
         cross join lateral (
             select otel.span_signature(t.service_name, t.kind, t.name, t.status_code, t.status_message,
                                        t.attributes, t.events) as text
         ) as s
          left join otel.span_signatures as old on old.id = i.old_id
         where old.text_hash is distinct from md5(s.text)::uuid$sql$, partition_name);
    -- do nothing: a signature that exists already is left unlocked
    insert into otel.span_signatures (text)
    select distinct m.text from pg_temp.otel_resign_moves as m
    on conflict (text_hash) do nothing;
    get diagnostics created = row_count;
    if created > 0 then
        perform pg_notify('otel_signatures', 'new');  -- wakes `otel-db embed --watch`
    end if;
    return created;
end
$$;
comment on function otel.resign_signatures(date) is
    'Step 1 of re-signing a daily partition of otel.traces: finds the spans whose signature text changed and stores their new signatures; internal to otel.resign_spans()';

create or replace function otel.resign_partition(day date)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Step 2: the spans found by step 1 (run here first when it has not run in
-- this session) move to their new signatures; only those are rewritten.
-- The span counts follow what the update moved, and an old signature that
-- no span uses any more is deleted. Returns the number of spans moved.
declare
    partition_name text := 'traces_p' || to_char(day, 'YYYYMMDD');
    moved bigint;
begin
    if day is null then
        raise exception 'day must be a date, got null' using errcode = 'invalid_parameter_value';
    end if;
    if to_regclass('pg_temp.otel_resign_moves') is null then
        perform otel.resign_signatures(day);
    end if;
    if to_regclass(format('otel.%I', partition_name)) is null then
        drop table pg_temp.otel_resign_moves;
        return 0;
    end if;
    execute format('lock table otel.%I in share update exclusive mode', partition_name);
    create temp table otel_resign_counts (old_id bigint, new_id bigint, spans bigint) on commit drop;
    execute format($sql$
        with moved as (
            update otel.%1$I as t
               set signature_id = s.id
              from pg_temp.otel_resign_moves as m
              join otel.span_signatures as s on s.text_hash = md5(m.text)::uuid
             where t.signature_id = m.old_id
               and otel.signature_input(t.service_name, t.kind, t.name, t.status_code, t.status_message,
                                        t.attributes, t.events) = m.signature_input
            returning m.old_id, s.id as new_id
        )
        insert into pg_temp.otel_resign_counts
        select old_id, new_id, count(*) from moved group by 1, 2$sql$, partition_name);
    drop table pg_temp.otel_resign_moves;
    select coalesce(sum(c.spans), 0) into moved from pg_temp.otel_resign_counts as c;
    -- Counts last, just before the commit, rows locked in id order: a flush
    -- upserting the same signatures waits for a moment, not for the update.
    perform from otel.span_signatures as s
     where s.id in (select c.old_id from pg_temp.otel_resign_counts as c
                    union select c.new_id from pg_temp.otel_resign_counts as c)
     order by s.id
       for update;
    update otel.span_signatures as s
       set span_count = s.span_count + d.change
      from (select c.new_id as id, c.spans as change from pg_temp.otel_resign_counts as c
            union all
            select c.old_id, -c.spans from pg_temp.otel_resign_counts as c) as d
     where s.id = d.id;
    -- A statement of its own, so that its snapshot sees the spans of
    -- flushes that committed while the rows above were being locked. The
    -- spans are looked up apart from the delete, which would need the row
    -- position (ctid) of each, and a cold (columnar) partition has none.
    with unused as materialized (
        select c.old_id as id
          from pg_temp.otel_resign_counts as c
         where not exists (select from otel.traces as t where t.signature_id = c.old_id)
    )
    delete from otel.span_signatures as s using unused where s.id = unused.id;
    return moved;
end
$$;
comment on function otel.resign_partition(date) is
    'Step 2 of re-signing a daily partition of otel.traces: moves its spans to the signatures otel.span_signature() gives them now (running step 1 first if needed); returns the number of spans moved; internal to otel.resign_spans()';

create or replace procedure otel.resign_spans(since timestamptz default null)
language plpgsql
as $$
-- Partition by partition, oldest first, each step its own transaction: it
-- can be stopped and run again, and it never holds more than one day's
-- rows. Call it outside a transaction block (it commits). It has no `set
-- search_path` clause, which would forbid the commits; it is not security
-- definer either, so it runs with the caller's rights and settings, and
-- the work is done by the two functions, which pin theirs.
declare
    day date;
    columnar boolean;
    moved bigint;
begin
    for day, columnar in
        select p.day, p.columnar
          from otel.daily_partitions('traces') as p
         where since is null or p.day >= (since at time zone 'UTC')::date
         order by p.day
    loop
        if columnar then  -- a cold partition takes no updates
            raise notice 'otel_db: the spans of % are in cold storage (columnar) and keep their signatures', day;
            continue;
        end if;
        perform otel.resign_signatures(day);
        commit;
        moved := otel.resign_partition(day);
        raise notice 'otel_db: % spans of % re-signed', moved, day;
        commit;
    end loop;
end
$$;
comment on procedure otel.resign_spans(timestamptz) is
    'Re-signs the stored spans (of the UTC days from since on, all when null) after an upgrade changed otel.span_signature(); run it outside a transaction block: one daily partition at a time, in two transactions; spans move to the signature a flush would give them now, new signatures are embedded by the embedding worker, old ones left without spans are deleted; partitions in cold storage (columnar) keep theirs';
