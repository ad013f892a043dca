"""The EventLog port: a durable, partitioned, payload-agnostic log of byte messages.

The collector publishes one message per validated batch (its payload is a serialized
`gnomon.v1.LoggedBatch`, but this package never looks inside: payloads are bytes, properties are strings).
The aggregator reads them through a consumer group with durable cursors; the reprocess job reads a
publish-time range. Two adapters implement the port: `embedded.EmbeddedEventLog` (SQLite, one machine) and
`pulsar_log.PulsarEventLog` (Apache Pulsar); `tests/contract/test_eventlog_contract.py` runs against both.

Semantics every adapter keeps:
- A message's partition is `partition_for_key(key, partition_count(stream))` (CRC-32 of the UTF-8 key), so
  all messages of one key (a merchant) land in one partition, in publish order for one publisher.
- `publish` is non-blocking and returns a future that resolves to the message's `Position` only once the
  message is durable; it raises `LogBackpressure` at once when the bounded in-flight budget is used up.
- Consumers are at-least-once: a record is redelivered to the group until it is committed, so processing must
  be idempotent (the aggregator dedups by event id).
- All times are UTC-aware datetimes; time ranges include their start and exclude their end.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Stream(StrEnum):
    """The logical streams of the event log."""

    EVENTS = "events"  # one LoggedBatch per accepted collect call
    BAD_EVENTS = "bad-events"  # one BadEvent per rejected event or batch


class EventLogError(Exception):
    """Base class of the errors the event log raises on purpose."""


class LogUnavailable(EventLogError):
    """The engine is down, timed out, or the log is closed. The collector answers UNAVAILABLE; retry later."""


class LogBackpressure(EventLogError):
    """Too many publishes are in flight. The collector answers RESOURCE_EXHAUSTED; the client backs off."""


def partition_for_key(key: str, partitions: int) -> int:
    """The partition of `key` among `partitions`: CRC-32 of its UTF-8 bytes, modulo the count.

    Stable across processes, machines and Python versions (unlike `hash()`), and the same in every adapter.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    return zlib.crc32(key.encode("utf-8")) % partitions


@dataclass(frozen=True, order=True)
class Position:
    """Where a message is: its partition and an offset that orders it within that partition.

    Offsets are non-negative integers that grow with publish order inside one partition; they are not dense
    (Pulsar packs ledger, entry and batch index into one integer). `encode()`/`decode()` give a text form.
    """

    partition: int
    offset: int

    def encode(self) -> str:
        """Text form `"<partition>:<offset>"`, stable across releases."""
        return f"{self.partition}:{self.offset}"

    @classmethod
    def decode(cls, text: str) -> Position:
        """Parse `encode()`'s output; raises ValueError on anything else."""
        partition, sep, offset = text.partition(":")
        if not sep or not partition.isdigit() or not offset.isdigit():
            raise ValueError(f"not an event-log position: {text!r}")
        return cls(int(partition), int(offset))


@dataclass(frozen=True)
class Record:
    """One message as read back from the log."""

    stream: Stream
    position: Position
    key: str
    payload: bytes = field(repr=False)
    properties: Mapping[str, str]
    publish_time: datetime  # UTC-aware; when the log accepted the message (Pulsar: millisecond precision)

    @property
    def partition(self) -> int:
        return self.position.partition

    def __hash__(self) -> int:  # properties is a mapping; identity is the stream and position
        return hash((self.stream, self.position))


@dataclass(frozen=True)
class OutgoingMessage:
    """One message for `EventLog.publish_many`."""

    key: str
    payload: bytes
    properties: Mapping[str, str] | None = None


class LogConsumer(Protocol):
    """A member of a consumer group on one stream. Not thread-safe: use it from one thread at a time."""

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Blocking: up to `max_records` records not yet delivered here, waiting at most `timeout_s`.

        Returns [] on timeout (also while another member of the group owns every partition). Records of one
        partition come in offset order. Raises LogUnavailable if the engine fails.
        """
        ...

    def commit(self, records: Sequence[Record]) -> None:
        """Blocking: advance the group's durable cursor of each partition past the highest given record.

        Cumulative per partition: earlier records of that partition delivered to this consumer count as
        committed too. After this consumer closes or its process dies, the next member resumes each partition
        at its cursor, so every uncommitted record is redelivered (embedded: exactly those; Pulsar without
        broker-side batch-index acks: from the start of the batch holding the cursor, so a few committed
        ones may repeat). Committing a record twice is harmless. Raises ValueError for records of another
        stream or never delivered by this consumer, LogUnavailable if the engine fails.
        """
        ...

    def lag(self) -> int:
        """Best effort, for metrics: how many records the group has not committed yet. Never raises."""
        ...

    def close(self) -> None:
        """Leave the group; uncommitted records will be redelivered to the next member. Idempotent."""
        ...


class EventLog(Protocol):
    """A durable, partitioned log with two streams. Publishing is thread-safe."""

    def publish(
        self, stream: Stream, key: str, payload: bytes, properties: Mapping[str, str] | None = None
    ) -> Future[Position]:
        """Non-blocking: queue one message; the future resolves once the message is durable.

        The future fails with LogUnavailable (engine down, timed out) or LogBackpressure (engine-side queue
        full). Future callbacks run on an adapter thread and must be quick. Raises LogBackpressure at once
        when the in-flight budget is used up, LogUnavailable when the log is closed or cannot reach the
        engine, TypeError for a non-str property. Pulsar: the first publish to a stream in a
        process connects its producer and may block up to the operation timeout.
        """
        ...

    def publish_many(self, stream: Stream, messages: Sequence[OutgoingMessage]) -> list[Future[Position]]:
        """Like `publish` for several messages, all-or-nothing with respect to the in-flight budget."""
        ...

    def subscribe(self, stream: Stream, group: str) -> LogConsumer:
        """Join consumer group `group` on `stream`; a new group starts at the earliest record.

        Each partition is delivered to at most one member of a group at a time. Raises LogUnavailable.
        """
        ...

    def read_by_publish_time(
        self, stream: Stream, start: datetime, end: datetime, partitions: Sequence[int] | None = None
    ) -> Iterator[Record]:
        """Lazily yield every record with start <= publish_time < end, partition by partition, each in order.

        `partitions` limits the read to those partitions (default: all; one reader each, so callers can read
        partitions in parallel). For reprocessing; independent of consumer groups. Raises ValueError for naive
        datetimes or a partition out of range, LogUnavailable if the engine fails while iterating.
        """
        ...

    def partition_count(self, stream: Stream) -> int:
        """How many partitions `stream` has (fixed when the stream was first created)."""
        ...

    def close(self) -> None:
        """Blocking: wait for queued publishes to settle, then release everything. Idempotent."""
        ...


def check_utc_range(start: datetime, end: datetime) -> None:
    """Raise ValueError unless both datetimes are timezone-aware (any zone; compared as instants)."""
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name}={value!r} must be timezone-aware (UTC)")


def check_partitions(partitions: Sequence[int] | None, count: int) -> list[int]:
    """`partitions` (default: every one of `count`) as a list; ValueError names one out of range."""
    if partitions is None:
        return list(range(count))
    wanted = [int(p) for p in partitions]
    bad = [p for p in wanted if not 0 <= p < count]
    if bad:
        raise ValueError(f"partition {bad[0]} does not exist: the stream has partitions 0..{count - 1}")
    return wanted


def check_properties(properties: Mapping[str, str] | None) -> dict[str, str]:
    """A plain dict copy of `properties`; raises TypeError unless every key and value is a str."""
    if not properties:
        return {}
    out = dict(properties)
    for k, v in out.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"event-log properties must be str -> str, got {k!r}: {v!r}")
    return out


_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_group(group: str) -> str:
    """Return `group` if it is a valid consumer-group name (letters, digits, '.', '_', '-'; <= 100 chars).

    Raises ValueError otherwise. The same rule in every adapter keeps names portable (file names, Pulsar
    subscription names).
    """
    if not isinstance(group, str) or not _GROUP_NAME.fullmatch(group):
        raise ValueError(f"consumer group {group!r} must match {_GROUP_NAME.pattern}")
    return group
