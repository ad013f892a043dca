"""Choose the RollupStore and VersionRegistry adapters from the process settings."""

from __future__ import annotations

from gnomon.rollups.port import RollupStore
from gnomon.rollups.sqlite_store import ROLLUPS_FILE_NAME
from gnomon.rollups.versions import VersionRegistry
from gnomon.settings import CommonSettings, EngineMode


def open_rollup_store(settings: CommonSettings) -> RollupStore:
    """The rollup store of this region: `<data_dir>/rollups.sqlite3` when embedded, Scylla/Cassandra when real.

    Blocks while connecting; in real mode creates the keyspace and applies pending schema migrations first.
    Raises RollupUnavailable when the engine cannot be reached, MigrationError when the schema cannot be
    brought up to date.
    """
    if settings.engine_mode is EngineMode.REAL:
        from gnomon.rollups.cql_store import CqlRollupStore  # the driver only when needed

        return CqlRollupStore.connect(settings.cql)
    from gnomon.rollups.sqlite_store import SqliteRollupStore

    return SqliteRollupStore(settings.data_dir / ROLLUPS_FILE_NAME)


def open_version_registry(settings: CommonSettings) -> VersionRegistry:
    """The processing-version registry, in the same engine (and SQLite file) as the rollups. Same errors."""
    if settings.engine_mode is EngineMode.REAL:
        from gnomon.rollups.cql_versions import CqlVersionRegistry

        return CqlVersionRegistry.connect(settings.cql)
    from gnomon.rollups.sqlite_versions import SqliteVersionRegistry

    return SqliteVersionRegistry(settings.data_dir / ROLLUPS_FILE_NAME)
