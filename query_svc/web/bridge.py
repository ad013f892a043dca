"""Run one QueryService call through the gRPC server's own interceptor and servicer, without a gRPC server.

`QueryBridge.call` builds what a gRPC server would hand to them — the call details (method + metadata) for
`ReadTokenInterceptor.intercept_service`, then a servicer context for the handler it returns — and runs the
handler in the calling thread. The context supports what the interceptor and `QueryServicer` use:
`invocation_metadata()`, `time_remaining()` and `abort_with_status()`/`abort()`, which raise `CallAborted`
carrying the `grpc.Status` the gRPC server would have sent (code, message, `grpc-status-details-bin`).

Blocking (runs the query); thread-safe (the servicer and interceptor are).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import grpc
from google.protobuf.message import Message

from gnomon.v1 import query_pb2
from query_svc.auth import QUERY_SERVICE

Metadata = tuple[tuple[str, str], ...]

SERVICE_DESCRIPTOR = query_pb2.DESCRIPTOR.services_by_name["QueryService"]
METHOD_NAMES: tuple[str, ...] = tuple(m.name for m in SERVICE_DESCRIPTOR.methods)


class CallAborted(Exception):
    """The call ended with a non-OK status (`status.code`, `status.details`, `status.trailing_metadata`)."""

    def __init__(self, status: grpc.Status) -> None:
        super().__init__(f"{status.code.name}: {status.details}")
        self.status = status


@dataclass(frozen=True)
class _Status(grpc.Status):
    code: grpc.StatusCode
    details: str
    trailing_metadata: Metadata = ()


@dataclass
class _CallDetails:
    """grpc.HandlerCallDetails of one call."""

    method: str
    invocation_metadata: tuple[tuple[str, str | bytes], ...]


class BridgeContext:
    """The part of grpc.ServicerContext that the interceptor and QueryServicer use, for one call.

    `deadline` is a `time.monotonic()` instant or None (no deadline).
    """

    def __init__(self, metadata: Metadata, deadline: float | None, monotonic: Callable[[], float]) -> None:
        self._metadata = metadata
        self._deadline = deadline
        self._now = monotonic

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - self._now()

    def abort_with_status(self, status: grpc.Status) -> NoReturn:
        raise CallAborted(status)

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise CallAborted(_Status(code, details))

    def is_active(self) -> bool:
        return True


def metadata_of(headers: Sequence[tuple[str, str]]) -> Metadata:
    """gRPC metadata from HTTP request headers: lower-case keys; binary (`-bin`) and reserved headers dropped."""
    return tuple(
        (key.lower(), value)
        for key, value in headers
        if not key.lower().endswith("-bin") and not key.startswith(":") and key.lower() != "grpc-timeout"
    )


class QueryBridge:
    """Calls QueryService methods through `interceptor` (a grpc.ServerInterceptor) and `servicer`."""

    def __init__(
        self,
        servicer: Any,
        interceptor: grpc.ServerInterceptor,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]] = {
            name: grpc.unary_unary_rpc_method_handler(getattr(servicer, name)) for name in METHOD_NAMES
        }
        self._interceptor = interceptor
        self._now = monotonic

    def call(self, method: str, request: Message, metadata: Metadata, timeout_s: float | None) -> Message:
        """Run `method` (e.g. "TimeSeries") with `request`; returns its response. Raises CallAborted."""
        handler_of = self._handlers.get
        details = _CallDetails(f"/{QUERY_SERVICE}/{method}", metadata)
        handler = self._interceptor.intercept_service(lambda d: handler_of(method), details)
        if handler is None or handler.unary_unary is None:
            raise CallAborted(_Status(grpc.StatusCode.UNIMPLEMENTED, f"method {QUERY_SERVICE}/{method} is not served"))
        deadline = None if timeout_s is None else self._now() + timeout_s
        context = BridgeContext(metadata, deadline, self._now)
        response = handler.unary_unary(request, cast(grpc.ServicerContext, context))
        return cast(Message, response)
