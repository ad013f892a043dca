"""Pulsar EventLog adapter: one persistent partitioned topic per stream in the region's namespace.

Topics: `persistent://{tenant}/{namespace}/{stream}{topic_suffix}` (namespace from `PulsarSettings`, e.g.
`gnomon/local`; the suffix lets tests isolate themselves). At start-up the adapter creates missing topics
through the admin REST API with `partitions` partitions (an existing topic keeps its count) and turns on
broker-side deduplication for the namespace if it is off.

Publishing: one producer per stream, created on the first publish, named by the caller (`producer_name`, e.g.
`collector-<host>-<n>`; it must be unique among live producers of the topic, across all clusters). With
deduplication on, the broker drops messages the client re-sends after a reconnect (same producer name and
sequence id), and a restarted producer of the same name continues the sequence. Batching on (flushed every
`batching_delay_ms`), LZ4 compression, message key = the given key. Partition routing is our own
`partition_for_key` (CRC-32) instead of the client's default hash, so both adapters put a key in the same
partition. `send_async` with `block_if_queue_full=False` and our own in-flight budget below the client's
limits: a full budget raises LogBackpressure at once; the future resolves from the send callback after the
broker's ack, i.e. once the message is stored on the bookies (journal fsync'd, per the broker's settings).

Consuming: a Failover subscription named after the group. Each partition has one active consumer at a time (so
a key's records stay in order) and the partitions are spread over the members, while the others stand by and
take over when a member dies; Exclusive would allow only one member and make a restart race with the old
session. New groups start at the earliest message. `commit` acknowledges cumulatively per partition; Pulsar
persists acks asynchronously (grouped for up to 100 ms), so a crash right after commit can redeliver a few
records — consumers are at-least-once and the aggregator dedups by event id.

Positions: a Pulsar MessageId (ledger, entry, batch index) packed into one integer offset
`ledger << 96 | entry << 32 | (batch_index + 1)`, which sorts like the message ids within a partition.

Reprocessing: `read_by_publish_time` opens one Reader per partition, seeks to `start` by publish time and
reads to the end of the partition, keeping start <= publish_time < end. Publish times are producer clocks, so
they are only roughly ordered across producers; reading stops early once a message is later than
`end + max_clock_skew`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any

import pulsar

from gnomon.eventlog.inflight import InFlightBudget
from gnomon.eventlog.port import (
    LogBackpressure,
    LogUnavailable,
    OutgoingMessage,
    Position,
    Record,
    Stream,
    check_group,
    check_partitions,
    check_properties,
    check_utc_range,
    partition_for_key,
)
from gnomon.eventlog.pulsar_admin import PulsarAdmin
from gnomon.settings import PulsarSettings

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SUFFIX = re.compile(r"[A-Za-z0-9._-]*")
_PARTITION_OF_TOPIC = re.compile(r"-partition-(\d+)$")
_BACKPRESSURE_RESULTS = frozenset({pulsar.Result.ProducerQueueIsFull, pulsar.Result.MemoryBufferIsFull})
_LAG_CACHE_S = 1.0
# What a reader's getLastMessageId can answer while the consumer reconnects after a seek (the broker drops the
# consumer's connection on seek): worth asking again, briefly.
_RECONNECTING = (
    pulsar.exceptions.BrokerMetadataError,
    pulsar.exceptions.ConsumerNotFound,
    pulsar.exceptions.NotConnected,
    pulsar.exceptions.ConnectError,
    pulsar.exceptions.ServiceUnitNotReady,
)


def has_message_available(
    reader: Any,
    within_s: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """`reader.has_message_available()`, asked again (after 0.1, 0.2, ... 1 s) while the answer is an error of a
    consumer still reconnecting after `seek` ("Consumer not found", not connected), for up to `within_s` seconds.
    The question only reads the broker's last message id, so asking again is safe. Blocking; raises the last
    such error after `within_s`, and any other PulsarException at once."""
    deadline = clock() + within_s
    pause = 0.1
    while True:
        try:
            return bool(reader.has_message_available())
        except _RECONNECTING:
            if clock() + pause > deadline:
                raise
            log.info("event log: reader of %s is reconnecting; asking again in %.1f s", reader.topic(), pause)
            sleep(pause)
            pause = min(2 * pause, 1.0)


def encode_message_id(ledger_id: int, entry_id: int, batch_index: int) -> int:
    """Pack a message id into one non-negative int that sorts like (ledger, entry, batch index)."""
    if ledger_id < 0 or entry_id < 0 or not -1 <= batch_index < 2**32 - 1 or entry_id >= 2**64:
        raise ValueError(f"not a stored message id: ({ledger_id}, {entry_id}, {batch_index})")
    return (ledger_id << 96) | (entry_id << 32) | (batch_index + 1)


def decode_offset(offset: int) -> tuple[int, int, int]:
    """The (ledger, entry, batch index) that `encode_message_id` packed into `offset`."""
    return offset >> 96, (offset >> 32) & (2**64 - 1), (offset & (2**32 - 1)) - 1


def _offset_of(message_id: Any) -> int:
    return encode_message_id(message_id.ledger_id(), message_id.entry_id(), message_id.batch_index())


def _route(message: pulsar.Message, partitions: int) -> int:
    return partition_for_key(message.partition_key() or "", partitions)


class PulsarEventLog:
    """The EventLog port on Apache Pulsar (see the module docstring).

    Constructing it is blocking: it calls the admin API (topics, deduplication) and raises LogUnavailable when
    the broker cannot be reached or the namespace is missing. Broker connections are made lazily.
    """

    def __init__(
        self,
        settings: PulsarSettings,
        *,
        producer_name: str,
        partitions: int = 4,
        topic_suffix: str = "",
        max_in_flight: int = 1000,
        max_in_flight_bytes: int = 48 * 1024 * 1024,  # below the client's 64 MiB memory limit
        operation_timeout_s: int = 30,
        send_timeout_ms: int = 30_000,
        batching_delay_ms: int = 5,
        receiver_queue_size: int = 100,
        max_clock_skew: timedelta = timedelta(minutes=10),
        admin_timeout_s: float = 10.0,
    ) -> None:
        if not producer_name:
            raise ValueError("producer_name must be a stable, unique name such as collector-<host>-<n>")
        if not _SUFFIX.fullmatch(topic_suffix):
            raise ValueError(f"topic_suffix {topic_suffix!r} may hold only letters, digits, '.', '_' and '-'")
        self.settings = settings
        self.producer_name = producer_name
        self.admin = PulsarAdmin(settings.admin_url, admin_timeout_s)
        self._paths = {s: f"{settings.namespace}/{s.value}{topic_suffix}" for s in Stream}
        self._operation_timeout_s = operation_timeout_s
        self._send_timeout_ms = send_timeout_ms
        self._batching_delay_ms = batching_delay_ms
        self._max_in_flight = max_in_flight
        self.receiver_queue_size = receiver_queue_size
        self._max_clock_skew_ms = int(max_clock_skew / timedelta(milliseconds=1))
        self._budget = InFlightBudget(max_in_flight, max_in_flight_bytes)
        self.admin.ensure_deduplication(settings.namespace)
        self._partitions = {s: self.admin.ensure_partitioned_topic(path, partitions) for s, path in self._paths.items()}
        self._lock = threading.Lock()
        self._closed = False
        self._producers: dict[Stream, pulsar.Producer] = {}
        self._consumers: set[PulsarConsumer] = set()
        try:
            self.client = pulsar.Client(
                settings.service_url,
                operation_timeout_seconds=operation_timeout_s,
                logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn),
            )
        except pulsar.PulsarException as exc:
            raise LogUnavailable(f"cannot create a Pulsar client for {settings.service_url}: {exc}") from exc

    def topic(self, stream: Stream) -> str:
        """The full topic name of `stream`."""
        return f"persistent://{self._paths[Stream(stream)]}"

    def topic_path(self, stream: Stream) -> str:
        """`tenant/namespace/name` of `stream`'s topic, as the admin API wants it."""
        return self._paths[Stream(stream)]

    def partition_count(self, stream: Stream) -> int:
        return self._partitions[Stream(stream)]

    # ---- publishing --------------------------------------------------------------------------------------

    def _producer(self, stream: Stream) -> pulsar.Producer:
        producer = self._producers.get(stream)
        if producer is not None:
            return producer
        with self._lock:
            if self._closed:
                raise LogUnavailable("the event log is closed")
            producer = self._producers.get(stream)
            if producer is None:
                try:
                    producer = self.client.create_producer(
                        self.topic(stream),
                        producer_name=self.producer_name,
                        send_timeout_millis=self._send_timeout_ms,
                        compression_type=pulsar.CompressionType.LZ4,
                        # The client caps each partition at across_partitions / partitions: leave room for
                        # our whole budget in any one partition, so only our budget ever pushes back.
                        max_pending_messages=self._max_in_flight,
                        max_pending_messages_across_partitions=self._max_in_flight * self._partitions[stream],
                        block_if_queue_full=False,
                        batching_enabled=True,
                        batching_max_messages=1000,
                        batching_max_allowed_size_in_bytes=1024 * 1024,
                        batching_max_publish_delay_ms=self._batching_delay_ms,
                        message_router=_route,
                    )
                except pulsar.PulsarException as exc:
                    raise LogUnavailable(
                        f"cannot create producer {self.producer_name!r} on {self.topic(stream)}: {exc}"
                        " (another live process using the same producer name gets ProducerBusy)"
                    ) from exc
                self._producers[stream] = producer
        return producer

    def publish(
        self, stream: Stream, key: str, payload: bytes, properties: Mapping[str, str] | None = None
    ) -> Future[Position]:
        """See `EventLog.publish`; the future resolves on the broker's ack (in a Pulsar client thread)."""
        return self.publish_many(stream, [OutgoingMessage(key, payload, properties)])[0]

    def publish_many(self, stream: Stream, messages: Sequence[OutgoingMessage]) -> list[Future[Position]]:
        """See `EventLog.publish_many`."""
        stream = Stream(stream)
        prepared = []
        for m in messages:
            if not isinstance(m.payload, bytes | bytearray | memoryview):
                raise TypeError(f"payload must be bytes, got {type(m.payload).__name__}")
            prepared.append((m.key, bytes(m.payload), check_properties(m.properties)))
        if not prepared:
            return []
        if self._closed:
            raise LogUnavailable("the event log is closed")
        producer = self._producer(stream)
        self._budget.acquire(len(prepared), sum(len(p) for _, p, _ in prepared))
        futures: list[Future[Position]] = []
        for i, (key, payload, props) in enumerate(prepared):
            future: Future[Position] = Future()
            future.set_running_or_notify_cancel()  # a sent message cannot be taken back
            partition = partition_for_key(key, self._partitions[stream])
            try:
                producer.send_async(
                    payload,
                    self._on_sent(future, partition, len(payload)),
                    properties=props or None,
                    partition_key=key or None,
                )
            except Exception as exc:  # the client refused before queueing: give back what is not queued
                self._budget.release(len(prepared) - i, sum(len(p) for _, p, _ in prepared[i:]))
                raise LogUnavailable(f"Pulsar send to {self.topic(stream)} failed: {exc}") from exc
            futures.append(future)
        return futures

    def _on_sent(self, future: Future[Position], partition: int, size: int) -> Any:
        def done(result: Any, message_id: Any) -> None:
            # Runs on a client thread; an exception escaping here would abort the process.
            try:
                self._budget.release(1, size)
                if result == pulsar.Result.Ok:
                    future.set_result(Position(partition, _offset_of(message_id)))
                elif result in _BACKPRESSURE_RESULTS:
                    future.set_exception(LogBackpressure(f"Pulsar producer queue is full ({result})"))
                else:
                    future.set_exception(LogUnavailable(f"Pulsar send failed: {result}"))
            except BaseException:
                log.exception("event log: settling a Pulsar send failed")

        return done

    # ---- reading -----------------------------------------------------------------------------------------

    def subscribe(self, stream: Stream, group: str) -> PulsarConsumer:
        """See `EventLog.subscribe` (Failover subscription `group`, starting at the earliest message)."""
        stream = Stream(stream)
        check_group(group)
        if self._closed:
            raise LogUnavailable("the event log is closed")
        n = self._partitions[stream]
        try:
            consumer = self.client.subscribe(
                self.topic(stream),
                group,
                consumer_type=pulsar.ConsumerType.Failover,
                initial_position=pulsar.InitialPosition.Earliest,
                receiver_queue_size=self.receiver_queue_size,
                max_total_receiver_queue_size_across_partitions=self.receiver_queue_size * n,
                batch_index_ack_enabled=True,  # exact partial-batch acks where the broker enables them
            )
        except pulsar.PulsarException as exc:
            raise LogUnavailable(f"cannot subscribe {group!r} to {self.topic(stream)}: {exc}") from exc
        member = PulsarConsumer(self, stream, group, consumer)
        with self._lock:
            self._consumers.add(member)
        return member

    def _forget(self, member: PulsarConsumer) -> None:
        with self._lock:
            self._consumers.discard(member)

    def to_record(self, stream: Stream, message: pulsar.Message) -> Record:
        """A Record from a received Pulsar message of `stream`."""
        message_id = message.message_id()
        match = _PARTITION_OF_TOPIC.search(message.topic_name() or "")
        partition = int(match.group(1)) if match else max(0, message_id.partition())
        return Record(
            stream=stream,
            position=Position(partition, _offset_of(message_id)),
            key=message.partition_key() or "",
            payload=message.data(),
            properties=dict(message.properties()),
            publish_time=_EPOCH + timedelta(milliseconds=message.publish_timestamp()),
        )

    def read_by_publish_time(
        self, stream: Stream, start: datetime, end: datetime, partitions: Sequence[int] | None = None
    ) -> Iterator[Record]:
        """See `EventLog.read_by_publish_time`: one Reader per partition, seek by publish time, filter."""
        check_utc_range(start, end)
        stream = Stream(stream)
        chosen = check_partitions(partitions, self._partitions[stream])
        return self._read_range(stream, start, end, chosen)

    def _read_range(self, stream: Stream, start: datetime, end: datetime, partitions: list[int]) -> Iterator[Record]:
        if start >= end:
            return
        # Floor to the millisecond, so a message published in `start`'s millisecond is never skipped.
        start_ms = (start - _EPOCH) // timedelta(milliseconds=1)
        stop_ms = (end - _EPOCH) // timedelta(milliseconds=1) + self._max_clock_skew_ms
        for partition in partitions:
            try:
                reader = self.client.create_reader(
                    f"{self.topic(stream)}-partition-{partition}",
                    pulsar.MessageId.earliest,
                    receiver_queue_size=self.receiver_queue_size,
                )
            except pulsar.PulsarException as exc:
                raise LogUnavailable(f"cannot read {self.topic(stream)} partition {partition}: {exc}") from exc
            try:
                yield from self._read_partition(stream, reader, start, end, start_ms=start_ms, stop_ms=stop_ms)
            finally:
                try:
                    reader.close()
                except pulsar.PulsarException:
                    log.debug("event log: closing a reader failed", exc_info=True)

    def _read_partition(
        self,
        stream: Stream,
        reader: Any,
        start: datetime,
        end: datetime,
        *,
        start_ms: int,
        stop_ms: int,
    ) -> Iterator[Record]:
        try:
            reader.seek(start_ms)
            while has_message_available(reader, self._operation_timeout_s):
                message = reader.read_next(timeout_millis=self._operation_timeout_s * 1000)
                published = message.publish_timestamp()
                if published >= stop_ms:
                    return
                record = self.to_record(stream, message)
                if start <= record.publish_time < end:
                    yield record
        except pulsar.PulsarException as exc:
            raise LogUnavailable(f"reading {reader.topic()}: {exc}") from exc

    def close(self) -> None:
        """Blocking: flush and close the producers (waits for pending sends), consumers and the client."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            producers = list(self._producers.values())
            consumers = list(self._consumers)
        for producer in producers:
            try:
                producer.flush()
                producer.close()
            except pulsar.PulsarException:
                log.warning("event log: closing a Pulsar producer failed", exc_info=True)
        for member in consumers:
            member.close()
        try:
            self.client.close()
        except pulsar.PulsarException:
            log.warning("event log: closing the Pulsar client failed", exc_info=True)


class PulsarConsumer:
    """A member of a Failover subscription. Not thread-safe; use it from one thread at a time."""

    def __init__(self, event_log: PulsarEventLog, stream: Stream, group: str, consumer: Any) -> None:
        self._log = event_log
        self.stream = stream
        self.group = group
        self._consumer = consumer
        self._unacked: dict[int, dict[int, Any]] = {}  # partition -> offset -> message id, delivered here
        self._acked: dict[int, int] = {}  # partition -> highest offset acknowledged by this member
        self._closed = False
        self._lag = 0
        self._lag_at = 0.0

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """See `LogConsumer.poll`: waits up to `timeout_s` for a first record, then takes what is buffered."""
        if max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {max_records}")
        if self._closed:
            raise LogUnavailable("the consumer is closed")
        deadline = time.monotonic() + max(0.0, timeout_s)
        out: list[Record] = []
        while len(out) < max_records:
            wait_ms = 0 if out else max(0, int((deadline - time.monotonic()) * 1000))
            try:
                message = self._consumer.receive(timeout_millis=wait_ms)
            except pulsar.Timeout:
                if out or time.monotonic() >= deadline:
                    break
                continue
            except pulsar.PulsarException as exc:
                raise LogUnavailable(f"receiving from {self._consumer.topic()}: {exc}") from exc
            record = self._log.to_record(self.stream, message)
            self._unacked.setdefault(record.partition, {})[record.position.offset] = message.message_id()
            out.append(record)
        return out

    def commit(self, records: Sequence[Record]) -> None:
        """See `LogConsumer.commit`: one cumulative ack per partition."""
        if self._closed:
            raise LogUnavailable("the consumer is closed")
        highest: dict[int, int] = {}
        for r in records:
            if r.stream != self.stream:
                raise ValueError(f"record of stream {r.stream} committed to a consumer of {self.stream}")
            if r.position.offset <= self._acked.get(r.partition, -1):
                continue  # committed before: nothing to do
            if r.position.offset not in self._unacked.get(r.partition, {}):
                raise ValueError(f"record at {r.position} was not delivered by this consumer")
            highest[r.partition] = max(highest.get(r.partition, -1), r.position.offset)
        for partition, offset in highest.items():
            pending = self._unacked[partition]
            try:
                self._consumer.acknowledge_cumulative(pending[offset])
            except pulsar.PulsarException as exc:
                raise LogUnavailable(f"acknowledging on {self._consumer.topic()}: {exc}") from exc
            self._unacked[partition] = {o: m for o, m in pending.items() if o > offset}
            self._acked[partition] = offset

    def lag(self) -> int:
        """See `LogConsumer.lag`: the subscription's backlog from the admin API, cached for a second.

        Pulsar counts the backlog in entries, so a batch of several messages counts once.
        """
        now = time.monotonic()
        if now - self._lag_at < _LAG_CACHE_S:
            return self._lag
        try:
            stats = self._log.admin.partitioned_stats(self._log.topic_path(self.stream))
            self._lag = int(stats.get("subscriptions", {}).get(self.group, {}).get("msgBacklog", self._lag))
            self._lag_at = now
        except (LogUnavailable, ValueError, TypeError, AttributeError):
            log.debug("event log: reading the backlog failed", exc_info=True)
        return self._lag

    def close(self) -> None:
        """Leave the subscription; unacknowledged messages go to the next active member. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._consumer.close()
        except pulsar.PulsarException:
            log.debug("event log: closing a consumer failed", exc_info=True)
        finally:
            self._log._forget(self)
