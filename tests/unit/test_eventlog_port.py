"""The pure parts of the event-log port: partitioning, positions, the in-flight budget, argument checks, and the
Pulsar message-id packing (no broker needed)."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gnomon.eventlog.inflight import InFlightBudget
from gnomon.eventlog.port import (
    LogBackpressure,
    Position,
    Record,
    Stream,
    check_group,
    check_properties,
    check_utc_range,
    partition_for_key,
)
from gnomon.eventlog.pulsar_admin import PulsarAdmin
from gnomon.eventlog.pulsar_log import decode_offset, encode_message_id


def test_partition_for_key_is_crc32_of_utf8_modulo_count() -> None:
    # Fixed values: a change here would move merchants between partitions of an existing log.
    assert zlib.crc32(b"merchant-1") == 0x3C4C2A6B
    assert [partition_for_key(f"merchant-{i}", 4) for i in range(8)] == [1, 3, 1, 3, 0, 2, 0, 2]
    assert [partition_for_key(f"merchant-{i}", 16) for i in range(8)] == [13, 11, 1, 7, 4, 2, 8, 14]
    assert partition_for_key("", 4) == 0
    assert partition_for_key("ünï", 7) == zlib.crc32("ünï".encode()) % 7
    with pytest.raises(ValueError, match="partitions"):
        partition_for_key("m", 0)


@given(st.text(max_size=64), st.integers(min_value=1, max_value=1024))
def test_partition_for_key_is_in_range_and_deterministic(key: str, partitions: int) -> None:
    p = partition_for_key(key, partitions)
    assert 0 <= p < partitions
    assert p == partition_for_key(key, partitions)


@given(st.integers(min_value=0, max_value=2**16), st.integers(min_value=0, max_value=2**160))
def test_position_text_form_round_trips(partition: int, offset: int) -> None:
    position = Position(partition, offset)
    assert Position.decode(position.encode()) == position


@pytest.mark.parametrize("text", ["", "1", "1:", ":2", "a:1", "1:-2", "1:2:3"])
def test_position_decode_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="position"):
        Position.decode(text)


def test_positions_order_by_partition_then_offset() -> None:
    assert sorted([Position(1, 0), Position(0, 9), Position(0, 2)]) == [Position(0, 2), Position(0, 9), Position(1, 0)]


def test_record_identity_is_stream_and_position() -> None:
    now = datetime.now(UTC)
    a = Record(Stream.EVENTS, Position(2, 5), "m", b"x", {"a": "1"}, now)
    b = Record(Stream.EVENTS, Position(2, 5), "m", b"x", {"a": "1"}, now)
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a.partition == 2


def test_budget_bounds_messages_and_bytes() -> None:
    budget = InFlightBudget(max_messages=3, max_bytes=100)
    budget.acquire(2, 60)
    with pytest.raises(LogBackpressure, match="in flight"):
        budget.acquire(1, 50)  # bytes
    budget.acquire(1, 40)
    with pytest.raises(LogBackpressure):
        budget.acquire(1, 0)  # messages
    budget.release(3, 100)
    assert budget.in_flight == 0
    assert budget.wait_idle(0)
    budget.acquire(1, 10_000)  # one oversized message passes when nothing else is in flight
    with pytest.raises(LogBackpressure):
        budget.acquire(1, 1)
    with pytest.raises(ValueError, match="limits"):
        InFlightBudget(0, 1)


def test_group_names_are_portable() -> None:
    assert check_group("aggregator-v2.hourly_1") == "aggregator-v2.hourly_1"
    for bad in ["", "-x", "a/b", "../x", "a b", "x" * 101]:
        with pytest.raises(ValueError, match="consumer group"):
            check_group(bad)


def test_properties_must_be_strings() -> None:
    assert check_properties(None) == {}
    assert check_properties({"a": "b"}) == {"a": "b"}
    with pytest.raises(TypeError):
        check_properties({"a": 1})  # type: ignore[dict-item]


def test_time_ranges_must_be_aware() -> None:
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    check_utc_range(aware, aware.astimezone(timezone(timedelta(hours=5, minutes=30))))
    with pytest.raises(ValueError, match="start"):
        check_utc_range(aware.replace(tzinfo=None), aware)
    with pytest.raises(ValueError, match="end"):
        check_utc_range(aware, aware.replace(tzinfo=None))


message_ids = st.tuples(
    st.integers(min_value=0, max_value=2**63 - 1),
    st.integers(min_value=0, max_value=2**63 - 1),
    st.integers(min_value=-1, max_value=2**31),
)


@given(message_ids)
def test_pulsar_message_id_packing_round_trips(mid: tuple[int, int, int]) -> None:
    assert decode_offset(encode_message_id(*mid)) == mid


@given(message_ids, message_ids)
def test_pulsar_message_id_packing_keeps_order(a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
    assert (a < b) == (encode_message_id(*a) < encode_message_id(*b))


def test_pulsar_message_id_packing_rejects_unstored_ids() -> None:
    with pytest.raises(ValueError, match="message id"):
        encode_message_id(-1, 0, -1)


def test_pulsar_admin_wants_an_http_url() -> None:
    with pytest.raises(ValueError, match="http"):
        PulsarAdmin("pulsar://127.0.0.1:6650")
