"""Protobuf export requests of spans as rows of otel.traces_staging, the typed path.

`otel-db serve` stores most requests as OTLP/JSON lines, which otel.flush()
decodes and checks in SQL. Spans are the high-volume signal, and decoding
OTLP/JSON in the flush costs about as much again as typing the rows, so a
protobuf request of spans (HTTP or gRPC) is written here straight as rows of
the typed staging table, in COPY text format. Protobuf has done half of the
checking already (field types, one variant per value, valid UTF-8); the
typed flush does the rest (ids, times, names) exactly as for any writer.

The rows carry what otel.flush() would have made of the request's OTLP/JSON
line, value for value (tests/test_serve_typed.py stores requests both ways
and compares the spans): attribute values as plain JSON (integers exact,
NaN and infinities as strings, bytes as base64), event times as PostgreSQL
writes a timestamptz in JSON, zero values absent as proto3 JSON leaves
them, a NUL in a string as U+FFFD. A request this path cannot mirror (a
link whose id has the wrong length, which the OTLP/JSON decoder refuses) is
left to the OTLP/JSON line: `typed_spans()` returns None.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from otel_db.otlp_json import dumps, float_name

TYPED_SPAN_COLUMNS = (
    "trace_id, span_id, parent_span_id, trace_state, flags, name, kind, start_time, end_time,"
    " status_code, status_message, service_name, scope_name, scope_version,"
    " attributes, resource_attributes, events, links"
)
TYPED_SPANS_COPY_SQL = f"copy otel.traces_staging ({TYPED_SPAN_COLUMNS}) from stdin"

NULL = "\\N"
# COPY text format: these four characters are written as escapes in a field.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def typed_spans(request: ExportTraceServiceRequest) -> tuple[bytes, int] | None:
    """The request's spans as COPY text rows and their count; None when only the OTLP/JSON path can judge it."""
    rows: list[str] = []
    for resource_spans in request.resource_spans:
        resource_attributes = attributes(resource_spans.resource.attributes)
        service_name = _text(_service_name(resource_attributes.get("service.name")))
        resource_json = _json(resource_attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_fields = f"{_text(scope.name)}\t{_text(scope.version)}"
            for span in scope_spans.spans:
                links = _links(span.links)
                if links is None:
                    return None
                status = span.status
                rows.append(
                    "\t".join(
                        (
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            _text(span.trace_state),
                            str(span.flags) if span.flags else NULL,
                            _text(span.name),
                            str(span.kind),
                            str(span.start_time_unix_nano) if span.start_time_unix_nano else NULL,
                            str(span.end_time_unix_nano) if span.end_time_unix_nano else NULL,
                            str(status.code),
                            _text(status.message),
                            service_name,
                            scope_fields,
                            _attributes_json(span.attributes),
                            resource_json,
                            _json([_event(event) for event in span.events]) if span.events else NULL,
                            links,
                        )
                    )
                )
    if not rows:
        return b"", 0
    block = "\n".join(rows) + "\n"
    if "\x00" in block:  # as otlp_json.dumps() does: PostgreSQL text cannot hold U+0000
        block = block.replace("\x00", "\ufffd")
    return block.encode(), len(rows)


def _attributes_json(key_values: Iterable[KeyValue]) -> str:
    """A span's attributes as the JSON field `_json(attributes(key_values))` gives, written directly.

    Spans carry most of the values, and most are strings and integers: these
    are written without a dict in between (twice as fast). A repeated key
    is written twice; jsonb keeps the last, as otel.otlp_attributes() does.
    """
    members = []
    for key_value in key_values:
        any_value = key_value.value
        match any_value.WhichOneof("value"):
            case "string_value":
                member = _json_string(any_value.string_value)
            case "int_value":
                member = str(any_value.int_value)
            case _:
                member = dumps(value(any_value))
        members.append(f"{_json_string(key_value.key)}:{member}")
    return "{" + ",".join(members).replace("\\", "\\\\") + "}"


def _json_string(text: str) -> str:
    # U+0000 as U+FFFD, as otlp_json.dumps() writes it.
    return encode_basestring(text.replace("\x00", "\ufffd") if "\x00" in text else text)


def attributes(key_values: Iterable[KeyValue]) -> dict[str, Any]:
    """KeyValues as a JSON object; a repeated key keeps its last value, as otel.otlp_attributes() does."""
    return {kv.key: value(kv.value) for kv in key_values}


def value(any_value: AnyValue) -> Any:
    """An AnyValue as plain JSON, as otel.otlp_value() makes it; None when no variant is set."""
    match any_value.WhichOneof("value"):
        case "string_value":
            return any_value.string_value
        case "int_value":
            return any_value.int_value
        case "bool_value":
            return any_value.bool_value
        case "double_value":
            number = any_value.double_value
            return number if math.isfinite(number) else float_name(number)
        case "bytes_value":
            return base64.b64encode(any_value.bytes_value).decode()
        case "array_value":
            return [value(item) for item in any_value.array_value.values]
        case "kvlist_value":
            return attributes(any_value.kvlist_value.values)
    return None


def json_time(unix_nanos: int) -> str | None:
    """Unix nanoseconds as PostgreSQL writes a timestamptz in JSON with timezone UTC (whole microseconds)."""
    if not unix_nanos:
        return None
    micros = unix_nanos // 1000
    text = (_EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction := micros % 1_000_000:
        text += f".{fraction:06d}".rstrip("0")
    return text + "+00:00"


def _event(event: Any) -> dict[str, Any]:
    return {
        "name": event.name or None,
        "time": json_time(event.time_unix_nano),
        "attributes": attributes(event.attributes),
    }


def _links(links: Any) -> str | None:
    """The links as a JSON field; None when an id has a length the OTLP/JSON decoder refuses."""
    if not links:
        return NULL
    decoded = []
    for link in links:
        if len(link.trace_id) not in (0, 16) or len(link.span_id) not in (0, 8):
            return None
        decoded.append(
            {
                "trace_id": link.trace_id.hex() or None,
                "span_id": link.span_id.hex() or None,
                "trace_state": link.trace_state or None,
                "attributes": attributes(link.attributes),
            }
        )
    return _json(decoded)


def _service_name(service: Any) -> str | None:
    """What `->> 'service.name'` gives on the resource's JSON attributes, for a string, integer or boolean.

    A double, array or kvlist service name (which no SDK sends) is written
    as Python writes it: `1e+20` where PostgreSQL writes
    `100000000000000000000`, no space after a comma.
    """
    return service if service is None or isinstance(service, str) else dumps(service)


def _text(text: str | None) -> str:
    """A text field: empty or absent is null (proto3 JSON leaves empty strings out)."""
    if not text:
        return NULL
    # Tab, line feed and carriage return are not printable; most names have none of the four.
    return text.translate(_COPY_ESCAPES) if "\\" in text or not text.isprintable() else text


def _json(document: Any) -> str:
    # JSON text holds no raw control characters: only its backslashes need escaping.
    return dumps(document).replace("\\", "\\\\")
