"""Tiered storage on the local Pulsar: `gnomon engines up` configures the filesystem offloader, so an explicit
offload moves a partition's closed ledgers into `<engines home>/pulsar/data/offload`, and a reprocess
(`read_by_publish_time`) reads them back from there, complete and in order."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gnomon.engines import specs
from gnomon.eventlog.port import OutgoingMessage, Stream, partition_for_key
from gnomon.eventlog.pulsar_log import PulsarEventLog, decode_offset
from tests.conftest import RealEngines

pytestmark = pytest.mark.engines

MESSAGES = 2_000
PARTITIONS = 4
KEYS = 37
CHUNK = 500


@pytest.fixture
def event_log(real_engines: RealEngines) -> Iterator[PulsarEventLog]:
    suffix = f"-offload-{uuid.uuid4().hex[:8]}"
    log = PulsarEventLog(
        real_engines.settings.pulsar,
        producer_name=f"offload-test{suffix}",
        partitions=PARTITIONS,
        topic_suffix=suffix,
        operation_timeout_s=20,
    )
    yield log
    log.close()
    for stream in Stream:  # also deletes the offloaded copies
        log.admin.delete_partitioned_topic(log.topic_path(stream))


def test_reprocess_reads_offloaded_ledgers(real_engines: RealEngines, event_log: PulsarEventLog) -> None:
    admin = event_log.admin
    messages = [OutgoingMessage(f"merchant-{i % KEYS}", f"event-{i:05d}".encode()) for i in range(MESSAGES)]
    start = datetime.now(UTC) - timedelta(milliseconds=1)
    positions = []
    for i in range(0, MESSAGES, CHUNK):  # stay within the log's in-flight budget
        positions += [f.result(timeout=60) for f in event_log.publish_many(Stream.EVENTS, messages[i : i + CHUNK])]
    end = datetime.now(UTC) + timedelta(milliseconds=1)
    expected = {
        p: [m.payload for m in messages if partition_for_key(m.key, PARTITIONS) == p] for p in range(PARTITIONS)
    }
    assert all(expected.values()), "every partition must hold data for this test to mean anything"
    assert [pos.partition for pos in positions] == [partition_for_key(m.key, PARTITIONS) for m in messages]

    offload_root = specs.pulsar_offload_dir(real_engines.layout)
    offloaded_ledgers: dict[int, set[int]] = {}
    for partition in range(PARTITIONS):
        topic = f"{event_log.topic_path(Stream.EVENTS)}-partition-{partition}"
        result = admin.offload_partition(topic, timeout_s=60)

        # The admin API reports the offload done, and every ledger holding data as offloaded.
        status = admin.offload_status(topic)
        assert status["status"] == "SUCCESS", status
        assert status["firstUnoffloadedMessage"]["ledgerId"] == result.retained_ledger
        ledgers = admin.internal_stats(topic)["ledgers"]
        with_data = {int(ls["ledgerId"]) for ls in ledgers if ls["entries"] > 0}
        assert with_data and with_data == set(result.offloaded_ledgers), ledgers
        assert result.retained_ledger not in with_data

        # Each offloaded ledger is a Hadoop MapFile (data + index) under the offload directory.
        tenant, namespace, name = topic.split("/")
        partition_dir = offload_root / tenant / namespace / "persistent" / name  # the managed ledger's name
        stored = {int(ls["ledgerId"]): ls for ls in admin.managed_ledger_info(topic)["ledgers"]}
        for ledger_id in result.offloaded_ledgers:
            info = stored[ledger_id]
            assert info["isOffloaded"] is True, info
            folder = partition_dir / f"{ledger_id}-{info['offloadedContextUuid']}"
            assert _size(folder / "data") > 0 and _size(folder / "index") > 0, sorted(offload_root.rglob("*"))
        offloaded_ledgers[partition] = set(result.offloaded_ledgers)

    # Reprocess: per partition, exactly the published payloads, in publish order, all from offloaded ledgers.
    records = list(event_log.read_by_publish_time(Stream.EVENTS, start, end))
    assert len(records) == MESSAGES
    for partition in range(PARTITIONS):
        mine = [r for r in records if r.partition == partition]
        assert [r.payload for r in mine] == expected[partition]
        assert [r.position.offset for r in mine] == sorted(r.position.offset for r in mine)
        assert {decode_offset(r.position.offset)[0] for r in mine} <= offloaded_ledgers[partition]


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0
