"""Write-key authentication for CollectorService, as a server interceptor.

`authorization: Bearer <write key>` -> the key's merchant, which the handler reads with `current_merchant()`
(the payload never names a merchant). Missing, malformed or unknown key -> UNAUTHENTICATED; a revoked key ->
UNAUTHENTICATED saying so; a read key -> PERMISSION_DENIED; control store down -> UNAVAILABLE.

Lookups are cached by the secret's hash for `ttl_s` (positive and negative answers), in a bounded LRU, so
a revocation takes effect within `ttl_s` on every collector. Secrets are never logged.
"""

from __future__ import annotations

from typing import Any

from collector_svc.errors import PermissionDenied, Unauthenticated, to_status
from gnomon.control.bearer import KeyRefused, merchant_of_bearer
from gnomon.control.key_cache import KeyCache
from gnomon.control.port import KeyKind
from gnomon.grpc_auth import CallMerchant, MerchantInterceptor

COLLECTOR_SERVICE = "gnomon.v1.CollectorService"

_MERCHANT = CallMerchant("gnomon_collector_merchant")


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


class WriteKeyInterceptor(MerchantInterceptor):
    """Authenticates CollectorService calls; other services pass through untouched."""

    def __init__(self, cache: KeyCache) -> None:
        super().__init__(COLLECTOR_SERVICE, _MERCHANT, lambda metadata: authenticate(cache, metadata), to_status)
