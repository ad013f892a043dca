"""Settings of the gRPC-web / dashboard server: one frozen object built at start-up from `GNOMON_WEB_*` and flags.

| variable | default | meaning |
|---|---|---|
| GNOMON_WEB_HOST / _PORT | 127.0.0.1 / 8088 | where to listen (port 0: any free port) |
| GNOMON_WEB_CORS_ORIGINS | (none) | comma-separated origins (`https://app.example.com`) whose pages may call the API |
| GNOMON_WEB_STATIC_DIR | `<repo>/dashboard/dist` | the built dashboard served at `/` |
| GNOMON_WEB_WORKERS | 8 | threads running queries |
| GNOMON_WEB_MAX_CONCURRENT | 64 | queries running or waiting; beyond, RESOURCE_EXHAUSTED at once |
| GNOMON_WEB_TIMEOUT_MS | 30000 | the longest a query may run (a client's shorter deadline wins) |
| GNOMON_WEB_GRACE_MS | 5000 | on shutdown, how long calls in flight may finish |

Query engine settings (cache, limits, read-token cache TTL, key events) and TLS (GNOMON_TLS_CERT, GNOMON_TLS_KEY,
GNOMON_TLS_CLIENT_CA) are the query service's (`query_svc.settings.QuerySettings`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from gnomon.settings import CommonSettings, EnvReader, SettingsError
from query_svc.settings import QuerySettings

DEFAULT_PORT: Final = 8088
DEFAULT_STATIC_DIR: Final = Path(__file__).resolve().parents[2] / "dashboard" / "dist"


def parse_origins(raw: str, name: str = "GNOMON_WEB_CORS_ORIGINS") -> tuple[str, ...]:
    """`scheme://host[:port]` origins from a comma-separated list ("*" allows any). Raises SettingsError."""
    origins: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        if item == "*":
            origins.append(item)
            continue
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") or parts.query:
            raise SettingsError(f"{name}: {item!r} is not an origin like https://dashboard.example.com[:port]")
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return tuple(origins)


@dataclass(frozen=True)
class WebSettings:
    query: QuerySettings
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    cors_origins: tuple[str, ...] = ()
    static_dir: Path = DEFAULT_STATIC_DIR
    workers: int = 8
    max_concurrent: int = 64
    timeout_s: float = 30.0
    grace_s: float = 5.0

    def __post_init__(self) -> None:
        if self.workers < 1 or self.max_concurrent < 1:
            raise SettingsError("the web server needs at least 1 worker and 1 concurrent query")
        if self.timeout_s <= 0:
            raise SettingsError("GNOMON_WEB_TIMEOUT_MS must be > 0")

    @property
    def common(self) -> CommonSettings:
        return self.query.common

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebSettings:
        """Build from `GNOMON_*` variables; raises SettingsError naming the variable on a bad value."""
        environ = os.environ if env is None else env
        r = EnvReader(environ)
        return cls(
            query=QuerySettings.from_env(environ),
            host=r.text("WEB_HOST", "127.0.0.1"),
            port=r.port("WEB_PORT", DEFAULT_PORT),
            cors_origins=parse_origins(r.text("WEB_CORS_ORIGINS", "")),
            static_dir=r.path("WEB_STATIC_DIR", DEFAULT_STATIC_DIR),
            workers=r.integer("WEB_WORKERS", 8, minimum=1, maximum=1024),
            max_concurrent=r.integer("WEB_MAX_CONCURRENT", 64, minimum=1, maximum=100_000),
            timeout_s=r.integer("WEB_TIMEOUT_MS", 30_000, minimum=1) / 1000,
            grace_s=r.integer("WEB_GRACE_MS", 5_000, minimum=0) / 1000,
        )
