"""Property tests: arbitrary input never raises and always yields well-formed, row-aligned output."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregator.derive import (
    INPUT_COLUMNS,
    NOT_SET,
    OUTPUT_COLUMNS,
    DeriveOptions,
    Deriver,
    GeoDatabase,
    UserAgentParser,
)
from aggregator.derive.channel import Channel, classify_urls, url_host, url_host_by_urlsplit

_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Arbitrary text incl. surrogates, NULs and control characters, plus text shaped like the real inputs.
any_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec=None), max_size=50),
    st.from_regex(r"[0-9a-fA-F:.%/ ]{0,45}", fullmatch=True),
    st.ip_addresses().map(str),
    st.sampled_from(["", " ", "\x00", "\ud800", "Mozilla/5.0", "https://", "http://[::1", "//", "?utm_source=x"]),
)


@pytest.fixture(scope="module")
def parser() -> UserAgentParser:
    return UserAgentParser()


@pytest.fixture(scope="module")
def db() -> GeoDatabase:
    return GeoDatabase.bundled()


@_settings
@given(ua=any_text)
def test_user_agent_never_raises(parser: UserAgentParser, ua: str) -> None:
    result = parser(ua)
    assert result.device_category in {"desktop", "mobile", "tablet", "smart tv", "other", NOT_SET}
    assert result.browser and result.os
    assert isinstance(result.is_bot, bool)


@_settings
@given(ips=st.lists(any_text, max_size=8))
def test_geo_never_raises(db: GeoDatabase, ips: list[str]) -> None:
    results = db.lookup_many(ips)
    assert len(results) == len(ips)
    for ip, result in zip(ips, results, strict=True):
        assert result == db.lookup(ip)
        assert len(result.country) == 2 or result.country == NOT_SET


@_settings
@given(referrer=any_text, page=any_text, source=any_text, medium=any_text, campaign=any_text)
def test_channel_never_raises(referrer: str, page: str, source: str, medium: str, campaign: str) -> None:
    result = classify_urls(referrer, page, source, medium, campaign)
    assert result.channel in {c.value for c in Channel}
    assert result.source and result.medium
    assert result.source_medium == f"{result.source} / {result.medium}"
    url_host(referrer)


# URL-shaped text: optional scheme, "//" or not, host-ish and port-ish parts from a small, tricky alphabet.
_TRICKY_HOSTS = ["www.Example.COM", "example.org.", "[::1]", "u:p@h.com", "u@h.com", "a.b@c", "xn--e1a.рф"]
_url_part = st.text(alphabet="aZ09.-_:@[]%/?#\t\n \\ä", max_size=12)
url_text = st.one_of(
    any_text,
    st.builds(
        lambda scheme, slashes, host, port, rest: f"{scheme}{slashes}{host}{port}{rest}",
        st.sampled_from(["", "http:", "HTTPS:", "android-app:", "1x:", "a+b.c-d:", " http:"]),
        st.sampled_from(["//", "/", "", "///"]),
        st.one_of(_url_part, st.sampled_from(_TRICKY_HOSTS)),
        st.sampled_from(["", ":", ":8080", ":x", ":80:90"]),
        st.one_of(_url_part, st.sampled_from(["", "/", "/p?q=http://x", "#f", "?a"])),
    ),
)


@settings(max_examples=2000, deadline=None)
@given(url=url_text)
def test_url_host_fast_path_agrees_with_urlsplit(url: str) -> None:
    assert url_host(url) == url_host_by_urlsplit(url)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(*(st.one_of(st.none(), any_text) for _ in INPUT_COLUMNS)), max_size=12))
def test_derive_never_raises(parser: UserAgentParser, db: GeoDatabase, rows: list[tuple[str | None, ...]]) -> None:
    frame = pd.DataFrame(rows, columns=list(INPUT_COLUMNS), dtype=object)
    out = Deriver(options=DeriveOptions(ua_parser=parser, geo_lookup_many=db.lookup_many)).derive(frame)
    assert len(out) == len(rows)
    assert list(out.columns) == [*INPUT_COLUMNS, *OUTPUT_COLUMNS]
    for column in OUTPUT_COLUMNS:
        assert out[column].notna().all()
