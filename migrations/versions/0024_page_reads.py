"""The web page's reads: otel.metric_names() for its metric picker, otel.dead_letter_reasons() for its dead-letter view.

metric_names lists the metrics with points in a window by skipping through
the (name, time) index. dead_letter_reasons groups the dead letters by kind
and rule (otel.dead_letter_reason: the message without the rejected value),
with counts and the newest few rows; it is security definer, so readers see
why rows were rejected without SELECT on the queue. Readers may call both.

Revision ID: 0024
Revises: 0023
"""

from migrations.schema import execute_sql

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.dead_letter_reason(error_message text)
returns text
language sql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $$
    -- The rule without the rejected value: quoted values and timestamps
    -- become "…", and 'invalid OTLP <field>: <value>' keeps the field.
    select regexp_replace(
               regexp_replace(
                   regexp_replace(error_message, '"[^"]*"', '"…"', 'g'),
                   '^((?:rejected record: )?invalid OTLP [^:]+): .*$', '\1', 's'),
               '\d{4}-\d\d-\d\d[ T][0-9:.+-]+', '…', 'g')
$$;
comment on function otel.dead_letter_reason(text) is
    'A dead letter''s error message without the rejected value, so that letters rejected by the same rule group together';

create or replace function otel.dead_letter_reasons(
    since timestamptz default now() - interval '7 days',
    until timestamptz default now(),
    samples integer default 3)
returns table (telemetry_type text, reason text, letters bigint, pending bigint,
               first_seen timestamptz, last_seen timestamptz, sample_letters jsonb)
language plpgsql stable security definer
set search_path = pg_catalog, pg_temp
as $$
-- Security definer: readers see why rows were rejected (and a few of them,
-- cut to 2,000 characters) without SELECT on the queue itself.
begin
    perform otel.check_time_range(since, until, true);
    if samples is null or samples not between 0 and 100 then
        raise exception 'samples must be between 0 and 100, got %', coalesce(samples::text, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    return query
        with letters as (
            select d.*, otel.dead_letter_reason(d.error_message) as rule
              from otel.telemetry_dlq as d
             where d.created_at >= dead_letter_reasons.since and d.created_at < dead_letter_reasons.until
        )
        select l.telemetry_type, l.rule, count(*), count(*) filter (where l.processed_at is null),
               min(l.created_at), max(l.created_at),
               coalesce((select jsonb_agg(jsonb_build_object(
                                    'id', s.id, 'created_at', s.created_at, 'source', s.source,
                                    'error_message', s.error_message, 'raw_format', s.raw_format,
                                    'raw_data', left(s.raw_data, 2000), 'retry_count', s.retry_count,
                                    'processed', s.processed_at is not null) order by s.id desc)
                           from (select * from letters as x
                                  where x.telemetry_type = l.telemetry_type and x.rule = l.rule
                                  order by x.id desc
                                  limit dead_letter_reasons.samples) as s), '[]')
          from letters as l
         group by l.telemetry_type, l.rule
         order by count(*) filter (where l.processed_at is null) desc, count(*) desc, l.rule;
end
$$;
comment on function otel.dead_letter_reasons(timestamptz, timestamptz, integer) is
    'Dead letters created in [since, until) by kind and rule: how many, how many still pending, first and last, and the newest few (raw data cut to 2,000 characters)';

create or replace function otel.metric_names(
    since timestamptz default now() - interval '1 day',
    until timestamptz default now())
returns table (name text, type text, unit text, last_seen timestamptz)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- The distinct names come from skipping through metrics_name_time_idx, one
-- probe a name rather than a scan of every point; each name's newest point
-- in the window gives its type and unit.
begin
    perform otel.check_time_range(since, until, true);
    return query
        with recursive names (name) as (
            (select m.name from otel.metrics as m order by m.name limit 1)
            union all
            select (select m.name from otel.metrics as m where m.name > names.name order by m.name limit 1)
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
    'The metrics with points in [since, until): name, type and unit of the newest point, and its time';

grant execute on function
    otel.metric_names(timestamptz, timestamptz),
    otel.dead_letter_reason(text),
    otel.dead_letter_reasons(timestamptz, timestamptz, integer)
    to otel_reader, otel_admin;
"""

DOWNGRADE = r"""
drop function otel.metric_names(timestamptz, timestamptz);
drop function otel.dead_letter_reasons(timestamptz, timestamptz, integer);
drop function otel.dead_letter_reason(text);
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
