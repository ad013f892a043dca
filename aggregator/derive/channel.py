"""Referrer + utm_* tags + page host -> source, medium, "source / medium" and GA4's Default Channel Group.

Traffic source of an event (GA4's rules, simplified to the fields an event carries):
1. Manual tagging: when utm_source or utm_medium is set, source = utm_source or "(not set)", medium =
   utm_medium or "(not set)" (values kept as sent, trimmed).
2. Otherwise a referrer from another host: a known search engine (`SEARCH_ENGINES`) gives e.g.
   "google" / "organic"; any other host gives "<host>" / "referral" (host lower-cased, without "www.").
3. Otherwise — no referrer, an unparsable one, or a self-referral (referrer host == page host, ignoring
   "www." and case) — "(direct)" / "(none)".
utm_campaign only feeds the channel rules (Cross-network, Shopping). Ad click ids (gclid ...) are not part of
the event, so Paid Search is recognised from utm tags only.

Channel: GA4's Default Channel Group rules, evaluated in GA4's order (`CHANNEL_RULES` order below), case-
insensitive, with the source categories of `channel_tables`. The result for a session is the result for its
first event; choosing that event is sessionization's job, not this module's.

Vectorization: `ChannelStep.apply` derives each distinct (referrer host, page host, utm_source, utm_medium,
utm_campaign) combination of a batch once, through a bounded LRU cache kept across batches.

Contract: every function here is pure and never raises for any `str` inputs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from aggregator.derive import channel_tables as tables
from aggregator.derive._vector import (
    NOT_SET,
    LruCache,
    StepStats,
    combine_codes,
    expand_categorical,
    resolve,
    string_codes,
)

DIRECT: Final = "(direct)"
NONE: Final = "(none)"


class Channel(StrEnum):
    """GA4 Default Channel Group values."""

    DIRECT = "Direct"
    CROSS_NETWORK = "Cross-network"
    PAID_SHOPPING = "Paid Shopping"
    PAID_SEARCH = "Paid Search"
    PAID_SOCIAL = "Paid Social"
    PAID_VIDEO = "Paid Video"
    DISPLAY = "Display"
    PAID_OTHER = "Paid Other"
    ORGANIC_SHOPPING = "Organic Shopping"
    ORGANIC_SOCIAL = "Organic Social"
    ORGANIC_VIDEO = "Organic Video"
    ORGANIC_SEARCH = "Organic Search"
    EMAIL = "Email"
    AFFILIATES = "Affiliates"
    REFERRAL = "Referral"
    AUDIO = "Audio"
    SMS = "SMS"
    MOBILE_PUSH = "Mobile Push Notifications"
    UNASSIGNED = "Unassigned"


def _source_regex(patterns: Iterable[str]) -> re.Pattern[str]:
    """Compile the pattern forms described in `channel_tables` into one anchored regex."""
    parts: list[str] = []
    for raw in patterns:
        pattern = raw.strip().lower()
        if pattern.endswith(".*"):
            parts.append(r"(?:.+\.)?" + re.escape(pattern[:-2]) + r"(?:\.[a-z]{2,3}){1,2}")
        elif "." in pattern:
            parts.append(r"(?:.+\.)?" + re.escape(pattern))
        else:
            parts.append(re.escape(pattern))
    return re.compile("^(?:" + "|".join(parts) + ")$")


@dataclass(frozen=True)
class _Tables:
    engines: tuple[tuple[str, re.Pattern[str]], ...]
    search: re.Pattern[str]
    social: re.Pattern[str]
    video: re.Pattern[str]
    shopping: re.Pattern[str]
    paid: re.Pattern[str]
    shopping_campaign: re.Pattern[str]
    video_medium: re.Pattern[str]
    push: re.Pattern[str]


def _compile_tables() -> _Tables:
    return _Tables(
        engines=tuple((name, _source_regex(patterns)) for name, patterns in tables.SEARCH_ENGINES),
        search=_source_regex(tables.SEARCH_SOURCES),
        social=_source_regex(tables.SOCIAL_SOURCES),
        video=_source_regex(tables.VIDEO_SOURCES),
        shopping=_source_regex(tables.SHOPPING_SOURCES),
        paid=re.compile(tables.PAID_MEDIUM),
        shopping_campaign=re.compile(tables.SHOPPING_CAMPAIGN),
        video_medium=re.compile(tables.VIDEO_MEDIUM),
        push=re.compile(tables.PUSH_MEDIUM),
    )


@functools.cache
def _tables() -> _Tables:
    """The compiled tables (built on first use, shared by the process)."""
    return _compile_tables()


_HOST = re.compile(r"^[\w.:-]+$")  # letters (IDN too), digits, dots, hyphens; colons of IPv6 literals


def normalize_host(host: str) -> str:
    """Lower-case, strip a trailing dot and a leading "www."."""
    host = host.strip().lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


# The common shape, "[scheme:]//host[:port][/?#rest]" with an ASCII host and no userinfo, brackets or tab/newline:
# its host is group 1 exactly as `urlsplit(...).hostname` would find it (before lower-casing). Anything else
# takes the `urlsplit` path (tests/unit/test_derive_properties.py checks both paths agree).
_PLAIN_URL = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*:)?//([A-Za-z0-9.-]*)(?::[0-9]*)?(?:[/?#][^\t\n\r]*)?", re.ASCII)


def url_host(url: str) -> str:
    """Normalized host of `url` ("" when there is none or it is not a plausible host name).

    Accepts scheme-less "example.com/path". Same answer as `url_host_by_urlsplit`, about 10x faster for the
    usual "https://host/path" (derivations call this once per distinct URL of a batch)."""
    text = _with_authority(url)
    plain = _PLAIN_URL.fullmatch(text)
    if plain is None:
        return _host_by_urlsplit(text)
    host = normalize_host(plain.group(1))
    return host if _HOST.match(host) else ""


def url_host_by_urlsplit(url: str) -> str:
    """`url_host` computed by `urllib.parse.urlsplit` alone (the reference the fast path is tested against)."""
    return _host_by_urlsplit(_with_authority(url))


def _with_authority(url: str) -> str:
    """`url` stripped, with "//" in front when it has neither a "scheme://" nor a leading "//" ("" stays "")."""
    text = url.strip()
    return "//" + text if text and "://" not in text and not text.startswith("//") else text


def _host_by_urlsplit(text: str) -> str:
    try:
        host = normalize_host(urlsplit(text).hostname or "")
    except ValueError:
        return ""
    return host if _HOST.match(host) else ""


def search_engine(host: str) -> str | None:
    """The organic-search source name for a referrer host, or None when it is not a known search engine."""
    if not host or host in tables.NON_SEARCH_HOSTS:
        return None
    for name, pattern in _tables().engines:
        if pattern.match(host):
            return name
    return None


@dataclass(frozen=True, slots=True)
class ChannelResult:
    """What one (referrer host, page host, utm_*) combination derives to."""

    source: str
    medium: str
    source_medium: str
    channel: str


def traffic_source(referrer_host: str, page_host: str, utm_source: str, utm_medium: str) -> tuple[str, str]:
    """(source, medium) per the module rules; hosts are already normalized (see `url_host`)."""
    utm_source, utm_medium = utm_source.strip(), utm_medium.strip()
    if utm_source or utm_medium:
        return utm_source or NOT_SET, utm_medium or NOT_SET
    if not referrer_host or referrer_host == page_host:
        return DIRECT, NONE
    engine = search_engine(referrer_host)
    if engine is not None:
        return engine, "organic"
    return referrer_host, "referral"


def default_channel(source: str, medium: str, campaign: str = "") -> Channel:
    """GA4 Default Channel Group of a (source, medium, campaign name), evaluated in GA4's rule order."""
    t = _tables()
    s = source.strip().lower()
    m = medium.strip().lower()
    c = campaign.strip().lower()
    host = normalize_host(s)
    paid = t.paid.match(m) is not None
    shopping = t.shopping.match(host) is not None or t.shopping_campaign.match(c) is not None
    if s == DIRECT and m in tables.DIRECT_MEDIUMS:
        return Channel.DIRECT
    if "cross-network" in c:
        return Channel.CROSS_NETWORK
    if shopping and paid:
        return Channel.PAID_SHOPPING
    search = t.search.match(host) is not None and host not in tables.NON_SEARCH_HOSTS
    social, video = t.social.match(host) is not None, t.video.match(host) is not None
    if paid and search:
        return Channel.PAID_SEARCH
    if paid and social:
        return Channel.PAID_SOCIAL
    if paid and video:
        return Channel.PAID_VIDEO
    if m in tables.DISPLAY_MEDIUMS:
        return Channel.DISPLAY
    if paid:
        return Channel.PAID_OTHER
    if shopping:
        return Channel.ORGANIC_SHOPPING
    if social or m in tables.SOCIAL_MEDIUMS:
        return Channel.ORGANIC_SOCIAL
    if video or t.video_medium.match(m):
        return Channel.ORGANIC_VIDEO
    if search or m == "organic":
        return Channel.ORGANIC_SEARCH
    if s in tables.EMAIL_VALUES or m in tables.EMAIL_VALUES:
        return Channel.EMAIL
    if m == "affiliate":
        return Channel.AFFILIATES
    if m in tables.REFERRAL_MEDIUMS:
        return Channel.REFERRAL
    if m == "audio":
        return Channel.AUDIO
    if s == "sms" or m == "sms":
        return Channel.SMS
    if t.push.search(m) or s == "firebase":
        return Channel.MOBILE_PUSH
    return Channel.UNASSIGNED


def classify(
    referrer_host: str, page_host: str, utm_source: str = "", utm_medium: str = "", utm_campaign: str = ""
) -> ChannelResult:
    """Source, medium, "source / medium" and channel for one combination (hosts normalized)."""
    source, medium = traffic_source(referrer_host, page_host, utm_source, utm_medium)
    channel = default_channel(source, medium, utm_campaign)
    return ChannelResult(source, medium, f"{source} / {medium}", channel.value)


def classify_urls(
    referrer: str, page_url: str, utm_source: str = "", utm_medium: str = "", utm_campaign: str = ""
) -> ChannelResult:
    """`classify` from raw URLs (convenience for one event; the step works per distinct value)."""
    return classify(url_host(referrer), url_host(page_url), utm_source, utm_medium, utm_campaign)


# --- the vectorized step ---------------------------------------------------------------------------------------

CHANNEL_INPUT_COLUMNS: Final = ("referrer", "page_url", "utm_source", "utm_medium", "utm_campaign")
CHANNEL_OUTPUT_COLUMNS: Final = ("source", "medium", "source_medium", "channel")

_Key = tuple[str, str, str, str, str]


class ChannelStep:
    """Derives `CHANNEL_OUTPUT_COLUMNS` from `CHANNEL_INPUT_COLUMNS`, once per distinct combination.

    Not thread-safe: one step object per thread.
    """

    def __init__(self, classify_fn: Callable[..., ChannelResult] | None = None, *, cache_size: int = 50_000) -> None:
        self._classify = classify_fn if classify_fn is not None else classify
        self.cache: LruCache[_Key, ChannelResult] = LruCache(cache_size)
        self.stats = StepStats()

    def run(self, frame: pd.DataFrame) -> dict[str, pd.Categorical]:
        """`apply` to the `CHANNEL_INPUT_COLUMNS` of `frame`."""
        return self.apply(*(frame[column] for column in CHANNEL_INPUT_COLUMNS))

    def apply(
        self,
        referrer: pd.Series | Sequence[object],
        page_url: pd.Series | Sequence[object],
        utm_source: pd.Series | Sequence[object],
        utm_medium: pd.Series | Sequence[object],
        utm_campaign: pd.Series | Sequence[object],
    ) -> dict[str, pd.Categorical]:
        """Row-aligned categorical columns; all inputs have the same length."""
        parts: list[np.ndarray] = []
        labels: list[list[str]] = []
        for values, to_host in (
            (referrer, True),
            (page_url, True),
            (utm_source, False),
            (utm_medium, False),
            (utm_campaign, False),
        ):
            codes, distinct = string_codes(values)
            if to_host:  # many URLs share a host: re-code rows by host
                host_codes, hosts = pd.factorize(np.asarray([url_host(u) for u in distinct], dtype=object))
                codes = np.asarray(host_codes, dtype=np.intp)[codes] if len(codes) else codes
                distinct = [str(h) for h in hosts]
            parts.append(codes)
            labels.append(distinct)
        if len({len(p) for p in parts}) != 1:
            raise ValueError(f"channel inputs differ in length: {[len(p) for p in parts]}")
        rows = len(parts[0])
        if rows == 0:
            groups, keys = np.empty(0, dtype=np.intp), []
        else:
            groups, representative = combine_codes(parts, [len(x) for x in labels])
            picked = [part[representative] for part in parts]
            keys = [
                (labels[0][a], labels[1][b], labels[2][c], labels[3][d], labels[4][e])
                for a, b, c, d, e in zip(*(p.tolist() for p in picked), strict=True)
            ]
        results = resolve(keys, self.cache, self._classify_key, self.stats)
        self.stats.batches += 1
        self.stats.rows += rows
        return {
            "source": expand_categorical(groups, [r.source for r in results]),
            "medium": expand_categorical(groups, [r.medium for r in results]),
            "source_medium": expand_categorical(groups, [r.source_medium for r in results]),
            "channel": expand_categorical(groups, [r.channel for r in results]),
        }

    def _classify_key(self, key: _Key) -> ChannelResult:
        return self._classify(*key)
