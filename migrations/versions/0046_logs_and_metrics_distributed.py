"""otel.distribute() spreads logs by time and metric points by name; otel.search_logs() runs on Citus.

Logs have no key every record carries but their time (most have no trace
id, and Citus refuses a null distribution key): they spread over the shards
by time, and trace_logs() and search_logs() ask every shard. Points go to
shards by metric name, so that a series is read from one shard. The
partition walk of otel.search_logs() reads otel.daily_partitions(), and
its count of matches selects a column (Citus plans no empty select list).
otel.metric_names() skips through names with a recursive query, which
Citus plans only on one shard: on Citus each shard finds its own names.

Revision ID: 0046
Revises: 0045
"""

from migrations.schema import execute_sql, released_routine

revision = "0046"
down_revision = "0045"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.search_logs(
    query text, since timestamptz default null, until timestamptz default null, service text default null,
    min_severity integer default null, lim integer default 100)
returns table (
    "time" timestamptz, severity_number integer, severity_text text, service_name text, body text,
    trace_id text, span_id text, rank real)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- websearch_to_tsquery syntax ("quoted phrase", or, -not), on the stored
-- body_tsv and its full-text index. Ranking reads every match it ranks, so
-- without `since` the window starts at the newest days (partitions, newest
-- first) that hold enough matches, not at the oldest log: the cost follows
-- a day's matches, not the whole store's.
declare
    tsquery tsquery;
    candidates constant integer := greatest(lim, 1000);
    found integer := 0;
    day_start timestamptz;
    window_start timestamptz := since;
begin
    if query is null or trim(query) = '' then
        raise exception 'query must be words to search for (websearch syntax), got %', otel.argument_text(query)
            using errcode = 'invalid_parameter_value';
    end if;
    if length(query) > 10000 then
        raise exception 'query must be at most 10000 characters of words to search for, got %', otel.argument_text(query)
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_time_range(since, until, false);
    perform otel.check_limit(lim);
    if min_severity is not null and min_severity not between 1 and 24 then
        raise exception 'min_severity must be an OTLP severity number 1..24 (9 = INFO, 17 = ERROR), got %', min_severity
            using errcode = 'invalid_parameter_value';
    end if;
    tsquery := websearch_to_tsquery('english', query);
    if numnode(tsquery) = 0 then
        return;  -- only stop words
    end if;
    if since is null then
        for day_start in
            select p.day::timestamp at time zone 'UTC' from otel.daily_partitions('logs') as p order by p.day desc
        loop
            continue when day_start >= until;
            found := found + (
                select count(*)
                  from (select 1  -- a column: Citus plans no select list without one
                          from otel.logs as l
                         where l.time >= day_start and l.time < day_start + interval '1 day'
                           and l.body_tsv @@ tsquery
                           and (until is null or l.time < until)
                           and (service is null or l.service_name = service)
                           and (min_severity is null or l.severity_number >= min_severity)
                         limit candidates - found) as m);
            if found >= candidates then
                window_start := day_start;
                exit;
            end if;
        end loop;
    end if;
    return query
        select l.time, l.severity_number, l.severity_text, l.service_name, l.body, l.trace_id, l.span_id,
               ts_rank(l.body_tsv, tsquery)
          from otel.logs as l
         where l.body_tsv @@ tsquery
           and (window_start is null or l.time >= window_start)
           and (until is null or l.time < until)
           and (service is null or l.service_name = service)
           and (min_severity is null or l.severity_number >= min_severity)
         order by 8 desc, l.time desc
         limit lim;
end
$$;
comment on function otel.search_logs(text, timestamptz, timestamptz, text, integer, integer) is
    'Full-text search of log bodies in `websearch_to_tsquery(''english'', …)` syntax (`"a phrase"`, `or`, `-word`), best rank first, then newest: time, severity_number, severity_text, service_name, body, trace_id, span_id, rank. Ranks every match in [since, until); without `since`, the matches of the newest days (UTC) that together hold at least max(lim, 1000) of them, so that its cost follows a day''s matches, not the store''s size (older matches are ranked when the newer days hold fewer)';

create or replace function otel.distribute(shard_count integer default 32)
returns setof text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- otel.traces and otel.trace_summaries are distributed by trace_id in
-- shard_count co-located shards, so that a trace's spans and its summary
-- are on one worker and a lookup by trace id is routed there; the span
-- signatures and the catalog of operations, which every worker joins, are
-- reference tables (a copy on each node). Log records spread by time, the
-- one key every record has (most have no trace id, and Citus refuses a
-- null key); metric points by name, so that a series is on one shard. The
-- staging tables and the dead-letter queue stay on the coordinator: staged
-- rows may lack the key that would place them. Citus reads and writes
-- the shards as the current role: otel_reader and otel_admin, which
-- cannot log in on the coordinator, may on the workers (only there; who
-- can connect is then the workers' pg_hba.conf). Returns what it changed;
-- run again, it changes nothing but what a new worker lacks.
declare
    target record;
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
    for target in
        select *
          from (values (1, 'otel.traces'::regclass, 'trace_id', 'default'),
                       (2, 'otel.trace_summaries'::regclass, 'trace_id', 'otel.traces'),
                       (3, 'otel.span_signatures'::regclass, null, null),
                       (4, 'otel.operation_catalog'::regclass, null, null),
                       (5, 'otel.logs'::regclass, 'time', 'none'),
                       (6, 'otel.metrics'::regclass, 'name', 'none')) as t (n, relation, key, colocate_with)
         order by n
    loop
        continue when otel.distributed(target.relation);
        if target.key is null then
            perform create_reference_table(target.relation);
            return next format('%s: reference', target.relation);
            continue;
        end if;
        if target.colocate_with in ('default', 'none') then
            perform create_distributed_table(target.relation, target.key, shard_count => distribute.shard_count,
                                             colocate_with => target.colocate_with);
        else
            perform create_distributed_table(target.relation, target.key, colocate_with => target.colocate_with);
        end if;
        return next format('%s: distributed by %s', target.relation, target.key);
    end loop;
    foreach role_name in array array['otel_reader', 'otel_admin'] loop
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
    'On a Citus coordinator, after `alembic upgrade head`: distributes otel.traces and otel.trace_summaries by trace_id in shard_count (default 32) co-located shards, otel.logs by time and otel.metrics by name, and makes otel.span_signatures and otel.operation_catalog reference tables; lets otel_reader and otel_admin log in on the workers (Citus reaches the shards as the current role); returns what it changed (nothing when run again, unless a worker was added). Staging and dead letters stay on the coordinator';

create or replace function otel.metric_names(
    since timestamptz default now() - interval '1 day',
    until timestamptz default now())
returns table (name text, type text, unit text, last_seen timestamptz)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- The distinct names come from skipping through the (name, time) index of
-- the window's partitions, one probe a name rather than a scan of every
-- point; each name's newest point in the window gives its type and unit.
-- The window bounds the skipping too: a cold partition has no index, and
-- those outside the window need no reading. On Citus, where otel.metrics
-- is distributed by name (otel.distribute()) and a recursive query must
-- stay on one shard, each shard finds the newest point of its own names.
begin
    perform otel.check_time_range(since, until, true);
    if otel.distributed('otel.metrics') then
        return query
            select distinct on (m.name) m.name, m.type, m.unit, m.time
              from otel.metrics as m
             where m.time >= metric_names.since and m.time < metric_names.until
             order by m.name, m.time desc;
        return;
    end if;
    return query
        with recursive names (name) as (
            (select m.name from otel.metrics as m
              where m.time >= metric_names.since and m.time < metric_names.until
              order by m.name limit 1)
            union all
            select (select m.name from otel.metrics as m
                     where m.name > names.name and m.time >= metric_names.since and m.time < metric_names.until
                     order by m.name limit 1)
              from names
             where names.name is not null
        )
        select n.name, newest.type, newest.unit, newest.time
          from names as n
         cross join lateral (
                select m.type, m.unit, m.time
                  from otel.metrics as m
                 where m.name = n.name and m.time >= metric_names.since and m.time < metric_names.until
                 order by m.time desc
                 limit 1) as newest
         where n.name is not null
         order by n.name;
end
$$;
comment on function otel.metric_names(timestamptz, timestamptz) is
    'The metrics with points in [since, until): name, and the type, unit and time of the newest point; by name. The names come from skipping through the (name, time) index, one probe a name';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0028", "otel.search_logs"))
    execute_sql(released_routine("0044", "otel.distribute"))
    execute_sql(released_routine("0038", "otel.metric_names"))
