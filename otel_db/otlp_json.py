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
# An empty status (UNSET, no message) has no fields; shared, since json.dumps only reads it.
_STATUS = {code: {"code": code.value} if code.value else {} for code in StatusCode}
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


def dumps(d: Any) -> str:
    """One compact JSON line (non-ASCII kept as is).

    PostgreSQL's jsonb cannot hold U+0000, so a NUL in any string becomes
    U+FFFD here: otherwise the whole request, every span of the batch, would
    be refused as one dead letter.
    """
    text = _encode(d)
    return _NUL_ESCAPE.sub(lambda m: m.group(1) + "\ufffd", text) if "\\u0000" in text else text


# --------------------------------------------------------------------------- direct spans path


def spans_json(spans: Sequence[ReadableSpan]) -> str:
    """`dumps(spans_request(spans))` without protobuf: the exporter's hot path.

    Spans are grouped by resource, then by instrumentation scope, in order of
    first appearance, as the SDK's encoder does; keys follow the proto field
    numbers, so the text is the reference's.
    """
    groups: dict[Resource, dict[InstrumentationScope | None, list[dict]]] = {}
    # Resource hashes its attributes as sorted JSON on every call: look the
    # (usually single) resource object up by identity instead.
    by_id: dict[int, dict[InstrumentationScope | None, list[dict]]] = {}
    for span in spans:
        scopes = by_id.get(id(span.resource))
        if scopes is None:
            scopes = by_id[id(span.resource)] = groups.setdefault(span.resource, {})
        scope = span.instrumentation_scope or None
        bucket = scopes.get(scope)
        if bucket is None:
            bucket = scopes[scope] = []
        bucket.append(_span(span))
    resource_spans = []
    for resource, scopes in groups.items():
        scope_spans = []
        for scope, encoded in scopes.items():
            item: dict[str, Any] = {"scope": _scope(scope), "spans": encoded}
            if scope is not None and scope.schema_url:
                item["schemaUrl"] = scope.schema_url
            scope_spans.append(item)
        rs: dict[str, Any] = {"resource": _resource(resource), "scopeSpans": scope_spans}
        if resource.schema_url:
            rs["schemaUrl"] = resource.schema_url
        resource_spans.append(rs)
    return dumps({"resourceSpans": resource_spans} if resource_spans else {})


def _span(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.context
    parent = span.parent
    d: dict[str, Any] = {"traceId": f"{ctx.trace_id:032x}", "spanId": f"{ctx.span_id:016x}"}
    if ctx.trace_state:
        d["traceState"] = ",".join(f"{k}={v}" for k, v in ctx.trace_state.items())
    if parent:
        d["parentSpanId"] = f"{parent.span_id:016x}"
    if span.name:
        d["name"] = span.name
    d["kind"] = _KINDS[span.kind]
    if span.start_time:
        d["startTimeUnixNano"] = str(span.start_time)
    if span.end_time:
        d["endTimeUnixNano"] = str(span.end_time)
    # The SDK's properties copy on every access (MappingProxyType, tuple());
    # its own fields, when a span has them, are read as they are.
    attributes = getattr(span, "_attributes", None) or span.attributes
    if attributes:
        d["attributes"] = _attributes(attributes)
    if span.dropped_attributes:
        d["droppedAttributesCount"] = span.dropped_attributes
    events = getattr(span, "_events", None)
    if events is None:
        events = span.events
    if events:
        d["events"] = [_event(e) for e in events]
    if span.dropped_events:
        d["droppedEventsCount"] = span.dropped_events
    links = getattr(span, "_links", None)
    if links is None:
        links = span.links
    if links:
        d["links"] = [_link(link) for link in links]
    if span.dropped_links:
        d["droppedLinksCount"] = span.dropped_links
    status = span.status
    if status.description:
        d["status"] = {"message": status.description} | _STATUS[status.status_code]
    else:
        d["status"] = _STATUS[status.status_code]
    d["flags"] = _FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAG_HAS_IS_REMOTE
    return d


def _event(event: Any) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if event.timestamp:
        d["timeUnixNano"] = str(event.timestamp)
    if event.name:
        d["name"] = event.name
    if event.attributes:
        d["attributes"] = _attributes(event.attributes)
    if event.dropped_attributes:
        d["droppedAttributesCount"] = event.dropped_attributes
    return d


def _link(link: Any) -> dict[str, Any]:
    ctx = link.context
    d: dict[str, Any] = {"traceId": f"{ctx.trace_id:032x}", "spanId": f"{ctx.span_id:016x}"}
    if link.attributes:
        d["attributes"] = _attributes(link.attributes)
    if link.dropped_attributes:
        d["droppedAttributesCount"] = link.dropped_attributes
    d["flags"] = _FLAGS_REMOTE if ctx.is_remote else _FLAG_HAS_IS_REMOTE
    return d


def _resource(resource: Resource) -> dict[str, Any]:
    return {"attributes": _attributes(resource.attributes)} if resource.attributes else {}


def _scope(scope: InstrumentationScope | None) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if scope is None:
        return d
    if scope.name:
        d["name"] = scope.name
    if scope.version:
        d["version"] = scope.version
    if scope.attributes:
        d["attributes"] = _attributes(scope.attributes)
    return d


def _attributes(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    # The SDK's BoundedAttributes iterates through the Mapping mixins, key by
    # key; its inner dict iterates in C.
    for key, value in getattr(attributes, "_dict", attributes).items():
        try:
            out.append(_key_value(key, value))
        except (TypeError, ValueError) as exc:
            # As the SDK's encoder: an attribute it cannot encode is left out.
            _logger.warning("attribute %r not exported: %s", key, exc)
    return out


def _key_value(key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "value": _value(value)} if key else {"value": _value(value)}


def _value(value: Any) -> dict[str, Any]:
    kind = type(value)
    if kind is str:
        return {"stringValue": value}
    if kind is bool:
        return {"boolValue": value}
    if kind is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return {"intValue": str(value)}
        raise ValueError(f"integer {value} is out of the int64 range")
    if kind is float:
        return {"doubleValue": value if math.isfinite(value) else float_name(value)}
    return _other_value(value)


def _other_value(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": bool(value)}
    if isinstance(value, str):
        return {"stringValue": str(value)}
    if isinstance(value, int):
        return _value(int(value))
    if isinstance(value, float):
        return _value(float(value))
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Sequence):
        values = [_value(v) for v in value]
        return {"arrayValue": {"values": values} if values else {}}
    if isinstance(value, Mapping):
        pairs = [_key_value(str(k), v) for k, v in value.items()]
        return {"kvlistValue": {"values": pairs} if pairs else {}}
    raise TypeError(f"invalid type {type(value).__name__} of value {value!r}")


def float_name(value: float) -> str:
    """NaN and the infinities as OTLP/JSON writes them."""
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
