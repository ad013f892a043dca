"""gnomon.synth: determinism, exact counts, the fast encoder equals the slow path, realistic distributions."""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import UTC, datetime, timedelta
from typing import cast

import pandas as pd
import pytest
from gnomon_sdk._event import EventFields, build_event

from gnomon.synth import SynthConfig, event_batches, generate, to_pandas, track_kwargs
from gnomon.synth.catalog import BOT_AGENTS, COUNTRIES, block_ranges
from gnomon.synth.sitemap import SiteMap
from gnomon.v1 import collector_pb2, event_pb2

END = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def digest(config: SynthConfig) -> str:
    h = hashlib.sha256()
    for batch in event_batches(config):
        h.update(batch)
    return h.hexdigest()


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    config = SynthConfig(events=120_000, seed=11, days=3, pages=10_000, end=END)
    return pd.concat([to_pandas(c) for c in generate(config)], ignore_index=True)


def test_deterministic_from_seed_and_end() -> None:
    config = SynthConfig(events=5_000, seed=3, end=END, chunk_sessions=300)
    assert digest(config) == digest(config)
    assert digest(config) != digest(SynthConfig(events=5_000, seed=4, end=END, chunk_sessions=300))
    assert digest(config) != digest(SynthConfig(events=5_000, seed=3, end=END + timedelta(seconds=1)))


@pytest.mark.parametrize("events", [0, 1, 2, 7, 999, 12_345])
def test_exact_event_count_and_unique_ids(events: int) -> None:
    config = SynthConfig(events=events, seed=events, end=END, chunk_sessions=500)
    ids = [e.event_id for b in event_batches(config, 100) for e in collector_pb2.EventBatch.FromString(b).events]
    assert len(ids) == events
    assert len(set(ids)) == events


def test_batches_respect_size_and_equal_the_track_kwargs_path() -> None:
    config = SynthConfig(events=3_000, seed=5, pages=300, end=END, currency="local")
    batches = [collector_pb2.EventBatch.FromString(b) for b in event_batches(config, 250)]
    assert [len(b.events) for b in batches] == [250] * 12
    fast = [e for b in batches for e in b.events]
    slow = []
    for kw in track_kwargs(config):
        name, client_id, event_id = kw.pop("name"), kw.pop("client_id"), kw.pop("event_id")
        slow.append(event_pb2.Event.FromString(build_event(name, client_id, event_id, cast(EventFields, kw))[1]))
    assert fast == slow  # the same events, field for field
    names = {e.name for e in fast}
    assert names == {"page_view", "add_to_cart", "begin_checkout", "purchase"}
    purchases = [e for e in fast if e.name == "purchase"]
    assert all(e.revenue.micros > 0 and len(e.revenue.currency) == 3 for e in purchases)
    assert all("item_id" in e.params and int(e.params["quantity"]) >= 1 for e in fast if e.name == "add_to_cart")


def test_sitemap_scales_to_many_distinct_pages() -> None:
    site = SiteMap(50_000, site="https://s.example", seed=1)
    paths = {site.path(p) for p in range(site.pages)}
    assert len(paths) == 50_000
    assert site.path(0) == "/"
    assert {site.kind(p) for p in range(site.pages)} == {"fixed", "category", "product", "blog"}
    with pytest.raises(ValueError, match="at least"):
        SiteMap(3, site="https://s.example", seed=1)


def test_time_span_and_order(frame: pd.DataFrame) -> None:
    times = frame.event_time
    assert times.max() <= END
    assert times.min() >= END - timedelta(days=3)
    hours = times.dt.floor("h").nunique()
    assert hours >= 70  # traffic in (almost) every hour of the span


def test_pages_zipf_and_distinct(frame: pd.DataFrame) -> None:
    views = frame[frame.name == "page_view"].page_path.value_counts()
    assert 5_000 <= len(views) <= 10_000
    assert views.index[0] == "/"  # the home page is the most popular
    top_share = views.iloc[: len(views) // 100].sum() / views.sum()
    assert top_share > 0.3  # the top 1% of pages take a large share (Zipf-like)


def test_bots_share_user_agents_and_addresses(frame: pd.DataFrame) -> None:
    sessions = frame.groupby("session").agg(bot=("is_bot", "first"), device=("device", "first"))
    assert 0.04 <= sessions.bot.mean() <= 0.06  # bot_share of sessions
    devices = set(sessions.device)
    assert devices == {"desktop", "mobile", "tablet", "bot"}
    uas = set(frame.user_agent.astype(str))
    for browser in ("Chrome/", "Firefox/", "Safari/", "Edg/", "Googlebot", "bingbot", "iPhone", "Android", "Linux"):
        assert any(browser in ua for ua in uas), browser
    crawler_blocks = [ipaddress.ip_network(b) for a in BOT_AGENTS for b in a.blocks]
    for ip in frame[frame.is_bot].ip.unique():
        assert any(ipaddress.ip_address(ip) in net for net in crawler_blocks)


def test_countries_and_ips(frame: pd.DataFrame) -> None:
    humans = frame[~frame.is_bot]
    countries = humans.country.value_counts()
    assert len(countries) >= 15
    assert countries.index[0] == "US"
    ips = humans.drop_duplicates("client_id")[["ip", "country"]]
    networks = {c.code: [ipaddress.ip_network(b) for b in (*c.ipv4, *c.ipv6)] for c in COUNTRIES}
    versions = set()
    for ip, country in ips.itertuples(index=False):
        address = ipaddress.ip_address(ip)
        versions.add(address.version)
        assert address.is_global
        assert any(address in net for net in networks[country]), (ip, country)
    assert versions == {4, 6}
    for country in COUNTRIES:
        block_ranges((*country.ipv4, *country.ipv6))  # all blocks are public CIDRs


def test_repeat_visitors_and_long_pauses(frame: pd.DataFrame) -> None:
    humans = frame[~frame.is_bot].assign(day=lambda f: f.event_time.dt.floor("D"))
    per_visitor = humans.groupby("client_id").agg(sessions=("session", "nunique"), days=("day", "nunique"))
    assert (per_visitor.sessions > 1).mean() > 0.2
    assert (per_visitor.days > 1).mean() > 0.1  # repeat visits across days
    assert humans.user_id.ne("").mean() > 0.1  # some visitors are signed in
    ordered = humans.sort_values(["session", "event_time"])
    gaps = ordered.event_time.diff().where(ordered.session.eq(ordered.session.shift()))
    longest = gaps.groupby(ordered.session).max()
    share = (longest > pd.Timedelta(minutes=30)).sum() / longest.notna().sum()
    assert 0.03 <= share <= 0.15  # some visits have > 30 min of inactivity (sessionization splits them)


def test_referrers_and_campaigns() -> None:
    config = SynthConfig(events=20_000, seed=2, end=END)
    landings = [kw for kw in track_kwargs(config) if not kw.get("referrer", "").startswith(config.site)]
    referrers = {kw.get("referrer", "") for kw in landings}
    for expected in (
        "",
        "https://www.google.com/",
        "https://www.bing.com/",
        "https://l.facebook.com/",
        "https://t.co/",
    ):
        assert expected in referrers
    mediums = {kw.get("utm_medium") for kw in landings}
    assert {"email", "cpc", "paid_social"} <= mediums
    tagged = [kw for kw in landings if kw.get("utm_source")]
    assert all("utm_source=" in kw["page_url"] for kw in tagged)


def test_invalid_config() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        SynthConfig(bot_share=2)
    with pytest.raises(ValueError, match="days"):
        SynthConfig(days=0)
    with pytest.raises(ValueError, match="aware"):
        SynthConfig(end=datetime(2026, 1, 1))  # noqa: DTZ001 - naive on purpose
