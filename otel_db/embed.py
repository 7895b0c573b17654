"""The embedding worker behind `otel-db embed`.

The queue lives in SQL (sql/200_embedding_queue.sql): each batch is one
transaction that claims signatures with `for update skip locked`, embeds
their text here, binary-COPYs the vectors into a temporary table and stores
them with one update. Several workers may run at once; none embeds a
signature another one holds. A batch the model fails on counts an attempt
and waits (30 s, doubling, at most an hour) while the worker goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import psycopg

from otel_db.settings import EMBEDDING_EXTRA_HINT, Settings

if TYPE_CHECKING:
    import numpy as np

    from otel_db.embedding import Embedder

log = logging.getLogger(__name__)

_VECTORS_TABLE = (
    "create temp table if not exists otel_embeddings (id bigint primary key, embedding real[]) on commit delete rows"
)

NOTIFY_CHANNEL = "otel_signatures"  # otel.flush() notifies it when it adds signatures


class NoModel(RuntimeError):
    """The embedding model cannot be loaded here: the extra, the model files, or their check is missing."""


def installed_model(settings: Settings) -> Embedder:
    """The model of `settings` ready to embed; NoModel, saying what is missing, rather than the fallback embedder."""
    try:
        from otel_db.embedding import Embedder
    except ImportError as exc:
        raise NoModel(f"the embedding extra is missing ({exc.name}): {EMBEDDING_EXTRA_HINT}") from exc
    try:
        embedder = Embedder(settings.model_dir, cache_size=settings.cache_size, precision=settings.model_precision)
    except Exception as exc:  # a model that fails its manifest check, say
        raise NoModel(str(exc)) from exc
    if embedder.is_fallback:
        raise NoModel(f"no model is installed in {settings.model_dir} (`make model` installs it)")
    return embedder


class TextEmbedder(Protocol):
    """What the worker needs of `otel_db.embedding.Embedder`."""

    model_name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


@dataclass
class EmbedReport:
    """What one run of the worker did."""

    embedded: int = 0
    failed: int = 0
    batches: int = 0

    def failures(self) -> str:
        """ ", N failed (see otel.embedding_status)" when some failed, else nothing: for the end of a report line."""
        return f", {self.failed:,} failed (see otel.embedding_status)" if self.failed else ""

    def add(self, other: EmbedReport) -> None:
        self.embedded += other.embedded
        self.failed += other.failed
        self.batches += other.batches


def pending_count(conn: psycopg.Connection) -> int:
    """Signatures waiting for a vector now or after a back-off."""
    return conn.execute("select pending from otel.embedding_status").fetchone()[0]  # type: ignore[index]


def embed_batch(conn: psycopg.Connection, embedder: TextEmbedder, batch_size: int) -> EmbedReport | None:
    """Claim, embed and store one batch; None when nothing is ready to embed.

    `conn` must be in autocommit mode: the batch is its own transaction.
    """
    with conn.transaction():
        rows = conn.execute(
            "select id, text from otel.claim_signatures(%s, %s)", (batch_size, embedder.model_name)
        ).fetchall()
        if not rows:
            return None
        ids = [row[0] for row in rows]
        try:
            vectors = embedder.embed([row[1] for row in rows])
            # A savepoint: vectors the server refuses (NaN, a wrong dimension)
            # fail the batch, not the transaction that records the failure.
            with conn.transaction():
                stored = _store(conn, embedder.model_name, ids, vectors)
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            return _failed(conn, ids, f"the database refused the vectors: {exc.diag.message_primary or exc}")
        except psycopg.Error:
            raise  # connection trouble: the batch is rolled back and claimed again later
        except Exception as exc:  # any model failure is recorded on the batch, not fatal
            return _failed(conn, ids, f"{type(exc).__name__}: {exc}")
    return EmbedReport(embedded=stored, batches=1)


def _store(conn: psycopg.Connection, model: str, ids: list[int], vectors: np.ndarray) -> int:
    """Binary COPY of the vectors into a temporary table, then one update."""
    if len(vectors) != len(ids):
        raise ValueError(f"the embedder returned {len(vectors)} vectors for {len(ids)} texts")
    conn.execute(_VECTORS_TABLE)
    with conn.cursor() as cur, cur.copy("copy otel_embeddings (id, embedding) from stdin (format binary)") as copy:
        copy.set_types(["int8", "float4[]"])
        for signature_id, vector in zip(ids, vectors, strict=True):
            copy.write_row((signature_id, vector.tolist()))
    return conn.execute("select otel.store_embeddings(%s)", (model,)).fetchone()[0]  # type: ignore[index]


def _failed(conn: psycopg.Connection, ids: list[int], error: str) -> EmbedReport:
    log.warning("embedding %d signatures failed: %s", len(ids), error)
    conn.execute("select otel.embedding_failed(%s, %s)", (ids, error))
    return EmbedReport(failed=len(ids), batches=1)


def embed_pending(
    conn: psycopg.Connection,
    embedder: TextEmbedder,
    batch_size: int,
    progress: Callable[[int], object] | None = None,
) -> EmbedReport:
    """Embed batches until none is ready (those backing off after a failure wait)."""
    report = EmbedReport()
    while (batch := embed_batch(conn, embedder, batch_size)) is not None:
        report.add(batch)
        if progress is not None:
            progress(batch.embedded + batch.failed)
    return report


def watch(
    conn: psycopg.Connection,
    embedder: TextEmbedder,
    batch_size: int,
    poll_seconds: float = 30.0,
    keep_going: Callable[[], bool] = lambda: True,
    on_round: Callable[[EmbedReport, float], object] | None = None,
) -> EmbedReport:
    """Embed what is pending, then wait for otel.flush() to add signatures
    (LISTEN), or poll_seconds for retries that come due; until keep_going()
    turns false. After each round that embedded or failed something,
    on_round(what it did, seconds it took)."""
    report = EmbedReport()
    conn.execute(f"listen {NOTIFY_CHANNEL}")
    while keep_going():
        started = time.perf_counter()
        done = embed_pending(conn, embedder, batch_size)
        report.add(done)
        if on_round is not None and (done.embedded or done.failed):
            on_round(done, time.perf_counter() - started)
        for _ in conn.notifies(timeout=poll_seconds, stop_after=1):
            pass
    return report
