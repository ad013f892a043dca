"""The EventLog contract, run against both adapters: embedded SQLite and Pulsar standalone.

Every test gets a fresh log: a temporary directory (embedded) or topics with a random suffix (Pulsar), so tests
never see each other's data. `LogBackend.open()` opens another `EventLog` over the same storage, which is how
the tests reopen a log or use a tiny in-flight limit.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gnomon.eventlog import (
    EventLog,
    LogBackpressure,
    LogConsumer,
    LogUnavailable,
    OutgoingMessage,
    Position,
    Record,
    Stream,
    partition_for_key,
)
from gnomon.eventlog.embedded import EmbeddedEventLog
from gnomon.eventlog.pulsar_admin import PulsarAdmin
from gnomon.eventlog.pulsar_log import PulsarEventLog
from tests.conftest import RealEngines, delete_pulsar_namespace

PARTITIONS = 4
POLL_TIMEOUT_S = 30.0  # the longest a test waits for records that must arrive


@dataclass
class LogBackend:
    """Opens EventLogs over one storage; closes (and for Pulsar deletes) everything at teardown."""

    name: str
    factory: Callable[..., EventLog]
    opened: list[EventLog] = field(default_factory=list)

    def open(self, **overrides: Any) -> EventLog:
        event_log = self.factory(**overrides)
        self.opened.append(event_log)
        return event_log

    def close_all(self) -> None:
        for event_log in reversed(self.opened):
            event_log.close()


def _embedded_backend(tmp_path: Path) -> LogBackend:

    return LogBackend("embedded", lambda **kw: EmbeddedEventLog(tmp_path / "eventlog", partitions=PARTITIONS, **kw))


def _pulsar_backend(request: pytest.FixtureRequest) -> tuple[LogBackend, Callable[[], None]]:

    engines: RealEngines = request.getfixturevalue("real_engines")
    settings = engines.settings.pulsar
    suffix = f"-test-{uuid.uuid4().hex[:10]}"
    count = 0

    def factory(**kw: Any) -> EventLog:
        nonlocal count
        count += 1
        return PulsarEventLog(
            settings,
            producer_name=f"contract{suffix}-{count}",
            partitions=PARTITIONS,
            topic_suffix=suffix,
            operation_timeout_s=20,
            send_timeout_ms=20_000,
            **kw,
        )

    def cleanup() -> None:
        admin = PulsarAdmin(settings.admin_url)
        for stream in Stream:
            admin.delete_partitioned_topic(f"{settings.namespace}/{stream.value}{suffix}")

    return LogBackend("pulsar", factory), cleanup


@pytest.fixture(params=["embedded", pytest.param("pulsar", marks=pytest.mark.engines)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogBackend]:
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if request.param == "embedded":
        b = _embedded_backend(tmp_path)
    else:
        b, cleanup = _pulsar_backend(request)
    try:
        yield b
    finally:
        b.close_all()
        cleanup()


@pytest.fixture
def event_log(backend: LogBackend) -> EventLog:
    return backend.open()


# ---- helpers ---------------------------------------------------------------------------------------------


def publish_all(event_log: EventLog, stream: Stream, messages: Sequence[OutgoingMessage]) -> list[Position]:
    """Publish in order, backing off on LogBackpressure; return the positions (all must succeed)."""
    futures: list[Future[Position]] = []
    for m in messages:
        while True:
            try:
                futures.append(event_log.publish(stream, m.key, m.payload, m.properties))
                break
            except LogBackpressure:
                pending = [f for f in futures if not f.done()]
                wait(pending[:1], timeout=POLL_TIMEOUT_S)
    return [f.result(timeout=POLL_TIMEOUT_S) for f in futures]


def poll_until(consumer: LogConsumer, count: int, *, commit: bool = False) -> list[Record]:
    """Poll until `count` records arrived (fails after POLL_TIMEOUT_S); optionally commit each batch."""
    out: list[Record] = []
    deadline = time.monotonic() + POLL_TIMEOUT_S
    while len(out) < count and time.monotonic() < deadline:
        batch = consumer.poll(500, 1.0)
        if commit and batch:
            consumer.commit(batch)
        out.extend(batch)
    assert len(out) >= count, f"only {len(out)} of {count} records arrived"
    return out


def drain(consumer: LogConsumer, quiet_s: float = 2.0) -> list[Record]:
    """Poll until nothing arrives for `quiet_s`."""
    out: list[Record] = []
    while batch := consumer.poll(500, quiet_s):
        out.extend(batch)
    return out


def messages(n: int, keys: int = 5, prefix: str = "m") -> list[OutgoingMessage]:
    return [
        OutgoingMessage(key=f"merchant-{i % keys}", payload=f"{prefix}-{i}".encode(), properties={"seq": str(i)})
        for i in range(n)
    ]


# ---- the contract ----------------------------------------------------------------------------------------


def test_partition_count_is_what_was_asked(event_log: EventLog) -> None:
    assert event_log.partition_count(Stream.EVENTS) == PARTITIONS
    assert event_log.partition_count(Stream.BAD_EVENTS) == PARTITIONS


def test_publish_then_subscribe_poll_commit(event_log: EventLog) -> None:
    sent = messages(40)
    positions = publish_all(event_log, Stream.EVENTS, sent)
    consumer = event_log.subscribe(Stream.EVENTS, "aggregator")
    got = poll_until(consumer, len(sent))
    assert len(got) == len(sent)
    by_payload = {r.payload: r for r in got}
    for m, pos in zip(sent, positions, strict=True):
        r = by_payload[m.payload]
        assert (r.stream, r.key, r.position, dict(r.properties)) == (Stream.EVENTS, m.key, pos, m.properties)
        assert r.partition == pos.partition == partition_for_key(m.key, PARTITIONS)
        assert r.publish_time.tzinfo is not None
    consumer.commit(got)
    assert consumer.poll(10, 0.5) == []
    consumer.close()
    again = event_log.subscribe(Stream.EVENTS, "aggregator")
    assert drain(again, 2.0) == [], "committed records came back"
    deadline = time.monotonic() + 10
    while again.lag() != 0 and time.monotonic() < deadline:  # Pulsar's stats lag behind a little
        time.sleep(0.5)
    assert again.lag() == 0


def test_uncommitted_records_are_redelivered_after_a_crash(event_log: EventLog) -> None:
    sent = messages(60)
    publish_all(event_log, Stream.EVENTS, sent)
    consumer = event_log.subscribe(Stream.EVENTS, "aggregator")
    got = poll_until(consumer, len(sent))
    # Commit roughly the first half of each partition; the rest stays uncommitted when the consumer "crashes".
    per_partition: dict[int, list[Record]] = defaultdict(list)
    for r in got:
        per_partition[r.partition].append(r)
    committed: list[Record] = []
    for records in per_partition.values():
        committed.extend(records[: len(records) // 2])
    consumer.commit(committed)
    consumer.close()  # no commit for the rest, like a process that died

    uncommitted = {r.payload for r in got} - {r.payload for r in committed}
    replacement = event_log.subscribe(Stream.EVENTS, "aggregator")
    redelivered = drain(replacement)
    # At-least-once with a cursor per partition: every uncommitted record comes back, and what comes back is
    # the tail of each partition. (Embedded resumes exactly after the commit; Pulsar without broker-side batch
    # index acks resumes at the start of the batch holding the commit point, so a few committed ones repeat.)
    assert uncommitted <= {r.payload for r in redelivered}
    for partition, records in per_partition.items():
        again = [r.position for r in redelivered if r.partition == partition]
        assert again == [r.position for r in records][len(records) - len(again) :]


def test_a_new_group_starts_at_the_earliest_record_and_groups_are_independent(event_log: EventLog) -> None:
    sent = messages(20)
    publish_all(event_log, Stream.EVENTS, sent)
    first = event_log.subscribe(Stream.EVENTS, "group-a")
    first.commit(poll_until(first, 20))
    second = event_log.subscribe(Stream.EVENTS, "group-b")
    assert sorted(r.payload for r in poll_until(second, 20)) == sorted(m.payload for m in sent)


def test_records_of_one_key_keep_their_order(event_log: EventLog) -> None:
    sent = messages(300, keys=7)
    publish_all(event_log, Stream.EVENTS, sent)
    consumer = event_log.subscribe(Stream.EVENTS, "aggregator")
    got = poll_until(consumer, len(sent), commit=True)
    seqs: dict[str, list[int]] = defaultdict(list)
    last_position: dict[int, Position] = {}
    for r in got:
        seqs[r.key].append(int(r.properties["seq"]))
        if r.partition in last_position:
            assert r.position > last_position[r.partition]
        last_position[r.partition] = r.position
    for key, order in seqs.items():
        assert order == sorted(order), f"records of {key} out of order"


def test_partition_is_stable_by_key_across_logs(backend: LogBackend) -> None:
    keys = [f"merchant-{i}" for i in range(50)] + ["", "ünïcødé-✓"]
    first = backend.open()
    positions = publish_all(first, Stream.EVENTS, [OutgoingMessage(k, b"a") for k in keys])
    first.close()
    second = backend.open()
    again = publish_all(second, Stream.EVENTS, [OutgoingMessage(k, b"b") for k in keys])
    for key, p1, p2 in zip(keys, positions, again, strict=True):
        assert p1.partition == p2.partition == partition_for_key(key, PARTITIONS)
    assert len({p.partition for p in positions}) == PARTITIONS  # 52 keys spread over every partition


def test_read_by_publish_time_returns_exactly_the_range(event_log: EventLog) -> None:
    gap = 0.05  # seconds; Pulsar's publish times have millisecond precision
    publish_all(event_log, Stream.EVENTS, messages(30, prefix="before"))
    time.sleep(gap)
    start = datetime.now(UTC)
    time.sleep(gap)
    within = publish_all(event_log, Stream.EVENTS, messages(30, prefix="within"))
    time.sleep(gap)
    end = datetime.now(UTC)
    time.sleep(gap)
    publish_all(event_log, Stream.EVENTS, messages(30, prefix="after"))

    records = list(event_log.read_by_publish_time(Stream.EVENTS, start, end))
    assert sorted(r.position for r in records) == sorted(within)
    assert all(r.payload.startswith(b"within-") and start <= r.publish_time < end for r in records)
    partitions = [r.partition for r in records]
    assert partitions == sorted(partitions), "partitions must come one after another"
    for a, b in itertools.pairwise(records):
        if a.partition == b.partition:
            assert a.position < b.position
    whole = list(event_log.read_by_publish_time(Stream.EVENTS, start - timedelta(hours=1), end + timedelta(hours=1)))
    assert len(whole) == 90
    assert list(event_log.read_by_publish_time(Stream.EVENTS, end, start)) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        list(event_log.read_by_publish_time(Stream.EVENTS, start.replace(tzinfo=None), end))
    some = sorted({r.partition for r in records})[:2]
    chosen = list(event_log.read_by_publish_time(Stream.EVENTS, start, end, partitions=some))
    assert chosen == [r for r in records if r.partition in some] and chosen
    with pytest.raises(ValueError, match="partition"):
        event_log.read_by_publish_time(Stream.EVENTS, start, end, partitions=[PARTITIONS])


def test_properties_and_payload_round_trip(event_log: EventLog) -> None:
    props = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "ünï": "çødé ✓", "empty": ""}
    payload = bytes(range(256)) * 40
    start = datetime.now(UTC) - timedelta(seconds=1)
    publish_all(
        event_log,
        Stream.EVENTS,
        [OutgoingMessage("m-1", payload, props), OutgoingMessage("m-1", b"", None)],
    )
    consumer = event_log.subscribe(Stream.EVENTS, "aggregator")
    first, second = poll_until(consumer, 2)
    assert (first.payload, dict(first.properties)) == (payload, props)
    assert (second.payload, dict(second.properties)) == (b"", {})
    read = list(event_log.read_by_publish_time(Stream.EVENTS, start, datetime.now(UTC) + timedelta(seconds=1)))
    assert [dict(r.properties) for r in read] == [props, {}]
    with pytest.raises(TypeError):
        event_log.publish(Stream.EVENTS, "m-1", b"x", {"n": 1})  # type: ignore[dict-item]


def test_streams_are_separate(event_log: EventLog) -> None:
    publish_all(event_log, Stream.BAD_EVENTS, [OutgoingMessage("m-1", b"bad")])
    publish_all(event_log, Stream.EVENTS, [OutgoingMessage("m-1", b"good")])
    events = event_log.subscribe(Stream.EVENTS, "aggregator")
    bad = event_log.subscribe(Stream.BAD_EVENTS, "aggregator")
    assert [r.payload for r in poll_until(events, 1)] == [b"good"]
    got_bad = poll_until(bad, 1)
    assert [(r.stream, r.payload) for r in got_bad] == [(Stream.BAD_EVENTS, b"bad")]
    with pytest.raises(ValueError, match="stream"):
        events.commit(got_bad)


def test_commit_rejects_records_this_consumer_never_got(event_log: EventLog) -> None:
    publish_all(event_log, Stream.EVENTS, messages(3))
    consumer = event_log.subscribe(Stream.EVENTS, "aggregator")
    got = poll_until(consumer, 3)
    consumer.commit(got)
    consumer.commit(got)  # committing again is harmless
    foreign = Record(Stream.EVENTS, Position(0, 2**120), "x", b"", {}, datetime.now(UTC))
    with pytest.raises(ValueError, match="not delivered"):
        consumer.commit([foreign])


def test_backpressure_when_in_flight_is_exceeded(backend: LogBackend) -> None:
    tiny = backend.open(max_in_flight=2)
    accepted: list[Future[Position]] = []
    refused = None
    for i in range(20_000):  # publish() only queues, so a call soon meets two unsettled publishes
        try:
            accepted.append(tiny.publish(Stream.EVENTS, f"m-{i % 3}", b"x" * 10_000))
        except LogBackpressure as exc:
            refused = exc
            break
    assert refused is not None, "20,000 publishes never met the in-flight limit of 2"
    assert len(accepted) >= 2
    done, not_done = wait(accepted, timeout=POLL_TIMEOUT_S)
    assert not not_done
    assert all(isinstance(f.result(), Position) for f in done)
    # Once settled, there is room again.
    assert isinstance(tiny.publish(Stream.EVENTS, "m-0", b"y").result(timeout=POLL_TIMEOUT_S), Position)


def test_publish_after_close_is_unavailable(backend: LogBackend) -> None:
    event_log = backend.open()
    event_log.publish(Stream.EVENTS, "m", b"x").result(timeout=POLL_TIMEOUT_S)
    event_log.close()
    event_log.close()  # idempotent
    with pytest.raises(LogUnavailable):
        event_log.publish(Stream.EVENTS, "m", b"x")


def test_close_flushes_pending_publishes(backend: LogBackend) -> None:
    event_log = backend.open()
    futures = [event_log.publish(Stream.EVENTS, f"m-{i % 4}", b"%d" % i) for i in range(200)]
    event_log.close()
    assert all(f.done() for f in futures)
    assert len({f.result() for f in futures}) == 200


def test_members_of_one_group_never_get_the_same_record(event_log: EventLog) -> None:
    a = event_log.subscribe(Stream.EVENTS, "aggregator")
    b = event_log.subscribe(Stream.EVENTS, "aggregator")
    a.poll(1, 0.2)
    b.poll(1, 0.2)
    time.sleep(2.0)  # let Pulsar settle which member is active for each partition
    sent = messages(200, keys=11)
    publish_all(event_log, Stream.EVENTS, sent)
    got_a: list[Record] = []
    got_b: list[Record] = []
    deadline = time.monotonic() + POLL_TIMEOUT_S
    while len(got_a) + len(got_b) < len(sent) and time.monotonic() < deadline:
        for member, sink in ((a, got_a), (b, got_b)):
            batch = member.poll(100, 0.2)
            member.commit(batch)
            sink.extend(batch)
    assert not {r.position for r in got_a} & {r.position for r in got_b}
    assert sorted(r.payload for r in got_a + got_b) == sorted(m.payload for m in sent)


def test_ten_thousand_publishes_are_consumed_exactly_once(event_log: EventLog) -> None:
    n = 10_000
    sent = messages(n, keys=37)
    positions = publish_all(event_log, Stream.EVENTS, sent)
    assert len(set(positions)) == n
    consumer = event_log.subscribe(Stream.EVENTS, "aggregator")
    got = poll_until(consumer, n, commit=True)
    counts = Counter(r.payload for r in got)
    assert len(got) == n
    assert set(counts) == {m.payload for m in sent}
    assert max(counts.values()) == 1
    assert consumer.poll(100, 1.0) == []


# ---- what only the Pulsar adapter does -------------------------------------------------------------------


@pytest.mark.engines
def test_pulsar_creates_partitioned_topics_and_turns_deduplication_on(real_engines: RealEngines) -> None:

    settings = real_engines.settings.pulsar
    admin = PulsarAdmin(settings.admin_url)
    namespace = f"{settings.tenant}/test-{uuid.uuid4().hex[:10]}"
    status, _ = admin.request("PUT", f"/admin/v2/namespaces/{namespace}")
    assert status in (200, 204)
    try:
        assert admin.request("GET", f"/admin/v2/namespaces/{namespace}/deduplication")[1] is not True
        event_log = PulsarEventLog(
            dataclasses.replace(settings, namespace=namespace), producer_name="dedup-test", partitions=3
        )
        event_log.close()
        assert admin.request("GET", f"/admin/v2/namespaces/{namespace}/deduplication")[1] is True
        assert admin.partition_count(f"{namespace}/events") == 3
        assert admin.partition_count(f"{namespace}/bad-events") == 3
    finally:
        for stream in Stream:
            admin.delete_partitioned_topic(f"{namespace}/{stream.value}")
        delete_pulsar_namespace(admin, namespace)


@pytest.mark.engines
def test_pulsar_refuses_a_non_partitioned_topic_of_the_same_name(real_engines: RealEngines) -> None:

    settings = real_engines.settings.pulsar
    admin = PulsarAdmin(settings.admin_url)
    suffix = f"-flat-{uuid.uuid4().hex[:10]}"
    flat = f"{settings.namespace}/events{suffix}"
    assert admin.request("PUT", f"/admin/v2/persistent/{flat}")[0] in (200, 204)
    try:
        with pytest.raises(LogUnavailable, match="not partitioned"):
            PulsarEventLog(settings, producer_name="flat-test", topic_suffix=suffix)
    finally:
        admin.request("DELETE", f"/admin/v2/persistent/{flat}?force=true")
        admin.delete_partitioned_topic(f"{settings.namespace}/bad-events{suffix}")


@pytest.mark.engines
def test_pulsar_producer_names_are_exclusive_while_alive_and_reusable_after(request: pytest.FixtureRequest) -> None:

    backend, cleanup = _pulsar_backend(request)
    try:
        first = backend.open()
        assert isinstance(first, PulsarEventLog)
        first.publish(Stream.EVENTS, "m", b"1").result(timeout=POLL_TIMEOUT_S)
        suffix = first.topic_path(Stream.EVENTS).rsplit("/events", 1)[1]

        def same_name() -> PulsarEventLog:
            twin = PulsarEventLog(
                first.settings, producer_name=first.producer_name, topic_suffix=suffix, operation_timeout_s=10
            )
            backend.opened.append(twin)
            return twin

        with pytest.raises(LogUnavailable, match="producer"):
            same_name().publish(Stream.EVENTS, "m", b"2")
        first.close()
        assert isinstance(same_name().publish(Stream.EVENTS, "m", b"3").result(timeout=POLL_TIMEOUT_S), Position)
    finally:
        backend.close_all()
        cleanup()


@pytest.mark.engines
def test_pulsar_unreachable_admin_is_unavailable(real_engines: RealEngines) -> None:

    settings = dataclasses.replace(real_engines.settings.pulsar, admin_url="http://127.0.0.1:9")
    with pytest.raises(LogUnavailable, match=r"127\.0\.0\.1:9"):
        PulsarEventLog(settings, producer_name="nobody", admin_timeout_s=2)
