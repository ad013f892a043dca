"""Cassandra 5 (stand-in for ScyllaDB, same CQL protocol and driver), started by `gnomon engines up`:
a NetworkTopologyStrategy keyspace for the configured datacenter, a TimeWindowCompactionStrategy table,
prepared statements at the configured consistency level."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

from tests.conftest import RealEngines

pytestmark = pytest.mark.engines


@pytest.fixture
def session(real_engines: RealEngines) -> Iterator[Session]:
    cql = real_engines.settings.cql
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=cql.local_datacenter)),
        consistency_level=ConsistencyLevel.name_to_value[cql.consistency.value],
    )
    cluster = Cluster(
        list(cql.contact_points),
        port=cql.port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        protocol_version=5,
    )
    s = cluster.connect()
    yield s
    cluster.shutdown()


def test_keyspace_table_and_prepared_statements(real_engines: RealEngines, session: Session) -> None:
    cql = real_engines.settings.cql
    keyspace = f"smoke_{uuid.uuid4().hex[:8]}"
    session.execute(
        f"CREATE KEYSPACE {keyspace} WITH replication = "
        f"{{'class': 'NetworkTopologyStrategy', '{cql.local_datacenter}': {cql.replication_factor}}}"
    )
    try:
        session.execute(
            f"CREATE TABLE {keyspace}.hourly (merchant text, day date, hour timestamp, events bigint,"
            " PRIMARY KEY ((merchant, day), hour)) WITH CLUSTERING ORDER BY (hour ASC)"
            " AND compaction = {'class': 'TimeWindowCompactionStrategy',"
            " 'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}"
        )
        meta = session.execute(
            "SELECT compaction FROM system_schema.tables WHERE keyspace_name=%s AND table_name='hourly'",
            [keyspace],
        ).one()
        assert meta.compaction["class"].endswith("TimeWindowCompactionStrategy")
        ks = session.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name=%s", [keyspace]).one()
        assert ks.replication["class"].endswith("NetworkTopologyStrategy")
        assert ks.replication[cql.local_datacenter] == str(cql.replication_factor)

        insert = session.prepare(f"INSERT INTO {keyspace}.hourly (merchant, day, hour, events) VALUES (?, ?, ?, ?)")
        select = session.prepare(f"SELECT hour, events FROM {keyspace}.hourly WHERE merchant=? AND day=?")
        assert insert.consistency_level is None  # the execution profile's level applies
        start = datetime(2026, 11, 1, tzinfo=UTC)
        for h in range(24):
            session.execute(insert, ["m1", start.date(), start + timedelta(hours=h), h * 10])
        session.execute(insert, ["m1", start.date(), start, 999])  # idempotent overwrite, not an increment
        result = session.execute(select, ["m1", start.date()])
        assert result.response_future.message.consistency_level == ConsistencyLevel.name_to_value[cql.consistency.value]
        rows = list(result)
        assert [r.events for r in rows] == [999, *[h * 10 for h in range(1, 24)]]
        assert rows[0].hour.replace(tzinfo=UTC) == start
    finally:
        session.execute(f"DROP KEYSPACE {keyspace}")
