"""aggregator.decode: LoggedBatch bytes -> the event frame, and back (encode_events, logged_batch_of)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.decode import DecodeFailed, decode_batches, empty_frame, encode_events, logged_batch_of
from aggregator.frame import EVENT_BYTES, INT_COLUMNS, RAW_COLUMNS
from aggregator.page_paths import fill_page_paths
from collector_svc.stamping import logged_batch_bytes, stamp_header
from gnomon.v1 import collector_pb2, event_pb2

T0 = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
RECEIVED = datetime(2026, 5, 1, 12, 0, 5, 654321, tzinfo=UTC)


def full_event(event_id: str = "e1") -> event_pb2.Event:
    e = event_pb2.Event(
        event_id=event_id,
        name="purchase",
        client_id="c1",
        user_id="u1",
        session_id="s1",
        user_agent="UA/1.0",
        ip="203.0.113.0",
        locale="de-DE",
    )
    e.event_time.FromDatetime(T0)
    e.page.url = "https://shop.example/cart?x=1"
    e.page.path = "/cart"
    e.page.title = "Cart"
    e.page.referrer = "https://www.google.com/"
    e.utm.source, e.utm.medium, e.utm.campaign, e.utm.term = "google", "cpc", "spring", "shoes"
    e.revenue.micros, e.revenue.currency = 12_340_000, "EUR"
    e.screen.width, e.screen.height = 1920, 1080
    e.params["coupon"] = "X"
    return e


def logged(merchant_id: str, *events: event_pb2.Event, received: datetime = RECEIVED) -> bytes:
    b = event_pb2.LoggedBatch(merchant_id=merchant_id, traceparent="tp", collector_id="c")
    b.received_time.FromDatetime(received)
    b.events.extend(events)
    return b.SerializeToString()


def test_every_raw_column_is_decoded() -> None:
    frame = decode_batches([logged("m1", full_event())])
    assert list(frame.columns) == list(RAW_COLUMNS)
    row = frame.iloc[0].to_dict()
    us = lambda t: int((t - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))  # noqa: E731
    assert row == {
        "merchant_id": "m1",
        "event_id": "e1",
        "name": "purchase",
        "event_time_us": us(T0),
        "received_time_us": us(RECEIVED),
        "client_id": "c1",
        "user_id": "u1",
        "page_url": "https://shop.example/cart?x=1",
        "page_path": "/cart",
        "page_title": "Cart",
        "referrer": "https://www.google.com/",
        "user_agent": "UA/1.0",
        "ip": "203.0.113.0",
        "locale": "de-DE",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "spring",
        "revenue_micros": 12_340_000,
        "currency": "EUR",
    }


def test_dtypes_and_absent_fields() -> None:
    bare = event_pb2.Event(event_id="e2", name="page_view", client_id="c")
    frame = decode_batches([logged("m1", bare)])
    for column in RAW_COLUMNS:
        if column in INT_COLUMNS:
            assert frame[column].dtype == np.int64
        else:
            assert frame[column].dtype == "str"
    row = frame.iloc[0]
    assert row["page_url"] == row["page_path"] == row["currency"] == row["user_id"] == ""
    assert row["revenue_micros"] == 0
    assert row["event_time_us"] == 0  # absent timestamp: the epoch (the collector always sets it)
    assert not frame.isna().any().any()


def test_page_path_is_derived_from_the_url_when_empty() -> None:
    events = []
    for i, url in enumerate(["https://a.example/x/y?q=1#f", "https://a.example", "https://a.example/x/y", ""]):
        e = event_pb2.Event(event_id=f"e{i}", name="page_view", client_id="c")
        e.page.url = url
        events.append(e)
    events[2].page.path = "/given"
    frame = decode_batches([logged("m", *events)])
    assert frame["page_path"].tolist() == ["/x/y", "/", "/given", ""]
    assert fill_page_paths(["", "/p"], ["http://[broken", "x"]) == ["", "/p"]


def test_several_batches_keep_order_and_their_own_merchant_and_received_time() -> None:
    later = RECEIVED + timedelta(seconds=1)
    a = logged("m1", full_event("a1"), full_event("a2"))
    b = logged("m2", full_event("b1"), received=later)
    empty = logged("m3")
    frame = decode_batches([a, empty, b])
    assert frame["event_id"].tolist() == ["a1", "a2", "b1"]
    assert frame["merchant_id"].tolist() == ["m1", "m1", "m2"]
    assert frame["received_time_us"].iloc[2] - frame["received_time_us"].iloc[0] == 1_000_000


def test_collector_bytes_decode() -> None:
    """What the collector writes (retagged EventBatch after a stamped header) decodes like a LoggedBatch."""
    batch = collector_pb2.EventBatch(batch_id="b", events=[full_event("x"), full_event("y")])
    received = event_pb2.LoggedBatch()
    received.received_time.FromDatetime(RECEIVED)
    payload = logged_batch_bytes(stamp_header("m9", received.received_time, "", "c1"), batch)
    frame = decode_batches([payload])
    assert frame["event_id"].tolist() == ["x", "y"]
    assert set(frame["merchant_id"]) == {"m9"}


def test_empty_input() -> None:
    assert decode_batches([]).empty
    pd.testing.assert_frame_equal(decode_batches([logged("m")]), empty_frame())
    assert EVENT_BYTES in decode_batches([], with_event_bytes=True).columns


def test_a_bad_payload_names_its_index() -> None:
    with pytest.raises(DecodeFailed, match="payload 1"):
        decode_batches([logged("m", full_event()), b"\xff\xff\xff"])


def test_event_bytes_are_the_events() -> None:
    frame = decode_batches([logged("m1", full_event("a"), full_event("b"))], with_event_bytes=True)
    blobs = frame[EVENT_BYTES].tolist()
    assert [event_pb2.Event.FromString(b) for b in blobs] == [full_event("a"), full_event("b")]
    again = decode_batches([logged_batch_of("m1", blobs)])
    pd.testing.assert_frame_equal(
        again.drop(columns=["received_time_us"]), frame.drop(columns=[EVENT_BYTES, "received_time_us"])
    )


def test_encode_events_inverts_decode_on_raw_columns() -> None:
    frame = decode_batches([logged("m1", full_event("a"), event_pb2.Event(event_id="b", client_id="c"))])
    again = decode_batches([logged_batch_of("m1", encode_events(frame))])
    again["received_time_us"] = frame["received_time_us"]
    pd.testing.assert_frame_equal(again, frame)
    with pytest.raises(KeyError, match="missing"):
        encode_events(frame.drop(columns=["name"]))


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(_text, _text, st.integers(0, 4_000_000_000_000_000), st.integers(-(2**40), 2**40), _text),
        max_size=8,
    )
)
def test_decode_matches_the_protobuf_fields(rows: list[tuple[str, str, int, int, str]]) -> None:
    events = []
    for i, (name, url, time_us, micros, currency) in enumerate(rows):
        e = event_pb2.Event(event_id=f"e{i}", name=name, client_id="c")
        e.event_time.seconds, e.event_time.nanos = time_us // 1_000_000, time_us % 1_000_000 * 1000
        e.page.url = url
        e.revenue.micros, e.revenue.currency = micros, currency
        events.append(e)
    frame = decode_batches([logged("m", *events)])
    assert frame["name"].tolist() == [r[0] for r in rows]
    assert frame["page_url"].tolist() == [r[1] for r in rows]
    assert frame["event_time_us"].tolist() == [r[2] for r in rows]
    assert frame["revenue_micros"].tolist() == [r[3] for r in rows]
    assert frame["currency"].tolist() == [r[4] for r in rows]
