"""Read-token authentication and merchant isolation for QueryService, as a server interceptor.

`authorization: Bearer <read token>` -> the token's merchant. Missing, malformed, unknown or revoked token ->
UNAUTHENTICATED; a write key -> PERMISSION_DENIED (write keys cannot read); control store down -> UNAVAILABLE.

Isolation is enforced here, for EVERY QueryService method, before the servicer runs: the deserialized
request's `merchant_id` must be the token's merchant (PERMISSION_DENIED otherwise); an empty `merchant_id`
is filled in with the token's merchant. The servicer can read the authenticated merchant with
`current_merchant()` and checks it again. Lookups are cached by `KeyCache` (the collector's TTL + LRU cache
keyed by the secret's hash), so a revocation takes effect within its TTL. Secrets are never logged.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import grpc

from gnomon.control.bearer import KeyRefused, merchant_of_bearer
from gnomon.control.key_cache import KeyCache
from gnomon.control.port import KeyKind
from query_svc.errors import PermissionDenied, Unauthenticated, to_status

QUERY_SERVICE = "gnomon.v1.QueryService"
_PREFIX = f"/{QUERY_SERVICE}/"

_MERCHANT: contextvars.ContextVar[str | None] = contextvars.ContextVar("gnomon_query_merchant", default=None)


def current_merchant() -> str:
    """The merchant of the read token of the call being served. Raises Unauthenticated outside one."""
    merchant = _MERCHANT.get()
    if merchant is None:
        raise Unauthenticated("no authenticated merchant for this call")
    return merchant


def authenticate(cache: KeyCache, metadata: Any) -> str:
    """The merchant whose reports the call's read token may read; raises a QueryError otherwise."""
    try:
        return merchant_of_bearer(cache, metadata, KeyKind.READ)
    except KeyRefused as exc:
        raise (PermissionDenied if exc.denied else Unauthenticated)(str(exc)) from None


def authorize(request: Any, merchant_id: str) -> None:
    """Make `request.merchant_id` the token's merchant: fill it when empty, PermissionDenied when different."""
    asked = getattr(request, "merchant_id", None)
    if not isinstance(asked, str):
        raise PermissionDenied("the request does not name a merchant")
    if not asked:
        request.merchant_id = merchant_id
    elif asked != merchant_id:
        raise PermissionDenied(f"this read token cannot read merchant {asked!r}")


def _deny(exc: BaseException) -> grpc.RpcMethodHandler[Any, Any]:
    status = to_status(exc)

    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort_with_status(status)

    return grpc.unary_unary_rpc_method_handler(unary)


def _bind(handler: grpc.RpcMethodHandler[Any, Any], merchant_id: str) -> grpc.RpcMethodHandler[Any, Any]:
    """The same handler, checking the request's merchant first and run with `current_merchant()` set."""
    if handler.unary_unary is None:
        raise TypeError("QueryService has only unary-unary methods")
    behavior = handler.unary_unary

    def unary(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            authorize(request, merchant_id)
        except PermissionDenied as exc:
            context.abort_with_status(to_status(exc))
        ctx = contextvars.copy_context()
        ctx.run(_MERCHANT.set, merchant_id)
        return ctx.run(behavior, request, context)

    return grpc.unary_unary_rpc_method_handler(unary, handler.request_deserializer, handler.response_serializer)


class ReadTokenInterceptor(grpc.ServerInterceptor):
    """Authenticates and authorizes QueryService calls; other services pass through untouched."""

    def __init__(self, cache: KeyCache) -> None:
        self._cache = cache

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if not handler_call_details.method.startswith(_PREFIX):
            return continuation(handler_call_details)
        try:
            merchant_id = authenticate(self._cache, handler_call_details.invocation_metadata)
        except Exception as exc:  # QueryError, ControlUnavailable, bugs: each becomes its status
            return _deny(exc)
        handler = continuation(handler_call_details)
        return None if handler is None else _bind(handler, merchant_id)
