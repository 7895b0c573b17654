-- Stage 4, partition: the accepted time window, and the daily partitions the
-- valid rows need.

create or replace function otel.index_partition(parent text, partition_name text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- The indexes of a daily partition of otel.traces, otel.logs or
-- otel.metrics, each named <partition>_<suffix>. They belong to the
-- partition, not to the partitioned table: an index of the partitioned
-- table must exist on every partition, and a cold partition
-- (otel.set_cold_storage()) is columnar, which takes no GIN or BRIN index
-- and needs none of these to stay a tenth of the size.
declare
    suffix text;
    definition text;
begin
    for suffix, definition in
        select i.suffix, i.definition
          from (values
                ('traces', 'start_time_idx', 'using brin (start_time)'),
                ('traces', 'service_time_idx', '(service_name, start_time desc)'),
                -- A trace's spans by its id: readers and the flush's check
                -- for spans stored before. On trace_id alone B-tree
                -- deduplication keeps each id once per leaf page with its
                -- spans' row pointers: 27 bytes a span where (trace_id,
                -- span_id) took 101 (`python -m bench storage`).
                ('traces', 'trace_idx', '(trace_id)'),
                ('traces', 'errors_idx', '(start_time desc) where status_code = ''ERROR'''),
                ('traces', 'attributes_idx', 'using gin (attributes jsonb_path_ops)'),
                -- A signature's newest spans first, for otel.similar_traces().
                ('traces', 'signature_time_idx', '(signature_id, start_time desc)'),
                ('logs', 'time_idx', 'using brin (time)'),
                ('logs', 'service_time_idx', '(service_name, time desc)'),
                ('logs', 'trace_idx', '(trace_id, time) where trace_id is not null'),
                ('logs', 'body_fts_idx', 'using gin (body_tsv)'),
                ('metrics', 'time_idx', 'using brin (time)'),
                ('metrics', 'name_time_idx', '(name, time desc)'),
                ('metrics', 'labels_idx', 'using gin (labels jsonb_path_ops)')) as i (parent, suffix, definition)
         where i.parent = index_partition.parent
    loop
        execute format('create index if not exists %I on otel.%I %s', partition_name || '_' || suffix, partition_name,
                       definition);
    end loop;
    if not found then
        raise exception 'unknown partitioned table "%": allowed are traces, logs, metrics', parent
            using errcode = 'invalid_parameter_value';
    end if;
end
$$;
comment on function otel.index_partition(text, text) is
    'Creates the indexes of a daily partition of otel.traces, otel.logs or otel.metrics (named <partition>_<suffix>) that it lacks; otel.ensure_partitions() runs it on each partition it creates';

create or replace function otel.ensure_partitions(parent text, days date[])
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Creates the missing daily partitions (UTC days) of otel.<parent>, named
-- otel.<parent>_pYYYYMMDD, with their indexes. Returns how many it created.
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
        perform otel.index_partition(parent, parent || '_p' || to_char(day, 'YYYYMMDD'));
        created := created + 1;
    end loop;
    return created;
end
$$;
comment on function otel.ensure_partitions(text, date[]) is
    'Creates the missing daily partitions (UTC) of otel.traces, otel.logs or otel.metrics for the given days, with their indexes (otel.index_partition())';

create or replace function otel.daily_partitions(parent text)
returns table (name text, day date, columnar boolean)
language sql stable
set search_path = pg_catalog, pg_temp
as $$
    -- The partitions otel.ensure_partitions() names otel.<parent>_pYYYYMMDD,
    -- read back: the day from the name, and the storage from the access
    -- method (cold storage is columnar, the rest heap), that of its slices
    -- for a cold day split by trace id (otel.convert_to_columnar()).
    select c.relname::text, to_date(right(c.relname, 8), 'YYYYMMDD'),
           case when c.relkind = 'p'
                then exists (select from pg_inherits as s
                               join pg_class as slice on slice.oid = s.inhrelid
                               join pg_am as sa on sa.oid = slice.relam
                              where s.inhparent = c.oid and sa.amname <> 'heap')
                else a.amname <> 'heap' end
      from pg_inherits as i
      join pg_class as c on c.oid = i.inhrelid
      left join pg_am as a on a.oid = c.relam
     where i.inhparent = format('otel.%I', parent)::regclass and c.relname ~ '_p[0-9]{8}$'
       and c.relkind in ('r', 'p')
$$;
comment on function otel.daily_partitions(text) is
    'The daily partitions of otel.traces, otel.logs, otel.metrics or otel.cold_trace_summaries: name, UTC day, and whether it is columnar (cold storage, maybe in slices by trace id); internal';

create or replace function otel.accepted_time_window(kind text)
returns tstzrange
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- The times a flush accepts for kind's records: from now() - its retention
-- (unbounded when it has none: by default old data loads) to now() plus
-- the setting otel.future_margin (default 1 day). Older records would be
-- deleted by the next maintenance; records further ahead are a clock or
-- unit error, and each of their days would cost a partition.
declare
    margin_setting text := coalesce(nullif(current_setting('otel.future_margin', true), ''), '1 day');
    margin interval;
    keep interval;
begin
    begin
        margin := margin_setting::interval;
    exception when invalid_datetime_format or datetime_field_overflow or interval_field_overflow then
        null;  -- reported below
    end;
    if margin is null or margin < interval '0' or not isfinite(margin) then
        raise exception 'otel.future_margin % is not a non-negative interval', otel.argument_text(margin_setting)
            using errcode = 'invalid_parameter_value',
                  hint = 'Set it with, for example, alter database … set otel.future_margin = ''1 day''.';
    end if;
    select r.keep into keep from otel.retention as r where r.kind = accepted_time_window.kind;
    return tstzrange(now() - keep, now() + margin, '[]');
end
$$;
comment on function otel.accepted_time_window(text) is
    'The times a flush accepts for traces, logs or metrics: from now() - their retention (none: unbounded) to now() + otel.future_margin (default 1 day)';

create or replace function otel.utc_text(t timestamptz)
returns text
language sql immutable parallel safe
as $$
    -- t as its text reads with timezone UTC and the ISO date style
    -- ('2026-12-07 10:00:00.25+00'), whatever the session's settings: the
    -- same text on every node. Immutable (to_char of a timestamp, in a
    -- format of digits only, depends on no setting), so that Citus lets
    -- an update on the workers build messages with it.
    select case when t = 'infinity' then 'infinity' when t = '-infinity' then '-infinity'
                else to_char(t at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')
                     || coalesce('.' || nullif(rtrim(to_char(t at time zone 'UTC', 'US'), '0'), ''), '') || '+00'
           end
$$;
comment on function otel.utc_text(timestamptz) is
    'A time as text in UTC, as timestamptz text reads with timezone UTC (2026-12-07 10:00:00.25+00), whatever the session''s settings';

create or replace function otel.partition_working_set(kind text, time_column text, typed_rows text default null)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Gives err to the valid rows of pg_temp.otel_<kind> (or of the table
-- typed_rows names: otel.flush_spans, flush_logs or flush_metrics on
-- Citus) outside the accepted
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
begin
    execute extent into first_time, last_time, invalid_rows;
    -- The extent shows whether any row is outside the window: usually none
    -- is, and then no row is read again.
    if first_time is not null and not accepted @> tstzrange(first_time, last_time, '[]') then
        -- Messages of immutable parts only (otel.utc_text(), ||), which
        -- Citus lets the workers compute in an update, unlike format().
        execute format($sql$
            update %1$s
               set err = case when %2$I < lower($1)
                              then '%2$s ' || otel.utc_text(%2$I) || ' is before ' || otel.utc_text(lower($1))
                                   || ', the oldest time the %3$s retention keeps (otel.set_retention())'
                              else '%2$s ' || otel.utc_text(%2$I) || ' is after ' || otel.utc_text(upper($1))
                                   || ', more than otel.future_margin ahead of the database clock'
                          end
             where err is null and not $1 @> %2$I
        $sql$, typed, time_column, kind) using accepted;
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
        -- (a distinct aggregate Citus would compute on the coordinator)
        execute format('select array_agg(d.day) from (select distinct (%I at time zone ''UTC'')::date as day
                                                          from %s where err is null) as d',
                       time_column, typed) into days;
    end if;
    days := array(select day from unnest(days) as day
                   where to_regclass(format('otel.%I', kind || '_p' || to_char(day, 'YYYYMMDD'))) is null
                   order by day);
    perform otel.ensure_partitions(kind, days[1:new_days_limit]);
    if cardinality(days) > new_days_limit then
        execute format($sql$
            update %1$s
               set err = 'no partition for ' || left(otel.utc_text(%2$I), 10)
                         || ': one flush creates at most %3$s new days; otel.retry_dlq() loads it later'
             where err is null and (%2$I at time zone 'UTC')::date = any ($1)
        $sql$, typed, time_column, new_days_limit) using days[new_days_limit + 1:];
        execute extent into first_time, last_time, invalid_rows;
    end if;
    insert into pg_temp.otel_batch_extent values (kind, first_time, last_time, invalid_rows);
end
$$;
comment on function otel.partition_working_set(text, text, text) is
    'Dead-letters the rows of a flush outside the accepted time window and creates the partitions the others need, at most 32 new days at a time; internal to otel.flush()';
