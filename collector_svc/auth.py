"""Write-key authentication for CollectorService, as a server interceptor.

`authorization: Bearer <write key>` -> the key's merchant, which the handler reads with `current_merchant()`
(the payload never names a merchant). Missing, malformed or unknown key -> UNAUTHENTICATED; a revoked key ->
UNAUTHENTICATED saying so; a read key -> PERMISSION_DENIED; control store down -> UNAVAILABLE.

Lookups are cached by the secret's hash for `ttl_s` (positive and negative answers), in a bounded LRU, so
a revocation takes effect within `ttl_s` on every collector. Secrets are never logged.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from collector_svc.errors import PermissionDenied, Unauthenticated, to_status
from gnomon.control.bearer import KeyRefused, merchant_of_bearer
from gnomon.control.key_cache import KeyCache
from gnomon.control.port import KeyKind

COLLECTOR_SERVICE = "gnomon.v1.CollectorService"
_PREFIX = f"/{COLLECTOR_SERVICE}/"

_MERCHANT: contextvars.ContextVar[str | None] = contextvars.ContextVar("gnomon_collector_merchant", default=None)


def current_merchant() -> str:
    """The merchant of the write key of the call being served. Raises Unauthenticated outside one."""
    merchant = _MERCHANT.get()
    if merchant is None:
        raise Unauthenticated("no authenticated merchant for this call")
    return merchant


def authenticate(cache: KeyCache, metadata: Any) -> str:
    """The merchant id a call's metadata authenticates for writing; raises a CollectorError otherwise."""
    try:
        return merchant_of_bearer(cache, metadata, KeyKind.WRITE)
    except KeyRefused as exc:
        raise (PermissionDenied if exc.denied else Unauthenticated)(str(exc)) from None


def _deny(exc: BaseException, streaming: bool) -> grpc.RpcMethodHandler[Any, Any]:
    status = to_status(exc)

    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort_with_status(status)

    def stream(request_iterator: Any, context: grpc.ServicerContext) -> Any:
        context.abort_with_status(status)

    if streaming:
        return grpc.stream_stream_rpc_method_handler(stream)
    return grpc.unary_unary_rpc_method_handler(unary)


class _InContext:
    """Iterates `it` inside `ctx`, so a streaming handler sees the authenticated merchant on every step."""

    def __init__(self, ctx: contextvars.Context, it: Iterator[Any]) -> None:
        self._ctx = ctx
        self._it = it

    def __iter__(self) -> _InContext:
        return self

    def __next__(self) -> Any:
        return self._ctx.run(next, self._it)


def _bind(handler: grpc.RpcMethodHandler[Any, Any], merchant_id: str) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler, run with `current_merchant()` == merchant_id."""
    if handler.unary_unary is not None:
        behavior = handler.unary_unary

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            ctx = contextvars.copy_context()
            ctx.run(_MERCHANT.set, merchant_id)
            return ctx.run(behavior, request, context)

        return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)
    if handler.stream_stream is not None:
        stream_behavior = handler.stream_stream

        def stream(request_iterator: Any, context: grpc.ServicerContext) -> Any:
            ctx = contextvars.copy_context()
            ctx.run(_MERCHANT.set, merchant_id)
            return _InContext(ctx, ctx.run(stream_behavior, request_iterator, context))

        return grpc.stream_stream_rpc_method_handler(stream, handler.request_deserializer, handler.response_serializer)
    raise TypeError("CollectorService has only unary-unary and stream-stream methods")


class WriteKeyInterceptor(grpc.ServerInterceptor):
    """Authenticates CollectorService calls; other services pass through untouched."""

    def __init__(self, cache: KeyCache) -> None:
        self._cache = cache

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        if not method.startswith(_PREFIX):
            return continuation(handler_call_details)
        streaming = method.endswith("Stream")
        try:
            merchant_id = authenticate(self._cache, handler_call_details.invocation_metadata)
        except Exception as exc:  # CollectorError, ControlUnavailable, bugs: each becomes its status
            return _deny(exc, streaming)
        handler = continuation(handler_call_details)
        return None if handler is None else _bind(handler, merchant_id)
