"""OpenTelemetry SDK data as OTLP/JSON export requests (one request, one line).

Two encoders:

- The reference path (`spans_request`, `logs_request`, `metrics_request`): the
  SDK's own OTLP protobuf encoders from `opentelemetry-exporter-otlp-proto-common`,
  turned into OTLP/JSON with `google.protobuf.json_format` (camelCase names,
  integer enums, 64-bit integers as decimal strings), then trace and span ids
  re-encoded as lowercase hex as the OTLP/JSON specification requires
  (protobuf's JSON mapping would give base64).
- `spans_json`: the same spans request built straight from the SDK objects,
  without the protobuf round trip. Spans are the high-volume signal and the
  exporter runs on a thread that competes with the application for the GIL,
  so this path is several times cheaper. It produces the reference's output
  byte for byte (tests/test_exporters.py checks it), apart from strings that
  protobuf refuses (lone surrogates): the reference raises, this path lets
  them through and the COPY screening dead-letters the line.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics.export import MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, StatusCode

_logger = logging.getLogger(__name__)

METRIC_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")

# SpanFlags of the OTLP proto: the SDK always says whether the parent is remote.
_FLAG_HAS_IS_REMOTE = 0x100
_FLAGS_REMOTE = 0x100 | 0x200
# The API's SpanKind.INTERNAL is 0, OTLP's SPAN_KIND_INTERNAL is 1.
_KINDS = {kind: kind.value + 1 for kind in SpanKind}
# A status's code as the text after its message: none for UNSET, which OTLP/JSON leaves out.
_STATUS_CODE = {code: f',"code":{code.value}' if code.value else "" for code in StatusCode}
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


# --------------------------------------------------------------------------- reference path


def _hex(value: str) -> str:
    return base64.b64decode(value).hex()


def _fix_ids(obj: dict) -> None:
    for key in ("traceId", "spanId", "parentSpanId"):
        v = obj.get(key)
        if v:
            obj[key] = _hex(v)


def to_json_dict(message: Message) -> dict:
    """A protobuf message as its OTLP/JSON dict (ids still base64)."""
    return json_format.MessageToDict(message, use_integers_for_enums=True, preserving_proto_field_name=False)


# The resource, scope and record fields of the three kinds of request.
_REQUEST_FIELDS = (
    ("resourceSpans", "scopeSpans", "spans"),
    ("resourceLogs", "scopeLogs", "logRecords"),
    ("resourceMetrics", "scopeMetrics", "metrics"),
)


def hex_ids(request: dict) -> int:
    """Re-encode in place, as hex, the base64 ids of a request from `to_json_dict`; return its record count.

    The ids are those of spans (with their parents and links), log records and
    exemplars; the count is of spans, log records or metric data points.
    """
    records = 0
    for resources, scopes, items in _REQUEST_FIELDS:
        for resource in request.get(resources, ()):
            for scope in resource.get(scopes, ()):
                for item in scope.get(items, ()):
                    if items != "metrics":
                        records += 1
                        _fix_ids(item)
                        for link in item.get("links", ()):
                            _fix_ids(link)
                        continue
                    for kind in METRIC_KINDS:
                        for point in item.get(kind, {}).get("dataPoints", ()):
                            records += 1
                            for exemplar in point.get("exemplars", ()):
                                _fix_ids(exemplar)
    return records


def spans_request(spans: Sequence[ReadableSpan]) -> dict:
    """An ExportTraceServiceRequest as an OTLP/JSON dict, through the SDK's protobuf encoder."""
    d = to_json_dict(encode_spans(spans))
    hex_ids(d)
    return d


def logs_request(logs: Sequence[Any]) -> dict:
    """An ExportLogsServiceRequest as an OTLP/JSON dict (the SDK's log records, as its exporters get them)."""
    d = to_json_dict(encode_logs(logs))
    hex_ids(d)
    return d


def metrics_request(data: MetricsData) -> tuple[dict, int]:
    """An ExportMetricsServiceRequest as an OTLP/JSON dict, and its number of data points."""
    d = to_json_dict(encode_metrics(data))
    return d, hex_ids(d)


# A \u0000 escape not itself escaped (preceded by an even number of backslashes).
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


# One encoder for every call: json.dumps() with options builds a new one each time.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# A string as that encoder writes it (in C).
_string = encode_basestring


def dumps(d: Any) -> str:
    """One compact JSON line (non-ASCII kept as is).

    PostgreSQL's jsonb cannot hold U+0000, so a NUL in any string becomes
    U+FFFD here: otherwise the whole request, every span of the batch, would
    be refused as one dead letter.
    """
    return _without_nul(_encode(d))


def _without_nul(text: str) -> str:
    return _NUL_ESCAPE.sub(lambda m: m.group(1) + "\ufffd", text) if "\\u0000" in text else text


# --------------------------------------------------------------------------- direct spans path
#
# The request's JSON text written piece by piece, as the encoder above would
# write the reference's dict: building a dict per span, attribute and value
# first cost twice as much as writing the text (`python -m bench
# exporter_overhead`). Strings go through the json module's own escaping.


def spans_json(spans: Sequence[ReadableSpan]) -> str:
    """`dumps(spans_request(spans))` without protobuf: the exporter's hot path.

    Spans are grouped by resource, then by instrumentation scope, in order of
    first appearance, as the SDK's encoder does; keys follow the proto field
    numbers, so the text is the reference's.
    """
    groups: dict[Resource, dict[InstrumentationScope | None, list[str]]] = {}
    # Resource hashes its attributes as sorted JSON on every call: look the
    # (usually single) resource object up by identity instead.
    by_id: dict[int, dict[InstrumentationScope | None, list[str]]] = {}
    for span in spans:
        scopes = by_id.get(id(span.resource))
        if scopes is None:
            scopes = by_id[id(span.resource)] = groups.setdefault(span.resource, {})
        scope = span.instrumentation_scope or None
        bucket = scopes.get(scope)
        if bucket is None:
            bucket = scopes[scope] = []
        bucket.append(_span(span))
    if not groups:
        return "{}"
    resource_spans = []
    for resource, scopes in groups.items():
        scope_spans = []
        for scope, encoded in scopes.items():
            schema = f',"schemaUrl":{_string(scope.schema_url)}' if scope is not None and scope.schema_url else ""
            scope_spans.append(f'{{"scope":{_scope(scope)},"spans":[{",".join(encoded)}]{schema}}}')
        schema = f',"schemaUrl":{_string(resource.schema_url)}' if resource.schema_url else ""
        resource_spans.append(f'{{"resource":{_resource(resource)},"scopeSpans":[{",".join(scope_spans)}]{schema}}}')
    return _without_nul(f'{{"resourceSpans":[{",".join(resource_spans)}]}}')


def _span(span: ReadableSpan) -> str:
    ctx = span.context
    parent = span.parent
    parts = [f'{{"traceId":"{ctx.trace_id:032x}","spanId":"{ctx.span_id:016x}"']
    if ctx.trace_state:
        parts.append(',"traceState":' + _string(",".join(f"{k}={v}" for k, v in ctx.trace_state.items())))
    if parent:
        parts.append(f',"parentSpanId":"{parent.span_id:016x}"')
    if span.name:
        parts.append(',"name":' + _string(span.name))
    parts.append(f',"kind":{_KINDS[span.kind]}')
    if span.start_time:
        parts.append(f',"startTimeUnixNano":"{span.start_time}"')
    if span.end_time:
        parts.append(f',"endTimeUnixNano":"{span.end_time}"')
    # The SDK's properties copy on every access (MappingProxyType, tuple());
    # its own fields, when a span has them, are read as they are.
    attributes = getattr(span, "_attributes", None) or span.attributes
    if attributes:
        parts.append(_attributes(attributes, ","))
    if span.dropped_attributes:
        parts.append(f',"droppedAttributesCount":{span.dropped_attributes}')
    events = getattr(span, "_events", None)
    if events is None:
        events = span.events
    if events:
        parts.append(',"events":[' + ",".join(_event(e) for e in events) + "]")
    if span.dropped_events:
        parts.append(f',"droppedEventsCount":{span.dropped_events}')
    links = getattr(span, "_links", None)
    if links is None:
        links = span.links
    if links:
        parts.append(',"links":[' + ",".join(_link(link) for link in links) + "]")
    if span.dropped_links:
        parts.append(f',"droppedLinksCount":{span.dropped_links}')
    status = span.status
    code = _STATUS_CODE[status.status_code]
    if status.description:
        parts.append(',"status":{"message":' + _string(status.description) + code + "}")
    else:
        parts.append(',"status":{' + code.removeprefix(",") + "}")
    flags = _FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAG_HAS_IS_REMOTE
    parts.append(f',"flags":{flags}}}')
    return "".join(parts)


def _event(event: Any) -> str:
    parts = []
    if event.timestamp:
        parts.append(f'"timeUnixNano":"{event.timestamp}"')
    if event.name:
        parts.append('"name":' + _string(event.name))
    if event.attributes and (encoded := _attributes(event.attributes)):
        parts.append(encoded)
    if event.dropped_attributes:
        parts.append(f'"droppedAttributesCount":{event.dropped_attributes}')
    return "{" + ",".join(parts) + "}"


def _link(link: Any) -> str:
    ctx = link.context
    parts = [f'{{"traceId":"{ctx.trace_id:032x}","spanId":"{ctx.span_id:016x}"']
    if link.attributes:
        parts.append(_attributes(link.attributes, ","))
    if link.dropped_attributes:
        parts.append(f',"droppedAttributesCount":{link.dropped_attributes}')
    parts.append(f',"flags":{_FLAGS_REMOTE if ctx.is_remote else _FLAG_HAS_IS_REMOTE}}}')
    return "".join(parts)


def _resource(resource: Resource) -> str:
    return "{" + (_attributes(resource.attributes) if resource.attributes else "") + "}"


def _scope(scope: InstrumentationScope | None) -> str:
    if scope is None:
        return "{}"
    parts = []
    if scope.name:
        parts.append('"name":' + _string(scope.name))
    if scope.version:
        parts.append('"version":' + _string(scope.version))
    if scope.attributes and (encoded := _attributes(scope.attributes)):
        parts.append(encoded)
    return "{" + ",".join(parts) + "}"


def _attributes(attributes: Mapping[str, Any], prefix: str = "") -> str:
    """The "attributes" member, after prefix; nothing when none of them can be encoded, as the SDK leaves it out."""
    out = []
    # The SDK's BoundedAttributes iterates through the Mapping mixins, key by
    # key; its inner dict iterates in C.
    for key, value in getattr(attributes, "_dict", attributes).items():
        try:
            out.append(
                '{"key":' + _string(key) + ',"value":' + _value(value) + "}"
                if key
                else '{"value":' + _value(value) + "}"
            )
        except (TypeError, ValueError) as exc:
            # As the SDK's encoder: an attribute it cannot encode is left out.
            _logger.warning("attribute %r not exported: %s", key, exc)
    return prefix + '"attributes":[' + ",".join(out) + "]" if out else ""


def _value(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return '{"stringValue":' + _string(value) + "}"
    if kind is bool:
        return '{"boolValue":true}' if value else '{"boolValue":false}'
    if kind is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return f'{{"intValue":"{value}"}}'
        raise ValueError(f"integer {value} is out of the int64 range")
    if kind is float:
        return f'{{"doubleValue":{float.__repr__(value) if math.isfinite(value) else _string(float_name(value))}}}'
    return _encode(_other_value(value))


def _other_value(value: Any) -> dict[str, Any]:
    """The rarer values (subclasses of the plain types, bytes, arrays, maps, None) as the reference's dict."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": bool(value)}
    if isinstance(value, str):
        return {"stringValue": str(value)}
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return {"intValue": str(int(value))}
        raise ValueError(f"integer {value} is out of the int64 range")
    if isinstance(value, float):
        return {"doubleValue": float(value) if math.isfinite(value) else float_name(value)}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Sequence):
        values = [_other_value(v) for v in value]
        return {"arrayValue": {"values": values} if values else {}}
    if isinstance(value, Mapping):
        pairs = [
            {"key": str(k), "value": _other_value(v)} if str(k) else {"value": _other_value(v)}
            for k, v in value.items()
        ]
        return {"kvlistValue": {"values": pairs} if pairs else {}}
    raise TypeError(f"invalid type {type(value).__name__} of value {value!r}")


def float_name(value: float) -> str:
    """NaN and the infinities as OTLP/JSON writes them."""
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
