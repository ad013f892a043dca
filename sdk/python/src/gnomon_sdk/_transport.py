"""gRPC channels to the collectors: round-robin over endpoints, one Collect call at a time, cancellable.

The client sends pre-serialized `EventBatch` bytes (no serializer) and reads `CollectResponse`. The method
path comes from the generated descriptor, so no generated `_grpc` module (nor its grpcio version gate) is
needed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import grpc

from gnomon_sdk._proto.gnomon.v1 import collector_pb2

_SERVICE = collector_pb2.DESCRIPTOR.services_by_name["CollectorService"]
COLLECT_METHOD = f"/{_SERVICE.full_name}/{_SERVICE.methods_by_name['Collect'].name}"

# Reconnect quickly once a collector is back (grpc's default backoff grows to 120 s between attempts).
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    ("grpc.max_send_message_length", 4 << 20),
)


class Transport:
    """Channels to every endpoint; `collect` sends one batch to the current endpoint.

    Thread-safety: `collect` is called by the sender thread only; `cancel` and `close` from any thread.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        write_key: str,
        *,
        tls: bool | grpc.ChannelCredentials,
        gzip: bool,
        timeout_s: float,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one collector endpoint (host:port) is required")
        self.endpoints = tuple(endpoints)
        creds: grpc.ChannelCredentials | None
        if tls is True:
            creds = grpc.ssl_channel_credentials()
        elif tls is False:
            creds = None
        else:
            creds = tls
        self._channels = [
            grpc.secure_channel(e, creds, options=CHANNEL_OPTIONS)
            if creds is not None
            else grpc.insecure_channel(e, options=CHANNEL_OPTIONS)
            for e in self.endpoints
        ]
        self._calls: list[grpc.UnaryUnaryMultiCallable[bytes, collector_pb2.CollectResponse]] = [
            ch.unary_unary(COLLECT_METHOD, response_deserializer=collector_pb2.CollectResponse.FromString)
            for ch in self._channels
        ]
        self._metadata = (("authorization", f"Bearer {write_key}"),)
        self._compression = grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression
        self._timeout_s = timeout_s
        self._index = 0
        self._lock = threading.Lock()
        self._current: grpc.Future[collector_pb2.CollectResponse] | None = None
        self._cancelled = False

    @property
    def endpoint(self) -> str:
        """The endpoint the next call goes to."""
        return self.endpoints[self._index]

    def rotate(self) -> None:
        """Move to the next endpoint (round-robin per batch; failover after UNAVAILABLE)."""
        self._index = (self._index + 1) % len(self.endpoints)

    def collect(self, batch: bytes, extra_metadata: tuple[tuple[str, str], ...] = ()) -> collector_pb2.CollectResponse:
        """Send one serialized EventBatch to the current endpoint and wait for the answer.

        Blocks up to `timeout_s`. Raises grpc.RpcError (also a grpc.Call) on failure; CANCELLED after
        `cancel`.
        """
        call = self._calls[self._index]
        with self._lock:
            if self._cancelled:
                raise _Cancelled()
            metadata = self._metadata + extra_metadata
            future = call.future(batch, timeout=self._timeout_s, metadata=metadata, compression=self._compression)
            self._current = future
        try:
            return future.result()
        finally:
            with self._lock:
                self._current = None

    def cancel(self) -> None:
        """Cancel the call in flight (if any) and every later one; used when the client stops."""
        with self._lock:
            self._cancelled = True
            if self._current is not None:
                self._current.cancel()

    def close(self) -> None:
        self.cancel()
        for channel in self._channels:
            channel.close()


class _Cancelled(grpc.RpcError):
    """Raised by `collect` after `cancel`; looks like a CANCELLED RpcError to the caller."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.CANCELLED

    def details(self) -> str:
        return "client closed"

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:  # type: ignore[override]
        return ()


def status_of(err: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """(status code, details) of a failed call; UNKNOWN when the error carries no status."""
    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
    details = err.details() if callable(getattr(err, "details", None)) else str(err)
    return code, details or ""


def trailing_metadata(err: grpc.RpcError) -> tuple[tuple[str, str | bytes], ...] | None:
    """The trailing metadata of a failed call, None when unavailable."""
    getter = getattr(err, "trailing_metadata", None)
    if not callable(getter):
        return None
    try:
        return tuple((m[0], m[1]) for m in (getter() or ()))
    except Exception:
        return None
