"""Settings shared by every Gnomon process, built once at start-up from the environment.

Each process builds one frozen object (`CommonSettings.from_env()`, or a service's own settings that embed it);
nothing reads the environment at import time. Invalid values raise `SettingsError` whose message names the
variable and says what is accepted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

ENV_PREFIX = "GNOMON_"


E = TypeVar("E", bound=StrEnum)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which variable and how to fix it."""


class EngineMode(StrEnum):
    """Which adapter backs the event log and rollup store."""

    EMBEDDED = "embedded"  # SQLite files under data_dir, zero setup
    REAL = "real"  # Pulsar + Scylla/Cassandra


class CqlConsistency(StrEnum):
    """Consistency levels that make sense for rollup reads/writes (names as in CQL)."""

    ONE = "ONE"
    LOCAL_ONE = "LOCAL_ONE"
    LOCAL_QUORUM = "LOCAL_QUORUM"
    QUORUM = "QUORUM"
    EACH_QUORUM = "EACH_QUORUM"
    ALL = "ALL"


def _default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "gnomon"


class EnvReader:
    """Typed access to `GNOMON_*` variables of one mapping; every error names the variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str) -> str:
        return self._env.get(ENV_PREFIX + name, default).strip() or default

    def integer(self, name: str, default: int, minimum: int = 0, maximum: int = 2**31) -> int:
        raw = self._env.get(ENV_PREFIX + name)
        if raw is None or not raw.strip():
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{ENV_PREFIX}{name}={raw!r} is not an integer") from None
        if not minimum <= value <= maximum:
            raise SettingsError(f"{ENV_PREFIX}{name}={value} must be between {minimum} and {maximum}")
        return value

    def port(self, name: str, default: int) -> int:
        return self.integer(name, default, minimum=0, maximum=65535)

    def path(self, name: str, default: Path) -> Path:
        raw = self._env.get(ENV_PREFIX + name)
        return Path(raw).expanduser().resolve() if raw else default

    def choice(self, name: str, enum: type[E], default: E) -> E:
        raw = self._env.get(ENV_PREFIX + name)
        if raw is None or not raw.strip():
            return default
        try:
            return enum(raw.strip())
        except ValueError:
            allowed = ", ".join(e.value for e in enum)
            raise SettingsError(f"{ENV_PREFIX}{name}={raw!r} is not one of: {allowed}") from None

    def optional(self, name: str) -> str | None:
        raw = self._env.get(ENV_PREFIX + name, "").strip()
        return raw or None


@dataclass(frozen=True)
class PulsarSettings:
    """Where the Pulsar cluster of this region is, and the tenant/namespace Gnomon uses."""

    service_url: str
    admin_url: str
    tenant: str
    namespace: str  # "tenant/name"

    @classmethod
    def from_reader(cls, r: EnvReader, region: str) -> PulsarSettings:
        tenant = r.text("PULSAR_TENANT", "gnomon")
        return cls(
            service_url=r.text("PULSAR_URL", f"pulsar://127.0.0.1:{r.port('PULSAR_PORT', 6650)}"),
            admin_url=r.text("PULSAR_ADMIN_URL", f"http://127.0.0.1:{r.port('PULSAR_HTTP_PORT', 8080)}"),
            tenant=tenant,
            namespace=f"{tenant}/{r.text('PULSAR_NAMESPACE', region)}",
        )


@dataclass(frozen=True)
class CqlSettings:
    """How to reach Scylla/Cassandra: contact points, local datacenter, keyspace, consistency."""

    contact_points: tuple[str, ...]
    port: int
    local_datacenter: str
    keyspace: str
    consistency: CqlConsistency
    replication_factor: int  # per datacenter, for NetworkTopologyStrategy

    @classmethod
    def from_reader(cls, r: EnvReader) -> CqlSettings:
        hosts = tuple(h.strip() for h in r.text("CQL_HOSTS", "127.0.0.1").split(",") if h.strip())
        return cls(
            contact_points=hosts,
            port=r.port("CQL_PORT", 9042),
            local_datacenter=r.text("CQL_DATACENTER", "datacenter1"),
            keyspace=r.text("CQL_KEYSPACE", "gnomon"),
            consistency=r.choice("CQL_CONSISTENCY", CqlConsistency, CqlConsistency.LOCAL_QUORUM),
            replication_factor=r.integer("CQL_REPLICATION_FACTOR", 1, minimum=1, maximum=9),
        )


@dataclass(frozen=True)
class DaskSettings:
    """Embedded LocalCluster (scheduler_address None) or an existing dask.distributed scheduler."""

    scheduler_address: str | None
    local_workers: int
    threads_per_worker: int

    @classmethod
    def from_reader(cls, r: EnvReader) -> DaskSettings:
        return cls(
            scheduler_address=r.optional("DASK_SCHEDULER"),
            local_workers=r.integer("DASK_WORKERS", 2, minimum=1, maximum=256),
            threads_per_worker=r.integer("DASK_THREADS_PER_WORKER", 1, minimum=1, maximum=64),
        )


@dataclass(frozen=True)
class CommonSettings:
    """What every Gnomon process needs to know about its region and engines."""

    region: str
    data_dir: Path  # embedded engines' files, spools, logs of `gnomon up`
    engine_mode: EngineMode
    pulsar: PulsarSettings
    cql: CqlSettings
    dask: DaskSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CommonSettings:
        """Build from `GNOMON_*` variables (defaults: embedded engines, region `local`).

        Raises SettingsError naming the variable when a value is invalid.
        """
        r = EnvReader(os.environ if env is None else env)
        region = r.text("REGION", "local")
        if not region.replace("-", "").isalnum():
            raise SettingsError(f"{ENV_PREFIX}REGION={region!r} may hold only letters, digits and '-'")
        return cls(
            region=region,
            data_dir=r.path("DATA_DIR", _default_home() / "data"),
            engine_mode=r.choice("ENGINES", EngineMode, EngineMode.EMBEDDED),
            pulsar=PulsarSettings.from_reader(r, region),
            cql=CqlSettings.from_reader(r),
            dask=DaskSettings.from_reader(r),
        )
