-- otel.root_cause(): where a trace's failure originates. An error travels up
-- the tree (a span raises, its server span ends 500, the caller's client
-- span records 502, ...); the spans worth reading are the failing ones with
-- nothing failing below them, and among those the ones that say why.

create or replace function otel.root_cause(trace_id text)
returns table (
    rank integer, span_id text, parent_span_id text, depth integer, service_name text, name text, kind text,
    status_code text, status_message text, exception_type text, exception_message text,
    start_time timestamptz, duration_ms double precision, score real, reason text)
language plpgsql stable
set search_path = pg_catalog, pg_temp
-- The planner guesses the recursive steps at millions of rows for a trace of
-- a few hundred spans: compiling for that costs far more than it saves.
set jit = off
as $$
-- A span fails as otel.span_failed() says: status ERROR, or an "exception"
-- event with a status other than OK.
-- A failure is weak when all it says is an HTTP status >= 400: no
-- exception, no status message beyond the code. The candidates are the
-- failing spans without a failing descendant (a weak one does not count
-- below a span that raised or has a message of its own), scored:
--   3    raised: an exception event and status ERROR
--   2.5  an exception event, status UNSET
--   2    status ERROR with a message of its own, or not weak
--   1    weak, or status ERROR that mirrors the HTTP 5xx of a descendant
--        which did not fail itself
-- then the deeper span, then the earlier. Depth counts from the trace's
-- root, or from the highest stored ancestor when a parent is missing (the
-- reason says so). As otel.trace_spans(), the trace's time range in
-- otel.trace_summaries confines the lookup to its partitions, where the
-- trace_id index finds its spans, however many flushes brought them.
declare
    wanted text := otel.normalize_trace_id(root_cause.trace_id);
    first_start timestamptz;
    last_start timestamptz;
begin
    if wanted !~ '^[0-9a-f]{32}$' then
        raise exception 'trace_id must be 32 hex digits, got %', otel.argument_text(root_cause.trace_id)
            using errcode = 'invalid_parameter_value';
    end if;
    select r.first_start, r.last_end into first_start, last_start from otel.trace_time_range(wanted) as r;
    return query
        with recursive spans as (
            select t.span_id, t.parent_span_id, t.service_name, t.name, t.kind, t.status_code, t.status_message,
                   t.start_time, t.duration_ms, e.attributes ->> 'exception.type' as exception_type,
                   e.attributes ->> 'exception.message' as exception_message, e.attributes is not null as raised,
                   h.status as http_status,
                   otel.span_failed(t.status_code, e.attributes is not null) as failing,
                   -- a status message that says more than the HTTP status code
                   nullif(t.status_message, '') is not null
                   and (h.status is null or position(h.status::text in t.status_message) = 0) as own_message
              from otel.traces as t
             cross join lateral (select otel.exception_event_attributes(t.events) as attributes) as e
             cross join lateral (
                 -- stable semantic conventions first, then the older name
                 select case when c.code ~ '^[1-5][0-9][0-9]$' then c.code::integer end as status
                   from (select coalesce(t.attributes ->> 'http.response.status_code',
                                         t.attributes ->> 'http.status_code') as code) as c
             ) as h
             where t.trace_id = wanted and t.start_time between first_start and last_start
        ),
        evidence as (
            -- A failure is weak when an HTTP status is all it says.
            select s.*, s.failing and not s.raised and not s.own_message and coalesce(s.http_status >= 400, false) as weak
              from spans as s
        ),
        below (ancestor, origin, failing, weak, http_status) as (
            -- Every ancestor of a failing span, or of a span that answered
            -- 5xx without failing. Pairs, not paths: union ends a cycle.
            select e.parent_span_id, e.span_id, e.failing, e.weak, e.http_status
              from evidence as e
             where (e.failing or e.http_status >= 500) and e.parent_span_id <> e.span_id
            union
            select p.parent_span_id, b.origin, b.failing, b.weak, b.http_status
              from below as b
              join spans as p on p.span_id = b.ancestor
             where p.parent_span_id <> p.span_id
        ),
        beneath as (
            -- What lies below each span (spans that are each other's
            -- ancestors, in a cycle, do not count).
            select b.ancestor,
                   bool_or(b.failing and not b.weak) as failure,
                   min(b.http_status) filter (where b.weak) as weak_status,
                   min(b.http_status) filter (where not b.failing) as answered_status
              from below as b
             where b.origin <> b.ancestor
               and not exists (select from below as c where c.ancestor = b.origin and c.origin = b.ancestor)
             group by b.ancestor
        ),
        parents as (
            select distinct s.parent_span_id
              from spans as s
             where s.parent_span_id <> s.span_id
        ),
        candidates as (
            -- Failing spans with nothing failing below them, but a weak
            -- failure under a span that says more (the HTTP 409 its client
            -- span got, under the span that raised OutOfStock).
            select e.*, b.weak_status, b.answered_status, p.parent_span_id is not null as has_children,
                   case when e.raised and e.status_code = 'ERROR' then 'raised'
                        when e.raised then 'recorded'
                        when e.own_message then 'status'
                        when b.answered_status is not null then 'mirror'
                        when e.weak then 'http'
                        else 'status' end as kind_of_evidence
              from evidence as e
              left join beneath as b on b.ancestor = e.span_id
              left join parents as p on p.parent_span_id = e.span_id
             where e.failing
               and not coalesce(b.failure, false)
               and (b.weak_status is null or e.raised or e.own_message)
        ),
        chain (candidate, span_id, parent_span_id, steps, ids) as (
            -- Up from each candidate to the highest stored ancestor.
            select c.span_id, c.span_id, c.parent_span_id, 0, array[c.span_id]
              from candidates as c
            union all
            select ch.candidate, p.span_id, p.parent_span_id, ch.steps + 1, ch.ids || p.span_id
              from chain as ch
              join spans as p on p.span_id = ch.parent_span_id
             where p.span_id <> all (ch.ids)
        ),
        tops as (
            select distinct on (ch.candidate) ch.candidate, ch.span_id as top, ch.parent_span_id as top_parent,
                   ch.steps, ch.parent_span_id <> ch.span_id and ch.parent_span_id = any (ch.ids) as looped
              from chain as ch
             order by ch.candidate, ch.steps desc
        ),
        scored as (
            select c.*, t.steps,
                   case c.kind_of_evidence when 'raised' then 3 when 'recorded' then 2.5 when 'status' then 2 else 1
                   end::real as score,
                   case c.kind_of_evidence
                        when 'raised' then format('raised %s', coalesce(c.exception_type, 'an exception'))
                        when 'recorded'
                            then format('recorded %s with status %s', coalesce(c.exception_type, 'an exception'),
                                        c.status_code)
                        when 'status' then 'error status without exception'
                        when 'mirror'
                            then format('error status mirrors the HTTP %s of a descendant that did not fail',
                                        c.answered_status)
                        when 'http' then format('only an HTTP %s status, no exception', c.http_status)
                   end
                   || case when c.kind_of_evidence = 'mirror' then ''
                           when c.weak_status is not null
                               then format('; nothing failing below it but an HTTP %s status', c.weak_status)
                           when c.kind_of_evidence = 'http' and c.kind = 'CLIENT' and not c.has_children
                               then '; the callee has no span in the trace'
                           else '; no failing descendant' end
                   || case when t.top_parent is null or t.top_parent = t.top then ''
                           when t.looped then '; its ancestors loop back on themselves'
                           when t.top = c.span_id then '; parent span missing from the trace'
                           else format('; depth counted from span %s, whose parent is missing from the trace', t.top)
                      end as reason
              from candidates as c
              join tops as t on t.candidate = c.span_id
        )
        select (row_number() over w)::integer, s.span_id, s.parent_span_id, s.steps, s.service_name, s.name, s.kind,
               s.status_code, s.status_message, s.exception_type, s.exception_message, s.start_time, s.duration_ms,
               s.score, s.reason
          from scored as s
        window w as (order by s.score desc, s.steps desc, s.start_time, s.span_id)
         order by 1;
end
$$;
comment on function otel.root_cause(text) is
    'Where the trace''s failure originates, best first: the failing spans (status ERROR, or an `exception` event without status OK) with no failing descendant (a failure that is only an HTTP status does not count below a span that raised or has a message of its own), so that an error that travelled up through several services comes back as the span that raised it. rank, span_id, parent_span_id, depth (from the root, or from below a missing parent), service_name, name, kind, status_code, status_message, exception_type, exception_message, start_time, duration_ms, score, reason. Score 3: raised an exception (status ERROR); 2.5: recorded an exception, status UNSET; 2: error status alone; 1: only an HTTP status ≥ 400 with no message of its own, or mirroring the 5xx of a descendant that did not fail; ties go to the deeper, then the earlier span. `reason` says which (`raised KeyError; no failing descendant`), and when a parent is missing from the trace. Reads the trace''s partitions by index, whatever flushes brought its spans; no rows for a trace without errors or an unknown trace; 22023 unless trace_id is 32 hex digits';
