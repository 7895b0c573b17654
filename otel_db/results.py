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

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TraceResult:
        return cls(
            trace_id=row["trace_id"],
            span_id=row["span_id"],
            service=row["service_name"],
            name=row["name"],
            status=row["status_code"],
            status_message=row["status_message"],
            duration_ms=row["duration_ms"],
            start_time=row["start_time"],
            similarity=row["similarity"],
            attributes=row["attributes"] or {},
        )
