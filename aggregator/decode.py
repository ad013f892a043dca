"""Decode: serialized `gnomon.v1.LoggedBatch` payloads -> the event frame (`aggregator.frame.RAW_COLUMNS`).

    frame = decode_batches([record.payload for record in records])
    frame = decode_batches(payloads, with_event_bytes=True)   # + EVENT_BYTES: each event re-serialized

Columns: `RAW_COLUMNS` in that order, one row per event in payload order; strings use pandas' default string
dtype ("" for absent fields, never NA); `EVENT_TIME_US`, `RECEIVED_TIME_US`, `REVENUE_MICROS` are int64 (times in
microseconds since the Unix epoch, UTC; every event of a batch carries the batch's received time). `PAGE_PATH`
is derived from `PAGE_URL` when empty (the URL's path, "/" for a URL without one), once per distinct URL.

Speed: the Rust extension (`aggregator.decode_fast`, gnomon_fastpath) parses the payloads into Arrow buffers
with no Python object per field. Without it (or for a payload its strict reader does not decide) each payload
is parsed once by upb (`LoggedBatch.FromString`) and every column is one list comprehension over the events
(`decode_batches_upb`); that per-event attribute access costs a few µs per event.
With `with_event_bytes`, `EVENT_BYTES` holds each event's serialized bytes: what the event store keeps.

`encode_events(frame)` is the slow inverse for frames that have no `EVENT_BYTES` (tests, tools): it rebuilds a
serialized `gnomon.v1.Event` per row from the raw columns (fields outside RAW_COLUMNS are lost).

Raises `DecodeFailed` (a ValueError) naming the payload's index when a payload is not a LoggedBatch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError

from aggregator.decode_fast import decode_columns
from aggregator.frame import (
    CLIENT_ID,
    CURRENCY,
    EVENT_BYTES,
    EVENT_ID,
    EVENT_TIME_US,
    INT_COLUMNS,
    IP,
    LOCALE,
    MERCHANT_ID,
    NAME,
    PAGE_PATH,
    PAGE_TITLE,
    PAGE_URL,
    RAW_COLUMNS,
    RECEIVED_TIME_US,
    REFERRER,
    REVENUE_MICROS,
    USER_AGENT,
    USER_ID,
    UTM_CAMPAIGN,
    UTM_MEDIUM,
    UTM_SOURCE,
)
from aggregator.page_paths import fill_page_paths
from gnomon.v1 import event_pb2

_US_PER_S: Final = 1_000_000
_LOGGED_EVENTS_TAG: Final = b"\x1a"  # LoggedBatch.events: field 3, length-delimited
_LOGGED_MERCHANT_TAG: Final = b"\x0a"  # LoggedBatch.merchant_id: field 1, length-delimited


class DecodeFailed(ValueError):
    """A payload is not a serialized gnomon.v1.LoggedBatch."""


def empty_frame() -> pd.DataFrame:
    """A frame with every raw column and no rows (same dtypes as a decoded frame)."""
    return _frame({c: [] for c in RAW_COLUMNS}, 0)


def string_array(values: Sequence[str]) -> Any:
    """pandas' default string array ("str", Arrow large_string storage) of `values`, built through Arrow: about
    four times faster than letting pandas infer it from a list."""
    return pd.array(pa.array(values, type=pa.large_string()), dtype="str")


def _frame(columns: dict[str, Any], n: int) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for name in RAW_COLUMNS:
        values = columns[name]
        if name in INT_COLUMNS:
            data[name] = np.asarray(values, dtype=np.int64) if n else np.zeros(0, dtype=np.int64)
        else:
            data[name] = string_array(values)
    return pd.DataFrame(data, copy=False)


def decode_batches(payloads: Sequence[bytes], *, with_event_bytes: bool = False) -> pd.DataFrame:
    """The event frame of every event in `payloads` (serialized LoggedBatch messages), in order.

    Decoded by the Rust extension when it is installed and decides every payload (`aggregator.decode_fast`),
    else by upb (`decode_batches_upb`): the same frame either way (EVENT_BYTES: see decode_fast).
    Pure and thread-safe. Raises DecodeFailed when a payload does not parse.
    """
    fast = decode_columns(payloads, with_event_bytes=with_event_bytes) if payloads else None
    return decode_batches_upb(payloads, with_event_bytes=with_event_bytes) if fast is None else fast


def decode_batches_upb(payloads: Sequence[bytes], *, with_event_bytes: bool = False) -> pd.DataFrame:
    """`decode_batches` by upb alone: each payload parsed by `LoggedBatch.FromString`, each column one list
    comprehension over the events; EVENT_BYTES re-serialized by upb. The reference for the Rust path."""
    parse = event_pb2.LoggedBatch.FromString
    events: list[Any] = []
    merchants: list[str] = []
    received: list[int] = []
    for index, payload in enumerate(payloads):
        try:
            batch = parse(payload)
        except DecodeError as exc:
            raise DecodeFailed(
                f"payload {index} ({len(payload)} bytes) is not a gnomon.v1.LoggedBatch: {exc}"
            ) from None
        batch_events = batch.events
        k = len(batch_events)
        if not k:
            continue
        events.extend(batch_events)
        rt = batch.received_time
        merchants.extend([batch.merchant_id] * k)
        received.extend([rt.seconds * _US_PER_S + rt.nanos // 1000] * k)
    n = len(events)
    if not n:
        frame = empty_frame()
        if with_event_bytes:
            frame[EVENT_BYTES] = pd.Series([], dtype=object)
        return frame
    times = [e.event_time for e in events]
    seconds = np.fromiter([t.seconds for t in times], dtype=np.int64, count=n)
    nanos = np.fromiter([t.nanos for t in times], dtype=np.int64, count=n)
    pages = [e.page for e in events]
    utms = [e.utm for e in events]
    revenues = [e.revenue for e in events]
    urls = [p.url for p in pages]
    columns: dict[str, Any] = {
        MERCHANT_ID: merchants,
        EVENT_ID: [e.event_id for e in events],
        NAME: [e.name for e in events],
        EVENT_TIME_US: seconds * _US_PER_S + nanos // 1000,
        RECEIVED_TIME_US: received,
        CLIENT_ID: [e.client_id for e in events],
        USER_ID: [e.user_id for e in events],
        PAGE_URL: urls,
        PAGE_PATH: fill_page_paths([p.path for p in pages], urls),
        PAGE_TITLE: [p.title for p in pages],
        REFERRER: [p.referrer for p in pages],
        USER_AGENT: [e.user_agent for e in events],
        IP: [e.ip for e in events],
        LOCALE: [e.locale for e in events],
        UTM_SOURCE: [u.source for u in utms],
        UTM_MEDIUM: [u.medium for u in utms],
        UTM_CAMPAIGN: [u.campaign for u in utms],
        REVENUE_MICROS: [r.micros for r in revenues],
        CURRENCY: [r.currency for r in revenues],
    }
    frame = _frame(columns, n)
    if with_event_bytes:
        blobs = np.empty(n, dtype=object)
        blobs[:] = [e.SerializeToString() for e in events]
        frame[EVENT_BYTES] = blobs
    return frame


def encode_varint(n: int) -> bytes:
    """`n` (>= 0) as a protobuf base-128 varint (for building wire-format messages without parsing)."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def logged_batch_of(merchant_id: str, event_bytes: Iterable[bytes]) -> bytes:
    """A serialized LoggedBatch (no received time) holding the given serialized events, built without parsing:
    the merchant field followed by one length-delimited `events` entry per event."""
    mid = merchant_id.encode("utf-8")
    parts = [_LOGGED_MERCHANT_TAG, encode_varint(len(mid)), mid]
    header = _events_header
    for blob in event_bytes:
        parts.append(header(len(blob)))
        parts.append(blob)
    return b"".join(parts)


@cache
def _events_header(length: int) -> bytes:
    return _LOGGED_EVENTS_TAG + encode_varint(length)


def encode_events(frame: pd.DataFrame) -> list[bytes]:
    """Serialized `gnomon.v1.Event` of every row, rebuilt from the raw columns (slow: one message per row).

    Only for frames without `EVENT_BYTES`; decoding the result gives back the same raw columns (page_path is
    kept as given). Raises KeyError naming a missing raw column.
    """
    missing = [c for c in RAW_COLUMNS if c not in frame.columns]
    if missing:
        raise KeyError(f"encode_events: missing column(s) {missing}")
    cols = {c: frame[c].tolist() for c in RAW_COLUMNS}
    out: list[bytes] = []
    for i in range(len(frame)):
        event = event_pb2.Event(
            event_id=cols[EVENT_ID][i],
            name=cols[NAME][i],
            client_id=cols[CLIENT_ID][i],
            user_id=cols[USER_ID][i],
            user_agent=cols[USER_AGENT][i],
            ip=cols[IP][i],
            locale=cols[LOCALE][i],
        )
        t = int(cols[EVENT_TIME_US][i])
        event.event_time.seconds, event.event_time.nanos = t // _US_PER_S, t % _US_PER_S * 1000
        page = (cols[PAGE_URL][i], cols[PAGE_PATH][i], cols[PAGE_TITLE][i], cols[REFERRER][i])
        if any(page):
            event.page.url, event.page.path, event.page.title, event.page.referrer = page
        utm = (cols[UTM_SOURCE][i], cols[UTM_MEDIUM][i], cols[UTM_CAMPAIGN][i])
        if any(utm):
            event.utm.source, event.utm.medium, event.utm.campaign = utm
        micros, currency = int(cols[REVENUE_MICROS][i]), cols[CURRENCY][i]
        if micros or currency:
            event.revenue.micros, event.revenue.currency = micros, currency
        out.append(event.SerializeToString())
    return out
