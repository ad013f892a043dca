"""`gnomon collector` as a process: serves, then drains and exits 0 on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from collector_svc.testing import bearer
from gnomon.control import KeyKind, SqliteControlStore
from gnomon.eventlog.embedded import EmbeddedEventLog
from gnomon.eventlog.factory import EMBEDDED_SUBDIR
from gnomon.eventlog.port import Stream
from gnomon.v1 import collector_pb2, collector_pb2_grpc, event_pb2

CHILD = """
import argparse, sys
from gnomon.cli import collector_cmd
parser = argparse.ArgumentParser(prog="gnomon")
collector_cmd.register(parser.add_subparsers(required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.handler(args))
"""


def _event(event_id: str) -> event_pb2.Event:
    ev = event_pb2.Event(event_id=event_id, name="page_view", client_id="c", ip="203.0.113.77")
    ev.event_time.FromDatetime(datetime.now(UTC))
    return ev


@pytest.mark.parametrize("processes", [1, 2])
def test_collector_command_serves_and_drains_on_sigterm(tmp_path: Path, processes: int) -> None:
    control = SqliteControlStore(tmp_path / "control.sqlite3")
    merchant = control.create_merchant("CLI", "UTC", "EUR").merchant_id
    secret = control.create_key(merchant, KeyKind.WRITE).secret
    control.close()
    env = {**os.environ, "GNOMON_DATA_DIR": str(tmp_path), "GNOMON_ENGINES": "embedded"}
    argv = [sys.executable, "-c", CHILD, "collector", "--port", "0", "--grace", "5", "--processes", str(processes)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sent = [f"cli-{i}" for i in range(6)]
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, proc.stderr.read() if proc.stderr else line
        port = int(line.split()[3].rsplit(":", 1)[1])
        for event_id in sent:  # a new connection each time, so several processes get some
            options = [("grpc.use_local_subchannel_pool", 1)]
            with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
                stub = collector_pb2_grpc.CollectorServiceStub(channel)
                request = collector_pb2.EventBatch(events=[_event(event_id)])
                reply = stub.Collect(request, metadata=bearer(secret), timeout=20, wait_for_ready=True)
            assert reply.accepted == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = EmbeddedEventLog(tmp_path / EMBEDDED_SUBDIR)
    try:
        now = datetime.now(UTC)
        records = list(log.read_by_publish_time(Stream.EVENTS, now - timedelta(hours=1), now + timedelta(hours=1)))
    finally:
        log.close()
    logged = [event_pb2.LoggedBatch.FromString(r.payload) for r in records]
    assert sorted(e.event_id for lb in logged for e in lb.events) == sent
    assert {lb.merchant_id for lb in logged} == {merchant}
    assert {e.ip for lb in logged for e in lb.events} == {"203.0.113.0"}


def test_collector_help() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, "collector", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in ("--port", "--max-in-flight", "--rate", "--trusted-proxies", "--grace"):
        assert flag in out
    assert "SIGTERM" in out
