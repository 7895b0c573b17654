-- Stage 6, dead-letter: every rejected row or record, with its reason, to
-- otel.telemetry_dlq; and the same for writers that could not stage.

create or replace function otel.reject_invalid_rows(kind text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Queues every row that failed validation for the dead-letter queue: a
-- staging row (from the working set or a claim table) as a JSON object of
-- its columns, a decoded record as an OTLP/JSON request holding just that
-- record.
declare
    claim_table regclass := format('otel.%I', 'claimed_' || kind);
    -- Rows typed in place (t.claimed set) by their position; never those
    -- of a claim table Citus distributes, which has no such rows.
    claimed_rows text := case when otel.distributed(claim_table) then '(select null::tid as ctid, null::jsonb as staged)'
                              else format('(select x.ctid, to_jsonb(x) as staged from %s as x)', claim_table) end;
begin
    if (select e.invalid_rows from pg_temp.otel_batch_extent as e where e.kind = reject_invalid_rows.kind) = 0 then
        return;  -- nothing to look for
    end if;
    execute format($sql$
        insert into pg_temp.otel_rejects
        select r.dlq_id, %1$L,
               case when r.payload_id is null then %2$L else 'otel.otlp_staging' end,
               case when t.claimed is not null
                    then jsonb_strip_nulls(c.staged)::text
                    when r.payload_id is null
                    -- (row_id: the number Citus's staging gives each row)
                    then jsonb_strip_nulls(to_jsonb(r) - '{n,dlq_id,payload_id,rs,ss,rec,dp,row_id}'::text[])::text
                    else otel.otlp_single_record(p.doc, %1$L, r.rs, r.ss, r.rec, r.dp)::text end,
               case when r.payload_id is null then 'row-json' else 'text' end,
               t.err
          from pg_temp.%3$I as t
          left join pg_temp.%4$I as r on r.n = t.n
          left join %5$s as c on c.ctid = t.claimed
          left join pg_temp.otel_otlp as p on p.id = r.payload_id
         where t.err is not null
    $sql$, kind, 'otel.' || kind || '_staging', 'otel_' || kind, 'otel_' || kind || '_rows', claimed_rows);
end
$$;
comment on function otel.reject_invalid_rows(text) is
    'Moves rows that failed validation to the reject list of the flush; internal to otel.flush()';

create or replace function otel.store_rejects()
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
-- Writes the reject list of a flush or retry to otel.telemetry_dlq. A
-- letter that a retry took back and that fails again is updated in place
-- (retry_count + 1, the new error); anything else is a new letter.
declare
    stored bigint;
begin
    with numbered as (
        select r.*, row_number() over (partition by r.dlq_id order by r.error_message) as nth
          from pg_temp.otel_rejects as r
    ),
    retried as (
        update otel.telemetry_dlq as d
           set retry_count = d.retry_count + 1, error_message = n.error_message,
               raw_data = n.raw_data, raw_format = n.raw_format, telemetry_type = n.telemetry_type
          from numbered as n
         where n.dlq_id = d.id and n.nth = 1
        returning d.id
    ),
    new_letters as (
        insert into otel.telemetry_dlq (telemetry_type, source, raw_data, raw_format, error_message, retry_count)
        select n.telemetry_type, n.source, n.raw_data, n.raw_format, n.error_message,
               coalesce((select d.retry_count + 1 from otel.telemetry_dlq as d where d.id = n.dlq_id), 0)
          from numbered as n
         where n.dlq_id is null or n.nth > 1
        returning id
    )
    select (select count(*) from retried) + (select count(*) from new_letters) into stored;
    return stored;
end
$$;
comment on function otel.store_rejects() is
    'Writes the rejects of a flush or retry to otel.telemetry_dlq; internal';

create or replace function otel.dead_letter(
    telemetry_type text, source text, raw_data text, raw_format text, error_message text)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
-- For writers: input they could not stage (bytes PostgreSQL cannot store
-- as text fail a COPY as a whole) goes to the queue instead of being lost.
declare
    letter_id bigint;
begin
    if telemetry_type is null or telemetry_type not in ('traces', 'logs', 'metrics', 'otlp') then
        raise exception 'telemetry_type must be traces, logs, metrics or otlp, got %', coalesce(telemetry_type, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if raw_format is null or raw_format not in ('text', 'row-json', 'bytea-escape') then
        raise exception 'raw_format must be text, row-json or bytea-escape, got %', coalesce(raw_format, 'null')
            using errcode = 'invalid_parameter_value';
    end if;
    if raw_data is null or error_message is null or source is null then
        raise exception 'source, raw_data and error_message must not be null'
            using errcode = 'invalid_parameter_value';
    end if;
    -- A JSON object (json, not jsonb: the text may hold \u0000, which jsonb cannot).
    if raw_format = 'row-json' and (dead_letter.telemetry_type = 'otlp' or ltrim(raw_data) not like '{%') then
        raise exception 'a row-json letter is a JSON object of staging columns with telemetry_type traces, logs or metrics'
            using errcode = 'invalid_parameter_value';
    end if;
    if raw_format = 'bytea-escape' then
        perform decode(raw_data, 'escape');  -- rejects text that would not give the bytes back
    end if;
    insert into otel.telemetry_dlq (telemetry_type, source, raw_data, raw_format, error_message)
    values (dead_letter.telemetry_type, dead_letter.source, dead_letter.raw_data,
            dead_letter.raw_format, dead_letter.error_message)
    returning id into letter_id;
    return letter_id;
end
$$;
comment on function otel.dead_letter(text, text, text, text, text) is
    'Queues input a writer could not stage (raw_format bytea-escape: decode(raw_data, ''escape'') gives the bytes back); returns the letter id';
