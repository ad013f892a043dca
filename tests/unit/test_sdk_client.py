"""SDK client behaviour against the in-process FakeCollector: batching, retries, errors, bounds, gzip."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from gnomon_sdk import (
    Client,
    ClientClosed,
    DeliveryError,
    ErrorKind,
    QueueFull,
    SpoolFull,
    SpoolLocked,
    read_records,
)
from gnomon_sdk._proto.gnomon.v1 import collector_pb2
from gnomon_sdk.testing import FakeCollector

KEY = "wk_test"
# fast retries; batches leave on size or flush() only, so a stall of the test thread cannot split one in two
FAST: dict[str, Any] = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "flush_interval_s": 60.0}
ONE_BATCH: dict[str, Any] = {"flush_interval_s": 60.0}


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture
def fake() -> Iterator[FakeCollector]:
    with FakeCollector([KEY]) as collector:
        yield collector


@pytest.fixture
def down_endpoint() -> str:
    """An endpoint nobody listens on (a fake collector's port, after it stopped)."""
    collector = FakeCollector([KEY]).start()
    collector.stop()
    return collector.endpoint


def track_n(client: Client, n: int, name: str = "page_view") -> list[str]:
    return [client.track(name, client_id=f"c{i % 7}", page_url=f"https://s/{i}") for i in range(n)]


def test_batches_by_size(fake: FakeCollector) -> None:
    with Client(KEY, [fake.endpoint], batch_size=10, flush_interval_s=60) as client:
        ids = track_n(client, 35)
        wait_until(lambda: len(fake.calls) == 3)
        time.sleep(0.1)
        assert [len(c.batch.events) for c in fake.calls] == [10, 10, 10]  # the 5 left wait for time/flush
        result = client.flush(5)
        assert result.complete
        assert [len(c.batch.events) for c in fake.calls] == [10, 10, 10, 5]
    assert [e.event_id for b in fake.batches for e in b.events] == ids  # in order


def test_batches_by_time(fake: FakeCollector) -> None:
    with Client(KEY, [fake.endpoint], flush_interval_s=0.1) as client:
        track_n(client, 3)
        started = time.monotonic()
        wait_until(lambda: len(fake.calls) == 1)
        assert time.monotonic() - started < 10  # sent by the timer: no flush() was called
        assert len(fake.calls[0].batch.events) == 3
        assert client.stats().pending == 0 or client.flush(2).complete


def test_retries_unavailable_and_resource_exhausted_then_delivers_exactly_once(fake: FakeCollector) -> None:
    fake.fail_next(grpc.StatusCode.UNAVAILABLE, 2)
    fake.fail_next(grpc.StatusCode.RESOURCE_EXHAUSTED, 2)
    fake.fail_next(grpc.StatusCode.DEADLINE_EXCEEDED, 1)
    errors: list[DeliveryError] = []
    with Client(KEY, [fake.endpoint], batch_size=100, on_error=errors.append, **FAST) as client:
        ids = track_n(client, 1000)
        assert client.flush(10).complete
        stats = client.stats()
    assert errors == []
    assert sorted(fake.received_ids) == sorted(ids)  # each id answered exactly once
    assert fake.accepted_ids == set(ids)
    assert (stats.accepted, stats.duplicate, stats.retries, stats.failed, stats.pending) == (1000, 0, 5, 0, 0)
    assert [c.code for c in fake.calls[:5]] == [grpc.StatusCode.UNAVAILABLE] * 2 + [
        grpc.StatusCode.RESOURCE_EXHAUSTED
    ] * 2 + [grpc.StatusCode.DEADLINE_EXCEEDED]


def test_honours_retry_info_delay(fake: FakeCollector) -> None:
    fake.fail_next(grpc.StatusCode.RESOURCE_EXHAUSTED, retry_after_s=0.4)
    with Client(KEY, [fake.endpoint], backoff_base_s=0.0, backoff_max_s=0.0, **ONE_BATCH) as client:
        track_n(client, 5)
        assert client.flush(5).complete
    first, second = fake.calls[0], fake.calls[1]
    assert second.at - first.at >= 0.38


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INTERNAL]
)
def test_non_retryable_errors_are_reported_and_dead_lettered(
    fake: FakeCollector, tmp_path: Path, code: grpc.StatusCode
) -> None:
    fake.fail_next(code, details="nope")
    errors: list[DeliveryError] = []
    with Client(KEY, [fake.endpoint], spool_dir=tmp_path, on_error=errors.append, **FAST) as client:
        ids = track_n(client, 7)
        assert client.flush(5).complete
        later = track_n(client, 3)
        assert client.flush(5).complete
        stats = client.stats()
    assert len(fake.calls) == 2  # not retried
    assert [(e.kind, e.code, e.message) for e in errors] == [(ErrorKind.FAILED, code, "nope")]
    assert errors[0].event_ids == tuple(ids)
    assert (stats.failed, stats.accepted, stats.retries) == (7, 3, 0)
    assert fake.accepted_ids == set(later)
    dead = [collector_pb2.EventBatch.FromString(r) for r in read_records(errors[0].dead_letter)]
    assert [e.event_id for e in dead[0].events] == ids
    assert code.name in (tmp_path / "dead-letter.txt").read_text()
    assert not list(tmp_path.glob("seg-*.log"))


def test_wrong_write_key_is_unauthenticated(fake: FakeCollector) -> None:
    errors: list[DeliveryError] = []
    with Client("wrong", [fake.endpoint], on_error=errors.append, **ONE_BATCH) as client:
        track_n(client, 2)
        client.flush(5)
    assert [(e.kind, e.reason, len(e.event_ids)) for e in errors] == [(ErrorKind.FAILED, "UNAUTHENTICATED", 2)]
    assert fake.calls[0].write_key == "wrong"


def test_rejected_events_reported_not_retried_and_duplicates_count_as_delivered(fake: FakeCollector) -> None:
    def reject(event: object) -> tuple[collector_pb2.RejectReason.ValueType, str, str] | None:
        if getattr(event, "name", "") == "bad-name":
            return collector_pb2.REJECT_REASON_NAME_INVALID, "name", "use [A-Za-z][A-Za-z0-9_]*"
        return None

    fake.reject = reject
    errors: list[DeliveryError] = []
    with Client(KEY, [fake.endpoint], on_error=errors.append, **ONE_BATCH) as client:
        good = client.track("ok", client_id="c", event_id="id-1")
        bad = client.track("bad-name", client_id="c")
        assert client.flush(5).complete
        client.track("ok", client_id="c", event_id="id-1")  # resend of a delivered event
        result = client.flush(5)
        stats = client.stats()
    assert result.complete
    assert good == "id-1"
    assert len(fake.calls) == 2
    assert [(e.kind, e.event_ids, e.reason, e.field) for e in errors] == [
        (ErrorKind.REJECTED, (bad,), "REJECT_REASON_NAME_INVALID", "events[1].name")
    ]
    assert (stats.sent, stats.accepted, stats.rejected, stats.duplicate, stats.pending) == (3, 1, 1, 1, 0)


def test_queue_bound_without_spool_raises_queue_full(down_endpoint: str) -> None:
    errors: list[DeliveryError] = []
    client = Client(
        KEY, [down_endpoint], max_queue_events=5, batch_size=2, max_retries=10_000, on_error=errors.append, **FAST
    )
    ids = track_n(client, 5)
    with pytest.raises(QueueFull):
        client.track("x", client_id="c")
    assert client.stats().pending == 5
    result = client.close(timeout_s=0.3)
    assert (result.complete, result.pending, result.durable, result.timed_out) == (False, 5, False, True)
    assert [e.kind for e in errors] == [ErrorKind.DROPPED]
    assert sorted(errors[0].event_ids) == sorted(ids)
    assert client.stats().failed == 5
    with pytest.raises(ClientClosed):
        client.track("x", client_id="c")


def test_retries_exhausted_without_spool_drops_and_reports(down_endpoint: str) -> None:
    errors: list[DeliveryError] = []
    with Client(KEY, [down_endpoint], max_retries=2, on_error=errors.append, **FAST) as client:
        ids = track_n(client, 3)
        result = client.flush(5)
        stats = client.stats()
    assert result.complete  # given up, and reported
    assert [(e.kind, e.reason) for e in errors] == [(ErrorKind.RETRIES_EXHAUSTED, "UNAVAILABLE")]
    assert errors[0].event_ids == tuple(ids)
    assert (stats.retries, stats.failed) == (3, 3)


def test_queue_bound_with_spool_spills_to_disk_and_flush_returns_during_outage(
    down_endpoint: str, tmp_path: Path
) -> None:
    client = Client(KEY, [down_endpoint], max_queue_events=5, batch_size=4, spool_dir=tmp_path, **FAST)
    ids = track_n(client, 50)  # no QueueFull: the spool takes the overflow
    started = time.monotonic()
    result = client.flush(10)
    assert time.monotonic() - started < 5
    assert (result.complete, result.pending, result.durable, result.timed_out) == (False, 50, True, False)
    stats = client.stats()
    assert (stats.spooled, stats.pending) == (50, 50)
    assert stats.spilled >= 45
    client.close(timeout_s=1)
    on_disk = [r for p in sorted(tmp_path.glob("seg-*.log")) for r in read_records(p)]
    assert len(on_disk) == 50
    # a new client on the same directory delivers everything, in order
    with FakeCollector([KEY]) as fake, Client(KEY, [fake.endpoint], spool_dir=tmp_path) as again:
        assert again.stats().recovered == 50
        assert again.flush(10).complete
    assert [e.event_id for b in fake.batches for e in b.events] == ids
    assert not list(tmp_path.glob("seg-*.log"))


def test_spool_size_bound_raises_spool_full(down_endpoint: str, tmp_path: Path) -> None:
    with Client(KEY, [down_endpoint], spool_dir=tmp_path, max_spool_bytes=2_000, **FAST) as client:
        with pytest.raises(SpoolFull):
            track_n(client, 100)
        assert isinstance(SpoolFull("x"), QueueFull)
        assert 0 < client.stats().tracked < 100


def test_one_client_per_spool_dir(tmp_path: Path, fake: FakeCollector) -> None:
    with Client(KEY, [fake.endpoint], spool_dir=tmp_path), pytest.raises(SpoolLocked):
        Client(KEY, [fake.endpoint], spool_dir=tmp_path)
    Client(KEY, [fake.endpoint], spool_dir=tmp_path).close()  # released on close


def test_gzip_is_negotiated_on_the_wire(fake: FakeCollector) -> None:
    for gzip in (True, False):
        with Client(KEY, [fake.endpoint], gzip=gzip, **ONE_BATCH) as client:
            track_n(client, 20)
            assert client.flush(5).complete
    assert [c.compressed for c in fake.calls] == [True, False]


def test_failover_and_round_robin(down_endpoint: str) -> None:
    with FakeCollector([KEY]) as a, FakeCollector([KEY]) as b:
        with Client(KEY, [down_endpoint, a.endpoint, b.endpoint], batch_size=10, **FAST) as client:
            ids = []
            for _ in range(6):
                ids += track_n(client, 10)
                assert client.flush(5).complete
            stats = client.stats()
        assert len(a.calls) >= 2
        assert len(b.calls) >= 2
        assert a.accepted_ids | b.accepted_ids == set(ids)
        assert stats.retries >= 1
        assert stats.accepted == 60


def test_outage_then_recovery_in_one_client(tmp_path: Path) -> None:
    first = FakeCollector([KEY]).start()
    port = first.port
    first.stop()
    with Client(KEY, [f"127.0.0.1:{port}"], spool_dir=tmp_path, batch_size=25, **FAST) as client:
        ids = track_n(client, 100)
        result = client.flush(5)
        assert (result.complete, result.durable) == (False, True)
        with FakeCollector([KEY], port=port) as back:
            wait_until(lambda: back.accepted_ids == set(ids), timeout_s=10)
            assert client.flush(5).complete
        assert client.stats().retries >= 1


def test_page_context_manager_and_call_metadata(fake: FakeCollector) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with Client(KEY, fake.endpoint, call_metadata=lambda: [("traceparent", traceparent)]) as client:
        client.page("https://s/a", client_id="c", title="A", referrer="https://t.co/x")
    event = fake.batches[0].events[0]
    assert (event.name, event.page.url, event.page.title, event.page.referrer) == (
        "page_view",
        "https://s/a",
        "A",
        "https://t.co/x",
    )
    assert client.close().complete  # idempotent
    assert fake.calls[0].metadata["traceparent"] == traceparent


def test_invalid_settings() -> None:
    with pytest.raises(ValueError, match="write_key"):
        Client("")
    with pytest.raises(ValueError, match="batch_size"):
        Client(KEY, batch_size=501)


def test_close_from_on_error_callback(fake: FakeCollector) -> None:
    fake.fail_next(grpc.StatusCode.PERMISSION_DENIED)
    holder: list[Client] = []
    results = []

    def on_error(error: DeliveryError) -> None:
        results.append(holder[0].close())

    client = Client(KEY, [fake.endpoint], on_error=on_error)
    holder.append(client)
    track_n(client, 3)
    client.flush(5)
    wait_until(lambda: client.close().complete)
    assert len(results) == 1
    with pytest.raises(ClientClosed):
        client.track("x", client_id="c")
