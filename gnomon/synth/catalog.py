"""Static reference data for synthetic traffic: user agents, countries with address blocks, traffic sources.

Address blocks are large allocations that registries list for ISPs of that country (e.g. Comcast 73.0.0.0/8,
Deutsche Telekom 84.128.0.0/10, SoftBank 126.0.0.0/8, Reliance Jio 49.32.0.0/11) and well-known crawler ranges
(Googlebot 66.249.64.0/19). They are chosen to *plausibly* geolocate to the stated country with an offline
database; the aggregator's geolocation is the authority, not this table. Weights are relative.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import IntEnum


class Device(IntEnum):
    DESKTOP = 0
    MOBILE = 1
    TABLET = 2
    BOT = 3


@dataclass(frozen=True)
class UserAgent:
    ua: str
    device: Device
    weight: float
    # crawler only: the address blocks it crawls from
    blocks: tuple[str, ...] = ()


_CHROME = "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0"
_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"
_ANDROID = "Mozilla/5.0 (Linux; Android 10; K)"

HUMAN_AGENTS: tuple[UserAgent, ...] = (
    UserAgent(f"{_WIN} {_CHROME.format(v=131)} Safari/537.36", Device.DESKTOP, 14),
    UserAgent(f"{_WIN} {_CHROME.format(v=130)} Safari/537.36", Device.DESKTOP, 4),
    UserAgent(f"{_WIN} {_CHROME.format(v=131)} Safari/537.36 Edg/131.0.0.0", Device.DESKTOP, 5),
    UserAgent("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", Device.DESKTOP, 3),
    UserAgent(f"{_MAC} {_CHROME.format(v=131)} Safari/537.36", Device.DESKTOP, 5),
    UserAgent(f"{_MAC} AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", Device.DESKTOP, 5),
    UserAgent(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0", Device.DESKTOP, 1
    ),
    UserAgent(f"Mozilla/5.0 (X11; Linux x86_64) {_CHROME.format(v=131)} Safari/537.36", Device.DESKTOP, 1.5),
    UserAgent("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", Device.DESKTOP, 1),
    UserAgent(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Mobile/15E148 Safari/604.1",
        Device.MOBILE,
        15,
    ),
    UserAgent(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.6 Mobile/15E148 Safari/604.1",
        Device.MOBILE,
        6,
    ),
    UserAgent(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        Device.MOBILE,
        3,
    ),
    UserAgent(f"{_ANDROID} {_CHROME.format(v=131)} Mobile Safari/537.36", Device.MOBILE, 15),
    UserAgent(f"{_ANDROID} {_CHROME.format(v=130)} Mobile Safari/537.36", Device.MOBILE, 5),
    UserAgent(
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        Device.MOBILE,
        6,
    ),
    UserAgent("Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", Device.MOBILE, 1),
    UserAgent(f"{_ANDROID} {_CHROME.format(v=131)} Mobile Safari/537.36 EdgA/131.0.0.0", Device.MOBILE, 0.5),
    UserAgent(
        "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4.1 Mobile/15E148 Safari/604.1",
        Device.TABLET,
        3.5,
    ),
    UserAgent(f"Mozilla/5.0 (Linux; Android 13; SM-X710) {_CHROME.format(v=131)} Safari/537.36", Device.TABLET, 1.5),
)

BOT_AGENTS: tuple[UserAgent, ...] = (
    UserAgent(
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", Device.BOT, 30, ("66.249.64.0/19",)
    ),
    UserAgent(
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        Device.BOT,
        25,
        ("66.249.64.0/19",),
    ),
    UserAgent(
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        Device.BOT,
        15,
        ("157.55.39.0/24", "40.77.167.0/24", "207.46.13.0/24"),
    ),
    UserAgent(
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", Device.BOT, 10, ("54.36.148.0/22",)
    ),
    UserAgent("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", Device.BOT, 8, ("95.108.213.0/24",)),
    UserAgent(
        "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
        Device.BOT,
        5,
        ("220.181.108.0/24",),
    ),
    UserAgent(
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        Device.BOT,
        7,
        ("69.171.224.0/19", "173.252.64.0/18"),
    ),
)

SCREENS: dict[Device, tuple[tuple[int, int], ...]] = {
    Device.DESKTOP: ((1920, 1080), (1366, 768), (1536, 864), (1440, 900), (2560, 1440), (1280, 720), (1680, 1050)),
    Device.MOBILE: ((390, 844), (393, 873), (412, 915), (360, 800), (375, 667), (414, 896), (430, 932)),
    Device.TABLET: ((810, 1080), (820, 1180), (768, 1024), (800, 1280)),
}


@dataclass(frozen=True)
class Country:
    code: str  # ISO 3166-1 alpha-2
    weight: float
    locales: tuple[str, ...]  # the first is the most common
    currency: str
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...] = ()


COUNTRIES: tuple[Country, ...] = (
    Country(
        "US",
        30,
        ("en-US", "es-US"),
        "USD",
        ("73.0.0.0/8", "99.0.0.0/10", "71.192.0.0/12", "172.56.0.0/13"),
        ("2601::/20",),
    ),
    Country("IN", 9, ("en-IN", "hi-IN"), "INR", ("49.32.0.0/11", "117.192.0.0/10"), ("2409:4000::/22",)),
    Country("DE", 7, ("de-DE",), "EUR", ("84.128.0.0/10", "79.192.0.0/10", "91.0.0.0/10"), ("2003::/19",)),
    Country("GB", 7, ("en-GB",), "GBP", ("86.128.0.0/10", "109.144.0.0/12")),
    Country("FR", 5, ("fr-FR",), "EUR", ("90.0.0.0/9", "86.192.0.0/11", "78.192.0.0/10"), ("2a01:cb00::/24",)),
    Country("BR", 5, ("pt-BR",), "BRL", ("177.0.0.0/10", "201.0.0.0/12")),
    Country("JP", 5, ("ja-JP",), "JPY", ("126.0.0.0/8", "133.0.0.0/8")),
    Country("CN", 4, ("zh-CN",), "CNY", ("113.64.0.0/10", "123.112.0.0/12")),
    Country("CA", 4, ("en-CA", "fr-CA"), "CAD", ("99.224.0.0/11", "174.88.0.0/13")),
    Country("ES", 3, ("es-ES", "ca-ES"), "EUR", ("83.32.0.0/11", "88.0.0.0/11")),
    Country("IT", 3, ("it-IT",), "EUR", ("93.32.0.0/11", "79.0.0.0/11")),
    Country("AU", 3, ("en-AU",), "AUD", ("1.120.0.0/13", "101.160.0.0/11")),
    Country("MX", 3, ("es-MX",), "MXN", ("187.128.0.0/10", "189.128.0.0/10")),
    Country("NL", 2, ("nl-NL", "en-NL"), "EUR", ("77.160.0.0/12", "84.24.0.0/13")),
    Country("PL", 2, ("pl-PL",), "PLN", ("83.0.0.0/11", "79.184.0.0/13")),
    Country("TR", 2, ("tr-TR",), "TRY", ("78.160.0.0/11", "88.224.0.0/11")),
    Country("KR", 2, ("ko-KR",), "KRW", ("121.128.0.0/10", "175.192.0.0/10")),
    Country("ID", 2, ("id-ID",), "IDR", ("36.64.0.0/11", "114.120.0.0/13")),
    Country("RU", 1.5, ("ru-RU",), "RUB", ("95.24.0.0/13", "109.252.0.0/14")),
    Country("SE", 1, ("sv-SE",), "SEK", ("81.224.0.0/12",)),
)


@dataclass(frozen=True)
class Source:
    """Where a visit comes from: the landing page's referrer and its utm_* campaign tags (empty: none)."""

    name: str
    weight: float
    referrer: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    campaigns: tuple[str, ...] = ()
    terms: tuple[str, ...] = field(default=())


_SALES = ("spring_sale", "summer_collection", "black_friday", "new_arrivals", "clearance")
SOURCES: tuple[Source, ...] = (
    Source("direct", 27),
    Source("google", 26, "https://www.google.com/"),
    Source("bing", 4, "https://www.bing.com/"),
    Source("duckduckgo", 1.5, "https://duckduckgo.com/"),
    Source("yahoo", 1, "https://search.yahoo.com/"),
    Source("facebook", 4.5, "https://l.facebook.com/"),
    Source("instagram", 2, "https://l.instagram.com/"),
    Source("twitter", 2, "https://t.co/"),
    Source("reddit", 1, "https://www.reddit.com/"),
    Source("pinterest", 1, "https://www.pinterest.com/"),
    Source("youtube", 1, "https://www.youtube.com/"),
    Source("hackernews", 0.5, "https://news.ycombinator.com/"),
    Source("newsletter", 5, "", "newsletter", "email", ("weekly_digest", "product_launch", "winback")),
    Source(
        "google_ads",
        7,
        "https://www.google.com/",
        "google",
        "cpc",
        ("brand", "generic_shoes", *_SALES),
        ("running shoes", "wool scarf", "leather bag", "gift ideas", "gnomon shop"),
    ),
    Source("bing_ads", 1, "https://www.bing.com/", "bing", "cpc", ("brand", "generic_shoes"), ("running shoes",)),
    Source("facebook_ads", 3, "https://l.facebook.com/", "facebook", "paid_social", ("retargeting", *_SALES)),
    Source("instagram_ads", 1.5, "https://l.instagram.com/", "instagram", "paid_social", ("influencer_q4",)),
    Source("affiliate", 1, "https://www.couponfollow.com/", "couponfollow", "affiliate", ("coupons",)),
)

# Relative visits by hour of day (UTC): a world-wide audience weighted towards Europe and the Americas.
HOUR_WEIGHTS: tuple[float, ...] = (
    0.55, 0.45, 0.38, 0.33, 0.32, 0.36, 0.46, 0.62, 0.78, 0.88, 0.94, 0.98,
    1.00, 1.02, 1.05, 1.08, 1.08, 1.05, 1.02, 1.00, 0.96, 0.88, 0.76, 0.64,
)  # fmt: skip

EVENT_NAMES: tuple[str, ...] = ("page_view", "add_to_cart", "begin_checkout", "purchase")


def block_ranges(cidrs: tuple[str, ...]) -> list[tuple[int, int, int]]:
    """(first address as int, number of addresses, IP version) of each CIDR block; validates the table."""
    out: list[tuple[int, int, int]] = []
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr)
        if not net.is_global:
            raise ValueError(f"{cidr} is not a public block")
        out.append((int(net.network_address), net.num_addresses, net.version))
    return out
