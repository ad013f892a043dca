"""Turn `track` arguments into a serialized `gnomon.v1.Event`.

The SDK checks only what it must to build a well-formed message (required fields, types, an aware event time,
money as exact micros); the collector validates everything else and answers REJECTED with a reason, which the
client reports through `on_error`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TypedDict

from gnomon_sdk._proto.gnomon.v1 import event_pb2

MAX_EVENT_BYTES = 64 * 1024  # far above anything the collector accepts; protects the batch size limit
ParamValue = str | int | float | bool
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS = Decimal(1_000_000)


def new_event_id() -> str:
    """A fresh client-made event id: 32 lowercase hex digits of a random UUID (version 4)."""
    return uuid.uuid4().hex


def event_ids(events: Sequence[bytes]) -> tuple[str, ...]:
    """Event ids of serialized events ("" for one that does not parse); used on the error paths only."""
    out: list[str] = []
    for data in events:
        try:
            out.append(event_pb2.Event.FromString(data).event_id)
        except Exception:
            out.append("")
    return tuple(out)


def param_text(name: str, value: ParamValue) -> str:
    """The wire text of one custom param value (bool -> true/false); raises TypeError for other types."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(f"param {name!r} must be str, int, float or bool, not {type(value).__name__}")


class EventFields(TypedDict, total=False):
    """Optional fields of `Client.track` / `Client.page` (all keyword-only; None means "not set").

    `revenue` is an exact amount in major units (Decimal or int: 12.34 EUR is Decimal("12.34"));
    `revenue_micros` the same as integer micros (12_340_000). Give one of them and `currency` (ISO 4217).
    `screen` is (width, height) in CSS pixels. Params: at most 25 name -> str/int/float/bool (sent as text).
    """

    event_time: datetime | None
    user_id: str | None
    session_id: str | None
    page_url: str | None
    page_path: str | None
    page_title: str | None
    referrer: str | None
    user_agent: str | None
    ip: str | None
    locale: str | None
    screen: tuple[int, int] | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    revenue: Decimal | int | None
    revenue_micros: int | None
    currency: str | None
    params: Mapping[str, ParamValue] | None


def to_micros(revenue: Decimal | int) -> int:
    """Exact integer micros of an amount in major units (12.34 -> 12_340_000), rounded half-even.

    Raises TypeError for floats (binary floats cannot hold money exactly: pass Decimal("12.34")).
    """
    if isinstance(revenue, bool) or not isinstance(revenue, Decimal | int):
        raise TypeError("revenue must be a Decimal or an int in major currency units (or use revenue_micros)")
    return int((Decimal(revenue) * _MICROS).to_integral_value(rounding=ROUND_HALF_EVEN))


def build_event(name: str, client_id: str, event_id: str | None, fields: EventFields) -> tuple[str, bytes]:
    """Build and serialize one Event; returns (event_id, bytes). A uuid4 hex id is made when none is given.

    Raises ValueError for a missing name/client_id, a naive `event_time`, revenue without currency (or both
    `revenue` and `revenue_micros`), or an event larger than MAX_EVENT_BYTES; TypeError for wrongly typed
    values or unknown field names.
    """
    if not name:
        raise ValueError("event name is required")
    if not client_id:
        raise ValueError("client_id is required (a pseudonymous browser/device id)")
    unknown = fields.keys() - _FIELD_NAMES
    if unknown:
        raise TypeError(f"unknown event field(s): {', '.join(sorted(unknown))}")
    event_time = fields.get("event_time")
    if event_time is None:
        event_time = datetime.now(UTC)
    elif event_time.tzinfo is None or event_time.utcoffset() is None:
        raise ValueError("event_time must be timezone-aware (e.g. datetime.now(UTC))")
    event_id = event_id or new_event_id()
    delta = event_time - _EPOCH
    event = event_pb2.Event(event_id=event_id, name=name, client_id=client_id)
    event.event_time.seconds = delta.days * 86_400 + delta.seconds
    event.event_time.nanos = delta.microseconds * 1000
    if user_id := fields.get("user_id"):
        event.user_id = user_id
    if session_id := fields.get("session_id"):
        event.session_id = session_id
    if user_agent := fields.get("user_agent"):
        event.user_agent = user_agent
    if ip := fields.get("ip"):
        event.ip = ip
    if locale := fields.get("locale"):
        event.locale = locale
    url, path, title, referrer = (
        fields.get("page_url"),
        fields.get("page_path"),
        fields.get("page_title"),
        fields.get("referrer"),
    )
    if url or path or title or referrer:
        event.page.url, event.page.path, event.page.title = url or "", path or "", title or ""
        event.page.referrer = referrer or ""
    screen = fields.get("screen")
    if screen is not None:
        event.screen.width, event.screen.height = int(screen[0]), int(screen[1])
    utm = [
        fields.get("utm_source"),
        fields.get("utm_medium"),
        fields.get("utm_campaign"),
        fields.get("utm_term"),
        fields.get("utm_content"),
    ]
    if any(utm):
        u = event.utm
        u.source, u.medium, u.campaign, u.term, u.content = (v or "" for v in utm)
    _set_revenue(event, fields.get("revenue"), fields.get("revenue_micros"), fields.get("currency"))
    params = fields.get("params")
    if params:
        target = event.params
        for key, value in params.items():
            target[key] = param_text(key, value)
    data = event.SerializeToString()
    if len(data) > MAX_EVENT_BYTES:
        raise ValueError(f"event is {len(data)} bytes serialized; the limit is {MAX_EVENT_BYTES}")
    return event_id, data


def _set_revenue(
    event: event_pb2.Event, revenue: Decimal | int | None, micros: int | None, currency: str | None
) -> None:
    if revenue is None and micros is None:
        if currency:
            raise ValueError("currency given without revenue")
        return
    if revenue is not None and micros is not None:
        raise ValueError("pass either revenue (major units) or revenue_micros, not both")
    if not currency:
        raise ValueError("revenue needs an ISO 4217 currency, e.g. currency='EUR'")
    if revenue is not None:
        micros = to_micros(revenue)
    if isinstance(micros, bool) or not isinstance(micros, int):
        raise TypeError("revenue_micros must be an int")
    event.revenue.micros = micros
    event.revenue.currency = currency.upper()


_FIELD_NAMES = frozenset(EventFields.__annotations__)
