-- Query functions for readers: errors, a trace's span tree and logs, log
-- search. Arguments are checked (22023 with what is allowed); an unknown
-- trace id gives no rows, not an error.

create or replace function otel.check_limit(lim integer)
returns void
language plpgsql immutable
as $$
begin
    if lim is null or lim not between 1 and 10000 then
        raise exception 'lim must be between 1 and 10000, got %', coalesce(lim::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
end
$$;
comment on function otel.check_limit(integer) is 'Raises 22023 unless lim is 1..10000';

create or replace function otel.check_time_range(since timestamptz, until timestamptz, since_required boolean)
returns void
language plpgsql immutable
as $$
begin
    if since_required and since is null then
        raise exception 'since must be a timestamp, got null' using errcode = 'invalid_parameter_value';
    end if;
    if since_required and until is null then
        raise exception 'until must be a timestamp, got null' using errcode = 'invalid_parameter_value';
    end if;
    if not isfinite(since) or not isfinite(until) then
        raise exception 'since and until must be finite timestamps, got % and %', since, until
            using errcode = 'invalid_parameter_value';
    end if;
    if since > until then
        raise exception 'since (%) is after until (%)', since, until using errcode = 'invalid_parameter_value';
    end if;
end
$$;
comment on function otel.check_time_range(timestamptz, timestamptz, boolean) is
    'Raises 22023 when since or until is missing (if required) or infinite, or since is after until';

create or replace function otel.normalize_trace_id(trace_id text)
returns text
language plpgsql immutable
as $$
begin
    if trace_id is null or trim(trace_id) = '' then
        raise exception 'trace_id must be 32 hex digits, got %', otel.argument_text(trace_id)
            using errcode = 'invalid_parameter_value';
    end if;
    return lower(trim(trace_id));
end
$$;
comment on function otel.normalize_trace_id(text) is
    'A trace id as stored (trimmed, lower case); 22023 for null or empty';

create or replace function otel.traces_by_error(
    since timestamptz, until timestamptz default now(), service text default null, lim integer default 100)
returns table (
    trace_id text, span_id text, parent_span_id text, service_name text, name text, kind text,
    start_time timestamptz, duration_ms double precision, status_message text,
    exception_type text, exception_message text, attributes jsonb)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
begin
    perform otel.check_time_range(since, until, true);
    perform otel.check_limit(lim);
    return query
        select t.trace_id, t.span_id, t.parent_span_id, t.service_name, t.name, t.kind, t.start_time,
               t.duration_ms, t.status_message,
               otel.exception_attribute(t.events, 'exception.type'),
               otel.exception_attribute(t.events, 'exception.message'),
               t.attributes
          from otel.traces as t
         where t.status_code = 'ERROR'
           and t.start_time >= since and t.start_time < until
           and (service is null or t.service_name = service)
         order by t.start_time desc, t.trace_id, t.span_id  -- ties in one order, on one node or many
         limit lim;
end
$$;
comment on function otel.traces_by_error(timestamptz, timestamptz, text, integer) is
    'Error spans started in [since, until), newest first (then by trace_id, span_id): trace_id, span_id, parent_span_id, service_name, name, kind, start_time, duration_ms, status_message, exception_type, exception_message, attributes';

create or replace function otel.trace_spans(trace_id text)
returns table (
    span_id text, parent_span_id text, depth integer, name text, service_name text, kind text,
    start_time timestamptz, end_time timestamptz, duration_ms double precision, status_code text,
    status_message text, attributes jsonb, events jsonb, links jsonb)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- The trace's time range in otel.trace_summaries confines the lookup to the
-- partitions it spans, where the trace_id index finds its spans (for a
-- trace whose summary is cold, the day otel.trace_time_range() names).
-- Depth first, children by start time; a span whose parent is missing is
-- shown as a root (depth 0).
declare
    wanted text := otel.normalize_trace_id(trace_spans.trace_id);
    first_start timestamptz;
    last_start timestamptz;
begin
    select r.first_start, r.last_end into first_start, last_start from otel.trace_time_range(wanted) as r;
    return query
        with recursive spans as (
            select t.*, lpad((extract(epoch from t.start_time) * 1000000)::bigint::text, 20, '0') || t.span_id as sort_key
              from otel.traces as t
             where t.trace_id = wanted and t.start_time between first_start and last_start
        ),
        tree as (
            select s.span_id, 0 as depth, array[s.sort_key] as path, array[s.span_id] as ids
              from spans as s
             where s.parent_span_id is null or s.parent_span_id = s.span_id
                or not exists (select from spans as p where p.span_id = s.parent_span_id)
            union all
            select c.span_id, tree.depth + 1, tree.path || c.sort_key, tree.ids || c.span_id
              from tree
              join spans as c on c.parent_span_id = tree.span_id
             where c.span_id <> all (tree.ids)  -- a cycle in bad data stops here
        ),
        placed as (
            select tree.span_id, tree.depth, tree.path from tree
            union all
            -- Spans only reachable through a cycle: shown as roots.
            select s.span_id, 0, array[s.sort_key]
              from spans as s
             where not exists (select from tree where tree.span_id = s.span_id)
        )
        select s.span_id, s.parent_span_id, placed.depth, s.name, s.service_name, s.kind, s.start_time, s.end_time,
               s.duration_ms, s.status_code, s.status_message, s.attributes, s.events, s.links
          from placed
          join spans as s on s.span_id = placed.span_id
         order by placed.path;
end
$$;
comment on function otel.trace_spans(text) is
    'The span tree, depth first (children by start time): span_id, parent_span_id, depth, name, service_name, kind, start_time, end_time, duration_ms, status_code, status_message, attributes, events, links. A span whose parent never arrived is shown as a root. The trace''s time range in `otel.trace_summaries` confines the lookup to its partitions (for a trace whose summary is cold, the day that otel.cold_trace_days names); no rows for an unknown trace';

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
         order by 8 desc, l.time desc, l.trace_id, l.span_id, l.body  -- ties in one order, on one node or many
         limit lim;
end
$$;
comment on function otel.search_logs(text, timestamptz, timestamptz, text, integer, integer) is
    'Full-text search of log bodies in `websearch_to_tsquery(''english'', …)` syntax (`"a phrase"`, `or`, `-word`), best rank first, then newest (then by trace_id, span_id, body): time, severity_number, severity_text, service_name, body, trace_id, span_id, rank. Ranks every match in [since, until); without `since`, the matches of the newest days (UTC) that together hold at least max(lim, 1000) of them, so that its cost follows a day''s matches, not the store''s size (older matches are ranked when the newer days hold fewer)';
