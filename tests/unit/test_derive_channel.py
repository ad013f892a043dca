"""Referrer + utm tags -> source / medium and GA4 Default Channel Group, table-driven."""

from __future__ import annotations

import pandas as pd
import pytest

from aggregator.derive import Channel, ChannelStep
from aggregator.derive.channel import (
    ChannelResult,
    classify,
    classify_urls,
    default_channel,
    search_engine,
    traffic_source,
    url_host,
)

PAGE = "https://shop.example/products/1"

# (referrer, utm_source, utm_medium, utm_campaign, source, medium, channel)
CASES: list[tuple[str, str, str, str, str, str, Channel]] = [
    # Direct: nothing, a self-referral, an unparsable referrer
    ("", "", "", "", "(direct)", "(none)", Channel.DIRECT),
    ("https://shop.example/cart", "", "", "", "(direct)", "(none)", Channel.DIRECT),
    ("https://WWW.Shop.Example:443/cart", "", "", "", "(direct)", "(none)", Channel.DIRECT),
    ("http://[::1", "", "", "", "(direct)", "(none)", Channel.DIRECT),
    # Organic search from a search engine referrer
    ("https://www.google.com/", "", "", "", "google", "organic", Channel.ORGANIC_SEARCH),
    ("https://www.google.co.in/", "", "", "", "google", "organic", Channel.ORGANIC_SEARCH),
    ("https://www.bing.com/search?q=shoes", "", "", "", "bing", "organic", Channel.ORGANIC_SEARCH),
    ("https://duckduckgo.com/", "", "", "", "duckduckgo", "organic", Channel.ORGANIC_SEARCH),
    ("https://search.yahoo.com/", "", "", "", "yahoo", "organic", Channel.ORGANIC_SEARCH),
    ("https://yandex.ru/search/?text=x", "", "", "", "yandex", "organic", Channel.ORGANIC_SEARCH),
    ("https://www.baidu.com/link?url=x", "", "", "", "baidu", "organic", Channel.ORGANIC_SEARCH),
    ("https://www.ecosia.org/", "", "", "", "ecosia.org", "organic", Channel.ORGANIC_SEARCH),
    ("android-app://com.google.android.googlequicksearchbox/", "", "", "", "google", "organic", Channel.ORGANIC_SEARCH),
    ("", "google", "organic", "", "google", "organic", Channel.ORGANIC_SEARCH),
    # Organic social / video via referrer: source is the host, medium referral
    ("https://l.facebook.com/", "", "", "", "l.facebook.com", "referral", Channel.ORGANIC_SOCIAL),
    ("https://t.co/abc", "", "", "", "t.co", "referral", Channel.ORGANIC_SOCIAL),
    ("https://www.reddit.com/r/x", "", "", "", "reddit.com", "referral", Channel.ORGANIC_SOCIAL),
    ("https://www.linkedin.com/", "", "", "", "linkedin.com", "referral", Channel.ORGANIC_SOCIAL),
    ("https://news.ycombinator.com/", "", "", "", "news.ycombinator.com", "referral", Channel.ORGANIC_SOCIAL),
    ("https://www.pinterest.co.uk/", "", "", "", "pinterest.co.uk", "referral", Channel.ORGANIC_SOCIAL),
    ("", "newsletter_partner", "social", "", "newsletter_partner", "social", Channel.ORGANIC_SOCIAL),
    ("https://www.youtube.com/", "", "", "", "youtube.com", "referral", Channel.ORGANIC_VIDEO),
    ("https://m.youtube.com/watch?v=1", "", "", "", "m.youtube.com", "referral", Channel.ORGANIC_VIDEO),
    ("", "partner", "video", "", "partner", "video", Channel.ORGANIC_VIDEO),
    # Organic shopping
    ("https://www.amazon.de/", "", "", "", "amazon.de", "referral", Channel.ORGANIC_SHOPPING),
    ("", "partner", "referral", "holiday_shop", "partner", "referral", Channel.ORGANIC_SHOPPING),
    # Referral: any other host; a webmail app under a search engine's domain stays a referral
    ("https://blog.example.org/post", "", "", "", "blog.example.org", "referral", Channel.REFERRAL),
    ("https://mail.google.com/", "", "", "", "mail.google.com", "referral", Channel.REFERRAL),
    ("https://sub.shop.example/", "", "", "", "sub.shop.example", "referral", Channel.REFERRAL),
    ("", "partner.example", "app", "", "partner.example", "app", Channel.REFERRAL),
    # Paid
    ("https://www.google.com/", "google", "cpc", "brand", "google", "cpc", Channel.PAID_SEARCH),
    ("", "bing", "ppc", "", "bing", "ppc", Channel.PAID_SEARCH),
    ("", "facebook", "paid_social", "spring", "facebook", "paid_social", Channel.PAID_SOCIAL),
    ("", "ig", "cpc", "", "ig", "cpc", Channel.PAID_SOCIAL),
    ("", "youtube", "cpv", "", "youtube", "cpv", Channel.PAID_VIDEO),
    ("", "amazon", "cpc", "", "amazon", "cpc", Channel.PAID_SHOPPING),
    ("", "google", "cpc", "shopping_q4", "google", "cpc", Channel.PAID_SHOPPING),
    ("", "partner", "retargeting", "", "partner", "retargeting", Channel.PAID_OTHER),
    ("", "dsp", "paid", "", "dsp", "paid", Channel.PAID_OTHER),
    ("", "google", "cpc", "pmax cross-network", "google", "cpc", Channel.CROSS_NETWORK),
    ("", "network", "display", "", "network", "display", Channel.DISPLAY),
    ("", "network", "banner", "", "network", "banner", Channel.DISPLAY),
    ("", "google", "cpm", "", "google", "cpm", Channel.PAID_SEARCH),  # paid rules come before Display
    # Email, affiliates, audio, SMS, push
    ("", "newsletter", "email", "weekly", "newsletter", "email", Channel.EMAIL),
    ("", "e-mail", "", "", "e-mail", "(not set)", Channel.EMAIL),
    ("", "couponfollow", "affiliate", "", "couponfollow", "affiliate", Channel.AFFILIATES),
    ("", "spotify", "audio", "", "spotify", "audio", Channel.AUDIO),
    ("", "sms", "", "", "sms", "(not set)", Channel.SMS),
    ("", "twilio", "sms", "", "twilio", "sms", Channel.SMS),
    ("", "app", "web_push", "", "app", "web_push", Channel.MOBILE_PUSH),
    ("", "firebase", "", "", "firebase", "(not set)", Channel.MOBILE_PUSH),
    ("", "app", "notification", "", "app", "notification", Channel.MOBILE_PUSH),
    # Unassigned: tagged, but matching no rule; utm tags win over the referrer
    ("", "", "weird", "", "(not set)", "weird", Channel.UNASSIGNED),
    ("https://www.google.com/", "partner", "", "", "partner", "(not set)", Channel.UNASSIGNED),
    ("", "(direct)", "something", "", "(direct)", "something", Channel.UNASSIGNED),
]


@pytest.mark.parametrize(("referrer", "utm_source", "utm_medium", "campaign", "source", "medium", "channel"), CASES)
def test_channel_table(
    referrer: str, utm_source: str, utm_medium: str, campaign: str, source: str, medium: str, channel: Channel
) -> None:
    result = classify_urls(referrer, PAGE, utm_source, utm_medium, campaign)
    assert (result.source, result.medium, result.channel) == (source, medium, channel.value)
    assert result.source_medium == f"{source} / {medium}"


def test_every_channel_is_covered() -> None:
    assert {case[-1] for case in CASES} == set(Channel)


def test_matching_is_case_insensitive_but_values_are_kept() -> None:
    result = classify("", "shop.example", " Facebook ", "CPC", "Spring")
    assert (result.source, result.medium, result.channel) == ("Facebook", "CPC", "Paid Social")
    assert default_channel("GOOGLE", "Organic") == Channel.ORGANIC_SEARCH
    assert default_channel("Newsletter", "EMAIL") == Channel.EMAIL


def test_source_medium_rules() -> None:
    assert traffic_source("", "shop.example", "", "") == ("(direct)", "(none)")
    assert traffic_source("shop.example", "shop.example", "", "") == ("(direct)", "(none)")
    assert traffic_source("google.com", "shop.example", "", "") == ("google", "organic")
    assert traffic_source("", "shop.example", "", "email") == ("(not set)", "email")
    assert default_channel("(direct)", "(not set)") == Channel.DIRECT


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://www.Google.com/search?q=1", "google.com"),
        ("http://example.org:8080/x", "example.org"),
        ("example.org/path", "example.org"),
        ("//cdn.example.org/a", "cdn.example.org"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("https://example.org./", "example.org"),
        ("", ""),
        ("   ", ""),
        ("http://[::1", ""),
        ("not a url at all", ""),
    ],
)
def test_url_host(url: str, host: str) -> None:
    assert url_host(url) == host


def test_search_engine_table() -> None:
    assert search_engine("google.de") == "google"
    assert search_engine("news.google.com") == "google"
    assert search_engine("docs.google.com") is None
    assert search_engine("googleusercontent.com") is None
    assert search_engine("notgoogle.com") is None
    assert search_engine("cn.bing.com") == "bing"
    assert search_engine("") is None


def test_step_vectorizes_over_combinations() -> None:
    calls: list[tuple[str, ...]] = []

    def counting(*key: str) -> ChannelResult:
        calls.append(key)
        return classify(*key)

    rows = 3_000
    frame = pd.DataFrame(
        {
            "referrer": ["https://www.google.com/?q=a", "https://www.google.com/?q=b", "", "https://t.co/x"] * 750,
            "page_url": [f"https://shop.example/p/{i % 50}" for i in range(rows)],
            "utm_source": ["", "", "newsletter", ""] * 750,
            "utm_medium": ["", "", "email", ""] * 750,
            "utm_campaign": ["", "", "weekly", ""] * 750,
        },
        dtype="str",
    )
    step = ChannelStep(counting)
    out = step.run(frame)
    # two google URLs share one host: three distinct combinations in total
    assert len(calls) == 3
    assert out["channel"][:4].tolist() == ["Organic Search", "Organic Search", "Email", "Organic Social"]
    assert out["source_medium"][:4].tolist() == [
        "google / organic",
        "google / organic",
        "newsletter / email",
        "t.co / referral",
    ]
    assert str(out["channel"].dtype) == "category"
    step.run(frame)
    assert len(calls) == 3
    assert step.stats.cache_hits == 3


def test_step_rejects_ragged_inputs() -> None:
    with pytest.raises(ValueError, match="length"):
        ChannelStep().apply(["a"], ["b", "c"], [""], [""], [""])
