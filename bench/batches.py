"""Fast, unique EventBatch payloads for load tests, built without per-event protobuf work.

One realistic Event is serialized once with a placeholder id; every event of every batch is that template with
the 32-byte placeholder replaced by a unique id (same length, so the encoding stays valid). A batch is the
concatenation of length-delimited field-1 entries — exactly what `EventBatch.SerializeToString()` would produce.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from aggregator.decode import encode_varint
from gnomon.v1 import collector_pb2, event_pb2

PLACEHOLDER = "X" * 32


def template_event(now: datetime | None = None) -> bytes:
    """A realistic page_view (~300 bytes serialized) whose event_id is PLACEHOLDER."""
    event = event_pb2.Event(
        event_id=PLACEHOLDER,
        name="page_view",
        client_id="c0a8f3e2-9d1b-4c55-8a7e-2f3b4c5d6e7f",
        page=event_pb2.Page(
            url="https://shop.example.com/products/trail-running-shoes?color=blue",
            path="/products/trail-running-shoes",
            title="Trail running shoes | Example Shop",
            referrer="https://www.google.com/",
        ),
        user_agent=(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36"
        ),
        ip="203.0.113.77",
        locale="en-US",
        screen=event_pb2.Screen(width=1920, height=1080),
        utm=event_pb2.Utm(source="google", medium="cpc", campaign="winter-sale"),
    )
    event.event_time.FromDatetime(now or datetime.now(UTC))
    return event.SerializeToString()


class BatchFactory:
    """Makes serialized EventBatch payloads of ``size`` events with ids unique per (prefix, sequence)."""

    def __init__(self, size: int, prefix: str, now: datetime | None = None) -> None:
        if len(prefix) > 12:
            raise ValueError("prefix must be at most 12 characters")
        template = template_event(now)
        cut = template.index(PLACEHOLDER.encode())
        self._head, self._tail = template[:cut], template[cut + 32 :]
        self._entry_tag = b"\x0a" + encode_varint(len(template))
        self._size = size
        self._prefix = prefix.ljust(12, "-")
        self._counter = itertools.count()

    def next(self) -> bytes:
        """The next batch; each call's events have ids never used before by this factory."""
        head, tail, tag, prefix = self._head, self._tail, self._entry_tag, self._prefix
        parts = []
        for _ in range(self._size):
            event_id = f"{prefix}{next(self._counter):020d}".encode()
            parts.append(tag + head + event_id + tail)
        return b"".join(parts)


def check_roundtrip() -> None:
    """The factory's bytes parse as a valid EventBatch with unique ids (used by a unit test)."""
    factory = BatchFactory(50, "chk")
    batch = collector_pb2.EventBatch.FromString(factory.next())
    ids = [e.event_id for e in batch.events]
    assert len(ids) == 50 and len(set(ids)) == 50 and all(len(i) == 32 for i in ids)
