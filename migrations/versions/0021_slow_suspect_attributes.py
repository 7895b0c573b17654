"""suspect_attributes() also finds what slow spans share, and reads at most the newest 200,000 spans.

With slower_than_percentile p, the spans compared against the rest are
those longer than the p percentile of the window's durations, instead of
the failing ones. The window (up to 31 days) is read newest first and cut
at 200,000 spans, so that a busy service's month does not become one long
scan.

Revision ID: 0021
Revises: 0020
"""

from migrations.schema import execute_sql, released_routine

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

UPGRADE = r"""
drop function otel.suspect_attributes(text, text, timestamptz, timestamptz);

create or replace function otel.suspect_attributes(
    service text, operation text, since timestamptz, until timestamptz default now(),
    slower_than_percentile double precision default null)
returns table (
    key text, value text, failing bigint, others bigint, failing_share double precision,
    others_share double precision, score double precision)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- The spans of the service (and operation: span name, null for all)
-- started in [since, until), at most the newest 200,000 (read through the
-- (service_name, start_time) index), are split in two: failing (status
-- ERROR), or, with slower_than_percentile p, slow (longer than the p
-- percentile of their durations), against the others. Every scalar
-- attribute value (string, number, boolean; grouped by its text) is
-- counted in the flagged spans (f of F) and in the others (o of O). The
-- score is the log odds ratio of the value in flagged against other spans
-- with ½ added to every cell (Haldane-Anscombe, so that a value never seen
-- in the others is finite), divided by its standard error: a value in 90 %
-- of failures and 5 % of the rest scores high; one seen once (an id) does
-- not, however rare it is elsewhere. Values at least as common in the
-- others are left out.
begin
    if service is null then
        raise exception 'service must be a service name, got null' using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_time_range(since, until, true);
    if until - since > interval '31 days' then
        raise exception 'the window from since to until must be at most 31 days, got %', until - since
            using errcode = 'invalid_parameter_value';
    end if;
    if slower_than_percentile <= 0 or slower_than_percentile >= 1 then  -- NaN counts as above 1
        raise exception 'slower_than_percentile must be between 0 and 1 (0.95 for the slowest 5 %%), got %',
                        slower_than_percentile
            using errcode = 'invalid_parameter_value';
    end if;
    return query
        with window_spans as materialized (
            select t.status_code = 'ERROR' as failed, t.duration_ms, t.attributes
              from otel.traces as t
             where t.service_name = suspect_attributes.service
               and (suspect_attributes.operation is null or t.name = suspect_attributes.operation)
               and t.start_time >= since and t.start_time < until
             order by t.start_time desc
             limit 200000
        ),
        slow as (
            select percentile_cont(slower_than_percentile) within group (order by w.duration_ms) as ms
              from window_spans as w
             where slower_than_percentile is not null
        ),
        spans as (
            select case when slower_than_percentile is null then w.failed
                        else w.duration_ms > (select ms from slow) end as failing,
                   w.attributes
              from window_spans as w
        ),
        totals as (
            select count(*) filter (where s.failing)::float8 as f, count(*) filter (where not s.failing)::float8 as o
              from spans as s
        ),
        counts as (
            select a.key as attribute, a.value #>> '{}' as attribute_value,
                   count(*) filter (where s.failing)::float8 as f, count(*) filter (where not s.failing)::float8 as o
              from spans as s
             cross join lateral jsonb_each(s.attributes) as a
             where jsonb_typeof(a.value) in ('string', 'number', 'boolean')
             group by 1, 2
        ),
        scored as (
            select c.attribute, c.attribute_value, c.f, c.o, c.f / t.f as failing_share,
                   case when t.o > 0 then c.o / t.o end as others_share,
                   ln(((c.f + 0.5) / (t.f - c.f + 0.5)) / ((c.o + 0.5) / (t.o - c.o + 0.5)))
                   / sqrt(1 / (c.f + 0.5) + 1 / (t.f - c.f + 0.5) + 1 / (c.o + 0.5) + 1 / (t.o - c.o + 0.5)) as score
              from counts as c
             cross join totals as t
             where c.f > 0
        )
        select s.attribute, s.attribute_value, s.f::bigint, s.o::bigint, s.failing_share, s.others_share, s.score
          from scored as s
         where s.failing_share > coalesce(s.others_share, 0)
         order by s.score desc, s.f desc, s.attribute, s.attribute_value
         limit 50;
end
$$;
comment on function otel.suspect_attributes(text, text, timestamptz, timestamptz, double precision) is
    'Attribute values over-represented in failing (status ERROR) spans of a service (and operation, null for all) started in [since, until), or with slower_than_percentile p in its slow spans (longer than the p percentile); the newest 200,000 spans at most: key, value (scalars only), counts and shares in failing (or slow) and other spans, and a score, the log odds ratio with ½ added to every count divided by its standard error (high for a value common in failures and rare elsewhere, low for values seen a few times); best first, at most 50; 22023 for a null service or since, since after until, a window over 31 days, or a percentile outside (0, 1)';

grant execute on function otel.suspect_attributes(text, text, timestamptz, timestamptz, double precision)
    to otel_reader, otel_admin;
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql("drop function otel.suspect_attributes(text, text, timestamptz, timestamptz, double precision)")
    execute_sql(released_routine("0017", "otel.suspect_attributes"))
    execute_sql(
        "grant execute on function otel.suspect_attributes(text, text, timestamptz, timestamptz)"
        " to otel_reader, otel_admin"
    )
