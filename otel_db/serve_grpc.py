"""OTLP/gRPC for `otel-db serve`: the Export method of the three collector services.

grpcio's asyncio server (`grpc.aio`), serving the methods the
`opentelemetry-proto` package describes, so the wire contract is the
Collector's. gRPC itself decompresses gzip and enforces the message size
limit (after decompression). The request arrives as bytes and is decoded
as an HTTP body is: counted in flight first (a received request waits for
room rather than being refused and sent again), large ones decoded at most
two at a time (`Receiver`). Memory is bounded by --max-inflight plus the
requests gRPC has received and that wait for room (at most
MAX_CONCURRENT_RPCS of them); decoded as they arrived, 32 requests of 4 MiB
took 1.8 to 4 GB.

A request that was not stored ends with UNAVAILABLE and a RetryInfo, which
the SDKs' exporters honour by retrying after its delay; without the bearer
token, UNAUTHENTICATED.
"""

from __future__ import annotations

from functools import partial
from typing import NoReturn

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from otel_db.otlp_requests import (
    SIGNALS,
    MalformedRequest,
    RequestTooLarge,
    Signal,
    record_from_protobuf,
    response_message,
)
from otel_db.receiver import Receiver
from otel_db.staging_writer import Unavailable

# RPCs beyond this many at once are refused by gRPC (RESOURCE_EXHAUSTED, which clients retry):
# each holds its whole request (at most --max-body) before admission can look at it.
MAX_CONCURRENT_RPCS = 64
# How long a received request waits for room in flight before it is refused (UNAVAILABLE), at most
# (less when its deadline is nearer): refused at once, its client would send all of it again a second
# later, and again.
RECEIVED_PATIENCE = 30.0


def build_server(receiver: Receiver, max_body: int) -> grpc.aio.Server:
    server = grpc.aio.server(
        # Without SO_REUSEPORT (gRPC's default on Linux) a second server on the same port fails to start
        # instead of silently sharing it.
        options=[("grpc.max_receive_message_length", max_body), ("grpc.so_reuseport", 0)],
        maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
    )
    for signal in SIGNALS:
        export = ExportService(signal, receiver).Export
        # No request_deserializer: the method gets the request's bytes.
        handler: grpc.RpcMethodHandler = grpc.unary_unary_rpc_method_handler(
            export, response_serializer=signal.response_type.SerializeToString
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(signal.grpc_service, {"Export": handler}),)
        )
    return server


class ExportService:
    """The Export method of one collector service."""

    def __init__(self, signal: Signal, receiver: Receiver) -> None:
        self.signal = signal
        self.receiver = receiver

    async def Export(self, body: bytes, context: grpc.aio.ServicerContext) -> Message:
        metadata = dict(context.invocation_metadata() or ())
        try:
            if not self.receiver.authorized(_text(metadata.get("authorization"))):
                raise _Abort(grpc.StatusCode.UNAUTHENTICATED, "a bearer token is required")
            self.receiver.metrics.received_bytes.labels(self.signal.name, "grpc").inc(len(body))
            patience = min(RECEIVED_PATIENCE, context.time_remaining() or RECEIVED_PATIENCE)
            async with self.receiver.holding_received(len(body), patience):
                receipt = await self.receiver.store(
                    self.signal, partial(record_from_protobuf, self.signal, body), len(body)
                )
        except Unavailable as exc:
            await self._abort(context, _Abort(grpc.StatusCode.UNAVAILABLE, str(exc), exc.retry_after))
        except (RequestTooLarge, MalformedRequest) as exc:  # not retryable, unlike gRPC's own RESOURCE_EXHAUSTED
            await self._abort(context, _Abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc)))
        except _Abort as abort:
            await self._abort(context, abort)
        self._count(grpc.StatusCode.OK)
        return response_message(self.signal, receipt.rejected, receipt.reason)

    async def _abort(self, context: grpc.aio.ServicerContext, abort: _Abort) -> NoReturn:
        self._count(abort.code)
        await context.abort(abort.code, abort.message, trailing_metadata=abort.trailing_metadata())

    def _count(self, code: grpc.StatusCode) -> None:
        self.receiver.metrics.requests.labels(self.signal.name, "grpc", code.name).inc()


class _Abort(Exception):
    """How an Export call ends when it does not return a response."""

    def __init__(self, code: grpc.StatusCode, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        """The RetryInfo, where clients look for it: in the status details (the gRPC convention, which the
        Collector's exporters read) and on its own (which the Python SDK's exporter reads)."""
        if self.retry_after is None:
            return ()
        retry_info = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=self.retry_after))
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        status.details.add().Pack(retry_info)
        return (
            ("grpc-status-details-bin", status.SerializeToString()),
            ("google.rpc.retryinfo-bin", retry_info.SerializeToString()),
        )


def _text(value: str | bytes | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
