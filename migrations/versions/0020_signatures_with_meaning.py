"""Signatures say what codes and class names mean; otel.resign_spans() re-signs stored spans.

A span's signature now spells out the exception class name in words
(psycopg.errors.QueryCanceled: "query canceled") and carries the gRPC
status code with its name (rpc.grpc.status_code 14: "grpc 14 unavailable");
spans that differ only in their gRPC status no longer share a signature.
The exception's message is left out where the error message already holds
it (SDKs set the status to "Type: message"), so that it does not weigh
twice in the embedding.

Spans flushed after the upgrade get the new signatures. Those stored before
keep theirs until `call otel.resign_spans()` (a daily partition at a
time, resumable) moves them: this revision does not rewrite stored
rows itself, as that could hold an upgrade for hours on a large database.

Revision ID: 0020
Revises: 0019
"""

from migrations.schema import execute_sql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

UPGRADE = r"""
create or replace function otel.grpc_status_name(code text)
returns text
language sql immutable parallel safe
as $$
    select case code
        when '0' then 'ok' when '1' then 'cancelled' when '2' then 'unknown' when '3' then 'invalid argument'
        when '4' then 'deadline exceeded' when '5' then 'not found' when '6' then 'already exists'
        when '7' then 'permission denied' when '8' then 'resource exhausted' when '9' then 'failed precondition'
        when '10' then 'aborted' when '11' then 'out of range' when '12' then 'unimplemented'
        when '13' then 'internal' when '14' then 'unavailable' when '15' then 'data loss'
        when '16' then 'unauthenticated'
    end
$$;
comment on function otel.grpc_status_name(text) is
    'The name of a gRPC status code in words (14: unavailable), null for codes outside 0-16';

create or replace function otel.identifier_words(identifier text)
returns text
language sql immutable parallel safe
as $$
    -- The last part of a qualified name (psycopg.errors.QueryCanceled,
    -- java.net.SocketTimeoutException, *errors.errorString), cut where the
    -- case changes: a model reads "query canceled" better than one token
    -- soup. Acronyms stay whole (HTTPError: "http error"). Null when the
    -- name is a single word already.
    select nullif(words, lower(last_part))
      from (select regexp_replace(identifier, '^.*[.$:/\\]', '') as last_part) as l
     cross join lateral (
         select trim(regexp_replace(lower(regexp_replace(regexp_replace(
                    l.last_part,
                    '([A-Z]+)([A-Z][a-z])', '\1 \2', 'g'),
                    '([a-z0-9])([A-Z])', '\1 \2', 'g')),
                    '[^a-z0-9]+', ' ', 'g')) as words
     ) as w
$$;
comment on function otel.identifier_words(text) is
    'The last part of a qualified class name in lower-case words (psycopg.errors.QueryCanceled: "query canceled"), null when it is one word';

create or replace function otel.signature_input(
    service_name text, kind text, name text, status_code text, status_message text,
    attributes jsonb, events jsonb)
returns bigint
language sql immutable parallel safe
as $$
    -- A hash of exactly the fields otel.span_signature() reads, cheap enough
    -- for every span (one inlined expression): spans with the same input
    -- get the same signature, so the costly normalisation runs once per
    -- distinct input instead of once per span. Each field is hashed with
    -- the hash of the fields after it as the seed: no text is concatenated
    -- (a tenth of this function's cost), and the fields need no separator.
    -- \x02 stands for a missing value, which otel.span_signature() tells
    -- from an empty one. Error messages count with every digit but 0 read
    -- as 1: otel.normalize_text() tells those apart nowhere, so messages
    -- that differ only in them (ids, counts) normalise the same, and one of
    -- them stands for all. 64 bits, chained over 16 fields: two of a flush's
    -- distinct inputs share a hash with odds of about 1 in 10^9 at 30,000
    -- inputs, and then only the signature label of their spans is affected.
    select hashtextextended(coalesce(service_name, e'\x02'),
           hashtextextended(coalesce(kind, e'\x02'),
           hashtextextended(coalesce(name, e'\x02'),
           hashtextextended(case when status_code = 'ERROR'
                                 then e'\x03' || coalesce(translate(status_message, '23456789', '11111111'), e'\x02')
                                 else e'\x02' end,
           hashtextextended(coalesce(otel.exception_attribute(events, 'exception.type'), e'\x02'),
           hashtextextended(coalesce(translate(otel.exception_attribute(events, 'exception.message'), '23456789', '11111111'), e'\x02'),
           hashtextextended(coalesce(attributes ->> 'http.request.method', attributes ->> 'http.method', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'http.route', attributes ->> 'url.template', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'http.response.status_code', attributes ->> 'http.status_code', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'db.system.name', attributes ->> 'db.system', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'db.operation.name', attributes ->> 'db.operation', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'db.collection.name', attributes ->> 'db.sql.table', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'messaging.system', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'messaging.operation.type', attributes ->> 'messaging.operation', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'messaging.destination.name', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'rpc.grpc.status_code', e'\x02'), 0))))))))))))))))
$$;
comment on function otel.signature_input(text, text, text, text, text, jsonb, jsonb) is
    'A hash of the span fields otel.span_signature() reads: spans with equal hashes share a signature';

create or replace function otel.span_signature(
    service_name text, kind text, name text, status_code text, status_message text,
    attributes jsonb, events jsonb)
returns text
language plpgsql immutable parallel safe
as $$
-- Reads the same fields as otel.signature_input(): change both together.
-- PL/pgSQL for its variables: the exception event is looked up once.
declare
    exception_attributes jsonb;
    exception_type text;
    exception_message text;
    error_message text;
    http_status text := coalesce(attributes ->> 'http.response.status_code', attributes ->> 'http.status_code');
    grpc_status text := attributes ->> 'rpc.grpc.status_code';
begin
    exception_attributes := otel.exception_event_attributes(events);
    exception_type := exception_attributes ->> 'exception.type';
    exception_message := exception_attributes ->> 'exception.message';
    if status_code = 'ERROR' then
        error_message := otel.normalize_text(status_message);
    end if;
    -- The exception's message is left out where the error message already
    -- says it (SDKs set the status to "Type: message"): repeated, it would
    -- weigh twice in the embedding and push the rest of the text aside.
    if status_code = 'ERROR' and exception_message = status_message then
        exception_message := null;
    else
        exception_message := otel.normalize_text(exception_message);
        if position(exception_message in error_message) > 0 then
            exception_message := null;
        end if;
    end if;
    return left(concat_ws(' | ',
        service_name,
        lower(kind) || ' ' || otel.normalize_text(name),
        case when status_code = 'ERROR' then concat_ws(': ', 'error', error_message) end,
        case when exception_type is not null or exception_message is not null
             then concat_ws(': ', 'exception ' || exception_type
                                           || coalesce(' (' || otel.identifier_words(exception_type) || ')', ''),
                            exception_message) end,
        nullif(concat_ws(' ',
            coalesce(attributes ->> 'http.request.method', attributes ->> 'http.method'),
            otel.normalize_text(coalesce(attributes ->> 'http.route', attributes ->> 'url.template')),
            http_status || coalesce(' ' || otel.http_reason(http_status), '')), ''),
        nullif(concat_ws(' ',
            coalesce(attributes ->> 'db.system.name', attributes ->> 'db.system'),
            coalesce(attributes ->> 'db.operation.name', attributes ->> 'db.operation'),
            otel.normalize_text(coalesce(attributes ->> 'db.collection.name', attributes ->> 'db.sql.table'))), ''),
        nullif(concat_ws(' ',
            attributes ->> 'messaging.system',
            coalesce(attributes ->> 'messaging.operation.type', attributes ->> 'messaging.operation'),
            otel.normalize_text(attributes ->> 'messaging.destination.name')), ''),
        'grpc ' || left(grpc_status, 40) || coalesce(' ' || otel.grpc_status_name(grpc_status), '')
    ), 1000);
end
$$;
comment on function otel.span_signature(text, text, text, text, text, jsonb, jsonb) is
    'The normalised text a span is embedded by: service, kind and name, error status and message, exception type (and its name in words) and message (unless the error message says it), HTTP method, route and status with its reason phrase, database system and operation, messaging destination, gRPC status code with its name';

create or replace function otel.resign_signatures(day date)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Step 1: for each distinct (signature, signature input) of the day's
-- spans, the text a flush would give it now (signed once, from its first
-- span, as the flush does); those whose text changed are kept in
-- pg_temp.otel_resign_moves for step 2 (it outlives the transaction), and
-- the texts not stored yet become signatures without spans. Returns the
-- number of signatures created.
declare
    partition_name text := 'traces_p' || to_char(day, 'YYYYMMDD');
    created bigint;
begin
    if day is null then
        raise exception 'day must be a date, got null' using errcode = 'invalid_parameter_value';
    end if;
    drop table if exists pg_temp.otel_resign_moves;
    create temp table otel_resign_moves (old_id bigint, signature_input bigint, text text);
    if to_regclass(format('otel.%I', partition_name)) is null then
        return 0;
    end if;
    -- One re-signing of a day at a time (this lock conflicts with itself,
    -- not with readers, the flush or the update below).
    execute format('lock table otel.%I in share update exclusive mode', partition_name);
    execute format($sql$
        create temp table otel_resign_inputs on commit drop as
        select t.signature_id as old_id,
               otel.signature_input(t.service_name, t.kind, t.name, t.status_code, t.status_message,
                                    t.attributes, t.events) as signature_input,
               min(t.ctid) as first_span
          from otel.%1$I as t
         where t.signature_id is not null
         group by 1, 2$sql$, partition_name);
    analyze pg_temp.otel_resign_inputs;
    execute format($sql$
        insert into pg_temp.otel_resign_moves
        select i.old_id, i.signature_input, s.text
          from pg_temp.otel_resign_inputs as i
          join otel.%1$I as t on t.ctid = i.first_span
         cross join lateral (
             select otel.span_signature(t.service_name, t.kind, t.name, t.status_code, t.status_message,
                                        t.attributes, t.events) as text
         ) as s
          left join otel.span_signatures as old on old.id = i.old_id
         where old.text_hash is distinct from md5(s.text)::uuid$sql$, partition_name);
    -- do nothing: a signature that exists already is left unlocked
    insert into otel.span_signatures (text)
    select distinct m.text from pg_temp.otel_resign_moves as m
    on conflict (text_hash) do nothing;
    get diagnostics created = row_count;
    if created > 0 then
        perform pg_notify('otel_signatures', 'new');  -- wakes `otel-db embed --watch`
    end if;
    return created;
end
$$;
comment on function otel.resign_signatures(date) is
    'Step 1 of re-signing a daily partition of otel.traces: finds the spans whose signature text changed and stores their new signatures; internal to otel.resign_spans()';

create or replace function otel.resign_partition(day date)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- Step 2: the spans found by step 1 (run here first when it has not run in
-- this session) move to their new signatures; only those are rewritten.
-- The span counts follow what the update moved, and an old signature that
-- no span uses any more is deleted. Returns the number of spans moved.
declare
    partition_name text := 'traces_p' || to_char(day, 'YYYYMMDD');
    moved bigint;
begin
    if day is null then
        raise exception 'day must be a date, got null' using errcode = 'invalid_parameter_value';
    end if;
    if to_regclass('pg_temp.otel_resign_moves') is null then
        perform otel.resign_signatures(day);
    end if;
    if to_regclass(format('otel.%I', partition_name)) is null then
        drop table pg_temp.otel_resign_moves;
        return 0;
    end if;
    execute format('lock table otel.%I in share update exclusive mode', partition_name);
    create temp table otel_resign_counts (old_id bigint, new_id bigint, spans bigint) on commit drop;
    execute format($sql$
        with moved as (
            update otel.%1$I as t
               set signature_id = s.id
              from pg_temp.otel_resign_moves as m
              join otel.span_signatures as s on s.text_hash = md5(m.text)::uuid
             where t.signature_id = m.old_id
               and otel.signature_input(t.service_name, t.kind, t.name, t.status_code, t.status_message,
                                        t.attributes, t.events) = m.signature_input
            returning m.old_id, s.id as new_id
        )
        insert into pg_temp.otel_resign_counts
        select old_id, new_id, count(*) from moved group by 1, 2$sql$, partition_name);
    drop table pg_temp.otel_resign_moves;
    select coalesce(sum(c.spans), 0) into moved from pg_temp.otel_resign_counts as c;
    -- Counts last, just before the commit, rows locked in id order: a flush
    -- upserting the same signatures waits for a moment, not for the update.
    perform from otel.span_signatures as s
     where s.id in (select c.old_id from pg_temp.otel_resign_counts as c
                    union select c.new_id from pg_temp.otel_resign_counts as c)
     order by s.id
       for update;
    update otel.span_signatures as s
       set span_count = s.span_count + d.change
      from (select c.new_id as id, c.spans as change from pg_temp.otel_resign_counts as c
            union all
            select c.old_id, -c.spans from pg_temp.otel_resign_counts as c) as d
     where s.id = d.id;
    -- A statement of its own, so that its snapshot sees the spans of
    -- flushes that committed while the rows above were being locked.
    delete from otel.span_signatures as s
     where s.id in (select c.old_id from pg_temp.otel_resign_counts as c)
       and not exists (select from otel.traces as t where t.signature_id = s.id);
    return moved;
end
$$;
comment on function otel.resign_partition(date) is
    'Step 2 of re-signing a daily partition of otel.traces: moves its spans to the signatures otel.span_signature() gives them now (running step 1 first if needed); returns the number of spans moved; internal to otel.resign_spans()';

create or replace procedure otel.resign_spans(since timestamptz default null)
language plpgsql
as $$
-- Partition by partition, oldest first, each step its own transaction: it
-- can be stopped and run again, and it never holds more than one day's
-- rows. Call it outside a transaction block (it commits). It has no `set
-- search_path` clause, which would forbid the commits; it is not security
-- definer either, so it runs with the caller's rights and settings, and
-- the work is done by the two functions, which pin theirs.
declare
    day date;
    moved bigint;
begin
    for day in
        select to_date(right(c.relname, 8), 'YYYYMMDD')
          from pg_catalog.pg_inherits as i
          join pg_catalog.pg_class as c on c.oid = i.inhrelid
         where i.inhparent = 'otel.traces'::regclass
           and c.relname ~ '_p[0-9]{8}$'
           and (since is null or to_date(right(c.relname, 8), 'YYYYMMDD') >= (since at time zone 'UTC')::date)
         order by 1
    loop
        perform otel.resign_signatures(day);
        commit;
        moved := otel.resign_partition(day);
        raise notice 'otel_db: % spans of % re-signed', moved, day;
        commit;
    end loop;
end
$$;
comment on procedure otel.resign_spans(timestamptz) is
    'Re-signs the stored spans (of the UTC days from since on, all when null) after an upgrade changed otel.span_signature(); run it outside a transaction block: one daily partition at a time, in two transactions; spans move to the signature a flush would give them now, new signatures are embedded by the embedding worker, old ones left without spans are deleted';

grant execute on function otel.resign_signatures(date), otel.resign_partition(date) to otel_admin;
grant execute on procedure otel.resign_spans(timestamptz) to otel_admin;
"""

DOWNGRADE = r"""
drop procedure otel.resign_spans(timestamptz);
drop function otel.resign_partition(date);
drop function otel.resign_signatures(date);

create or replace function otel.signature_input(
    service_name text, kind text, name text, status_code text, status_message text,
    attributes jsonb, events jsonb)
returns bigint
language sql immutable parallel safe
as $$
    -- A hash of exactly the fields otel.span_signature() reads, cheap enough
    -- for every span (one inlined expression): spans with the same input
    -- get the same signature, so the costly normalisation runs once per
    -- distinct input instead of once per span. Each field is hashed with
    -- the hash of the fields after it as the seed: no text is concatenated
    -- (a tenth of this function's cost), and the fields need no separator.
    -- \x02 stands for a missing value, which otel.span_signature() tells
    -- from an empty one. Error messages count with every digit but 0 read
    -- as 1: otel.normalize_text() tells those apart nowhere, so messages
    -- that differ only in them (ids, counts) normalise the same, and one of
    -- them stands for all. 64 bits, chained over 15 fields: two of a flush's
    -- distinct inputs share a hash with odds of about 1 in 10^9 at 30,000
    -- inputs, and then only the signature label of their spans is affected.
    select hashtextextended(coalesce(service_name, e'\x02'),
           hashtextextended(coalesce(kind, e'\x02'),
           hashtextextended(coalesce(name, e'\x02'),
           hashtextextended(case when status_code = 'ERROR'
                                 then e'\x03' || coalesce(translate(status_message, '23456789', '11111111'), e'\x02')
                                 else e'\x02' end,
           hashtextextended(coalesce(otel.exception_attribute(events, 'exception.type'), e'\x02'),
           hashtextextended(coalesce(translate(otel.exception_attribute(events, 'exception.message'), '23456789', '11111111'), e'\x02'),
           hashtextextended(coalesce(attributes ->> 'http.request.method', attributes ->> 'http.method', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'http.route', attributes ->> 'url.template', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'http.response.status_code', attributes ->> 'http.status_code', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'db.system.name', attributes ->> 'db.system', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'db.operation.name', attributes ->> 'db.operation', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'db.collection.name', attributes ->> 'db.sql.table', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'messaging.system', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'messaging.operation.type', attributes ->> 'messaging.operation', e'\x02'),
           hashtextextended(coalesce(attributes ->> 'messaging.destination.name', e'\x02'), 0)))))))))))))))
$$;
comment on function otel.signature_input(text, text, text, text, text, jsonb, jsonb) is
    'A hash of the span fields otel.span_signature() reads: spans with equal hashes share a signature';

create or replace function otel.span_signature(
    service_name text, kind text, name text, status_code text, status_message text,
    attributes jsonb, events jsonb)
returns text
language plpgsql immutable parallel safe
as $$
-- Reads the same fields as otel.signature_input(): change both together.
-- PL/pgSQL for its variables: the exception event is looked up once, and an
-- exception message equal to the status message (the usual case) is
-- normalised once.
declare
    exception_attributes jsonb;
    exception_type text;
    exception_message text;
    error_message text;
    http_status text := coalesce(attributes ->> 'http.response.status_code', attributes ->> 'http.status_code');
begin
    exception_attributes := otel.exception_event_attributes(events);
    exception_type := exception_attributes ->> 'exception.type';
    exception_message := exception_attributes ->> 'exception.message';
    if status_code = 'ERROR' then
        error_message := otel.normalize_text(status_message);
    end if;
    return left(concat_ws(' | ',
        service_name,
        lower(kind) || ' ' || otel.normalize_text(name),
        case when status_code = 'ERROR' then concat_ws(': ', 'error', error_message) end,
        case when exception_type is not null or exception_message is not null
             then concat_ws(': ', 'exception ' || exception_type,
                            case when status_code = 'ERROR' and exception_message = status_message then error_message
                                 else otel.normalize_text(exception_message) end) end,
        nullif(concat_ws(' ',
            coalesce(attributes ->> 'http.request.method', attributes ->> 'http.method'),
            otel.normalize_text(coalesce(attributes ->> 'http.route', attributes ->> 'url.template')),
            http_status || coalesce(' ' || otel.http_reason(http_status), '')), ''),
        nullif(concat_ws(' ',
            coalesce(attributes ->> 'db.system.name', attributes ->> 'db.system'),
            coalesce(attributes ->> 'db.operation.name', attributes ->> 'db.operation'),
            otel.normalize_text(coalesce(attributes ->> 'db.collection.name', attributes ->> 'db.sql.table'))), ''),
        nullif(concat_ws(' ',
            attributes ->> 'messaging.system',
            coalesce(attributes ->> 'messaging.operation.type', attributes ->> 'messaging.operation'),
            otel.normalize_text(attributes ->> 'messaging.destination.name')), '')
    ), 1000);
end
$$;
comment on function otel.span_signature(text, text, text, text, text, jsonb, jsonb) is
    'The normalised text a span is embedded by: service, kind and name, error status and message, exception type and message, HTTP method, route and status with its reason phrase, database system and operation, messaging destination';

drop function otel.identifier_words(text);
drop function otel.grpc_status_name(text);
"""


def upgrade() -> None:
    execute_sql(UPGRADE)


def downgrade() -> None:
    execute_sql(DOWNGRADE)
