"""Turn `SynthChunk` columns into SDK `track` keyword arguments, serialized EventBatch bytes, or pandas.

The batch encoder relies on protobuf's wire format: a message is the concatenation of its fields' encodings,
so `Event(a=.., b=..)` serializes to `Event(a=..)` + `Event(b=..)` (fields in number order). Fragments that
repeat (per visitor, per page + referrer, per campaign) are serialized once with the real protobuf classes and
cached; only the event id and time are encoded per event (time vectorized with numpy). The result parses to
exactly the events the `track_kwargs` path describes (tests/unit/test_synth_traffic.py checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import numpy as np
import numpy.typing as npt

from gnomon.synth import catalog
from gnomon.synth.traffic import ADD_TO_CART, BEGIN_CHECKOUT, PURCHASE, SynthChunk, SynthConfig, generate
from gnomon.v1 import event_pb2

if TYPE_CHECKING:
    import pandas as pd

MAX_BATCH_BYTES = (1 << 20) - 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CACHE_LIMIT = 1 << 18


def _landing_utm(chunk: SynthChunk, i: int) -> tuple[str, str, str, str] | None:
    """(source, medium, campaign, term) of the session's campaign when the event is a tagged landing."""
    src = int(chunk.source[i])
    if src < 0 or chunk.ref_page[i] >= 0:
        return None
    source = catalog.SOURCES[src]
    if not source.utm_source:
        return None
    camp, term = int(chunk.campaign[i]), int(chunk.term[i])
    return (
        source.utm_source,
        source.utm_medium,
        source.campaigns[camp] if camp >= 0 else "",
        source.terms[term] if term >= 0 else "",
    )


def _landing_url(url: str, utm: tuple[str, str, str, str]) -> str:
    query = f"utm_source={quote_plus(utm[0])}&utm_medium={quote_plus(utm[1])}&utm_campaign={quote_plus(utm[2])}"
    return f"{url}?{query}&utm_term={quote_plus(utm[3])}" if utm[3] else f"{url}?{query}"


def _params(chunk: SynthChunk, i: int, name: int, event_id: str) -> dict[str, str | int]:
    quantity = int(chunk.quantity[i])
    if name == ADD_TO_CART:
        return {"item_id": chunk.catalog.sitemap.sku(int(chunk.page[i])), "quantity": quantity}
    if name == BEGIN_CHECKOUT:
        return {"items": quantity}
    if name == PURCHASE:
        return {"transaction_id": f"T-{event_id[:12]}", "items": quantity}
    return {}


def _page_fields(chunk: SynthChunk, i: int) -> tuple[str, str, str, tuple[str, str, str, str] | None]:
    """(url, title, referrer, utm) of event i."""
    sm = chunk.catalog.sitemap
    page, ref = int(chunk.page[i]), int(chunk.ref_page[i])
    utm = _landing_utm(chunk, i)
    url = sm.url(page)
    if utm is not None:
        url = _landing_url(url, utm)
    if ref >= 0:
        referrer = sm.url(ref)
    else:
        src = int(chunk.source[i])
        referrer = catalog.SOURCES[src].referrer if src >= 0 else ""
    return url, sm.title(page), referrer, utm


def chunk_track_kwargs(chunk: SynthChunk) -> Iterator[dict[str, Any]]:
    """One dict per event: `Client.track(**kwargs)` arguments (name, client_id, event_id and fields)."""
    tables, vis = chunk.catalog, chunk.visitors
    for i in range(len(chunk)):
        v, name = int(chunk.visitor_row[i]), int(chunk.name[i])
        event_id = chunk.event_id[i]
        url, title, referrer, utm = _page_fields(chunk, i)
        kw: dict[str, Any] = {
            "name": catalog.EVENT_NAMES[name],
            "client_id": vis.client_id[v],
            "event_id": event_id,
            "event_time": _EPOCH + timedelta(milliseconds=int(chunk.time_ms[i])),
            "page_url": url,
            "page_title": title,
            "user_agent": tables.agents[int(vis.agent[v])].ua,
            "ip": vis.ip[v],
        }
        if referrer:
            kw["referrer"] = referrer
        if vis.user_id[v]:
            kw["user_id"] = vis.user_id[v]
        if vis.locale[v]:
            kw["locale"] = vis.locale[v]
        if vis.screen[v] >= 0:
            kw["screen"] = tables.screens[int(vis.screen[v])]
        if utm is not None:
            kw["utm_source"], kw["utm_medium"], kw["utm_campaign"] = utm[:3]
            if utm[3]:
                kw["utm_term"] = utm[3]
        if name == PURCHASE:
            kw["revenue_micros"] = int(chunk.revenue_micros[i])
            kw["currency"] = tables.currency(int(vis.country[v]))
        params = _params(chunk, i, name, event_id)
        if params:
            kw["params"] = params
        yield kw


def track_kwargs(config: SynthConfig) -> Iterator[dict[str, Any]]:
    """Every event of `config` as `Client.track` keyword arguments, in chunk order."""
    for chunk in generate(config):
        yield from chunk_track_kwargs(chunk)


# ----------------------------------------------------------------------------------------- fast path


def _varints(values: npt.NDArray[np.int64], width: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """Canonical varint bytes of non-negative values as a (n, width) matrix plus each one's length."""
    v = values.astype(np.uint64)
    out = np.zeros((len(v), width), dtype=np.uint8)
    length = np.ones(len(v), dtype=np.int64)
    for k in range(width):
        group = (v >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = (v >> np.uint64(7 * (k + 1))) > 0
        out[:, k] = (group | np.where(more, np.uint64(0x80), np.uint64(0))).astype(np.uint8)
        length += more
    return out, length


def _time_fields(time_ms: npt.NDArray[np.int64]) -> tuple[bytes, npt.NDArray[np.int64]]:
    """Field 3 (event_time) of every event: one buffer of 14-byte rows and each row's used length."""
    seconds, millis = np.divmod(time_ms, 1000)
    if len(seconds) and (seconds.min() < 1 << 28 or seconds.max() >= 1 << 35):
        raise ValueError("event times must lie between 1978 and 3058 for the fast encoder")
    sec, _ = _varints(seconds, 5)
    nanos, nlen = _varints(millis * 1_000_000, 5)
    has_nanos = millis > 0
    inner = 6 + np.where(has_nanos, 1 + nlen, 0)
    rows = np.zeros((len(time_ms), 14), dtype=np.uint8)
    rows[:, 0], rows[:, 1], rows[:, 2] = 0x1A, inner, 0x08
    rows[:, 3:8] = sec
    rows[:, 8] = 0x10
    rows[:, 9:14] = nanos
    return rows.tobytes(), 2 + inner


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VARINT = [_varint(n) for n in range(1 << 14)]


def _len_prefix(n: int) -> bytes:
    return _VARINT[n] if n < 1 << 14 else _varint(n)


_Utm = tuple[str, str, str, str]


class _Fragments:
    """Serialized Event/Page field fragments, cached across the chunks of one run (bounded caches)."""

    def __init__(self) -> None:
        self.names = [event_pb2.Event(name=n).SerializeToString() for n in catalog.EVENT_NAMES]
        self.landing: dict[tuple[int, int, int], tuple[_Utm | None, bytes, bytes]] = {}
        self.page_part: dict[tuple[int, _Utm | None], bytes] = {}
        self.ref_part: dict[int, bytes] = {}
        self.visitors: dict[int, tuple[bytes, bytes]] = {}  # visitor key -> (fields 4-5, fields 8-11)

    def source(self, src: int, camp: int, term: int) -> tuple[_Utm | None, bytes, bytes]:
        """(utm, Page.referrer fragment, Event.utm fragment) of a session's traffic source."""
        key = (src, camp, term)
        found = self.landing.get(key)
        if found is None:
            source = catalog.SOURCES[src] if src >= 0 else None
            utm: _Utm | None = None
            utm_frag = b""
            if source is not None and source.utm_source:
                utm = (
                    source.utm_source,
                    source.utm_medium,
                    source.campaigns[camp] if camp >= 0 else "",
                    source.terms[term] if term >= 0 else "",
                )
                message = event_pb2.Utm(source=utm[0], medium=utm[1], campaign=utm[2], term=utm[3])
                utm_frag = event_pb2.Event(utm=message).SerializeToString()
            referrer = source.referrer if source is not None else ""
            found = (utm, event_pb2.Page(referrer=referrer).SerializeToString(), utm_frag)
            self.landing[key] = found
        return found

    def page(self, chunk: SynthChunk, page: int, utm: _Utm | None) -> bytes:
        """Page.url + Page.title fragment of a page (with the utm query on tagged landings)."""
        key = (page, utm)
        frag = self.page_part.get(key)
        if frag is None:
            if len(self.page_part) > _CACHE_LIMIT:
                self.page_part.clear()
            sm = chunk.catalog.sitemap
            url = sm.url(page) if utm is None else _landing_url(sm.url(page), utm)
            frag = self.page_part[key] = event_pb2.Page(url=url, title=sm.title(page)).SerializeToString()
        return frag

    def referrer(self, chunk: SynthChunk, page: int) -> bytes:
        """Page.referrer fragment pointing at an internal page."""
        frag = self.ref_part.get(page)
        if frag is None:
            if len(self.ref_part) > _CACHE_LIMIT:
                self.ref_part.clear()
            url = chunk.catalog.sitemap.url(page)
            frag = self.ref_part[page] = event_pb2.Page(referrer=url).SerializeToString()
        return frag


def _heads(chunk: SynthChunk, frags: _Fragments) -> list[bytes]:
    """Fields 1-3 (event_id, name, event_time) of every event, built with numpy in one pass."""
    m = len(chunk)
    names = chunk.name.astype(np.int64)
    name_len = np.asarray([len(f) for f in frags.names], dtype=np.int64)[names]
    times, time_len = _time_fields(chunk.time_ms)
    rows = np.frombuffer(times, dtype=np.uint8).reshape(m, 14)
    width = 34 + int(name_len.max(initial=0)) + 14
    mat = np.zeros((m, width), dtype=np.uint8)
    mat[:, 0], mat[:, 1] = 0x0A, 0x20
    mat[:, 2:34] = np.frombuffer("".join(chunk.event_id).encode(), dtype=np.uint8).reshape(m, 32)
    for code, frag in enumerate(frags.names):
        sel = names == code
        if sel.any():
            n = len(frag)
            mat[sel, 34 : 34 + n] = np.frombuffer(frag, dtype=np.uint8)
            mat[sel, 34 + n : 48 + n] = rows[sel]
    lengths = 34 + name_len + time_len
    buf = mat[np.arange(width) < lengths[:, None]].tobytes()
    ends = np.cumsum(lengths).tolist()
    return [buf[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def _lookup(keys: npt.NDArray[np.int64], make: Callable[[int], bytes]) -> tuple[list[bytes], npt.NDArray[np.int64]]:
    """Per-event fragments for integer keys (one `make` per distinct key) and their lengths."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    frags = [make(k) for k in uniq.tolist()]
    lengths = np.asarray([len(f) for f in frags], dtype=np.int64)[inverse.ravel()]
    return list(map(frags.__getitem__, inverse.ravel().tolist())), lengths


def _page_fields_bytes(chunk: SynthChunk, frags: _Fragments) -> tuple[list[bytes], ...]:
    """Field 7 (page: length prefix, url+title part, referrer part) and field 12 (utm) of every event."""
    n_pages = chunk.catalog.sitemap.pages
    landing = chunk.ref_page < 0
    tagged = landing & _TAGGED[chunk.source + 1]
    code = ((chunk.source.astype(np.int64) + 1) * 64 + chunk.campaign + 1) * 64 + chunk.term + 1
    page_keys = np.where(tagged, -(1 + code * n_pages + chunk.page), chunk.page)
    ref_keys = np.where(landing, -(1 + code), chunk.ref_page)

    def page_part(key: int) -> bytes:
        if key >= 0:
            return frags.page(chunk, key, None)
        landing_code, page = divmod(-key - 1, n_pages)
        return frags.page(chunk, page, frags.source(*_decode(landing_code))[0])

    def ref_part(key: int) -> bytes:
        return frags.referrer(chunk, key) if key >= 0 else frags.source(*_decode(-key - 1))[1]

    def utm_part(key: int) -> bytes:
        return frags.source(*_decode(key))[2] if key >= 0 else b""

    pages, page_len = _lookup(page_keys, page_part)
    refs, ref_len = _lookup(ref_keys, ref_part)
    utms, _ = _lookup(np.where(tagged, code, -1), utm_part)
    prefixes = [b"\x3a" + _VARINT[n] for n in (page_len + ref_len).tolist()]
    return prefixes, pages, refs, utms


def _decode(code: int) -> tuple[int, int, int]:
    rest, term = divmod(code, 64)
    src, camp = divmod(rest, 64)
    return src - 1, camp - 1, term - 1


_TAGGED = np.asarray([False] + [bool(s.utm_source) for s in catalog.SOURCES])  # index: source + 1
assert all(len(s.campaigns) < 63 and len(s.terms) < 63 for s in catalog.SOURCES)


def chunk_events(chunk: SynthChunk, fragments: _Fragments | None = None) -> list[bytes]:
    """Serialized `gnomon.v1.Event` of every event of the chunk (same content as `chunk_track_kwargs`).

    Vectorized: per-event Python work is a few C-level list operations; fragments are serialized once per
    distinct visitor, page + referrer, or campaign.
    """
    frags = fragments or _Fragments()
    tables, vis = chunk.catalog, chunk.visitors
    who: list[bytes] = []
    device: list[bytes] = []
    for v, key in enumerate(vis.visitor.tolist()):
        pair = frags.visitors.get(key)
        if pair is None:
            if len(frags.visitors) > _CACHE_LIMIT:
                frags.visitors.clear()
            identity = event_pb2.Event(client_id=vis.client_id[v], user_id=vis.user_id[v])
            event = event_pb2.Event(user_agent=tables.agents[int(vis.agent[v])].ua, ip=vis.ip[v], locale=vis.locale[v])
            if vis.screen[v] >= 0:
                event.screen.width, event.screen.height = tables.screens[int(vis.screen[v])]
            pair = frags.visitors[key] = (identity.SerializeToString(), event.SerializeToString())
        who.append(pair[0])
        device.append(pair[1])
    rows = chunk.visitor_row.tolist()
    prefixes, pages, refs, utms = _page_fields_bytes(chunk, frags)
    who_e, device_e = map(who.__getitem__, rows), map(device.__getitem__, rows)
    parts = zip(_heads(chunk, frags), who_e, prefixes, pages, refs, device_e, utms, strict=True)
    out = list(map(b"".join, parts))
    for i in np.flatnonzero(chunk.name >= ADD_TO_CART).tolist():
        name, v, event_id = int(chunk.name[i]), rows[i], chunk.event_id[i]
        extra = event_pb2.Event(params={k: str(x) for k, x in _params(chunk, i, name, event_id).items()})
        if name == PURCHASE:
            currency = tables.currency(int(vis.country[v]))
            extra.revenue.micros, extra.revenue.currency = int(chunk.revenue_micros[i]), currency
        out[i] += extra.SerializeToString()
    return out


def event_batches(config: SynthConfig, batch_size: int = 500) -> Iterator[bytes]:
    """Serialized `gnomon.v1.EventBatch` messages of `batch_size` events (the last may be smaller), each
    under 1 MiB, covering every event of `config` in chunk order. No batch_id is set."""
    if not 1 <= batch_size <= 500:
        raise ValueError("batch_size must be between 1 and 500")
    fragments = _Fragments()
    parts: list[bytes] = []
    count = size = 0
    for chunk in generate(config):
        for event in chunk_events(chunk, fragments):
            prefix = _len_prefix(len(event))
            framed = 1 + len(prefix) + len(event)
            if count and (count == batch_size or size + framed > MAX_BATCH_BYTES):
                yield b"".join(parts)
                parts, count, size = [], 0, 0
            parts += (b"\x0a", prefix, event)
            count += 1
            size += framed
    if count:
        yield b"".join(parts)


# ----------------------------------------------------------------------------------------- pandas


def to_pandas(chunk: SynthChunk) -> pd.DataFrame:
    """The chunk as a DataFrame, one row per event, with the ground truth (country, device, session, bot)."""
    import pandas as pd  # heavy: imported only when needed

    tables, vis = chunk.catalog, chunk.visitors
    sm = tables.sitemap
    rows = chunk.visitor_row
    pages, page_inv = np.unique(chunk.page, return_inverse=True)
    paths = np.asarray([sm.path(int(p)) for p in pages], dtype=object)
    agents = vis.agent[rows]
    countries = np.asarray([c.code for c in catalog.COUNTRIES] + [""], dtype=object)
    return pd.DataFrame(
        {
            "event_id": chunk.event_id,
            "event_time": pd.to_datetime(chunk.time_ms, unit="ms", utc=True),
            "name": pd.Categorical.from_codes(chunk.name.astype(np.int64), categories=pd.Index(catalog.EVENT_NAMES)),
            "client_id": np.asarray(vis.client_id, dtype=object)[rows],
            "user_id": np.asarray(vis.user_id, dtype=object)[rows],
            "session": chunk.session,
            "page_path": paths[page_inv],
            "user_agent": pd.Categorical.from_codes(
                agents.astype(np.int64), categories=pd.Index([a.ua for a in tables.agents])
            ),
            "device": np.asarray([a.device.name.lower() for a in tables.agents], dtype=object)[agents],
            "is_bot": agents >= tables.n_human_agents,
            "ip": np.asarray(vis.ip, dtype=object)[rows],
            "country": countries[vis.country[rows]],
            "locale": np.asarray(vis.locale, dtype=object)[rows],
            "source": np.asarray([s.name for s in catalog.SOURCES] + ["crawler"], dtype=object)[chunk.source],
            "revenue_micros": chunk.revenue_micros,
            "quantity": chunk.quantity,
        }
    )
