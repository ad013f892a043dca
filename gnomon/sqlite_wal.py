"""One SQLite file in WAL mode shared by threads: a single write connection behind a lock, one autocommit
read connection per thread, and a versioned schema created on open. The embedded adapters build on it.

Contracts: every method blocks; `transaction` serializes writers in-process (BEGIN IMMEDIATE also across
processes, waiting up to BUSY_TIMEOUT_MS for another writer); readers never block writers (WAL). Failures to
open, a newer schema, or use after `close` raise the `unavailable` exception type given by the owner.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 30_000
SYNCHRONOUS_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})


class WalDatabase:
    """Connections to one SQLite file holding `schema` (statements separated by ';', each idempotent, e.g.
    CREATE TABLE IF NOT EXISTS) at version `schema_version` (PRAGMA user_version).

    `what` names the file in errors ("rollup store", "event store"); `page_size` applies only when the file is
    created. `upgrade(conn, found)` brings a file of an older schema version `found` (>= 1) up to date: it runs
    inside the transaction that creates the schema, after the statements, so a failed upgrade changes nothing.
    Raises ValueError for an unknown `synchronous` mode; `unavailable` when the file cannot be opened or was
    written by a newer schema version.
    """

    def __init__(
        self,
        path: Path,
        *,
        schema: str,
        schema_version: int,
        what: str,
        unavailable: type[Exception],
        synchronous: str = "FULL",
        page_size: int = 16384,
        upgrade: Callable[[sqlite3.Connection, int], None] | None = None,
    ) -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.path = path
        self._what = what
        self._unavailable = unavailable
        self._synchronous = synchronous
        self._write_lock = threading.Lock()
        self._readers_lock = threading.Lock()
        self._readers: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._closed = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect()
            self._create_schema(schema, schema_version, page_size, upgrade)
        except (OSError, sqlite3.Error) as exc:
            raise unavailable(f"cannot open {what} {path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn

    def _create_schema(
        self,
        schema: str,
        schema_version: int,
        page_size: int,
        upgrade: Callable[[sqlite3.Connection, int], None] | None,
    ) -> None:
        conn = self._writer
        conn.execute(f"PRAGMA page_size = {int(page_size)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise self._unavailable(f"{self.path}: cannot switch to WAL journal mode (got {mode})")
        with self.transaction() as tx:
            found = tx.execute("PRAGMA user_version").fetchone()[0]
            if found > schema_version:
                raise self._unavailable(
                    f"{self.path} has {self._what} schema {found}; this Gnomon knows up to {schema_version}: upgrade it"
                )
            for statement in schema.split(";"):  # not executescript: it would COMMIT the transaction
                if statement.strip():
                    tx.execute(statement)
            if 0 < found < schema_version and upgrade is not None:
                upgrade(tx, found)
            tx.execute(f"PRAGMA user_version = {int(schema_version)}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The write connection inside BEGIN IMMEDIATE; commits on success, rolls back on any exception.
        sqlite3.Error propagates unchanged (the owner maps it)."""
        with self._write_lock:
            if self._closed:
                raise self._unavailable(f"the {self._what} is closed")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (autocommit: each statement sees the latest committed state)."""
        if self._closed:
            raise self._unavailable(f"the {self._what} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            with self._readers_lock:
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close every connection; idempotent. Later calls raise `unavailable`."""
        with self._write_lock, self._readers_lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._writer.close()
