-- Stage 1, claim: committed staging rows move to the claim tables in a
-- short transaction of their own, then into the working set.

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
    staging regclass;
    refused text;
begin
    perform otel.take_flush_lock();
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
            staging := format('otel.%I', kind || '_staging');
            if not otel.distributed(staging) then
                execute format('with claimed as (delete from %s returning *) insert into otel.%I select * from claimed',
                               staging, 'claimed_' || kind);
                continue;
            end if;
            -- On Citus, shard by shard on the workers, each into the claim
            -- shard beside it (as one statement Citus would pull every row
            -- through the coordinator). Each shard's move commits at once,
            -- on its own: a row is in one table or the other either way, and
            -- this flush takes the claim tables' rows in its next transaction.
            select string_agg(format('%s:%s: %s', c.nodename, c.nodeport, c.result), '; ') into refused
              from run_command_on_colocated_placements(
                       staging, format('otel.%I', 'claimed_' || kind),
                       'with claimed as (delete from %s returning *) insert into %s select * from claimed') as c
             where not c.success;
            if refused is not null then
                raise exception 'could not claim the rows of % on every worker: %', staging, refused;
            end if;
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
-- (otel.type_claimed(), or on Citus otel.type_on_workers(), and otlp for
-- requests otel.decode_on_workers() decoded), into the working set (delete
-- … returning, which is right under any isolation level). Returns the
-- number of OTLP requests.
declare
    requests bigint;
    kind text;
    load_requests text;
begin
    if 'otlp' = any (typed_in_place) then
        select count(*) into requests from otel.claimed_otlp;
    else
        -- A null payload (a blank line through COPY … csv) is an empty
        -- request: not valid JSON, so a dead letter with empty raw_data. One
        -- cast for all requests first: otel.try_jsonb() costs a
        -- subtransaction and a copy of the document each, about as much
        -- again as the parsing. In staging order on Citus, as below.
        load_requests := format('with claimed as (delete from otel.claimed_otlp returning *)
                                 insert into pg_temp.otel_otlp (payload, doc)
                                 select coalesce(payload, ''''), otel.otlp_json_names(%%s) from claimed %s',
                                case when otel.distributed('otel.claimed_otlp') then 'order by row_id' else '' end);
        if otel.distributed('otel.claimed_otlp') then
            -- Only when the workers failed on them (see otel.flush()); one
            -- statement that cannot fail, request by request: Citus does not
            -- reliably take up its connections again after a statement over
            -- the shards was rolled back to a savepoint.
            execute format(load_requests, 'otel.try_jsonb(payload)');
        else
            begin
                execute format(load_requests, 'payload::jsonb');
            exception when data_exception or program_limit_exceeded then
                -- Some request is not JSON, or nests too deep (the delete was
                -- rolled back with the insert).
                execute format(load_requests, 'otel.try_jsonb(payload)');
            end;
        end if;
        get diagnostics requests = row_count;
    end if;
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        continue when kind = any (typed_in_place);
        -- In staging order on Citus (the shards return their rows one after
        -- another), so that the first of two repeated spans is kept.
        execute format('with claimed as (delete from otel.%3$I returning *)
                        insert into pg_temp.%1$I (%2$s) select %2$s from claimed %4$s',
                       'otel_' || kind || '_rows', otel.staging_columns(kind), 'claimed_' || kind,
                       case when otel.distributed(format('otel.%I', 'claimed_' || kind)::regclass)
                            then 'order by row_id' else '' end);
    end loop;
    return requests;
end
$$;
comment on function otel.load_claimed(text[]) is
    'Moves the claimed rows not yet typed into the working set of the flush; internal to otel.flush()';
