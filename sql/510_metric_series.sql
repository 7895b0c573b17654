-- otel.metric_series(): one metric as (bucket_start, value) rows.

create or replace function otel.histogram_quantile(q double precision, counts numeric[], bounds double precision[])
returns double precision
language sql immutable parallel safe
as $$
    -- The q-quantile of an explicit-bucket histogram (counts has one more
    -- element than bounds: the overflow bucket), interpolating linearly
    -- inside the bucket that holds it, as Prometheus does. The first bucket
    -- is taken to start at 0 (or at its bound when that is negative); in the
    -- overflow bucket the answer is the highest bound.
    with buckets as (
        select i, c, sum(c) over (order by i) as running, sum(c) over () as total
          from unnest(counts) with ordinality as x (c, i)
    ),
    hit as (
        select i, c, running, total from buckets
         where total > 0 and running >= q * total and q > 0 and q <= 1
         order by i
         limit 1
    )
    select case
        when hit.i > cardinality(bounds) then bounds[cardinality(bounds)]
        else coalesce(bounds[hit.i - 1], least(0, bounds[1]))
             + (bounds[hit.i] - coalesce(bounds[hit.i - 1], least(0, bounds[1])))
               * ((q * hit.total - (hit.running - hit.c)) / nullif(hit.c, 0))::double precision
    end
      from hit
$$;
comment on function otel.histogram_quantile(double precision, numeric[], double precision[]) is
    'The q-quantile (0 < q <= 1; null otherwise) of histogram bucket counts with explicit bounds, by linear interpolation within a bucket';

create or replace function otel.metric_series_mixed_bounds(metric text, bucket_start timestamptz)
returns double precision
language plpgsql volatile
as $$
begin
    raise exception 'the histograms of % have different bucket bounds in the bucket starting at %: choose one kind with labels',
                    metric, bucket_start
        using errcode = 'invalid_parameter_value';
end
$$;
comment on function otel.metric_series_mixed_bounds(text, timestamptz) is
    'Raises 22023: percentiles cannot mix histograms of different bucket bounds; internal to otel.metric_series()';

create or replace function otel.check_metric_series_arguments(
    name text, bucket interval, since timestamptz, until timestamptz, labels jsonb, agg text)
returns void
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if name is null or name = '' then
        raise exception 'name must name a metric, got %', otel.argument_text(name)
            using errcode = 'invalid_parameter_value';
    end if;
    if bucket is null or bucket < interval '1 second' or bucket > interval '366 days' then
        raise exception 'bucket must be an interval from 1 second to 366 days, got %', coalesce(bucket::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if bucket <> justify_hours(bucket) or extract(month from bucket) <> 0 or extract(year from bucket) <> 0 then
        raise exception 'bucket must be a fixed length (seconds, minutes, hours or days), got %', bucket
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_time_range(since, until, true);
    if (extract(epoch from until - since) / extract(epoch from bucket)) > 100000 then
        raise exception 'since to until holds more than 100000 buckets of %; choose a larger bucket', bucket
            using errcode = 'invalid_parameter_value';
    end if;
    if labels is not null and jsonb_typeof(labels) <> 'object' then
        raise exception 'labels must be a JSON object of label values to match, got %', otel.argument_text(labels::text)
            using errcode = 'invalid_parameter_value';
    end if;
    if agg is null or agg not in ('avg', 'min', 'max', 'sum', 'count', 'rate', 'p50', 'p90', 'p99') then
        raise exception 'agg must be one of avg, min, max, sum, count, rate, p50, p90, p99, got %',
                        otel.argument_text(agg)
            using errcode = 'invalid_parameter_value';
    end if;
end
$$;
comment on function otel.check_metric_series_arguments(text, interval, timestamptz, timestamptz, jsonb, text) is
    'Raises 22023 unless the arguments of otel.metric_series() make sense; internal to otel.metric_series()';

create or replace function otel.metric_series_values(
    metric text, bucket interval, since timestamptz, until timestamptz, labels jsonb, agg text)
returns table (bucket_start timestamptz, value double precision)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- avg, min, max, sum, count of the points' values (gauges, sums); for
-- histograms and summaries of their sum/count, min and max. Each of these
-- functions checks its arguments: readers may call them directly.
begin
    perform otel.check_metric_series_arguments(metric, bucket, since, until, labels, agg);
    if agg not in ('avg', 'min', 'max', 'sum', 'count') then
        raise exception 'agg must be one of avg, min, max, sum, count here, got %', quote_literal(agg)
            using errcode = 'invalid_parameter_value';
    end if;
    return query
        select date_bin(bucket, m.time, timestamptz '2000-01-01 00:00:00+00') as b,
               case agg
                   when 'avg' then coalesce(avg(m.value), sum(m.sum) / nullif(sum(m.count), 0)::double precision)
                   when 'min' then coalesce(min(m.value), min(m.min))
                   when 'max' then coalesce(max(m.value), max(m.max))
                   when 'sum' then coalesce(sum(m.value), sum(m.sum))
                   else coalesce(count(m.value), 0) + coalesce(sum(m.count), 0)::double precision
               end
          from otel.metrics as m
         where m.name = metric and m.time >= since and m.time < until
           and (metric_series_values.labels is null or m.labels @> metric_series_values.labels)
         group by 1
         order by 1;
end
$$;
comment on function otel.metric_series_values(text, interval, timestamptz, timestamptz, jsonb, text) is
    'otel.metric_series() for avg, min, max, sum and count';

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

create or replace function otel.metric_series(
    name text, bucket interval, since timestamptz, until timestamptz default now(),
    labels jsonb default null, agg text default 'avg')
returns table (bucket_start timestamptz, value double precision)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Buckets are bucket long and aligned to multiples of it counted from
-- 2000-01-01 UTC (whole minutes, hours, days: date_bin), so the first one
-- may start before since; only buckets with points are returned. A series
-- is one combination of labels, service and resource: they are told apart
-- by their labels and resource as jsonb text in the C collation (jsonb text
-- is canonical), several times cheaper to sort than jsonb values.
begin
    case agg
        when 'rate' then
            return query select * from otel.metric_series_rate(name, bucket, since, until, labels);
        when 'p50', 'p90', 'p99' then
            return query select * from otel.metric_series_quantile(name, bucket, since, until, labels, agg);
        else  -- the other aggregates, or an unknown one, which the check refuses
            return query select * from otel.metric_series_values(name, bucket, since, until, labels, agg);
    end case;
end
$$;
comment on function otel.metric_series(text, interval, timestamptz, timestamptz, jsonb, text) is
    'One metric as (bucket_start, value) for each bucket with points, buckets `bucket` long aligned to whole multiples of it (from 2000-01-01 UTC: whole minutes, hours, days; 1 s to 366 days, at most 100,000 buckets between since and until), points whose labels contain `labels`. `agg`: `avg`, `min`, `max`, `sum`, `count` of the values (of sum/count/min/max for histograms); `rate`, the per-second increase of a monotonic sum (cumulative points differenced per series, a drop or a new start time counting as a reset; delta points summed; non-monotonic sums are left out); `p50`, `p90`, `p99` from explicit-bucket histograms (bucket counts of the interval, differenced when cumulative, interpolated within the bucket as Prometheus does; histograms of different bucket bounds in one bucket raise 22023: pick one kind with `labels`)';

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
