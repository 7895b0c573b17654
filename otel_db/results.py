"""Result rows of the read API, as dataclasses (the seed design's names)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class TraceResult:
    """A trace found by `Client.similar_traces`, represented by its most similar span."""

    trace_id: str
    span_id: str
    service: str | None
    name: str
    status: str
    status_message: str | None
    duration_ms: float
    start_time: datetime
    similarity: float
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def operation(self) -> str:
        """The span name (the seed design called it the operation)."""
        return self.name


@dataclass(frozen=True, slots=True)
class ErrorSpan:
    """A span with status ERROR (`Client.get_traces_by_error`) and the exception it recorded, if any."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    service: str | None
    name: str
    kind: str | None
    start_time: datetime
    duration_ms: float | None
    status_message: str | None
    exception_type: str | None
    exception_message: str | None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpanNode:
    """A span in its trace's tree (`Client.trace_spans`): depth 0 for roots and spans whose parent is missing."""

    span_id: str
    parent_span_id: str | None
    depth: int
    name: str
    service: str | None
    kind: str | None
    start_time: datetime
    end_time: datetime | None
    duration_ms: float | None
    status: str | None
    status_message: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RootCause:
    """A span where a trace's failure originates (`Client.root_cause`), best first by `rank`.

    `score`: 3 raised an exception, 2.5 recorded one without error status, 2
    error status alone, 1 only an HTTP status (or mirroring a descendant's);
    `reason` says which, and when the depth counts from below a missing parent.
    """

    rank: int
    span_id: str
    parent_span_id: str | None
    depth: int
    service: str | None
    name: str
    kind: str | None
    status: str | None
    status_message: str | None
    exception_type: str | None
    exception_message: str | None
    start_time: datetime
    duration_ms: float | None
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class TraceDifference:
    """A span of trace a aligned with one of trace b, or a span of one of them only (`Client.compare_traces`).

    Spans align by operation: `service` and `name` (ids and numbers replaced
    by placeholders), `path` (the operations above it, from the root) and,
    for repeated operations, start order. `differences` lists what differs:
    'only in a', 'only in b', 'status', 'exception', 'slower', 'faster',
    'attributes'; `attributes` holds the differing ones as {key: [in a, in b]}
    (None for a span of one trace only). Failures come first (`rank`).
    """

    rank: int
    service: str | None
    name: str
    path: list[str]
    depth: int
    span_id_a: str | None
    span_id_b: str | None
    status_a: str | None
    status_b: str | None
    status_message_a: str | None
    status_message_b: str | None
    exception_type_a: str | None
    exception_type_b: str | None
    duration_ms_a: float | None
    duration_ms_b: float | None
    duration_ratio: float | None
    attributes: dict[str, list[Any]] | None
    differences: list[str]


@dataclass(frozen=True, slots=True)
class TraceExplanation:
    """A difference between a trace and most of its healthy neighbours (`Client.explain_trace`), best first.

    `kind`: 'failed', 'only here', 'missing here', 'slower', 'faster' or
    'attribute'; it holds in `holds_in` of the `compared` comparisons;
    `description` says it in a few words.
    """

    rank: int
    holds_in: int
    compared: int
    kind: str
    service: str | None
    name: str
    path: list[str]
    span_id: str | None
    attribute: str | None
    value_here: Any
    value_elsewhere: Any
    duration_ratio: float | None
    exception_type: str | None
    status_message: str | None
    description: str


@dataclass(frozen=True, slots=True)
class SuspectAttribute:
    """An attribute value over-represented in failing spans (`Client.suspect_attributes`), best first.

    With `slower_than_percentile`, `failing` and `failing_share` count the
    slow spans instead. `score`: the log odds ratio of the value in failing
    (or slow) against other spans (½ added to every count) over its
    standard error.
    """

    key: str
    value: str
    failing: int
    others: int
    failing_share: float
    others_share: float | None
    score: float


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A log record: of a trace (`Client.trace_logs`, with attributes) or found by `Client.search_logs` (with rank)."""

    time: datetime
    severity_number: int | None
    severity_text: str | None
    service: str | None
    body: str | None
    trace_id: str | None
    span_id: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    rank: float | None = None


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One bucket of `Client.metric_series`: its start and the aggregated value."""

    bucket_start: datetime
    value: float | None


@dataclass(frozen=True, slots=True)
class MetricName:
    """A metric with points in a window (`otel.metric_names`): type, unit and time of its newest point."""

    name: str
    type: str
    unit: str | None
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class DeadLetterReason:
    """Dead letters of one kind rejected by one rule (`otel.dead_letter_reasons`), with the newest few as samples."""

    telemetry_type: str
    reason: str
    letters: int
    pending: int
    first_seen: datetime
    last_seen: datetime
    sample_letters: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class TraceContext:
    """Everything recorded about one trace (`Client.trace_context`); empty lists for an unknown trace."""

    trace_id: str
    spans: list[SpanNode]
    logs: list[LogRecord]


@dataclass(frozen=True, slots=True)
class ServiceSummary:
    """A service with stored spans (`Client.services`): its number of operations, its first and last span start."""

    service: str
    operations: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class OperationSummary:
    """An operation of a service (`Client.operations`): span name and kind, its first and last span start."""

    name: str
    kind: str
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """A trace found by `Client.find_traces`: its root span, start, duration, span and error counts, services.

    `root_service` and `root_name` are None while the root span is not stored.
    """

    trace_id: str
    root_service: str | None
    root_name: str | None
    start_time: datetime
    duration_ms: float
    span_count: int
    error_count: int
    services: list[str]


@dataclass(frozen=True, slots=True)
class ServiceCall:
    """Calls from one service to another (`Client.service_dependencies`): spans of `child` under `parent`'s."""

    parent: str
    child: str
    call_count: int


def json_value(value: object) -> object:
    """For `json.dumps(default=...)`: datetimes in ISO 8601, durations in seconds."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
