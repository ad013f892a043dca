"""`open_rollup_store` / `open_version_registry` pick the adapter from the engine mode."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gnomon.rollups import Grain, Metrics, RollupKey, RollupRow, open_rollup_store, open_version_registry
from gnomon.rollups.cql_store import CqlRollupStore
from gnomon.rollups.cql_versions import CqlVersionRegistry
from gnomon.rollups.sqlite_store import SqliteRollupStore
from gnomon.rollups.sqlite_versions import SqliteVersionRegistry
from gnomon.settings import CommonSettings
from tests.conftest import RealEngines

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_embedded_mode_uses_one_sqlite_file_under_data_dir(tmp_path: Path) -> None:
    settings = CommonSettings.from_env({"GNOMON_DATA_DIR": str(tmp_path / "data")})
    store = open_rollup_store(settings)
    registry = open_version_registry(settings)
    try:
        assert isinstance(store, SqliteRollupStore) and isinstance(registry, SqliteVersionRegistry)
        assert store.path == tmp_path / "data" / "rollups.sqlite3"
        store.write([RollupRow(RollupKey("m1", "total", Grain.HOUR, T0), Metrics(events=3), False, T0)])
        registry.set_active("m1", T0, datetime(2026, 6, 1, tzinfo=UTC), 2, who="t", why="shared file")
        assert registry.active_version("m1", T0) == 2
        assert store.data_version("m1") > 0
    finally:
        registry.close()
        store.close()
        store.close()  # idempotent


@pytest.mark.engines
def test_real_mode_uses_cql(real_engines: RealEngines) -> None:
    keyspace = f"gnomon_factory_test_{uuid.uuid4().hex[:10]}"
    settings = replace(
        real_engines.settings, cql=replace(real_engines.settings.cql, keyspace=keyspace, replication_factor=1)
    )
    store = open_rollup_store(settings)
    registry = open_version_registry(settings)
    assert isinstance(store, CqlRollupStore)
    try:
        assert isinstance(registry, CqlVersionRegistry)
        assert store.engine.keyspace == keyspace
        assert registry.active_version("m1", T0) == 1
    finally:
        registry.close()
        store.engine.drop_keyspace()
        store.close()
