"""otel.dead_letter_reasons() works out each letter's rule once and reads raw data only for the samples.

The samples of each rule were picked by a scan of every letter in the
window (with its raw data) per rule; now one numbering of the letters by
rule gives them, and the raw data of those few is read by id.

Revision ID: 0026
Revises: 0025
"""

from migrations.schema import execute_sql, released_routine

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

UPGRADE = r"""
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
    -- Each letter's rule is worked out once, its raw data read only for the
    -- samples: a large queue costs one sort, not a scan per rule.
    return query
        with letters as materialized (
            select x.*, row_number() over (partition by x.telemetry_type, x.rule order by x.id desc) as newest
              from (select d.id, d.telemetry_type, otel.dead_letter_reason(d.error_message) as rule,
                           d.created_at, d.processed_at is null as pending
                      from otel.telemetry_dlq as d
                     where d.created_at >= dead_letter_reasons.since and d.created_at < dead_letter_reasons.until
                   ) as x
        ),
        groups as (
            select l.telemetry_type, l.rule, count(*) as letters, count(*) filter (where l.pending) as pending,
                   min(l.created_at) as first_seen, max(l.created_at) as last_seen
              from letters as l
             group by l.telemetry_type, l.rule
        ),
        samples as (
            select l.telemetry_type, l.rule,
                   jsonb_agg(jsonb_build_object(
                       'id', d.id, 'created_at', d.created_at, 'source', d.source,
                       'error_message', d.error_message, 'raw_format', d.raw_format,
                       'raw_data', left(d.raw_data, 2000), 'retry_count', d.retry_count,
                       'processed', d.processed_at is not null) order by d.id desc) as sample_letters
              from letters as l
              join otel.telemetry_dlq as d on d.id = l.id
             where l.newest <= dead_letter_reasons.samples
             group by l.telemetry_type, l.rule
        )
        select g.telemetry_type, g.rule, g.letters, g.pending, g.first_seen, g.last_seen,
               coalesce(s.sample_letters, '[]')
          from groups as g
          left join samples as s on s.telemetry_type = g.telemetry_type and s.rule = g.rule
         order by g.pending desc, g.letters desc, g.rule;
end
$$;
comment on function otel.dead_letter_reasons(timestamptz, timestamptz, integer) is
    'Dead letters created in [since, until) by kind and rule: how many, how many still pending, first and last, and the newest few (raw data cut to 2,000 characters)';
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(released_routine("0024", "otel.dead_letter_reasons"))
