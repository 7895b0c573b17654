"""Trace search: a catalog of operations the flush keeps, otel.services(), otel.operations(), otel.find_traces()
and otel.service_dependencies().

otel.operation_catalog holds every service, span name and kind stored, with
the start of its first and last span and the resource attribute keys seen
with it; the flush adds a batch's operations from the signature inputs it
groups anyway, retention prunes them with the trace summaries. This
revision fills it from the spans already stored (two passes over
otel.traces).

Revision ID: 0022
Revises: 0021
"""

from migrations.schema import execute_sql, released_routine

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

UPGRADE = r"""
create table otel.operation_catalog (
    service_name text not null,
    name text not null,
    span_kind text not null,
    first_seen timestamptz not null,
    last_seen timestamptz not null,
    resource_keys text[] not null default '{}',
    primary key (service_name, name, span_kind)
);
comment on table otel.operation_catalog is
    'Every service, span name and kind stored, with the start of its first and last span and the resource attribute keys seen with it: kept by the flush, pruned with the spans by retention; read by otel.services(), otel.operations() and otel.find_traces()';

-- The operations of the spans stored so far: one pass over otel.traces.
insert into otel.operation_catalog (service_name, name, span_kind, first_seen, last_seen, resource_keys)
select o.service_name, o.name, o.kind, o.first_seen, o.last_seen, coalesce(k.keys, '{}')
  from (select service_name, name, kind, min(start_time) as first_seen, max(start_time) as last_seen
          from otel.traces
         where service_name is not null
         group by 1, 2, 3) as o
  left join (select r.service_name, r.name, r.kind, array_agg(distinct r.key order by r.key) as keys
               from (select distinct t.service_name, t.name, t.kind, jsonb_object_keys(t.resource_attributes) as key
                       from otel.traces as t
                      where t.service_name is not null) as r
              group by 1, 2, 3) as k
    on (k.service_name, k.name, k.kind) = (o.service_name, o.name, o.kind);

grant select on otel.operation_catalog to otel_reader;
grant select, insert, update, delete, truncate on otel.operation_catalog to otel_admin;

create or replace function otel.sign_spans()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- One signature per distinct signature input of the valid spans, upserted
-- into otel.span_signatures (counting the spans); the ids land in
-- pg_temp.otel_signature_ids by signature input. A new signature wakes the
-- embedding worker.
begin
    create temp table otel_signature_ids (signature_input bigint primary key, signature_id bigint, created boolean)
        on commit drop;
    -- A table with statistics, so that the join below fetches the first
    -- span of each of the few distinct inputs by its position rather than
    -- reading every span again.
    create temp table otel_signature_inputs on commit drop as
    select signature_input, min(ctid) as first_span, count(*) as spans,
           min(start_time) as first_start, max(start_time) as last_start
      from pg_temp.otel_traces where err is null group by signature_input;
    analyze pg_temp.otel_signature_inputs;
    with signed as (
        select i.signature_input, i.spans,
               otel.span_signature(t.service_name, t.kind, t.name, t.status_code, t.status_message,
                                   t.attributes, t.events) as signature
          from pg_temp.otel_signature_inputs as i
          join pg_temp.otel_traces as t on t.ctid = i.first_span
    ),
    per_signature as (
        select signature, md5(signature)::uuid as text_hash, sum(spans) as spans from signed group by signature
    ),
    signature_ids as (
        insert into otel.span_signatures as s (text, span_count)
        select signature, spans from per_signature
        on conflict (text_hash) do update set span_count = s.span_count + excluded.span_count
        returning s.id, s.text_hash, s.xmax = 0 as created
    )
    insert into pg_temp.otel_signature_ids
    select s.signature_input, i.id, i.created
      from signed as s
      join signature_ids as i on i.text_hash = md5(s.signature)::uuid;
    if exists (select from pg_temp.otel_signature_ids where created) then
        perform pg_notify('otel_signatures', 'new');  -- wakes `otel-db embed --watch`
    end if;
end
$$;
comment on function otel.sign_spans() is
    'Upserts one signature per distinct signature input of the spans of a flush; internal to otel.flush()';

create or replace function otel.catalog_operations()
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Service, span name and kind are part of the signature input, so the
-- distinct inputs otel.sign_spans() grouped (a few hundred for a million
-- spans) give the flush's operations without reading the spans again; the
-- resource attribute keys come from the first span of each input (a
-- service's resources share their keys, hosts differ in values), and
-- tell otel.find_traces() which attributes may be a resource's. Rows
-- change only when the flush widens their time range or adds keys.
begin
    insert into otel.operation_catalog as c (service_name, name, span_kind, first_seen, last_seen, resource_keys)
    select t.service_name, t.name, t.kind, min(i.first_start), max(i.last_start),
           array_remove(array_agg(distinct k.key order by k.key), null)
      from pg_temp.otel_signature_inputs as i
      join pg_temp.otel_traces as t on t.ctid = i.first_span
      left join lateral jsonb_object_keys(t.resource_attributes) as k (key) on true
     where t.service_name is not null
     group by 1, 2, 3
    on conflict (service_name, name, span_kind) do update
        set first_seen = least(c.first_seen, excluded.first_seen),
            last_seen = greatest(c.last_seen, excluded.last_seen),
            resource_keys = array(select distinct x from unnest(c.resource_keys || excluded.resource_keys) as x
                                   order by x)
        where excluded.first_seen < c.first_seen or excluded.last_seen > c.last_seen
           or not excluded.resource_keys <@ c.resource_keys;
end
$$;
comment on function otel.catalog_operations() is
    'Adds the services, span names and kinds of a flush, and their resource attribute keys, to otel.operation_catalog; internal to otel.flush()';

create or replace function otel.move_traces(out moved bigint, out duplicates bigint)
language plpgsql
set search_path = pg_catalog, pg_temp
-- The working set's statistics need only be rough (they choose hashing or
-- sorting, and join orders): a sample of 9,000 rows instead of 30,000
-- takes a quarter of the time.
set default_statistics_target = 30
as $$
-- Valid spans into otel.traces: drop repeated ones, sign them, add them to
-- the catalog of operations and the trace summaries, insert them.
begin
    -- Row counts and the statistics of the columns the statements below
    -- join, group and filter on; sampling the JSON columns too would cost
    -- as much again.
    analyze pg_temp.otel_traces (err, trace_id, span_id, parent_span_id, start_time, signature_input, span_key);
    duplicates := otel.drop_repeated_spans();
    perform otel.sign_spans();
    perform otel.catalog_operations();
    perform otel.summarize_traces();
    insert into otel.traces (
        trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time,
        duration_ms, status_code, status_message, service_name, scope_name, scope_version,
        attributes, resource_attributes, events, links, signature_id)
    select t.trace_id, t.span_id, t.parent_span_id, t.trace_state, t.flags, t.name, t.kind,
           t.start_time, t.end_time, t.duration_ms, t.status_code, t.status_message,
           t.service_name, t.scope_name, t.scope_version,
           t.attributes, t.resource_attributes, t.events, t.links, s.signature_id
      from pg_temp.otel_traces as t
      join pg_temp.otel_signature_ids as s using (signature_input)
     where t.err is null;
    get diagnostics moved = row_count;
end
$$;
comment on function otel.move_traces() is
    'Moves the valid spans of a flush into otel.traces with signatures and trace summaries; internal to otel.flush()';

create or replace function otel.drop_expired_partitions()
returns setof text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- A daily partition goes once its whole day is older than now() - keep, so
-- nothing younger than keep is ever dropped. Returns the dropped tables; a
-- partition that readers keep from being dropped (otel.run_with_short_locks())
-- is left, with the rest of its table's, for the next run.
declare
    expired record;
    busy text[] := '{}';  -- tables whose readers kept a partition from being dropped
begin
    for expired in
        select r.kind, c.relname, c.oid::regclass as partition
          from otel.retention as r
          join pg_inherits as i on i.inhparent = format('otel.%I', r.kind)::regclass
          join pg_class as c on c.oid = i.inhrelid
         where c.relname ~ '_p[0-9]{8}$'
           and (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp at time zone 'UTC' <= now() - r.keep
         order by c.relname
    loop
        continue when expired.kind = any (busy);
        if otel.run_with_short_locks(format('drop table otel.%I', expired.relname)) then
            return next expired.partition::text;
        else
            busy := busy || expired.kind;
            raise notice 'otel_db: otel.% is in use; % and older partitions are dropped by the next maintenance',
                         expired.kind, expired.partition;
        end if;
    end loop;
    delete from otel.trace_summaries as s
     using otel.retention as r
     where r.kind = 'traces' and s.end_time < now() - r.keep - interval '1 day';
    delete from otel.operation_catalog as c
     using otel.retention as r
     where r.kind = 'traces' and c.last_seen < now() - r.keep - interval '1 day';
end
$$;
comment on function otel.drop_expired_partitions() is
    'Drops the daily partitions of otel.traces, otel.logs and otel.metrics past their retention (otel.retention), and the trace summaries and catalogued operations last seen before it; returns the partitions'' names';

create or replace function otel.services(since timestamptz default null, until timestamptz default null)
returns table (service_name text, operations bigint, first_seen timestamptz, last_seen timestamptz)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- From otel.operation_catalog, whatever the size of otel.traces; since and
-- until (either may be null) keep the services with an operation last seen
-- in that window.
begin
    perform otel.check_time_range(since, until, false);
    return query
        select c.service_name, count(*), min(c.first_seen), max(c.last_seen)
          from otel.operation_catalog as c
         where (services.since is null or c.last_seen >= services.since)
           and (services.until is null or c.first_seen <= services.until)
         group by c.service_name
         order by c.service_name;
end
$$;
comment on function otel.services(timestamptz, timestamptz) is
    'Every service with stored spans, from the catalog the flush keeps: service_name, number of operations, first and last span start; since/until keep those seen in that window';

create or replace function otel.operations(
    service text, span_kind text default null, since timestamptz default null, until timestamptz default null)
returns table (name text, kind text, first_seen timestamptz, last_seen timestamptz)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
    wanted_kind text := upper(operations.span_kind);
begin
    if service is null then
        raise exception 'service must be a service name, got null' using errcode = 'invalid_parameter_value';
    end if;
    if wanted_kind is not null and wanted_kind not in ('UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER') then
        raise exception 'span_kind must be one of server, client, producer, consumer, internal, unspecified, got %',
                        otel.argument_text(operations.span_kind)
            using errcode = 'invalid_parameter_value';
    end if;
    perform otel.check_time_range(since, until, false);
    return query
        select c.name, c.span_kind, c.first_seen, c.last_seen
          from otel.operation_catalog as c
         where c.service_name = operations.service
           and (wanted_kind is null or c.span_kind = wanted_kind)
           and (operations.since is null or c.last_seen >= operations.since)
           and (operations.until is null or c.first_seen <= operations.until)
         order by c.name, c.span_kind;
end
$$;
comment on function otel.operations(text, text, timestamptz, timestamptz) is
    'The operations (span names) of a service, from the catalog the flush keeps: name, kind, first and last span start; span_kind (any case) and since/until filter; 22023 for a null service or an unknown kind';

create or replace function otel.find_traces(
    service text default null, operation text default null, attributes jsonb default null,
    min_duration interval default null, max_duration interval default null, status text default null,
    since timestamptz default now() - interval '1 hour', until timestamptz default now(), lim integer default 20)
returns table (
    trace_id text, root_service text, root_name text, start_time timestamptz, duration_ms double precision,
    span_count bigint, error_count bigint, services text[])
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
-- As in Jaeger, a trace matches when one of its spans started in [since,
-- until) matches every criterion at once: service, operation (span name),
-- each attribute (its own or its resource's, equal to the value as given
-- or to the number or boolean it spells, so that "500" finds the number
-- 500), duration and status. The attribute `error`
-- set to true asks for failing spans, as the Jaeger UI's error=true does
-- (status ERROR, or a stored attribute error=true); set to false, for the
-- others. The spans are read newest first and the search stops at lim
-- traces, so a broad search costs little more than a narrow one; with no
-- span criterion at all, the trace summaries answer by themselves. Only
-- the partitions of the window are read.
declare
    wanted_status text := upper(find_traces.status);
    wanted_error boolean;
    conditions text := '';
    attribute record;
    resource_keys text[];
    value_text text;
    candidates jsonb[];
    search text;
    page_end timestamptz;
    page_size bigint;
    spans_read bigint;
    found_trace record;
    found_ids text[] := '{}';
begin
    perform otel.check_time_range(since, until, true);
    perform otel.check_limit(lim);
    if wanted_status is not null and wanted_status not in ('ERROR', 'OK', 'UNSET') then
        raise exception 'status must be ERROR, OK or UNSET, got %', otel.argument_text(find_traces.status)
            using errcode = 'invalid_parameter_value';
    end if;
    if min_duration < interval '0' then
        raise exception 'min_duration must not be negative, got %', min_duration
            using errcode = 'invalid_parameter_value';
    end if;
    if max_duration < interval '0' then
        raise exception 'max_duration must not be negative, got %', max_duration
            using errcode = 'invalid_parameter_value';
    end if;
    if min_duration > max_duration then
        raise exception 'min_duration (%) is above max_duration (%)', min_duration, max_duration
            using errcode = 'invalid_parameter_value';
    end if;
    if attributes is not null and jsonb_typeof(attributes) <> 'object' then
        raise exception 'attributes must be a JSON object of keys and values, got %', left(attributes::text, 100)
            using errcode = 'invalid_parameter_value';
    end if;
    select coalesce(array_agg(distinct k), '{}') into resource_keys
      from otel.operation_catalog as c
     cross join unnest(c.resource_keys) as k
     where find_traces.service is null or c.service_name = find_traces.service;
    for attribute in select a.key, a.value from jsonb_each(attributes) as a loop
        if jsonb_typeof(attribute.value) not in ('string', 'number', 'boolean') then
            raise exception 'attribute % must be a string, number or boolean, got %',
                            attribute.key, left(attribute.value::text, 100)
                using errcode = 'invalid_parameter_value';
        end if;
        if attribute.key = 'error' and lower(attribute.value #>> '{}') in ('true', 'false') then
            wanted_error := lower(attribute.value #>> '{}') = 'true';
            continue;
        end if;
        -- The value as text, and as the number or boolean it spells: tags
        -- come as text ("500"), attributes are stored typed (500).
        value_text := attribute.value #>> '{}';
        candidates := array[jsonb_build_object(attribute.key, value_text)];
        if value_text ~ '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$' then
            candidates := candidates || jsonb_build_object(attribute.key, value_text::numeric);
        end if;
        if lower(value_text) in ('true', 'false') then
            candidates := candidates || jsonb_build_object(attribute.key, lower(value_text)::boolean);
        end if;
        -- Containment, which the GIN index on span attributes answers, unless
        -- the key is one of the resources': those are read span by span.
        conditions := conditions || ' and (' || (
            select string_agg(format('t.attributes @> %L', c), ' or ')
                   || case when attribute.key = any (resource_keys)
                           then ' or ' || string_agg(format('t.resource_attributes @> %L', c), ' or ')
                           else '' end
              from unnest(candidates) as c) || ')';
    end loop;
    if wanted_error then
        conditions := conditions || ' and (t.status_code = ''ERROR'' or t.attributes ->> ''error'' = ''true'')';
    elsif not wanted_error then
        conditions := conditions
                      || ' and t.status_code <> ''ERROR'' and t.attributes ->> ''error'' is distinct from ''true''';
    end if;
    if service is null and operation is null and conditions = '' and wanted_status is null
       and min_duration is null and max_duration is null then
        return query
            select s.trace_id, s.root_service, s.root_name, s.start_time, s.duration_ms, s.span_count,
                   s.error_count, s.services
              from otel.trace_summaries as s
             where s.start_time >= since and s.start_time < until
             order by s.start_time desc, s.trace_id
             limit lim;
        return;
    end if;
    -- Pages of matching spans, newest first, each four times the last: a
    -- page has a limit, so the planner walks the (service_name, start_time)
    -- index in order and stops, where without one it would sort every
    -- match. A page goes on from the start of the last one's oldest span
    -- (inclusive: spans that started at the same microsecond are not lost;
    -- their traces are seen already).
    search := 'select t.trace_id, t.start_time from otel.traces as t'
        || ' where t.start_time >= $1 and t.start_time < $2 and t.start_time <= $8'
        || case when service is not null then ' and t.service_name = $3' else '' end
        || case when operation is not null then ' and t.name = $4' else '' end
        || case when wanted_status is not null then ' and t.status_code = $5' else '' end
        || case when min_duration is not null then ' and t.duration_ms >= $6' else '' end
        || case when max_duration is not null then ' and t.duration_ms <= $7' else '' end
        || conditions
        || ' order by t.start_time desc limit $9';
    page_end := until;
    page_size := 8 * lim;
    <<pages>>
    loop
        spans_read := 0;
        for found_trace in execute search
            using since, until, service, operation, wanted_status,
                  extract(epoch from min_duration) * 1000, extract(epoch from max_duration) * 1000,
                  page_end, page_size
        loop
            spans_read := spans_read + 1;
            page_end := found_trace.start_time;
            continue when found_trace.trace_id = any (found_ids);
            found_ids := found_ids || found_trace.trace_id;
            exit pages when cardinality(found_ids) >= lim;
        end loop;
        exit when spans_read < page_size;
        page_size := 4 * page_size;
    end loop;
    return query
        select s.trace_id, s.root_service, s.root_name, s.start_time, s.duration_ms, s.span_count, s.error_count,
               s.services
          from otel.trace_summaries as s
         where s.trace_id = any (found_ids)
         order by s.start_time desc, s.trace_id;
end
$$;
comment on function otel.find_traces(text, text, jsonb, interval, interval, text, timestamptz, timestamptz, integer) is
    'Jaeger-style trace search: the newest lim traces (1..10000) with a span started in [since, until) that matches service, operation (span name), every attribute (its own or its resource''s; "500" finds the number too; error=true for failing spans), min/max duration and status (ERROR, OK, UNSET) together; one row a trace from otel.trace_summaries: trace_id, root service and name, start, duration, span and error counts, services; newest first; 22023 for bad arguments';

create or replace function otel.service_dependencies(since timestamptz, until timestamptz default now())
returns table (parent text, child text, call_count bigint)
language plpgsql stable
set search_path = pg_catalog, pg_temp
set jit = off
as $$
-- Each span started in [since, until) whose parent belongs to another
-- service is a call from that service to its own. Parents are looked up
-- from a day before the window (a longer-running parent is not counted)
-- to an hour after it (clocks of two hosts disagree).
begin
    perform otel.check_time_range(since, until, true);
    if until - since > interval '31 days' then
        raise exception 'the window from since to until must be at most 31 days, got %', until - since
            using errcode = 'invalid_parameter_value';
    end if;
    return query
        select p.service_name, c.service_name, count(*)
          from otel.traces as c
          join otel.traces as p on p.trace_id = c.trace_id and p.span_id = c.parent_span_id
         where c.start_time >= since and c.start_time < until
           and p.start_time >= since - interval '1 day' and p.start_time < until + interval '1 hour'
           and p.service_name <> c.service_name
         group by 1, 2
         order by 3 desc, 1, 2;
end
$$;
comment on function otel.service_dependencies(timestamptz, timestamptz) is
    'Calls between services in [since, until) (at most 31 days): parent service, child service and the number of child spans whose parent span is of the other service; most calls first';

grant execute on function
    otel.services(timestamptz, timestamptz),
    otel.operations(text, text, timestamptz, timestamptz),
    otel.find_traces(text, text, jsonb, interval, interval, text, timestamptz, timestamptz, integer),
    otel.service_dependencies(timestamptz, timestamptz)
    to otel_reader, otel_admin;
"""

DOWNGRADE = r"""
drop function otel.service_dependencies(timestamptz, timestamptz);
drop function otel.find_traces(text, text, jsonb, interval, interval, text, timestamptz, timestamptz, integer);
drop function otel.operations(text, text, timestamptz, timestamptz);
drop function otel.services(timestamptz, timestamptz);
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
    execute_sql(released_routine("0011", "otel.drop_expired_partitions"))
    execute_sql(released_routine("0006", "otel.move_traces"))
    execute_sql(released_routine("0006", "otel.sign_spans"))
    execute_sql("drop function otel.catalog_operations()")
    execute_sql("drop table otel.operation_catalog")
