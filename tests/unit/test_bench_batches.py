"""The benchmark's byte-level batch factory produces valid, unique EventBatch payloads."""

from __future__ import annotations

from bench.batches import BatchFactory, check_roundtrip
from gnomon.v1 import collector_pb2


def test_factory_batches_parse_and_ids_never_repeat() -> None:
    check_roundtrip()
    factory = BatchFactory(500, "t")
    first = collector_pb2.EventBatch.FromString(factory.next())
    second = collector_pb2.EventBatch.FromString(factory.next())
    ids = [e.event_id for e in (*first.events, *second.events)]
    assert len(ids) == 1000 and len(set(ids)) == 1000
    assert first.events[0].name == "page_view" and first.events[0].page.path == "/products/trail-running-shoes"
    assert first.ByteSize() < 1 << 20
