"""User agent -> device category, browser, OS, bot flag (GA4 names)."""

from __future__ import annotations

import pandas as pd
import pytest

from aggregator.derive import NOT_SET, UaResult, UserAgentParser, UserAgentStep
from aggregator.derive._bots import BotMatcher
from aggregator.derive._regex import re2_available
from aggregator.derive.user_agent import browser_name, os_name


@pytest.fixture(scope="module")
def parser() -> UserAgentParser:
    return UserAgentParser()


IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Mobile/15E148 Safari/604.1"
)

# (UA, device category, browser, OS, is_bot)
KNOWN: list[tuple[str, str, str, str, bool]] = [
    (IPHONE_SAFARI, "mobile", "Safari", "iOS", False),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
        "mobile",
        "Chrome",
        "iOS",
        False,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 "
        "Mobile/15E148 Safari/604.1",
        "tablet",
        "Safari",
        "iOS",
        False,
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Mobile Safari/537.36",
        "mobile",
        "Chrome",
        "Android",
        False,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 "
        "Chrome/115.0.0.0 Mobile Safari/537.36",
        "mobile",
        "Samsung Internet",
        "Android",
        False,
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-T220) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 "
        "Safari/537.36",
        "tablet",
        "Chrome",
        "Android",
        False,
    ),
    (  # reduced UA of Chrome on an Android tablet: no "Mobile" token
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "tablet",
        "Chrome",
        "Android",
        False,
    ),
    ("Mozilla/5.0 (Android 13; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0", "tablet", "Firefox", "Android", False),
    ("Mozilla/5.0 (Android 13; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0", "mobile", "Firefox", "Android", False),
    (
        "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/120.4.1 "
        "like Chrome/120.0.6099.230 Safari/537.36",
        "tablet",
        "Amazon Silk",
        "Android",
        False,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36",
        "desktop",
        "Chrome",
        "Windows",
        False,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36 Edg/120.0.2210.91",
        "desktop",
        "Edge",
        "Windows",
        False,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "desktop",
        "Firefox",
        "Windows",
        False,
    ),
    ("Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko", "desktop", "Internet Explorer", "Windows", False),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
        "Safari/605.1.15",
        "desktop",
        "Safari",
        "Macintosh",
        False,
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "desktop",
        "Firefox",
        "Linux",
        False,
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
        "Safari/537.36",
        "desktop",
        "Chrome",
        "Chrome OS",
        False,
    ),
    (
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 "
        "Chrome/76.0.3809.146 TV Safari/537.36",
        "smart tv",
        "Samsung Internet",
        "Tizen",
        False,
    ),
    (
        "Mozilla/5.0 (Linux; Android 9; AFTSSS Build/PS7633) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/112.0.5615.213 Mobile Safari/537.36",
        "smart tv",
        "Chrome",
        "Android",
        False,
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Version/4.0 Chrome/120.0.0.0 Mobile Safari/537.36",
        "mobile",
        "Android Webview",
        "Android",
        False,
    ),
    (
        "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.14977",
        "mobile",
        "Edge",
        "Windows Phone",
        False,
    ),
    # bots, crawlers, automation
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "other", "Googlebot", NOT_SET, True),
    (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "mobile",
        "Googlebot",
        "Android",
        True,
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) "
        "Chrome/116.0.1938.76 Safari/537.36",
        "other",
        "bingbot",
        NOT_SET,
        True,
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
        "desktop",
        "Chrome",
        "Linux",
        True,
    ),
    ("curl/8.4.0", "other", "curl", NOT_SET, True),
    ("python-requests/2.31.0", "other", "Python Requests", NOT_SET, True),
]


@pytest.mark.parametrize(("ua", "device", "browser", "os", "bot"), KNOWN)
def test_known_user_agents(parser: UserAgentParser, ua: str, device: str, browser: str, os: str, bot: bool) -> None:
    assert parser(ua) == UaResult(device, browser, os, bot)


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
        "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 "
        "Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
        "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
        "Go-http-client/1.1",
        "Wget/1.21.4",
        "okhttp/4.12.0",
        "axios/1.6.0",
        "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
        "Java/17.0.9",
        "Scrapy/2.11.0 (+https://scrapy.org)",
        "Mozilla/5.0 (compatible; Playwright test)",
    ],
)
def test_common_crawlers_and_clients_are_bots(parser: UserAgentParser, ua: str) -> None:
    assert parser(ua).is_bot


def test_browsers_are_not_bots(parser: UserAgentParser) -> None:
    humans = [ua for ua, *_rest, bot in KNOWN if not bot]
    assert humans
    assert not any(parser(ua).is_bot for ua in humans)


@pytest.mark.parametrize("ua", ["", "   ", "\t\n"])
def test_empty_user_agent_is_not_set(parser: UserAgentParser, ua: str) -> None:
    assert parser(ua) == UaResult(NOT_SET, NOT_SET, NOT_SET, False)


def test_unknown_user_agent(parser: UserAgentParser) -> None:
    result = parser("xyzzy")
    assert result.device_category == "other"
    assert result.browser == NOT_SET
    assert result.os == NOT_SET


def test_very_long_user_agent_is_bounded(parser: UserAgentParser) -> None:
    result = parser(IPHONE_SAFARI + " x" * 100_000)
    assert result == parser(IPHONE_SAFARI)


def test_name_tables() -> None:
    assert browser_name("Mobile Safari") == "Safari"
    assert browser_name("Edge Mobile") == "Edge"
    assert browser_name("Other") == NOT_SET
    assert browser_name("Vivaldi") == "Vivaldi"  # unknown families pass through
    assert os_name("Mac OS X") == "Macintosh"
    assert os_name("Windows 7") == "Windows"
    assert os_name("Other") == NOT_SET
    assert os_name("") == NOT_SET


def test_bot_matcher_same_answers_with_and_without_re2() -> None:
    uas = [ua for ua, *_ in KNOWN] + ["Mozilla/5.0 YandexSearch/7.52", "Yandex/1.01.001 (compatible; Win16; I)"]
    python_only = BotMatcher(use_re2=False)
    assert python_only.engine == "re"
    fast = BotMatcher()
    assert fast.engine == ("re2" if re2_available() else "re")
    assert [fast(ua) for ua in uas] == [python_only(ua) for ua in uas]


def test_step_maps_through_distinct_values(parser: UserAgentParser) -> None:
    calls: list[str] = []

    def counting(ua: str) -> UaResult:
        calls.append(ua)
        return parser(ua)

    step = UserAgentStep(counting)
    out = step.apply(pd.Series([IPHONE_SAFARI, "curl/8.4.0", IPHONE_SAFARI, "", None] * 1000, dtype="str"))
    assert sorted(calls) == sorted(["curl/8.4.0", IPHONE_SAFARI])  # the empty UA never reaches the parser
    assert out["device_category"][:5].tolist() == ["mobile", "other", "mobile", NOT_SET, NOT_SET]
    assert out["is_bot"][:5].tolist() == [False, True, False, False, False]
    assert step.stats.unique_values == 3 and step.stats.parsed == 3 and step.stats.rows == 5000
