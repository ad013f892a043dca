"""Embedded ControlStore adapter: one SQLite file in WAL mode (default: `<data_dir>/control.sqlite3`).

Several processes (the collector, the query service, the `gnomon merchant|key` CLI) may open the same file;
WAL lets readers proceed while one writer commits, and `busy_timeout` makes writers wait instead of failing.
Within one process a single connection is shared behind a lock (control calls are rare and short).
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gnomon.control.port import (
    ApiKey,
    Clock,
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

CONTROL_FILE_NAME = "control.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS merchants (
    merchant_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    currency TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL UNIQUE,
    merchant_id TEXT NOT NULL REFERENCES merchants(merchant_id),
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_by_merchant ON api_keys(merchant_id, created_at_ms, key_id);
"""


def _to_ms(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=(ms % 1000) * 1000)


def _merchant(row: Any) -> Merchant:
    return Merchant(merchant_id=row[0], name=row[1], time_zone=row[2], currency=row[3], created_at=_from_ms(row[4]))


def _key(row: Any) -> ApiKey:
    return ApiKey(
        key_id=row[0],
        merchant_id=row[1],
        kind=KeyKind(row[2]),
        label=row[3],
        created_at=_from_ms(row[4]),
        revoked_at=None if row[5] is None else _from_ms(row[5]),
    )


class SqliteControlStore:
    """ControlStore over one SQLite file. Thread-safe; blocking; raises ControlUnavailable on I/O errors."""

    def __init__(self, path: Path, *, clock: Clock = utc_now_ms, busy_timeout_s: float = 10.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(path), timeout=busy_timeout_s, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise ControlUnavailable(f"cannot open control store {path}: {exc}") from exc

    @property
    def path(self) -> Path:
        return self._path

    def _now(self) -> datetime:
        return truncate_ms(self._clock())

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            with self._lock:
                return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise ControlUnavailable(f"control store {self._path}: {exc}") from exc

    def create_merchant(self, name: str, time_zone: str, currency: str, merchant_id: str | None = None) -> Merchant:
        validate_merchant_fields(name, time_zone, currency, merchant_id or "")
        merchant = Merchant(
            merchant_id=merchant_id or new_merchant_id(),
            name=name.strip(),
            time_zone=time_zone,
            currency=currency,
            created_at=self._now(),
        )
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO merchants VALUES (?, ?, ?, ?, ?)",
                    (
                        merchant.merchant_id,
                        merchant.name,
                        merchant.time_zone,
                        merchant.currency,
                        _to_ms(merchant.created_at),
                    ),
                )
        except sqlite3.IntegrityError:
            raise MerchantExists(f"merchant {merchant.merchant_id!r} already exists") from None
        except sqlite3.Error as exc:
            raise ControlUnavailable(f"control store {self._path}: {exc}") from exc
        return merchant

    def get_merchant(self, merchant_id: str) -> Merchant | None:
        rows = self._query("SELECT * FROM merchants WHERE merchant_id = ?", (merchant_id,))
        return _merchant(rows[0]) if rows else None

    def list_merchants(self) -> list[Merchant]:
        return [_merchant(r) for r in self._query("SELECT * FROM merchants ORDER BY merchant_id")]

    def create_key(self, merchant_id: str, kind: KeyKind, label: str = "") -> CreatedKey:
        validate_label(label)
        if self.get_merchant(merchant_id) is None:
            raise MerchantNotFound(f"merchant {merchant_id!r} does not exist")
        created, secret_hash = new_key(merchant_id, KeyKind(kind), label, self._now())
        k = created.key
        self._query(
            "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
            (k.key_id, secret_hash, k.merchant_id, k.kind.value, k.label, _to_ms(k.created_at)),
        )
        return created

    def list_keys(self, merchant_id: str) -> list[ApiKey]:
        if self.get_merchant(merchant_id) is None:
            raise MerchantNotFound(f"merchant {merchant_id!r} does not exist")
        rows = self._query(
            "SELECT key_id, merchant_id, kind, label, created_at_ms, revoked_at_ms FROM api_keys"
            " WHERE merchant_id = ? ORDER BY created_at_ms, key_id",
            (merchant_id,),
        )
        return [_key(r) for r in rows]

    def revoke_key(self, key_id: str) -> ApiKey:
        revoked_ms = _to_ms(self._now())
        self._query(
            "UPDATE api_keys SET revoked_at_ms = ? WHERE key_id = ? AND revoked_at_ms IS NULL",
            (revoked_ms, key_id),
        )
        rows = self._query(
            "SELECT key_id, merchant_id, kind, label, created_at_ms, revoked_at_ms FROM api_keys WHERE key_id = ?",
            (key_id,),
        )
        if not rows:
            raise KeyNotFound(f"key {key_id!r} does not exist")
        return _key(rows[0])

    def lookup_secret(self, secret: str) -> ApiKey | None:
        rows = self._query(
            "SELECT key_id, merchant_id, kind, label, created_at_ms, revoked_at_ms FROM api_keys WHERE secret_hash = ?",
            (hash_secret(secret),),
        )
        return _key(rows[0]) if rows else None

    def resolve(self, secret: str) -> ResolvedKey | None:
        return resolution_of(self.lookup_secret(secret))

    def close(self) -> None:
        with self._lock:
            self._db.close()
