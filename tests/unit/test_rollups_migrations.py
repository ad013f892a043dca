"""The CQL schema migrator: statement splitting and file loading (pure), applying against real Cassandra."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cassandra import InvalidRequest
from cassandra.cluster import Cluster, Session

from gnomon.rollups import migrate
from gnomon.rollups.cql_engine import CqlEngine
from gnomon.rollups.errors import MigrationError
from gnomon.rollups.migrate import (
    ADD_COLUMN_RE,
    apply_migrations,
    ensure_keyspace,
    load_migrations,
    split_statements,
)
from tests.conftest import RealEngines

# -- pure ----------------------------------------------------------------------------------------------------------


def test_split_statements_handles_comments_and_quotes() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE a (x int PRIMARY KEY) WITH comment = 'it''s; fine';  // trailing
    /* block; comment */ CREATE TABLE b (y text PRIMARY KEY)
        WITH comment = "q;uoted";
    ;;
    """
    assert split_statements(script) == [
        "CREATE TABLE a (x int PRIMARY KEY) WITH comment = 'it''s; fine'",
        'CREATE TABLE b (y text PRIMARY KEY)\n        WITH comment = "q;uoted"',
    ]
    assert split_statements("SELECT 1") == ["SELECT 1"]
    with pytest.raises(MigrationError, match="unterminated"):
        split_statements("CREATE TABLE a (x text) WITH comment = 'oops;")
    with pytest.raises(MigrationError, match="unterminated"):
        split_statements("/* never closed")


def test_packaged_migrations_load_in_order() -> None:
    migrations = load_migrations()
    assert [m.number for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "0001_rollups.cql"
    assert all(len(m.checksum) == 64 and m.statements for m in migrations)


def test_packaged_migrations_respect_the_scylla_rules() -> None:
    for m in load_migrations():
        for statement in m.statements:
            text = " ".join(statement.split()).upper()
            creates = text.startswith(("CREATE TABLE IF NOT EXISTS", "CREATE TYPE IF NOT EXISTS"))
            assert creates or ADD_COLUMN_RE.fullmatch(text), (m.name, text)  # re-runnable statements only
            assert " COUNTER" not in text and "ALLOW FILTERING" not in text, (m.name, text)
            assert re.sub(r"IF NOT EXISTS", "", text).find(" IF ") < 0, (m.name, text)  # no LWT
    rollups = " ".join(load_migrations()[0].statements[0].split())
    assert "PRIMARY KEY ((merchant_id, cube, grain, bucket, version), window_start, dims)" in rollups
    assert "TimeWindowCompactionStrategy" in rollups and "'compaction_window_unit': 'DAYS'" in rollups


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"0001_a.cql": "CREATE TABLE IF NOT EXISTS a (x int PRIMARY KEY);", "0003_c.cql": "SELECT 1;"}, "gaps"),
        ({"1_a.cql": "SELECT 1;"}, "NNNN_"),
        ({"0001_a.cql": "-- nothing\n"}, "no statement"),
        ({"0001_a.cql": "SELECT 1;", "0001_b.cql": "SELECT 2;"}, "duplicates"),
    ],
)
def test_malformed_migration_directories(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "README.md").write_text("ignored")
    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path)


# -- against real Cassandra ----------------------------------------------------------------------------------------


@pytest.fixture
def session(real_engines: RealEngines) -> Iterator[Session]:
    cql = real_engines.settings.cql
    cluster = Cluster(list(cql.contact_points), port=cql.port)
    s = cluster.connect()
    yield s
    cluster.shutdown()


@pytest.fixture
def keyspace(session: Session) -> Iterator[str]:
    name = f"gnomon_migrate_test_{uuid.uuid4().hex[:10]}"
    yield name
    session.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)


@pytest.mark.engines
def test_engine_applies_the_schema_once(real_engines: RealEngines, session: Session, keyspace: str) -> None:
    cql = replace(real_engines.settings.cql, replication_factor=1)
    first = CqlEngine(cql, keyspace=keyspace)
    try:
        assert first.applied_migrations == [m.name for m in load_migrations()]
        assert apply_migrations(first.session, keyspace) == []  # a second run is a no-op
    finally:
        first.close()
    second = CqlEngine(cql, keyspace=keyspace)
    second.close()
    assert second.applied_migrations == []
    recorded = session.execute(
        f"SELECT migration_id, name, checksum FROM {keyspace}.schema_migrations WHERE component = 'rollups'"
    ).all()
    assert [(r.migration_id, r.name, r.checksum) for r in recorded] == [
        (m.number, m.name, m.checksum) for m in load_migrations()
    ]
    ks = session.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", [keyspace]).one()
    assert ks.replication["class"].endswith("NetworkTopologyStrategy")
    assert ks.replication[cql.local_datacenter] == "1"
    table = session.execute(
        "SELECT compaction FROM system_schema.tables WHERE keyspace_name = %s AND table_name = 'rollups'", [keyspace]
    ).one()
    assert table.compaction["class"].endswith("TimeWindowCompactionStrategy")
    assert table.compaction["compaction_window_size"] == "1"


@pytest.mark.engines
def test_new_migrations_apply_and_edited_ones_are_refused(
    real_engines: RealEngines, session: Session, keyspace: str, tmp_path: Path
) -> None:
    cql = real_engines.settings.cql
    ensure_keyspace(session, keyspace, cql.local_datacenter, 1)
    (tmp_path / "0001_first.cql").write_text("CREATE TABLE IF NOT EXISTS first (k int PRIMARY KEY);\n")
    assert apply_migrations(session, keyspace, load_migrations(tmp_path), component="t") == ["0001_first.cql"]
    assert apply_migrations(session, keyspace, load_migrations(tmp_path), component="t") == []
    (tmp_path / "0002_second.cql").write_text(
        "CREATE TABLE IF NOT EXISTS second (k int PRIMARY KEY);\nCREATE TABLE IF NOT EXISTS third (k int PRIMARY KEY);"
    )
    assert apply_migrations(session, keyspace, load_migrations(tmp_path), component="t") == ["0002_second.cql"]
    tables = {r.table_name for r in session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", [keyspace])}  # fmt: skip
    assert {"first", "second", "third", "schema_migrations"} <= tables
    (tmp_path / "0001_first.cql").write_text("CREATE TABLE IF NOT EXISTS first (k int PRIMARY KEY, v int);\n")
    with pytest.raises(MigrationError, match=r"0001_first\.cql changed after it was applied"):
        apply_migrations(session, keyspace, load_migrations(tmp_path), component="t")
    # an older Gnomon that knows only 0001 tolerates the 0002 a newer one applied (rolling upgrade)
    (tmp_path / "0001_first.cql").write_text("CREATE TABLE IF NOT EXISTS first (k int PRIMARY KEY);\n")
    assert apply_migrations(session, keyspace, load_migrations(tmp_path)[:1], component="t") == []


@pytest.mark.engines
def test_an_interrupted_add_column_migration_runs_again(
    real_engines: RealEngines, session: Session, keyspace: str, tmp_path: Path
) -> None:
    ensure_keyspace(session, keyspace, real_engines.settings.cql.local_datacenter, 1)
    (tmp_path / "0001_table.cql").write_text("CREATE TABLE IF NOT EXISTS t (k int PRIMARY KEY);\n")
    (tmp_path / "0002_columns.cql").write_text("ALTER TABLE t ADD a bigint;\nALTER TABLE t ADD b text;\n")
    assert apply_migrations(session, keyspace, load_migrations(tmp_path)[:1], component="t") == ["0001_table.cql"]
    session.execute(f"ALTER TABLE {keyspace}.t ADD a bigint", timeout=60)  # the run that stopped after one statement
    assert apply_migrations(session, keyspace, load_migrations(tmp_path), component="t") == ["0002_columns.cql"]
    columns = session.execute(
        "SELECT column_name, type FROM system_schema.columns WHERE keyspace_name = %s AND table_name = 't'", [keyspace]
    )
    assert {(r.column_name, r.type) for r in columns} == {("k", "int"), ("a", "bigint"), ("b", "text")}


@pytest.mark.engines
def test_a_column_added_by_a_concurrent_migrator_is_not_an_error(
    real_engines: RealEngines, session: Session, keyspace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_keyspace(session, keyspace, real_engines.settings.cql.local_datacenter, 1)
    (tmp_path / "0001_table.cql").write_text("CREATE TABLE IF NOT EXISTS t (k int PRIMARY KEY);\n")
    (tmp_path / "0002_column.cql").write_text("ALTER TABLE t ADD a bigint;\n")
    assert apply_migrations(session, keyspace, load_migrations(tmp_path)[:1], component="t") == ["0001_table.cql"]
    session.execute(f"ALTER TABLE {keyspace}.t ADD a bigint", timeout=60)  # the other process, just now
    checks: list[bool] = []
    real_check = migrate._has_column

    def check_before_the_other_process(s: Session, ks: str, add: re.Match[str]) -> bool:
        checks.append(real_check(s, ks, add) if checks else False)  # the first check saw no column yet
        return checks[-1]

    monkeypatch.setattr(migrate, "_has_column", check_before_the_other_process)
    assert apply_migrations(session, keyspace, load_migrations(tmp_path), component="t") == ["0002_column.cql"]
    assert checks[0] is False  # the ALTER ran, failed with "already exists", and was taken as done
    (tmp_path / "0003_bad.cql").write_text("ALTER TABLE t ADD b nosuchtype;\n")
    with pytest.raises(InvalidRequest):  # any other failure of an ADD still fails the migration
        apply_migrations(session, keyspace, load_migrations(tmp_path), component="t")
