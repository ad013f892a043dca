"""Vectorized synthetic traffic: sessions of visitors over days, as numpy columns, deterministic from a seed.

Model. The number of sessions and each session's shape (crawler or human, page views, how far down the
purchase funnel it goes) are drawn first from one random stream, until the sessions hold exactly
`config.events` events. Sessions are spread over the hours of the span with a daily rhythm and generated
hour by hour in chunks of at most `chunk_sessions` sessions, each chunk from its own seeded stream: output is a
pure function of the config (given an explicit `end`), whatever reads it and however fast.

- Human sessions belong to visitors drawn from a heavy-tailed population (a few visitors come back often,
  across days). A visitor's country, IP, device/user agent, locale, screen, client id and optional user id
  are a hash of (seed, visitor), so they stay the same across sessions and chunks.
- Crawler sessions (share `bot_share`) get a fresh client id each, a crawler UA and an IP of that crawler.
- Page views follow the site map's Zipf popularity; gaps are log-normal (median ~35 s); a share
  `long_pause_share` of multi-event human sessions pauses 31-120 min once (so sessionization splits them).
- The first event's referrer/utm come from the session's traffic source; later events refer to the previous
  page. Funnel events: add_to_cart (a product page, with item_id/quantity params), begin_checkout, purchase
  (revenue = price x quantity in micros, in `currency` or the visitor's local currency).

Memory: O(sessions) bytes for the session plan (~4 bytes each) plus one chunk of events at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from gnomon.synth import catalog
from gnomon.synth.sitemap import CHECKOUT, THANK_YOU, SiteMap

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]

PAGE_VIEW, ADD_TO_CART, BEGIN_CHECKOUT, PURCHASE = range(4)
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. `end=None` means now (UTC, whole seconds): pass `end` for reproducible output."""

    events: int = 10_000
    seed: int = 0
    days: float = 2.0
    pages: int = 1_000
    end: datetime | None = None
    visitors: int | None = None  # human visitor population; default events // 12
    bot_share: float = 0.05  # share of sessions made by crawlers
    long_pause_share: float = 0.08  # share of multi-event human sessions with one > 30 min pause
    signed_in_share: float = 0.25  # human visitors who carry a user_id
    ipv6_share: float = 0.15  # visitors on IPv6 (where their country has an IPv6 block)
    currency: str = "USD"  # ISO 4217, or "local" for the visitor's country's currency
    site: str = "https://shop.gnomon.example"
    zipf_s: float = 1.07
    chunk_sessions: int = 20_000

    def __post_init__(self) -> None:
        if self.events < 0 or self.days <= 0 or self.chunk_sessions < 1:
            raise ValueError("events must be >= 0, days > 0, chunk_sessions >= 1")
        for name in ("bot_share", "long_pause_share", "signed_in_share", "ipv6_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.end is not None and self.end.utcoffset() is None:
            raise ValueError("end must be timezone-aware")

    def resolved_end(self) -> datetime:
        end = self.end or datetime.now(UTC).replace(microsecond=0)
        return end.astimezone(UTC)


@dataclass(frozen=True)
class Visitors:
    """Per-visitor attributes of one chunk; events point here through `SynthChunk.visitor_row`."""

    visitor: I64  # global visitor key (humans < population <= crawlers)
    client_id: list[str]
    user_id: list[str]  # "" when not signed in
    ip: list[str]
    country: npt.NDArray[np.int16]  # index into catalog.COUNTRIES, -1 for crawlers
    agent: npt.NDArray[np.int16]  # index into Catalog.agents
    locale: list[str]
    screen: npt.NDArray[np.int16]  # index into Catalog.screens, -1 for none


@dataclass(frozen=True)
class SynthChunk:
    """A chunk of events in event-time order, as parallel columns (one row per event)."""

    event_id: list[str]  # 32 hex digits, UUID v4 layout, unique per (seed, end, event index)
    time_ms: I64  # event time, Unix epoch milliseconds (UTC)
    name: npt.NDArray[np.int8]  # index into catalog.EVENT_NAMES
    session: I64  # global session number (ground truth: one visit, before 30-min splitting)
    visitor_row: I64  # row in `visitors`
    page: I64  # site map page index
    ref_page: I64  # previous page of the session, -1 on the landing event
    source: npt.NDArray[np.int16]  # index into catalog.SOURCES (-1: crawler)
    campaign: npt.NDArray[np.int16]  # index into that source's campaigns (-1: none)
    term: npt.NDArray[np.int16]  # index into that source's terms (-1: none)
    quantity: npt.NDArray[np.int16]  # funnel events: items; 0 otherwise
    revenue_micros: I64  # purchase only; 0 otherwise
    visitors: Visitors
    catalog: Catalog = field(repr=False)

    def __len__(self) -> int:
        return len(self.time_ms)


class Catalog:
    """Lookup tables shared by every chunk of one generation run."""

    def __init__(self, config: SynthConfig) -> None:
        self.config = config
        self.sitemap = SiteMap(config.pages, site=config.site, seed=config.seed, zipf_s=config.zipf_s)
        self.agents = catalog.HUMAN_AGENTS + catalog.BOT_AGENTS
        self.n_human_agents = len(catalog.HUMAN_AGENTS)
        self.human_agent_cdf = _cdf([a.weight for a in catalog.HUMAN_AGENTS])
        self.bot_agent_cdf = _cdf([a.weight for a in catalog.BOT_AGENTS])
        self.country_cdf = _cdf([c.weight for c in catalog.COUNTRIES])
        self.source_cdf = _cdf([s.weight for s in catalog.SOURCES])
        self.screens = [
            s
            for d in (catalog.Device.DESKTOP, catalog.Device.MOBILE, catalog.Device.TABLET)
            for s in catalog.SCREENS[d]
        ]
        offsets, start = {}, 0
        for d in (catalog.Device.DESKTOP, catalog.Device.MOBILE, catalog.Device.TABLET):
            offsets[d] = (start, len(catalog.SCREENS[d]))
            start += len(catalog.SCREENS[d])
        self.screen_offsets = offsets
        self.v4 = [catalog.block_ranges(c.ipv4) for c in catalog.COUNTRIES]
        self.v6 = [catalog.block_ranges(c.ipv6) for c in catalog.COUNTRIES]
        self.bot_blocks = [catalog.block_ranges(a.blocks) for a in catalog.BOT_AGENTS]

    def currency(self, country: int) -> str:
        if self.config.currency != "local":
            return self.config.currency
        return catalog.COUNTRIES[country].currency if country >= 0 else "USD"


# ----------------------------------------------------------------------------------------- hashing


def _mix(x: U64) -> U64:
    """splitmix64 finalizer, vectorized (uint64 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _key(*parts: int) -> np.uint64:
    acc = 0x2545F4914F6CDD1D
    for p in parts:
        acc = int(_mix(np.array([(acc ^ (p & _MASK64)) & _MASK64], dtype=np.uint64))[0])
    return np.uint64(acc)


def _hash(key: np.uint64, x: I64 | U64) -> U64:
    return _mix(x.astype(np.uint64) ^ key)


def _unit(h: U64) -> F64:
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _cdf(weights: list[float]) -> F64:
    c = np.cumsum(np.asarray(weights, dtype=np.float64))
    result: F64 = c / c[-1]
    return result


def _pick(cdf: F64, u: F64) -> I64:
    return np.searchsorted(cdf, u, side="right").clip(0, len(cdf) - 1).astype(np.int64)


# ----------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class _Plan:
    bot: npt.NDArray[np.bool_]
    views: npt.NDArray[np.int16]
    funnel: npt.NDArray[np.int8]  # 0 none, 1 add_to_cart, 2 + begin_checkout, 3 + purchase
    per_slice: I64  # sessions starting in each hour slice
    slice_start_ms: I64
    slice_len_ms: I64


def _plan(config: SynthConfig, end_ms: int) -> _Plan:
    rng = np.random.default_rng([config.seed, 1])
    bots, views, funnels, total = [], [], [], 0
    while total < config.events:
        n = 1 << 16
        bot = rng.random(n) < config.bot_share
        multi = rng.random(n) >= 0.45
        human_views = np.where(multi, 1 + rng.geometric(0.28, n), 1).clip(1, 40)
        bot_views = (4 + rng.geometric(0.08, n)).clip(1, 120)
        v = np.where(bot, bot_views, human_views).astype(np.int16)
        stage = (rng.random(n) < np.where(v >= 2, 0.10, 0.03)).astype(np.int8)
        stage += (stage == 1) & (rng.random(n) < 0.5)
        stage += (stage == 2) & (rng.random(n) < 0.6)
        stage[bot] = 0
        cum = total + np.cumsum(v.astype(np.int64) + stage)
        if cum[-1] >= config.events:  # the last session needed is cut to land on exactly `events`
            cut = int(np.searchsorted(cum, config.events))
            bot, v, stage = bot[: cut + 1], v[: cut + 1].copy(), stage[: cut + 1].copy()
            over = int(cum[cut]) - config.events
            take = min(int(stage[-1]), over)
            stage[-1] -= take
            v[-1] -= over - take
            total = config.events
        else:
            total = int(cum[-1])
        bots.append(bot)
        views.append(v)
        funnels.append(stage)
    bot_a = np.concatenate(bots) if bots else np.zeros(0, dtype=np.bool_)
    span_ms = int(config.days * 86_400_000)
    start_ms = end_ms - span_ms
    edges = np.unique(
        np.concatenate(([start_ms], np.arange((start_ms // 3_600_000 + 1) * 3_600_000, end_ms, 3_600_000), [end_ms]))
    )
    slice_start, slice_len = edges[:-1], np.diff(edges)
    hour = (slice_start // 3_600_000) % 24
    weights = np.asarray(catalog.HOUR_WEIGHTS)[hour] * slice_len
    per_slice = np.random.default_rng([config.seed, 2]).multinomial(len(bot_a), weights / weights.sum())
    return _Plan(
        bot=bot_a,
        views=np.concatenate(views) if views else np.zeros(0, dtype=np.int16),
        funnel=np.concatenate(funnels) if funnels else np.zeros(0, dtype=np.int8),
        per_slice=per_slice.astype(np.int64),
        slice_start_ms=slice_start.astype(np.int64),
        slice_len_ms=slice_len.astype(np.int64),
    )


# ----------------------------------------------------------------------------------------- chunks


def generate(config: SynthConfig) -> Iterator[SynthChunk]:
    """Yield the events of `config` in chunks, each sorted by event time (chunks follow the span's hours)."""
    end = config.resolved_end()
    end_ms = int((end - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))
    tables = Catalog(config)
    plan = _plan(config, end_ms)
    population = config.visitors or max(1, config.events // 12)
    session0 = event0 = 0
    sizes = plan.views.astype(np.int64) + plan.funnel
    for s, count in enumerate(plan.per_slice.tolist()):
        for sub, first in enumerate(range(0, count, config.chunk_sessions)):
            k = min(config.chunk_sessions, count - first)
            lo, hi = session0 + first, session0 + first + k
            chunk = _chunk(
                config,
                tables,
                plan,
                lo,
                hi,
                event0,
                int(plan.slice_start_ms[s]),
                int(plan.slice_len_ms[s]),
                (s, sub),
                population,
                end_ms,
            )
            event0 += int(sizes[lo:hi].sum())
            if len(chunk):
                yield chunk
        session0 += count


def _chunk(
    config: SynthConfig,
    tables: Catalog,
    plan: _Plan,
    lo: int,
    hi: int,
    event0: int,
    slice_start: int,
    slice_len: int,
    where: tuple[int, int],
    population: int,
    end_ms: int,
) -> SynthChunk:
    rng = np.random.default_rng([config.seed, 3, *where])
    k = hi - lo
    bot, views, funnel = plan.bot[lo:hi], plan.views[lo:hi].astype(np.int64), plan.funnel[lo:hi].astype(np.int64)
    sizes = views + funnel
    starts = slice_start + np.sort(rng.integers(0, slice_len, k))
    # who: humans from a heavy-tailed population, crawlers get a fresh identity per session
    visitor = np.where(
        bot, population + np.arange(lo, hi), np.floor(population * rng.random(k) ** 2.5).astype(np.int64)
    )
    uniq, session_row = np.unique(visitor, return_inverse=True)
    visitors = _visitors(config, tables, uniq, population, end_ms)
    # where from
    source = np.where(bot, -1, _pick(tables.source_cdf, rng.random(k))).astype(np.int16)
    campaign = np.full(k, -1, dtype=np.int16)
    term = np.full(k, -1, dtype=np.int16)
    for i, src in enumerate(catalog.SOURCES):
        mine = source == i
        if src.campaigns and mine.any():
            campaign[mine] = rng.integers(0, len(src.campaigns), int(mine.sum()))
        if src.terms and mine.any():
            term[mine] = rng.integers(0, len(src.terms), int(mine.sum()))
    # events of each session
    m = int(sizes.sum())
    sess = np.repeat(np.arange(k), sizes)
    first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    pos = np.arange(m) - first[sess]
    is_view = pos < views[sess]
    name = np.where(is_view, PAGE_VIEW, pos - views[sess] + 1).astype(np.int8)
    gaps = np.where(bot[sess], rng.uniform(0.5, 8.0, m), rng.lognormal(np.log(35.0), 1.0, m).clip(2, 900)) * 1000
    gaps[first] = 0
    pause = ~bot & (sizes >= 2) & (rng.random(k) < config.long_pause_share)
    if pause.any():
        where_pause = first[pause] + 1 + (rng.random(int(pause.sum())) * (sizes[pause] - 1)).astype(np.int64)
        gaps[where_pause] += rng.uniform(31 * 60_000, 120 * 60_000, len(where_pause))
    elapsed = np.cumsum(gaps)
    time_ms = np.minimum(starts[sess] + (elapsed - elapsed[first][sess]).astype(np.int64), end_ms)
    # pages
    sm = tables.sitemap
    page = sm.sample(rng.random(m))
    product = sm.sample_products(rng.random(k))
    qty = rng.geometric(0.6, k).clip(1, 5)
    page = np.where(name == ADD_TO_CART, product[sess], page)
    page = np.where(name == BEGIN_CHECKOUT, CHECKOUT, page)
    page = np.where(name == PURCHASE, THANK_YOU, page)
    ref_page = np.where(pos == 0, -1, np.roll(page, 1))
    quantity = np.where(name >= ADD_TO_CART, qty[sess], 0).astype(np.int16)
    revenue = np.where(name == PURCHASE, sm.price_micros(product)[sess] * qty[sess], 0)
    # identities and order
    index = event0 + np.arange(m, dtype=np.int64)
    order = np.argsort(time_ms, kind="stable")
    ids = _event_ids(_key(config.seed, end_ms, 0xE7), index[order])
    return SynthChunk(
        event_id=ids,
        time_ms=time_ms[order],
        name=name[order],
        session=(lo + sess)[order],
        visitor_row=session_row[sess][order],
        page=page[order].astype(np.int64),
        ref_page=ref_page[order].astype(np.int64),
        source=source[sess][order],
        campaign=campaign[sess][order],
        term=term[sess][order],
        quantity=quantity[order],
        revenue_micros=revenue[order].astype(np.int64),
        visitors=visitors,
        catalog=tables,
    )


def _visitors(config: SynthConfig, tables: Catalog, visitor: I64, population: int, end_ms: int) -> Visitors:
    """Attributes of `visitor` keys: a pure function of (seed, visitor), identical in every chunk."""
    n = len(visitor)
    hashes = [_hash(_key(config.seed, 0xA11, i), visitor) for i in range(8)]
    is_bot = visitor >= population
    country = np.where(is_bot, -1, _pick(tables.country_cdf, _unit(hashes[0]))).astype(np.int16)
    u_agent = _unit(hashes[1])
    human_agent = _pick(tables.human_agent_cdf, u_agent)
    agent = np.where(is_bot, tables.n_human_agents + _pick(tables.bot_agent_cdf, u_agent), human_agent)
    agent = agent.astype(np.int16)
    screen = np.full(n, -1, dtype=np.int16)
    signed_in = (_unit(hashes[2]) < config.signed_in_share).tolist()
    u_locale = _unit(hashes[3]).tolist()
    on_v6 = (_unit(hashes[4]) < config.ipv6_share).tolist()
    h5, h6, h7 = (h.tolist() for h in hashes[5:8])
    first_seen_base = end_ms // 1000 - 400 * 86_400
    client_id, user_id, ip, locale = [], [], [], []
    for i in range(n):
        a = int(agent[i])
        client_id.append(f"{100_000_000 + h5[i] % 1_900_000_000}.{first_seen_base + (h5[i] >> 32) % (399 * 86_400)}")
        if is_bot[i]:
            user_id.append("")
            locale.append("")
            ip.append(_address(tables.bot_blocks[a - tables.n_human_agents], h6[i], h7[i]))
            continue
        c = int(country[i])
        user_id.append(f"usr_{h6[i] % 10**10:010d}" if signed_in[i] else "")
        locales = catalog.COUNTRIES[c].locales
        u = u_locale[i]
        locale.append("en-US" if u < 0.08 else locales[0] if u < 0.8 or len(locales) == 1 else locales[1])
        start, count = tables.screen_offsets[tables.agents[a].device]
        screen[i] = start + h7[i] % count
        blocks = tables.v6[c] if tables.v6[c] and on_v6[i] else tables.v4[c]
        ip.append(_address(blocks, h6[i] >> 7, h7[i] >> 3))
    return Visitors(visitor, client_id, user_id, ip, country, agent, locale, screen)


def _address(blocks: list[tuple[int, int, int]], pick: int, host: int) -> str:
    base, size, version = blocks[pick % len(blocks)]
    if version == 4:
        n = base + 1 + host % (size - 2)
        return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
    subnets = max(1, size >> 64)
    n = base + ((host >> 7) % subnets << 64) + (host * 0x9E3779B97F4A7C15 & _MASK64 | 1)
    groups = [(n >> s) & 0xFFFF for s in range(112, -1, -16)]
    return ":".join(f"{g:x}" for g in groups)


def _event_ids(key: np.uint64, index: I64) -> list[str]:
    hi = _hash(key, index)
    lo = _mix(hi ^ np.uint64(0xD1B54A32D192ED03))
    hi = (hi & np.uint64(0xFFFFFFFFFFFF0FFF)) | np.uint64(0x4000)  # version 4
    lo = (lo & np.uint64(0x3FFFFFFFFFFFFFFF)) | np.uint64(0x8000000000000000)  # RFC 4122 variant
    raw = np.stack([hi, lo], axis=1).astype(">u8").tobytes()
    return [raw[i : i + 16].hex() for i in range(0, len(raw), 16)]
