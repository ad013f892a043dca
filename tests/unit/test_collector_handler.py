"""BatchHandler (the pipeline without gRPC) and the error -> status mapping, over an in-memory EventLog.

The fake implements the EventLog port; the real embedded log runs in tests/integration/test_collector_*.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.rpc import code_pb2, error_details_pb2  # type: ignore[import-untyped]

from collector_svc.errors import BatchRejected, Overloaded, RateLimited, status_proto
from collector_svc.handler import BatchHandler, CallInfo
from collector_svc.metrics import CollectorMetrics
from collector_svc.settings import CollectorSettings
from collector_svc.validation import BatchProblem
from gnomon.eventlog.port import (
    LogBackpressure,
    LogConsumer,
    LogUnavailable,
    OutgoingMessage,
    Position,
    Record,
    Stream,
)
from gnomon.settings import CommonSettings
from gnomon.telemetry import Exporter, Telemetry, TelemetrySettings, setup_telemetry
from gnomon.v1 import collector_pb2 as cpb
from gnomon.v1 import event_pb2

NOW = datetime(2026, 11, 26, 12, 0, 0, 250_000, tzinfo=UTC)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@dataclass
class Published:
    stream: Stream
    key: str
    payload: bytes
    properties: Mapping[str, str] | None


@dataclass
class FakeLog:
    """In-memory EventLog: futures resolve at once unless told otherwise."""

    published: list[Published] = field(default_factory=list)
    backpressure: bool = False
    fail: dict[Stream, BaseException] = field(default_factory=dict)
    hold: threading.Event | None = None  # publish blocks until set
    never_resolve: bool = False

    def publish(
        self, stream: Stream, key: str, payload: bytes, properties: Mapping[str, str] | None = None
    ) -> Future[Position]:
        if self.backpressure:
            raise LogBackpressure("full")
        if self.hold is not None:
            self.hold.wait(5)
        future: Future[Position] = Future()
        if stream in self.fail:
            future.set_exception(self.fail[stream])
        elif not self.never_resolve:
            self.published.append(Published(stream, key, payload, properties))
            future.set_result(Position(0, len(self.published)))
        return future

    def publish_many(self, stream: Stream, messages: Sequence[OutgoingMessage]) -> list[Future[Position]]:
        return [self.publish(stream, m.key, m.payload, m.properties) for m in messages]

    def subscribe(self, stream: Stream, group: str) -> LogConsumer:
        raise NotImplementedError

    def read_by_publish_time(
        self, stream: Stream, start: datetime, end: datetime, partitions: Sequence[int] | None = None
    ) -> Iterator[Record]:
        raise NotImplementedError

    def partition_count(self, stream: Stream) -> int:
        return 1

    def close(self) -> None:
        pass

    def on(self, stream: Stream) -> list[Published]:
        return [p for p in self.published if p.stream is stream]


def event(i: int, **fields: str) -> event_pb2.Event:
    ev = event_pb2.Event(event_id=f"ev-{i}", name="page_view", client_id="c1", ip="203.0.113.77")
    ev.event_time.FromDatetime(NOW - timedelta(seconds=3))
    for k, v in fields.items():
        setattr(ev, k, v)
    return ev


def raw_batch(*events: event_pb2.Event, batch_id: str = "b-1") -> bytes:
    return cpb.EventBatch(events=events, batch_id=batch_id).SerializeToString()


@pytest.fixture
def telemetry() -> Telemetry:
    return setup_telemetry(TelemetrySettings(exporter=Exporter.MEMORY))


def make(log: FakeLog, telemetry: Telemetry, tmp_path: Path, **overrides: object) -> BatchHandler:
    common = CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp_path)})
    settings = CollectorSettings(common=common, collector_id="col-test", **overrides)  # type: ignore[arg-type]
    return BatchHandler(settings, log, lambda: NOW, CollectorMetrics(telemetry))


CALL = CallInfo("merchant-a", "ipv4:192.0.2.44:5555", (), TRACEPARENT)


def test_accepts_and_stamps(telemetry: Telemetry, tmp_path: Path) -> None:
    log = FakeLog()
    response = make(log, telemetry, tmp_path).handle(raw_batch(event(1), event(2, ip="")), CALL)
    assert response.batch_id == "b-1"
    assert list(response.statuses) == [cpb.EVENT_STATUS_ACCEPTED] * 2
    assert (response.accepted, response.duplicates, response.rejected) == (2, 0, 0)
    [published] = log.on(Stream.EVENTS)
    assert published.key == "merchant-a"
    assert published.properties == {"collector_id": "col-test", "traceparent": TRACEPARENT}
    logged = event_pb2.LoggedBatch.FromString(published.payload)
    assert logged.merchant_id == "merchant-a"
    assert logged.received_time.ToDatetime(UTC) == NOW
    assert logged.traceparent == TRACEPARENT
    assert logged.collector_id == "col-test"
    assert [e.event_id for e in logged.events] == ["ev-1", "ev-2"]
    assert [e.ip for e in logged.events] == ["203.0.113.0", "192.0.2.0"]  # event's own, then the peer's
    assert log.on(Stream.BAD_EVENTS) == []


def test_rejections_answered_and_logged_as_bad_events(telemetry: Telemetry, tmp_path: Path) -> None:
    log = FakeLog()
    batch = raw_batch(event(1), event(2, name="bad name"), event(3), event(4, client_id=""))
    response = make(log, telemetry, tmp_path).handle(batch, CALL)
    assert list(response.statuses) == [
        cpb.EVENT_STATUS_ACCEPTED,
        cpb.EVENT_STATUS_REJECTED,
        cpb.EVENT_STATUS_ACCEPTED,
        cpb.EVENT_STATUS_REJECTED,
    ]
    assert [(r.index, r.event_id, r.reason, r.field) for r in response.rejections] == [
        (1, "ev-2", cpb.REJECT_REASON_NAME_INVALID, "events[1].name"),
        (3, "ev-4", cpb.REJECT_REASON_MISSING_CLIENT_ID, "events[3].client_id"),
    ]
    assert (response.accepted, response.rejected) == (2, 2)
    logged = event_pb2.LoggedBatch.FromString(log.on(Stream.EVENTS)[0].payload)
    assert [e.event_id for e in logged.events] == ["ev-1", "ev-3"]
    bad = [event_pb2.BadEvent.FromString(p.payload) for p in log.on(Stream.BAD_EVENTS)]
    assert [(b.merchant_id, b.reason, b.field) for b in bad] == [
        ("merchant-a", "REJECT_REASON_NAME_INVALID", "events[1].name"),
        ("merchant-a", "REJECT_REASON_MISSING_CLIENT_ID", "events[3].client_id"),
    ]
    assert event_pb2.Event.FromString(bad[0].payload).ip == "203.0.113.0"
    assert bad[0].received_time.ToDatetime(UTC) == NOW
    assert all(b"203.0.113.77" not in p.payload for p in log.published)


def test_duplicates_after_durable_accept(telemetry: Telemetry, tmp_path: Path) -> None:
    log = FakeLog()
    handler = make(log, telemetry, tmp_path)
    handler.handle(raw_batch(event(1), event(2)), CALL)
    again = handler.handle(raw_batch(event(1), event(2), event(3)), CALL)
    assert list(again.statuses) == [cpb.EVENT_STATUS_DUPLICATE] * 2 + [cpb.EVENT_STATUS_ACCEPTED]
    assert (again.accepted, again.duplicates) == (1, 2)
    logged = event_pb2.LoggedBatch.FromString(log.on(Stream.EVENTS)[1].payload)
    assert [e.event_id for e in logged.events] == ["ev-3"]
    other_merchant = CallInfo("merchant-b", CALL.peer, (), "")
    assert handler.handle(raw_batch(event(1)), other_merchant).accepted == 1


def test_all_duplicates_publish_nothing(telemetry: Telemetry, tmp_path: Path) -> None:
    log = FakeLog()
    handler = make(log, telemetry, tmp_path)
    handler.handle(raw_batch(event(1)), CALL)
    handler.handle(raw_batch(event(1)), CALL)
    assert len(log.on(Stream.EVENTS)) == 1


def test_failed_publish_is_not_remembered(telemetry: Telemetry, tmp_path: Path) -> None:
    log = FakeLog(fail={Stream.EVENTS: LogUnavailable("down")})
    handler = make(log, telemetry, tmp_path)
    with pytest.raises(LogUnavailable):
        handler.handle(raw_batch(event(1)), CALL)
    log.fail.clear()
    assert handler.handle(raw_batch(event(1)), CALL).accepted == 1


def test_bad_event_failure_fails_call_but_keeps_accepted(telemetry: Telemetry, tmp_path: Path) -> None:
    log = FakeLog(fail={Stream.BAD_EVENTS: LogUnavailable("bad-events down")})
    handler = make(log, telemetry, tmp_path)
    with pytest.raises(LogUnavailable):
        handler.handle(raw_batch(event(1), event(2, name="")), CALL)
    log.fail.clear()
    retry = handler.handle(raw_batch(event(1), event(2, name="")), CALL)
    assert list(retry.statuses) == [cpb.EVENT_STATUS_DUPLICATE, cpb.EVENT_STATUS_REJECTED]


def test_backpressure_propagates(telemetry: Telemetry, tmp_path: Path) -> None:
    with pytest.raises(LogBackpressure):
        make(FakeLog(backpressure=True), telemetry, tmp_path).handle(raw_batch(event(1)), CALL)


def test_publish_timeout(telemetry: Telemetry, tmp_path: Path) -> None:
    handler = make(FakeLog(never_resolve=True), telemetry, tmp_path, publish_timeout_s=0.05)
    with pytest.raises(TimeoutError):
        handler.handle(raw_batch(event(1)), CALL)


@pytest.mark.parametrize(
    ("raw", "problem", "field"),
    [
        (raw_batch(), BatchProblem.EMPTY, "events"),
        (raw_batch(*[event(i) for i in range(501)]), BatchProblem.TOO_MANY_EVENTS, "events"),
        (raw_batch(event(1, user_agent="u" * 512), batch_id="x" * (1 << 20)), BatchProblem.TOO_LARGE, "events"),
        (b"\xff\xff\xff garbage", BatchProblem.UNPARSEABLE, "batch"),
    ],
    ids=["empty", "too-many", "too-large", "garbage"],
)
def test_whole_batch_rejected_and_logged(
    telemetry: Telemetry, tmp_path: Path, raw: bytes, problem: BatchProblem, field: str
) -> None:
    log = FakeLog()
    with pytest.raises(BatchRejected) as info:
        make(log, telemetry, tmp_path).handle(raw, CALL)
    assert [v.problem for v in info.value.violations] == [problem]
    assert log.on(Stream.EVENTS) == []
    [bad] = [event_pb2.BadEvent.FromString(p.payload) for p in log.on(Stream.BAD_EVENTS)]
    assert (bad.merchant_id, bad.reason, bad.field) == ("merchant-a", problem.value, field)
    assert b"203.0.113.77" not in bad.payload
    status = status_proto(info.value)
    assert status.code == code_pb2.INVALID_ARGUMENT
    request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(request)
    assert [(v.field, v.reason) for v in request.field_violations] == [(field, problem.value)]


def test_rate_limited(telemetry: Telemetry, tmp_path: Path) -> None:
    log = FakeLog()
    # a slow refill (one token per 100 s), so no stall between the two calls can refill the bucket
    handler = make(log, telemetry, tmp_path, rate_limit_events_per_s=0.01, rate_limit_burst=3.0)
    handler.handle(raw_batch(event(1), event(2), event(3)), CALL)
    with pytest.raises(RateLimited) as info:
        handler.handle(raw_batch(event(4)), CALL)
    assert 0 < info.value.retry_after_s <= 100
    status = status_proto(info.value)
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert retry.retry_delay.ToNanoseconds() > 0
    assert len(log.on(Stream.EVENTS)) == 1


def test_in_flight_bound(telemetry: Telemetry, tmp_path: Path) -> None:
    gate = threading.Event()
    log = FakeLog(hold=gate)
    handler = make(log, telemetry, tmp_path, max_in_flight_batches=1)
    results: list[cpb.CollectResponse] = []
    first = threading.Thread(target=lambda: results.append(handler.handle(raw_batch(event(1)), CALL)))
    first.start()
    for _ in range(500):
        if handler._slots._value == 0:
            break
        threading.Event().wait(0.01)
    with pytest.raises(Overloaded):
        handler.handle(raw_batch(event(2)), CALL)
    gate.set()
    first.join(5)
    assert results[0].accepted == 1
    assert handler.handle(raw_batch(event(3)), CALL).accepted == 1


def test_status_mapping_of_engine_failures() -> None:
    assert status_proto(LogBackpressure("x")).code == code_pb2.RESOURCE_EXHAUSTED
    assert status_proto(LogUnavailable("x")).code == code_pb2.UNAVAILABLE
    assert status_proto(TimeoutError()).code == code_pb2.UNAVAILABLE
    assert status_proto(Overloaded("x")).code == code_pb2.RESOURCE_EXHAUSTED
    internal = status_proto(ZeroDivisionError("secret detail"))
    assert internal.code == code_pb2.INTERNAL
    assert "secret detail" not in internal.message


def test_metrics(telemetry: Telemetry, tmp_path: Path) -> None:
    handler = make(FakeLog(), telemetry, tmp_path)
    handler.handle(raw_batch(event(1), event(2, name=""), event(3, name="")), CALL)
    handler.handle(raw_batch(event(1)), CALL)
    assert sum(p.value for p in telemetry.metric_points("gnomon.collector.events.accepted")) == 1
    assert sum(p.value for p in telemetry.metric_points("gnomon.collector.events.duplicate")) == 1
    rejected = telemetry.metric_points("gnomon.collector.events.rejected")
    assert {p.attributes["reason"]: p.value for p in rejected} == {"REJECT_REASON_MISSING_NAME": 2}
    [latency] = telemetry.metric_points("gnomon.collector.ack.latency")
    assert latency.count == 2
