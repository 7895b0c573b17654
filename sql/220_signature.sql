-- Span signatures: the text a person would search a span by, with what
-- makes every span unique (ids, numbers, timestamps, addresses) replaced by
-- placeholders, so that the same operation failing the same way gives the
-- same text and is embedded once.

create or replace function otel.normalize_text(value text)
returns text
language sql immutable parallel safe
as $$
    -- Order matters: whole shapes (uuids, timestamps, addresses) before the
    -- digit runs they contain.
    -- No pattern tells the digits 1-9 apart (only 0 appears on its own, in
    -- 0x): otel.signature_input() relies on that.
    select nullif(left(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
           regexp_replace(regexp_replace(regexp_replace(regexp_replace(
               value,
               '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<uuid>', 'g'),
               '[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?', '<time>', 'g'),
               '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}', '<email>', 'g'),
               '\m[0-9]{1,3}(\.[0-9]{1,3}){3}(:[0-9]{1,5})?\M', '<ip>', 'g'),
               '\m0x[0-9a-fA-F]+\M|\m[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\M|\m[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*\M', '<hex>', 'g'),
               '[0-9]+(\.[0-9]+)?', '<num>', 'g'),
               '\s+', ' ', 'g'),
               '^ | $', '', 'g'), 300), '')
$$;
comment on function otel.normalize_text(text) is
    'Replaces uuids, timestamps, e-mail and IP addresses, hex ids and numbers by placeholders, squeezes white space, keeps at most 300 characters';

create or replace function otel.http_reason(status text)
returns text
language sql immutable parallel safe
as $$
    select case status
        when '200' then 'OK' when '201' then 'Created' when '202' then 'Accepted' when '204' then 'No Content'
        when '301' then 'Moved Permanently' when '302' then 'Found' when '304' then 'Not Modified'
        when '400' then 'Bad Request' when '401' then 'Unauthorized' when '402' then 'Payment Required'
        when '403' then 'Forbidden' when '404' then 'Not Found' when '405' then 'Method Not Allowed'
        when '408' then 'Request Timeout' when '409' then 'Conflict' when '410' then 'Gone'
        when '413' then 'Payload Too Large' when '415' then 'Unsupported Media Type'
        when '422' then 'Unprocessable Entity' when '429' then 'Too Many Requests'
        when '500' then 'Internal Server Error' when '501' then 'Not Implemented' when '502' then 'Bad Gateway'
        when '503' then 'Service Unavailable' when '504' then 'Gateway Timeout'
    end
$$;
comment on function otel.http_reason(text) is 'The reason phrase of an HTTP status code, null for unusual codes';

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

create or replace function otel.exception_event_attributes(events jsonb)
returns jsonb
language sql immutable parallel safe
as $$
    -- "Has a first element" is the cheap test for a non-empty array (a
    -- scalar reads as one too, and then matches nothing in lax mode).
    select case when events -> 0 is not null
                then jsonb_path_query_first(events, '$[*] ? (@.name == "exception").attributes') end
$$;
comment on function otel.exception_event_attributes(jsonb) is
    'The attributes of the first "exception" event, null when there is none';

create or replace function otel.exception_attribute(events jsonb, attribute text)
returns text
language sql immutable parallel safe
as $$
    select otel.exception_event_attributes(events) ->> attribute
$$;
comment on function otel.exception_attribute(jsonb, text) is
    'An attribute (exception.type, exception.message) of the first "exception" event, null when there is none';

create or replace function otel.span_failed(status_code text, raised boolean)
returns boolean
language sql immutable parallel safe
as $$
    -- Status ERROR, or an "exception" event (raised) with a status other
    -- than OK: OK is final, the exception was handled. The one rule of the
    -- root-cause and comparison functions; a span not there has not failed.
    select coalesce(status_code = 'ERROR' or (raised and status_code <> 'OK'), false)
$$;
comment on function otel.span_failed(text, boolean) is
    'Whether a span failed: status ERROR, or an exception event (raised) with a status other than OK; false for a span that is not there (null status)';

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
