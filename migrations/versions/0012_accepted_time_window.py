"""An accepted time window: a flush dead-letters records older than their signal's retention or further ahead than otel.future_margin (default 1 day) instead of making partitions for them.

Without a window, a writer with a wrong clock or a unit error in its
timestamps made a partition for every day it named (192 after six small
batches, and planning slowed tenfold); records older than the retention
were stored only for the next otel.maintain() to delete them. Each becomes
a dead letter that says which bound it broke. By default no retention is
set and old data loads as before.

Revision ID: 0012
Revises: 0011
"""

from migrations.schema import execute_sql, released_routine

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE = r"""
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

create or replace function otel.reject_outside_time_window(kind text, time_column text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Gives err to the valid rows of pg_temp.otel_<kind> outside the accepted
-- time window (otel.accepted_time_window()), before any partition is made
-- for them.
declare
    accepted tstzrange := otel.accepted_time_window(kind);
    extent tstzrange;
begin
    -- Usually every row is inside, and then no row is read a second time.
    execute format('select tstzrange(min(%1$I), max(%1$I), ''[]'') from pg_temp.%2$I where err is null having count(*) > 0',
                   time_column, 'otel_' || kind) into extent;
    if extent is null or accepted @> extent then
        return;
    end if;
    execute format($sql$
        update pg_temp.%1$I
           set err = case when %2$I < lower($1)
                          then format('%2$s %%s is before %%s, the oldest time the %3$s retention keeps (otel.set_retention())',
                                      %2$I, lower($1))
                          else format('%2$s %%s is after %%s, more than otel.future_margin ahead of the database clock',
                                      %2$I, upper($1))
                      end
         where err is null and not $1 @> %2$I
    $sql$, 'otel_' || kind, time_column, kind) using accepted;
end
$$;
comment on function otel.reject_outside_time_window(text, text) is
    'Dead-letters the rows of a flush outside the accepted time window; internal to otel.flush()';

create or replace function otel.process_working_set()
returns table (kind text, moved bigint, duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Decode, validate, cast and move everything in the working set; queue
-- the rejects. Shared by otel.flush() and otel.retry_dlq().
declare
    k text;
    time_column text;
    result record;
begin
    insert into pg_temp.otel_rejects
    select dlq_id, 'otlp', 'otel.otlp_staging', payload, 'text',
           case when doc is null then 'not valid JSON (an OTLP/JSON request is one JSON object per line)'
                else 'not an OTLP/JSON export request: expected an object with resourceSpans, resourceLogs or resourceMetrics' end
      from pg_temp.otel_otlp
     where doc is null
        or jsonb_typeof(doc) <> 'object'
        or not (doc ?| array['resourceSpans', 'resourceLogs', 'resourceMetrics']);

    foreach k in array array['traces', 'logs', 'metrics'] loop
        perform otel.decode_otlp(k);
        perform otel.type_rows(k);
        time_column := case k when 'traces' then 'start_time' else 'time' end;
        perform otel.reject_outside_time_window(k, time_column);
        perform otel.partition_working_set(k, time_column);
        perform otel.reject_invalid_rows(k);
        case k
            when 'traces' then select * into result from otel.move_traces();
            when 'logs' then select * into result from otel.move_logs();
            when 'metrics' then select * into result from otel.move_metrics();
        end case;
        kind := k;
        moved := result.moved;
        duplicates := result.duplicates;
        return next;
    end loop;
end
$$;
comment on function otel.process_working_set() is
    'Decodes, validates and moves the working set of a flush or a retry; internal';

revoke all on function otel.accepted_time_window(text) from public;

grant execute on function otel.accepted_time_window(text) to otel_writer, otel_reader, otel_admin;

revoke all on function otel.reject_outside_time_window(text, text) from public;
"""

DOWNGRADE = r"""
drop function otel.accepted_time_window(text);

drop function otel.reject_outside_time_window(text, text);
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
    execute_sql(released_routine("0006", "otel.process_working_set"))
