-- pg_cron jobs: otel-flush (every few seconds) and otel-maintenance (hourly).
-- pg_cron lives in one database of the cluster (cron.database_name). From
-- any other database the jobs are registered there through dblink with
-- cron.schedule_in_database, to run here.

create or replace function otel.cron_database()
returns text
language sql stable
as $$
    select nullif(current_setting('cron.database_name', true), '')
$$;
comment on function otel.cron_database() is
    'The database pg_cron lives in (cron.database_name), null when pg_cron is not preloaded';

create or replace function otel.cron_query(query text)
returns setof jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Runs query in the pg_cron database and returns its rows as JSON: here
-- when this is that database, else through dblink (local socket, as the
-- owner of this function).
declare
    cron_db text := otel.cron_database();
    dblink_schema text;
    connection text;
begin
    if cron_db is null then
        raise exception 'pg_cron is not available: add pg_cron to shared_preload_libraries and set cron.database_name, then restart the server'
            using errcode = 'feature_not_supported',
                  hint = 'Until then run "call otel.flush()" from any scheduler you have.';
    end if;
    if cron_db = current_database() then
        if not exists (select 1 from pg_extension where extname = 'pg_cron') then
            raise exception 'pg_cron is preloaded but not installed in database %', cron_db
                using errcode = 'feature_not_supported', hint = 'create extension pg_cron;';
        end if;
        return query execute format('select to_jsonb(q) from (%s) as q', query);
        return;
    end if;
    select n.nspname into dblink_schema
      from pg_extension as e join pg_namespace as n on n.oid = e.extnamespace
     where e.extname = 'dblink';
    if dblink_schema is null then
        raise exception 'pg_cron lives in database %, and reaching it from % needs the dblink extension', cron_db, current_database()
            using errcode = 'feature_not_supported', hint = 'create extension dblink;';
    end if;
    connection := format('dbname=%s port=%s user=%s host=%s', quote_literal(cron_db), current_setting('port'),
                         quote_literal(current_user),
                         quote_literal(coalesce(nullif(split_part(current_setting('unix_socket_directories'), ',', 1), ''),
                                                '127.0.0.1')));
    return query execute format('select j from %I.dblink(%L, %L) as t (j jsonb)', dblink_schema, connection,
                                format('select to_jsonb(q) from (%s) as q', query));
end
$$;
comment on function otel.cron_query(text) is
    'Runs a query in the pg_cron database (here, or through dblink) and returns its rows as JSON; internal';

create or replace function otel.schedule_flush(every text default null)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Registers the pg_cron job otel-flush ("call otel.flush()" in this
-- database) and otel-maintenance (partitions ahead, hourly). every: 'N
-- seconds' (pg_cron 1.5 and later), 'N minutes', or a cron expression that
-- repeats (five fields, or @hourly … @yearly; not @reboot, which would
-- flush once); default every 5 seconds, or every minute on pg_cron 1.4.
declare
    version text;
    second_schedules boolean;
    schedule text;
    seconds numeric;
    minutes numeric;
    job_id bigint;
begin
    select j ->> 'extversion' into version
      from otel.cron_query('select extversion from pg_extension where extname = ''pg_cron''') as j;
    second_schedules := string_to_array(split_part(version, '-', 1), '.')::int[] >= array[1, 5];
    every := lower(trim(every));
    if every is null then
        schedule := case when second_schedules then '5 seconds' else '* * * * *' end;
    elsif every ~ '^[0-9]+ ?(s|sec|secs|second|seconds)$' then
        seconds := substring(every from '^[0-9]+')::numeric;
        if not second_schedules then
            raise exception 'pg_cron % schedules by the minute at best; use ''1 minute'' or a cron expression', version
                using errcode = 'invalid_parameter_value';
        elsif seconds not between 1 and 59 then
            raise exception 'every: seconds must be between 1 and 59, got %', seconds
                using errcode = 'invalid_parameter_value';
        end if;
        schedule := seconds || ' seconds';
    elsif every ~ '^[0-9]+ ?(m|min|mins|minute|minutes)$' then
        minutes := substring(every from '^[0-9]+')::numeric;
        if minutes not between 1 and 59 then
            raise exception 'every: minutes must be between 1 and 59, got %', minutes
                using errcode = 'invalid_parameter_value';
        end if;
        schedule := case minutes when 1 then '* * * * *' else '*/' || minutes || ' * * * *' end;
    elsif every ~ '^\S+( \S+){4}$'
       or every in ('@hourly', '@daily', '@midnight', '@weekly', '@monthly', '@yearly', '@annually') then
        schedule := every;  -- pg_cron checks the fields (22023 'invalid schedule')
    else
        raise exception 'every must be ''N seconds'', ''N minutes'' or a cron expression that repeats (not @reboot), got %',
                        otel.argument_text(every)
            using errcode = 'invalid_parameter_value';
    end if;

    if exists (select 1 from otel.cron_query(
                   'select database from cron.job where jobname in (''otel-flush'', ''otel-maintenance'')') as j
                where j ->> 'database' <> current_database()) then
        raise exception 'the pg_cron job otel-flush already belongs to another database; unschedule it there first'
            using errcode = 'object_in_use';
    end if;
    select (j ->> 'id')::bigint into job_id
      from otel.cron_query(format('select cron.schedule_in_database(%L, %L, %L, %L) as id',
                                  'otel-flush', schedule, 'call otel.flush()', current_database())) as j;
    perform otel.cron_query(format('select cron.schedule_in_database(%L, %L, %L, %L) as id',
                                   'otel-maintenance', '17 * * * *', 'call otel.maintain()', current_database()));
    return job_id;
end
$$;
comment on function otel.schedule_flush(text) is
    'Registers the pg_cron jobs otel-flush (default every 5 seconds, every minute on pg_cron 1.4) and otel-maintenance; returns the otel-flush job id';

create or replace function otel.unschedule_flush()
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Removes this database's otel-flush and otel-maintenance jobs; false when
-- there were none.
declare
    removed integer;
begin
    select count(*) into removed
      from otel.cron_query(format(
               'select cron.unschedule(jobid) from cron.job where jobname in (%L, %L) and database = %L',
               'otel-flush', 'otel-maintenance', current_database()));
    return removed > 0;
end
$$;
comment on function otel.unschedule_flush() is
    'Removes the pg_cron jobs otel-flush and otel-maintenance of this database; false when there were none';
