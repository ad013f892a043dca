"""Event validation: a named list of steps, each rejecting with one reason of the closed `RejectReason` enum.

Rules (GA4-like; lengths are in characters, times at whole-second precision):
- event_id required, <= 64; client_id required, <= 100; name required, <= 40, [A-Za-z][A-Za-z0-9_]*.
- event_time required, at most 72 h before and at most 15 min after the batch's received time.
- page.url / page.path / page.referrer <= 1000, page.title <= 300, user_agent <= 512, other strings <= 100.
- <= 25 params; param names as event names; param values <= 100.
- revenue set => its currency is 3 uppercase letters; ip, when set, must parse as an IPv4/IPv6 address.
- Two valid events with the same event_id in one batch: the later one is rejected (DUPLICATE_IN_BATCH).
Whole-batch rules (`batch_problems`): 1..500 events, <= 1 MiB serialized, a parseable EventBatch.

`STEPS` is the specification and explains every rejection. The hot path is `collector_svc.screen`: column-wise
checks over a whole batch that flag every event that might break a rule; only flagged events go through
`STEPS` to find their first failing step. The unit tests check on generated events that both always agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple, TypeAlias

from collector_svc.iptrunc import truncate_ip
from gnomon.v1 import collector_pb2 as cpb
from gnomon.v1 import event_pb2

Reason: TypeAlias = cpb.RejectReason.ValueType

MAX_BATCH_EVENTS = 500
MAX_BATCH_BYTES = 1 << 20
MAX_EVENT_ID = 64
MAX_NAME = 40
MAX_PARAMS = 25
MAX_PARAM_VALUE = 100
MAX_URL = 1000
MAX_TITLE = 300
MAX_USER_AGENT = 512
MAX_OTHER = 100
MAX_AGE_S = 72 * 3600
MAX_AHEAD_S = 15 * 60
NANOS_PER_S = 1_000_000_000
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
CURRENCY_RE = re.compile(r"[A-Z]{3}")

EVENT_LIMITS: tuple[tuple[str, int], ...] = (
    ("user_id", MAX_OTHER),
    ("session_id", MAX_OTHER),
    ("user_agent", MAX_USER_AGENT),
    ("locale", MAX_OTHER),
)
PAGE_LIMITS: tuple[tuple[str, int], ...] = (
    ("url", MAX_URL),
    ("path", MAX_URL),
    ("title", MAX_TITLE),
    ("referrer", MAX_URL),
)
UTM_LIMITS: tuple[tuple[str, int], ...] = tuple(
    (f, MAX_OTHER) for f in ("source", "medium", "campaign", "term", "content")
)


class Rejection(NamedTuple):
    """Why one event is refused: a RejectReason value, the field path inside the event, advice."""

    reason: Reason
    field: str
    message: str


class Window(NamedTuple):
    """Accepted event_time seconds, inclusive on both ends."""

    oldest_s: int
    newest_s: int

    @classmethod
    def around(cls, received: datetime) -> Window:
        now = int(received.timestamp())
        return cls(now - MAX_AGE_S, now + MAX_AHEAD_S)


def _shown(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def check_event_id(ev: event_pb2.Event, window: Window) -> Rejection | None:
    eid = ev.event_id
    if not eid:
        return Rejection(cpb.REJECT_REASON_MISSING_EVENT_ID, "event_id", "event_id is required (a UUID)")
    if len(eid) > MAX_EVENT_ID:
        return Rejection(
            cpb.REJECT_REASON_EVENT_ID_TOO_LONG,
            "event_id",
            f"event_id has {len(eid)} characters; at most {MAX_EVENT_ID} (a UUID has 36)",
        )
    return None


def check_name(ev: event_pb2.Event, window: Window) -> Rejection | None:
    name = ev.name
    if not name:
        return Rejection(cpb.REJECT_REASON_MISSING_NAME, "name", "name is required, e.g. page_view")
    if len(name) > MAX_NAME:
        return Rejection(
            cpb.REJECT_REASON_NAME_TOO_LONG, "name", f"name has {len(name)} characters; at most {MAX_NAME}"
        )
    if not NAME_RE.fullmatch(name):
        return Rejection(
            cpb.REJECT_REASON_NAME_INVALID,
            "name",
            f"name {_shown(name)!r} must start with a letter and hold only letters, digits and '_'",
        )
    return None


def check_event_time(ev: event_pb2.Event, window: Window) -> Rejection | None:
    if not ev.HasField("event_time"):
        return Rejection(cpb.REJECT_REASON_MISSING_EVENT_TIME, "event_time", "event_time is required (UTC)")
    ts = ev.event_time
    if not 0 <= ts.nanos < NANOS_PER_S:
        return Rejection(
            cpb.REJECT_REASON_MISSING_EVENT_TIME,
            "event_time.nanos",
            f"event_time.nanos={ts.nanos} is not a valid timestamp: nanos must be in [0, 999999999]",
        )
    if ts.seconds < window.oldest_s:
        hours = (window.oldest_s + MAX_AGE_S - ts.seconds) / 3600
        return Rejection(
            cpb.REJECT_REASON_EVENT_TIME_TOO_OLD,
            "event_time",
            f"event_time is {hours:.1f} h in the past; at most {MAX_AGE_S // 3600} h is accepted",
        )
    if ts.seconds > window.newest_s:
        minutes = (ts.seconds - window.newest_s + MAX_AHEAD_S) / 60
        return Rejection(
            cpb.REJECT_REASON_EVENT_TIME_IN_FUTURE,
            "event_time",
            f"event_time is {minutes:.1f} min in the future; at most {MAX_AHEAD_S // 60} min"
            " (check the sender's clock)",
        )
    return None


def check_client_id(ev: event_pb2.Event, window: Window) -> Rejection | None:
    cid = ev.client_id
    if not cid:
        return Rejection(
            cpb.REJECT_REASON_MISSING_CLIENT_ID, "client_id", "client_id is required (a browser/device id)"
        )
    if len(cid) > MAX_OTHER:
        return _too_long("client_id", len(cid), MAX_OTHER)
    return None


def _too_long(path: str, length: int, limit: int) -> Rejection:
    return Rejection(cpb.REJECT_REASON_FIELD_TOO_LONG, path, f"{path} has {length} characters; at most {limit}")


def check_field_lengths(ev: event_pb2.Event, window: Window) -> Rejection | None:
    for name, limit in EVENT_LIMITS:
        length = len(getattr(ev, name))
        if length > limit:
            return _too_long(name, length, limit)
    subs: list[tuple[str, object, tuple[tuple[str, int], ...]]] = []
    if ev.HasField("page"):
        subs.append(("page", ev.page, PAGE_LIMITS))
    if ev.HasField("utm"):
        subs.append(("utm", ev.utm, UTM_LIMITS))
    for sub, msg, limits in subs:
        for name, limit in limits:
            length = len(getattr(msg, name))
            if length > limit:
                return _too_long(f"{sub}.{name}", length, limit)
    return None


def check_revenue(ev: event_pb2.Event, window: Window) -> Rejection | None:
    if ev.HasField("revenue") and not CURRENCY_RE.fullmatch(ev.revenue.currency):
        return Rejection(
            cpb.REJECT_REASON_INVALID_CURRENCY,
            "revenue.currency",
            f"revenue.currency {_shown(ev.revenue.currency)!r} must be an ISO 4217 code (3 uppercase"
            " letters, e.g. EUR) whenever revenue is set",
        )
    return None


def check_params(ev: event_pb2.Event, window: Window) -> Rejection | None:
    params = ev.params
    if len(params) > MAX_PARAMS:
        return Rejection(cpb.REJECT_REASON_TOO_MANY_PARAMS, "params", f"{len(params)} params; at most {MAX_PARAMS}")
    for key in sorted(params):
        path = f"params.{_shown(key)}"
        if len(key) > MAX_NAME:
            return Rejection(
                cpb.REJECT_REASON_PARAM_NAME_TOO_LONG,
                path,
                f"param name has {len(key)} characters; at most {MAX_NAME}",
            )
        if not NAME_RE.fullmatch(key):
            return Rejection(
                cpb.REJECT_REASON_PARAM_NAME_INVALID,
                path,
                "param names must start with a letter and hold only letters, digits and '_'",
            )
        if len(params[key]) > MAX_PARAM_VALUE:
            return Rejection(
                cpb.REJECT_REASON_PARAM_VALUE_TOO_LONG,
                path,
                f"param value has {len(params[key])} characters; at most {MAX_PARAM_VALUE}",
            )
    return None


def check_ip(ev: event_pb2.Event, window: Window) -> Rejection | None:
    if ev.ip and truncate_ip(ev.ip) is None:
        return Rejection(
            cpb.REJECT_REASON_INVALID_IP,
            "ip",
            "ip is not an IPv4 or IPv6 address; leave it empty to use the connection's address",
        )
    return None


@dataclass(frozen=True)
class Step:
    name: str
    check: Callable[[event_pb2.Event, Window], Rejection | None]


STEPS: tuple[Step, ...] = (
    Step("event_id", check_event_id),
    Step("name", check_name),
    Step("event_time", check_event_time),
    Step("client_id", check_client_id),
    Step("field_lengths", check_field_lengths),
    Step("revenue", check_revenue),
    Step("params", check_params),
    Step("ip", check_ip),
)


def first_rejection(ev: event_pb2.Event, window: Window) -> Rejection | None:
    """The first failing step's rejection, or None when the event is valid on its own."""
    for step in STEPS:
        rejection = step.check(ev, window)
        if rejection is not None:
            return rejection
    return None


def duplicate_in_batch(event_id: str) -> Rejection:
    return Rejection(
        cpb.REJECT_REASON_DUPLICATE_IN_BATCH,
        "event_id",
        f"event_id {_shown(event_id)!r} appears earlier in this batch; every event needs its own id",
    )


class BatchProblem(StrEnum):
    """Why a whole batch is refused (INVALID_ARGUMENT); closed set, each counted in metrics."""

    UNPARSEABLE = "BATCH_UNPARSEABLE"
    EMPTY = "BATCH_EMPTY"
    TOO_MANY_EVENTS = "BATCH_TOO_MANY_EVENTS"
    TOO_LARGE = "BATCH_TOO_LARGE"


class Violation(NamedTuple):
    problem: BatchProblem
    field: str
    description: str


def batch_problems(size: int, events: int) -> list[Violation]:
    """Whole-batch violations of a parsed batch of `size` bytes holding `events` events."""
    out: list[Violation] = []
    if events == 0:
        out.append(Violation(BatchProblem.EMPTY, "events", "the batch holds no events; send 1 to 500"))
    if events > MAX_BATCH_EVENTS:
        out.append(
            Violation(
                BatchProblem.TOO_MANY_EVENTS,
                "events",
                f"the batch holds {events} events; at most {MAX_BATCH_EVENTS}: split it",
            )
        )
    if size > MAX_BATCH_BYTES:
        out.append(
            Violation(
                BatchProblem.TOO_LARGE,
                "events",
                f"the batch is {size} bytes serialized; at most {MAX_BATCH_BYTES}: split it",
            )
        )
    return out
