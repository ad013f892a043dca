"""Hypothesis against a running collector: garbage never crashes it and always gets a specific answer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector_svc.server import CollectorDeps
from collector_svc.settings import CollectorSettings
from collector_svc.testing import RunningCollector, bearer, running_collector
from gnomon.control import KeyKind, SqliteControlStore
from gnomon.eventlog.embedded import EmbeddedEventLog
from gnomon.settings import CommonSettings
from gnomon.telemetry import TelemetrySettings, setup_telemetry
from gnomon.v1 import collector_pb2 as cpb
from gnomon.v1 import event_pb2

ALLOWED_ERRORS = {grpc.StatusCode.INVALID_ARGUMENT}
STATUS_OF_REJECTED = cpb.EVENT_STATUS_REJECTED


@dataclass
class Fuzz:
    collector: RunningCollector
    key: str
    raw: grpc.UnaryUnaryMultiCallable[bytes, bytes]


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    tmp = tmp_path_factory.mktemp("fuzz")
    control = SqliteControlStore(tmp / "control.sqlite3")
    merchant = control.create_merchant("Fuzz", "UTC", "EUR").merchant_id
    key = control.create_key(merchant, KeyKind.WRITE).secret
    log = EmbeddedEventLog(tmp / "log", fsync=False)
    telemetry = setup_telemetry(TelemetrySettings())
    settings_ = CollectorSettings(
        common=CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp)}),
        port=0,
        rate_limit_events_per_s=0,
        max_in_flight_batches=64,
    )
    deps = CollectorDeps(event_log=log, control=control, telemetry=telemetry)
    with running_collector(settings_, deps) as collector:
        raw: grpc.UnaryUnaryMultiCallable[bytes, bytes] = collector.channel.unary_unary(
            "/gnomon.v1.CollectorService/Collect"
        )
        yield Fuzz(collector, key, raw)
    log.close()
    control.close()


def _check_response(response: cpb.CollectResponse, sent: int) -> None:
    assert len(response.statuses) == sent
    assert response.accepted + response.duplicates + response.rejected == sent
    assert len(response.rejections) == response.rejected
    rejected_at = [i for i, s in enumerate(response.statuses) if s == STATUS_OF_REJECTED]
    assert [r.index for r in response.rejections] == rejected_at
    assert all(r.reason != cpb.REJECT_REASON_UNSPECIFIED and r.message for r in response.rejections)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096))
def test_random_bytes(fuzz: Fuzz, data: bytes) -> None:
    error: grpc.RpcError | None = None
    try:
        reply = fuzz.raw(data, metadata=bearer(fuzz.key), timeout=10)
    except grpc.RpcError as err:
        error = err
    if error is not None:
        assert error.code() in ALLOWED_ERRORS, error
        assert error.details()
        return
    response = cpb.CollectResponse.FromString(reply)
    parsed = cpb.EventBatch.FromString(data)  # it was a valid batch after all
    _check_response(response, len(parsed.events))


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
_long = st.text(alphabet=st.characters(codec="utf-8"), max_size=1200)


@st.composite
def events(draw: st.DrawFn) -> event_pb2.Event:
    now = datetime.now(UTC)
    ev = event_pb2.Event(
        event_id=draw(st.one_of(st.uuids().map(str), _text, st.just("fixed-id"))),
        name=draw(st.one_of(st.sampled_from(["page_view", "purchase"]), _text)),
        client_id=draw(_text),
        user_id=draw(_text),
        session_id=draw(_text),
        user_agent=draw(_long),
        ip=draw(st.one_of(st.ip_addresses().map(str), _text)),
        locale=draw(_text),
    )
    if draw(st.booleans()):
        delta = draw(st.integers(min_value=-100 * 3600, max_value=3600))
        ev.event_time.FromDatetime(now + timedelta(seconds=delta))
        ev.event_time.nanos = draw(st.sampled_from([0, 5, -1, 10**9]))
    if draw(st.booleans()):
        ev.page.url, ev.page.path, ev.page.title, ev.page.referrer = (draw(_long) for _ in range(4))
    if draw(st.booleans()):
        ev.utm.source, ev.utm.medium, ev.utm.campaign = (draw(_long) for _ in range(3))
    if draw(st.booleans()):
        ev.revenue.micros = draw(st.integers(min_value=-(2**63), max_value=2**63 - 1))
        ev.revenue.currency = draw(_text)
    if draw(st.booleans()):
        ev.screen.width = draw(st.integers(min_value=0, max_value=2**32 - 1))
    for k, v in draw(st.dictionaries(_text, _long, max_size=30)).items():
        ev.params[k] = v
    return ev


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(events(), max_size=30), _text)
def test_random_typed_batches(fuzz: Fuzz, evs: list[event_pb2.Event], batch_id: str) -> None:
    request = cpb.EventBatch(events=evs, batch_id=batch_id)
    error: grpc.RpcError | None = None
    try:
        response = fuzz.collector.stub.Collect(request, metadata=bearer(fuzz.key), timeout=10)
    except grpc.RpcError as err:
        error = err
    if error is not None:
        assert error.code() in ALLOWED_ERRORS, error
        assert not evs  # the only whole-batch problem these batches can have
        return
    assert response.batch_id == batch_id
    _check_response(response, len(evs))


def test_server_still_healthy_after_fuzzing(fuzz: Fuzz) -> None:
    ev = event_pb2.Event(event_id="after-fuzz", name="page_view", client_id="c")
    ev.event_time.FromDatetime(datetime.now(UTC))
    response = fuzz.collector.stub.Collect(cpb.EventBatch(events=[ev]), metadata=bearer(fuzz.key))
    assert response.accepted == 1
