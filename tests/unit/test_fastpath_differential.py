"""The Rust fast path (gnomon_fastpath) against the pure-Python path: same answers, same logged bytes.

Both `BatchHandler`s get the same request bytes, clock and peer; they must agree on the outcome (the same
CollectResponse, or the same error with the same violations), on every BadEvent, and on the LoggedBatch bytes.
The only freedom: upb writes map entries (`params`) in hash order, which differs from process to process, so
the fast path writes them in upb's deterministic order and is compared with the Python path's LoggedBatch
re-serialized with `deterministic=True`; with fewer than two params per event the bytes must be identical.

Batches are built at the wire level: events merged from two serializations (repeated fields, merged
sub-messages, repeated map keys), unknown fields at every level, batch_id anywhere.
"""

from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from aggregator.decode import encode_varint
from collector_svc.errors import BatchRejected
from collector_svc.handler import BatchHandler, CallInfo
from collector_svc.iptrunc import truncate_ip
from collector_svc.metrics import CollectorMetrics
from collector_svc.screen import FastScreen
from collector_svc.settings import CollectorSettings
from collector_svc.validation import MAX_AGE_S, MAX_AHEAD_S, Window
from gnomon.eventlog.port import Stream
from gnomon.settings import CommonSettings
from gnomon.telemetry import Exporter, TelemetrySettings, setup_telemetry
from gnomon.v1 import collector_pb2 as cpb
from gnomon.v1 import event_pb2
from tests.unit.test_collector_handler import FakeLog

pytest.importorskip("gnomon_fastpath")

NOW = datetime(2026, 11, 26, 12, 0, 0, 250_000, tzinfo=UTC)
WINDOW = Window.around(NOW)
PEERS = ("ipv4:192.0.2.44:5555", "ipv6:[2001:db8:77:1::9]:443", "unix:/tmp/x.sock")
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def field(number: int, wire: int, body: bytes) -> bytes:
    """One wire-format field; `body` is the value already encoded for `wire` (length added for wire 2)."""
    return encode_varint(number << 3 | wire) + (encode_varint(len(body)) + body if wire == 2 else body)


def entry(body: bytes) -> bytes:
    return field(1, 2, body)


# --- strategies ---------------------------------------------------------------------------------------------

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
_long = st.one_of(_text, st.text(alphabet=st.characters(codec="utf-8"), min_size=90, max_size=130))
_names = st.one_of(
    st.sampled_from(["page_view", "purchase", "a", "A_1", "x" * 40, "x" * 41, "9lives", "bad name", "é", ""]),
    _text,
)
_ids = st.one_of(st.uuids().map(str), st.sampled_from(["dup-1", "dup-2", "", "e" * 64, "e" * 65, "é" * 64]), _text)
IP_SAMPLES = [
    "",
    "203.0.113.77",
    "1.2.3.0",
    "255.255.255.255",
    "::",
    "::1",
    "1::",
    "::ffff:198.51.100.9",
    "::FFFF:c633:6409",
    "fe80::1%eth0",
    "fe80::1%",
    "fe80::1%a%b",
    "fe80::1%é",
    "2001:0DB8:1234:ffff:ffff:ffff:ffff:ffff",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:1.2.3.4",
    "::1.2.3.4",
    "1:2:3:4:5:6:7:1.2.3.4",
    "1::2::3",
    ":1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:",
    "12345::",
    "::g",
    "1.2.3",
    "01.2.3.4",
    "256.1.1.1",
    "1.2.3.4 ",
    "\u0661.\u0662.\u0663.\u0664",
    "::/0",
    "x",
]
_ips = st.one_of(
    st.sampled_from(IP_SAMPLES),
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: a.exploded),
    st.ip_addresses(v=6).map(lambda a: f"{a}%{'zone'}"),
    _text,
)
_unknown_numbers = st.sampled_from([15, 16, 20, 100, 1000, 19000, (1 << 29) - 1])


@st.composite
def unknown_field(draw: st.DrawFn) -> bytes:
    number = draw(_unknown_numbers)
    wire = draw(st.sampled_from([0, 1, 2, 5]))
    if wire == 0:
        return field(number, 0, encode_varint(draw(st.integers(min_value=0, max_value=(1 << 64) - 1))))
    if wire == 1:
        return field(number, 1, draw(st.binary(min_size=8, max_size=8)))
    if wire == 5:
        return field(number, 5, draw(st.binary(min_size=4, max_size=4)))
    return field(number, 2, draw(st.binary(max_size=12)))  # not UTF-8-checked: unknown


def _with_unknown(draw: st.DrawFn, body: bytes) -> bytes:
    """`body` (a serialized message) with unknown fields added before and/or after it."""
    before = b"".join(draw(st.lists(unknown_field(), max_size=1)))
    after = b"".join(draw(st.lists(unknown_field(), max_size=1)))
    return before + body + after


_tame_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
_tame_names = st.sampled_from(["page_view", "purchase", "a", "A_1", "x" * 40, "sign_up2"])
_tame_keys = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)


@st.composite
def event_message(draw: st.DrawFn) -> event_pb2.Event:
    """Two thirds "tame" (about one field in twenty drawn wild, so mostly valid events), one third wild."""
    tame = draw(st.integers(0, 2)) > 0

    def pick(tame_values: st.SearchStrategy[Any], wild_values: st.SearchStrategy[Any]) -> Any:
        return draw(tame_values if tame and draw(st.integers(0, 19)) else wild_values)

    ev = event_pb2.Event(
        event_id=pick(st.one_of(st.uuids().map(str), st.uuids().map(str), st.sampled_from(["dup-1"])), _ids),
        name=pick(_tame_names, _names),
        client_id=pick(st.just("c1"), st.one_of(st.just(""), _long)),
        user_id=pick(_tame_text, _long),
        session_id=pick(_tame_text, _long),
        user_agent=pick(st.just("Mozilla/5.0"), st.text(max_size=600)),
        ip=pick(st.one_of(st.sampled_from(IP_SAMPLES[:15]), st.ip_addresses().map(str)), _ips),
        locale=pick(st.just("en-US"), _long),
    )
    if pick(st.just(True), st.booleans()):
        offset = pick(
            st.integers(-MAX_AGE_S, MAX_AHEAD_S),
            st.one_of(
                st.sampled_from([-MAX_AGE_S - 1, -MAX_AGE_S, 0, MAX_AHEAD_S, MAX_AHEAD_S + 1]),
                st.integers(-MAX_AGE_S - 5, MAX_AHEAD_S + 5),
            ),
        )
        ev.event_time.seconds = WINDOW.oldest_s + MAX_AGE_S + offset
        ev.event_time.nanos = pick(st.sampled_from([0, 5, 999_999_999]), st.sampled_from([-1, 1_000_000_000]))
    if draw(st.booleans()):
        ev.page.url = pick(_tame_text, st.one_of(_text, st.text(min_size=990, max_size=1010)))
        ev.page.path = pick(_tame_text, _text)
        ev.page.title = pick(_tame_text, st.one_of(_text, st.text(min_size=295, max_size=305)))
        ev.page.referrer = pick(_tame_text, _text)
    if draw(st.booleans()):
        ev.screen.width = draw(st.integers(0, (1 << 32) - 1))
        ev.screen.height = draw(st.integers(0, 3000))
    if draw(st.booleans()):
        ev.utm.source, ev.utm.medium, ev.utm.campaign, ev.utm.term, ev.utm.content = (
            pick(_tame_text, _long) for _ in range(5)
        )
    if draw(st.booleans()):
        ev.revenue.micros = draw(st.integers(-(1 << 63), (1 << 63) - 1))
        ev.revenue.currency = pick(st.just("EUR"), st.sampled_from(["EUR", "eur", "", "EURO", "ÉUR", "US"]))
    params = pick(
        st.dictionaries(_tame_keys, _tame_text, max_size=4),
        st.one_of(
            st.dictionaries(_names, _long, max_size=4),
            st.dictionaries(_tame_keys, _text, min_size=20, max_size=27),
        ),
    )
    for k, v in params.items():
        ev.params[k] = v
    return ev


@st.composite
def event_bytes(draw: st.DrawFn) -> bytes:
    """A serialized Event, possibly merged from two (repeated fields, merged sub-messages, repeated keys),
    possibly with unknown fields at the event level and inside its sub-messages and a present-but-empty one."""
    raw = draw(event_message()).SerializeToString(deterministic=draw(st.booleans()))
    if draw(st.integers(0, 3)) == 0:
        partial = event_pb2.Event()
        partial.MergeFrom(draw(event_message()))
        for name in draw(st.sets(st.sampled_from([f.name for f in event_pb2.Event.DESCRIPTOR.fields]))):
            partial.ClearField(name)  # type: ignore[arg-type]  # any field name of Event
        raw += partial.SerializeToString()
    if draw(st.integers(0, 3)) == 0:
        number = draw(st.sampled_from([3, 7, 11, 12, 13]))  # a sub-message chunk holding unknown fields only
        raw += field(number, 2, b"".join(draw(st.lists(unknown_field(), max_size=2))))
    return _with_unknown(draw, raw)


@st.composite
def batch_bytes(draw: st.DrawFn, max_events: int = 10) -> bytes:
    events = draw(st.lists(event_bytes(), min_size=1, max_size=max_events))
    if len(events) > 1 and draw(st.booleans()):
        events.append(events[draw(st.integers(0, len(events) - 1))])  # the same event twice
    parts = [field(1, 2, e) for e in events]
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), field(2, 2, draw(_text).encode()))
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), draw(unknown_field()))
    return b"".join(parts)


# --- running both paths -------------------------------------------------------------------------------------


@functools.cache
def _metrics() -> CollectorMetrics:
    return CollectorMetrics(setup_telemetry(TelemetrySettings(exporter=Exporter.NONE)))


@functools.cache
def _settings() -> CollectorSettings:
    common = CommonSettings.from_env({"GNOMON_DATA_DIR": tempfile.gettempdir()})
    return CollectorSettings(common=common, collector_id="col-diff", rate_limit_events_per_s=0.0)


def handler(*, fast: bool) -> tuple[BatchHandler, FakeLog]:
    log = FakeLog()
    h = BatchHandler(_settings(), log, lambda: NOW, _metrics(), fastpath=fast)
    assert (h._fast is not None) == fast
    return h, log


def _outcome(h: BatchHandler, raw: bytes, call: CallInfo) -> cpb.CollectResponse | BaseException:
    try:
        return h.handle(raw, call)
    except Exception as exc:  # compared with the other path's outcome
        return exc


def canonical_logged(payload: bytes) -> bytes:
    """The LoggedBatch bytes the Python path writes, with map entries in upb's deterministic order."""
    logged = event_pb2.LoggedBatch.FromString(payload)
    header = event_pb2.LoggedBatch()
    header.CopyFrom(logged)
    header.ClearField("events")
    events = (e.SerializeToString(deterministic=True) for e in logged.events)
    return header.SerializeToString() + b"".join(field(3, 2, e) for e in events)


def _ip_is_scrubbed(ev: event_pb2.Event) -> bool:
    return ev.ip == "" or truncate_ip(ev.ip) == ev.ip


def assert_same(raw: bytes, peer: str = PEERS[0], *, repeat: Sequence[bytes] = ()) -> bool:
    """Runs `raw` (after the batches in `repeat`, to fill the recent-ids cache) through both paths and checks
    that they agree; returns whether the fast path decided `raw` itself."""
    call = CallInfo("merchant-a", peer, (), TRACEPARENT)
    screen = FastScreen.load()
    assert screen is not None
    decided = screen.scan(raw, WINDOW) is not None
    outcomes = []
    logs = []
    for fast in (False, True):
        h, log = handler(fast=fast)
        for earlier in repeat:
            _outcome(h, earlier, call)
        log.published.clear()
        outcomes.append(_outcome(h, raw, call))
        logs.append(log)
    expected, got = outcomes
    if isinstance(expected, BaseException):
        assert type(got) is type(expected), (expected, got)
        if isinstance(expected, BatchRejected):
            assert isinstance(got, BatchRejected)
            assert got.violations == expected.violations
    else:
        assert got == expected
    py_log, rs_log = logs
    assert [(p.stream, p.key, p.properties) for p in rs_log.published] == [
        (p.stream, p.key, p.properties) for p in py_log.published
    ]
    for py, rs in zip(py_log.published, rs_log.published, strict=True):
        if py.stream is Stream.EVENTS:
            # declined by the fast path, both went the Python way: upb's map order may differ between the two
            assert (rs.payload if decided else canonical_logged(rs.payload)) == canonical_logged(py.payload)
            logged = event_pb2.LoggedBatch.FromString(rs.payload)
            if all(len(e.params) < 2 for e in logged.events):
                assert rs.payload == py.payload
            assert all(_ip_is_scrubbed(e) for e in logged.events)
        else:
            py_bad, rs_bad = event_pb2.BadEvent.FromString(py.payload), event_pb2.BadEvent.FromString(rs.payload)
            py_inner, rs_inner = py_bad.payload, rs_bad.payload
            for bad in (py_bad, rs_bad):
                bad.ClearField("payload")
            assert rs_bad == py_bad
            if py_bad.reason.startswith("REJECT_REASON"):
                py_ev, rs_ev = event_pb2.Event.FromString(py_inner), event_pb2.Event.FromString(rs_inner)
                assert rs_ev == py_ev
                assert _ip_is_scrubbed(rs_ev)
                if len(py_ev.params) < 2:
                    assert rs_inner == py_inner
            else:
                assert rs_inner == py_inner
    return decided


DIFF = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@DIFF
@given(batch_bytes(), st.sampled_from(PEERS))
def test_random_batches_agree(raw: bytes, peer: str) -> None:
    assume(len(raw) <= 1 << 20)
    assert assert_same(raw, peer), "a well-formed batch must be decided by the fast path"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(batch_bytes(max_events=3), min_size=1, max_size=2), batch_bytes(max_events=3))
def test_retried_batches_agree(earlier: list[bytes], raw: bytes) -> None:
    """Recent-ids duplicates (a retry of accepted events) drop the same events on both paths."""
    assert_same(b"".join(earlier) + raw, repeat=earlier)
    assert_same(earlier[0], repeat=earlier)


def _valid_event(i: int, **fields: str) -> event_pb2.Event:
    ev = event_pb2.Event(
        event_id=f"ev-{i}", name="page_view", client_id="c1", ip="203.0.113.77", user_agent="Mozilla/5.0"
    )
    ev.event_time.seconds = WINDOW.newest_s - MAX_AHEAD_S - 3
    ev.page.url = "https://shop.example/p"
    for k, v in fields.items():
        setattr(ev, k, v)
    return ev


def _batch(*events: event_pb2.Event, batch_id: str = "b-1") -> bytes:
    return cpb.EventBatch(events=events, batch_id=batch_id).SerializeToString()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda ev: None,
        lambda ev: setattr(ev, "name", "bad name"),
        lambda ev: setattr(ev, "ip", "fe80::1%eth0"),
        lambda ev: setattr(ev, "ip", "::ffff:1.2.3.4"),
        lambda ev: setattr(ev, "ip", "not an ip"),
        lambda ev: setattr(ev, "ip", ""),
        lambda ev: ev.params.update({"coupon": "x" * 101}),
        lambda ev: ev.params.update({"b": "1", "a": "2", "ab": "3", "": "4"}),
        lambda ev: ev.ClearField("event_time"),
    ],
    ids=["valid", "bad-name", "zone", "mapped", "bad-ip", "no-ip", "long-param", "many-params", "no-time"],
)
def test_handpicked_events_agree(mutate: Callable[[event_pb2.Event], None]) -> None:
    odd = _valid_event(1)
    mutate(odd)
    raw = _batch(_valid_event(0), odd, _valid_event(2), _valid_event(0))
    for peer in PEERS:
        assert assert_same(raw, peer)


def test_whole_batch_problems_go_the_python_way() -> None:
    too_many = _batch(*[_valid_event(i) for i in range(501)])
    for raw in (b"", too_many, b"\xff\xff\xff garbage", _batch(_valid_event(0), batch_id="x" * (1 << 20))):
        assert not assert_same(raw)


def test_one_mebibyte_batch() -> None:
    """500 events of ~2 KiB: just under the 1 MiB limit goes the fast way, one byte more is TOO_LARGE."""
    events = [_valid_event(i, user_agent="u" * 512) for i in range(500)]
    for ev in events:
        ev.page.url = "https://shop.example/" + "p" * 600
        ev.page.referrer = "https://ref.example/" + "r" * 700
        ev.params["plan"] = "pro"
    raw = _batch(*events, batch_id="")
    pad = (1 << 20) - len(raw) - 4  # batch_id field: tag, 3-byte length, text
    assert pad > 0
    raw = _batch(*events, batch_id="b" * pad)
    assert len(raw) == 1 << 20
    assert assert_same(raw)
    over = _batch(*events, batch_id="b" * (pad + 1))
    assert len(over) == (1 << 20) + 1
    assert not assert_same(over)


def test_start_up_log_names_the_path(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    with caplog.at_level(logging.INFO, logger="collector_svc.handler"):
        h, _ = handler(fast=True)
    assert "Rust fast path" in caplog.text
    caplog.clear()
    monkeypatch.setattr(FastScreen, "MODULE", "gnomon_fastpath_not_installed")
    with caplog.at_level(logging.INFO, logger="collector_svc.handler"):
        fallback = BatchHandler(_settings(), FakeLog(), lambda: NOW, _metrics())
    assert fallback._fast is None
    assert "pure-Python path (gnomon_fastpath is not installed)" in caplog.text
    raw = _batch(_valid_event(0), _valid_event(1, name=""))
    call = CallInfo("merchant-a", PEERS[0], (), TRACEPARENT)
    assert fallback.handle(raw, call) == h.handle(raw, call)
