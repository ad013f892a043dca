"""The query service's settings: one frozen object built at start-up from `GNOMON_*` variables and CLI flags.

| variable | default | meaning |
|---|---|---|
| GNOMON_QUERY_HOST / _PORT | 127.0.0.1 / 50052 | where to listen (port 0: any free port) |
| GNOMON_QUERY_WORKERS | 16 | gRPC worker threads |
| GNOMON_QUERY_MAX_RPCS | 256 | concurrent RPCs before gRPC itself answers RESOURCE_EXHAUSTED |
| GNOMON_QUERY_CACHE_ENTRIES | 2000 | results kept in the LRU result cache (0 = off) |
| GNOMON_QUERY_CACHE_TTL_MS | 3600000 | the longest a cached result is served |
| GNOMON_QUERY_WINDOW_CACHE_ROWS | 2000000 | rollup rows of closed windows kept decoded (0 = off; see window_cache) |
| GNOMON_QUERY_MAX_LIMIT | 100000 | rows per response; larger limits are capped to it |
| GNOMON_QUERY_AUTH_TTL_MS | 30000 | how long a read-token lookup is cached (revocation delay) |
| GNOMON_QUERY_GRACE_MS | 5000 | on shutdown, how long calls in flight may finish |
| GNOMON_AGGREGATOR_KEY_EVENTS | purchase | event names counted as keyEvents by Realtime (same as the aggregator) |
| GNOMON_TLS_CERT / GNOMON_TLS_KEY | (none) | PEM files; both or neither; TLS when set |
| GNOMON_TLS_CLIENT_CA | (none) | PEM CA bundle; when set, clients must present a certificate (mTLS) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from gnomon.grpc_server import check_tls_files, tls_files_from_env
from gnomon.settings import CommonSettings, EnvReader, SettingsError
from gnomon.telemetry import TelemetrySettings

SERVICE_NAME: Final = "gnomon-query"
HARD_MAX_LIMIT: Final = 1_000_000


@dataclass(frozen=True)
class QuerySettings:
    common: CommonSettings
    host: str = "127.0.0.1"
    port: int = 50052
    workers: int = 16
    max_concurrent_rpcs: int = 256
    cache_entries: int = 2_000
    cache_ttl_s: float = 3600.0
    window_cache_rows: int = 2_000_000
    max_limit: int = 100_000
    auth_cache_ttl_s: float = 30.0
    grace_s: float = 5.0
    key_events: frozenset[str] = frozenset({"purchase"})
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    telemetry: TelemetrySettings = field(default_factory=lambda: TelemetrySettings(service_name=SERVICE_NAME))

    def __post_init__(self) -> None:
        check_tls_files(self.tls_cert, self.tls_key, self.tls_client_ca)
        if self.workers < 1 or self.max_concurrent_rpcs < 1:
            raise SettingsError("the query service needs at least 1 worker and 1 concurrent RPC")
        if not 1 <= self.max_limit <= HARD_MAX_LIMIT:
            raise SettingsError(f"GNOMON_QUERY_MAX_LIMIT must be between 1 and {HARD_MAX_LIMIT}")

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, common: CommonSettings | None = None) -> QuerySettings:
        """Build from `GNOMON_*` variables; raises SettingsError naming the variable on a bad value."""
        environ = os.environ if env is None else env
        r = EnvReader(environ)
        keys = frozenset(k.strip() for k in r.text("AGGREGATOR_KEY_EVENTS", "purchase").split(",") if k.strip())
        tls_cert, tls_key, tls_client_ca = tls_files_from_env(r)
        return cls(
            common=common or CommonSettings.from_env(environ),
            host=r.text("QUERY_HOST", "127.0.0.1"),
            port=r.port("QUERY_PORT", 50052),
            workers=r.integer("QUERY_WORKERS", 16, minimum=1, maximum=1024),
            max_concurrent_rpcs=r.integer("QUERY_MAX_RPCS", 256, minimum=1, maximum=100_000),
            cache_entries=r.integer("QUERY_CACHE_ENTRIES", 2_000, minimum=0, maximum=10_000_000),
            cache_ttl_s=r.integer("QUERY_CACHE_TTL_MS", 3_600_000, minimum=0) / 1000,
            window_cache_rows=r.integer("QUERY_WINDOW_CACHE_ROWS", 2_000_000, minimum=0, maximum=1_000_000_000),
            max_limit=r.integer("QUERY_MAX_LIMIT", 100_000, minimum=1, maximum=HARD_MAX_LIMIT),
            auth_cache_ttl_s=r.integer("QUERY_AUTH_TTL_MS", 30_000, minimum=0) / 1000,
            grace_s=r.integer("QUERY_GRACE_MS", 5_000, minimum=0) / 1000,
            key_events=keys,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_client_ca=tls_client_ca,
            telemetry=TelemetrySettings.from_env(SERVICE_NAME, environ),
        )
