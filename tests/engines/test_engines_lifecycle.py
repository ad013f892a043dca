"""`gnomon engines` lifecycle: `up` twice is a no-op, `status` is healthy, kill -9 of an engine followed by `up`
brings it back with its data, and `down` leaves no process and no listener. Runs after every other test (it stops
the engines), and restarts them at the end when the session found them running."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pulsar
import pytest
from cassandra.cluster import Cluster

from gnomon.engines import processes, specs
from gnomon.engines.pulsar_admin import ensure_namespace
from gnomon.eventlog.pulsar_admin import PulsarAdmin
from tests.conftest import RealEngines, delete_pulsar_namespace, gnomon_cli

pytestmark = [pytest.mark.engines, pytest.mark.lifecycle]


def kill_9(real_engines: RealEngines, engine: str) -> int:
    spec = next(s for s in specs.all_specs(real_engines.layout) if s.name == engine)
    pid = processes.live_pid(spec.pid_file(real_engines.layout))
    assert pid is not None, f"{engine} is not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while processes.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes.alive(pid)
    return pid


def test_up_twice_kill_and_recover_then_down(real_engines: RealEngines) -> None:
    second = gnomon_cli("engines", "up")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("already up (no-op)") == 2, second.stdout
    assert gnomon_cli("engines", "status").returncode == 0

    # Data that must survive kill -9: retained Pulsar messages and a Cassandra table. The topic lives in a namespace
    # of its own: after a restart, the first lookup in a namespace bundle makes the broker load every topic of that
    # bundle (each with ledger recovery after kill -9), and at the end of the suite Gnomon's namespace holds all the
    # suite's topics, which once outlasted even a 180 s operation timeout in CI.
    settings = real_engines.settings
    namespace = f"{settings.pulsar.tenant}/lifecycle-{uuid.uuid4().hex[:8]}"
    ensure_namespace(settings.pulsar.admin_url, settings.pulsar.tenant, namespace)  # infinite retention: no reader
    topic = f"persistent://{namespace}/kept"
    client = pulsar.Client(settings.pulsar.service_url)
    producer = client.create_producer(topic, batching_enabled=False)
    written = [f"m{i}".encode() for i in range(100)]
    for payload in written:
        producer.send(payload)  # synchronous: acknowledged by the broker (bookie journal fsync'd)
    client.close()
    keyspace = f"life_{uuid.uuid4().hex[:8]}"
    cluster = Cluster([settings.cql.contact_points[0]], port=settings.cql.port)
    session = cluster.connect()
    session.execute(
        f"CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}}"
    )
    session.execute(f"CREATE TABLE {keyspace}.t (k text PRIMARY KEY, v int)")
    session.execute(f"INSERT INTO {keyspace}.t (k, v) VALUES ('a', 1)")
    cluster.shutdown()

    for engine in ("pulsar", "cassandra"):
        kill_9(real_engines, engine)
        again = gnomon_cli("engines", "up")
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"{engine}: started" in again.stdout, again.stdout

    client = pulsar.Client(settings.pulsar.service_url, operation_timeout_seconds=120)
    reader = client.create_reader(topic, pulsar.MessageId.earliest)
    read = []
    while reader.has_message_available():
        read.append(reader.read_next(timeout_millis=10_000).data())
    client.close()
    assert read == written
    admin = PulsarAdmin(settings.pulsar.admin_url, timeout_s=60)
    deleted, body = admin.request("DELETE", f"/admin/v2/persistent/{namespace}/kept")
    assert deleted in (200, 204), body
    delete_pulsar_namespace(admin, namespace)

    cluster = Cluster([settings.cql.contact_points[0]], port=settings.cql.port)
    session = cluster.connect()
    assert session.execute(f"SELECT v FROM {keyspace}.t WHERE k='a'").one().v == 1
    session.execute(f"DROP KEYSPACE {keyspace}")
    cluster.shutdown()

    pids = [processes.live_pid(s.pid_file(real_engines.layout)) for s in specs.all_specs(real_engines.layout)]
    down = gnomon_cli("engines", "down")
    assert down.returncode == 0, down.stderr
    for pid in pids:
        assert pid is not None and not processes.alive(pid)
    layout = real_engines.layout
    all_ports = [p for s in specs.all_specs(layout) for p in s.ports]
    assert [p for p in all_ports if processes.port_open(layout.host, p)] == []
    status = gnomon_cli("engines", "status")
    assert status.returncode != 0 and "no" in status.stdout

    if not real_engines.started_by_session:  # leave the developer's engines as we found them
        assert gnomon_cli("engines", "up").returncode == 0
