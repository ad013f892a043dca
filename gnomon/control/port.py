"""The ControlStore port: merchants and their API keys (write keys, read tokens).

Control data is small, rarely written and read on every authenticated call (through the callers' caches).
Two adapters implement this port and one contract suite (tests/contract/test_control_contract.py) runs
against both: `SqliteControlStore` (embedded, one file) and `CqlControlStore` (Scylla/Cassandra).

Secrets: a key's secret is shown exactly once (`CreatedKey.secret`) and only `sha256(secret)` is stored.
Secrets carry 256 bits of randomness from `secrets`, so a fast hash is enough: there is no password to
brute-force, and a slow KDF would only cost time on every cache miss of every authenticated call.

All timestamps are UTC-aware and truncated to milliseconds (the precision of a CQL `timestamp`), so both
adapters return identical values.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple, Protocol

Clock = Callable[[], datetime]

MERCHANT_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{2,39}")
CURRENCY_RE = re.compile(r"[A-Z]{3}")
MAX_NAME_CHARS = 200
MAX_LABEL_CHARS = 200
SECRET_PREFIXES = {"write": "gn_w_", "read": "gn_r_"}


class ControlError(Exception):
    """Base class of every error a ControlStore raises on purpose."""


class ControlInvalid(ControlError, ValueError):
    """An argument is malformed; the message names it and says what is accepted."""


class MerchantExists(ControlError):
    """A merchant with this id already exists."""


class MerchantNotFound(ControlError, LookupError):
    """No merchant has this id."""


class KeyNotFound(ControlError, LookupError):
    """No key has this id."""


class ControlUnavailable(ControlError):
    """The engine behind the store cannot be reached or timed out; retrying later may succeed."""


class KeyKind(StrEnum):
    """What a key may do: WRITE sends events (collector), READ reads reports (query service)."""

    WRITE = "write"
    READ = "read"


@dataclass(frozen=True)
class Merchant:
    merchant_id: str
    name: str
    time_zone: str  # IANA zone, fixed at creation
    currency: str  # ISO 4217 code, 3 uppercase letters
    created_at: datetime


@dataclass(frozen=True)
class ApiKey:
    """A key as stored: never its secret, only its id and metadata."""

    key_id: str
    merchant_id: str
    kind: KeyKind
    label: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class CreatedKey:
    """A new key and its secret; the secret exists only in this object, it is not retrievable later."""

    key: ApiKey
    secret: str


class ResolvedKey(NamedTuple):
    merchant_id: str
    kind: KeyKind


class ControlStore(Protocol):
    """Merchants and keys. Every method blocks on the engine; every method may raise ControlUnavailable.

    Implementations are safe to call from many threads.
    """

    def create_merchant(self, name: str, time_zone: str, currency: str, merchant_id: str | None = None) -> Merchant:
        """Create a merchant; a random id is generated when `merchant_id` is None or empty.

        Raises ControlInvalid for a bad name/zone/currency/id and MerchantExists for a taken id.
        """
        ...

    def get_merchant(self, merchant_id: str) -> Merchant | None:
        """The merchant, or None when unknown."""
        ...

    def list_merchants(self) -> list[Merchant]:
        """All merchants, ordered by id."""
        ...

    def create_key(self, merchant_id: str, kind: KeyKind, label: str = "") -> CreatedKey:
        """Create a key; the result holds the only copy of its secret. Raises MerchantNotFound."""
        ...

    def list_keys(self, merchant_id: str) -> list[ApiKey]:
        """The merchant's keys, active and revoked, by (created_at, key_id). Raises MerchantNotFound."""
        ...

    def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke a key (idempotent: a second call keeps the first revoked_at). Raises KeyNotFound."""
        ...

    def lookup_secret(self, secret: str) -> ApiKey | None:
        """The key whose secret this is, revoked or not; None when no key matches. One point read."""
        ...

    def resolve(self, secret: str) -> ResolvedKey | None:
        """(merchant_id, kind) of the active key with this secret; None when unknown or revoked."""
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


def utc_now_ms() -> datetime:
    """The current UTC time truncated to milliseconds."""
    return truncate_ms(datetime.now(UTC))


def truncate_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def hash_secret(secret: str) -> bytes:
    """sha256 of the secret's UTF-8 bytes: what the stores keep and look keys up by."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_merchant_fields(name: str, time_zone: str, currency: str, merchant_id: str) -> None:
    """Raise ControlInvalid naming the first bad field; `merchant_id` "" means "generate one"."""
    if not name.strip():
        raise ControlInvalid("name is required")
    if len(name) > MAX_NAME_CHARS:
        raise ControlInvalid(f"name must be at most {MAX_NAME_CHARS} characters")
    if time_zone not in _zones():
        raise ControlInvalid(
            f"time_zone {time_zone!r} is not an IANA time zone name (e.g. Europe/Berlin, Asia/Kolkata, UTC)"
        )
    if not CURRENCY_RE.fullmatch(currency):
        raise ControlInvalid(f"currency {currency!r} must be an ISO 4217 code: 3 uppercase letters, e.g. EUR")
    if merchant_id and not MERCHANT_ID_RE.fullmatch(merchant_id):
        raise ControlInvalid(
            f"merchant_id {merchant_id!r} must match [a-z0-9][a-z0-9-]{{2,39}} (3-40 lowercase letters, digits, '-')"
        )


def validate_label(label: str) -> None:
    if len(label) > MAX_LABEL_CHARS:
        raise ControlInvalid(f"label must be at most {MAX_LABEL_CHARS} characters")


def new_merchant_id() -> str:
    return "m" + secrets.token_hex(6)


def new_key(merchant_id: str, kind: KeyKind, label: str, now: datetime) -> tuple[CreatedKey, bytes]:
    """A fresh key, its one-time secret `gn_<w|r>_<key_id>_<43 url-safe chars>` and the secret's hash."""
    key_id = secrets.token_hex(8)
    secret = f"{SECRET_PREFIXES[kind.value]}{key_id}_{secrets.token_urlsafe(32)}"
    key = ApiKey(key_id=key_id, merchant_id=merchant_id, kind=kind, label=label, created_at=now)
    return CreatedKey(key=key, secret=secret), hash_secret(secret)


def looks_like_secret(secret: str) -> bool:
    """Cheap shape check done before any store lookup (junk never reaches the engine)."""
    return 20 <= len(secret) <= 128 and secret.startswith(("gn_w_", "gn_r_"))


def resolution_of(key: ApiKey | None) -> ResolvedKey | None:
    """What `resolve` answers for a looked-up key: None unless it exists and is active."""
    if key is None or key.revoked_at is not None:
        return None
    return ResolvedKey(key.merchant_id, key.kind)
