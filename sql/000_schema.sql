-- The schema otel, the extensions it needs and the three group roles.
--
-- pgvector is required. pg_cron is optional: it is created here when this
-- database is pg_cron's own (cron.database_name); from any other database
-- the jobs are registered there through dblink (see 395_schedule.sql).

create extension if not exists vector;

do $$
begin
    if current_setting('cron.database_name', true) = current_database() then
        create extension if not exists pg_cron;
    elsif current_setting('cron.database_name', true) is not null
      and exists (select 1 from pg_available_extensions where name = 'dblink') then
        create extension if not exists dblink;
    end if;
end
$$;

create schema otel;
comment on schema otel is 'otel_db: OpenTelemetry traces, logs and metrics';

-- NOLOGIN group roles, granted by the DBA to login roles. Roles belong to
-- the cluster, not to this database: other databases may share them, so
-- they are created when missing and never dropped.
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'otel_writer') then
        create role otel_writer nologin;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'otel_reader') then
        create role otel_reader nologin;
    end if;
    if not exists (select 1 from pg_roles where rolname = 'otel_admin') then
        create role otel_admin nologin;
    end if;
end
$$;
