"""The SQL the clients run: named queries from `queries.sql`, and how each read is called.

`Client` and `AsyncClient` differ only in I/O. Everything else about a read
(which query, which parameters, how a row becomes a dataclass) is built here
once, as a `Call`, and executed by either client.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from psycopg.rows import BaseRowFactory, class_row, dict_row, scalar_row
from psycopg.types.json import Jsonb

from otel_db.results import (
    DeadLetterReason,
    ErrorSpan,
    LogRecord,
    MetricName,
    MetricPoint,
    OperationSummary,
    RootCause,
    ServiceCall,
    ServiceSummary,
    SpanNode,
    SuspectAttribute,
    TraceDifference,
    TraceExplanation,
    TraceResult,
    TraceSummary,
)

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

_HEADER = re.compile(r"^-- (\w+) --\n--[^\n]*\n", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    """Split `-- name --` / description / SQL blocks into {name: SQL}.

    Text before the first header is the file's own comment. A repeated name
    is an error, not a silent override.
    """
    queries: dict[str, str] = {}
    headers = list(_HEADER.finditer(text))
    for header, following in zip(headers, [*headers[1:], None], strict=True):
        name = header.group(1)
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice in queries.sql")
        queries[name] = text[header.end() : following.start() if following else len(text)].strip()
    return queries


QUERIES: Mapping[str, str] = MappingProxyType(
    parse_queries(resources.files("otel_db").joinpath("queries.sql").read_text(encoding="utf-8"))
)


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One named query, its parameters, and the psycopg row factory that makes each row a result."""

    sql: str
    params: dict[str, Any]
    row_factory: BaseRowFactory[T]


def utc(value: datetime | None) -> datetime | None:
    """A naive datetime is taken as UTC (as `Client.copy_spans` does), not as the session's time zone."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def traces_by_error(since: datetime | None, until: datetime | None, service: str | None, limit: int) -> Call[ErrorSpan]:
    params = {"since": utc(since), "until": utc(until), "service": service, "lim": limit}
    return Call(QUERIES["traces_by_error"], params, class_row(ErrorSpan))


def trace_spans(trace_id: str) -> Call[SpanNode]:
    return Call(QUERIES["trace_spans"], {"trace_id": trace_id}, class_row(SpanNode))


def root_cause(trace_id: str) -> Call[RootCause]:
    return Call(QUERIES["root_cause"], {"trace_id": trace_id}, class_row(RootCause))


def compare_traces(a: str, b: str) -> Call[TraceDifference]:
    return Call(QUERIES["compare_traces"], {"a": a, "b": b}, class_row(TraceDifference))


def explain_trace(trace_id: str, k: int) -> Call[TraceExplanation]:
    return Call(QUERIES["explain_trace"], {"trace_id": trace_id, "k": k}, class_row(TraceExplanation))


def suspect_attributes(
    service: str, operation: str | None, since: datetime, until: datetime | None, slower_than_percentile: float | None
) -> Call[SuspectAttribute]:
    params = {
        "service": service,
        "operation": operation,
        "since": utc(since),
        "until": utc(until),
        "slower_than_percentile": slower_than_percentile,
    }
    return Call(QUERIES["suspect_attributes"], params, class_row(SuspectAttribute))


def trace_logs(trace_id: str) -> Call[LogRecord]:
    return Call(QUERIES["trace_logs"], {"trace_id": trace_id}, class_row(LogRecord))


def search_logs(
    query: str,
    since: datetime | None,
    until: datetime | None,
    service: str | None,
    min_severity: int | None,
    limit: int,
) -> Call[LogRecord]:
    params = {
        "query": query,
        "since": utc(since),
        "until": utc(until),
        "service": service,
        "min_severity": min_severity,
        "lim": limit,
    }
    return Call(QUERIES["search_logs"], params, class_row(LogRecord))


def metric_series(
    name: str,
    bucket: timedelta | str,
    since: datetime | None,
    until: datetime | None,
    labels: Mapping[str, Any] | None,
    agg: str,
) -> Call[MetricPoint]:
    params = {
        "name": name,
        "bucket": bucket,
        "since": utc(since),
        "until": utc(until),
        "labels": None if labels is None else Jsonb(labels),
        "agg": agg,
    }
    return Call(QUERIES["metric_series"], params, class_row(MetricPoint))


def metric_names(since: datetime, until: datetime) -> Call[MetricName]:
    return Call(QUERIES["metric_names"], {"since": utc(since), "until": utc(until)}, class_row(MetricName))


def dead_letter_reasons(since: datetime, until: datetime, samples: int) -> Call[DeadLetterReason]:
    params = {"since": utc(since), "until": utc(until), "samples": samples}
    return Call(QUERIES["dead_letter_reasons"], params, class_row(DeadLetterReason))


def services(since: datetime | None, until: datetime | None) -> Call[ServiceSummary]:
    return Call(QUERIES["services"], {"since": utc(since), "until": utc(until)}, class_row(ServiceSummary))


def operations(
    service: str, span_kind: str | None, since: datetime | None, until: datetime | None
) -> Call[OperationSummary]:
    params = {"service": service, "span_kind": span_kind, "since": utc(since), "until": utc(until)}
    return Call(QUERIES["operations"], params, class_row(OperationSummary))


def find_traces(
    service: str | None,
    operation: str | None,
    attributes: Mapping[str, str | int | float | bool] | None,
    min_duration: timedelta | None,
    max_duration: timedelta | None,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> Call[TraceSummary]:
    params = {
        "service": service,
        "operation": operation,
        "attributes": None if attributes is None else Jsonb(attributes),
        "min_duration": min_duration,
        "max_duration": max_duration,
        "status": status,
        # the hour before until, as the SQL's default is the hour before now
        "since": utc(until - timedelta(hours=1) if since is None and until is not None else since),
        "until": utc(until),
        "lim": limit,
    }
    return Call(QUERIES["find_traces"], params, class_row(TraceSummary))


def service_dependencies(since: datetime, until: datetime | None) -> Call[ServiceCall]:
    return Call(QUERIES["service_dependencies"], {"since": utc(since), "until": utc(until)}, class_row(ServiceCall))


def similar_traces_by_trace(
    trace_id: str, k: int, min_similarity: float, service: str | None, since: datetime | None
) -> Call[TraceResult]:
    params = {
        "trace_id": trace_id.strip(),
        "k": k,
        "min_similarity": min_similarity,
        "service": service,
        "since": utc(since),
    }
    return Call(QUERIES["similar_traces_by_trace"], params, class_row(TraceResult))


def similar_traces_by_vector(
    vector: Sequence[float] | np.ndarray,
    model: str,
    k: int,
    min_similarity: float,
    service: str | None,
    since: datetime | None,
) -> Call[TraceResult]:
    params = {
        "query": vector_literal(vector),
        "model": model,
        "k": k,
        "min_similarity": min_similarity,
        "service": service,
        "since": utc(since),
    }
    return Call(QUERIES["similar_traces_by_vector"], params, class_row(TraceResult))


def pg_cron_interval(seconds: float) -> str:
    """A flush interval as otel.schedule_flush() takes it: 'N seconds' or 'N minutes', each 1 to 59."""
    if math.isfinite(seconds) and float(seconds).is_integer() and 1 <= seconds <= 59:
        return f"{int(seconds)} seconds"
    if math.isfinite(seconds) and (seconds / 60).is_integer() and 1 <= seconds / 60 <= 59:
        return f"{int(seconds // 60)} minutes"
    raise ValueError(
        f"a flush interval of {seconds!r} s is not one pg_cron repeats: use 1 to 59 whole seconds,"
        " or 1 to 59 whole minutes (60, 120, ... 3540), or a cron expression"
    )


def schedule_flush(every: float | str | None) -> Call[int]:
    """`every`: seconds (see `pg_cron_interval`), the text otel.schedule_flush() takes, or None for its default."""
    text = every if every is None or isinstance(every, str) else pg_cron_interval(every)
    return Call(QUERIES["schedule_flush"], {"every": text}, scalar_row)


def unschedule_flush() -> Call[bool]:
    return Call(QUERIES["unschedule_flush"], {}, scalar_row)


def read_only_transaction(timeout: float) -> Call[dict[str, Any]]:
    """The first statement of a `sql()` transaction; `timeout` in seconds."""
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    # At least 1 ms: statement_timeout = 0 would mean no timeout at all.
    return Call(QUERIES["read_only_transaction"], {"timeout": f"{max(1, round(timeout * 1000))}ms"}, dict_row)


def vector_literal(vector: Sequence[float] | np.ndarray) -> str:
    """pgvector's text form; the server checks the dimension."""
    return "[" + ",".join(format(float(x), ".9g") for x in vector) + "]"
