"""The on-disk spool: append-only segment files of length-prefixed serialized events, plus a dead-letter file.

Layout of a spool directory (one live Client at a time, enforced by `flock` on `spool.lock`; the kernel drops
the lock when the process dies, even by SIGKILL):

- `seg-<seq>.log` — one segment per outgoing batch. An 8-byte magic `GNSPOOL1`, then records
  `[u32 big-endian length][u32 crc32(payload)][payload]`, each payload one serialized `gnomon.v1.Event`.
  A record is appended with a single write(2) before `track` returns, so it survives a crash of the process;
  the segment is fsync'd (file and directory) when it is sealed, so it also survives an OS crash from then on.
  A segment is deleted only after the collector acknowledged every event in it.
- `dead-letter.log` — same framing; each payload is a serialized `EventBatch` that the collector refused with
  a non-retryable status (its batch_id names the segment). `dead-letter.txt` has one human-readable line each.

Recovery (`Spool.recover`) reads every segment, truncates a torn or corrupt tail (only possible after an OS
crash, since records are written whole) and hands back the segments in sequence order for resending.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gnomon_sdk.errors import SpoolLocked

MAGIC = b"GNSPOOL1"
_HEADER = struct.Struct(">II")
RECORD_OVERHEAD = _HEADER.size
_SEGMENT_PREFIX, _SEGMENT_SUFFIX = "seg-", ".log"
DEAD_LETTER = "dead-letter.log"
DEAD_LETTER_TEXT = "dead-letter.txt"
LOCK_FILE = "spool.lock"


def frame(payload: bytes) -> bytes:
    """One record: header (length, crc32) + payload."""
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def read_records(path: str | Path) -> Iterator[bytes]:
    """Payloads of the valid records of a spool or dead-letter file, in order; stops at the first bad record.

    Raises FileNotFoundError when the file does not exist, ValueError when it is not a spool file.
    """
    with open(path, "rb") as f:
        data = f.read()
    yield from _parse(data, str(path))[0]


def _parse(data: bytes, name: str) -> tuple[list[bytes], int]:
    """(valid payloads, length of the valid prefix) of a file's bytes."""
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):  # empty or torn before the magic was complete
            return [], 0
        raise ValueError(f"{name} is not a Gnomon spool file")
    records: list[bytes] = []
    pos = len(MAGIC)
    while pos + RECORD_OVERHEAD <= len(data):
        length, crc = _HEADER.unpack_from(data, pos)
        end = pos + RECORD_OVERHEAD + length
        payload = data[pos + RECORD_OVERHEAD : end]
        if end > len(data) or zlib.crc32(payload) != crc:
            break
        records.append(payload)
        pos = end
    return records, pos


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class RecoveredSegment:
    """A segment found in the spool at start-up: its file, sequence number and valid record count."""

    seq: int
    path: Path
    count: int
    size: int


class SegmentWriter:
    """Appends records to one segment file. Not thread-safe: the Client serializes calls under its lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        os.write(self._fd, MAGIC)
        self.size = len(MAGIC)

    def append(self, payload: bytes) -> int:
        """Write one record with a single write(2) (durable against a process crash once this returns).

        Returns the bytes added to the file. Raises OSError (e.g. disk full); a short write is an OSError too.
        """
        if self._fd is None:
            raise ValueError(f"segment {self.path.name} is sealed")
        record = frame(payload)
        try:
            written = os.write(self._fd, record)
            if written != len(record):
                raise OSError(f"short write to {self.path} ({written} of {len(record)} bytes)")
        except OSError:
            with contextlib.suppress(OSError):  # never leave a torn record in front of later ones
                os.ftruncate(self._fd, self.size)
            raise
        self.size += written
        return written

    def seal(self) -> None:
        """fsync and close the file, then fsync its directory: from here on it survives an OS crash."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self.path.parent)

    def abandon(self) -> None:
        """Close without fsync (used when the client stops abnormally); the file stays for recovery."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class Spool:
    """A spool directory owned by one live Client. Raises SpoolLocked if another client holds it."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser().resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise SpoolLocked(f"spool directory {self.directory} is in use by another Client") from None
        self.total_bytes = 0  # bytes of all live segment files (the bound `max_spool_bytes` applies to this)

    def _segments(self) -> list[tuple[int, Path]]:
        found: list[tuple[int, Path]] = []
        for path in self.directory.iterdir():
            name = path.name
            if name.startswith(_SEGMENT_PREFIX) and name.endswith(_SEGMENT_SUFFIX):
                digits = name[len(_SEGMENT_PREFIX) : -len(_SEGMENT_SUFFIX)]
                if digits.isdigit():
                    found.append((int(digits), path))
        return sorted(found)

    def recover(self) -> list[RecoveredSegment]:
        """Scan leftover segments (oldest first), truncate torn tails, delete empty ones.

        Blocking: reads the whole spool once. Files that are not spool files are left alone and skipped.
        """
        recovered: list[RecoveredSegment] = []
        for seq, path in self._segments():
            data = path.read_bytes()
            try:
                records, valid = _parse(data, str(path))
            except ValueError:
                continue
            if not records:
                path.unlink(missing_ok=True)
                continue
            if valid < len(data):
                os.truncate(path, valid)
            recovered.append(RecoveredSegment(seq=seq, path=path, count=len(records), size=valid))
            self.total_bytes += valid
        return recovered

    def next_seq(self) -> int:
        """A sequence number above every segment in the directory."""
        segments = self._segments()
        return segments[-1][0] + 1 if segments else 1

    def open_segment(self, seq: int) -> SegmentWriter:
        writer = SegmentWriter(self.directory / f"{_SEGMENT_PREFIX}{seq:020d}{_SEGMENT_SUFFIX}")
        self.total_bytes += writer.size
        return writer

    def read_segment(self, path: Path) -> list[bytes]:
        """The valid records of a sealed segment (raises OSError when it cannot be read)."""
        return _parse(path.read_bytes(), str(path))[0]

    def remove(self, path: Path, size: int) -> None:
        """Delete an acknowledged segment (no fsync: if the unlink is lost, the events are only resent)."""
        path.unlink(missing_ok=True)
        self.total_bytes = max(0, self.total_bytes - size)

    def dead_letter(self, batch: bytes, batch_id: str, reason: str) -> Path:
        """Append a refused batch (serialized EventBatch) to the dead-letter file (fsync'd); return it."""
        path = self.directory / DEAD_LETTER
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if os.fstat(fd).st_size == 0:
                os.write(fd, MAGIC)
            os.write(fd, frame(batch))
            os.fsync(fd)
        finally:
            os.close(fd)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with open(self.directory / DEAD_LETTER_TEXT, "a", encoding="utf-8") as text:
            text.write(f"{stamp}\t{batch_id}\t{reason}\n")
        return path

    def close(self) -> None:
        """Release the directory lock (idempotent)."""
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
