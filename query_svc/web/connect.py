"""The Connect / gRPC-web ASGI application of QueryService (the `connectrpc` package), over `QueryBridge`.

Endpoints are derived at run time from the QueryService descriptor of `gnomon.v1.query_pb2` (no generated
Connect stubs to keep in sync): one unary endpoint per method, messages encoded with google.protobuf (binary and
JSON codecs). Each call runs `QueryBridge.call` on a bounded thread pool:

- Admission: at most `max_concurrent` calls run or wait at once; beyond, RESOURCE_EXHAUSTED at once (as the gRPC
  server's `maximum_concurrent_rpcs`). Nothing queues without limit.
- Deadline: the client's (`grpc-timeout` / `connect-timeout-ms`), capped at `default_timeout_s`.
- Errors: the `grpc.Status` the servicer or interceptor aborted with becomes a ConnectError with the same code,
  message and details (google.rpc.BadRequest, RetryInfo) — the error mapping stays in `query_svc.errors`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import Any

from connectrpc.code import Code
from connectrpc.compat import google_protobuf_codecs
from connectrpc.errors import ConnectError, ErrorDetail
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import RequestContext
from connectrpc.server import ConnectASGIApplication, Endpoint
from google.protobuf import message_factory
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2  # type: ignore[import-untyped]
from protobuf.wkt import Any as WireAny

from query_svc.auth import QUERY_SERVICE
from query_svc.web.bridge import SERVICE_DESCRIPTOR, CallAborted, QueryBridge, metadata_of

log = logging.getLogger(__name__)

STATUS_DETAILS_KEY = "grpc-status-details-bin"
READ_MAX_BYTES = 1024 * 1024  # requests are small: a report request with 100 filters is a few kB


def connect_error(aborted: CallAborted) -> ConnectError:
    """The ConnectError carrying the same code, message and details as the gRPC status."""
    status = aborted.status
    try:
        code = Code[status.code.name]
    except KeyError:
        code = Code.UNKNOWN
    details: list[ErrorDetail] = []
    for key, value in status.trailing_metadata or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                rich = status_pb2.Status.FromString(value)
            except DecodeError:
                continue
            details.extend(ErrorDetail(WireAny(type_url=d.type_url, value=d.value)) for d in rich.details)
    return ConnectError(code, status.details or "", details)


class _Calls:
    """Admission and execution of bridged calls on the event loop's side."""

    def __init__(self, bridge: QueryBridge, executor: Executor, max_concurrent: int, default_timeout_s: float) -> None:
        self._bridge = bridge
        self._executor = executor
        self._max = max_concurrent
        self._default_timeout_s = default_timeout_s
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def run(self, method: str, request: Message, ctx: RequestContext[Any, Any]) -> Message:
        if self._in_flight >= self._max:
            raise ConnectError(Code.RESOURCE_EXHAUSTED, f"too many queries in flight ({self._max}); retry in a moment")
        timeout_s = self._default_timeout_s
        if ctx.timeout_ms is not None:
            timeout_s = min(timeout_s, max(0.0, ctx.timeout_ms / 1000))
        metadata = metadata_of(list(ctx.request_headers.allitems()))
        call = functools.partial(self._bridge.call, method, request, metadata, timeout_s)
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except CallAborted as aborted:
            raise connect_error(aborted) from None
        except Exception:  # the servicer maps its own failures; this is a bug in the bridge itself
            log.exception("internal error bridging %s", method)
            raise ConnectError(Code.INTERNAL, "internal error; it has been logged") from None
        finally:
            self._in_flight -= 1


def _endpoints(calls: _Calls) -> Mapping[str, Any]:
    """URL path -> `Endpoint.unary(...)` (typed Any: connectrpc names its endpoint union only privately)."""
    endpoints: dict[str, Any] = {}
    for method in SERVICE_DESCRIPTOR.methods:
        info: MethodInfo[Any, Any] = MethodInfo(
            name=method.name,
            service_name=QUERY_SERVICE,
            input=message_factory.GetMessageClass(method.input_type),
            output=message_factory.GetMessageClass(method.output_type),
            idempotency_level=IdempotencyLevel.NO_SIDE_EFFECTS,
            stream_type=StreamType.UNARY,
        )
        endpoints[f"/{QUERY_SERVICE}/{method.name}"] = Endpoint.unary(info, functools.partial(calls.run, method.name))
    return endpoints


class QueryServiceConnectApp(ConnectASGIApplication[_Calls]):
    """ASGI app answering gRPC-web, Connect and (over HTTP/2 with trailers) gRPC calls of QueryService."""

    def __init__(self, bridge: QueryBridge, executor: Executor, *, max_concurrent: int, default_timeout_s: float):
        self.calls = _Calls(bridge, executor, max_concurrent, default_timeout_s)
        super().__init__(
            service=self.calls,
            endpoints=_endpoints,
            codecs=google_protobuf_codecs(),
            read_max_bytes=READ_MAX_BYTES,
        )

    @property
    def path(self) -> str:
        return f"/{QUERY_SERVICE}"
