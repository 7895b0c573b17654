"""What the OTLP/HTTP and OTLP/GRPC servers of `otel-db serve` share.

The bearer token, admission, decoding (off the event loop when the request
is large), staging with group commit, and the counts. The protocol servers
only read their transport and translate the outcome: a `Receipt`, or
`Unavailable` (503 / UNAVAILABLE), `MalformedRequest` (400 /
INVALID_ARGUMENT), `RequestTooLarge` (413).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from otel_db.otlp_requests import Signal, StagingRecord
from otel_db.serve_metrics import ServeMetrics
from otel_db.staging_writer import StagingWriter, Unavailable

# Converting a request costs about 10 µs (typed spans) to 50 µs (OTLP/JSON) per record, on the CPU.
# Small requests are converted on the event loop (a thread hop would cost
# more); larger ones in a worker thread, so that the loop keeps answering
# health checks and taking other requests meanwhile. Converting holds the
# GIL: more threads than this would add memory (a decoded 4 MiB request
# takes tens of MB), not speed.
INLINE_DECODE_BYTES = 64 * 1024
DECODING_THREADS = 2


@dataclass(frozen=True, slots=True)
class Receipt:
    """A stored request: how many records it held, and how many were dead-lettered on receipt and why."""

    records: int
    rejected: int = 0
    reason: str = ""


@dataclass(slots=True)
class Hold:
    """The bytes of one request counted in flight (`Receiver.holding`)."""

    receiver: Receiver
    size: int

    def resize(self, size: int) -> None:
        """Count `size` bytes instead (a body as it grows); Unavailable when the increase does not fit."""
        if size > self.size:
            try:
                self.receiver.writer.take(size - self.size, held=self.size)
            except Unavailable as exc:
                raise self.receiver.refused(exc) from None
        else:
            self.receiver.writer.give_back(self.size - size)
        self.size = size


class Receiver:
    """One per server; the HTTP and gRPC handlers call it for every export request."""

    def __init__(self, writer: StagingWriter, metrics: ServeMetrics, token: str | None) -> None:
        self.writer = writer
        self.metrics = metrics
        self._token = token.encode() if token else None
        self._storing = 0  # requests being decoded or committed
        self._idle = asyncio.Event()
        self._idle.set()
        self._decoding = asyncio.Semaphore(DECODING_THREADS)

    def authorized(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header (or gRPC `authorization` metadata) carries the token, if one is set."""
        return self._token is None or bearer_matches(authorization, self._token)

    @contextlib.contextmanager
    def holding(self, size: int) -> Iterator[Hold]:
        """Count a request's bytes in flight while it is read, decoded and stored; Unavailable when too many are."""
        hold = Hold(self, 0)
        try:
            hold.resize(size)
            yield hold
        finally:
            self.writer.give_back(hold.size)

    @contextlib.asynccontextmanager
    async def holding_received(self, size: int, patience: float) -> AsyncIterator[None]:
        """`holding` for a request already received whole: waits up to `patience` seconds for room in flight."""
        try:
            await self.writer.take_when_room(size, patience)
        except Unavailable as exc:
            raise self.refused(exc) from None
        try:
            yield
        finally:
            self.writer.give_back(size)

    def refused(self, exc: Unavailable) -> Unavailable:
        """Count the refusal; the caller raises it."""
        self.metrics.refused.labels(exc.reason).inc()
        return exc

    async def drained(self, timeout: float) -> None:
        """Return when no request is being stored, or after `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()

    async def store(self, signal: Signal, decode: Callable[[], StagingRecord], size: int) -> Receipt:
        """Decode the request (`size` bytes) into its staging line and return once it is committed."""
        self._storing += 1
        self._idle.clear()
        try:
            return await self._store(signal, decode, size)
        finally:
            self._storing -= 1
            if not self._storing:
                self._idle.set()

    async def _store(self, signal: Signal, decode: Callable[[], StagingRecord], size: int) -> Receipt:
        if size < INLINE_DECODE_BYTES:
            record = decode()
        else:
            async with self._decoding:
                decoding = asyncio.ensure_future(asyncio.to_thread(decode))
                try:
                    record = await asyncio.shield(decoding)
                except asyncio.CancelledError:
                    # The thread cannot be stopped: it keeps its slot and its bytes until it ends.
                    await asyncio.wait([decoding])
                    raise
        if record.line is None:
            return Receipt(0)
        try:
            dead_letter_reason = await self.writer.stage(record.line, typed=record.typed)
        except Unavailable as exc:
            raise self.refused(exc) from None
        if dead_letter_reason is not None:
            return Receipt(record.records, record.records, f"stored in otel.telemetry_dlq: {dead_letter_reason}")
        self.metrics.records.labels(signal.name).inc(record.records)
        return Receipt(record.records)


def bearer_matches(authorization: str | None, token: bytes) -> bool:
    """Whether an `Authorization` header is `Bearer <token>`, compared in constant time."""
    scheme, _, credentials = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token)
