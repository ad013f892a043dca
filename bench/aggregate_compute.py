"""Aggregation benchmark: derive + compute_day (sessionize, cubes, sketches, RollupRows) on one merchant-day.

Builds a realistic synthetic day (default 1M events, 50k clients, 10k pages, 3 % crawler traffic, real UAs and
IPs from `gnomon.synth.catalog`), then times each step and prints events/s. The DESIGN.md target for the whole
aggregation path (derive + sessionize + sketch + write) is >= 500k events/s per core.

    .venv/bin/python -m bench.aggregate_compute
    .venv/bin/python -m bench.aggregate_compute --events 200000 --repeat 3 --profile

`synthetic_day` is also the generator of the unit tests that compare `compute_day` with the DuckDB reference.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote_plus

import numpy as np
import numpy.typing as npt
import pandas as pd

from aggregator import frame as f
from aggregator.timezones import day_bounds_us
from gnomon.synth import catalog
from gnomon.synth.sitemap import SiteMap

SITE = "https://shop.gnomon.example"
# (name, weight) of the events that follow a session's landing page_view
_NEXT_EVENTS = (
    ("page_view", 78),
    ("scroll", 8),
    ("click", 5),
    ("add_to_cart", 5),
    ("begin_checkout", 2),
    ("purchase", 2),
)
if TYPE_CHECKING:
    from aggregator.compute import DayRollups

I64 = npt.NDArray[np.int64]
T = TypeVar("T")


def _choice(rng: np.random.Generator, weights: list[float], size: int) -> I64:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(p), size=size, p=p / p.sum()).astype(np.int64)


def _obj(values: list[str]) -> npt.NDArray[np.object_]:
    return np.asarray(values, dtype=object)


def synthetic_day(
    *,
    events: int = 1_000_000,
    clients: int = 50_000,
    pages: int = 10_000,
    day: date = date(2026, 3, 10),
    zone: str = "America/New_York",
    merchant_id: str = "m-bench",
    currency: str = "USD",
    bot_share: float = 0.03,
    new_share: float = 0.4,
    seed: int = 0,
    site_seed: int | None = None,
) -> pd.DataFrame:
    """`events` raw events (columns `aggregator.frame.RAW_COLUMNS`) of one merchant in local `day` of `zone`.

    `seed` draws the traffic and, unless `site_seed` is given, the site (its pages and their popularity): days
    of one shop share a `site_seed`.

    Sessions of ~5 events (geometric) belong to skewed clients; gaps are log-normal (median ~35 s) and 5 % of
    sessions pause 31-120 min once; the first session of `new_share` of the clients starts with first_visit;
    purchases carry revenue, 10 % of them in EUR. All times lie in the local day."""
    rng = np.random.default_rng(seed)
    start_us, end_us = day_bounds_us(day, zone)
    sitemap = SiteMap(max(pages, 50), site=SITE, seed=seed if site_seed is None else site_seed)
    # sessions and their events
    sizes = rng.geometric(1 / 5, size=events // 2 + 10)
    cut = int(np.searchsorted(np.cumsum(sizes), events))
    sizes = sizes[: cut + 1].copy()
    sizes[-1] -= int(sizes.sum()) - events
    sizes = sizes[sizes > 0]
    n_sessions = sizes.size
    session_client = np.minimum((clients * rng.random(n_sessions) ** 1.6).astype(np.int64), clients - 1)
    hour_weights = np.asarray(catalog.HOUR_WEIGHTS)
    span = end_us - start_us
    hour = _choice(rng, list(hour_weights), n_sessions)
    session_start = start_us + ((hour + rng.random(n_sessions)) / 24 * span).astype(np.int64)
    session_of = np.repeat(np.arange(n_sessions), sizes)
    first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    is_first = np.zeros(events, dtype=np.bool_)
    is_first[first] = True
    gaps = np.exp(rng.normal(np.log(35), 1.0, events)) * 1e6
    pause = rng.random(events) < 0.05 / 5
    gaps[pause] = rng.uniform(31 * 60e6, 120 * 60e6, int(pause.sum()))
    gaps[is_first] = 0
    offsets = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first], sizes)
    times = np.minimum(session_start[session_of] + offsets.astype(np.int64), end_us - 1)
    client = session_client[session_of]
    # clients: bots, agents, addresses, locales
    is_bot_client = rng.random(clients) < bot_share
    human_agent = _choice(rng, [a.weight for a in catalog.HUMAN_AGENTS], clients)
    bot_agent = _choice(rng, [a.weight for a in catalog.BOT_AGENTS], clients)
    agent_ua = _obj([a.ua for a in catalog.HUMAN_AGENTS] + [a.ua for a in catalog.BOT_AGENTS])
    client_agent = np.where(is_bot_client, len(catalog.HUMAN_AGENTS) + bot_agent, human_agent)
    country = _choice(rng, [c.weight for c in catalog.COUNTRIES], clients)
    client_ip = []
    for i in range(clients):
        if is_bot_client[i]:
            blocks = catalog.block_ranges(catalog.BOT_AGENTS[int(bot_agent[i])].blocks or ("66.249.64.0/19",))
        else:
            blocks = catalog.block_ranges(catalog.COUNTRIES[int(country[i])].ipv4)
        base, size, _ = blocks[int(rng.integers(len(blocks)))]
        address = base + int(rng.integers(size))
        client_ip.append(f"{address >> 24 & 255}.{address >> 16 & 255}.{address >> 8 & 255}.0")
    client_locale = _obj([catalog.COUNTRIES[int(c)].locales[0] for c in country])
    client_ids = _obj([f"{1_000_000_000 + i * 7919 % 999_999_937}.{1_700_000_000 + i}" for i in range(clients)])
    # pages and names
    page = sitemap.sample(rng.random(events))
    names = _obj([name for name, _ in _NEXT_EVENTS])[_choice(rng, [w for _, w in _NEXT_EVENTS], events)]
    names[is_first] = "page_view"
    new_client = rng.random(clients) < new_share
    first_sessions = np.flatnonzero(~pd.Series(session_client).duplicated().to_numpy())
    starts_first = first[first_sessions]
    names[starts_first[new_client[session_client[first_sessions]]]] = "first_visit"
    names[is_bot_client[client]] = "page_view"
    # revenue
    purchase = names == "purchase"
    revenue = np.zeros(events, dtype=np.int64)
    revenue[purchase] = (np.exp(rng.normal(3.8, 0.8, int(purchase.sum()))) * 1e6).astype(np.int64)
    currencies = np.full(events, "", dtype=object)
    currencies[purchase] = np.where(rng.random(int(purchase.sum())) < 0.9, currency, "EUR")
    # urls, referrers, utm (landing events only)
    unique_pages, page_inv = np.unique(page, return_inverse=True)
    urls = _obj([sitemap.url(int(p)) for p in unique_pages])[page_inv]
    titles = _obj([sitemap.title(int(p)) for p in unique_pages])[page_inv]
    paths = _obj([sitemap.path(int(p)) for p in unique_pages])[page_inv]
    source = _choice(rng, [s.weight for s in catalog.SOURCES], n_sessions)[session_of]
    referrer = np.empty(events, dtype=object)
    referrer[1:] = urls[:-1]
    referrer[is_first] = _obj([s.referrer for s in catalog.SOURCES])[source[is_first]]
    utm_source, utm_medium, utm_campaign = (np.full(events, "", dtype=object) for _ in range(3))
    for i in np.flatnonzero(is_first).tolist():
        src = catalog.SOURCES[int(source[i])]
        if src.utm_source:
            campaign = src.campaigns[i % len(src.campaigns)] if src.campaigns else ""
            utm_source[i], utm_medium[i], utm_campaign[i] = src.utm_source, src.utm_medium, campaign
            query = f"utm_source={quote_plus(src.utm_source)}&utm_medium={quote_plus(src.utm_medium)}"
            urls[i] = f"{urls[i]}?{query}&utm_campaign={quote_plus(campaign)}"
    hi, lo = rng.integers(0, 1 << 63, events), rng.integers(0, 1 << 63, events)
    event_ids = [f"{a:016x}{b:016x}" for a, b in zip(hi.tolist(), lo.tolist(), strict=True)]
    return pd.DataFrame(
        {
            f.MERCHANT_ID: merchant_id,
            f.EVENT_ID: event_ids,
            f.NAME: names,
            f.EVENT_TIME_US: times,
            f.RECEIVED_TIME_US: times + 2_000_000,
            f.CLIENT_ID: client_ids[client],
            f.USER_ID: "",
            f.PAGE_URL: urls,
            f.PAGE_PATH: paths,
            f.PAGE_TITLE: titles,
            f.REFERRER: referrer,
            f.USER_AGENT: agent_ua[client_agent[client]],
            f.IP: _obj(client_ip)[client],
            f.LOCALE: client_locale[client],
            f.UTM_SOURCE: utm_source,
            f.UTM_MEDIUM: utm_medium,
            f.UTM_CAMPAIGN: utm_campaign,
            f.REVENUE_MICROS: revenue,
            f.CURRENCY: currencies,
        }
    )


def _timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """fn() with its wall and CPU (process) seconds: the machine is shared, CPU time is the steadier number."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=50_000)
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile of aggregate_day")
    args = parser.parse_args()

    from aggregator.compute import _hll_module, aggregate_day
    from aggregator.cubes import DEFAULT_CUBES
    from aggregator.derive import derive

    day, zone = date(2026, 3, 10), "America/New_York"
    raw, wall, _ = _timed(lambda: synthetic_day(events=args.events, clients=args.clients, pages=args.pages))
    n = len(raw)
    print(f"generated {n:,} events ({args.clients:,} clients, {args.pages:,} pages) in {wall:.1f} s")
    derive(raw.head(1000))  # build the deriver (regexes, geo database) outside the timing
    derived, wall, derive_cpu = _timed(lambda: derive(raw))
    print(f"derive: {wall:.2f} s wall, {derive_cpu:.2f} s CPU = {n / derive_cpu:,.0f} events/s per core")
    print(f"sketch builder: {'aggregator.hll (vectorized)' if _hll_module() else 'datasketches per group (fallback)'}")
    closed = datetime(2026, 3, 12, tzinfo=UTC)

    def aggregate() -> DayRollups:
        return aggregate_day(
            derived,
            merchant_id="m-bench",
            zone=zone,
            day=day,
            key_events=frozenset({"purchase"}),
            cubes=DEFAULT_CUBES,
            currency="USD",
        )

    best: tuple[float, float] | None = None
    for _ in range(args.repeat):
        rollups, wall_agg, cpu_agg = _timed(aggregate)
        rows, wall_rows, cpu_rows = _timed(
            lambda: rollups.rows(version=1, computed_at=closed - timedelta(hours=1), closed_before=closed)  # noqa: B023
        )
        print(
            f"compute_day: {wall_agg + wall_rows:.2f} s wall; CPU {cpu_agg:.2f} s aggregate + {cpu_rows:.2f} s"
            f" RollupRow objects = {n / (cpu_agg + cpu_rows):,.0f} events/s per core; {len(rows):,} rows"
        )
        if best is None or cpu_agg + cpu_rows < sum(best):
            best = (cpu_agg, cpu_rows)
        del rows
    assert best is not None
    cpu_agg, cpu_rows = best
    print(f"best compute_day: {n / (cpu_agg + cpu_rows):,.0f} events/s per core ({n / cpu_agg:,.0f} without rows);")
    print(
        f"  with derive: {n / (cpu_agg + cpu_rows + derive_cpu):,.0f} events/s per core"
        f" = {(cpu_agg + cpu_rows + derive_cpu) / n * 1e6:.2f} µs/event (target: 2 µs incl. write)"
    )
    for block in rollups.blocks:
        print(f"   {block.cube.name:15s} {block.grain.value:4s} rows {len(block):7,}")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        aggregate()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
