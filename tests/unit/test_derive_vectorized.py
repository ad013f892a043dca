"""derive(): columns, dtypes, vectorization (one parse per distinct value), caches, stats, versions, throughput."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pytest

from aggregator.derive import (
    DERIVATION_VERSION,
    INPUT_COLUMNS,
    NOT_SET,
    OUTPUT_COLUMNS,
    DeriveOptions,
    Deriver,
    DeriveStep,
    GeoDatabase,
    GeoResult,
    RuleSet,
    UaResult,
    UserAgentParser,
    derive,
    derive_step,
    register_rule_set,
    rule_set,
)

_PLATFORMS = (
    "Windows NT 10.0; Win64; x64",
    "Macintosh; Intel Mac OS X 10_15_7",
    "X11; Linux x86_64",
    "Linux; Android 10; K",
    "Linux; Android 14; SM-S918B",
    "Linux; Android 13; SM-X710",
)


def realistic_user_agents(n: int) -> list[str]:
    """`n` distinct, realistic UA strings (browser x platform x version)."""
    out: list[str] = []
    version = 0
    while len(out) < n:
        major, build = 90 + version % 45, version // 45
        for platform in _PLATFORMS:
            mobile = " Mobile" if "K)" in platform or "SM-S" in platform else ""
            out.append(
                f"Mozilla/5.0 ({platform}) AppleWebKit/537.36 (KHTML, like Gecko) "
                f"Chrome/{major}.0.{build}.0{mobile} Safari/537.36"
            )
        ios = f"{14 + version % 5}_{version % 7}"
        out.append(
            f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            f"Version/{14 + version % 5}.{build} Mobile/15E148 Safari/604.1"
        )
        out.append(
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{major}.{build}) Gecko/20100101 Firefox/{major}.{build}"
        )
        out.append(f"Mozilla/5.0 (compatible; Googlebot/2.{build}; +http://www.google.com/bot.html) v{version}")
        version += 1
    return out[:n]


def realistic_frame(rows: int, *, uas: int, ips: int, referrers: int, seed: int = 7) -> pd.DataFrame:
    """A batch with skewed (Zipf-like) use of `uas` UAs, `ips` /24 networks and `referrers` referrer URLs."""
    rng = np.random.default_rng(seed)

    def skewed(k: int) -> np.ndarray:
        weights = 1.0 / np.arange(1, k + 1) ** 0.8
        return rng.choice(k, size=rows, p=weights / weights.sum())

    ua_values = np.asarray(realistic_user_agents(uas), dtype=object)
    first = rng.choice(np.r_[1:10, 11:100, 101:127, 128:169, 170:172, 173:192, 193:224], size=ips)
    nets = [
        f"{a}.{b}.{c}.0" for a, b, c in zip(first, rng.integers(0, 256, ips), rng.integers(0, 256, ips), strict=True)
    ]
    nets[: ips // 10] = [f"2a0{i % 10}:{i % 65536:x}:{i // 7 % 65536:x}::" for i in range(ips // 10)]
    ip_values = np.asarray(nets, dtype=object)
    hosts = ["www.google.com", "www.bing.com", "l.facebook.com", "t.co", "duckduckgo.com", "www.youtube.com"]
    ref_values = np.asarray(
        [""] + [f"https://{hosts[i % 6] if i < 60 else f'site{i}.example.org'}/p{i}" for i in range(referrers - 1)],
        dtype=object,
    )
    ref_codes = np.where(rng.random(rows) < 0.4, 0, skewed(referrers))
    page_values = np.asarray([f"https://shop.example/page/{i}" for i in range(2000)], dtype=object)
    tagged = rng.random(rows) < 0.1
    utm = np.asarray(["", "google", "facebook", "newsletter"], dtype=object)
    utm_medium = np.asarray(["", "cpc", "paid_social", "email"], dtype=object)
    utm_pick = np.where(tagged, rng.integers(1, 4, rows), 0)
    return pd.DataFrame(
        {
            "user_agent": pd.array(ua_values[skewed(uas)], dtype="str"),
            "ip": pd.array(ip_values[skewed(ips)], dtype="str"),
            "referrer": pd.array(ref_values[ref_codes], dtype="str"),
            "page_url": pd.array(page_values[skewed(2000)], dtype="str"),
            "utm_source": pd.array(utm[utm_pick], dtype="str"),
            "utm_medium": pd.array(utm_medium[utm_pick], dtype="str"),
            "utm_campaign": pd.array(np.where(tagged, "spring_sale", ""), dtype="str"),
        }
    )


@pytest.fixture(scope="module")
def geo_db() -> GeoDatabase:
    return GeoDatabase.bundled()


@pytest.fixture(scope="module")
def ua_parser() -> UserAgentParser:
    return UserAgentParser()


def counting(fn: Callable[[str], UaResult], calls: list[str]) -> Callable[[str], UaResult]:
    def wrapper(value: str) -> UaResult:
        calls.append(value)
        return fn(value)

    return wrapper


def counting_many(
    fn: Callable[[Sequence[str]], list[GeoResult]], calls: list[str]
) -> Callable[[Sequence[str]], list[GeoResult]]:
    def wrapper(values: Sequence[str]) -> list[GeoResult]:
        calls.extend(values)
        return fn(values)

    return wrapper


def test_derive_adds_every_output_column_with_cheap_dtypes(geo_db: GeoDatabase, ua_parser: UserAgentParser) -> None:
    frame = realistic_frame(5_000, uas=200, ips=500, referrers=50)
    frame.index = pd.RangeIndex(100, 100 + len(frame))
    deriver = Deriver(options=DeriveOptions(ua_parser=ua_parser, geo_lookup_many=geo_db.lookup_many))
    out = derive(frame, deriver=deriver)
    assert list(out.columns) == [*frame.columns, *OUTPUT_COLUMNS]
    assert out.index.equals(frame.index)
    pd.testing.assert_frame_equal(out[list(frame.columns)], frame)
    for column in OUTPUT_COLUMNS:
        expected = "bool" if column == "is_bot" else "category"
        assert out[column].dtype.name == expected, column
        assert out[column].notna().all(), column
    assert set(out["device_category"].unique()) <= {"desktop", "mobile", "tablet", "other"}
    assert out["is_bot"].any() and not out["is_bot"].all()
    assert (out["source_medium"].astype(str) == out["source"].astype(str) + " / " + out["medium"].astype(str)).all()


def test_derive_matches_per_row_derivation(geo_db: GeoDatabase, ua_parser: UserAgentParser) -> None:
    frame = realistic_frame(3_000, uas=300, ips=400, referrers=40, seed=11)
    out = Deriver(options=DeriveOptions(ua_parser=ua_parser, geo_lookup_many=geo_db.lookup_many)).derive(frame)
    from aggregator.derive.channel import classify_urls

    for i in range(0, len(frame), 97):
        row = frame.iloc[i]
        ua = ua_parser(row["user_agent"])
        geo = geo_db.lookup(row["ip"])
        ch = classify_urls(row["referrer"], row["page_url"], row["utm_source"], row["utm_medium"], row["utm_campaign"])
        got = out.iloc[i]
        assert (got["device_category"], got["browser"], got["os"], bool(got["is_bot"])) == (
            ua.device_category,
            ua.browser,
            ua.os,
            ua.is_bot,
        )
        assert (got["country"], got["country_name"], got["region"], got["city"]) == (
            geo.country,
            geo.country_name,
            geo.region,
            geo.city,
        )
        assert (got["source"], got["medium"], got["channel"]) == (ch.source, ch.medium, ch.channel)


def test_parser_runs_once_per_distinct_value(geo_db: GeoDatabase, ua_parser: UserAgentParser) -> None:
    frame = realistic_frame(200_000, uas=2_000, ips=5_000, referrers=300)
    ua_calls: list[str] = []
    ip_calls: list[str] = []
    options = DeriveOptions(
        ua_parser=counting(ua_parser, ua_calls),
        geo_lookup_many=counting_many(geo_db.lookup_many, ip_calls),
    )
    deriver = Deriver(options=options)
    deriver.derive(frame)
    distinct_uas = frame["user_agent"].nunique()
    assert len(ua_calls) == distinct_uas <= 2_000
    assert len(ip_calls) == frame["ip"].nunique()
    assert len(set(ua_calls)) == len(ua_calls)

    # A second batch with the same values is answered from the caches: no parser call at all.
    deriver.derive(frame.iloc[::-1])
    assert len(ua_calls) == distinct_uas
    stats = deriver.stats
    assert stats[DeriveStep.USER_AGENT].batches == 2
    assert stats[DeriveStep.USER_AGENT].rows == 400_000
    assert stats[DeriveStep.USER_AGENT].parsed == distinct_uas
    assert stats[DeriveStep.USER_AGENT].cache_hits == distinct_uas
    assert stats[DeriveStep.GEO].cache_hits == stats[DeriveStep.GEO].parsed
    assert stats[DeriveStep.CHANNEL].cache_hits == stats[DeriveStep.CHANNEL].parsed > 0
    assert set(stats.as_dict()) == {"user_agent", "geo", "channel"}


def test_lru_cache_is_bounded(ua_parser: UserAgentParser) -> None:
    calls: list[str] = []
    step_deriver = Deriver(options=DeriveOptions(ua_parser=counting(ua_parser, calls), ua_cache_size=10))
    step = step_deriver.steps[DeriveStep.USER_AGENT]
    frame = pd.DataFrame({"user_agent": realistic_user_agents(50)})
    step.run(frame)
    step.run(frame)
    assert len(calls) == 100  # 50 distinct values through a 10-entry cache: every lookup misses
    assert len(step_deriver.steps[DeriveStep.USER_AGENT].cache) == 10  # type: ignore[attr-defined]


def test_empty_and_missing_values() -> None:
    def no_geo(ips: Sequence[str]) -> list[GeoResult]:
        raise AssertionError(f"empty addresses {ips!r} must not be looked up")

    frame = pd.DataFrame({column: ["", None] for column in INPUT_COLUMNS})
    out = Deriver(options=DeriveOptions(geo_lookup_many=no_geo)).derive(frame)
    for column in ("device_category", "browser", "os", "country", "country_name", "region", "city"):
        assert out[column].tolist() == [NOT_SET, NOT_SET], column
    assert out["is_bot"].tolist() == [False, False]
    assert out["source_medium"].tolist() == ["(direct) / (none)"] * 2
    assert out["channel"].tolist() == ["Direct", "Direct"]


def test_empty_frame() -> None:
    frame = pd.DataFrame({column: pd.Series([], dtype="str") for column in INPUT_COLUMNS})
    out = Deriver().derive(frame)
    assert len(out) == 0
    assert list(out.columns) == [*INPUT_COLUMNS, *OUTPUT_COLUMNS]


def test_missing_input_column_is_named() -> None:
    frame = pd.DataFrame({"user_agent": ["x"], "ip": ["8.8.8.0"]})
    with pytest.raises(ValueError, match="referrer"):
        Deriver().derive(frame)


def test_single_step_and_object_dtype_input(ua_parser: UserAgentParser) -> None:
    frame = pd.DataFrame({"user_agent": np.array(["curl/8.4.0", "", None, "curl/8.4.0"], dtype=object)})
    out = derive_step(DeriveStep.USER_AGENT, frame, deriver=Deriver(options=DeriveOptions(ua_parser=ua_parser)))
    assert list(out.columns) == ["device_category", "browser", "os", "is_bot"]
    assert out["is_bot"].tolist() == [True, False, False, True]


def test_versions_are_registered_not_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    import aggregator.derive as derive_module

    monkeypatch.setattr(derive_module, "_RULE_SETS", dict(derive_module._RULE_SETS))  # undone after the test
    assert DERIVATION_VERSION == 1
    assert Deriver().version == 1
    with pytest.raises(ValueError, match="already registered"):
        register_rule_set(RuleSet(version=1, steps=()))
    with pytest.raises(KeyError, match="known"):
        rule_set(99)

    # A deliberately different rule set (here: UA only, every UA a bot) lives beside version 1.
    def all_bots(options: DeriveOptions) -> object:
        from aggregator.derive import UserAgentStep

        return UserAgentStep(lambda _ua: UaResult("other", NOT_SET, NOT_SET, True))

    register_rule_set(RuleSet(version=98, steps=((DeriveStep.USER_AGENT, all_bots),)))  # type: ignore[arg-type]
    frame = pd.DataFrame({"user_agent": ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36"]})
    out = Deriver(version=98).derive(frame)
    assert out["is_bot"].tolist() == [True]
    assert "country" not in out.columns


def test_throughput_print(geo_db: GeoDatabase, ua_parser: UserAgentParser) -> None:
    """Not a timed assertion: prints rows/s for realistic cardinalities (set GNOMON_DERIVE_BENCH_ROWS)."""
    rows = int(os.environ.get("GNOMON_DERIVE_BENCH_ROWS", "1000000"))
    frame = realistic_frame(rows, uas=5_000, ips=50_000, referrers=500)
    deriver = Deriver(options=DeriveOptions(ua_parser=ua_parser, geo_lookup_many=geo_db.lookup_many))
    start = time.perf_counter()
    deriver.derive(frame)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    out = deriver.derive(frame)
    warm = time.perf_counter() - start
    assert len(out) == rows
    print(
        f"\nderive() on {rows:,} rows (5k UAs, 50k IP nets, 500 referrers): "
        f"cold caches {rows / cold:,.0f} rows/s ({cold:.2f} s), warm caches {rows / warm:,.0f} rows/s ({warm:.2f} s); "
        f"stats {deriver.stats.as_dict()}"
    )
