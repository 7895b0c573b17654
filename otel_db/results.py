"""Result rows of the read API, as dataclasses (the seed design's names)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
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
class TraceContext:
    """Everything recorded about one trace (`Client.trace_context`); empty lists for an unknown trace."""

    trace_id: str
    spans: list[SpanNode]
    logs: list[LogRecord]
