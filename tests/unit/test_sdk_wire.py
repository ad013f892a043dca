"""Unit tests of the SDK's wire helpers and event building (no network)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from gnomon_sdk import _wire
from gnomon_sdk._event import build_event, to_micros
from gnomon_sdk._proto.gnomon.v1 import collector_pb2, event_pb2
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st


@given(st.lists(st.binary(max_size=300), max_size=40), st.text(max_size=30))
def test_encode_batch_equals_protobuf(payloads: list[bytes], batch_id: str) -> None:
    events = [event_pb2.Event(event_id=p.hex(), name="n", client_id="c").SerializeToString() for p in payloads]
    expected = collector_pb2.EventBatch(events=[event_pb2.Event.FromString(e) for e in events], batch_id=batch_id)
    assert collector_pb2.EventBatch.FromString(_wire.encode_batch(events, batch_id)) == expected
    assert len(_wire.encode_batch(events)) == sum(_wire.framed_size(len(e)) for e in events)


@given(st.integers(min_value=1, max_value=2**63 - 1))
def test_varint_matches_protobuf(value: int) -> None:
    assert event_pb2.Revenue(micros=value).SerializeToString() == b"\x08" + _wire.varint(value)


def test_split_batches_respects_count_and_bytes() -> None:
    events = [b"x" * 100] * 1234
    runs = _wire.split_batches(events, max_events=500)
    assert [len(r) for r in runs] == [500, 500, 234]
    runs = _wire.split_batches(events, max_events=500, max_bytes=1000)
    assert all(sum(_wire.framed_size(len(e)) for e in r) <= 1000 for r in runs)
    assert sum(len(r) for r in runs) == 1234
    assert _wire.split_batches([b"y" * 5000], max_bytes=1000) == [[b"y" * 5000]]


def test_retry_info_from_googleapis_status() -> None:
    info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2, nanos=500_000_000))
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=8, message="slow down", details=[detail])
    trailing = [("other", "x"), (_wire.STATUS_DETAILS_KEY, status.SerializeToString())]
    assert _wire.retry_delay_s(trailing) == pytest.approx(2.5)
    assert _wire.retry_delay_s([(_wire.STATUS_DETAILS_KEY, b"\xff\xff garbage")]) is None
    assert _wire.retry_delay_s(None) is None
    # and what the SDK's helper writes is what googleapis reads
    ours = status_pb2.Status.FromString(_wire.status_details(14, "down", 0.25))
    unpacked = error_details_pb2.RetryInfo()
    assert ours.details[0].Unpack(unpacked)
    assert unpacked.retry_delay.ToTimedelta() == timedelta(milliseconds=250)


def test_build_event_fields() -> None:
    when = datetime(2025, 3, 4, 5, 6, 7, 890_000, tzinfo=timezone(timedelta(hours=2)))
    event_id, data = build_event(
        "purchase",
        "cid",
        None,
        {
            "event_time": when,
            "page_url": "https://s/p",
            "referrer": "https://google.com/",
            "screen": (390, 844),
            "utm_source": "news",
            "revenue": Decimal("12.345675"),
            "currency": "eur",
            "params": {"coupon": "X", "qty": 2, "gift": False, "ratio": 0.5},
        },
    )
    event = event_pb2.Event.FromString(data)
    assert len(event_id) == 32
    assert event.event_id == event_id
    assert event.event_time.ToDatetime(tzinfo=UTC) == when
    assert (event.page.url, event.page.referrer, event.page.title) == ("https://s/p", "https://google.com/", "")
    assert (event.screen.width, event.screen.height, event.utm.source) == (390, 844, "news")
    assert (event.revenue.micros, event.revenue.currency) == (12_345_675, "EUR")
    assert dict(event.params) == {"coupon": "X", "qty": "2", "gift": "false", "ratio": "0.5"}
    assert not event.HasField("page") or event.page.path == ""


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"event_time": datetime(2025, 1, 1)}, ValueError),  # noqa: DTZ001 - naive on purpose
        ({"revenue": 1.5, "currency": "EUR"}, TypeError),
        ({"revenue": 1}, ValueError),
        ({"currency": "EUR"}, ValueError),
        ({"revenue": 1, "revenue_micros": 1, "currency": "EUR"}, ValueError),
        ({"params": {"x": object()}}, TypeError),
        ({"colour": "red"}, TypeError),
        ({"page_title": "t" * 70_000}, ValueError),
    ],
)
def test_build_event_rejects(fields: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        build_event("e", "cid", None, fields)  # type: ignore[arg-type]


def test_required_fields_and_micros() -> None:
    with pytest.raises(ValueError, match="name"):
        build_event("", "cid", None, {})
    with pytest.raises(ValueError, match="client_id"):
        build_event("x", "", None, {})
    assert to_micros(Decimal("0.0000005")) == 0  # half-even
    assert to_micros(Decimal("0.0000015")) == 2
    assert to_micros(3) == 3_000_000
    assert build_event("x", "c", "my-id", {})[0] == "my-id"
