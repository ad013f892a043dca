"""A consumer-group member of the embedded event log (one active member per group; see `embedded`)."""

from __future__ import annotations

import fcntl
import sqlite3
import time
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

from gnomon.eventlog.port import LogUnavailable, Record, Stream
from gnomon.eventlog.sqlite_schema import SELECT_CURSORS, UPSERT_CURSOR, now_us, rollback, row_to_record

if TYPE_CHECKING:
    from gnomon.eventlog.embedded import EmbeddedEventLog


class EmbeddedConsumer:
    """A consumer-group member on the embedded log (the single-active rule is in `gnomon.eventlog.embedded`).

    Not thread-safe; use it from one thread at a time.
    """

    def __init__(self, event_log: EmbeddedEventLog, stream: Stream, group: str) -> None:
        self._log = event_log
        self.stream = stream
        self.group = group
        self._n = event_log.partition_count(stream)
        self._sql = [event_log.table_sql(stream, p) for p in range(self._n)]
        try:
            self._conn = event_log.connect()
        except sqlite3.Error as exc:
            raise LogUnavailable(f"cannot join group {group!r} on {event_log.path}: {exc}") from exc
        lock_path = event_log.directory / "groups" / f"{stream.value}.{group}.lock"
        try:
            self._lock_file: IO[bytes] = open(lock_path, "a+b")  # noqa: SIM115 - held for the consumer's life
        except OSError as exc:
            self._conn.close()
            raise LogUnavailable(f"cannot open the lock file of group {group!r}: {exc}") from exc
        self._active = False
        self._closed = False
        self._committed = [0] * self._n  # highest committed seq per partition
        self._delivered = [0] * self._n  # highest seq handed out by poll per partition
        self._next_partition = 0
        self._idle_version: int | None = None  # data_version when a fetch last found nothing
        self._last_lag = 0

    @property
    def active(self) -> bool:
        """Whether this member currently owns the group (holds the lock)."""
        return self._active

    def _try_activate(self) -> bool:
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as exc:
            raise LogUnavailable(f"locking group {self.group!r}: {exc}") from exc
        try:
            self._committed = self._read_committed()
        except sqlite3.Error as exc:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            raise LogUnavailable(f"reading cursors of group {self.group!r}: {exc}") from exc
        self._delivered = list(self._committed)
        self._idle_version = None
        self._active = True
        return True

    def _read_committed(self) -> list[int]:
        committed = [0] * self._n
        rows = self._conn.execute(SELECT_CURSORS, (self.stream.value, self.group))
        for part, seq in rows:
            if 0 <= part < self._n:
                committed[part] = int(seq)
        return committed

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """See `LogConsumer.poll`; checks for new rows every `poll_interval_s` while waiting."""
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records}")
        if self._closed:
            raise LogUnavailable("the consumer is closed")
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            if self._active or self._try_activate():
                records = self._fetch(max_records)
                if records:
                    return records
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            time.sleep(min(self._log.poll_interval_s, remaining))

    def _fetch(self, max_records: int) -> list[Record]:
        try:
            version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            if version == self._idle_version:
                return []  # nothing committed by anyone since the last empty fetch
            out: list[Record] = []
            start = self._next_partition
            self._next_partition = (start + 1) % self._n
            for i in range(self._n):
                want = max_records - len(out)
                if want <= 0:
                    break
                p = (start + i) % self._n
                rows = self._conn.execute(self._sql[p].after, (self._delivered[p], want)).fetchall()
                if rows:
                    out.extend(row_to_record(self.stream, p, row) for row in rows)
                    self._delivered[p] = int(rows[-1][0])
        except sqlite3.Error as exc:
            raise LogUnavailable(f"polling {self._log.path}: {exc}") from exc
        self._idle_version = None if out else version
        return out

    def commit(self, records: Sequence[Record]) -> None:
        """See `LogConsumer.commit`; durable (fsync'd) when it returns."""
        if self._closed:
            raise LogUnavailable("the consumer is closed")
        highest: dict[int, int] = {}
        for r in records:
            p, seq = r.position.partition, r.position.offset
            if r.stream != self.stream:
                raise ValueError(f"record of stream {r.stream} committed to a consumer of {self.stream}")
            if not self._active or not 0 <= p < self._n or seq > self._delivered[p]:
                raise ValueError(f"record at {r.position} was not delivered by this consumer")
            highest[p] = max(highest.get(p, 0), seq)
        now = now_us()
        updates = [
            (self.stream.value, self.group, p, seq, now) for p, seq in highest.items() if seq > self._committed[p]
        ]
        if not updates:
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(UPSERT_CURSOR, updates)
                self._conn.execute("COMMIT")
            except BaseException:
                rollback(self._conn)
                raise
        except sqlite3.Error as exc:
            raise LogUnavailable(f"committing group {self.group!r}: {exc}") from exc
        for _, _, p, seq, _ in updates:
            self._committed[p] = seq

    def lag(self) -> int:
        """See `LogConsumer.lag`: exact (max offset - committed offset, summed over partitions)."""
        if self._closed:
            return self._last_lag
        try:
            committed = self._committed if self._active else self._read_committed()
            total = 0
            for p in range(self._n):
                top = self._conn.execute(self._sql[p].max_seq).fetchone()[0] or 0
                total += max(0, int(top) - committed[p])
        except sqlite3.Error:
            return self._last_lag
        self._last_lag = total
        return total

    def close(self) -> None:
        """Release the group (the lock) and the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._active = False
        try:
            self._lock_file.close()  # closing the descriptor releases the flock
        finally:
            self._conn.close()
            self._log._forget(self)
