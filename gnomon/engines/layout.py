"""Where the local engines keep jars, configs, data and logs, and which ports they use.

Built once from `GNOMON_*` variables (EngineLayout.from_env); nothing here touches the disk.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gnomon.settings import EnvReader

REPO_ENGINES_DIR = Path(__file__).resolve().parents[2] / "engines"


def _xdg(var: str, fallback: str) -> Path:
    raw = os.environ.get(var)
    return Path(raw) if raw else Path.home() / fallback


@dataclass(frozen=True)
class EngineLayout:
    """Paths and ports of the local engines. Every port binds to `host` (loopback) only."""

    home: Path  # data + logs + pid files: <home>/<engine>/{data,conf,engine.log,engine.pid}
    jar_cache: Path  # resolved jars: <jar_cache>/<engine>-<version>/lib/*.jar
    recipes: Path  # this repository's engines/ folder: poms, config templates, jvm options
    java17_home: Path
    host: str
    pulsar_broker_port: int
    pulsar_http_port: int
    bookie_port: int
    cql_port: int
    cassandra_storage_port: int
    start_timeout_s: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EngineLayout:
        r = EnvReader(os.environ if env is None else env)
        return cls(
            home=r.path("ENGINES_HOME", _xdg("XDG_DATA_HOME", ".local/share") / "gnomon" / "engines"),
            jar_cache=r.path("ENGINES_CACHE", _xdg("XDG_CACHE_HOME", ".cache") / "gnomon" / "engines"),
            recipes=r.path("ENGINES_RECIPES", REPO_ENGINES_DIR),
            java17_home=r.path("JAVA17_HOME", Path("/usr/lib/jvm/java-17-openjdk-amd64")),
            host="127.0.0.1",
            pulsar_broker_port=r.port("PULSAR_PORT", 6650),
            pulsar_http_port=r.port("PULSAR_HTTP_PORT", 8080),
            bookie_port=r.port("BOOKIE_PORT", 3181),
            cql_port=r.port("CQL_PORT", 9042),
            cassandra_storage_port=r.port("CASSANDRA_STORAGE_PORT", 7000),
            start_timeout_s=r.integer("ENGINES_START_TIMEOUT", 240, minimum=10, maximum=3600),
        )

    def with_home(self, home: Path) -> EngineLayout:
        """The same layout with another data/log directory (`--data DIR`)."""
        return EngineLayout(**{**self.__dict__, "home": home.expanduser().resolve()})
