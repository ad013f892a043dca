"""Write-key authentication and its TTL cache, over a real SQLite control store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector_svc.auth import authenticate
from collector_svc.errors import PermissionDenied, Unauthenticated
from gnomon.control import ApiKey, KeyKind, SqliteControlStore
from gnomon.control.key_cache import KeyCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingStore(SqliteControlStore):
    lookups = 0

    def lookup_secret(self, secret: str) -> ApiKey | None:
        self.lookups += 1
        return super().lookup_secret(secret)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    s = CountingStore(tmp_path / "control.sqlite3")
    yield s
    s.close()


def meta(secret: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {secret}")]


def test_write_key_authenticates_its_merchant(store: CountingStore) -> None:
    mid = store.create_merchant("A", "UTC", "EUR").merchant_id
    secret = store.create_key(mid, KeyKind.WRITE).secret
    assert authenticate(KeyCache(store, ttl_s=30), meta(secret)) == mid


@pytest.mark.parametrize(
    ("metadata", "mentions"),
    [
        ([], "missing"),
        ([("authorization", "Basic abc")], "missing"),
        ([("authorization", "Bearer short")], "malformed"),
        ([("authorization", "Bearer gn_w_0000000000000000_" + "x" * 43)], "unknown"),
    ],
)
def test_refused(store: CountingStore, metadata: list[tuple[str, str]], mentions: str) -> None:
    with pytest.raises(Unauthenticated, match=mentions):
        authenticate(KeyCache(store, ttl_s=30), metadata)


def test_read_key_is_permission_denied(store: CountingStore) -> None:
    mid = store.create_merchant("A", "UTC", "EUR").merchant_id
    secret = store.create_key(mid, KeyKind.READ).secret
    with pytest.raises(PermissionDenied, match="read key"):
        authenticate(KeyCache(store, ttl_s=30), meta(secret))


def test_revocation_visible_after_ttl(store: CountingStore) -> None:
    clock = Clock()
    cache = KeyCache(store, ttl_s=30, monotonic=clock)
    mid = store.create_merchant("A", "UTC", "EUR").merchant_id
    created = store.create_key(mid, KeyKind.WRITE)
    assert authenticate(cache, meta(created.secret)) == mid
    store.revoke_key(created.key.key_id)
    assert authenticate(cache, meta(created.secret)) == mid  # cached
    clock.now = 31
    with pytest.raises(Unauthenticated, match="revoked"):
        authenticate(cache, meta(created.secret))


def test_cache_hits_and_negative_caching(store: CountingStore) -> None:
    cache = KeyCache(store, ttl_s=30, monotonic=Clock())
    mid = store.create_merchant("A", "UTC", "EUR").merchant_id
    secret = store.create_key(mid, KeyKind.WRITE).secret
    unknown = "gn_w_0000000000000000_" + "y" * 43
    for _ in range(5):
        cache.lookup(secret)
        cache.lookup(unknown)
    assert store.lookups == 2


def test_cache_is_bounded(store: CountingStore) -> None:
    cache = KeyCache(store, ttl_s=30, max_entries=3, monotonic=Clock())
    for i in range(10):
        cache.lookup(f"gn_w_{i:016d}_" + "z" * 43)
    assert len(cache._entries) == 3
