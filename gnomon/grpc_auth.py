"""The plumbing of Gnomon's bearer-secret server interceptors (collector write keys, query read tokens).

`MerchantInterceptor` authenticates every call of one service before its handler runs: a call the
`authenticate` function refuses (it raises) gets a handler that aborts with `to_status(exc)`; an accepted call's
handler runs with the merchant readable through `CallMerchant.get` (a contextvar, also set on every step of a
streaming response) and, optionally, after a `check` of the deserialized request. Calls of other services pass
through untouched. The service-specific rules (which key kind, which errors) stay in each service's auth module.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

import grpc

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # a string: grpc's class is generic only in its stubs
RequestCheck = Callable[[Any, grpc.ServicerContext, str], None]  # (request, context, merchant): abort to refuse


class CallMerchant:
    """The merchant the call being served was authenticated for."""

    def __init__(self, name: str) -> None:
        self._var: contextvars.ContextVar[str | None] = contextvars.ContextVar(name, default=None)

    def get(self) -> str | None:
        """The merchant id, or None outside an authenticated call."""
        return self._var.get()

    def context(self, merchant_id: str) -> contextvars.Context:
        """A copy of the current context in which `get()` returns `merchant_id`."""
        ctx = contextvars.copy_context()
        ctx.run(self._var.set, merchant_id)
        return ctx


class _InContext:
    """Iterates `it` inside `ctx`, so a streaming handler sees the authenticated merchant on every step."""

    def __init__(self, ctx: contextvars.Context, it: Iterator[Any]) -> None:
        self._ctx = ctx
        self._it = it

    def __iter__(self) -> _InContext:
        return self

    def __next__(self) -> Any:
        return self._ctx.run(next, self._it)


def refusing_handler(status: grpc.Status, streaming: bool) -> Handler:
    """A handler (unary-unary, or stream-stream when `streaming`) that ends every call with `status`."""

    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort_with_status(status)

    def stream(request_iterator: Any, context: grpc.ServicerContext) -> Any:
        context.abort_with_status(status)

    if streaming:
        return grpc.stream_stream_rpc_method_handler(stream)
    return grpc.unary_unary_rpc_method_handler(unary)


def bound_handler(handler: Handler, merchant: CallMerchant, merchant_id: str, check: RequestCheck | None) -> Handler:
    """`handler` (unary-unary or stream-stream) run with `merchant.get() == merchant_id`; a unary request is
    first given to `check`. Raises TypeError for other handler kinds."""
    if handler.unary_unary is not None:
        behavior = handler.unary_unary

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            if check is not None:
                check(request, context, merchant_id)
            return merchant.context(merchant_id).run(behavior, request, context)

        return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)
    if handler.stream_stream is not None:
        stream_behavior = handler.stream_stream

        def stream(request_iterator: Any, context: grpc.ServicerContext) -> Any:
            ctx = merchant.context(merchant_id)
            return _InContext(ctx, ctx.run(stream_behavior, request_iterator, context))

        return grpc.stream_stream_rpc_method_handler(stream, handler.request_deserializer, handler.response_serializer)
    raise TypeError("only unary-unary and stream-stream methods can be authenticated")


class MerchantInterceptor(grpc.ServerInterceptor):
    """Authenticates the calls of `service` (see the module docstring); a method whose name ends in "Stream" is
    stream-stream, every other one unary-unary."""

    def __init__(
        self,
        service: str,
        merchant: CallMerchant,
        authenticate: Callable[[Any], str],
        to_status: Callable[[BaseException], grpc.Status],
        check: RequestCheck | None = None,
    ) -> None:
        self._prefix = f"/{service}/"
        self._merchant = merchant
        self._authenticate = authenticate
        self._to_status = to_status
        self._check = check

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method = handler_call_details.method
        if not method.startswith(self._prefix):
            return continuation(handler_call_details)
        try:
            merchant_id = self._authenticate(handler_call_details.invocation_metadata)
        except Exception as exc:  # the service's errors, ControlUnavailable, bugs: each becomes its status
            return refusing_handler(self._to_status(exc), method.endswith("Stream"))
        handler = continuation(handler_call_details)
        return None if handler is None else bound_handler(handler, self._merchant, merchant_id, self._check)
