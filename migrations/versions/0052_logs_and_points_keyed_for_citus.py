"""Log records and metric points carry the keys by which otel.distribute() spreads them over Citus workers.

otel.logs.shard_key is otel.log_shard_key(): the trace id of a record in a
trace, so that Citus places it beside the trace's spans (co-located with
otel.traces), or for a record outside any trace 16 hex digits of a hash of
its time and body. otel.metrics.series_key is otel.metric_series_key() of
the point's name, service, labels and resource: one value per series, so
that a series reads from one shard while the series of a busy metric spread
over every worker. The flush fills a key only where the table is
distributed by it; on one node both stay null and take no space.
otel.distribute() distributes by them instead of by time and by metric
name: it fills the keys of the rows stored before, and redistributes a
table an earlier release distributed otherwise. otel.trace_logs() reads the
one shard of the trace on Citus; the windows of otel.metric_series_rate()
and otel.metric_series_quantile() are partitioned by series_key first, so
that the workers difference the series on their shards.

Revision ID: 0052
Revises: 0051
"""

from migrations.schema import execute_sql, released_routine

revision = "0052"
down_revision = "0051"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.distribution_column(relation regclass)
returns text
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Null for a table Citus does not hash-distribute (a reference table too).
declare
    result text;
begin
    if to_regclass('pg_catalog.pg_dist_partition') is null then
        return null;
    end if;
    execute 'select column_to_column_name(logicalrelid, partkey) from pg_catalog.pg_dist_partition
              where logicalrelid = $1 and partmethod = ''h''' into result using relation;
    return result;
end
$$;
comment on function otel.distribution_column(regclass) is
    'The column by which Citus hash-distributes a table (null for any other table, and without Citus)';

create or replace function otel.log_shard_key(trace_id text, "time" timestamptz, body text)
returns text
language sql immutable parallel safe
as $$
-- A record in a trace goes where the trace's spans are; Citus refuses a
-- null key, so the others get one of their own: up to 16 hex digits
-- (never 32, a trace id's length) of a hash of their time and body, which
-- spreads them. Immutable parts only, so that the flush inlines it.
select coalesce(trace_id, to_hex(hashtextextended(coalesce(body, ''),
                                                  (extract(epoch from "time" - timestamptz 'epoch') * 1000000)::bigint)))
$$;
comment on function otel.log_shard_key(text, timestamptz, text) is
    'The key by which Citus spreads log records (otel.logs.shard_key): the trace id, or for a record outside any trace up to 16 hex digits of a hash of its time and body';

create or replace function otel.move_logs(out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- shard_key only where Citus distributes by it (otel.distribute()): on one
-- node it stays null and takes no space.
declare
    keyed constant boolean := otel.distribution_column('otel.logs') = 'shard_key';
begin
    insert into otel.logs (
        time, observed_time, severity_number, severity_text, body, trace_id, span_id, flags,
        service_name, scope_name, scope_version, attributes, resource_attributes, event_name, shard_key)
    select time, observed_time, severity_number, severity_text, body, trace_id, span_id, flags,
           service_name, scope_name, scope_version, attributes, resource_attributes, event_name,
           case when keyed then otel.log_shard_key(trace_id, time, body) end
      from pg_temp.otel_logs
     where err is null;
    get diagnostics moved = row_count;
    duplicates := 0;  -- log records have no identity to deduplicate by
end
$$;
comment on function otel.move_logs() is
    'Moves the valid log records of a flush into otel.logs; internal to otel.flush()';

create or replace function otel.metric_series_key(name text, service_name text, labels jsonb, resource_attributes jsonb)
returns bigint
language sql immutable parallel safe
as $$
-- A series is a metric's points with the same labels and resource, as
-- otel.metric_series() groups them. jsonb's text form is canonical (keys
-- sorted, one spelling per value); the separators keep ('a', 'b c') and
-- ('a b', 'c') apart. Immutable parts only, so that the flush inlines it.
select hashtextextended(name || e'\x1f' || coalesce(service_name, '') || e'\x1f' || labels::text || e'\x1f'
                        || resource_attributes::text, 0)
$$;
comment on function otel.metric_series_key(text, text, jsonb, jsonb) is
    'The 64-bit hash that names a metric series (name, service_name, labels, resource_attributes): otel.metrics.series_key, by which Citus spreads the points';

create or replace function otel.move_metrics(out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- series_key only where Citus distributes by it (otel.distribute()): on one
-- node it stays null and takes no space.
declare
    keyed constant boolean := otel.distribution_column('otel.metrics') = 'series_key';
begin
    insert into otel.metrics (
        time, start_time, name, description, type, unit, value, int_value, count, sum, min, max,
        bucket_counts, explicit_bounds, quantiles, exponential, exemplars, temporality, is_monotonic,
        flags, labels, resource_attributes, service_name, scope_name, scope_version, series_key)
    select time, start_time, name, description, type, unit, value, int_value, count, sum, min, max,
           bucket_counts, explicit_bounds, quantiles, exponential, exemplars, temporality, is_monotonic,
           flags, labels, resource_attributes, service_name, scope_name, scope_version,
           case when keyed then otel.metric_series_key(name, service_name, labels, resource_attributes) end
      from pg_temp.otel_metrics
     where err is null;
    get diagnostics moved = row_count;
    duplicates := 0;  -- data points have no identity to deduplicate by
end
$$;
comment on function otel.move_metrics() is
    'Moves the valid data points of a flush into otel.metrics; internal to otel.flush()';

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
-- (logs by time, points by name) is redistributed. The staging tables and
-- the dead-letter queue stay on the coordinator: staged rows may lack the
-- key that would place them. Citus reads and writes
-- the shards as the current role: otel_reader and otel_admin, which
-- cannot log in on the coordinator, may on the workers (only there; who
-- can connect is then the workers' pg_hba.conf). Returns what it changed;
-- run again, it changes nothing but what a new worker lacks.
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
    'On a Citus coordinator, after `alembic upgrade head`: distributes otel.traces and otel.trace_summaries by trace_id in shard_count (default 32) co-located shards, otel.logs by shard_key co-located with the spans (a record in a trace beside its spans) and otel.metrics by series_key (one shard a series), redistributing a table an earlier release distributed otherwise, and makes otel.span_signatures and otel.operation_catalog reference tables; lets otel_reader and otel_admin log in on the workers (Citus reaches the shards as the current role); returns what it changed (nothing when run again, unless a worker was added). Staging and dead letters stay on the coordinator';

create or replace function otel.trace_logs(trace_id text)
returns table (
    "time" timestamptz, severity_number integer, severity_text text, service_name text, body text,
    span_id text, attributes jsonb)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Logs carry the trace id; with the trace's time range (give or take a day
-- for clock skew and late records) only its partitions are searched. On
-- Citus the shard key names the one shard that holds them.
declare
    wanted text := otel.normalize_trace_id(trace_logs.trace_id);
    first_start timestamptz;
    last_end timestamptz;
begin
    select s.start_time - interval '1 day', s.end_time + interval '1 day' into first_start, last_end
      from otel.trace_summaries as s
     where s.trace_id = wanted;
    if otel.distribution_column('otel.logs') = 'shard_key' then
        return query
            select l.time, l.severity_number, l.severity_text, l.service_name, l.body, l.span_id, l.attributes
              from otel.logs as l
             where l.shard_key = wanted and l.trace_id = wanted
               and (first_start is null or l.time between first_start and last_end)
             order by l.time, l.severity_number;
        return;
    end if;
    return query
        select l.time, l.severity_number, l.severity_text, l.service_name, l.body, l.span_id, l.attributes
          from otel.logs as l
         where l.trace_id = wanted
           and (first_start is null or l.time between first_start and last_end)
         order by l.time, l.severity_number;
end
$$;
comment on function otel.trace_logs(text) is
    'The trace''s log records by time: time, severity_number, severity_text, service_name, body, span_id, attributes; no rows for an unknown trace';

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
-- those outside the window need no reading. On Citus, where a recursive
-- query must stay on one shard, each shard finds the newest point of the
-- names it holds (otel.distribute() spreads a metric's series), and the
-- coordinator keeps the newest of each name.
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

create or replace function otel.metric_series_rate(
    metric text, bucket interval, since timestamptz, until timestamptz, labels jsonb)
returns table (bucket_start timestamptz, value double precision)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- The per-second increase of a monotonic sum: cumulative points are
-- differenced per series (a drop, or a new start_time, is a counter reset:
-- the new value is the increase), delta points are increases already. A
-- point needs its predecessor, so points up to an hour (or a bucket, if
-- longer) before since are read too: export intervals are often longer
-- than a bucket.
begin
    perform otel.check_metric_series_arguments(metric, bucket, since, until, labels, 'rate');
    return query
        with points as (
            select m.time, m.start_time, m.value, m.temporality,
                   lag(m.value) over series as previous_value,
                   lag(m.start_time) over series as previous_start
              from otel.metrics as m
             where m.name = metric and m.type = 'sum' and m.is_monotonic is not false
               and m.time >= since - greatest(bucket, interval '1 hour') and m.time < until
               and (metric_series_rate.labels is null or m.labels @> metric_series_rate.labels)
            -- series_key first (null on one node): by Citus's distribution
            -- column, so that the workers run the window on their shards.
            window series as (partition by m.series_key, m.service_name collate "C", m.labels::text collate "C",
                                 m.resource_attributes::text collate "C" order by m.time)
        ),
        increases as (
            select p.time,
                   case
                       when p.temporality = 'delta' then p.value
                       when p.previous_value is null then null
                       when p.value < p.previous_value or p.start_time is distinct from p.previous_start then p.value
                       else p.value - p.previous_value
                   end as increase
              from points as p
             where p.time >= since
        )
        select date_bin(bucket, i.time, timestamptz '2000-01-01 00:00:00+00'),
               sum(i.increase) / extract(epoch from bucket)::double precision
          from increases as i
         group by 1
        having count(i.increase) > 0
         order by 1;
end
$$;
comment on function otel.metric_series_rate(text, interval, timestamptz, timestamptz, jsonb) is
    'otel.metric_series() for rate';

create or replace function otel.metric_series_quantile(
    metric text, bucket interval, since timestamptz, until timestamptz, labels jsonb, agg text)
returns table (bucket_start timestamptz, value double precision)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- A quantile from explicit-bucket histograms: the bucket counts of the
-- interval (differenced when cumulative, as for rate), summed over series.
-- Points up to an hour (or a bucket) before since are read for the
-- predecessors, as in otel.metric_series_rate(). agg is p50, p90 or p99.
declare
    quantile double precision;
begin
    perform otel.check_metric_series_arguments(metric, bucket, since, until, labels, agg);
    if agg not in ('p50', 'p90', 'p99') then
        raise exception 'agg must be one of p50, p90, p99 here, got %', quote_literal(agg)
            using errcode = 'invalid_parameter_value';
    end if;
    quantile := substr(agg, 2)::double precision / 100;
    return query
        with points as (
            select m.time, m.start_time, m.temporality, m.bucket_counts, m.explicit_bounds,
                   lag(m.bucket_counts) over series as previous_counts,
                   lag(m.start_time) over series as previous_start,
                   lag(m.explicit_bounds) over series as previous_bounds
              from otel.metrics as m
             where m.name = metric and m.type = 'histogram' and m.bucket_counts is not null
               and m.time >= since - greatest(bucket, interval '1 hour') and m.time < until
               and (metric_series_quantile.labels is null or m.labels @> metric_series_quantile.labels)
            -- series_key first (null on one node): by Citus's distribution
            -- column, so that the workers run the window on their shards.
            window series as (partition by m.series_key, m.service_name collate "C", m.labels::text collate "C",
                                 m.resource_attributes::text collate "C" order by m.time)
        ),
        -- Whether a point continues its predecessor is decided once per
        -- point (base: the counts to subtract, null after a reset or for
        -- delta points), not once per bucket count: materialized, or the
        -- planner would fold it into the per-count query below.
        deltas as materialized (
            select date_bin(bucket, p.time, timestamptz '2000-01-01 00:00:00+00') as b, p.time,
                   p.explicit_bounds::text collate "C" as layout, p.bucket_counts,
                   case
                       when p.temporality = 'delta' or p.start_time is distinct from p.previous_start
                         or p.explicit_bounds is distinct from p.previous_bounds
                         or cardinality(p.previous_counts) <> cardinality(p.bucket_counts)
                         or exists (select from unnest(p.bucket_counts, p.previous_counts) as d (now_count, then_count)
                                     where d.now_count < d.then_count)
                       then null
                       else p.previous_counts
                   end as base
              from points as p
             where p.time >= since
               and not (p.temporality = 'cumulative' and p.previous_counts is null)  -- no known start
        ),
        -- Bounds travel as text (a cheap grouping key) and are cast back once per bucket.
        per_bucket as (
            select d.b, d.layout, x.i, sum(x.c - coalesce(d.base[x.i], 0)) as c
              from deltas as d
             cross join lateral unnest(d.bucket_counts) with ordinality as x (c, i)
             group by d.b, d.layout, x.i
        ),
        per_layout as (
            select pb.b, pb.layout::double precision[] as explicit_bounds, array_agg(pb.c order by pb.i) as counts,
                   count(*) over (partition by pb.b) as layouts
              from per_bucket as pb
             group by pb.b, pb.layout
            having sum(pb.c) > 0
        )
        -- Counts of different bucket bounds cannot be added up.
        select l.b,
               case when l.layouts > 1
                    then otel.metric_series_mixed_bounds(metric, l.b)
                    else otel.histogram_quantile(quantile, l.counts, l.explicit_bounds) end
          from per_layout as l
         order by l.b;
end
$$;
comment on function otel.metric_series_quantile(text, interval, timestamptz, timestamptz, jsonb, text) is
    'otel.metric_series() for p50, p90 and p99';

grant execute on function otel.distribution_column(regclass) to otel_reader, otel_admin;

-- Last: on Citus, no function may be created after a change to a distributed table.

alter table otel.logs add column shard_key text;

comment on table otel.logs is
    'One row per log record, partitioned by day of time: time, observed_time, severity_number, severity_text, body (text; a non-string body as JSON text), trace_id, span_id, flags, service_name, scope_name, scope_version, attributes, resource_attributes, event_name, body_tsv, shard_key (on Citus, the distribution key: otel.log_shard_key(), the trace id of a record in a trace, so that it lies beside the trace''s spans; null on one node). Indexes, on each partition in row format (otel.index_partition()): BRIN (time); (service_name, time desc); (trace_id, time) where trace_id is not null; GIN full text on the stored column `body_tsv` = `to_tsvector(''english'', left(coalesce(body, ''''), 65536))` (the first 64 Ki characters: a tsvector holds at most 1 MB); query it as `body_tsv @@ websearch_to_tsquery(''english'', …)`. A cold partition (otel.set_cold_storage()) is columnar, without indexes';

alter table otel.metrics add column series_key bigint;

comment on table otel.metrics is
    'One row per data point: time, start_time, name, description, type, unit, value (float8), int_value (exact, for integer values), count, sum, min, max, bucket_counts, explicit_bounds, quantiles, exponential (scale, zero count, buckets), exemplars, temporality (sums and histograms), is_monotonic (sums), flags, labels (the point''s attributes), resource_attributes, service_name, scope_name, scope_version, series_key (on Citus, the distribution key: otel.metric_series_key() of the point, one value per series; null on one node). Indexes, on each partition in row format (otel.index_partition()): BRIN (time); (name, time desc); GIN `jsonb_path_ops` (labels). A cold partition (otel.set_cold_storage()) is columnar, without indexes';
"""

# otel.move_logs(), otel.move_metrics() and otel.trace_logs() are as the
# baseline (0004) built them from sql/.
DOWNGRADE = r"""
create or replace function otel.move_logs(out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into otel.logs (
        time, observed_time, severity_number, severity_text, body, trace_id, span_id, flags,
        service_name, scope_name, scope_version, attributes, resource_attributes, event_name)
    select time, observed_time, severity_number, severity_text, body, trace_id, span_id, flags,
           service_name, scope_name, scope_version, attributes, resource_attributes, event_name
      from pg_temp.otel_logs
     where err is null;
    get diagnostics moved = row_count;
    duplicates := 0;  -- log records have no identity to deduplicate by
end
$$;
comment on function otel.move_logs() is
    'Moves the valid log records of a flush into otel.logs; internal to otel.flush()';

create or replace function otel.move_metrics(out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into otel.metrics (
        time, start_time, name, description, type, unit, value, int_value, count, sum, min, max,
        bucket_counts, explicit_bounds, quantiles, exponential, exemplars, temporality, is_monotonic,
        flags, labels, resource_attributes, service_name, scope_name, scope_version)
    select time, start_time, name, description, type, unit, value, int_value, count, sum, min, max,
           bucket_counts, explicit_bounds, quantiles, exponential, exemplars, temporality, is_monotonic,
           flags, labels, resource_attributes, service_name, scope_name, scope_version
      from pg_temp.otel_metrics
     where err is null;
    get diagnostics moved = row_count;
    duplicates := 0;  -- data points have no identity to deduplicate by
end
$$;
comment on function otel.move_metrics() is
    'Moves the valid data points of a flush into otel.metrics; internal to otel.flush()';

create or replace function otel.trace_logs(trace_id text)
returns table (
    "time" timestamptz, severity_number integer, severity_text text, service_name text, body text,
    span_id text, attributes jsonb)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Logs carry the trace id; with the trace's time range (give or take a day
-- for clock skew and late records) only its partitions are searched.
declare
    wanted text := otel.normalize_trace_id(trace_logs.trace_id);
    first_start timestamptz;
    last_end timestamptz;
begin
    select s.start_time - interval '1 day', s.end_time + interval '1 day' into first_start, last_end
      from otel.trace_summaries as s
     where s.trace_id = wanted;
    return query
        select l.time, l.severity_number, l.severity_text, l.service_name, l.body, l.span_id, l.attributes
          from otel.logs as l
         where l.trace_id = wanted
           and (first_start is null or l.time between first_start and last_end)
         order by l.time, l.severity_number;
end
$$;
comment on function otel.trace_logs(text) is
    'The trace''s log records by time: time, severity_number, severity_text, service_name, body, span_id, attributes; no rows for an unknown trace';

drop function otel.log_shard_key(text, timestamptz, text);

drop function otel.metric_series_key(text, text, jsonb, jsonb);

drop function otel.distribution_column(regclass);
"""

DOWNGRADE_COLUMNS = r"""
alter table otel.logs drop column shard_key;

comment on table otel.logs is
    'One row per log record, partitioned by day of time: time, observed_time, severity_number, severity_text, body (text; a non-string body as JSON text), trace_id, span_id, flags, service_name, scope_name, scope_version, attributes, resource_attributes, event_name, body_tsv. Indexes, on each partition in row format (otel.index_partition()): BRIN (time); (service_name, time desc); (trace_id, time) where trace_id is not null; GIN full text on the stored column `body_tsv` = `to_tsvector(''english'', left(coalesce(body, ''''), 65536))` (the first 64 Ki characters: a tsvector holds at most 1 MB); query it as `body_tsv @@ websearch_to_tsquery(''english'', …)`. A cold partition (otel.set_cold_storage()) is columnar, without indexes';

alter table otel.metrics drop column series_key;

comment on table otel.metrics is
    'One row per data point: time, start_time, name, description, type, unit, value (float8), int_value (exact, for integer values), count, sum, min, max, bucket_counts, explicit_bounds, quantiles, exponential (scale, zero count, buckets), exemplars, temporality (sums and histograms), is_monotonic (sums), flags, labels (the point''s attributes), resource_attributes, service_name, scope_name, scope_version. Indexes, on each partition in row format (otel.index_partition()): BRIN (time); (name, time desc); GIN `jsonb_path_ops` (labels). A cold partition (otel.set_cold_storage()) is columnar, without indexes';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
    execute_sql(released_routine("0046", "otel.distribute"))
    execute_sql(released_routine("0046", "otel.metric_names"))
    execute_sql(released_routine("0006", "otel.metric_series_rate"))
    execute_sql(released_routine("0006", "otel.metric_series_quantile"))
    execute_sql(DOWNGRADE_COLUMNS)
