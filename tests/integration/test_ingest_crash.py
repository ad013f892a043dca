"""The write path survives kill -9 of the collector: 100,000 events sent through the SDK while the collector is
killed mid-stream and restarted all reach the event log — none lost, all for the right merchant. The log may hold
a re-sent batch twice (acked by the log, the collector died before answering); the aggregator dedups by event id.
Runs on the embedded log and on real Pulsar."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gnomon_sdk import Client

from gnomon.control import KeyKind, open_control_store
from gnomon.engines.pulsar_admin import ensure_namespace
from gnomon.eventlog import open_event_log
from gnomon.eventlog.port import Stream
from gnomon.settings import CommonSettings
from gnomon.v1 import event_pb2
from tests.ports import free_port

EVENTS = 100_000
KILL_AFTER_ACKED = 30_000


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]
    settings: CommonSettings
    merchant_id: str
    write_key: str


@pytest.fixture(params=["embedded", pytest.param("pulsar", marks=pytest.mark.engines)])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Stack:
    region = f"t{uuid.uuid4().hex[:8]}"  # its own Pulsar namespace: gnomon/<region>
    env = {**os.environ, "GNOMON_DATA_DIR": str(tmp_path / "data"), "GNOMON_REGION": region}
    if request.param == "pulsar":
        request.getfixturevalue("real_engines")
        env["GNOMON_ENGINES"] = "real"
    settings = CommonSettings.from_env(env)
    if request.param == "pulsar":
        ensure_namespace(settings.pulsar.admin_url, settings.pulsar.tenant, settings.pulsar.namespace)
    control = open_control_store(settings)
    merchant = control.create_merchant("Crash Test Shop", "Europe/Berlin", "EUR", f"crash-{uuid.uuid4().hex[:8]}")
    key = control.create_key(merchant.merchant_id, KeyKind.WRITE, "crash test")
    control.close()
    return Stack(env, settings, merchant.merchant_id, key.secret)


def start_collector(stack: Stack, port: int, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gnomon.cli.main", "collector", "--port", str(port), "--rate", "0"],
        env=stack.env, stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            assert proc.poll() is None, f"collector exited: {log.read_text()[-2000:]}"
            time.sleep(0.1)
    raise AssertionError("collector did not listen within 60 s")


def logged_event_ids(stack: Stack) -> tuple[list[str], set[str]]:
    """Every event id in the log (with repeats) and the set of merchants the batches were stamped with."""
    log = open_event_log(stack.settings, producer_name=f"verify-{uuid.uuid4().hex[:6]}")
    consumer = log.subscribe(Stream.EVENTS, f"verify-{uuid.uuid4().hex[:6]}")
    ids: list[str] = []
    merchants: set[str] = set()
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 5:
        records = consumer.poll(1000, 1.0)
        if records:
            idle_since = time.monotonic()
        for record in records:
            batch = event_pb2.LoggedBatch.FromString(record.payload)
            merchants.add(batch.merchant_id)
            ids.extend(e.event_id for e in batch.events)
        consumer.commit(records)
    consumer.close()
    log.close()
    return ids, merchants


@pytest.mark.timeout(600)
def test_kill_9_collector_mid_stream_loses_nothing(stack: Stack, tmp_path: Path) -> None:
    port = free_port()
    collector_log = tmp_path / "collector.log"
    collector = start_collector(stack, port, collector_log)
    sent: list[str] = []
    client = Client(
        stack.write_key, [f"127.0.0.1:{port}"], spool_dir=tmp_path / "spool", max_retries=1000, backoff_max_s=1.0
    )

    def produce() -> None:
        now = datetime.now(UTC)
        for i in range(EVENTS):
            sent.append(client.page(f"https://shop.example/p/{i % 997}", client_id=f"c{i % 5000}", event_time=now))

    producer = threading.Thread(target=produce)
    producer.start()
    while client.stats().accepted < KILL_AFTER_ACKED:
        assert producer.is_alive() or client.stats().pending > 0
        time.sleep(0.01)
    os.kill(collector.pid, signal.SIGKILL)
    collector.wait()
    killed_at = client.stats().accepted
    time.sleep(1.0)  # the SDK sees UNAVAILABLE and backs off; events keep arriving in its spool
    collector = start_collector(stack, port, collector_log)
    producer.join()
    deadline = time.monotonic() + 300
    result = client.flush(timeout_s=300)  # returns early while the SDK is still backing off: poll until delivered
    while not result.complete and time.monotonic() < deadline:
        time.sleep(0.5)
        result = client.flush(timeout_s=30)
    stats = client.stats()
    client.close()
    collector.send_signal(signal.SIGTERM)
    assert collector.wait(timeout=60) == 0

    assert result.complete, f"SDK did not deliver everything: {result} {stats}"
    assert KILL_AFTER_ACKED <= killed_at < EVENTS, "the kill must happen mid-stream"
    assert stats.rejected == 0 and stats.failed == 0
    ids, merchants = logged_event_ids(stack)
    assert merchants == {stack.merchant_id}
    assert set(ids) == set(sent) and len(set(sent)) == EVENTS  # nothing lost, nothing foreign
    repeats = len(ids) - len(set(ids))
    assert repeats <= 2 * 500, f"{repeats} repeated events: more than the batches in flight at the kill"
