"""Routines created in schema otel later on are not executable by PUBLIC: an event trigger revokes it.

PostgreSQL grants EXECUTE to PUBLIC on every new routine, and
'alter default privileges in schema otel revoke execute on routines from
public' cannot take back a privilege granted globally, so a function added to
otel by hand was executable by every role with usage on the schema (an
otel_writer, say). The event trigger otel_revoke_public_execute
(otel.revoke_public_execute()) revokes it when a routine is created in otel;
routines in other schemas are left alone.

Revision ID: 0009
Revises: 0008
"""

from migrations.schema import execute_sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- PostgreSQL grants EXECUTE to PUBLIC on every new routine, and default
-- privileges "in schema otel" cannot take back what is granted globally: an
-- event trigger revokes it from each routine created in otel later on.
create or replace function otel.revoke_public_execute()
returns event_trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    routine record;
begin
    for routine in
        select objid from pg_event_trigger_ddl_commands()
         where object_type in ('function', 'procedure', 'aggregate') and schema_name = 'otel'
    loop
        execute format('revoke execute on routine %s from public', routine.objid::regprocedure);
    end loop;
end
$$;
comment on function otel.revoke_public_execute() is
    'Event trigger otel_revoke_public_execute: a routine created in schema otel is not executable by PUBLIC';

revoke all on function otel.revoke_public_execute() from public;

create event trigger otel_revoke_public_execute on ddl_command_end
    when tag in ('CREATE FUNCTION', 'CREATE PROCEDURE', 'CREATE AGGREGATE')
    execute function otel.revoke_public_execute();
"""

DOWNGRADE = r"""
drop event trigger otel_revoke_public_execute;

drop function otel.revoke_public_execute();
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
