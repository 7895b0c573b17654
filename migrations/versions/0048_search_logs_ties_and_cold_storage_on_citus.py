"""otel.search_logs() orders equal ranks and times in one way; cold storage leaves distributed tables alone.

search_logs() ranked matches best first, then newest, and left ties in
whatever order a plan read them, so that `lim` could cut between them
differently on one node and on Citus: they follow trace_id, span_id and
body now. otel.cold_partitions_due() skips the tables Citus distributes
(otel.distribute()), whose partitions the conversion to columnar cannot
swap, and says so in a notice instead of failing in every maintenance run.

Revision ID: 0048
Revises: 0047
"""

from migrations.schema import execute_sql, released_routine

revision = "0048"
down_revision = "0047"
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
         order by 8 desc, l.time desc, l.trace_id, l.span_id, l.body  -- ties in one order, on one node or many
         limit lim;
end
$$;
comment on function otel.search_logs(text, timestamptz, timestamptz, text, integer, integer) is
    'Full-text search of log bodies in `websearch_to_tsquery(''english'', …)` syntax (`"a phrase"`, `or`, `-word`), best rank first, then newest (then by trace_id, span_id, body): time, severity_number, severity_text, service_name, body, trace_id, span_id, rank. Ranks every match in [since, until); without `since`, the matches of the newest days (UTC) that together hold at least max(lim, 1000) of them, so that its cost follows a day''s matches, not the store''s size (older matches are ranked when the newer days hold fewer)';

create or replace function otel.cold_partitions_due()
returns table (kind text, partition_name text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- Partitions in row format whose whole day is older than their kind's
-- older_than, oldest first; none, with a notice, without citus_columnar,
-- and none of a table distributed by Citus (otel.distribute()), whose
-- partitions the conversion cannot swap.
declare
    distributed text;
begin
    if not exists (select from otel.cold_storage) then
        return;
    end if;
    if not exists (select from pg_am where amname = 'columnar') then
        raise notice 'otel_db: cold storage is set, but citus_columnar is not installed in this database: partitions stay in row format'
            using hint = 'Build it with `make citus`, then run `create extension citus_columnar` or otel.set_cold_storage() again.';
        return;
    end if;
    select string_agg(format('otel.%I', s.kind), ', ' order by s.kind) into distributed
      from otel.cold_storage as s
     where otel.distributed(format('otel.%I', s.kind)::regclass);
    if distributed is not null then
        raise notice 'otel_db: cold storage is set for %, distributed by Citus: their partitions stay in row format', distributed
            using hint = 'Cold storage works on a single node only; see docs/scale-out.md.';
    end if;
    return query
        select s.kind, p.name
          from otel.cold_storage as s
         cross join lateral otel.daily_partitions(s.kind) as p
         where not p.columnar and (p.day + 1)::timestamp at time zone 'UTC' <= now() - s.older_than
           and not otel.distributed(format('otel.%I', s.kind)::regclass)
         order by p.day, s.kind;
end
$$;
comment on function otel.cold_partitions_due() is
    'The row-format partitions past their kind''s cold storage age (kind, partition_name), oldest first; internal to otel.maintain()';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0046", "otel.search_logs"))
    execute_sql(released_routine("0042", "otel.cold_partitions_due"))
