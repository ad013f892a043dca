"""Every RejectReason, the whole-batch rules, and the agreement of the fast screen with the named steps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector_svc.iptrunc import truncate_ip
from collector_svc.screen import EventScreen
from collector_svc.validation import (
    MAX_AGE_S,
    MAX_AHEAD_S,
    STEPS,
    BatchProblem,
    Window,
    batch_problems,
    first_rejection,
)
from gnomon.v1 import collector_pb2 as cpb
from gnomon.v1 import event_pb2

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
WINDOW = Window.around(NOW)


def valid_event(i: int = 0) -> event_pb2.Event:
    ev = event_pb2.Event(
        event_id=f"00000000-0000-4000-8000-{i:012d}",
        name="page_view",
        client_id="client-1",
        user_agent="Mozilla/5.0",
        ip="198.51.100.23",
        locale="en-US",
    )
    ev.event_time.FromDatetime(NOW - timedelta(seconds=5))
    ev.page.url = "https://shop.example/p"
    ev.page.title = "P"
    ev.params["plan"] = "pro"
    return ev


def _time(delta_s: int) -> Callable[[event_pb2.Event], None]:
    def mutate(ev: event_pb2.Event) -> None:
        ev.event_time.FromDatetime(NOW + timedelta(seconds=delta_s))

    return mutate


def _set(path: str, value: str) -> Callable[[event_pb2.Event], None]:
    def mutate(ev: event_pb2.Event) -> None:
        *parents, leaf = path.split(".")
        target = ev
        for p in parents:
            target = getattr(target, p)
        setattr(target, leaf, value)

    return mutate


def _many_params(ev: event_pb2.Event) -> None:
    for k in range(26):
        ev.params[f"p{k}"] = "v"


def _param(name: str, value: str = "v") -> Callable[[event_pb2.Event], None]:
    def mutate(ev: event_pb2.Event) -> None:
        ev.params[name] = value

    return mutate


def _revenue(currency: str) -> Callable[[event_pb2.Event], None]:
    def mutate(ev: event_pb2.Event) -> None:
        ev.revenue.micros = 1_000_000
        ev.revenue.currency = currency

    return mutate


R = cpb
CASES: list[tuple[cpb.RejectReason.ValueType, str, Callable[[event_pb2.Event], None]]] = [
    (R.REJECT_REASON_MISSING_EVENT_ID, "event_id", _set("event_id", "")),
    (R.REJECT_REASON_EVENT_ID_TOO_LONG, "event_id", _set("event_id", "e" * 65)),
    (R.REJECT_REASON_MISSING_NAME, "name", _set("name", "")),
    (R.REJECT_REASON_NAME_TOO_LONG, "name", _set("name", "n" * 41)),
    (R.REJECT_REASON_NAME_INVALID, "name", _set("name", "9lives")),
    (R.REJECT_REASON_MISSING_EVENT_TIME, "event_time", lambda ev: ev.ClearField("event_time")),
    (R.REJECT_REASON_EVENT_TIME_TOO_OLD, "event_time", _time(-MAX_AGE_S - 1)),
    (R.REJECT_REASON_EVENT_TIME_IN_FUTURE, "event_time", _time(MAX_AHEAD_S + 1)),
    (R.REJECT_REASON_MISSING_CLIENT_ID, "client_id", _set("client_id", "")),
    (R.REJECT_REASON_TOO_MANY_PARAMS, "params", _many_params),
    (R.REJECT_REASON_PARAM_NAME_TOO_LONG, "params." + "k" * 41, _param("k" * 41)),
    (R.REJECT_REASON_PARAM_NAME_INVALID, "params.bad-name", _param("bad-name")),
    (R.REJECT_REASON_PARAM_VALUE_TOO_LONG, "params.coupon", _param("coupon", "v" * 101)),
    (R.REJECT_REASON_FIELD_TOO_LONG, "page.title", _set("page.title", "t" * 301)),
    (R.REJECT_REASON_INVALID_IP, "ip", _set("ip", "999.1.2.3")),
    (R.REJECT_REASON_INVALID_CURRENCY, "revenue.currency", _revenue("eur")),
]


def test_every_reason_has_a_case() -> None:
    covered = {reason for reason, _, _ in CASES} | {R.REJECT_REASON_DUPLICATE_IN_BATCH}
    every = set(cpb.RejectReason.values()) - {R.REJECT_REASON_UNSPECIFIED}
    assert covered == every


def test_steps_are_named() -> None:
    assert [s.name for s in STEPS] == [
        "event_id",
        "name",
        "event_time",
        "client_id",
        "field_lengths",
        "revenue",
        "params",
        "ip",
    ]


@pytest.mark.parametrize(("reason", "field", "mutate"), CASES, ids=[cpb.RejectReason.Name(c[0]) for c in CASES])
def test_reject_reason(
    reason: cpb.RejectReason.ValueType, field: str, mutate: Callable[[event_pb2.Event], None]
) -> None:
    events = [valid_event(0), valid_event(1), valid_event(2)]
    mutate(events[1])
    screened = EventScreen().screen(events, WINDOW, None)
    assert list(screened.rejected) == [1]
    rejection = screened.rejected[1]
    assert rejection.reason == reason
    assert rejection.field == field
    assert rejection.message
    assert first_rejection(events[1], WINDOW) == rejection or reason == R.REJECT_REASON_INVALID_IP


def test_duplicate_in_batch_rejects_the_later_valid_one() -> None:
    first, invalid_copy, second, third = valid_event(1), valid_event(1), valid_event(1), valid_event(2)
    invalid_copy.name = ""
    screened = EventScreen().screen([first, invalid_copy, second, third], WINDOW, None)
    assert screened.rejected[1].reason == R.REJECT_REASON_MISSING_NAME
    assert screened.rejected[2].reason == R.REJECT_REASON_DUPLICATE_IN_BATCH
    assert set(screened.rejected) == {1, 2}


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("client_id", 100),
        ("user_id", 100),
        ("session_id", 100),
        ("locale", 100),
        ("user_agent", 512),
        ("page.url", 1000),
        ("page.path", 1000),
        ("page.referrer", 1000),
        ("page.title", 300),
        ("utm.source", 100),
        ("utm.medium", 100),
        ("utm.campaign", 100),
        ("utm.term", 100),
        ("utm.content", 100),
    ],
)
def test_length_limits_are_in_characters(field: str, limit: int) -> None:
    at_limit, over = valid_event(0), valid_event(1)
    _set(field, "é" * limit)(at_limit)  # 2 UTF-8 bytes each: the limit counts characters
    _set(field, "x" * (limit + 1))(over)
    screened = EventScreen().screen([at_limit, over], WINDOW, None)
    assert list(screened.rejected) == [1]
    assert screened.rejected[1].reason == R.REJECT_REASON_FIELD_TOO_LONG
    assert screened.rejected[1].field == field


def test_time_window_edges_are_inclusive() -> None:
    events = [valid_event(i) for i in range(4)]
    _time(-MAX_AGE_S)(events[0])
    _time(MAX_AHEAD_S)(events[1])
    _time(-MAX_AGE_S - 1)(events[2])
    _time(MAX_AHEAD_S + 1)(events[3])
    screened = EventScreen().screen(events, WINDOW, None)
    assert set(screened.rejected) == {2, 3}


def test_invalid_nanos_rejected() -> None:
    ev = valid_event()
    ev.event_time.nanos = -1
    screened = EventScreen().screen([ev], WINDOW, None)
    assert screened.rejected[0].field == "event_time.nanos"


def test_ips_are_truncated_and_filled_in_place() -> None:
    events = [valid_event(i) for i in range(4)]
    events[1].ip = "2001:db8:abcd:12:34::5"
    events[2].ip = ""
    events[3].ip = "not an ip"
    events[3].name = ""  # rejected for its name: its ip must still be scrubbed
    screened = EventScreen().screen(events, WINDOW, "192.0.2.0")
    assert [e.ip for e in events] == ["198.51.100.0", "2001:db8:abcd::", "192.0.2.0", ""]
    assert screened.rejected[3].reason == R.REJECT_REASON_MISSING_NAME


def test_no_fallback_leaves_ip_empty() -> None:
    ev = valid_event()
    ev.ip = ""
    EventScreen().screen([ev], WINDOW, None)
    assert ev.ip == ""


def test_batch_problems() -> None:
    assert batch_problems(10, 1) == []
    assert [v.problem for v in batch_problems(0, 0)] == [BatchProblem.EMPTY]
    assert [v.problem for v in batch_problems(10, 501)] == [BatchProblem.TOO_MANY_EVENTS]
    assert [v.problem for v in batch_problems((1 << 20) + 1, 3)] == [BatchProblem.TOO_LARGE]
    both = batch_problems(2 << 20, 900)
    assert {v.problem for v in both} == {BatchProblem.TOO_LARGE, BatchProblem.TOO_MANY_EVENTS}
    assert all(v.field and v.description for v in both)


# Hypothesis: the column-wise screen and the named steps always agree.

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=120)
_names = st.one_of(st.sampled_from(["page_view", "purchase", "a", "A_1"]), _text)
_ips = st.one_of(
    st.just(""),
    st.ip_addresses().map(str),
    st.sampled_from(["1.2.3", "01.2.3.4", "1.2.3.4\n5.6.7.8", "::ffff:10.1.2.3", "fe80::1%eth0", "x"]),
    _text,
)


@st.composite
def events(draw: st.DrawFn) -> event_pb2.Event:
    ev = event_pb2.Event(
        event_id=draw(st.one_of(st.uuids().map(str), _text.map(lambda s: s[:70]))),
        name=draw(_names),
        client_id=draw(st.one_of(st.just("c1"), _text)),
        user_id=draw(_text),
        user_agent=draw(st.one_of(_text, st.text(max_size=600))),
        ip=draw(_ips),
        locale=draw(_text),
    )
    if draw(st.booleans()):
        offset = draw(st.integers(min_value=-MAX_AGE_S - 5, max_value=MAX_AHEAD_S + 5))
        ev.event_time.seconds = WINDOW.oldest_s + MAX_AGE_S + offset
        ev.event_time.nanos = draw(st.sampled_from([0, 999_999_999, -1, 1_000_000_000]))
    if draw(st.booleans()):
        ev.page.url = draw(st.text(max_size=1100))
        ev.page.title = draw(st.text(max_size=320))
    if draw(st.booleans()):
        ev.utm.campaign = draw(_text)
    if draw(st.booleans()):
        ev.revenue.micros = draw(st.integers(min_value=-(2**63), max_value=2**63 - 1))
        ev.revenue.currency = draw(st.sampled_from(["EUR", "eur", "", "EURO", "ÉUR"]))
    for k, v in draw(st.dictionaries(_names, st.text(max_size=110), max_size=27)).items():
        ev.params[k] = v
    return ev


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=8))
def test_screen_agrees_with_steps(batch: list[event_pb2.Event]) -> None:
    copies = [event_pb2.Event.FromString(e.SerializeToString()) for e in batch]
    expected = {}
    for i, ev in enumerate(copies):
        rejection = first_rejection(ev, WINDOW)
        if rejection is not None:
            expected[i] = rejection.reason
    screened = EventScreen().screen(batch, WINDOW, "203.0.113.0")
    got = {i: r.reason for i, r in screened.rejected.items()}
    dups = {i for i, r in got.items() if r == R.REJECT_REASON_DUPLICATE_IN_BATCH}
    assert {i: r for i, r in got.items() if i not in dups} == expected
    for i in dups:
        assert i not in expected
        assert copies[i].event_id in {copies[j].event_id for j in range(i) if j not in got}
    for ev in batch:  # whatever happened, every ip is now empty or already a /24 or /48 network
        assert ev.ip == "" or truncate_ip(ev.ip) == ev.ip
