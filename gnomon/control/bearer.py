"""The checks every service makes of an `authorization: Bearer <key>` before serving a call.

`merchant_of_bearer(cache, metadata, kind)` returns the merchant of a valid, unrevoked key of `kind`, or raises
`KeyRefused` with a message naming what is wrong; `denied` tells a wrong kind of key (the caller's
PERMISSION_DENIED) from a missing, malformed, unknown or revoked one (UNAUTHENTICATED). Each service turns it into
its own error type. ControlUnavailable from the store passes through. Secrets never appear in messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gnomon.control.admin_service import bearer_token
from gnomon.control.key_cache import KeyCache
from gnomon.control.port import KeyKind, looks_like_secret


class KeyRefused(Exception):
    """The call's key does not allow it; `denied`: a valid key of the wrong kind."""

    def __init__(self, message: str, *, denied: bool = False) -> None:
        super().__init__(message)
        self.denied = denied


@dataclass(frozen=True)
class _Wording:
    noun: str
    prefix: str
    renew: str
    other: str
    purpose: str


_WORDING = {
    KeyKind.WRITE: _Wording("write key", "gn_w", "create a new key", "read key", "sending events needs a write key"),
    KeyKind.READ: _Wording("read token", "gn_r", "create a new one", "write key", "reading reports needs a read token"),
}


def merchant_of_bearer(cache: KeyCache, metadata: Any, kind: KeyKind) -> str:
    """The merchant of the bearer key in gRPC `metadata` if it is a valid key of `kind`; KeyRefused otherwise."""
    words = _WORDING[kind]
    secret = bearer_token(metadata)
    if secret is None:
        raise KeyRefused(f"missing metadata `authorization: Bearer <{words.noun}>`")
    if not looks_like_secret(secret):
        raise KeyRefused(f"malformed {words.noun}: expected {words.prefix}_<key id>_<secret> as issued by Gnomon")
    key = cache.lookup(secret)
    if key is None:
        raise KeyRefused(f"unknown {words.noun}")
    if key.revoked_at is not None:
        raise KeyRefused(f"{words.noun} {key.key_id} was revoked at {key.revoked_at.isoformat()}; {words.renew}")
    if key.kind is not kind:
        raise KeyRefused(f"key {key.key_id} is a {words.other}; {words.purpose}", denied=True)
    return key.merchant_id
