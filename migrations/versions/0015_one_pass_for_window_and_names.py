"""The accepted time window is tested on the extent the partition step reads anyway, and proto field names are renamed as requests are parsed: two passes over the working set fewer.

otel.reject_outside_time_window() scanned each kind's rows for their
extent before otel.partition_working_set() scanned them again for the same
extent; the test now sits in the latter. Renaming resource_spans and the
other proto names was an update of every claimed request, which read each
document from the working set once more; otel.otlp_json_names() does it
while the document is parsed, in memory.

Revision ID: 0015
Revises: 0014
"""

from migrations.schema import execute_sql, released_routine

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.otlp_json_names(doc jsonb)
returns jsonb
language plpgsql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
-- A request as it is parsed, with proto field names renamed when it uses
-- them (OTLP/JSON readers take both): here the document is in memory, later
-- each test would read it from the working set again.
begin
    if doc ?| '{resource_spans,resource_logs,resource_metrics}' then
        return otel.otlp_camel_case(doc);
    end if;
    return doc;
end
$$;
comment on function otel.otlp_json_names(jsonb) is
    'An OTLP/JSON request with its proto field names (resource_spans) renamed as proto3 JSON names them; the request itself when it has none';

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
        select coalesce(payload, ''), otel.otlp_json_names(payload::jsonb) from claimed;
    exception when data_exception or program_limit_exceeded then
        -- Some request is not JSON, or nests too deep (the delete was rolled
        -- back with the insert).
        with claimed as (delete from otel.claimed_otlp returning payload)
        insert into pg_temp.otel_otlp (payload, doc)
        select coalesce(payload, ''), otel.otlp_json_names(otel.try_jsonb(payload)) from claimed;
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

create or replace function otel.partition_working_set(kind text, time_column text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Gives err to the valid rows of pg_temp.otel_<kind> outside the accepted
-- time window (otel.accepted_time_window()), then creates the partitions
-- the others need, at most new_days_limit new days in one flush: a batch
-- spread over thousands of days would otherwise exhaust the lock table and
-- fail every flush. Rows of the days left over get err (so a dead letter
-- that otel.retry_dlq() loads in a later run). Records the batch's extent
-- in pg_temp.otel_batch_extent, which the steps after it read instead of
-- scanning every row again.
declare
    new_days_limit constant integer := 32;
    extent text := format('select min(%1$I) filter (where err is null), max(%1$I) filter (where err is null),
                                  count(*) filter (where err is not null)
                             from pg_temp.%2$I', time_column, 'otel_' || kind);
    accepted tstzrange := otel.accepted_time_window(kind);
    first_time timestamptz;
    last_time timestamptz;
    invalid_rows bigint;
    first_day date;
    last_day date;
    days date[];
begin
    execute extent into first_time, last_time, invalid_rows;
    -- The extent shows whether any row is outside the window: usually none
    -- is, and then no row is read again.
    if first_time is not null and not accepted @> tstzrange(first_time, last_time, '[]') then
        execute format($sql$
            update pg_temp.%1$I
               set err = case when %2$I < lower($1)
                              then format('%2$s %%s is before %%s, the oldest time the %3$s retention keeps (otel.set_retention())',
                                          %2$I, lower($1))
                              else format('%2$s %%s is after %%s, more than otel.future_margin ahead of the database clock',
                                          %2$I, upper($1))
                          end
             where err is null and not $1 @> %2$I
        $sql$, 'otel_' || kind, time_column, kind) using accepted;
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
$$;
comment on function otel.partition_working_set(text, text) is
    'Dead-letters the rows of a flush outside the accepted time window and creates the partitions the others need, at most 32 new days at a time; internal to otel.flush()';

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
    -- An object without resourceSpans, resourceLogs or resourceMetrics is an
    -- empty request, as valid as it is in OTLP: nothing to store.
    insert into pg_temp.otel_rejects
    select dlq_id, 'otlp', 'otel.otlp_staging', payload, 'text',
           case when doc is null then 'not valid JSON (an OTLP/JSON request is one JSON object per line)'
                else 'not an OTLP/JSON export request: expected an object with resourceSpans, resourceLogs or resourceMetrics' end
      from pg_temp.otel_otlp
     where doc is null or jsonb_typeof(doc) <> 'object';

    foreach k in array array['traces', 'logs', 'metrics'] loop
        perform otel.decode_otlp(k);
        perform otel.type_rows(k);
        perform otel.partition_working_set(k, case k when 'traces' then 'start_time' else 'time' end);
        perform otel.reject_invalid_rows(k);
        case k
            when 'traces' then select * into result from otel.move_traces();
            when 'logs' then select * into result from otel.move_logs();
            when 'metrics' then select * into result from otel.move_metrics();
        end case;
        kind := k;
        moved := result.moved;
        duplicates := result.duplicates;
        return next;
    end loop;
end
$$;
comment on function otel.process_working_set() is
    'Decodes, validates and moves the working set of a flush or a retry; internal';

create or replace procedure otel.retry_dlq(max_retries integer default 3)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set timezone = 'UTC'
set jit = off
as $$
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
    perform otel.take_flush_lock();
    perform otel.flush_prepare();

    create temp table otel_retried on commit drop as
        select id, telemetry_type, source, raw_data, raw_format
          from otel.telemetry_dlq
         where processed_at is null and retry_count < max_retries
         order by id
           for update skip locked;

    insert into pg_temp.otel_otlp (dlq_id, payload, doc)
    select id, raw_data, otel.otlp_json_names(otel.try_jsonb(raw_data))
      from otel_retried
     where raw_format = 'text';
    foreach kind in array array['traces', 'logs', 'metrics'] loop
        execute format($sql$
            insert into pg_temp.%2$I (dlq_id, %4$s)
            select r.id, %4$s
              from otel_retried as r
             cross join lateral jsonb_populate_record(null::otel.%3$I, otel.try_jsonb(r.raw_data)) as s
             where r.raw_format = 'row-json' and r.telemetry_type = %1$L
               and jsonb_typeof(otel.try_jsonb(r.raw_data)) = 'object'
        $sql$, kind, 'otel_' || kind || '_rows', kind || '_staging', otel.staging_columns(kind));
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
$$;
comment on procedure otel.retry_dlq(integer) is
    'Re-validates unprocessed dead letters tried fewer than max_retries times: moves the good ones, counts the attempt on the rest';

revoke all on function otel.otlp_json_names(jsonb) from public;

drop function otel.reject_outside_time_window(text, text);
"""

DOWNGRADE = r"""
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

create or replace function otel.partition_working_set(kind text, time_column text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
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
$$;
comment on function otel.partition_working_set(text, text) is
    'Creates the partitions the rows of a flush need, at most 32 new days at a time; internal to otel.flush()';

drop function otel.otlp_json_names(jsonb);
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
    execute_sql(released_routine("0012", "otel.reject_outside_time_window"))
    execute_sql("revoke all on function otel.reject_outside_time_window(text, text) from public")
    execute_sql(released_routine("0013", "otel.process_working_set"))
    execute_sql(released_routine("0008", "otel.retry_dlq"))
