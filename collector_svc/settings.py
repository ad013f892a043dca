"""The collector's settings: one frozen object built at start-up from `GNOMON_*` variables and CLI flags.

| variable | default | meaning |
|---|---|---|
| GNOMON_COLLECTOR_HOST / _PORT | 127.0.0.1 / 50051 | where to listen (port 0: any free port) |
| GNOMON_COLLECTOR_WORKERS | 32 | gRPC worker threads (a CollectStream holds one while open) |
| GNOMON_COLLECTOR_MAX_RPCS | 256 | concurrent RPCs before gRPC itself answers RESOURCE_EXHAUSTED |
| GNOMON_COLLECTOR_MAX_IN_FLIGHT | 16 | batches validated/published at once; more: RESOURCE_EXHAUSTED |
| GNOMON_COLLECTOR_PUBLISH_TIMEOUT_MS | 10000 | wait for the log's durable ack; then UNAVAILABLE |
| GNOMON_COLLECTOR_RATE | 100000 | events/s per merchant (0 = unlimited) |
| GNOMON_COLLECTOR_BURST | 2 x rate | token-bucket size in events |
| GNOMON_TRUSTED_PROXIES | (none) | comma-separated CIDRs whose X-Forwarded-For is believed |
| GNOMON_COLLECTOR_DEDUP_IDS | 500000 | recently accepted event ids kept in memory (0 = off) |
| GNOMON_COLLECTOR_AUTH_TTL_MS | 30000 | how long a key lookup is cached (revocation delay) |
| GNOMON_COLLECTOR_ID | host-port (port 0: host-pid) | stamped on every batch; names the Pulsar producer |
| GNOMON_TLS_CERT / GNOMON_TLS_KEY | (none) | PEM files; both or neither; TLS when set |
| GNOMON_TLS_CLIENT_CA | (none) | PEM CA bundle; when set, clients must present a certificate (mTLS) |
| GNOMON_ADMIN_TOKEN | (none) | enables AdminService on this server; >= 16 characters |
| GNOMON_COLLECTOR_GRACE_MS | 10000 | on shutdown, how long in-flight batches may finish |
| GNOMON_COLLECTOR_PROCESSES | 1 | server processes sharing the port (Python runs one core per process) |
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from collector_svc.iptrunc import IpNetwork, parse_networks
from gnomon.grpc_server import check_tls_files, tls_files_from_env
from gnomon.settings import CommonSettings, EnvReader, SettingsError
from gnomon.telemetry import TelemetrySettings

SERVICE_NAME = "gnomon-collector"


def default_collector_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class CollectorSettings:
    common: CommonSettings
    host: str = "127.0.0.1"
    port: int = 50051
    workers: int = 32
    max_concurrent_rpcs: int = 256
    max_in_flight_batches: int = 16
    publish_timeout_s: float = 10.0
    rate_limit_events_per_s: float = 100_000.0
    rate_limit_burst: float = 200_000.0
    trusted_proxies: tuple[IpNetwork, ...] = ()
    dedup_cache_size: int = 500_000
    auth_cache_ttl_s: float = 30.0
    collector_id: str = field(default_factory=default_collector_id)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    admin_token: str | None = field(default=None, repr=False)
    grace_s: float = 10.0
    processes: int = 1  # `gnomon collector` runs this many server processes on one port (SO_REUSEPORT)
    reuse_port: bool = False  # let several processes bind the same port; set by the multi-process runner
    telemetry: TelemetrySettings = field(default_factory=lambda: TelemetrySettings(service_name=SERVICE_NAME))

    def __post_init__(self) -> None:
        check_tls_files(self.tls_cert, self.tls_key, self.tls_client_ca)
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise SettingsError("GNOMON_ADMIN_TOKEN must be at least 16 characters (use a random string)")
        if self.max_in_flight_batches < 1 or self.workers < 1:
            raise SettingsError("the collector needs at least 1 worker and 1 in-flight batch")

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, common: CommonSettings | None = None) -> CollectorSettings:
        """Build from `GNOMON_*` variables; raises SettingsError naming the variable on a bad value."""
        environ = os.environ if env is None else env
        r = EnvReader(environ)
        rate = r.integer("COLLECTOR_RATE", 100_000, minimum=0, maximum=10**9)
        proxies = [p for p in r.text("TRUSTED_PROXIES", "").split(",") if p.strip()]
        try:
            trusted = parse_networks(proxies)
        except ValueError as exc:
            raise SettingsError(f"GNOMON_TRUSTED_PROXIES: {exc}") from None
        tls_cert, tls_key, tls_client_ca = tls_files_from_env(r)
        return cls(
            common=common or CommonSettings.from_env(environ),
            host=r.text("COLLECTOR_HOST", "127.0.0.1"),
            port=r.port("COLLECTOR_PORT", 50051),
            workers=r.integer("COLLECTOR_WORKERS", 32, minimum=1, maximum=1024),
            max_concurrent_rpcs=r.integer("COLLECTOR_MAX_RPCS", 256, minimum=1, maximum=100_000),
            max_in_flight_batches=r.integer("COLLECTOR_MAX_IN_FLIGHT", 16, minimum=1, maximum=10_000),
            publish_timeout_s=r.integer("COLLECTOR_PUBLISH_TIMEOUT_MS", 10_000, minimum=1) / 1000,
            rate_limit_events_per_s=float(rate),
            rate_limit_burst=float(r.integer("COLLECTOR_BURST", 2 * rate, minimum=0, maximum=2 * 10**9)),
            trusted_proxies=trusted,
            dedup_cache_size=r.integer("COLLECTOR_DEDUP_IDS", 500_000, minimum=0, maximum=100_000_000),
            auth_cache_ttl_s=r.integer("COLLECTOR_AUTH_TTL_MS", 30_000, minimum=0) / 1000,
            collector_id=r.text("COLLECTOR_ID", default_collector_id()),
            admin_token=r.optional("ADMIN_TOKEN"),
            grace_s=r.integer("COLLECTOR_GRACE_MS", 10_000, minimum=0) / 1000,
            processes=r.integer("COLLECTOR_PROCESSES", 1, minimum=1, maximum=256),
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_client_ca=tls_client_ca,
            telemetry=TelemetrySettings.from_env(SERVICE_NAME, environ),
        )
