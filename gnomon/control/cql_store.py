"""ControlStore adapter over Scylla/Cassandra (scylla-driver), shaped for ScyllaDB.

Schema (in the keyspace of `CqlSettings`, NetworkTopologyStrategy {local_datacenter: replication_factor}):

- `control_merchants` keyed by merchant_id: get = one partition; list = a paged token-range scan (an
  operator's command, not a serving path).
- `control_keys_by_hash` keyed by the sha256 of the secret: authenticating a call is one single-partition
  read.
- `control_keys_by_id` keyed by key_id: revoke finds the key's hash and merchant with one read.
- `control_keys_by_merchant` partitioned by merchant_id, clustered by key_id: listing a merchant's keys is
  one partition (bounded: a merchant has few keys).

The three key tables are written together in a LOGGED batch, so they converge even if the writer dies
halfway. No LWT, no counters, no ALLOW FILTERING. Without LWT, "create merchant with an explicit id" is
read-then-write: two operators racing on the same new id end with the last write; generated ids are random
and never race.
Every statement is prepared once and runs at the consistency level of the settings.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from cassandra import ConsistencyLevel, DriverException
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import BatchStatement, BatchType

from gnomon.control.port import (
    ApiKey,
    Clock,
    ControlInvalid,
    ControlUnavailable,
    CreatedKey,
    KeyKind,
    KeyNotFound,
    Merchant,
    MerchantExists,
    MerchantNotFound,
    ResolvedKey,
    hash_secret,
    new_key,
    new_merchant_id,
    resolution_of,
    truncate_ms,
    utc_now_ms,
    validate_label,
    validate_merchant_fields,
)
from gnomon.settings import CqlSettings

KEYSPACE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")
DATACENTER_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}")

_TABLES = (
    """CREATE TABLE IF NOT EXISTS control_merchants (
        merchant_id text PRIMARY KEY, name text, time_zone text, currency text, created_at timestamp)""",
    """CREATE TABLE IF NOT EXISTS control_keys_by_hash (
        secret_hash blob PRIMARY KEY, key_id text, merchant_id text, kind text, label text,
        created_at timestamp, revoked_at timestamp)""",
    """CREATE TABLE IF NOT EXISTS control_keys_by_id (
        key_id text PRIMARY KEY, secret_hash blob, merchant_id text, kind text, label text,
        created_at timestamp, revoked_at timestamp)""",
    """CREATE TABLE IF NOT EXISTS control_keys_by_merchant (
        merchant_id text, key_id text, kind text, label text, created_at timestamp, revoked_at timestamp,
        PRIMARY KEY (merchant_id, key_id))""",
)


def _utc(value: datetime | None) -> datetime | None:
    """The driver returns naive UTC datetimes for `timestamp` columns."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _key(row: Any) -> ApiKey:
    created = _utc(row.created_at)
    assert created is not None
    return ApiKey(
        key_id=row.key_id,
        merchant_id=row.merchant_id,
        kind=KeyKind(row.kind),
        label=row.label or "",
        created_at=created,
        revoked_at=_utc(row.revoked_at),
    )


def _merchant(row: Any) -> Merchant:
    created = _utc(row.created_at)
    assert created is not None
    return Merchant(row.merchant_id, row.name, row.time_zone, row.currency, created)


class CqlControlStore:
    """ControlStore over a CQL session. Thread-safe (the driver's session is); every call blocks.

    Raises ControlUnavailable when the cluster cannot answer (no host, timeout, not enough replicas).
    """

    def __init__(
        self,
        cql: CqlSettings,
        *,
        keyspace: str | None = None,
        clock: Clock = utc_now_ms,
        request_timeout_s: float = 10.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self._keyspace = keyspace or cql.keyspace
        if not KEYSPACE_RE.fullmatch(self._keyspace):
            raise ControlInvalid(f"CQL keyspace {self._keyspace!r} must match {KEYSPACE_RE.pattern}")
        if not DATACENTER_RE.fullmatch(cql.local_datacenter):
            raise ControlInvalid(f"CQL datacenter {cql.local_datacenter!r} must match {DATACENTER_RE.pattern}")
        self._clock = clock
        self._cl = ConsistencyLevel.name_to_value[cql.consistency.value]
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=cql.local_datacenter)),
            consistency_level=self._cl,
            request_timeout=request_timeout_s,
        )
        self._cluster = Cluster(
            list(cql.contact_points),
            port=cql.port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=connect_timeout_s,
        )
        try:
            self._session: Session = self._cluster.connect()
            self._create_schema(cql)
            self._prepare()
        except (NoHostAvailable, DriverException) as exc:
            self._cluster.shutdown()
            raise ControlUnavailable(f"cannot reach CQL at {cql.contact_points}:{cql.port}: {exc}") from exc

    @property
    def keyspace(self) -> str:
        return self._keyspace

    def _create_schema(self, cql: CqlSettings) -> None:
        self._session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {self._keyspace} WITH replication = "
            f"{{'class': 'NetworkTopologyStrategy', '{cql.local_datacenter}': {cql.replication_factor}}}"
        )
        self._session.set_keyspace(self._keyspace)
        for ddl in _TABLES:
            self._session.execute(ddl)

    def _prepare(self) -> None:
        p = self._session.prepare
        self._ins_merchant = p(
            "INSERT INTO control_merchants (merchant_id, name, time_zone, currency, created_at) VALUES (?, ?, ?, ?, ?)"
            " IF NOT EXISTS"  # a lightweight transaction: two creators of one id cannot both succeed
        )
        self._get_merchant = p("SELECT * FROM control_merchants WHERE merchant_id = ?")
        self._all_merchants = p("SELECT * FROM control_merchants")
        self._ins_by_hash = p(
            "INSERT INTO control_keys_by_hash (secret_hash, key_id, merchant_id, kind, label, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)"
        )
        self._ins_by_id = p(
            "INSERT INTO control_keys_by_id (key_id, secret_hash, merchant_id, kind, label, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)"
        )
        self._ins_by_merchant = p(
            "INSERT INTO control_keys_by_merchant (merchant_id, key_id, kind, label, created_at) VALUES (?, ?, ?, ?, ?)"
        )
        self._get_by_hash = p(
            "SELECT key_id, merchant_id, kind, label, created_at, revoked_at FROM control_keys_by_hash"
            " WHERE secret_hash = ?"
        )
        self._get_by_id = p(
            "SELECT key_id, merchant_id, kind, label, created_at, revoked_at, secret_hash"
            " FROM control_keys_by_id WHERE key_id = ?"
        )
        self._get_by_merchant = p(
            "SELECT key_id, merchant_id, kind, label, created_at, revoked_at"
            " FROM control_keys_by_merchant WHERE merchant_id = ?"
        )
        self._revoke_by_hash = p("UPDATE control_keys_by_hash SET revoked_at = ? WHERE secret_hash = ?")
        self._revoke_by_id = p("UPDATE control_keys_by_id SET revoked_at = ? WHERE key_id = ?")
        self._revoke_by_merchant = p(
            "UPDATE control_keys_by_merchant SET revoked_at = ? WHERE merchant_id = ? AND key_id = ?"
        )

    def _run(self, statement: Any, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return list(self._session.execute(statement, params))
        except (NoHostAvailable, DriverException) as exc:
            raise ControlUnavailable(f"CQL control store: {exc}") from exc

    def _batch(self, *items: tuple[Any, tuple[Any, ...]]) -> None:
        batch = BatchStatement(batch_type=BatchType.LOGGED, consistency_level=self._cl)
        for statement, params in items:
            batch.add(statement, params)
        self._run(batch)

    def _now(self) -> datetime:
        return truncate_ms(self._clock())

    def create_merchant(self, name: str, time_zone: str, currency: str, merchant_id: str | None = None) -> Merchant:
        validate_merchant_fields(name, time_zone, currency, merchant_id or "")
        mid = merchant_id or new_merchant_id()
        merchant = Merchant(mid, name.strip(), time_zone, currency, self._now())
        [outcome] = self._run(self._ins_merchant, (mid, merchant.name, time_zone, currency, merchant.created_at))
        if not outcome[0]:  # [applied] is false: the id was taken
            raise MerchantExists(f"merchant {mid!r} already exists")
        return merchant

    def get_merchant(self, merchant_id: str) -> Merchant | None:
        rows = self._run(self._get_merchant, (merchant_id,))
        return _merchant(rows[0]) if rows else None

    def list_merchants(self) -> list[Merchant]:
        return sorted((_merchant(r) for r in self._run(self._all_merchants)), key=lambda m: m.merchant_id)

    def create_key(self, merchant_id: str, kind: KeyKind, label: str = "") -> CreatedKey:
        validate_label(label)
        if self.get_merchant(merchant_id) is None:
            raise MerchantNotFound(f"merchant {merchant_id!r} does not exist")
        created, h = new_key(merchant_id, KeyKind(kind), label, self._now())
        k = created.key
        self._batch(
            (self._ins_by_hash, (h, k.key_id, merchant_id, k.kind.value, label, k.created_at)),
            (self._ins_by_id, (k.key_id, h, merchant_id, k.kind.value, label, k.created_at)),
            (self._ins_by_merchant, (merchant_id, k.key_id, k.kind.value, label, k.created_at)),
        )
        return created

    def list_keys(self, merchant_id: str) -> list[ApiKey]:
        if self.get_merchant(merchant_id) is None:
            raise MerchantNotFound(f"merchant {merchant_id!r} does not exist")
        keys = [_key(r) for r in self._run(self._get_by_merchant, (merchant_id,))]
        return sorted(keys, key=lambda k: (k.created_at, k.key_id))

    def revoke_key(self, key_id: str) -> ApiKey:
        rows = self._run(self._get_by_id, (key_id,))
        if not rows:
            raise KeyNotFound(f"key {key_id!r} does not exist")
        key = _key(rows[0])
        if key.revoked_at is not None:
            return key
        now = self._now()
        self._batch(
            (self._revoke_by_hash, (now, rows[0].secret_hash)),
            (self._revoke_by_id, (now, key_id)),
            (self._revoke_by_merchant, (now, key.merchant_id, key_id)),
        )
        return ApiKey(key.key_id, key.merchant_id, key.kind, key.label, key.created_at, now)

    def lookup_secret(self, secret: str) -> ApiKey | None:
        rows = self._run(self._get_by_hash, (hash_secret(secret),))
        return _key(rows[0]) if rows else None

    def resolve(self, secret: str) -> ResolvedKey | None:
        return resolution_of(self.lookup_secret(secret))

    def drop_keyspace(self) -> None:
        """Delete this store's keyspace and everything in it (tests use one keyspace per run)."""
        self._run(f"DROP KEYSPACE IF EXISTS {self._keyspace}")

    def close(self) -> None:
        self._cluster.shutdown()
