"""otel_db end to end against the seed design's write path.

Seed path: SQLAlchemy 2 ORM, `session.add_all()` and a commit every 100
rows, into a table shaped like the seed's `otel_traces` (string id primary
key, unique trace_id as the seed had it, a nullable vector(384) column, four
B-tree indexes and a GIN index on attributes).
otel_db path: COPY into otel.traces_staging and `call otel.flush()` with all
its validation, signatures and trace summaries.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import psycopg
from sqlalchemy import DateTime, Float, String, create_engine
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from bench.common import TYPED_COLUMNS, drop_database, fresh_database, span_dicts, timed, typed_row

SEED_TABLE = """
create table otel_traces (
    id varchar primary key,
    trace_id varchar not null unique,
    parent_span_id varchar,
    name varchar not null,
    kind varchar,
    start_time timestamptz not null,
    end_time timestamptz,
    duration_ms double precision,
    status varchar,
    attributes jsonb,
    embedding vector(384),
    embedding_model varchar,
    embedding_generated_at timestamptz
);
create index ix_traces_name on otel_traces (name);
create index ix_traces_start_time on otel_traces (start_time);
create index ix_traces_status on otel_traces (status);
create index ix_traces_parent on otel_traces (parent_span_id);
create index ix_traces_attributes on otel_traces using gin (attributes);
"""


class Base(DeclarativeBase):
    pass


class TraceModel(Base):
    __tablename__ = "otel_traces"
    id: Mapped[str] = mapped_column(String, primary_key=True)
    trace_id: Mapped[str] = mapped_column(String, unique=True)
    parent_span_id: Mapped[str | None] = mapped_column(String)
    name: Mapped[str] = mapped_column(String)
    kind: Mapped[str | None] = mapped_column(String)
    start_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str | None] = mapped_column(String)
    attributes: Mapped[dict | None] = mapped_column(JSONB)


def seed_orm(url: str, count: int) -> float:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.exec_driver_sql(SEED_TABLE)
    rows = [
        TraceModel(
            id=str(uuid.uuid4()),
            trace_id=f"{span['trace_id']}:{span['span_id']}",  # the seed's unique trace_id per row
            parent_span_id=span["parent_span_id"],
            name=span["name"],
            kind=span["kind"],
            start_time=datetime.fromtimestamp(span["start_ns"] / 1e9, UTC),
            end_time=datetime.fromtimestamp(span["end_ns"] / 1e9, UTC),
            duration_ms=(span["end_ns"] - span["start_ns"]) / 1e6,
            status=span["status_code"],
            attributes=json.loads(json.dumps(span["attributes"])),
        )
        for span in span_dicts(count)
    ]
    with timed() as t, Session(engine) as session:
        for start in range(0, count, 100):
            session.add_all(rows[start : start + 100])
            session.commit()
    engine.dispose()
    return t.seconds


def otel_db_end_to_end(url: str, count: int) -> float:
    rows = [typed_row(span) for span in span_dicts(count)]
    with psycopg.connect(url, autocommit=True) as conn, timed() as t:
        with conn.cursor().copy(f"copy otel.traces_staging ({TYPED_COLUMNS}) from stdin") as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute("call otel.flush()")
    return t.seconds


def run(spans: int = 20_000) -> dict:
    url = fresh_database("otel_bench")
    try:
        orm = seed_orm(url, spans)
        ours = otel_db_end_to_end(url, spans)
    finally:
        drop_database("otel_bench")
    return {
        "spans": spans,
        "seed_orm_spans_per_s": round(spans / orm),
        "otel_db_copy_and_flush_spans_per_s": round(spans / ours),
        "otel_db_vs_seed": round(orm / ours, 2),
        "goals": {"otel_db_vs_seed": ">= 2.5"},
    }
