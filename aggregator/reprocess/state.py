"""Durable state of reprocessing jobs: small JSON documents per (job, item), in the region's engines.

Items a job writes (see `aggregator.reprocess.job`): "spec" (what it does), "phase", "scan/<partition>" (how far
the log scan of a partition got), "day/<merchant>/<day>" (the report of one rebuilt merchant-day), "flip/<merchant>"
(the versions active before the flip, for rollback). Every write is an idempotent overwrite of one item, so a job
killed at any moment resumes from what was written (a re-done step writes the same document again).

Two adapters: `SqliteJobStore` (embedded: `<data_dir>/reprocess.sqlite3`) and `CqlJobStore` (a table in the rollups
keyspace). Both are thread-safe; every call blocks; engine failures raise JobStoreUnavailable.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Final, Protocol

from gnomon.settings import CommonSettings, EngineMode

JOBSTORE_FILE_NAME: Final = "reprocess.sqlite3"
Doc = dict[str, Any]


class JobStoreUnavailable(Exception):
    """The engine holding job state failed; retrying the command resumes the job."""


class JobStore(Protocol):
    """JSON documents per (job_id, item)."""

    def put(self, job_id: str, item: str, doc: Doc) -> None:
        """Store `doc` under (job_id, item), replacing what was there. Durable when it returns."""
        ...

    def get(self, job_id: str, item: str) -> Doc | None:
        """The document of (job_id, item), or None."""
        ...

    def items(self, job_id: str, prefix: str = "") -> dict[str, Doc]:
        """Every item of the job whose name starts with `prefix`, by name."""
        ...

    def jobs(self) -> list[str]:
        """Every job id that has at least one item, sorted."""
        ...

    def close(self) -> None: ...


def _dump(doc: Doc) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


class SqliteJobStore:
    """JobStore on one SQLite file (WAL, synchronous=FULL)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS reprocess_jobs"
                " (job_id TEXT NOT NULL, item TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (job_id, item))"
                " WITHOUT ROWID"
            )
        except sqlite3.Error as exc:
            raise JobStoreUnavailable(f"reprocess job store {path}: {exc}") from exc

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise JobStoreUnavailable(f"reprocess job store {self.path}: {exc}") from exc

    def put(self, job_id: str, item: str, doc: Doc) -> None:
        self._run(
            "INSERT OR REPLACE INTO reprocess_jobs (job_id, item, doc) VALUES (?, ?, ?)", (job_id, item, _dump(doc))
        )

    def get(self, job_id: str, item: str) -> Doc | None:
        rows = self._run("SELECT doc FROM reprocess_jobs WHERE job_id = ? AND item = ?", (job_id, item))
        return dict(json.loads(rows[0][0])) if rows else None

    def items(self, job_id: str, prefix: str = "") -> dict[str, Doc]:
        rows = self._run(
            "SELECT item, doc FROM reprocess_jobs WHERE job_id = ? AND substr(item, 1, ?) = ?",
            (job_id, len(prefix), prefix),
        )
        return {str(item): dict(json.loads(doc)) for item, doc in rows}

    def jobs(self) -> list[str]:
        return [str(r[0]) for r in self._run("SELECT DISTINCT job_id FROM reprocess_jobs ORDER BY job_id", ())]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class CqlJobStore:
    """JobStore in table `reprocess_jobs` of the rollups keyspace: one partition per job, clustered by item."""

    def __init__(self, common: CommonSettings) -> None:
        from gnomon.rollups.cql_engine import CqlEngine
        from gnomon.rollups.errors import RollupError

        self._error_types: tuple[type[Exception], ...] = (RollupError,)
        try:
            self._engine = CqlEngine(common.cql)
            with self._engine.errors("create reprocess_jobs"):
                self._engine.execute(
                    "CREATE TABLE IF NOT EXISTS reprocess_jobs (job_id text, item text, doc text,"
                    " PRIMARY KEY ((job_id), item))"
                )
            p = self._engine.prepare
            self._put = p("INSERT INTO reprocess_jobs (job_id, item, doc) VALUES (?, ?, ?)")
            self._get = p("SELECT doc FROM reprocess_jobs WHERE job_id = ? AND item = ?")
            self._items = p("SELECT item, doc FROM reprocess_jobs WHERE job_id = ? AND item >= ? AND item < ?")
        except RollupError as exc:
            raise JobStoreUnavailable(f"reprocess job store: {exc}") from exc

    def _run(self, what: str, statement: Any, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            with self._engine.errors(what):
                return self._engine.execute(statement, params)
        except self._error_types as exc:
            raise JobStoreUnavailable(f"reprocess job store: {exc}") from exc

    def put(self, job_id: str, item: str, doc: Doc) -> None:
        self._run("put", self._put, (job_id, item, _dump(doc)))

    def get(self, job_id: str, item: str) -> Doc | None:
        rows = self._run("get", self._get, (job_id, item))
        return dict(json.loads(rows[0][0])) if rows else None

    def items(self, job_id: str, prefix: str = "") -> dict[str, Doc]:
        rows = self._run("items", self._items, (job_id, prefix, prefix + "\U0010ffff"))
        return {str(item): dict(json.loads(doc)) for item, doc in rows}

    def jobs(self) -> list[str]:
        return sorted({str(r[0]) for r in self._run("jobs", "SELECT DISTINCT job_id FROM reprocess_jobs")})

    def close(self) -> None:
        self._engine.close()


def open_job_store(common: CommonSettings) -> JobStore:
    """The region's reprocess job store (embedded: a SQLite file under data_dir; real: Cassandra)."""
    if common.engine_mode is EngineMode.REAL:
        return CqlJobStore(common)
    return SqliteJobStore(common.data_dir / JOBSTORE_FILE_NAME)
