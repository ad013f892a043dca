"""The query service's OpenTelemetry instruments: latency per RPC and outcome, result-cache lookups."""

from __future__ import annotations

from typing import Final

from gnomon.telemetry import Telemetry

METER_NAME: Final = "gnomon.query"
LATENCY: Final = "gnomon.query.latency"
CACHE_LOOKUPS: Final = "gnomon.query.cache.lookups"


class QueryMetrics:
    """`gnomon.query.latency` (s, by rpc and gRPC code) and `gnomon.query.cache.lookups` (by hit true/false)."""

    def __init__(self, telemetry: Telemetry) -> None:
        meter = telemetry.meter(METER_NAME)
        self._latency = meter.create_histogram(
            LATENCY, unit="s", description="from receiving a query to answering it, by rpc and status code"
        )
        self._cache = meter.create_counter(
            CACHE_LOOKUPS, unit="{lookup}", description="result-cache lookups of reports, by hit (true/false)"
        )

    def answered(self, rpc: str, code: str, seconds: float) -> None:
        self._latency.record(seconds, {"rpc": rpc, "code": code})

    def cache_lookup(self, hit: bool) -> None:
        self._cache.add(1, {"hit": str(hit).lower()})
