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

from typing import Any

import grpc

from gnomon.control.bearer import KeyRefused, merchant_of_bearer
from gnomon.control.key_cache import KeyCache
from gnomon.control.port import KeyKind
from gnomon.grpc_auth import CallMerchant, MerchantInterceptor
from query_svc.errors import PermissionDenied, Unauthenticated, to_status

QUERY_SERVICE = "gnomon.v1.QueryService"

_MERCHANT = CallMerchant("gnomon_query_merchant")


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


def _authorize_or_abort(request: Any, context: grpc.ServicerContext, merchant_id: str) -> None:
    try:
        authorize(request, merchant_id)
    except PermissionDenied as exc:
        context.abort_with_status(to_status(exc))


class ReadTokenInterceptor(MerchantInterceptor):
    """Authenticates and authorizes QueryService calls; other services pass through untouched."""

    def __init__(self, cache: KeyCache) -> None:
        super().__init__(
            QUERY_SERVICE, _MERCHANT, lambda metadata: authenticate(cache, metadata), to_status, _authorize_or_abort
        )
