"""The collector over real gRPC on 127.0.0.1, with the real embedded event log and SQLite control store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from collector_svc.iptrunc import parse_networks
from collector_svc.server import CollectorDeps
from collector_svc.settings import CollectorSettings
from collector_svc.testing import GatedEventLog, bearer, running_collector
from gnomon.control import KeyKind, SqliteControlStore
from gnomon.eventlog.embedded import EmbeddedEventLog
from gnomon.eventlog.port import EventLog, Record, Stream
from gnomon.settings import CommonSettings
from gnomon.telemetry import Exporter, Telemetry, TelemetrySettings, setup_telemetry
from gnomon.v1 import collector_pb2 as cpb
from gnomon.v1 import event_pb2

FULL_IPS = ("203.0.113.77", "2001:db8:abcd:12:34::5", "198.51.100.201")


@dataclass
class Env:
    tmp: Path
    control: SqliteControlStore
    log: EmbeddedEventLog
    telemetry: Telemetry
    settings: CollectorSettings
    key_a: str
    key_b: str
    read_key_a: str
    merchant_a: str
    merchant_b: str

    def deps(self, log: EventLog | None = None) -> CollectorDeps:
        return CollectorDeps(event_log=log or self.log, control=self.control, telemetry=self.telemetry)

    def records(self, stream: Stream) -> list[Record]:
        now = datetime.now(UTC)
        return list(self.log.read_by_publish_time(stream, now - timedelta(hours=1), now + timedelta(hours=1)))

    def logged(self) -> list[event_pb2.LoggedBatch]:
        return [event_pb2.LoggedBatch.FromString(r.payload) for r in self.records(Stream.EVENTS)]

    def bad(self) -> list[event_pb2.BadEvent]:
        return [event_pb2.BadEvent.FromString(r.payload) for r in self.records(Stream.BAD_EVENTS)]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    control = SqliteControlStore(tmp_path / "control.sqlite3")
    a = control.create_merchant("A", "Europe/Berlin", "EUR").merchant_id
    b = control.create_merchant("B", "Asia/Kolkata", "INR").merchant_id
    log = EmbeddedEventLog(tmp_path / "log", fsync=False)
    telemetry = setup_telemetry(TelemetrySettings(exporter=Exporter.MEMORY))
    settings = CollectorSettings(
        common=CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp_path)}),
        port=0,
        rate_limit_events_per_s=0,
        collector_id="col-it",
        grace_s=5,
    )
    yield Env(
        tmp_path,
        control,
        log,
        telemetry,
        settings,
        key_a=control.create_key(a, KeyKind.WRITE).secret,
        key_b=control.create_key(b, KeyKind.WRITE).secret,
        read_key_a=control.create_key(a, KeyKind.READ).secret,
        merchant_a=a,
        merchant_b=b,
    )
    log.close()
    control.close()
    telemetry.shutdown()


def event(i: int, ip: str = "203.0.113.77", name: str = "page_view") -> event_pb2.Event:
    ev = event_pb2.Event(event_id=f"ev-{i}", name=name, client_id="c1", ip=ip)
    ev.event_time.FromDatetime(datetime.now(UTC) - timedelta(seconds=2))
    return ev


def batch(*events: event_pb2.Event, batch_id: str = "b") -> cpb.EventBatch:
    return cpb.EventBatch(events=events, batch_id=batch_id)


def status_details(err: grpc.RpcError) -> list[Any]:
    status = rpc_status.from_call(err)
    assert status is not None
    out: list[Any] = []
    for detail in status.details:
        for kind in (error_details_pb2.BadRequest, error_details_pb2.RetryInfo):
            if detail.Is(kind.DESCRIPTOR):
                msg = kind()
                detail.Unpack(msg)
                out.append(msg)
    return out


def test_accepts_stamps_and_logs(env: Env) -> None:
    with running_collector(env.settings, env.deps()) as c:
        response = c.stub.Collect(batch(event(1), event(2, ip="")), metadata=bearer(env.key_a))
    assert list(response.statuses) == [cpb.EVENT_STATUS_ACCEPTED] * 2
    [record] = env.records(Stream.EVENTS)
    logged = event_pb2.LoggedBatch.FromString(record.payload)
    assert record.key == env.merchant_a
    assert logged.merchant_id == env.merchant_a
    assert logged.collector_id == "col-it"
    assert [e.ip for e in logged.events] == ["203.0.113.0", "127.0.0.0"]  # own ip, then the peer's
    assert record.properties["traceparent"] == logged.traceparent
    [span] = [s for s in env.telemetry.spans() if s.name.endswith("/Collect")]
    ctx = span.context
    assert logged.traceparent == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def test_client_trace_context_is_continued(env: Env) -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with running_collector(env.settings, env.deps()) as c:
        c.stub.Collect(batch(event(1)), metadata=(*bearer(env.key_a), ("traceparent", parent)))
    [logged] = env.logged()
    assert logged.traceparent.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert logged.traceparent != parent


def test_merchant_comes_from_the_key_only(env: Env) -> None:
    with running_collector(env.settings, env.deps()) as c:
        c.stub.Collect(batch(event(1)), metadata=bearer(env.key_a))
        c.stub.Collect(batch(event(1)), metadata=bearer(env.key_b))  # same id, other merchant: accepted
    assert sorted(lb.merchant_id for lb in env.logged()) == sorted([env.merchant_a, env.merchant_b])


@pytest.mark.parametrize(
    ("metadata", "code", "mentions"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED, "authorization"),
        ((("authorization", "Bearer nope"),), grpc.StatusCode.UNAUTHENTICATED, "malformed"),
        ((("authorization", "Bearer gn_w_0123456789abcdef_" + "x" * 43),), grpc.StatusCode.UNAUTHENTICATED, "unknown"),
    ],
    ids=["missing", "malformed", "unknown"],
)
def test_bad_keys_refused(
    env: Env, metadata: tuple[tuple[str, str], ...], code: grpc.StatusCode, mentions: str
) -> None:
    with running_collector(env.settings, env.deps()) as c, pytest.raises(grpc.RpcError) as info:
        c.stub.Collect(batch(event(1)), metadata=metadata)
    assert info.value.code() == code
    assert mentions in str(info.value.details())
    assert env.records(Stream.EVENTS) == []


def test_read_key_cannot_write(env: Env) -> None:
    with running_collector(env.settings, env.deps()) as c:
        with pytest.raises(grpc.RpcError) as info:
            c.stub.Collect(batch(event(1)), metadata=bearer(env.read_key_a))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as stream_info:
            list(c.stub.CollectStream(iter([batch(event(1))]), metadata=bearer(env.read_key_a)))
        assert stream_info.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_revoked_key_refused(env: Env) -> None:
    settings = replace(env.settings, auth_cache_ttl_s=0.0)
    key = env.control.create_key(env.merchant_a, KeyKind.WRITE)
    with running_collector(settings, env.deps()) as c:
        assert c.stub.Collect(batch(event(1)), metadata=bearer(key.secret)).accepted == 1
        env.control.revoke_key(key.key.key_id)
        with pytest.raises(grpc.RpcError) as info:
            c.stub.Collect(batch(event(2)), metadata=bearer(key.secret))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in str(info.value.details())


def test_duplicate_sends(env: Env) -> None:
    with running_collector(env.settings, env.deps()) as c:
        first = c.stub.Collect(batch(event(1), event(2)), metadata=bearer(env.key_a))
        again = c.stub.Collect(batch(event(1), event(2), event(3)), metadata=bearer(env.key_a))
    assert first.accepted == 2
    assert list(again.statuses) == [cpb.EVENT_STATUS_DUPLICATE] * 2 + [cpb.EVENT_STATUS_ACCEPTED]
    assert sorted(e.event_id for lb in env.logged() for e in lb.events) == ["ev-1", "ev-2", "ev-3"]


def test_rejected_events_kept_in_bad_events_log(env: Env) -> None:
    with running_collector(env.settings, env.deps()) as c:
        response = c.stub.Collect(
            batch(event(1), event(2, name="no spaces"), event(3, ip="not-an-ip 203.0.113.77")),
            metadata=bearer(env.key_a),
        )
    assert [(r.index, r.reason) for r in response.rejections] == [
        (1, cpb.REJECT_REASON_NAME_INVALID),
        (2, cpb.REJECT_REASON_INVALID_IP),
    ]
    bad = env.bad()
    assert [(b.reason, b.field) for b in bad] == [
        ("REJECT_REASON_NAME_INVALID", "events[1].name"),
        ("REJECT_REASON_INVALID_IP", "events[2].ip"),
    ]
    assert event_pb2.Event.FromString(bad[0].payload).ip == "203.0.113.0"
    assert event_pb2.Event.FromString(bad[1].payload).ip == ""


def _all_written_bytes(env: Env) -> bytes:
    parts = []
    for stream in (Stream.EVENTS, Stream.BAD_EVENTS):
        for r in env.records(stream):
            parts.append(r.payload)
            parts.extend(f"{k}={v}".encode() for k, v in r.properties.items())
    return b"\n".join(parts)


def test_full_ip_never_written(env: Env) -> None:
    settings = replace(env.settings, trusted_proxies=parse_networks(["127.0.0.0/8"]))
    xff = (("x-forwarded-for", "198.51.100.201, 127.0.0.9"),)
    with running_collector(settings, env.deps()) as c:
        c.stub.Collect(
            batch(event(1), event(2, ip=FULL_IPS[1]), event(3, ip=""), event(4, name="bad", ip=FULL_IPS[0] + "x")),
            metadata=(*bearer(env.key_a), *xff),
        )
        c.stub.Collect(batch(event(5, name="also bad!")), metadata=bearer(env.key_a))
        with pytest.raises(grpc.RpcError):
            c.stub.Collect(batch(*[event(100 + i) for i in range(501)]), metadata=bearer(env.key_a))
    written = _all_written_bytes(env)
    assert len(env.records(Stream.BAD_EVENTS)) == 3
    for full in FULL_IPS:
        assert full.encode() not in written
    assert b"203.0.113.0" in written
    assert b"2001:db8:abcd::" in written
    assert b"198.51.100.0" in written  # from X-Forwarded-For: the peer 127.0.0.1 is a trusted proxy


def test_xff_ignored_from_untrusted_peer(env: Env) -> None:
    with running_collector(env.settings, env.deps()) as c:
        c.stub.Collect(batch(event(1, ip="")), metadata=(*bearer(env.key_a), ("x-forwarded-for", "198.51.100.201")))
    [logged] = env.logged()
    assert logged.events[0].ip == "127.0.0.0"


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (batch, "events"),
        (lambda: batch(*[event(i) for i in range(501)]), "events"),
        (lambda: batch(event(1), batch_id="x" * (1536 * 1024)), "events"),
    ],
    ids=["empty", "501-events", "1.5-MiB"],
)
def test_whole_batch_invalid(env: Env, make: object, field: str) -> None:
    request = make()  # type: ignore[operator]
    with running_collector(env.settings, env.deps()) as c, pytest.raises(grpc.RpcError) as info:
        c.stub.Collect(request, metadata=bearer(env.key_a))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [bad_request] = status_details(info.value)
    assert [v.field for v in bad_request.field_violations] == [field]
    assert env.records(Stream.EVENTS) == []
    assert len(env.bad()) == 1


def test_huge_message_refused_by_grpc(env: Env) -> None:
    with running_collector(env.settings, env.deps()) as c, pytest.raises(grpc.RpcError) as info:
        c.stub.Collect(batch(event(1), batch_id="x" * (3 << 20)), metadata=bearer(env.key_a))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_rate_limit(env: Env) -> None:
    settings = replace(env.settings, rate_limit_events_per_s=1.0, rate_limit_burst=3.0)
    with running_collector(settings, env.deps()) as c:
        c.stub.Collect(batch(event(1), event(2), event(3)), metadata=bearer(env.key_a))
        with pytest.raises(grpc.RpcError) as info:
            c.stub.Collect(batch(event(4)), metadata=bearer(env.key_a))
        assert c.stub.Collect(batch(event(4)), metadata=bearer(env.key_b)).accepted == 1
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    [retry] = status_details(info.value)
    assert 0 < retry.retry_delay.ToNanoseconds() <= 1_000_000_000


def test_in_flight_bound_answers_resource_exhausted(env: Env) -> None:
    gated = GatedEventLog(env.log)
    settings = replace(env.settings, max_in_flight_batches=1)
    with running_collector(settings, env.deps(gated)) as c:
        gated.close_gate()
        first = c.stub.Collect.future(batch(event(1)), metadata=bearer(env.key_a))
        assert gated.entered.wait(5)
        with pytest.raises(grpc.RpcError) as info:
            c.stub.Collect(batch(event(2)), metadata=bearer(env.key_a), timeout=5)
        gated.open_gate()
        assert first.result(timeout=10).accepted == 1
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_details(info.value)  # RetryInfo


def test_log_backpressure_answers_resource_exhausted(env: Env, tmp_path: Path) -> None:
    small = EmbeddedEventLog(tmp_path / "small-log", fsync=False, max_in_flight=1)
    try:
        with running_collector(env.settings, env.deps(small)) as c, pytest.raises(grpc.RpcError) as info:
            c.stub.Collect(batch(event(1, name=""), event(2, name="")), metadata=bearer(env.key_a))
    finally:
        small.close()
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_log_unavailable_answers_unavailable(env: Env, tmp_path: Path) -> None:
    closed = EmbeddedEventLog(tmp_path / "closed-log", fsync=False)
    closed.close()
    with running_collector(env.settings, env.deps(closed)) as c, pytest.raises(grpc.RpcError) as info:
        c.stub.Collect(batch(event(1)), metadata=bearer(env.key_a))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_late_ack_answers_unavailable_and_retry_is_safe(env: Env) -> None:
    gated = GatedEventLog(env.log)
    settings = replace(env.settings, publish_timeout_s=2.0)  # also bounds the retry's write: room for a stall
    with running_collector(settings, env.deps(gated)) as c:
        gated.ack_gate.clear()
        with pytest.raises(grpc.RpcError) as info:
            c.stub.Collect(batch(event(1)), metadata=bearer(env.key_a))
        gated.ack_gate.set()
        retry = c.stub.Collect(batch(event(1)), metadata=bearer(env.key_a))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert retry.accepted == 1  # not remembered: its ack never came
    # written twice: the aggregator's event_id dedup keeps it counted once
    assert [e.event_id for lb in env.logged() for e in lb.events] == ["ev-1", "ev-1"]


def test_collect_stream_in_order_and_ends_on_bad_batch(env: Env) -> None:
    requests = [batch(event(1), batch_id="one"), batch(event(2), batch_id="two"), batch(batch_id="empty")]
    with running_collector(env.settings, env.deps()) as c:
        responses = c.stub.CollectStream(iter(requests), metadata=bearer(env.key_a))
        got: list[str] = []

        def drain() -> None:
            got.extend(r.batch_id for r in responses)

        with pytest.raises(grpc.RpcError) as info:
            drain()
        ok = list(c.stub.CollectStream(iter(requests[:2]), metadata=bearer(env.key_a)))
    assert got == ["one", "two"]
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [(r.batch_id, r.duplicates) for r in ok] == [("one", 1), ("two", 1)]


def test_health_and_reflection(env: Env) -> None:
    with running_collector(env.settings, env.deps()) as c:
        health = health_pb2_grpc.HealthStub(c.channel)
        for service in ("", "gnomon.v1.CollectorService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(c.channel)
        [answer] = reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for s in answer.list_services_response.service}
    assert {"gnomon.v1.CollectorService", "grpc.health.v1.Health"} <= names


def test_graceful_shutdown_drains_in_flight(env: Env) -> None:
    gated = GatedEventLog(env.log)
    with running_collector(env.settings, env.deps(gated)) as c:
        health = health_pb2_grpc.HealthStub(c.channel)
        gated.close_gate()
        in_flight = c.stub.Collect.future(batch(event(1)), metadata=bearer(env.key_a))
        assert gated.entered.wait(5)
        stopped = c.server.stop(grace=10)
        with pytest.raises(grpc.RpcError) as refused:
            c.stub.Collect(batch(event(2)), metadata=bearer(env.key_a), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.RpcError):  # new calls of any kind are refused while draining
            health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        gated.open_gate()
        assert in_flight.result(timeout=10).accepted == 1
        assert stopped.wait(10)
    assert [e.event_id for lb in env.logged() for e in lb.events] == ["ev-1"]


def test_garbage_bytes_answered_invalid_argument(env: Env) -> None:
    with running_collector(env.settings, env.deps()) as c:
        raw: grpc.UnaryUnaryMultiCallable[bytes, bytes] = c.channel.unary_unary("/gnomon.v1.CollectorService/Collect")
        with pytest.raises(grpc.RpcError) as info:
            raw(b"\x0a\xff\xff\xff\x0f", metadata=bearer(env.key_a))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [bad_request] = status_details(info.value)
    assert bad_request.field_violations[0].reason == "BATCH_UNPARSEABLE"
