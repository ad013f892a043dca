"""Pulsar standalone, started by `gnomon engines up`, does what Gnomon relies on: a partitioned topic with
batching and bounded async sends delivers each message exactly once, and per-partition readers that seek by
publish time return exactly the suffix written after that time."""

from __future__ import annotations

import threading
import time
import uuid

import pulsar
import pytest

from gnomon.engines.pulsar_admin import admin_call
from tests.conftest import RealEngines

pytestmark = pytest.mark.engines

MESSAGES = 10_000
PARTITIONS = 4
MAX_IN_FLIGHT = 500


def make_topic(engines: RealEngines, partitions: int) -> str:
    ns = engines.settings.pulsar.namespace
    name = f"smoke-{uuid.uuid4().hex[:10]}"
    admin_call(engines.settings.pulsar.admin_url, "PUT", f"/admin/v2/persistent/{ns}/{name}/partitions", partitions)
    return f"persistent://{ns}/{name}"


def send_all(producer: pulsar.Producer, payloads: list[bytes]) -> None:
    """Async sends with at most MAX_IN_FLIGHT unacknowledged; raises if any send failed."""
    slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)
    errors: list[str] = []

    def done(result: pulsar.Result, _msg_id: pulsar.MessageId) -> None:
        if result != pulsar.Result.Ok:
            errors.append(str(result))
        slots.release()

    for i, payload in enumerate(payloads):
        slots.acquire()
        producer.send_async(payload, done, partition_key=f"merchant-{i % 37}")
    producer.flush()
    for _ in range(MAX_IN_FLIGHT):
        slots.acquire()
    assert errors == []


@pytest.fixture
def client(real_engines: RealEngines) -> pulsar.Client:
    c = pulsar.Client(real_engines.settings.pulsar.service_url, operation_timeout_seconds=30)
    yield c
    c.close()


def test_partitioned_topic_delivers_each_message_exactly_once(real_engines: RealEngines, client: pulsar.Client) -> None:
    topic = make_topic(real_engines, PARTITIONS)
    consumer = client.subscribe(topic, "smoke", consumer_type=pulsar.ConsumerType.Shared)
    producer = client.create_producer(
        topic,
        batching_enabled=True,
        batching_max_messages=1000,
        batching_max_publish_delay_ms=5,
        max_pending_messages=MAX_IN_FLIGHT,
        compression_type=pulsar.CompressionType.LZ4,
    )
    payloads = [f"event-{i}".encode() for i in range(MESSAGES)]
    send_all(producer, payloads)

    seen: list[bytes] = []
    deadline = time.monotonic() + 120
    while len(seen) < MESSAGES and time.monotonic() < deadline:
        msg = consumer.receive(timeout_millis=10_000)
        seen.append(msg.data())
        consumer.acknowledge(msg)
    with pytest.raises(pulsar.Timeout):
        consumer.receive(timeout_millis=1000)  # nothing beyond the 10,000
    assert len(seen) == MESSAGES
    assert sorted(seen) == sorted(payloads)
    partitions_used = {int(p.rsplit("-", 1)[1]) for p in client.get_topic_partitions(topic)}
    assert partitions_used == set(range(PARTITIONS))


def test_reader_per_partition_seeks_by_publish_time(real_engines: RealEngines, client: pulsar.Client) -> None:
    topic = make_topic(real_engines, PARTITIONS)
    producer = client.create_producer(topic, batching_enabled=False, max_pending_messages=MAX_IN_FLIGHT)
    before = [f"before-{i}".encode() for i in range(400)]
    after = [f"after-{i}".encode() for i in range(600)]
    send_all(producer, before)
    time.sleep(0.05)
    cut_ms = int(time.time() * 1000)
    time.sleep(0.05)
    send_all(producer, after)

    read: list[bytes] = []
    for partition_topic in client.get_topic_partitions(topic):
        reader = client.create_reader(partition_topic, pulsar.MessageId.earliest)
        reader.seek(cut_ms)
        while reader.has_message_available():
            msg = reader.read_next(timeout_millis=10_000)
            assert msg.publish_timestamp() >= cut_ms
            read.append(msg.data())
        reader.close()
    assert sorted(read) == sorted(after)
