"""One contract suite for the ControlStore port, run against the SQLite and the CQL adapter.

The CQL run uses one fresh keyspace per test session (dropped at the end); tests stay independent by using
their own random merchant ids.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gnomon.control import (
    ControlInvalid,
    ControlStore,
    ControlUnavailable,
    KeyKind,
    KeyNotFound,
    MerchantExists,
    MerchantNotFound,
    ResolvedKey,
    SqliteControlStore,
)
from gnomon.control.cql_store import CqlControlStore
from gnomon.control.port import MERCHANT_ID_RE, hash_secret, truncate_ms
from tests.conftest import RealEngines

SECRET_RE = re.compile(r"gn_([wr])_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")


@pytest.fixture(scope="module")
def cql_store(real_engines: RealEngines) -> Iterator[ControlStore]:
    cql = real_engines.settings.cql
    keyspace = f"gnomon_control_test_{uuid.uuid4().hex[:10]}"
    store = CqlControlStore(replace(cql, replication_factor=1), keyspace=keyspace)
    try:
        yield store
    finally:
        store.drop_keyspace()
        store.close()


@pytest.fixture(params=["sqlite", pytest.param("cql", marks=pytest.mark.engines)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ControlStore]:
    if request.param == "cql":
        yield request.getfixturevalue("cql_store")
        return
    sqlite = SqliteControlStore(tmp_path / "control.sqlite3")
    try:
        yield sqlite
    finally:
        sqlite.close()


def _mid() -> str:
    return "t" + uuid.uuid4().hex[:12]


def _now_ms() -> datetime:
    return truncate_ms(datetime.now(UTC))


def test_create_and_get_merchant(store: ControlStore) -> None:
    before = _now_ms()
    m = store.create_merchant("Shop One", "Asia/Kolkata", "INR", merchant_id=(mid := _mid()))
    after = _now_ms()
    assert (m.merchant_id, m.name, m.time_zone, m.currency) == (mid, "Shop One", "Asia/Kolkata", "INR")
    assert before <= m.created_at <= after
    assert m.created_at.tzinfo is not None
    assert m.created_at.microsecond % 1000 == 0
    assert store.get_merchant(mid) == m


def test_generated_merchant_id(store: ControlStore) -> None:
    m = store.create_merchant("Gen", "UTC", "EUR")
    assert MERCHANT_ID_RE.fullmatch(m.merchant_id)
    assert store.get_merchant(m.merchant_id) == m


def test_unknown_merchant_is_none(store: ControlStore) -> None:
    assert store.get_merchant(_mid()) is None


def test_duplicate_merchant_id_refused(store: ControlStore) -> None:
    mid = _mid()
    store.create_merchant("A", "UTC", "EUR", merchant_id=mid)
    with pytest.raises(MerchantExists):
        store.create_merchant("B", "UTC", "USD", merchant_id=mid)
    merchant = store.get_merchant(mid)
    assert merchant is not None
    assert merchant.name == "A"


def test_concurrent_creators_of_one_id_exactly_one_wins(store: ControlStore) -> None:
    mid = _mid()
    outcomes: list[str] = []
    gate = threading.Barrier(6)

    def create(name: str) -> None:
        gate.wait()
        try:
            store.create_merchant(name, "UTC", "EUR", merchant_id=mid)
            outcomes.append(name)
        except MerchantExists:
            outcomes.append("exists")
        except ControlUnavailable:  # a timed-out transaction may or may not have applied: the read below decides
            outcomes.append("unknown")

    names = [f"shop {i}" for i in range(6)]
    threads = [threading.Thread(target=create, args=(name,)) for name in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o in names]
    assert len(outcomes) == 6 and len(winners) <= 1
    assert len(winners) == 1 or "unknown" in outcomes
    merchant = store.get_merchant(mid)
    assert merchant is not None and merchant.name == (winners[0] if winners else merchant.name)
    assert merchant.name in names


@pytest.mark.parametrize(
    ("name", "tz", "currency", "mid", "mentions"),
    [
        ("", "UTC", "EUR", "", "name"),
        ("x" * 201, "UTC", "EUR", "", "name"),
        ("A", "Mars/Olympus", "EUR", "", "time_zone"),
        ("A", "../../etc/passwd", "EUR", "", "time_zone"),
        ("A", "", "EUR", "", "time_zone"),
        ("A", "UTC", "eur", "", "currency"),
        ("A", "UTC", "EURO", "", "currency"),
        ("A", "UTC", "EUR", "UPPER", "merchant_id"),
        ("A", "UTC", "EUR", "ab", "merchant_id"),
        ("A", "UTC", "EUR", "-abc", "merchant_id"),
    ],
)
def test_invalid_merchant_fields(
    store: ControlStore, name: str, tz: str, currency: str, mid: str, mentions: str
) -> None:
    with pytest.raises(ControlInvalid, match=mentions):
        store.create_merchant(name, tz, currency, merchant_id=mid or None)


def test_list_merchants_sorted_and_complete(store: ControlStore) -> None:
    ids = sorted(_mid() for _ in range(3))
    for mid in reversed(ids):
        store.create_merchant(f"name {mid}", "Europe/Berlin", "EUR", merchant_id=mid)
    listed = [m.merchant_id for m in store.list_merchants()]
    assert listed == sorted(listed)
    assert set(ids) <= set(listed)


@pytest.mark.parametrize("kind", [KeyKind.WRITE, KeyKind.READ])
def test_create_key_and_resolve(store: ControlStore, kind: KeyKind) -> None:
    mid = store.create_merchant("K", "UTC", "EUR").merchant_id
    created = store.create_key(mid, kind, label="web")
    match = SECRET_RE.fullmatch(created.secret)
    assert match is not None
    assert match.group(1) == kind.value[0]
    assert match.group(2) == created.key.key_id
    assert created.key.merchant_id == mid
    assert created.key.kind is kind
    assert created.key.label == "web"
    assert created.key.revoked_at is None
    assert store.resolve(created.secret) == ResolvedKey(mid, kind)
    assert store.lookup_secret(created.secret) == created.key


def test_unknown_secret_resolves_to_none(store: ControlStore) -> None:
    mid = store.create_merchant("K", "UTC", "EUR").merchant_id
    secret = store.create_key(mid, KeyKind.WRITE).secret
    assert store.resolve(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert store.lookup_secret("gn_w_0000000000000000_" + "x" * 43) is None


def test_key_for_unknown_merchant_refused(store: ControlStore) -> None:
    with pytest.raises(MerchantNotFound):
        store.create_key(_mid(), KeyKind.WRITE)
    with pytest.raises(MerchantNotFound):
        store.list_keys(_mid())


def test_list_keys_in_creation_order_and_scoped(store: ControlStore) -> None:
    a = store.create_merchant("A", "UTC", "EUR").merchant_id
    b = store.create_merchant("B", "UTC", "EUR").merchant_id
    made = [store.create_key(a, KeyKind.WRITE, label=str(i)).key for i in range(3)]
    store.create_key(b, KeyKind.READ)
    listed = store.list_keys(a)
    assert sorted(listed, key=lambda k: (k.created_at, k.key_id)) == listed
    assert {k.key_id for k in listed} == {k.key_id for k in made}
    assert all(k.merchant_id == a for k in listed)
    assert store.list_keys(store.create_merchant("C", "UTC", "EUR").merchant_id) == []


def test_revoke(store: ControlStore) -> None:
    mid = store.create_merchant("R", "UTC", "EUR").merchant_id
    created = store.create_key(mid, KeyKind.WRITE)
    keep = store.create_key(mid, KeyKind.WRITE)
    revoked = store.revoke_key(created.key.key_id)
    assert revoked.revoked_at is not None
    assert revoked.revoked_at >= created.key.created_at
    assert store.resolve(created.secret) is None
    looked_up = store.lookup_secret(created.secret)
    assert looked_up is not None
    assert looked_up.revoked_at == revoked.revoked_at
    assert store.resolve(keep.secret) == ResolvedKey(mid, KeyKind.WRITE)
    by_id = {k.key_id: k for k in store.list_keys(mid)}
    assert by_id[created.key.key_id].revoked_at == revoked.revoked_at
    assert by_id[keep.key.key_id].revoked_at is None
    again = store.revoke_key(created.key.key_id)
    assert again.revoked_at == revoked.revoked_at


def test_revoke_unknown_key(store: ControlStore) -> None:
    with pytest.raises(KeyNotFound):
        store.revoke_key("0000000000000000")


def test_only_the_hash_is_stored(store: ControlStore, tmp_path: Path) -> None:
    mid = store.create_merchant("H", "UTC", "EUR").merchant_id
    created = store.create_key(mid, KeyKind.WRITE)
    random_part = created.secret.rsplit("_", 1)[1]
    if isinstance(store, SqliteControlStore):
        store.close()
        raw = b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))
        assert hash_secret(created.secret) in raw
    else:
        session = store._session  # type: ignore[attr-defined]
        rows = []
        for table in ("control_keys_by_hash", "control_keys_by_id", "control_keys_by_merchant"):
            rows += [repr(tuple(r)) for r in session.execute(f"SELECT * FROM {table}")]
        raw = "\n".join(rows).encode()
        assert created.key.key_id.encode() in raw
    assert random_part.encode() not in raw
    assert created.secret.encode() not in raw


def test_concurrent_resolves(store: ControlStore) -> None:
    mid = store.create_merchant("C", "UTC", "EUR").merchant_id
    secrets_ = [store.create_key(mid, KeyKind.WRITE).secret for _ in range(4)]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                for s in secrets_:
                    assert store.resolve(s) == ResolvedKey(mid, KeyKind.WRITE)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "control.sqlite3"
    first = SqliteControlStore(path)
    m = first.create_merchant("P", "America/New_York", "USD")
    created = first.create_key(m.merchant_id, KeyKind.READ)
    first.close()
    second = SqliteControlStore(path)
    try:
        assert second.get_merchant(m.merchant_id) == m
        assert second.resolve(created.secret) == ResolvedKey(m.merchant_id, KeyKind.READ)
        mode = second._query("PRAGMA journal_mode")[0][0]
        assert mode == "wal"
    finally:
        second.close()
